/*
 * Private: what a registry backend implements (SQLite now, PostgreSQL later).
 *
 * lib/registry/registry.c owns the public functions: it parses the URI,
 * checks every argument (bounds on untrusted agent input live there, once,
 * for all backends) and then calls these. A backend may assume its arguments are
 * valid: strings non-NULL and in bounds, thumbprints "" or 64 lowercase hex,
 * args/result JSON already parsed once, limits in range.
 */
#ifndef AUTHCERT_REGISTRY_BACKEND_H
#define AUTHCERT_REGISTRY_BACKEND_H

#include "authcert/registry.h"

/*
 * A parameter of the portable SQL identity.c runs on either backend: text,
 * or (text NULL) an integer.
 */
typedef struct reg_value {
    const char *text;
    long long num;
} reg_value;
#define REG_TEXT(s) ((reg_value){ .text = (s) })
#define REG_NUM(n) ((reg_value){ .text = NULL, .num = (long long)(n) })

/* One row of a portable query: its columns as text ("" for NULL). */
typedef authcert_status (*reg_row_cb)(void *ctx, const char *const *cols, int ncols);

/* What reg->be->tx does. */
enum reg_tx { REG_BEGIN, REG_COMMIT, REG_ROLLBACK };

typedef struct authcert_registry_backend {
    const char *name; /* "sqlite" */

    /* target: what follows "sqlite:" (a path); for PostgreSQL the whole URI. */
    authcert_status (*open)(const char *target, void **impl);
    void (*close)(void *impl);
    authcert_status (*schema_version)(void *impl, int *version);

    authcert_status (*checkin)(void *impl, const authcert_agent_report *r,
                               size_t n, time_t now);
    /* cb is called at most once; NOTFOUND when it is not. */
    authcert_status (*get_agent)(void *impl, const char *agent_id,
                                 authcert_agent_cb cb, void *ctx);
    authcert_status (*count_agents)(void *impl, uint64_t *n);
    authcert_status (*foreach_agent)(void *impl, const authcert_agent_filter *f,
                                     authcert_agent_cb cb, void *ctx);
    authcert_status (*count_by_thumbprint)(void *impl,
                                           authcert_thumbprint_count_cb cb,
                                           void *ctx);

    /*
     * ids == NULL: every agent, a broadcast. Command and delivery ids come
     * from one sequence (a did names one or the other, never both).
     */
    authcert_status (*enqueue)(void *impl, const char *const *ids, size_t n,
                               const char *command, const char *args_json,
                               time_t now, int64_t *command_id,
                               uint64_t *deliveries);
    /* key: NULL or the idempotency key (registry.h, enqueue_matching). */
    authcert_status (*enqueue_matching)(void *impl, const authcert_agent_filter *f,
                                        const char *command, const char *args_json,
                                        const char *key, time_t now,
                                        int64_t *command_id, uint64_t *deliveries);
    authcert_status (*pending)(void *impl, const char *agent_id,
                               authcert_delivery_cb cb, void *ctx);
    authcert_status (*claim)(void *impl, unsigned limit, unsigned lease_seconds,
                             time_t now, authcert_delivery_cb cb, void *ctx,
                             size_t *claimed);
    authcert_status (*claim_agent)(void *impl, const char *agent_id, unsigned limit,
                                   unsigned lease_seconds, time_t now,
                                   authcert_delivery_cb cb, void *ctx, size_t *claimed);
    authcert_status (*record_result)(void *impl, int64_t delivery_id,
                                     authcert_delivery_state state,
                                     const char *result_json, time_t now);
    /*
     * All in one durable transaction; per-item NOTFOUND/POLICY in
     * o[i].status. o[i].checkin_only with QUEUED: next_attempt_at becomes
     * AUTHCERT_REGISTRY_CHECKIN_ONLY_AT (only claim_agent takes it).
     */
    authcert_status (*record_results)(void *impl, authcert_delivery_outcome *o, size_t n,
                                      time_t now);
    authcert_status (*record_agent_result)(void *impl, const char *agent_id, int64_t did,
                                           authcert_delivery_state state,
                                           const char *result_json, time_t now,
                                           int64_t *delivery_id);
    authcert_status (*update_thumbprint)(void *impl, const char *agent_id,
                                         const char *from, const char *to, bool *changed);
    authcert_status (*results)(void *impl, int64_t command_id,
                               authcert_delivery_cb cb, void *ctx);
    /* Server nodes (registry_*_nodes.c); the table is made on first use. */
    authcert_status (*node_report)(void *impl, const char *node_id, const char *thumbprint,
                                   time_t now);
    authcert_status (*foreach_node)(void *impl, time_t since, authcert_node_cb cb, void *ctx);

    /*
     * Portable SQL for identity.c: parameters written ?1 .. ?n (PostgreSQL
     * gets $1 .. $n), rows to cb (may be NULL), *changes (may be NULL) the
     * rows an INSERT, UPDATE or DELETE touched. sql is a string constant:
     * a backend may cache its prepared form by the pointer.
     */
    authcert_status (*sql)(void *impl, const char *sql, const reg_value *p, int n,
                           reg_row_cb cb, void *ctx, uint64_t *changes);
    /* A durable write transaction (its COMMIT survives a crash), one writer
     * per row at a time: REG_BEGIN, then REG_COMMIT or REG_ROLLBACK. */
    authcert_status (*tx)(void *impl, enum reg_tx what);
    /* A SELECT inside tx takes FOR UPDATE to lock the rows it reads against
     * other nodes (PostgreSQL); false on SQLite, where BEGIN IMMEDIATE
     * locks the whole file and FOR UPDATE is not SQL it knows. */
    bool row_locks;
} authcert_registry_backend;

/* A registry handle (registry.c opens it; identity.c uses it too). */
struct authcert_registry {
    const authcert_registry_backend *be;
    void *impl;
};

/* Agent id bounds (registry.c): 1 to AUTHCERT_AGENT_ID_MAX visible ASCII. */
authcert_status authcert_registry_check_agent_id(const char *id);

/*
 * The retry policy every backend applies when a delivery goes back to the
 * queue: 30 s after the first attempt, doubling, never more than an hour
 * (an agent that is off for a week is retried hourly, and its check-in
 * picks the command up anyway).
 */
static inline time_t authcert_registry_backoff(unsigned attempts)
{
    time_t d = 30;

    for (unsigned i = 1; i < attempts && d < 3600; i++)
        d *= 2;
    return d < 3600 ? d : 3600;
}

/*
 * next_attempt_at of a queued delivery whose agent has no listener (port 0,
 * when it is queued or put back): never due for the push thread, which could
 * only lease it and put it back, and a check-in arriving in that moment
 * found it leased and waited a whole interval. The agent's check-in takes
 * it (claim_agent does not look at next_attempt_at); one that gets a
 * listener later is served by its next check-in. 9999-12-31T23:59:59Z.
 * A push outcome with checkin_only (the listener showed another key than the
 * agent's pin) puts a delivery back with the same time, whatever the port.
 */
#define AUTHCERT_REGISTRY_CHECKIN_ONLY_AT 253402300799
#define AUTHCERT_REGISTRY_STR_(x) #x
#define AUTHCERT_REGISTRY_STR(x) AUTHCERT_REGISTRY_STR_(x)
/* The same in SQL text. */
#define AUTHCERT_REGISTRY_CHECKIN_ONLY AUTHCERT_REGISTRY_STR(AUTHCERT_REGISTRY_CHECKIN_ONLY_AT)
/* A queued delivery's next_attempt_at once it is leased (to until) or put
 * back (to retry): CHECKIN_ONLY for an agent without a listener. SQL for
 * a row u of deliveries. */
#define AUTHCERT_REGISTRY_NEXT_ATTEMPT(u, when)                                 \
    "CASE WHEN (SELECT port FROM agents WHERE id = " u ".agent) = 0 THEN "     \
    AUTHCERT_REGISTRY_CHECKIN_ONLY " ELSE " when " END"

extern const authcert_registry_backend authcert_registry_sqlite;
extern const authcert_registry_backend authcert_registry_pg; /* pg.c */

#endif
