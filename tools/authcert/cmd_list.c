/*
 * -l CSV_PATH: the agents that do not hold the current certificate, as
 * RFC 4180 CSV (DESIGN.md section 3), streamed from the registry so that
 * memory does not grow with the fleet. "-" writes to standard output.
 */
#include <stdio.h>
#include <string.h>

#include "tool.h"

/* Why an agent is listed: what the store knows of its certificate. */
static authcert_mismatch_reason classify(void *ctx, const char *thumbprint)
{
    const authcert_store_entry *e = authcert_store_find(ctx, thumbprint);

    if (e == NULL)
        return AUTHCERT_MISMATCH_UNKNOWN;
    return e->state == AUTHCERT_STATE_REVOKED ? AUTHCERT_MISMATCH_REVOKED
                                              : AUTHCERT_MISMATCH_EXPIRED;
}

int cmd_list(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *path = tool_pos_last(o, 0);
    authcert_store *store = NULL;
    authcert_registry *reg = NULL;
    authcert_atomic_file *af = NULL;
    const authcert_store_entry *cur;
    size_t rows = 0;

    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_READ, &store));
    cur = authcert_store_current(store);
    if (cur == NULL) {
        rc = authcert_fail(AUTHCERT_E_NOTFOUND, "%s: no current certificate",
                           o->store_dir);
        goto out;
    }
    TRY(tool_registry_open(o, &reg));
    if (strcmp(path, "-") == 0) {
        TRY(authcert_mismatch_list_write(reg, cur->thumbprint, classify, store, stdout,
                                         &rows));
        if (fflush(stdout) != 0) {
            rc = authcert_fail(AUTHCERT_E_IO, "standard output: write failed");
            goto out;
        }
    } else {
        /* A reader (a spreadsheet, a script) never sees half a list. */
        TRY(authcert_atomic_open(path, 0644, &af));
        rc = authcert_mismatch_list_write(reg, cur->thumbprint, classify, store,
                                          authcert_atomic_stream(af), &rows);
        if (rc != AUTHCERT_OK)
            goto out;
        rc = authcert_atomic_commit(af);
        af = NULL;
        if (rc != AUTHCERT_OK)
            goto out;
        tool_say(o, "%zu mismatched agent%s listed in %s", rows, rows == 1 ? "" : "s",
                  path);
    }
    rc = AUTHCERT_OK;
out:
    authcert_atomic_abort(af);
    authcert_registry_close(reg);
    authcert_store_close(store);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
