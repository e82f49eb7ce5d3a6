/*
 * The store refresh that every thread may trigger (a check-in, /healthz,
 * /metrics, the push thread's loop, SIGHUP): the store is re-read at most
 * once a second, and a change is logged and told to d->store_changed (the
 * push thread: a replacement starts the proactive roll-over). Through the
 * context, not by a call: push.c calls this file, so this one must not
 * call back up.
 */
#include <string.h>
#include <time.h>

#include "daemon.h"

void daemon_refresh(daemon_ctx *d)
{
    char before[AUTHCERT_THUMBPRINT_LEN + 1], after[AUTHCERT_THUMBPRINT_LEN + 1];
    bool changed = false, replaced;
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
    replaced = strcmp(before, after) != 0;
    if (replaced)
        dlog("certificate replaced: current %s (was %s), store generation %llu",
             after, before, authcert_server_generation(d->srv));
    else
        dlog("store changed: generation %llu, current %s",
             authcert_server_generation(d->srv), after);
    if (d->store_changed != NULL)
        d->store_changed(d->store_changed_cookie, replaced);
}
