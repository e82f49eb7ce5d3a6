/*
 * The check-in writer: request threads queue what agents report, and one
 * thread writes them in batches (authcert_registry_checkin_batch: one
 * transaction for up to BATCH_MAX check-ins, every batch_ms). A check-in
 * answer never waits for the database; what it needs (the certificate
 * store, the pending commands) is read elsewhere.
 *
 * Two buffers: request threads fill `in` under the lock; the writer swaps
 * it with `out` and writes `out` with the lock released.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define BATCH_MAX 2048
#define QUEUE_MAX (8 * BATCH_MAX) /* past this a request thread waits */

struct item {
    char agent_id[AUTHCERT_AGENT_ID_MAX + 1];
    char hostname[AUTHCERT_HOSTNAME_MAX + 1];
    char address[AUTHCERT_ADDRESS_MAX + 1];
    char version[AUTHCERT_AGENT_VERSION_MAX + 1];
    char thumbprint[AUTHCERT_THUMBPRINT_LEN + 1];
    char key_pin[AUTHCERT_KEY_PIN_LEN + 1];
    uint16_t port;
    uint64_t mac_counter; /* the request's counter: the registry's goes up to it */
};

struct buf {
    struct item *items;
    size_t n, cap;
};

struct writer {
    daemon_ctx *d;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake, room;
    struct buf in, out;
    bool stop;
    atomic_ullong backlog;
    authcert_agent_report *reports;
};

static void copy(char *dst, const char *src, size_t size)
{
    size_t n = src != NULL ? strnlen(src, size - 1) : 0;

    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
}

void writer_submit(struct writer *w, const authcert_agent_report *r)
{
    struct item *it;

    pthread_mutex_lock(&w->lock);
    while (w->in.n >= QUEUE_MAX && !w->stop)
        pthread_cond_wait(&w->room, &w->lock);
    if (w->in.n == w->in.cap) {
        size_t cap = w->in.cap ? 2 * w->in.cap : 256;
        struct item *p = realloc(w->in.items, cap * sizeof *p);
        if (p == NULL) { /* last_seen will be a little older: not fatal */
            pthread_mutex_unlock(&w->lock);
            dlog("check-in of %s not recorded: out of memory", r->agent_id);
            return;
        }
        w->in.items = p;
        w->in.cap = cap;
    }
    it = &w->in.items[w->in.n++];
    copy(it->agent_id, r->agent_id, sizeof it->agent_id);
    copy(it->hostname, r->hostname, sizeof it->hostname);
    copy(it->address, r->address, sizeof it->address);
    copy(it->version, r->version, sizeof it->version);
    copy(it->thumbprint, r->thumbprint, sizeof it->thumbprint);
    copy(it->key_pin, r->key_pin, sizeof it->key_pin);
    it->port = r->port;
    it->mac_counter = r->mac_counter;
    atomic_store(&w->backlog, w->in.n);
    if (w->in.n >= BATCH_MAX)
        pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

uint64_t writer_backlog(struct writer *w)
{
    return atomic_load(&w->backlog);
}

static void flush(struct writer *w, authcert_registry *reg)
{
    for (size_t off = 0; off < w->out.n; off += BATCH_MAX) {
        size_t n = w->out.n - off < BATCH_MAX ? w->out.n - off : BATCH_MAX;
        authcert_status rc;

        for (size_t i = 0; i < n; i++) {
            struct item *it = &w->out.items[off + i];
            w->reports[i] = (authcert_agent_report){
                .agent_id = it->agent_id, .hostname = it->hostname,
                .address = it->address, .port = it->port,
                .thumbprint = it->thumbprint, .version = it->version,
                .key_pin = it->key_pin, .mac_counter = it->mac_counter };
        }
        rc = authcert_registry_checkin_batch(reg, w->reports, n, time(NULL));
        if (rc == AUTHCERT_E_BUSY) /* another writer held it: once more */
            rc = authcert_registry_checkin_batch(reg, w->reports, n, time(NULL));
        if (rc != AUTHCERT_OK)
            dlog("registry: %zu check-ins not recorded (%s: %s)", n, authcert_strerror(rc),
                 authcert_detail());
    }
    w->out.n = 0;
}

static void *run(void *arg)
{
    struct writer *w = arg;
    authcert_registry *reg = NULL;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct timespec until;
        struct buf t;

        if (w->in.n == 0 && !w->stop) {
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += w->d->cfg.batch_ms * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&w->wake, &w->lock, &until);
        }
        if (w->in.n == 0 && w->stop)
            break;
        t = w->in;
        w->in = w->out;
        w->out = t;
        atomic_store(&w->backlog, 0);
        pthread_cond_broadcast(&w->room);
        pthread_mutex_unlock(&w->lock);
        if (dreg(w->d, &reg) == AUTHCERT_OK) {
            flush(w, reg);
            dreg_done();
        }
        w->out.n = 0;
        /* Let a few more arrive: one transaction for many is the point. */
        if (!w->stop) {
            struct timespec nap = { 0, w->d->cfg.batch_ms * 1000000L };
            nanosleep(&nap, NULL);
        }
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

authcert_status writer_start(daemon_ctx *d, struct writer **out)
{
    struct writer *w = calloc(1, sizeof *w);

    if (w == NULL || (w->reports = calloc(BATCH_MAX, sizeof *w->reports)) == NULL) {
        free(w);
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    w->d = d;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->room, NULL);
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        free(w->reports);
        free(w);
        return authcert_fail(AUTHCERT_E_INTERNAL, "cannot start the writer thread");
    }
    *out = w;
    return AUTHCERT_OK;
}

void writer_stop(struct writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->wake);
    pthread_cond_broadcast(&w->room);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->room);
    free(w->in.items);
    free(w->out.items);
    free(w->reports);
    free(w);
}
