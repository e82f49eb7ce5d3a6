/*
 * What --status adds when the agent registry is there: the agents by state
 * and the server nodes with the certificate each serves with. A machine
 * with only the store (no authcertd yet) shows the store alone.
 */
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tool.h"

/* Nodes that reported within this long are shown (they report every 5 s). */
#define NODE_RECENT_SECONDS 300

struct fleet {
    const authcert_store *store;
    const char *current;
    json_int_t current_n, expired, mismatched;
    json_t *nodes;
};

static authcert_status count_agents(void *ctx, const char *thumbprint, uint64_t n)
{
    struct fleet *f = ctx;
    const authcert_store_entry *e = authcert_store_find(f->store, thumbprint);

    if (e != NULL && e->state == AUTHCERT_STATE_CURRENT)
        f->current_n += (json_int_t)n;
    else if (e != NULL && e->state == AUTHCERT_STATE_EXPIRED)
        f->expired += (json_int_t)n;
    else
        f->mismatched += (json_int_t)n;
    return AUTHCERT_OK;
}

static authcert_status add_node(void *ctx, const authcert_node *n)
{
    struct fleet *f = ctx;
    char seen[32];

    tool_iso8601(n->last_seen, seen, sizeof seen);
    if (json_array_append_new(f->nodes, json_pack("{s:s, s:s, s:s, s:b}", "node_id", n->node_id,
                                                  "thumbprint", n->thumbprint, "last_seen", seen,
                                                  "same_certificate",
                                                  f->current != NULL &&
                                                      strcmp(n->thumbprint, f->current) == 0))
        != 0)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    return AUTHCERT_OK;
}

json_t *status_fleet(const struct tool_opts *o, const authcert_store *store)
{
    const authcert_store_entry *cur = authcert_store_current(store);
    struct fleet f = { .store = store, .current = cur != NULL ? cur->thumbprint : NULL };
    authcert_registry *reg = NULL;
    json_t *out = NULL;

    if (tool_registry_open(o, &reg) != AUTHCERT_OK)
        return NULL; /* no registry here: the store is all there is to show */
    f.nodes = json_array();
    if (f.nodes == NULL
        || authcert_registry_count_by_thumbprint(reg, count_agents, &f) != AUTHCERT_OK
        || authcert_registry_foreach_node(reg, time(NULL) - NODE_RECENT_SECONDS, add_node, &f)
               != AUTHCERT_OK) {
        tool_warn(o, "agent registry %s: %s", o->registry, authcert_detail());
        json_decref(f.nodes);
        authcert_registry_close(reg);
        return NULL;
    }
    out = json_pack("{s:s, s:{s:I, s:I, s:I}, s:o}", "registry", o->registry, "agents",
                    "current", f.current_n, "expired", f.expired, "mismatched", f.mismatched,
                    "nodes", f.nodes);
    authcert_registry_close(reg);
    return out;
}

void status_fleet_print(const json_t *fleet)
{
    const json_t *agents = json_object_get(fleet, "agents"), *n;
    size_t i;

    printf("agents: %lld current, %lld expired (rolled over at their next check-in), "
           "%lld mismatched (authcert -l)\n",
           (long long)json_integer_value(json_object_get(agents, "current")),
           (long long)json_integer_value(json_object_get(agents, "expired")),
           (long long)json_integer_value(json_object_get(agents, "mismatched")));
    json_array_foreach(json_object_get(fleet, "nodes"), i, n) {
        const char *id = json_string_value(json_object_get(n, "node_id"));
        printf("node %s: certificate %.16s..., last seen %s\n", id,
               json_string_value(json_object_get(n, "thumbprint")),
               json_string_value(json_object_get(n, "last_seen")));
        if (!json_is_true(json_object_get(n, "same_certificate")))
            printf("WARNING: node %s serves with another certificate than this store's current "
                   "one: install the same on every node (-b here, -r there)\n", id);
    }
}
