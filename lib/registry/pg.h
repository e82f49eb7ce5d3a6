/*
 * Private to the PostgreSQL registry backend: the handle and the helpers
 * that lib/registry/pg.c (connection, schema, agents) and
 * lib/registry/pg_queue.c (the command queue) share.
 */
#ifndef AUTHCERT_REGISTRY_PG_H
#define AUTHCERT_REGISTRY_PG_H

#include <libpq-fe.h>

#include "internal.h"
#include "registry/backend.h"

#define PG_AGENT_COLS "agent_id, hostname, address, port, thumbprint, version, " \
                      "first_seen, last_seen, key_pin"

typedef struct pg {
    PGconn *conn;
    char *name; /* "database D on H" for messages: never the URI (a password) */
    bool probe_prepared; /* claim_agent's probe is a prepared statement of conn */
} pg;

/* Parameters go as text: an int64 needs at most 20 characters and a sign. */
typedef char pg_int[24];
const char *pg_i64(pg_int buf, long long v);
long long pg_get_i64(const PGresult *res, int row, int col);

/*
 * The status a failed statement maps to (SQLSTATE classes: serialization
 * and lock failures are BUSY, connection and resource ones IO, privilege
 * PERM, a constraint USAGE), with the server's message as the detail.
 * res may be NULL (the connection's message is used).
 */
authcert_status pg_fail(pg *p, const PGresult *res, const char *what);

/*
 * Run sql with n text parameters (NULL entries are SQL NULLs). On success
 * *res (may be NULL: the result is dropped) is the caller's to PQclear.
 */
authcert_status pg_run(pg *p, const char *sql, int n, const char *const *params,
                       PGresult **res);
/* pg_run without parameters or result. */
authcert_status pg_cmd(pg *p, const char *sql);
/* Leave a failed transaction; the original error stays the detail. */
void pg_rollback(pg *p);

/* One row of a streamed query; the PGresult is valid during the call only. */
typedef authcert_status (*pg_row_cb)(const PGresult *res, int row, void *ctx);

/*
 * Run a SELECT through a cursor in one REPEATABLE READ READ ONLY
 * transaction (one snapshot), fetching a bounded batch at a time, so memory
 * does not grow with the rows; cb is called for each. *rows may be NULL.
 * Inside the caller's transaction when there is one (the caller ends it).
 */
authcert_status pg_stream(pg *p, const char *sql, int n, const char *const *params,
                          pg_row_cb cb, void *ctx, size_t *rows);

/*
 * Append a PostgreSQL text[] literal of v[0..n) to a growing buffer:
 * every element double-quoted, `"` and `\` escaped. Caller frees *buf.
 */
authcert_status pg_text_array(const char *const *v, size_t n, size_t stride, char **buf);

/*
 * An agent filter as " AND ..." over parameters $base .. $base+4;
 * pg_filter_params fills those PG_FILTER_PARAMS parameters from f (NULL: all).
 */
#define PG_FILTER_PARAMS 5
void pg_filter_sql(int base, char *out, size_t size);
void pg_filter_params(const authcert_agent_filter *f, const char **params, pg_int since,
                      pg_int before);

/*
 * pg_copy.c: every agent f lets through (NULL: all), in id order,
 * to cb, streamed with COPY; cb's status other than AUTHCERT_OK stops the
 * walk and is returned.
 */
authcert_status pg_copy_agents(pg *p, const authcert_agent_filter *f, authcert_agent_cb cb,
                               void *ctx);

/* pg_queue.c */
authcert_status pg_enqueue(void *impl, const char *const *ids, size_t n,
                           const char *command, const char *args_json,
                           time_t now, int64_t *command_id, uint64_t *deliveries);
authcert_status pg_enqueue_matching(void *impl, const authcert_agent_filter *f,
                                    const char *command, const char *args_json,
                                    const char *key, time_t now, int64_t *command_id,
                                    uint64_t *deliveries);
authcert_status pg_pending(void *impl, const char *agent_id, authcert_delivery_cb cb,
                           void *ctx);
authcert_status pg_claim(void *impl, unsigned limit, unsigned lease_seconds, time_t now,
                         authcert_delivery_cb cb, void *ctx, size_t *claimed);
authcert_status pg_claim_agent(void *impl, const char *agent_id, unsigned limit,
                               unsigned lease_seconds, time_t now,
                               authcert_delivery_cb cb, void *ctx, size_t *claimed);
authcert_status pg_record_result(void *impl, int64_t delivery_id,
                                 authcert_delivery_state state, const char *result_json,
                                 time_t now);
authcert_status pg_record_results(void *impl, authcert_delivery_outcome *o, size_t n,
                                  time_t now);
authcert_status pg_record_agent_result(void *impl, const char *agent_id, int64_t did,
                                       authcert_delivery_state state,
                                       const char *result_json, time_t now,
                                       int64_t *delivery_id);
authcert_status pg_results(void *impl, int64_t command_id, authcert_delivery_cb cb,
                           void *ctx);

/* pg_nodes.c */
authcert_status pg_node_report(void *impl, const char *node_id, const char *thumbprint,
                               time_t now);
authcert_status pg_foreach_node(void *impl, time_t since, authcert_node_cb cb, void *ctx);

#endif
