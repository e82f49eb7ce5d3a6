/*
 * What one source may cost authcertd (issue 13, "Limits"):
 *
 * - Rates per source address: enrollment attempts (each one a signature
 *   check) and failed authentications, token buckets of a per-minute rate
 *   and a burst of the same size; beyond them a 429 with Retry-After.
 *   Sources are kept in a bounded table (the least recently refilled one
 *   goes when it is full), so a flood of addresses costs memory that does
 *   not grow.
 * - A deadline for the first request of a connection: a client that opens
 *   a connection and trickles its handshake or its headers is cut off
 *   (shutdown(2) of its socket) once --header-deadline has passed, whatever
 *   libmicrohttpd's idle timeout says (each byte resets that one). Later
 *   requests on a kept-alive connection are not timed this way: getting
 *   there took a complete request, and the per-address cap on connections
 *   (libmicrohttpd's) bounds what one address holds.
 *
 * Calls only log.c (the bottom); http.c, checkin.c and enroll.c call it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "daemon.h"

#define SOURCES_MAX 65536

struct bucket {
    char addr[48];
    double tokens[LIMIT_KINDS];
    double last; /* seconds, CLOCK_MONOTONIC */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bucket *table; /* open addressing on a hash of addr */
static double rate[LIMIT_KINDS]; /* per second */
static double burst[LIMIT_KINDS];

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

authcert_status limits_init(const daemon_config *c)
{
    rate[LIMIT_ENROLL] = (double)c->enroll_rate / 60.0;
    rate[LIMIT_AUTH_FAIL] = (double)c->auth_fail_rate / 60.0;
    burst[LIMIT_ENROLL] = (double)c->enroll_rate;
    burst[LIMIT_AUTH_FAIL] = (double)c->auth_fail_rate;
    if ((table = calloc(SOURCES_MAX, sizeof *table)) == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory (rate limits)");
    return AUTHCERT_OK;
}

void limits_free(void)
{
    free(table);
    table = NULL;
}

/* The bucket of addr (refilled), made when missing. Under lock. */
static struct bucket *find(const char *addr, double now)
{
    uint64_t h = hash(addr);
    struct bucket *oldest = NULL;

    for (size_t i = 0; i < 16; i++) {
        struct bucket *b = &table[(h + i) % SOURCES_MAX];
        if (b->addr[0] == '\0' || strcmp(b->addr, addr) == 0) {
            if (b->addr[0] == '\0') {
                snprintf(b->addr, sizeof b->addr, "%s", addr);
                for (int k = 0; k < LIMIT_KINDS; k++)
                    b->tokens[k] = burst[k];
                b->last = now;
            }
            oldest = b;
            break;
        }
        if (oldest == NULL || b->last < oldest->last)
            oldest = b;
    }
    if (strcmp(oldest->addr, addr) != 0) { /* the probe run is full: evict the stalest */
        snprintf(oldest->addr, sizeof oldest->addr, "%s", addr);
        for (int k = 0; k < LIMIT_KINDS; k++)
            oldest->tokens[k] = burst[k];
        oldest->last = now;
    }
    for (int k = 0; k < LIMIT_KINDS; k++) {
        oldest->tokens[k] += (now - oldest->last) * rate[k];
        if (oldest->tokens[k] > burst[k])
            oldest->tokens[k] = burst[k];
    }
    oldest->last = now;
    return oldest;
}

unsigned limits_retry_after(enum limit_kind k, const char *addr)
{
    double now = mono(), wait = 0;
    struct bucket *b;

    if (table == NULL || rate[k] <= 0)
        return 0;
    pthread_mutex_lock(&lock);
    b = find(addr, now);
    if (b->tokens[k] < 1.0)
        wait = (1.0 - b->tokens[k]) / rate[k];
    pthread_mutex_unlock(&lock);
    return wait > 0 ? (unsigned)wait + 1 : 0;
}

void limits_spend(enum limit_kind k, const char *addr)
{
    if (table == NULL)
        return;
    pthread_mutex_lock(&lock);
    find(addr, mono())->tokens[k] -= 1.0;
    pthread_mutex_unlock(&lock);
}

/* ---- the first request's deadline -------------------------------------- */

struct conn {
    struct conn *next, *prev;
    struct MHD_Connection *c;
    int fd;
    double started;
    bool requested; /* the first request's headers arrived */
};

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn *conns;
static atomic_ullong cut;

void *limits_connection_started(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct conn *k = calloc(1, sizeof *k);

    if (k == NULL || ci == NULL) {
        free(k);
        return NULL;
    }
    k->c = c;
    k->fd = ci->connect_fd;
    k->started = mono();
    pthread_mutex_lock(&conns_lock);
    k->next = conns;
    if (conns != NULL)
        conns->prev = k;
    conns = k;
    pthread_mutex_unlock(&conns_lock);
    return k;
}

void limits_request_seen(void *ctx)
{
    struct conn *k = ctx;

    if (k != NULL && !k->requested) {
        pthread_mutex_lock(&conns_lock);
        k->requested = true;
        pthread_mutex_unlock(&conns_lock);
    }
}

/*
 * libmicrohttpd tells us of the end before it closes the socket, and this
 * takes the lock the sweep holds while it shuts sockets down: the sweep
 * never touches a socket number that was closed and given to another
 * connection.
 */
void limits_connection_ended(void *ctx)
{
    struct conn *k = ctx;

    if (k == NULL)
        return;
    pthread_mutex_lock(&conns_lock);
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        conns = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    pthread_mutex_unlock(&conns_lock);
    free(k);
}

void limits_sweep(unsigned deadline)
{
    double now = mono();
    unsigned n = 0;

    pthread_mutex_lock(&conns_lock);
    for (struct conn *k = conns; k != NULL; k = k->next)
        if (!k->requested && k->fd >= 0 && now - k->started > (double)deadline) {
            (void)shutdown(k->fd, SHUT_RDWR);
            k->fd = -1; /* once */
            n++;
        }
    pthread_mutex_unlock(&conns_lock);
    if (n > 0) {
        atomic_fetch_add(&cut, n);
        dlog("limits: %u connection(s) cut: no complete request within %u s", n, deadline);
    }
}

unsigned long long limits_cut(void)
{
    return atomic_load(&cut);
}
