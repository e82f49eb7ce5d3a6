/*
 * Copy a registry between backends (authcert/registry_copy.h).
 *
 * Both ends are opened through authcert_registry_open first, so that each
 * is checked (ours, not from a newer authcert) and brought to the current
 * schema version; the copy then speaks to both databases directly, table
 * by table, because the schema is the same on both (sqlite.c, pg.c) and
 * rows must keep their ids, which no registry function writes. Rows
 * travel as text: SQLite's INTEGER affinity and PostgreSQL's bigint read
 * them back exactly. Into PostgreSQL they go with COPY FROM STDIN, and the
 * sequences are moved past the copied ids afterwards.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "authcert/registry.h"
#include "authcert/registry_copy.h"
#include "internal.h"

#define MAXCOLS 17

typedef struct table {
    const char *name;
    const char *cols;
    int ncols;
    const char *where; /* which rows travel */
    const char *order; /* in which order */
} table;

static const table tables[] = {
    { "agents", "id, agent_id, hostname, address, port, thumbprint, version, first_seen, "
      "last_seen, key_pin, key_spki, key_epoch, mac_counter, enrolled_at, clone_pin, "
      "clone_seen_at, known_before", 17, "true", "id" },
    { "enroll_tokens", "id, hash, agent_id, uses_left, uses, created_at, expires_at, "
      "last_used_at, revoked", 9, "true", "id" },
    { "enroll_pending", "agent_id, key_pin, key_spki, hostname, address, port, version, "
      "requested_at, last_seen, approved", 10, "true", "agent_id, key_pin" },
    { "commands", "id, command, args, broadcast, created_at", 5,
      "id IN (SELECT command_id FROM deliveries WHERE state = 'queued')", "id" },
    { "deliveries", "id, command_id, agent, state, attempts, next_attempt_at, lease_until, "
      "lease_token, updated_at, result, once_key", 11, "state = 'queued'", "id" },
};
#define NTABLES (sizeof tables / sizeof tables[0])

typedef struct end {
    bool is_pg;
    sqlite3 *db;
    PGconn *pg;
    char name[96]; /* for messages: never a PostgreSQL URI (it may hold a password) */
} end;

static authcert_status sq_err(end *e, const char *what)
{
    return authcert_fail(AUTHCERT_E_IO, "%s: %s: %s", e->name, what, sqlite3_errmsg(e->db));
}

static authcert_status pg_err(end *e, PGresult *res, const char *what)
{
    char line[300];
    const char *m = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(e->pg);

    snprintf(line, sizeof line, "%s", m != NULL ? m : "");
    line[strcspn(line, "\n")] = '\0';
    return authcert_fail(AUTHCERT_E_IO, "%s: %s: %s", e->name, what, line);
}

static bool is_pg_uri(const char *uri)
{
    return strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0;
}

static authcert_status end_open(const char *uri, end *e)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_registry *reg = NULL;

    /* Checked, created or migrated as any open would. */
    GUARD(authcert_registry_open(uri, &reg));
    e->is_pg = is_pg_uri(uri);
    if (e->is_pg) {
        e->pg = PQconnectdb(uri);
        GUARD_ALLOC(e->pg);
        snprintf(e->name, sizeof e->name, "database %s on %s", PQdb(e->pg), PQhost(e->pg));
        if (PQstatus(e->pg) != CONNECTION_OK)
            GUARD(pg_err(e, NULL, "connect"));
        PQclear(PQexec(e->pg, "SET client_encoding = 'UTF8'"));
    } else {
        const char *path = strncmp(uri, "sqlite:", 7) == 0 ? uri + 7 : uri;
        snprintf(e->name, sizeof e->name, "%s", path);
        if (sqlite3_open_v2(path, &e->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
            GUARD(sq_err(e, "open"));
        sqlite3_busy_timeout(e->db, 5000);
    }
    rc = AUTHCERT_OK;
out:
    authcert_registry_close(reg);
    return rc;
}

static void end_close(end *e)
{
    if (e->pg != NULL)
        PQfinish(e->pg);
    sqlite3_close_v2(e->db);
}

static authcert_status exec(end *e, const char *sql)
{
    if (e->is_pg) {
        PGresult *r = PQexec(e->pg, sql);
        authcert_status rc = AUTHCERT_OK;

        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = pg_err(e, r, sql);
        PQclear(r);
        return rc;
    }
    return sqlite3_exec(e->db, sql, NULL, NULL, NULL) == SQLITE_OK ? AUTHCERT_OK
                                                                   : sq_err(e, sql);
}

static authcert_status count(end *e, const char *sql, uint64_t *n)
{
    authcert_status rc = AUTHCERT_OK;

    if (e->is_pg) {
        PGresult *r = PQexec(e->pg, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = pg_err(e, r, "count");
        else
            *n = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    } else {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(e->db, sql, -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
            rc = sq_err(e, "count");
        else
            *n = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return rc;
}

/* ---- the writing end ---------------------------------------------------- */

typedef struct writer {
    end *e;
    const table *t;
    sqlite3_stmt *ins;
    char *line;   /* a COPY text-format line being built */
    size_t cap;
    uint64_t rows;
} writer;

static authcert_status writer_begin(writer *w)
{
    char sql[512];

    if (w->e->is_pg) {
        PGresult *r;
        authcert_status rc = AUTHCERT_OK;

        snprintf(sql, sizeof sql, "COPY %s (%s) FROM STDIN", w->t->name, w->t->cols);
        r = PQexec(w->e->pg, sql);
        if (PQresultStatus(r) != PGRES_COPY_IN)
            rc = pg_err(w->e, r, sql);
        PQclear(r);
        return rc;
    }
    {
        char q[2 * MAXCOLS + 1] = "?";
        for (int i = 1; i < w->t->ncols; i++)
            strcat(q, ",?");
        snprintf(sql, sizeof sql, "INSERT INTO %s (%s) VALUES (%s)", w->t->name,
                 w->t->cols, q);
    }
    if (sqlite3_prepare_v2(w->e->db, sql, -1, &w->ins, NULL) != SQLITE_OK)
        return sq_err(w->e, "prepare");
    return AUTHCERT_OK;
}

/* COPY's text format: \N is NULL; backslash, tab, newline, CR escaped. */
static authcert_status copy_line(writer *w, const char *const *v)
{
    size_t need = 2, k = 0;

    for (int i = 0; i < w->t->ncols; i++)
        need += v[i] == NULL ? 3 : 2 * strlen(v[i]) + 1;
    if (need > w->cap) {
        char *p = realloc(w->line, need);
        if (p == NULL)
            return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
        w->line = p;
        w->cap = need;
    }
    for (int i = 0; i < w->t->ncols; i++) {
        if (i > 0)
            w->line[k++] = '\t';
        if (v[i] == NULL) {
            w->line[k++] = '\\';
            w->line[k++] = 'N';
            continue;
        }
        for (const char *s = v[i]; *s != '\0'; s++) {
            char c = *s;
            if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
                w->line[k++] = '\\';
                c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
            }
            w->line[k++] = c;
        }
    }
    w->line[k++] = '\n';
    if (PQputCopyData(w->e->pg, w->line, (int)k) != 1)
        return pg_err(w->e, NULL, "copy");
    return AUTHCERT_OK;
}

static authcert_status writer_row(void *ctx, const char *const *v)
{
    writer *w = ctx;

    w->rows++;
    if (w->e->is_pg)
        return copy_line(w, v);
    for (int i = 0; i < w->t->ncols; i++) {
        if (v[i] == NULL)
            sqlite3_bind_null(w->ins, i + 1);
        else
            sqlite3_bind_text(w->ins, i + 1, v[i], -1, SQLITE_TRANSIENT);
    }
    if (sqlite3_step(w->ins) != SQLITE_DONE) {
        authcert_status rc = sq_err(w->e, "insert");
        sqlite3_reset(w->ins);
        return rc;
    }
    sqlite3_reset(w->ins);
    return AUTHCERT_OK;
}

static authcert_status writer_end(writer *w, bool ok)
{
    authcert_status rc = AUTHCERT_OK;

    if (w->e->is_pg) {
        PGresult *r;
        if (PQputCopyEnd(w->e->pg, ok ? NULL : "aborted") != 1)
            rc = pg_err(w->e, NULL, "copy");
        while ((r = PQgetResult(w->e->pg)) != NULL) {
            if (ok && rc == AUTHCERT_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
                rc = pg_err(w->e, r, "copy");
            PQclear(r);
        }
    }
    sqlite3_finalize(w->ins);
    w->ins = NULL;
    free(w->line);
    w->line = NULL;
    w->cap = 0;
    return rc;
}

/* ---- the reading end ---------------------------------------------------- */

typedef authcert_status (*row_fn)(void *ctx, const char *const *v);

static authcert_status read_rows(end *e, const table *t, row_fn fn, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *v[MAXCOLS] = {NULL};
    char sql[512];
    sqlite3_stmt *st = NULL;
    PGresult *r = NULL;
    int s;

    snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE %s ORDER BY %s", t->cols, t->name,
             t->where, t->order);
    if (!e->is_pg) {
        if (sqlite3_prepare_v2(e->db, sql, -1, &st, NULL) != SQLITE_OK)
            GUARD(sq_err(e, "prepare"));
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            for (int i = 0; i < t->ncols; i++)
                v[i] = (const char *)sqlite3_column_text(st, i);
            GUARD(fn(ctx, v));
        }
        if (s != SQLITE_DONE)
            GUARD(sq_err(e, "read"));
        rc = AUTHCERT_OK;
        goto out;
    }
    {
        char declare[600];
        snprintf(declare, sizeof declare, "DECLARE authcert_copy NO SCROLL CURSOR FOR %s", sql);
        GUARD(exec(e, declare));
    }
    for (;;) {
        int n;
        r = PQexec(e->pg, "FETCH 1000 FROM authcert_copy");
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            GUARD(pg_err(e, r, "read"));
        if ((n = PQntuples(r)) == 0)
            break;
        for (int row = 0; row < n; row++) {
            for (int i = 0; i < t->ncols; i++)
                v[i] = PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
            GUARD(fn(ctx, v));
        }
        PQclear(r);
        r = NULL;
    }
    GUARD(exec(e, "CLOSE authcert_copy"));
    rc = AUTHCERT_OK;
out:
    PQclear(r);
    sqlite3_finalize(st);
    return rc;
}

/* ---- the copy ----------------------------------------------------------- */

static void rollback(end *e)
{
    if (e->is_pg ? PQtransactionStatus(e->pg) != PQTRANS_IDLE
                 : !sqlite3_get_autocommit(e->db))
        (void)exec(e, "ROLLBACK");
}

authcert_status authcert_registry_copy(const char *from_uri, const char *to_uri,
                                       authcert_registry_copy_stats *stats)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    end src = { 0 }, dst = { 0 };
    uint64_t want[NTABLES] = { 0 }, got[NTABLES] = { 0 }, busy = 0;
    writer w = { 0 };
    char sql[256];

    if (from_uri == NULL || to_uri == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "copy registry: missing argument");
    if (strcmp(from_uri, to_uri) == 0)
        return authcert_fail(AUTHCERT_E_USAGE, "the source and the destination are the same");
    GUARD(end_open(from_uri, &src));
    GUARD(end_open(to_uri, &dst));

    GUARD(exec(&src, src.is_pg ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                               : "BEGIN"));
    GUARD(exec(&dst, dst.is_pg ? "BEGIN" : "BEGIN IMMEDIATE"));
    if (dst.is_pg) /* one migration at a time, and no node writing meanwhile */
        GUARD(exec(&dst, "LOCK TABLE agents, commands, deliveries IN EXCLUSIVE MODE"));
    GUARD(count(&dst, "SELECT (SELECT count(*) FROM agents) + "
                "(SELECT count(*) FROM commands)", &busy));
    if (busy != 0)
        FAIL(AUTHCERT_E_POLICY, "%s already has agents or commands", dst.name);

    for (size_t i = 0; i < NTABLES; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s", tables[i].name,
                 tables[i].where);
        GUARD(count(&src, sql, &want[i]));
        w = (writer){ .e = &dst, .t = &tables[i] };
        GUARD(writer_begin(&w));
        rc = read_rows(&src, &tables[i], writer_row, &w);
        {
            authcert_status end_rc = writer_end(&w, rc == AUTHCERT_OK);
            if (rc == AUTHCERT_OK)
                rc = end_rc;
        }
        GUARD(rc);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[i].name);
        GUARD(count(&dst, sql, &got[i]));
        if (got[i] != want[i] || w.rows != want[i])
            FAIL(AUTHCERT_E_CORRUPT, "%s: %llu rows in the source, %llu "
                 "read, %llu in the destination", tables[i].name,
                 (unsigned long long)want[i], (unsigned long long)w.rows,
                 (unsigned long long)got[i]);
    }
    /* New rows on PostgreSQL must not take a copied id. */
    if (dst.is_pg)
        GUARD(exec(&dst, "SELECT setval(pg_get_serial_sequence('agents', 'id'), "
                   "coalesce((SELECT max(id) FROM agents), 0) + 1, false), "
                   "setval('authcert_ids', greatest(coalesce((SELECT max(id) FROM commands), "
                   "0), coalesce((SELECT max(id) FROM deliveries), 0)) + 1, false)"));
    GUARD(exec(&dst, "COMMIT"));
    (void)exec(&src, "COMMIT");
    if (stats != NULL) {
        stats->agents = got[0];
        stats->tokens = got[1];
        stats->pending = got[2];
        stats->commands = got[3];
        stats->deliveries = got[4];
    }
    rc = AUTHCERT_OK;
out:
    if (w.line != NULL || w.ins != NULL)
        (void)writer_end(&w, false);
    if (src.db != NULL || src.pg != NULL)
        rollback(&src);
    if (dst.db != NULL || dst.pg != NULL)
        rollback(&dst);
    end_close(&src);
    end_close(&dst);
    return rc;
}
