/*
 * The PostgreSQL registry backend's command queue (pg.c has the
 * connection, the schema and the agents; docs/registry.md the rules, the
 * same as on SQLite: sqlite_queue.c).
 *
 * Several nodes claim from one queue. A claim is a plain read (is anything
 * there to take?) and, only when there is, one statement: a
 * MATERIALIZED CTE picks the rows with FOR UPDATE SKIP LOCKED (a row another
 * node is leasing at this very moment is skipped, not waited for), the
 * UPDATE stamps the lease, and RETURNING hands the rows back; the statement
 * commits before any callback runs. A lease is a time (lease_until), not a
 * lock held open: a node that dies mid-delivery leaves rows whose lease
 * simply ends, and the next claim on any node takes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "registry/pg.h"

#define DELIVERY_COLS                                                       \
    "d.id, d.command_id, a.agent_id, a.address, a.port, c.command, "        \
    "c.args, c.created_at, d.state, d.attempts, d.next_attempt_at, "        \
    "d.lease_until, d.updated_at, d.result, a.thumbprint, c.broadcast, "    \
    "a.key_pin "
#define DELIVERY_JOIN                                                       \
    "JOIN commands c ON c.id = d.command_id JOIN agents a ON a.id = d.agent "
#define DELIVERY_SELECT "SELECT " DELIVERY_COLS "FROM deliveries d " DELIVERY_JOIN

/* Begin a transaction whose COMMIT waits for the WAL flush (pg.c). */
static authcert_status begin_durable(pg *p)
{
    authcert_status rc = pg_cmd(p, "BEGIN");

    if (rc == AUTHCERT_OK && (rc = pg_cmd(p, "SET LOCAL synchronous_commit = on")) != AUTHCERT_OK)
        pg_rollback(p);
    return rc;
}

static authcert_status end_durable(pg *p, authcert_status rc)
{
    if (rc == AUTHCERT_OK)
        rc = pg_cmd(p, "COMMIT");
    if (rc != AUTHCERT_OK)
        pg_rollback(p);
    return rc;
}

static authcert_status insert_command(pg *p, const char *command, const char *args_json,
                                      int broadcast, time_t now, int64_t *id)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;
    pg_int t;
    const char *params[4] = { command, args_json, broadcast ? "1" : "0", pg_i64(t, now) };

    GUARD(pg_run(p, "INSERT INTO commands(command, args, broadcast, created_at) "
                 "VALUES ($1, $2, $3, $4) RETURNING id", 4, params, &res));
    *id = pg_get_i64(res, 0, 0);
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

/*
 * Why a list enqueue failed (after the rollback): the first agent, in list
 * order, that is unknown or repeats an earlier one, as SQLite reports it.
 */
static authcert_status explain_list(pg *p, const char *ids_array, authcert_status why)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;

    GUARD(pg_run(p, "SELECT x, missing FROM (SELECT u.x, u.o, a.id IS NULL AS missing, "
                 "row_number() OVER (PARTITION BY u.x ORDER BY u.o) AS k "
                 "FROM unnest($1::text[]) WITH ORDINALITY u(x, o) "
                 "LEFT JOIN agents a ON a.agent_id = u.x) s "
                 "WHERE missing OR k > 1 ORDER BY o LIMIT 1", 1, &ids_array, &res));
    if (PQntuples(res) == 0) {
        rc = why;
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
        FAIL(AUTHCERT_E_NOTFOUND, "enqueue: no agent %s (nothing queued)",
             PQgetvalue(res, 0, 0));
    FAIL(AUTHCERT_E_USAGE, "enqueue: agent %s is listed twice (nothing queued)",
         PQgetvalue(res, 0, 0));
out:
    PQclear(res);
    return rc;
}

authcert_status pg_enqueue(void *impl, const char *const *ids, size_t n,
                           const char *command, const char *args_json,
                           time_t now, int64_t *command_id, uint64_t *deliveries)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;
    PGresult *res = NULL;
    char *arr = NULL;
    int64_t id = 0;
    uint64_t count;
    pg_int cid, t;
    const char *params[3];

    if (ids != NULL)
        GUARD(pg_text_array(ids, n, sizeof *ids, &arr));
    GUARD(begin_durable(p));
    GUARD(insert_command(p, command, args_json, ids == NULL, now, &id));
    params[0] = pg_i64(cid, id);
    params[1] = pg_i64(t, now);
    params[2] = arr;
    rc = pg_run(p, ids == NULL
        ? "INSERT INTO deliveries(command_id, agent, next_attempt_at, updated_at) "
          "SELECT $1, id, CASE WHEN port = 0 THEN " AUTHCERT_REGISTRY_CHECKIN_ONLY
          " ELSE $2::bigint END, $2 FROM agents ORDER BY id"
        : "INSERT INTO deliveries(command_id, agent, next_attempt_at, updated_at) "
          "SELECT $1, a.id, CASE WHEN a.port = 0 THEN " AUTHCERT_REGISTRY_CHECKIN_ONLY
          " ELSE $2::bigint END, $2 FROM unnest($3::text[]) WITH ORDINALITY u(x, o) "
          "JOIN agents a ON a.agent_id = u.x ORDER BY u.o",
        ids == NULL ? 2 : 3, params, &res);
    if (rc != AUTHCERT_OK && ids != NULL) {
        pg_rollback(p);
        GUARD(explain_list(p, arr, rc));
    }
    GUARD(rc);
    count = strtoull(PQcmdTuples(res), NULL, 10);
    if (ids != NULL && count != n) {
        pg_rollback(p);
        GUARD(explain_list(p, arr, authcert_fail(AUTHCERT_E_NOTFOUND,
                                                 "enqueue: an agent is unknown")));
    }
    *command_id = id;
    if (deliveries != NULL)
        *deliveries = count;
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    free(arr);
    return end_durable(p, rc);
}

authcert_status pg_enqueue_matching(void *impl, const authcert_agent_filter *f,
                                    const char *command, const char *args_json,
                                    const char *key, time_t now, int64_t *command_id,
                                    uint64_t *deliveries)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;
    PGresult *res = NULL;
    int64_t id = 0;
    pg_int cid, t, since, before;
    const char *params[3 + PG_FILTER_PARAMS];
    char sql[1024], where[400];

    GUARD(begin_durable(p));
    GUARD(insert_command(p, command, args_json, 0, now, &id));
    params[0] = pg_i64(cid, id);
    params[1] = pg_i64(t, now);
    params[2] = key;
    pg_filter_params(f, params + 3, since, before);
    pg_filter_sql(4, where, sizeof where);
    /* The partial unique index deliveries_once makes a repeat a no-op. */
    snprintf(sql, sizeof sql,
             "INSERT INTO deliveries(command_id, agent, next_attempt_at, updated_at, "
             "once_key) SELECT $1, id, CASE WHEN port = 0 THEN " AUTHCERT_REGISTRY_CHECKIN_ONLY
             " ELSE $2::bigint END, $2, $3 FROM agents WHERE true%s ORDER BY id "
             "ON CONFLICT DO NOTHING", where);
    GUARD(pg_run(p, sql, 3 + PG_FILTER_PARAMS, params, &res));
    *command_id = id;
    if (deliveries != NULL)
        *deliveries = strtoull(PQcmdTuples(res), NULL, 10);
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return end_durable(p, rc);
}

static authcert_delivery_state state_of(const char *s)
{
    if (strcmp(s, "delivered") == 0)
        return AUTHCERT_DELIVERY_DELIVERED;
    if (strcmp(s, "failed") == 0)
        return AUTHCERT_DELIVERY_FAILED;
    return AUTHCERT_DELIVERY_QUEUED;
}

static const char *nullable(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

typedef struct delivery_ctx {
    authcert_delivery_cb cb;
    void *ctx;
} delivery_ctx;

static authcert_status delivery_row(const PGresult *res, int i, void *ctx)
{
    delivery_ctx *c = ctx;
    authcert_delivery d;

    d.id = pg_get_i64(res, i, 0);
    d.command_id = pg_get_i64(res, i, 1);
    d.agent_id = PQgetvalue(res, i, 2);
    d.address = PQgetvalue(res, i, 3);
    d.port = (uint16_t)pg_get_i64(res, i, 4);
    d.command = PQgetvalue(res, i, 5);
    d.args_json = nullable(res, i, 6);
    d.created_at = (time_t)pg_get_i64(res, i, 7);
    d.state = state_of(PQgetvalue(res, i, 8));
    d.attempts = (unsigned)pg_get_i64(res, i, 9);
    d.next_attempt_at = (time_t)pg_get_i64(res, i, 10);
    d.lease_until = (time_t)pg_get_i64(res, i, 11);
    d.updated_at = (time_t)pg_get_i64(res, i, 12);
    d.result_json = nullable(res, i, 13);
    d.thumbprint = PQgetvalue(res, i, 14);
    d.broadcast = pg_get_i64(res, i, 15) != 0;
    d.key_pin = PQgetvalue(res, i, 16);
    return c->cb(c->ctx, &d);
}

/* Every row of res to cb (a bounded result: one agent's, or one claim's). */
static authcert_status each_delivery(const PGresult *res, authcert_delivery_cb cb, void *ctx,
                                     size_t *rows)
{
    delivery_ctx c = { cb, ctx };
    authcert_status rc;
    int n = PQntuples(res);

    for (int i = 0; i < n; i++) {
        if (rows != NULL)
            ++*rows;
        if ((rc = delivery_row(res, i, &c)) != AUTHCERT_OK)
            return rc;
    }
    return AUTHCERT_OK;
}

authcert_status pg_pending(void *impl, const char *agent_id, authcert_delivery_cb cb,
                           void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;

    GUARD(pg_run(impl, DELIVERY_SELECT "WHERE d.agent = (SELECT id FROM agents "
                 "WHERE agent_id = $1) AND d.state = 'queued' ORDER BY d.id", 1, &agent_id,
                 &res));
    GUARD(each_delivery(res, cb, ctx, NULL));
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

static const char *lease_token(pg_int buf)
{
    long long token = 0;

    if (RAND_bytes((unsigned char *)&token, sizeof token) != 1)
        token = (long long)time(NULL) << 20;
    return pg_i64(buf, (token & 0x7fffffffffffffffLL) | 1);
}

/*
 * pick: the SELECT of the ids to lease (with $3 = now, $4 = limit, and any
 * further parameters); the lease is $1 (until), $2 (token).
 */
static authcert_status lease(pg *p, const char *pick, int n, const char *const *params,
                             authcert_delivery_cb cb, void *ctx, size_t *claimed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;
    char sql[1536];

    snprintf(sql, sizeof sql,
             "WITH pick AS MATERIALIZED (%s FOR UPDATE SKIP LOCKED), "
             "d AS (UPDATE deliveries u SET lease_until = $1, next_attempt_at = "
             AUTHCERT_REGISTRY_NEXT_ATTEMPT("u", "$1") ", "
             "lease_token = $2, attempts = u.attempts + 1, updated_at = $3 FROM pick "
             "WHERE u.id = pick.id RETURNING u.*) "
             "SELECT " DELIVERY_COLS "FROM d " DELIVERY_JOIN "ORDER BY d.id", pick);
    GUARD(pg_run(p, sql, n, params, &res));
    /* Committed (autocommit) before the first callback. */
    GUARD(each_delivery(res, cb, ctx, claimed));
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

/*
 * Whether a claim would find anything, by a plain read: most find nothing
 * (every check-in of an agent with nothing queued, the push thread every
 * 100 ms when idle), and the claim's UPDATE takes the table's write lock
 * (ROW EXCLUSIVE) even to change no row, so it would wait behind a SHARE or
 * EXCLUSIVE lock on deliveries (a CREATE INDEX, --migrate-registry's LOCK
 * TABLE) that readers pass, as SQLite's probe keeps off its write lock.
 */
static authcert_status anything(pg *p, const char *sql, int n, const char *const *params,
                                bool *found)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;

    GUARD(pg_run(p, sql, n, params, &res));
    *found = PQntuples(res) > 0;
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

authcert_status pg_claim(void *impl, unsigned limit, unsigned lease_seconds, time_t now,
                         authcert_delivery_cb cb, void *ctx, size_t *claimed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg_int until, token, t, lim;
    const char *params[4] = { pg_i64(until, (long long)now + lease_seconds), NULL,
                              pg_i64(t, now), pg_i64(lim, limit) };
    bool found = false;

    *claimed = 0;
    GUARD(anything(impl, "SELECT 1 FROM deliveries WHERE state = 'queued' "
                   "AND next_attempt_at <= $1::bigint AND lease_until <= $1::bigint LIMIT 1",
                   1, &params[2], &found));
    if (found) {
        params[1] = lease_token(token);
        GUARD(lease(impl, "SELECT id FROM deliveries WHERE state = 'queued' "
                    "AND next_attempt_at <= $3::bigint AND lease_until <= $3::bigint "
                    "ORDER BY next_attempt_at, id LIMIT $4", 4, params, cb, ctx, claimed));
    }
    rc = AUTHCERT_OK;
out:
    return rc;
}

/*
 * Whether the agent has a claimable delivery: a read first, as on SQLite,
 * since most check-ins find nothing. Every check-in runs it, so it is
 * prepared once per connection: parsing and planning the claim statement
 * for every check-in took most of the server's CPU.
 */
static authcert_status probe_agent(pg *p, const char *agent_id, time_t now, bool *any)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;
    pg_int t;
    const char *params[2] = { agent_id, pg_i64(t, now) };

    if (!p->probe_prepared) {
        res = PQprepare(p->conn, "authcert_probe_agent", "SELECT 1 FROM deliveries "
                        "WHERE agent = (SELECT id FROM agents WHERE agent_id = $1) "
                        "AND state = 'queued' AND lease_until <= $2::bigint LIMIT 1", 2, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = pg_fail(p, res, "claim");
            goto out;
        }
        PQclear(res);
        p->probe_prepared = true;
    }
    res = PQexecPrepared(p->conn, "authcert_probe_agent", 2, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(p, res, "claim");
        goto out;
    }
    *any = PQntuples(res) > 0;
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

authcert_status pg_claim_agent(void *impl, const char *agent_id, unsigned limit,
                               unsigned lease_seconds, time_t now,
                               authcert_delivery_cb cb, void *ctx, size_t *claimed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg_int until, token, t, lim;
    const char *params[5] = { pg_i64(until, (long long)now + lease_seconds), NULL,
                              pg_i64(t, now), pg_i64(lim, limit), agent_id };
    bool found = false;

    *claimed = 0;
    GUARD(probe_agent(impl, agent_id, now, &found));
    if (found) {
        params[1] = lease_token(token);
        GUARD(lease(impl, "SELECT id FROM deliveries WHERE agent = (SELECT id FROM agents "
                    "WHERE agent_id = $5) AND state = 'queued' AND lease_until <= $3::bigint "
                    "ORDER BY id LIMIT $4", 5, params, cb, ctx, claimed));
    }
    rc = AUTHCERT_OK;
out:
    return rc;
}

/*
 * Settle the delivery in the first row of res (locked FOR UPDATE by the
 * caller). checkin_only: put back (QUEUED) for claim_agent only.
 */
static authcert_status settle(pg *p, const PGresult *res, authcert_delivery_state state,
                              const char *result_json, bool checkin_only, time_t now)
{
    const char *was = PQgetvalue(res, 0, 1);
    unsigned attempts = (unsigned)pg_get_i64(res, 0, 2);
    long long next = pg_get_i64(res, 0, 3);
    pg_int t, nx;
    const char *params[5];

    if (strcmp(was, "queued") != 0)
        return authcert_fail(AUTHCERT_E_POLICY, "registry: delivery %s is already %s "
                             "(result kept)", PQgetvalue(res, 0, 0), was);
    if (state == AUTHCERT_DELIVERY_QUEUED)
        next = checkin_only ? AUTHCERT_REGISTRY_CHECKIN_ONLY_AT
                            : (long long)now + authcert_registry_backoff(attempts);
    params[0] = PQgetvalue(res, 0, 0);
    params[1] = authcert_delivery_state_name(state);
    params[2] = result_json;
    params[3] = pg_i64(t, now);
    params[4] = pg_i64(nx, next);
    return pg_run(p, "UPDATE deliveries SET state = $2, result = $3, updated_at = $4, "
                  "next_attempt_at = CASE WHEN $2 = 'queued' THEN "
                  AUTHCERT_REGISTRY_NEXT_ATTEMPT("deliveries", "$5::bigint")
                  " ELSE $5::bigint END, lease_until = 0, lease_token = NULL WHERE id = $1",
                  5, params, NULL);
}

/*
 * Lock delivery id and settle it (inside the caller's durable transaction).
 * NOTFOUND and POLICY are found before any write, so the transaction stays
 * usable for the next one (record_results).
 */
static authcert_status record_one(pg *p, int64_t delivery_id, authcert_delivery_state state,
                                  const char *result_json, bool checkin_only, time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;
    pg_int id;
    const char *param = pg_i64(id, delivery_id);

    GUARD(pg_run(p, "SELECT id, state, attempts, next_attempt_at FROM deliveries "
                 "WHERE id = $1 FOR UPDATE", 1, &param, &res));
    if (PQntuples(res) == 0)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: no delivery %lld", (long long)delivery_id);
    rc = settle(p, res, state, result_json, checkin_only, now);
out:
    PQclear(res);
    return rc;
}

authcert_status pg_record_result(void *impl, int64_t delivery_id,
                                 authcert_delivery_state state, const char *result_json,
                                 time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;

    GUARD(begin_durable(p));
    rc = record_one(p, delivery_id, state, result_json, false, now);
out:
    return end_durable(p, rc);
}

authcert_status pg_record_results(void *impl, authcert_delivery_outcome *o, size_t n,
                                  time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;

    GUARD(begin_durable(p));
    for (size_t i = 0; i < n; i++) {
        o[i].status = record_one(p, o[i].delivery_id, o[i].state, o[i].result_json,
                                 o[i].checkin_only, now);
        if (o[i].status != AUTHCERT_OK && o[i].status != AUTHCERT_E_NOTFOUND &&
            o[i].status != AUTHCERT_E_POLICY) {
            rc = o[i].status; /* the detail is set: none of them is recorded */
            goto out;
        }
    }
    rc = AUTHCERT_OK;
out:
    return end_durable(p, rc);
}

authcert_status pg_record_agent_result(void *impl, const char *agent_id, int64_t did,
                                       authcert_delivery_state state,
                                       const char *result_json, time_t now,
                                       int64_t *delivery_id)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;
    PGresult *res = NULL;
    pg_int d;
    const char *params[2] = { agent_id, pg_i64(d, did) };

    GUARD(begin_durable(p));
    GUARD(pg_run(p, "SELECT d.id, d.state, d.attempts, d.next_attempt_at, d.lease_until "
                 "FROM deliveries d JOIN commands c ON c.id = d.command_id "
                 "WHERE d.agent = (SELECT id FROM agents WHERE agent_id = $1) "
                 "AND ((d.id = $2 AND c.broadcast = 0) OR "
                 "(d.command_id = $2 AND c.broadcast = 1)) FOR UPDATE OF d",
                 2, params, &res));
    if (PQntuples(res) == 0)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: agent %s has no delivery %lld", agent_id,
             (long long)did);
    /* Only while the agent holds its lease (sqlite_queue.c says why). */
    if (strcmp(PQgetvalue(res, 0, 1), "queued") == 0 &&
        (pg_get_i64(res, 0, 2) == 0 || pg_get_i64(res, 0, 4) < (long long)now))
        FAIL(AUTHCERT_E_POLICY, "registry: delivery %lld is not leased to agent %s",
             pg_get_i64(res, 0, 0), agent_id);
    GUARD(settle(p, res, state, result_json, false, now));
    if (delivery_id != NULL)
        *delivery_id = pg_get_i64(res, 0, 0);
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return end_durable(p, rc);
}

authcert_status pg_results(void *impl, int64_t command_id, authcert_delivery_cb cb,
                           void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;
    PGresult *res = NULL;
    pg_int id;
    const char *param = pg_i64(id, command_id);
    delivery_ctx c = { cb, ctx };

    /* One snapshot: the existence check and the rows agree. */
    GUARD(pg_cmd(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    GUARD(pg_run(p, "SELECT 1 FROM commands WHERE id = $1", 1, &param, &res));
    if (PQntuples(res) == 0)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: no command %lld", (long long)command_id);
    GUARD(pg_stream(p, DELIVERY_SELECT "WHERE d.command_id = $1 ORDER BY d.agent", 1,
                    &param, delivery_row, &c, NULL));
    GUARD(pg_cmd(p, "COMMIT"));
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    if (rc != AUTHCERT_OK)
        pg_rollback(p);
    return rc;
}
