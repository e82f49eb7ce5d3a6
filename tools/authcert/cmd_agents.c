/*
 * --agents [--json]: every registered agent and where it stands against the
 * store: current, expired (rolled over at its next check-in) or mismatched
 * (revoked or unknown certificate). Streams; memory stays flat.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "tool.h"

struct agents_ctx {
    const struct tool_opts *o;
    const authcert_store *store;
    size_t n;
};

/* "current", "expired", "mismatched" and, for the last, why. */
static const char *agent_state(const authcert_store *store, const char *thumbprint,
                               const char **reason)
{
    const authcert_store_entry *e = authcert_store_find(store, thumbprint);

    *reason = NULL;
    if (e == NULL) {
        *reason = "unknown";
        return "mismatched";
    }
    switch (e->state) {
    case AUTHCERT_STATE_CURRENT: return "current";
    case AUTHCERT_STATE_EXPIRED: return "expired";
    case AUTHCERT_STATE_REVOKED: break;
    }
    *reason = "revoked";
    return "mismatched";
}

static authcert_status print_agent(void *vctx, const authcert_agent *a)
{
    struct agents_ctx *c = vctx;
    const char *reason, *state = agent_state(c->store, a->thumbprint, &reason);
    char seen[32];

    tool_iso8601(a->last_seen, seen, sizeof seen);
    if (c->o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s?, s:b, s:I, s:s?}",
                              "agent_id", a->agent_id, "hostname", a->hostname,
                              "address", a->address, "port", (int)a->port,
                              "last_seen", seen, "thumbprint", a->thumbprint,
                              "state", state, "reason", reason, "enrolled", a->key_epoch > 0,
                              "key_epoch", (json_int_t)a->key_epoch, "clone_pin",
                              a->clone_pin != NULL && *a->clone_pin ? a->clone_pin : NULL);
        if (j == NULL)
            return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
        printf("%s  ", c->n == 0 ? "" : ",\n");
        json_dumpf(j, stdout, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
    } else {
        char shown[32];
        snprintf(shown, sizeof shown, reason != NULL ? "%s (%s)" : "%s", state,
                 reason != NULL ? reason : "");
        /* A clone (another key asked for this id) is what an operator must see. */
        const char *who = a->clone_pin != NULL && *a->clone_pin ? "CLONE SEEN"
                          : a->key_epoch > 0                    ? "enrolled"
                                                                : "not enrolled";
        if (c->n == 0)
            printf("%-36s  %-20s  %-15s  %-20s  %-23s  %-12s  %s\n", "AGENT", "HOSTNAME",
                   "ADDRESS", "LAST SEEN", "STATE", "IDENTITY", "THUMBPRINT");
        printf("%-36s  %-20.20s  %-15s  %-20s  %-23s  %-12s  %.16s\n", a->agent_id,
               a->hostname, a->address, seen, shown, who,
               *a->thumbprint ? a->thumbprint : "-");
    }
    c->n++;
    return ferror(stdout) ? authcert_fail(AUTHCERT_E_IO, "standard output: write failed")
                          : AUTHCERT_OK;
}

int cmd_agents(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store *store = NULL;
    authcert_registry *reg = NULL;
    authcert_agent_filter all = { 0 };
    struct agents_ctx c = { .o = o };

    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_READ, &store));
    TRY(tool_registry_open(o, &reg));
    c.store = store;
    if (o->json)
        printf("[\n");
    TRY(authcert_registry_foreach_agent(reg, &all, print_agent, &c));
    if (o->json)
        printf("%s]\n", c.n ? "\n" : "");
    else if (c.n == 0)
        tool_say(o, "no agents registered");
    if (fflush(stdout) != 0)
        rc = authcert_fail(AUTHCERT_E_IO, "standard output: write failed");
out:
    authcert_registry_close(reg);
    authcert_store_close(store);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
