/*
 * Private to the SQLite registry backend: the handle and the helpers that
 * lib/registry/sqlite.c (open, schema, agents) and lib/registry/sqlite_queue.c
 * (the command queue) share.
 */
#ifndef AUTHCERT_REGISTRY_SQLITE_H
#define AUTHCERT_REGISTRY_SQLITE_H

#include <sqlite3.h>

#include "internal.h"
#include "registry/backend.h"

#define AGENT_COLS "agent_id, hostname, address, port, thumbprint, version, " \
                   "first_seen, last_seen, key_pin"
/* What an authcert_agent is read from: the columns, and its identity. */
#define AGENT_SELECT AGENT_COLS ", CASE WHEN key_spki <> '' THEN key_epoch ELSE 0 END, " \
                     "clone_pin"

/* Statements on the hot paths, prepared once per handle. */
enum sq_stmt {
    SQ_UPSERT,       /* a check-in */
    SQ_PROBE_AGENT,  /* has this agent anything claimable? */
    SQ_CLAIM_AGENT,  /* lease it */
    SQ_READ_LEASED,  /* read back what a lease took */
    SQ_PROBE_DUE,    /* is anything due for the push thread? */
    SQ_CLAIM,        /* lease due deliveries of any agent */
    SQ_GET_DELIVERY, /* a delivery's state before recording its result */
    SQ_SETTLE,       /* record it */
    SQ_STMT_MAX
};

/* identity.c's statements, prepared once per handle (sqlite.c, sq_sql). */
#define SQ_SQL_CACHE 24

typedef struct sq {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[SQ_STMT_MAX];
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[SQ_SQL_CACHE];
    bool writer; /* it writes check-in batches: the big page cache */
} sq;

/* Leave with a SQLite failure (sq_fail sets the detail). */
#define SQL_FAIL(code, what)                                                \
    do {                                                                    \
        rc = sq_fail(s, (code), (what));                                    \
        goto out;                                                           \
    } while (0)

authcert_status sq_fail(sq *s, int code, const char *what);
authcert_status sq_exec(sq *s, const char *sql);
authcert_status sq_prepare(sq *s, const char *sql, sqlite3_stmt **st);
/* The handle's cached statement `which` (prepared on first use), reset. */
authcert_status sq_cached(sq *s, enum sq_stmt which, const char *sql, sqlite3_stmt **st);
/* Leave a transaction that failed; the original error stays the detail. */
void sq_rollback(sq *s);
/* A text column, "" for NULL. */
const char *sq_txt(sqlite3_stmt *st, int i);

/*
 * " AND ..." for each set field of f, with parameters numbered from base
 * (base .. base + 3); sq_filter_bind binds them.
 */
void sq_filter_sql(const authcert_agent_filter *f, int base, char *out, size_t size);
void sq_filter_bind(sqlite3_stmt *st, const authcert_agent_filter *f, int base);

/* sqlite_queue.c */
authcert_status sq_enqueue(void *impl, const char *const *ids, size_t n,
                           const char *command, const char *args_json,
                           time_t now, int64_t *command_id, uint64_t *deliveries);
authcert_status sq_enqueue_matching(void *impl, const authcert_agent_filter *f,
                                    const char *command, const char *args_json,
                                    const char *key, time_t now, int64_t *command_id,
                                    uint64_t *deliveries);
authcert_status sq_pending(void *impl, const char *agent_id, authcert_delivery_cb cb,
                           void *ctx);
authcert_status sq_claim(void *impl, unsigned limit, unsigned lease_seconds, time_t now,
                         authcert_delivery_cb cb, void *ctx, size_t *claimed);
authcert_status sq_claim_agent(void *impl, const char *agent_id, unsigned limit,
                               unsigned lease_seconds, time_t now,
                               authcert_delivery_cb cb, void *ctx, size_t *claimed);
authcert_status sq_record_result(void *impl, int64_t delivery_id,
                                 authcert_delivery_state state, const char *result_json,
                                 time_t now);
authcert_status sq_record_results(void *impl, authcert_delivery_outcome *o, size_t n,
                                  time_t now);
authcert_status sq_record_agent_result(void *impl, const char *agent_id, int64_t did,
                                       authcert_delivery_state state,
                                       const char *result_json, time_t now,
                                       int64_t *delivery_id);
authcert_status sq_results(void *impl, int64_t command_id, authcert_delivery_cb cb,
                           void *ctx);

/* sqlite_nodes.c */
authcert_status sq_node_report(void *impl, const char *node_id, const char *thumbprint,
                               time_t now);
authcert_status sq_foreach_node(void *impl, time_t since, authcert_node_cb cb, void *ctx);

#endif
