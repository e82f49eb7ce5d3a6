/*
 * The registry handles: one per thread (registry.h), kept for the thread's
 * life and closed together at stop. Measured against one handle behind a
 * mutex (docs/authcertd.8, PERFORMANCE): the check-in path reads without
 * waiting for the writer's batches or a push. Every part that reads or
 * writes the registry takes its handle here; this file calls none of them.
 */
#include <pthread.h>
#include <stdlib.h>

#include "daemon.h"

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
