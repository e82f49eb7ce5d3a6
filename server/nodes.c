/*
 * Several authcertd nodes on one registry must sign with one certificate:
 * an agent rolled over by one node and then pushed to by another would
 * refuse everything. Every few seconds each node records the certificate it
 * serves with and compares it with what the others recorded; a difference
 * is logged loudly (once when it starts, once when it ends) and shown in
 * /metrics, and `authcert --status` shows the nodes too.
 */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

static atomic_uint nodes_seen;
static atomic_uint nodes_differing;
static bool warned;

struct compare {
    const char *self, *ours;
    unsigned seen, differing;
};

static authcert_status compare_node(void *ctx, const authcert_node *n)
{
    struct compare *c = ctx;

    c->seen++;
    if (strcmp(n->thumbprint, c->ours) != 0) {
        c->differing++;
        if (!warned)
            dlog("WARNING: node %s serves with certificate %s but this node (%s) with %s: "
                 "install the same certificate on every node (authcert -b here, -r there)",
                 n->node_id, n->thumbprint, c->self, c->ours);
    }
    return AUTHCERT_OK;
}

void nodes_tick(daemon_ctx *d)
{
    char ours[AUTHCERT_THUMBPRINT_LEN + 1];
    time_t now = time(NULL);
    /* A node that has not reported for three of our ticks has stopped. */
    time_t since = now - 3 * NODES_TICK_SECONDS;
    authcert_registry *reg = NULL;
    authcert_status rc;
    struct compare c = { .self = d->cfg.node_id, .ours = ours };

    authcert_server_current(d->srv, ours, NULL);
    if ((rc = dreg(d, &reg)) == AUTHCERT_OK
        && (rc = authcert_registry_node_report(reg, c.self, ours, now)) == AUTHCERT_OK)
        rc = authcert_registry_foreach_node(reg, since, compare_node, &c);
    if (rc != AUTHCERT_OK) {
        dlog("nodes: %s (%s)", authcert_strerror(rc), authcert_detail());
        return;
    }
    if (c.differing > 0)
        warned = true;
    else if (warned) {
        dlog("nodes: all %u node(s) serve with certificate %s again", c.seen, ours);
        warned = false;
    }
    atomic_store(&nodes_seen, c.seen);
    atomic_store(&nodes_differing, c.differing);
}

unsigned nodes_count(void)
{
    return atomic_load(&nodes_seen);
}

unsigned nodes_differing_count(void)
{
    return atomic_load(&nodes_differing);
}
