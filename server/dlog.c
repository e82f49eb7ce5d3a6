/*
 * Logging (one line per event on stderr, UTC timestamp, never a secret),
 * the per-thread registry handles (registry.h: one handle per thread), and
 * the store refresh that every thread may trigger.
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

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static authcert_registry *the_reg;

authcert_status dreg_open(daemon_ctx *d)
{
    return authcert_registry_open(d->cfg.registry, &the_reg);
}

authcert_status dreg(daemon_ctx *d, authcert_registry **reg)
{
    (void)d;
    pthread_mutex_lock(&reg_lock);
    if (the_reg == NULL) {
        pthread_mutex_unlock(&reg_lock);
        return authcert_fail(AUTHCERT_E_IO, "the registry is closed");
    }
    *reg = the_reg;
    return AUTHCERT_OK;
}

void dreg_done(void)
{
    pthread_mutex_unlock(&reg_lock);
}

void dreg_close_all(void)
{
    pthread_mutex_lock(&reg_lock);
    authcert_registry_close(the_reg);
    the_reg = NULL;
    pthread_mutex_unlock(&reg_lock);
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
    if (strcmp(before, after) != 0)
        dlog("certificate replaced: current %s (was %s), store generation %llu",
             after, before, authcert_server_generation(d->srv));
    else
        dlog("store changed: generation %llu, current %s",
             authcert_server_generation(d->srv), after);
    if (d->pusher != NULL)
        pusher_wake(d->pusher);
}
