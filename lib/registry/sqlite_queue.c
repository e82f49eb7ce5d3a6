/*
 * The SQLite registry backend's command queue (sqlite.c has the
 * file, the schema and the agents; docs/registry.md the rules).
 *
 * Leases: a delivery is taken by one UPDATE that stamps lease_until and a
 * random lease_token, and is then read back by that token outside any write
 * transaction. The push thread claims due deliveries of any agent (claim);
 * a check-in claims its own agent's (claim_agent). Both only take rows whose
 * lease has ended, so a command is never out both ways at once; on
 * PostgreSQL the same UPDATEs take FOR UPDATE SKIP LOCKED in the subquery.
 *
 * Ids: commands and deliveries are numbered from one sequence (the next id
 * is one past the largest of both tables, under the write lock; on
 * PostgreSQL one SEQUENCE for both), so the `did` an agent echoes names
 * either a delivery or a broadcast command, never both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/sqlite.h"

#define DELIVERY_SELECT                                                     \
    "SELECT d.id, d.command_id, a.agent_id, a.address, a.port, c.command, " \
    "c.args, c.created_at, d.state, d.attempts, d.next_attempt_at, "        \
    "d.lease_until, d.updated_at, d.result, a.thumbprint, c.broadcast, "    \
    "a.key_pin FROM deliveries d "                                          \
    "JOIN commands c ON c.id = d.command_id JOIN agents a ON a.id = d.agent "

/* Begin a transaction whose COMMIT fsyncs the WAL (sqlite.c's top). */
static authcert_status begin_durable(sq *s)
{
    authcert_status rc = sq_exec(s, "PRAGMA synchronous = FULL");

    if (rc == AUTHCERT_OK && (rc = sq_exec(s, "BEGIN IMMEDIATE")) != AUTHCERT_OK)
        (void)sq_exec(s, "PRAGMA synchronous = NORMAL");
    return rc;
}

/* Commit on success, roll back otherwise; back to cheap check-ins either way. */
static authcert_status end_durable(sq *s, authcert_status rc)
{
    if (rc == AUTHCERT_OK)
        rc = sq_exec(s, "COMMIT");
    if (rc != AUTHCERT_OK)
        sq_rollback(s);
    sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    return rc;
}

/* Insert the command row with the next id of the shared sequence. */
static authcert_status insert_command(sq *s, const char *command, const char *args_json,
                                      int broadcast, time_t now, sqlite3_int64 *id)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sqlite3_stmt *cmd = NULL;
    int r;

    GUARD(sq_prepare(s, "INSERT INTO commands(id, command, args, broadcast, created_at) "
                     "VALUES (1 + max(coalesce((SELECT max(id) FROM commands), 0), "
                     "coalesce((SELECT max(id) FROM deliveries), 0)), ?1, ?2, ?3, ?4)",
                     &cmd));
    sqlite3_bind_text(cmd, 1, command, -1, SQLITE_STATIC);
    if (args_json != NULL)
        sqlite3_bind_text(cmd, 2, args_json, -1, SQLITE_STATIC);
    sqlite3_bind_int(cmd, 3, broadcast);
    sqlite3_bind_int64(cmd, 4, (sqlite3_int64)now);
    if ((r = sqlite3_step(cmd)) != SQLITE_DONE)
        SQL_FAIL(r, "enqueue");
    *id = sqlite3_last_insert_rowid(s->db);
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(cmd);
    return rc;
}

authcert_status sq_enqueue(void *impl, const char *const *ids, size_t n,
                           const char *command, const char *args_json,
                           time_t now, int64_t *command_id, uint64_t *deliveries)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *del = NULL;
    sqlite3_int64 id = 0;
    uint64_t count = 0;
    int r;

    GUARD(begin_durable(s));
    GUARD(insert_command(s, command, args_json, ids == NULL, now, &id));
    /* The deliveries take the ids right after their command's. */
    GUARD(sq_prepare(s, ids == NULL
        ? "INSERT INTO deliveries(id, command_id, agent, next_attempt_at, updated_at) "
          "SELECT ?1 + row_number() OVER (ORDER BY id), ?1, id, "
          "CASE WHEN port = 0 THEN " AUTHCERT_REGISTRY_CHECKIN_ONLY " ELSE ?2 END, ?2 "
          "FROM agents ORDER BY id"
        : "INSERT INTO deliveries(id, command_id, agent, next_attempt_at, updated_at) "
          "SELECT ?1 + ?4, ?1, id, CASE WHEN port = 0 THEN " AUTHCERT_REGISTRY_CHECKIN_ONLY
          " ELSE ?2 END, ?2 FROM agents WHERE agent_id = ?3", &del));
    sqlite3_bind_int64(del, 1, id);
    sqlite3_bind_int64(del, 2, (sqlite3_int64)now);
    for (size_t i = 0; i < (ids == NULL ? 1 : n); i++) {
        if (ids != NULL) {
            sqlite3_bind_text(del, 3, ids[i], -1, SQLITE_STATIC);
            sqlite3_bind_int64(del, 4, (sqlite3_int64)i + 1);
        }
        r = sqlite3_step(del);
        sqlite3_reset(del);
        if (r == SQLITE_CONSTRAINT_UNIQUE)
            FAIL(AUTHCERT_E_USAGE, "enqueue: agent %s is listed twice (nothing queued)",
                 ids[i]);
        if (r != SQLITE_DONE)
            SQL_FAIL(r, "enqueue");
        if (ids != NULL && sqlite3_changes(s->db) == 0)
            FAIL(AUTHCERT_E_NOTFOUND, "enqueue: no agent %s (nothing queued)", ids[i]);
        count += (uint64_t)sqlite3_changes64(s->db);
    }
    *command_id = id;
    if (deliveries != NULL)
        *deliveries = count;
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(del);
    rc = end_durable(s, rc);
    return rc;
}

authcert_status sq_enqueue_matching(void *impl, const authcert_agent_filter *f,
                                    const char *command, const char *args_json,
                                    const char *key, time_t now, int64_t *command_id,
                                    uint64_t *deliveries)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *del = NULL;
    sqlite3_int64 id = 0;
    char sql[768], where[256];
    int r;

    GUARD(begin_durable(s));
    GUARD(insert_command(s, command, args_json, 0, now, &id));
    /*
     * One statement whatever the fleet's size. The partial unique index
     * deliveries_once(agent, once_key) WHERE state = 'queued' turns a second
     * delivery with the same key into a no-op (the row_number gap is harmless).
     */
    sq_filter_sql(f, 11, where, sizeof where);
    snprintf(sql, sizeof sql,
             "INSERT INTO deliveries(id, command_id, agent, next_attempt_at, updated_at, "
             "once_key) SELECT ?1 + row_number() OVER (ORDER BY id), ?1, id, "
             "CASE WHEN port = 0 THEN " AUTHCERT_REGISTRY_CHECKIN_ONLY " ELSE ?2 END, ?2, ?3 "
             "FROM agents WHERE 1%s ORDER BY id ON CONFLICT DO NOTHING", where);
    GUARD(sq_prepare(s, sql, &del));
    sqlite3_bind_int64(del, 1, id);
    sqlite3_bind_int64(del, 2, (sqlite3_int64)now);
    if (key != NULL)
        sqlite3_bind_text(del, 3, key, -1, SQLITE_STATIC);
    sq_filter_bind(del, f, 11);
    if ((r = sqlite3_step(del)) != SQLITE_DONE)
        SQL_FAIL(r, "enqueue");
    *command_id = id;
    if (deliveries != NULL)
        *deliveries = (uint64_t)sqlite3_changes64(s->db);
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(del);
    rc = end_durable(s, rc);
    return rc;
}

static authcert_delivery_state state_of(const char *s)
{
    if (strcmp(s, "delivered") == 0)
        return AUTHCERT_DELIVERY_DELIVERED;
    if (strcmp(s, "failed") == 0)
        return AUTHCERT_DELIVERY_FAILED;
    return AUTHCERT_DELIVERY_QUEUED;
}

static authcert_status stream_deliveries(sq *s, sqlite3_stmt *st, authcert_delivery_cb cb,
                                         void *ctx, size_t *rows)
{
    authcert_delivery d;
    authcert_status rc;
    size_t dummy;
    int r;

    if (rows == NULL)
        rows = &dummy;
    *rows = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        d.id = sqlite3_column_int64(st, 0);
        d.command_id = sqlite3_column_int64(st, 1);
        d.agent_id = sq_txt(st, 2);
        d.address = sq_txt(st, 3);
        d.port = (uint16_t)sqlite3_column_int(st, 4);
        d.command = sq_txt(st, 5);
        d.args_json = (const char *)sqlite3_column_text(st, 6);
        d.created_at = (time_t)sqlite3_column_int64(st, 7);
        d.state = state_of(sq_txt(st, 8));
        d.attempts = (unsigned)sqlite3_column_int(st, 9);
        d.next_attempt_at = (time_t)sqlite3_column_int64(st, 10);
        d.lease_until = (time_t)sqlite3_column_int64(st, 11);
        d.updated_at = (time_t)sqlite3_column_int64(st, 12);
        d.result_json = (const char *)sqlite3_column_text(st, 13);
        d.thumbprint = sq_txt(st, 14);
        d.broadcast = sqlite3_column_int(st, 15) != 0;
        d.key_pin = sq_txt(st, 16);
        ++*rows;
        if ((rc = cb(ctx, &d)) != AUTHCERT_OK)
            return rc;
    }
    return r == SQLITE_DONE ? AUTHCERT_OK : sq_fail(s, r, "read deliveries");
}

authcert_status sq_pending(void *impl, const char *agent_id, authcert_delivery_cb cb,
                           void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;

    GUARD(sq_prepare(s, DELIVERY_SELECT "WHERE d.agent = (SELECT id FROM agents "
                     "WHERE agent_id = ?1) AND d.state = 'queued' ORDER BY d.id", &st));
    sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
    GUARD(stream_deliveries(s, st, cb, ctx, NULL));
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Hand the rows leased under token to cb (the lease is committed already). */
static authcert_status read_leased(sq *s, sqlite3_int64 token, authcert_delivery_cb cb,
                                   void *ctx, size_t *claimed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sqlite3_stmt *st = NULL;

    GUARD(sq_cached(s, SQ_READ_LEASED, DELIVERY_SELECT "WHERE d.lease_token = ?1 "
                    "AND d.state = 'queued' ORDER BY d.id", &st));
    sqlite3_bind_int64(st, 1, token);
    rc = stream_deliveries(s, st, cb, ctx, claimed);
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

static sqlite3_int64 lease_token(void)
{
    sqlite3_int64 token;

    sqlite3_randomness(sizeof token, &token);
    return token | 1; /* never 0, never confused with "no lease" */
}

/*
 * next_attempt_at moves to the lease's end too, so the due index only ever
 * holds deliveries that are really due.
 */
authcert_status sq_claim(void *impl, unsigned limit, unsigned lease_seconds, time_t now,
                         authcert_delivery_cb cb, void *ctx, size_t *claimed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *probe = NULL, *up = NULL;
    sqlite3_int64 token = lease_token();
    int r;

    *claimed = 0;
    /*
     * A read on the due index first: the push thread asks often (every
     * 100 ms when idle, so that a command queued by another process goes out
     * at once), and an UPDATE would take the write lock even to find nothing.
     */
    GUARD(sq_cached(s, SQ_PROBE_DUE, "SELECT 1 FROM deliveries WHERE state = 'queued' "
                    "AND next_attempt_at <= ?1 LIMIT 1", &probe));
    sqlite3_bind_int64(probe, 1, (sqlite3_int64)now);
    r = sqlite3_step(probe);
    sqlite3_reset(probe);
    if (r == SQLITE_DONE) {
        rc = AUTHCERT_OK;
        goto out;
    }
    if (r != SQLITE_ROW)
        SQL_FAIL(r, "claim");
    GUARD(sq_cached(s, SQ_CLAIM, "UPDATE deliveries SET lease_until = ?1, next_attempt_at = "
                    AUTHCERT_REGISTRY_NEXT_ATTEMPT("deliveries", "?1") ", "
                    "lease_token = ?2, attempts = attempts + 1, updated_at = ?3 "
                    "WHERE id IN (SELECT id FROM deliveries WHERE state = 'queued' "
                    "AND next_attempt_at <= ?3 AND lease_until <= ?3 "
                    "ORDER BY next_attempt_at, id LIMIT ?4)", &up));
    sqlite3_bind_int64(up, 1, (sqlite3_int64)now + lease_seconds);
    sqlite3_bind_int64(up, 2, token);
    sqlite3_bind_int64(up, 3, (sqlite3_int64)now);
    sqlite3_bind_int(up, 4, (int)limit);
    r = sqlite3_step(up);
    sqlite3_reset(up);
    if (r != SQLITE_DONE)
        SQL_FAIL(r, "claim");
    if (sqlite3_changes(s->db) == 0) {
        rc = AUTHCERT_OK;
        goto out;
    }
    GUARD(read_leased(s, token, cb, ctx, claimed));
    rc = AUTHCERT_OK;
out:
    return rc;
}

/*
 * A read first: most check-ins find nothing, and an UPDATE would take the
 * write lock even when it changes no row (and queue behind the check-in
 * writer's batches).
 */
authcert_status sq_claim_agent(void *impl, const char *agent_id, unsigned limit,
                               unsigned lease_seconds, time_t now,
                               authcert_delivery_cb cb, void *ctx, size_t *claimed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *probe = NULL, *up = NULL;
    sqlite3_int64 token = lease_token();
    int r;

    *claimed = 0;
    GUARD(sq_cached(s, SQ_PROBE_AGENT, "SELECT 1 FROM deliveries WHERE agent = "
                    "(SELECT id FROM agents WHERE agent_id = ?1) AND state = 'queued' "
                    "AND lease_until <= ?2 LIMIT 1", &probe));
    sqlite3_bind_text(probe, 1, agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(probe, 2, (sqlite3_int64)now);
    r = sqlite3_step(probe);
    sqlite3_reset(probe);
    if (r == SQLITE_DONE) {
        rc = AUTHCERT_OK;
        goto out;
    }
    if (r != SQLITE_ROW)
        SQL_FAIL(r, "claim");

    GUARD(sq_cached(s, SQ_CLAIM_AGENT, "UPDATE deliveries SET lease_until = ?1, "
                    "next_attempt_at = " AUTHCERT_REGISTRY_NEXT_ATTEMPT("deliveries", "?1")
                    ", lease_token = ?2, attempts = attempts + 1, "
                    "updated_at = ?3 WHERE id IN (SELECT id FROM deliveries WHERE agent = "
                    "(SELECT id FROM agents WHERE agent_id = ?5) AND state = 'queued' "
                    "AND lease_until <= ?3 ORDER BY id LIMIT ?4)", &up));
    sqlite3_bind_int64(up, 1, (sqlite3_int64)now + lease_seconds);
    sqlite3_bind_int64(up, 2, token);
    sqlite3_bind_int64(up, 3, (sqlite3_int64)now);
    sqlite3_bind_int(up, 4, (int)limit);
    sqlite3_bind_text(up, 5, agent_id, -1, SQLITE_STATIC);
    r = sqlite3_step(up);
    sqlite3_reset(up);
    if (r != SQLITE_DONE)
        SQL_FAIL(r, "claim");
    if (sqlite3_changes(s->db) == 0) { /* another handle took them meanwhile */
        rc = AUTHCERT_OK;
        goto out;
    }
    GUARD(read_leased(s, token, cb, ctx, claimed));
    rc = AUTHCERT_OK;
out:
    return rc;
}

/*
 * Settle delivery id (inside the caller's durable transaction), given its
 * state, attempts and next attempt time as just read. checkin_only: put
 * back (QUEUED) for claim_agent only, as for an agent without a listener.
 */
static authcert_status settle(sq *s, sqlite3_int64 id, const char *was, unsigned attempts,
                              sqlite3_int64 next_attempt, authcert_delivery_state state,
                              const char *result_json, bool checkin_only, time_t now)
{
    sqlite3_int64 next = next_attempt;

    authcert_status rc = AUTHCERT_E_INTERNAL;
    sqlite3_stmt *up = NULL;
    int r;

    if (strcmp(was, "queued") != 0)
        FAIL(AUTHCERT_E_POLICY, "registry: delivery %lld is already %s (result kept)",
             (long long)id, was);
    if (state == AUTHCERT_DELIVERY_QUEUED)
        next = checkin_only ? AUTHCERT_REGISTRY_CHECKIN_ONLY_AT
                            : (sqlite3_int64)(now + authcert_registry_backoff(attempts));
    GUARD(sq_cached(s, SQ_SETTLE, "UPDATE deliveries SET state = ?2, result = ?3, "
                    "updated_at = ?4, next_attempt_at = CASE WHEN ?2 = 'queued' THEN "
                    AUTHCERT_REGISTRY_NEXT_ATTEMPT("deliveries", "?5") " ELSE ?5 END, "
                    "lease_until = 0, lease_token = NULL WHERE id = ?1", &up));
    sqlite3_bind_int64(up, 1, id);
    sqlite3_bind_text(up, 2, authcert_delivery_state_name(state), -1, SQLITE_STATIC);
    if (result_json != NULL)
        sqlite3_bind_text(up, 3, result_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(up, 4, (sqlite3_int64)now);
    sqlite3_bind_int64(up, 5, next);
    r = sqlite3_step(up);
    sqlite3_reset(up);
    sqlite3_clear_bindings(up);
    if (r != SQLITE_DONE)
        SQL_FAIL(r, "record result");
    rc = AUTHCERT_OK;
out:
    return rc;
}

/* Read delivery id and settle it (inside the caller's durable transaction). */
static authcert_status record_one(sq *s, int64_t delivery_id, authcert_delivery_state state,
                                  const char *result_json, bool checkin_only, time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sqlite3_stmt *get = NULL;
    char was[16];
    unsigned attempts = 0;
    sqlite3_int64 next_attempt = 0;
    int r;

    GUARD(sq_cached(s, SQ_GET_DELIVERY, "SELECT state, attempts, next_attempt_at "
                    "FROM deliveries WHERE id = ?1", &get));
    sqlite3_bind_int64(get, 1, delivery_id);
    r = sqlite3_step(get);
    if (r == SQLITE_ROW) {
        snprintf(was, sizeof was, "%s", sq_txt(get, 0));
        attempts = (unsigned)sqlite3_column_int(get, 1);
        next_attempt = sqlite3_column_int64(get, 2);
    }
    sqlite3_reset(get);
    if (r == SQLITE_DONE)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: no delivery %lld", (long long)delivery_id);
    if (r != SQLITE_ROW)
        SQL_FAIL(r, "record result");
    rc = settle(s, delivery_id, was, attempts, next_attempt, state, result_json, checkin_only,
                now);
out:
    return rc;
}

authcert_status sq_record_result(void *impl, int64_t delivery_id,
                                 authcert_delivery_state state, const char *result_json,
                                 time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;

    GUARD(begin_durable(s));
    rc = record_one(s, delivery_id, state, result_json, false, now);
out:
    return end_durable(s, rc);
}

authcert_status sq_record_results(void *impl, authcert_delivery_outcome *o, size_t n,
                                  time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;

    GUARD(begin_durable(s));
    for (size_t i = 0; i < n; i++) {
        o[i].status = record_one(s, o[i].delivery_id, o[i].state, o[i].result_json,
                                 o[i].checkin_only, now);
        if (o[i].status != AUTHCERT_OK && o[i].status != AUTHCERT_E_NOTFOUND &&
            o[i].status != AUTHCERT_E_POLICY) {
            rc = o[i].status; /* the detail is set: none of them is recorded */
            goto out;
        }
    }
    rc = AUTHCERT_OK;
out:
    return end_durable(s, rc);
}

authcert_status sq_record_agent_result(void *impl, const char *agent_id, int64_t did,
                                       authcert_delivery_state state,
                                       const char *result_json, time_t now,
                                       int64_t *delivery_id)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *get = NULL;
    sqlite3_int64 id;
    int r;

    GUARD(begin_durable(s));
    /* Two index lookups rather than an OR the planner would scan for. */
    GUARD(sq_prepare(s,
        "SELECT d.id, d.state, d.attempts, d.next_attempt_at, d.lease_until FROM deliveries d "
        "JOIN commands c ON c.id = d.command_id WHERE d.id = ?2 AND c.broadcast = 0 "
        "AND d.agent = (SELECT id FROM agents WHERE agent_id = ?1) "
        "UNION ALL "
        "SELECT d.id, d.state, d.attempts, d.next_attempt_at, d.lease_until FROM deliveries d "
        "JOIN commands c ON c.id = d.command_id WHERE d.command_id = ?2 "
        "AND c.broadcast = 1 AND d.agent = (SELECT id FROM agents WHERE agent_id = ?1)",
        &get));
    sqlite3_bind_text(get, 1, agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(get, 2, did);
    r = sqlite3_step(get);
    if (r == SQLITE_DONE)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: agent %s has no delivery %lld", agent_id,
             (long long)did);
    if (r != SQLITE_ROW)
        SQL_FAIL(r, "record result");
    id = sqlite3_column_int64(get, 0);
    /* A queued delivery takes a result only while the agent holds its lease:
     * never handed out, the agent cannot have run it (a guessed id); a lease
     * run out goes to the next claim, whose answer the agent's done-ring
     * gives again. A settled one is answered by settle (the first stands). */
    if (strcmp(sq_txt(get, 1), "queued") == 0 &&
        (sqlite3_column_int(get, 2) == 0 || sqlite3_column_int64(get, 4) < (sqlite3_int64)now))
        FAIL(AUTHCERT_E_POLICY, "registry: delivery %lld is not leased to agent %s",
             (long long)id, agent_id);
    GUARD(settle(s, id, sq_txt(get, 1), (unsigned)sqlite3_column_int(get, 2),
                 sqlite3_column_int64(get, 3), state, result_json, false, now));
    if (delivery_id != NULL)
        *delivery_id = id;
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(get);
    rc = end_durable(s, rc);
    return rc;
}

authcert_status sq_results(void *impl, int64_t command_id, authcert_delivery_cb cb,
                           void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    int r;

    /* One read transaction: the existence check and the rows agree. */
    GUARD(sq_exec(s, "BEGIN"));
    GUARD(sq_prepare(s, "SELECT 1 FROM commands WHERE id = ?1", &st));
    sqlite3_bind_int64(st, 1, command_id);
    r = sqlite3_step(st);
    if (r == SQLITE_DONE)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: no command %lld", (long long)command_id);
    if (r != SQLITE_ROW)
        SQL_FAIL(r, "results");
    sqlite3_finalize(st);
    st = NULL;
    GUARD(sq_prepare(s, DELIVERY_SELECT "WHERE d.command_id = ?1 ORDER BY d.agent", &st));
    sqlite3_bind_int64(st, 1, command_id);
    GUARD(stream_deliveries(s, st, cb, ctx, NULL));
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    sq_rollback(s); /* read-only: ending it either way is the same */
    return rc;
}
