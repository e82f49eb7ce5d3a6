/*
 * Proactive roll-over: after a replacement, every agent with a listener on
 * an expired certificate gets one queued update-key
 * (authcert_registry_enqueue_matching, keyed, so never two), one statement
 * per expired thumbprint in use: memory does not grow with the fleet. The
 * push thread then sends them at --push-rate; agents it cannot reach take
 * theirs at their next check-in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "daemon.h"

struct expired {
    daemon_ctx *d;
    char (*tp)[AUTHCERT_THUMBPRINT_LEN + 1];
    size_t n;
};

/* The thumbprints in use are few (one per certificate): keep the expired ones. */
static authcert_status expired_cb(void *ctx, const char *thumbprint, uint64_t agents)
{
    struct expired *e = ctx;
    char (*tp)[AUTHCERT_THUMBPRINT_LEN + 1];

    (void)agents;
    if (authcert_server_classify(e->d->srv, thumbprint, NULL) != AUTHCERT_AGENT_EXPIRED)
        return AUTHCERT_OK;
    if ((tp = realloc(e->tp, (e->n + 1) * sizeof *tp)) == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    e->tp = tp;
    snprintf(e->tp[e->n++], sizeof *tp, "%s", thumbprint);
    return AUTHCERT_OK;
}

authcert_status rollover_queue(daemon_ctx *d, authcert_registry *reg, uint64_t *total)
{
    struct expired e = { .d = d };
    authcert_status rc;

    *total = 0;
    rc = authcert_registry_count_by_thumbprint(reg, expired_cb, &e);
    for (size_t i = 0; rc == AUTHCERT_OK && i < e.n; i++) {
        authcert_agent_filter f = { .thumbprint = e.tp[i], .listening = true };
        uint64_t n = 0;

        rc = authcert_registry_enqueue_matching(reg, &f, AUTHCERT_UPDATE_KEY_COMMAND, NULL,
                                                AUTHCERT_UPDATE_KEY_COMMAND, time(NULL), NULL,
                                                &n);
        if (rc == AUTHCERT_OK && n > 0)
            dlog("roll-over: update-key queued for %llu agent(s) on expired %s",
                 (unsigned long long)n, e.tp[i]);
        *total += n;
    }
    free(e.tp);
    if (rc != AUTHCERT_OK)
        return authcert_fail(rc, "%s: %s", authcert_strerror(rc), authcert_detail());
    return AUTHCERT_OK;
}
