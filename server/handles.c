/*
 * Logging (one line per event on stderr, UTC timestamp, never a secret),
 * the per-thread registry handles (registry.h: one handle per thread), and
 * the store refresh that every thread may trigger (a replacement starts the
 * proactive roll-over).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

void dlog(const char *fmt, ...)
{
    char line[1024], stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One write per line so that lines of two threads never interleave. */
    fprintf(stderr, "%s.%03ldZ authcertd: %s\n", stamp, ts.tv_nsec / 1000000L, line);
}

/*
 * One registry handle per thread, kept for the thread's life. Measured
 * against one handle behind a mutex (docs/authcertd.8, PERFORMANCE): the
 * check-in path reads without waiting for the writer's batches or a push.
 */
struct handle {
    struct handle *next;
    authcert_registry *reg;
};

static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle *handles;
static bool closed;
static _Thread_local authcert_registry *mine;

static authcert_status open_one(daemon_ctx *d, authcert_registry **out)
{
    struct handle *h = calloc(1, sizeof *h);
    authcert_status rc;

    if (h == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    if ((rc = authcert_registry_open(d->cfg.registry, &h->reg)) != AUTHCERT_OK) {
        free(h);
        return rc;
    }
    pthread_mutex_lock(&handles_lock);
    if (closed) {
        pthread_mutex_unlock(&handles_lock);
        authcert_registry_close(h->reg);
        free(h);
        return authcert_fail(AUTHCERT_E_IO, "the registry is closed");
    }
    h->next = handles;
    handles = h;
    pthread_mutex_unlock(&handles_lock);
    *out = h->reg;
    return AUTHCERT_OK;
}

authcert_status dreg_open(daemon_ctx *d)
{
    return open_one(d, &mine);
}

authcert_status dreg(daemon_ctx *d, authcert_registry **reg)
{
    authcert_status rc;

    if (atomic_load(&d->stopping) && mine == NULL)
        return authcert_fail(AUTHCERT_E_IO, "the registry is closed");
    if (mine == NULL && (rc = open_one(d, &mine)) != AUTHCERT_OK) {
        mine = NULL;
        return rc;
    }
    *reg = mine;
    return AUTHCERT_OK;
}

void dreg_done(void)
{
}

/* Every thread that used a handle has stopped (main.c's order). */
void dreg_close_all(void)
{
    struct handle *h, *next;

    pthread_mutex_lock(&handles_lock);
    closed = true;
    h = handles;
    handles = NULL;
    pthread_mutex_unlock(&handles_lock);
    for (; h != NULL; h = next) {
        next = h->next;
        authcert_registry_close(h->reg);
        free(h);
    }
    mine = NULL;
}

void daemon_refresh(daemon_ctx *d)
{
    char before[AUTHCERT_THUMBPRINT_LEN + 1], after[AUTHCERT_THUMBPRINT_LEN + 1];
    bool changed = false;
    authcert_status rc;

    authcert_server_current(d->srv, before, NULL);
    rc = authcert_server_maybe_refresh(d->srv, time(NULL), &changed);
    if (rc != AUTHCERT_OK) {
        dlog("store %s: cannot re-read (%s: %s); still using generation %llu",
             d->cfg.store_dir, authcert_strerror(rc), authcert_detail(),
             authcert_server_generation(d->srv));
        return;
    }
    if (!changed)
        return;
    authcert_server_current(d->srv, after, NULL);
    if (strcmp(before, after) != 0) {
        dlog("certificate replaced: current %s (was %s), store generation %llu",
             after, before, authcert_server_generation(d->srv));
        if (d->pusher != NULL)
            pusher_rollover(d->pusher);
    } else
        dlog("store changed: generation %llu, current %s",
             authcert_server_generation(d->srv), after);
    if (d->pusher != NULL)
        pusher_wake(d->pusher);
}
