/*
 * The SQLite registry backend: one file, WAL, one connection per handle.
 *
 * Schema version 1 (PRAGMA user_version; PRAGMA application_id marks the
 * file as ours). docs/registry.md explains each column.
 *
 *   agents(id INTEGER PRIMARY KEY, agent_id TEXT UNIQUE, hostname, address,
 *          port, thumbprint, version, first_seen, last_seen)
 *   commands(id INTEGER PRIMARY KEY, command, args, broadcast, created_at)
 *   deliveries(id INTEGER PRIMARY KEY, command_id -> commands, agent -> agents,
 *          state queued|delivered|failed, attempts, next_attempt_at,
 *          lease_until, lease_token, updated_at, result)
 *
 * Why an integer rowid plus a UNIQUE text id rather than a TEXT PRIMARY KEY:
 * with random UUIDs a text key makes the table itself a b-tree ordered by a
 * random value, and inserts fall from ~590k to ~100k rows/s (DESIGN.md 8);
 * here only the narrow unique index takes the random order, the table grows
 * at its end, and deliveries point to agents by a small integer.
 *
 * Durability: WAL with synchronous=NORMAL, so a check-in commit costs no
 * fsync (the WAL is synced at checkpoints). A power cut can forget the last
 * check-ins, which only means the agents' last_seen is a little older until
 * they next check in. Enqueue and record_result switch the connection to
 * synchronous=FULL for their transaction: the WAL is fsynced before they
 * return, because an operator who was told "queued" must not lose the
 * command, and a recorded result decides that a command is not sent again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "internal.h"
#include "registry_backend.h"

#define APPLICATION_ID 0x41435247 /* "ACRG": authcert registry */
#define BUSY_TIMEOUT_MS 5000

static const char schema_v1[] =
    "CREATE TABLE agents ("
    " id INTEGER PRIMARY KEY,"
    " agent_id TEXT NOT NULL UNIQUE,"
    " hostname TEXT NOT NULL,"
    " address TEXT NOT NULL,"
    " port INTEGER NOT NULL,"
    " thumbprint TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL);"
    "CREATE INDEX agents_thumbprint ON agents(thumbprint);"
    "CREATE TABLE commands ("
    " id INTEGER PRIMARY KEY,"
    " command TEXT NOT NULL,"
    " args TEXT,"
    " broadcast INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE deliveries ("
    " id INTEGER PRIMARY KEY,"
    " command_id INTEGER NOT NULL REFERENCES commands(id),"
    " agent INTEGER NOT NULL REFERENCES agents(id),"
    " state TEXT NOT NULL DEFAULT 'queued'"
    "  CHECK (state IN ('queued', 'delivered', 'failed')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at INTEGER NOT NULL,"
    " lease_until INTEGER NOT NULL DEFAULT 0,"
    " lease_token INTEGER,"
    " updated_at INTEGER NOT NULL,"
    " result TEXT,"
    " UNIQUE (command_id, agent));"
    "CREATE INDEX deliveries_pending ON deliveries(agent, id) WHERE state = 'queued';"
    "CREATE INDEX deliveries_due ON deliveries(next_attempt_at, id) WHERE state = 'queued';"
    "CREATE INDEX deliveries_lease ON deliveries(lease_token) WHERE lease_token IS NOT NULL;";

/* Index i takes the schema from version i to i + 1. */
static const char *const migrations[] = { schema_v1 };
#define KNOWN_VERSION ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(KNOWN_VERSION == AUTHCERT_REGISTRY_SCHEMA_VERSION,
               "registry.h and the migrations disagree");

#define AGENT_COLS "agent_id, hostname, address, port, thumbprint, version, " \
                   "first_seen, last_seen"
#define DELIVERY_SELECT                                                     \
    "SELECT d.id, d.command_id, a.agent_id, a.address, a.port, c.command, " \
    "c.args, c.created_at, d.state, d.attempts, d.next_attempt_at, "        \
    "d.lease_until, d.updated_at, d.result FROM deliveries d "              \
    "JOIN commands c ON c.id = d.command_id JOIN agents a ON a.id = d.agent "

typedef struct sq {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *upsert;
} sq;

/* Leave with a SQLite failure (sql_fail sets the detail). */
#define SQL_FAIL(code, what)                                                \
    do {                                                                    \
        rc = sql_fail(s, (code), (what));                                   \
        goto out;                                                           \
    } while (0)

/* Map a SQLite result code to our categories, with its message as detail. */
static authcert_status sql_fail(sq *s, int code, const char *what)
{
    authcert_status st;

    switch (code & 0xff) {
    case SQLITE_BUSY: case SQLITE_LOCKED:        st = AUTHCERT_E_BUSY; break;
    case SQLITE_NOMEM:                           st = AUTHCERT_E_NOMEM; break;
    case SQLITE_IOERR: case SQLITE_FULL:
    case SQLITE_CANTOPEN: case SQLITE_PROTOCOL:  st = AUTHCERT_E_IO; break;
    case SQLITE_CORRUPT: case SQLITE_NOTADB:     st = AUTHCERT_E_CORRUPT; break;
    case SQLITE_READONLY: case SQLITE_PERM:
    case SQLITE_AUTH:                            st = AUTHCERT_E_PERM; break;
    case SQLITE_CONSTRAINT:                      st = AUTHCERT_E_USAGE; break;
    default:                                     st = AUTHCERT_E_INTERNAL; break;
    }
    if ((code & 0xff) == SQLITE_NOTADB)
        return authcert_fail(st, "registry %s: not a SQLite database (nothing was changed)",
                             s->path);
    return authcert_fail(st, "registry %s: %s: %s", s->path, what,
                         s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(code));
}

static authcert_status exec(sq *s, const char *sql)
{
    int r = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

    return r == SQLITE_OK ? AUTHCERT_OK : sql_fail(s, r, sql);
}

static authcert_status prepare(sq *s, const char *sql, sqlite3_stmt **st)
{
    int r = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

    return r == SQLITE_OK ? AUTHCERT_OK : sql_fail(s, r, "prepare");
}

/* Leave a transaction that failed; the original error stays the detail. */
static void rollback(sq *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static authcert_status pragma_int(sq *s, const char *sql, int *v)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sqlite3_stmt *st = NULL;
    int r;

    GUARD(prepare(s, sql, &st));
    r = sqlite3_step(st);
    if (r != SQLITE_ROW)
        SQL_FAIL(r, sql);
    *v = sqlite3_column_int(st, 0);
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/*
 * Is this our database, and which version? A fresh file (no objects) is
 * ours to create; any other SQLite database is refused before anything is
 * written to it (not even the switch to WAL).
 */
static authcert_status check_ours(sq *s, int *version, int *fresh)
{
    authcert_status rc;
    int app = 0, objects = 0;

    if ((rc = pragma_int(s, "PRAGMA user_version", version)) != AUTHCERT_OK)
        return rc;
    if ((rc = pragma_int(s, "PRAGMA application_id", &app)) != AUTHCERT_OK)
        return rc;
    if ((rc = pragma_int(s, "SELECT count(*) FROM sqlite_schema", &objects)) != AUTHCERT_OK)
        return rc;
    *fresh = app == 0 && *version == 0 && objects == 0;
    if (app != APPLICATION_ID && !*fresh)
        return authcert_fail(AUTHCERT_E_CORRUPT, "registry %s: a SQLite database, but "
                             "not an authcert registry (nothing was changed)", s->path);
    if (*version > KNOWN_VERSION)
        return authcert_fail(AUTHCERT_E_POLICY, "registry %s: schema version %d is newer "
                             "than this authcert knows (%d): upgrade authcert (nothing "
                             "was changed)", s->path, *version, KNOWN_VERSION);
    return AUTHCERT_OK;
}

/* Create or migrate, under the write lock so two openers cannot race. */
static authcert_status migrate(sq *s)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    int version, fresh;
    char sql[64];

    GUARD(exec(s, "BEGIN IMMEDIATE"));
    GUARD(check_ours(s, &version, &fresh));
    for (; version < KNOWN_VERSION; version++)
        GUARD(exec(s, migrations[version]));
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", KNOWN_VERSION);
    GUARD(exec(s, sql));
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d", APPLICATION_ID);
    GUARD(exec(s, sql));
    GUARD(exec(s, "COMMIT"));
    rc = AUTHCERT_OK;
out:
    if (rc != AUTHCERT_OK)
        rollback(s);
    return rc;
}

static void sq_close(void *impl)
{
    sq *s = impl;

    if (s == NULL)
        return;
    sqlite3_finalize(s->upsert);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

static authcert_status sq_open(const char *path, void **impl)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = NULL;
    int version = 0, fresh = 0, r, fd;

    GUARD_ALLOC(s = calloc(1, sizeof *s));
    GUARD_ALLOC(s->path = strdup(path));

    /* SQLite would create it 0644; agent inventories are nobody else's business. */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        FAIL(errno == ENOENT ? AUTHCERT_E_NOTFOUND :
             errno == EACCES || errno == EPERM || errno == EROFS ? AUTHCERT_E_PERM :
             AUTHCERT_E_IO, "registry %s: %s", path, strerror(errno));
    close(fd);

    r = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL);
    if (r != SQLITE_OK)
        SQL_FAIL(r, "open");
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);

    /* The first read of the header tells a foreign file apart. */
    GUARD(check_ours(s, &version, &fresh));

    GUARD(exec(s, "PRAGMA journal_mode = WAL"));
    GUARD(exec(s, "PRAGMA synchronous = NORMAL"));
    GUARD(exec(s, "PRAGMA foreign_keys = ON"));
    /*
     * New agents land at random places in the agent_id index. Measured with
     * 1M agents in batches of 500: a 32 MB page cache and checkpoints every
     * ~40 MB of WAL (not every 4 MB) take first check-ins from ~15k to
     * ~57k/s; repeat check-ins run at ~170k/s (bench/registry_bench.c).
     */
    GUARD(exec(s, "PRAGMA cache_size = -32768"));
    GUARD(exec(s, "PRAGMA wal_autocheckpoint = 10000"));
    if (version != KNOWN_VERSION || fresh)
        GUARD(migrate(s));

    r = sqlite3_prepare_v3(s->db,
        "INSERT INTO agents(" AGENT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) "
        "ON CONFLICT(agent_id) DO UPDATE SET hostname = excluded.hostname, "
        "address = excluded.address, port = excluded.port, "
        "thumbprint = excluded.thumbprint, version = excluded.version, "
        "last_seen = excluded.last_seen", -1, SQLITE_PREPARE_PERSISTENT,
        &s->upsert, NULL);
    if (r != SQLITE_OK)
        SQL_FAIL(r, "prepare check-in");
    *impl = s;
    s = NULL;
    rc = AUTHCERT_OK;
out:
    sq_close(s);
    return rc;
}

static authcert_status sq_schema_version(void *impl, int *version)
{
    return pragma_int(impl, "PRAGMA user_version", version);
}

/* ---- agents ---------------------------------------------------------- */

static const char *txt(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    return t != NULL ? (const char *)t : "";
}

static void row_agent(sqlite3_stmt *st, authcert_agent *a)
{
    a->agent_id = txt(st, 0);
    a->hostname = txt(st, 1);
    a->address = txt(st, 2);
    a->port = (uint16_t)sqlite3_column_int(st, 3);
    a->thumbprint = txt(st, 4);
    a->version = txt(st, 5);
    a->first_seen = (time_t)sqlite3_column_int64(st, 6);
    a->last_seen = (time_t)sqlite3_column_int64(st, 7);
}

static authcert_status sq_checkin(void *impl, const authcert_agent_report *reports,
                                  size_t n, time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = s->upsert;
    int r;

    if (n > 1)
        GUARD(exec(s, "BEGIN IMMEDIATE"));
    for (size_t i = 0; i < n; i++) {
        const authcert_agent_report *p = &reports[i];

        sqlite3_bind_text(st, 1, p->agent_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p->hostname, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, p->address, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, p->port);
        sqlite3_bind_text(st, 5, p->thumbprint != NULL ? p->thumbprint : "", -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(st, 6, p->version != NULL ? p->version : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)now);
        r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
            SQL_FAIL(r, "check-in");
    }
    if (n > 1)
        GUARD(exec(s, "COMMIT"));
    rc = AUTHCERT_OK;
out:
    sqlite3_clear_bindings(st);
    if (rc != AUTHCERT_OK)
        rollback(s);
    return rc;
}

/* Step st to the end, handing each row to cb as an agent. */
static authcert_status stream_agents(sq *s, sqlite3_stmt *st, authcert_agent_cb cb,
                                     void *ctx, size_t *rows)
{
    authcert_agent a;
    authcert_status rc;
    int r;

    *rows = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        row_agent(st, &a);
        ++*rows;
        if ((rc = cb(ctx, &a)) != AUTHCERT_OK)
            return rc;
    }
    return r == SQLITE_DONE ? AUTHCERT_OK : sql_fail(s, r, "read agents");
}

static authcert_status sq_get_agent(void *impl, const char *agent_id,
                                    authcert_agent_cb cb, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    size_t rows;

    GUARD(prepare(s, "SELECT " AGENT_COLS " FROM agents WHERE agent_id = ?1", &st));
    sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
    GUARD(stream_agents(s, st, cb, ctx, &rows));
    if (rows == 0)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: no agent %s", agent_id);
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static authcert_status sq_count_agents(void *impl, uint64_t *n)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    int r;

    GUARD(prepare(s, "SELECT count(*) FROM agents", &st));
    if ((r = sqlite3_step(st)) != SQLITE_ROW)
        SQL_FAIL(r, "count agents");
    *n = (uint64_t)sqlite3_column_int64(st, 0);
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static authcert_status sq_foreach_agent(void *impl, const authcert_agent_filter *f,
                                        authcert_agent_cb cb, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    char sql[512];
    size_t rows;

    snprintf(sql, sizeof sql, "SELECT " AGENT_COLS " FROM agents WHERE 1%s%s%s%s ORDER BY id",
             f != NULL && f->thumbprint != NULL ? " AND thumbprint = ?1" : "",
             f != NULL && f->not_thumbprint != NULL ? " AND thumbprint != ?2" : "",
             f != NULL && f->seen_since != 0 ? " AND last_seen >= ?3" : "",
             f != NULL && f->seen_before != 0 ? " AND last_seen < ?4" : "");
    GUARD(prepare(s, sql, &st));
    if (f != NULL) {
        if (f->thumbprint != NULL)
            sqlite3_bind_text(st, 1, f->thumbprint, -1, SQLITE_STATIC);
        if (f->not_thumbprint != NULL)
            sqlite3_bind_text(st, 2, f->not_thumbprint, -1, SQLITE_STATIC);
        if (f->seen_since != 0)
            sqlite3_bind_int64(st, 3, (sqlite3_int64)f->seen_since);
        if (f->seen_before != 0)
            sqlite3_bind_int64(st, 4, (sqlite3_int64)f->seen_before);
    }
    GUARD(stream_agents(s, st, cb, ctx, &rows));
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static authcert_status sq_count_by_thumbprint(void *impl, authcert_thumbprint_count_cb cb,
                                              void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    int r;

    GUARD(prepare(s, "SELECT thumbprint, count(*) FROM agents GROUP BY thumbprint", &st));
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        GUARD(cb(ctx, txt(st, 0), (uint64_t)sqlite3_column_int64(st, 1)));
    if (r != SQLITE_DONE)
        SQL_FAIL(r, "count by thumbprint");
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* ---- command queue --------------------------------------------------- */

/* Begin a transaction whose COMMIT fsyncs the WAL (see the top comment). */
static authcert_status begin_durable(sq *s)
{
    authcert_status rc = exec(s, "PRAGMA synchronous = FULL");

    if (rc == AUTHCERT_OK && (rc = exec(s, "BEGIN IMMEDIATE")) != AUTHCERT_OK)
        (void)exec(s, "PRAGMA synchronous = NORMAL");
    return rc;
}

/* Commit on success, roll back otherwise; back to cheap check-ins either way. */
static authcert_status end_durable(sq *s, authcert_status rc)
{
    if (rc == AUTHCERT_OK)
        rc = exec(s, "COMMIT");
    if (rc != AUTHCERT_OK)
        rollback(s);
    sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    return rc;
}

static authcert_status sq_enqueue(void *impl, const char *const *ids, size_t n,
                                  const char *command, const char *args_json,
                                  time_t now, int64_t *command_id, uint64_t *deliveries)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *cmd = NULL, *del = NULL;
    sqlite3_int64 id;
    uint64_t count = 0;
    int r;

    GUARD(begin_durable(s));
    GUARD(prepare(s, "INSERT INTO commands(command, args, broadcast, created_at) "
                  "VALUES (?1, ?2, ?3, ?4)", &cmd));
    sqlite3_bind_text(cmd, 1, command, -1, SQLITE_STATIC);
    if (args_json != NULL)
        sqlite3_bind_text(cmd, 2, args_json, -1, SQLITE_STATIC);
    sqlite3_bind_int(cmd, 3, ids == NULL);
    sqlite3_bind_int64(cmd, 4, (sqlite3_int64)now);
    if ((r = sqlite3_step(cmd)) != SQLITE_DONE)
        SQL_FAIL(r, "enqueue");
    id = sqlite3_last_insert_rowid(s->db);

    GUARD(prepare(s, ids == NULL
        ? "INSERT INTO deliveries(command_id, agent, next_attempt_at, updated_at) "
          "SELECT ?1, id, ?2, ?2 FROM agents ORDER BY id"
        : "INSERT INTO deliveries(command_id, agent, next_attempt_at, updated_at) "
          "SELECT ?1, id, ?2, ?2 FROM agents WHERE agent_id = ?3", &del));
    sqlite3_bind_int64(del, 1, id);
    sqlite3_bind_int64(del, 2, (sqlite3_int64)now);
    for (size_t i = 0; i < (ids == NULL ? 1 : n); i++) {
        if (ids != NULL)
            sqlite3_bind_text(del, 3, ids[i], -1, SQLITE_STATIC);
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
    sqlite3_finalize(cmd);
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
        d.agent_id = txt(st, 2);
        d.address = txt(st, 3);
        d.port = (uint16_t)sqlite3_column_int(st, 4);
        d.command = txt(st, 5);
        d.args_json = (const char *)sqlite3_column_text(st, 6);
        d.created_at = (time_t)sqlite3_column_int64(st, 7);
        d.state = state_of(txt(st, 8));
        d.attempts = (unsigned)sqlite3_column_int(st, 9);
        d.next_attempt_at = (time_t)sqlite3_column_int64(st, 10);
        d.lease_until = (time_t)sqlite3_column_int64(st, 11);
        d.updated_at = (time_t)sqlite3_column_int64(st, 12);
        d.result_json = (const char *)sqlite3_column_text(st, 13);
        ++*rows;
        if ((rc = cb(ctx, &d)) != AUTHCERT_OK)
            return rc;
    }
    return r == SQLITE_DONE ? AUTHCERT_OK : sql_fail(s, r, "read deliveries");
}

static authcert_status sq_pending(void *impl, const char *agent_id,
                                  authcert_delivery_cb cb, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;

    GUARD(prepare(s, DELIVERY_SELECT "WHERE d.agent = (SELECT id FROM agents "
                  "WHERE agent_id = ?1) AND d.state = 'queued' ORDER BY d.id", &st));
    sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
    GUARD(stream_deliveries(s, st, cb, ctx, NULL));
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/*
 * One UPDATE takes the lease (atomic on its own, and on PostgreSQL the same
 * shape with FOR UPDATE SKIP LOCKED), marking the rows with a random token;
 * the rows are then read back by that token outside any write transaction.
 * next_attempt_at moves to the lease's end too, so the due index only ever
 * holds deliveries that are really due.
 */
static authcert_status sq_claim(void *impl, unsigned limit, unsigned lease_seconds,
                                time_t now, authcert_delivery_cb cb, void *ctx,
                                size_t *claimed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *up = NULL, *st = NULL;
    sqlite3_int64 token;
    int r;

    sqlite3_randomness(sizeof token, &token);
    token |= 1; /* never 0, never confused with "no lease" */
    GUARD(prepare(s, "UPDATE deliveries SET lease_until = ?1, next_attempt_at = ?1, "
                  "lease_token = ?2, attempts = attempts + 1, updated_at = ?3 "
                  "WHERE id IN (SELECT id FROM deliveries WHERE state = 'queued' "
                  "AND next_attempt_at <= ?3 AND lease_until <= ?3 "
                  "ORDER BY next_attempt_at, id LIMIT ?4)", &up));
    sqlite3_bind_int64(up, 1, (sqlite3_int64)now + lease_seconds);
    sqlite3_bind_int64(up, 2, token);
    sqlite3_bind_int64(up, 3, (sqlite3_int64)now);
    sqlite3_bind_int(up, 4, (int)limit);
    if ((r = sqlite3_step(up)) != SQLITE_DONE)
        SQL_FAIL(r, "claim");
    if (sqlite3_changes(s->db) == 0) {
        *claimed = 0;
        rc = AUTHCERT_OK;
        goto out;
    }
    GUARD(prepare(s, DELIVERY_SELECT "WHERE d.lease_token = ?1 AND d.state = 'queued' "
                  "ORDER BY d.id", &st));
    sqlite3_bind_int64(st, 1, token);
    GUARD(stream_deliveries(s, st, cb, ctx, claimed));
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(up);
    sqlite3_finalize(st);
    return rc;
}

static authcert_status sq_record_result(void *impl, int64_t delivery_id,
                                        authcert_delivery_state state,
                                        const char *result_json, time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *get = NULL, *up = NULL;
    unsigned attempts;
    int r;

    GUARD(begin_durable(s));
    GUARD(prepare(s, "SELECT state, attempts, next_attempt_at FROM deliveries "
                  "WHERE id = ?1", &get));
    sqlite3_bind_int64(get, 1, delivery_id);
    r = sqlite3_step(get);
    if (r == SQLITE_DONE)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: no delivery %lld", (long long)delivery_id);
    if (r != SQLITE_ROW)
        SQL_FAIL(r, "record result");
    if (strcmp(txt(get, 0), "queued") != 0)
        FAIL(AUTHCERT_E_POLICY, "registry: delivery %lld is already %s (result kept)",
             (long long)delivery_id, txt(get, 0));
    attempts = (unsigned)sqlite3_column_int(get, 1);

    GUARD(prepare(s, "UPDATE deliveries SET state = ?2, result = ?3, updated_at = ?4, "
                  "next_attempt_at = ?5, lease_until = 0, lease_token = NULL "
                  "WHERE id = ?1", &up));
    sqlite3_bind_int64(up, 1, delivery_id);
    sqlite3_bind_text(up, 2, authcert_delivery_state_name(state), -1, SQLITE_STATIC);
    if (result_json != NULL)
        sqlite3_bind_text(up, 3, result_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(up, 4, (sqlite3_int64)now);
    sqlite3_bind_int64(up, 5, state == AUTHCERT_DELIVERY_QUEUED
                       ? (sqlite3_int64)(now + authcert_registry_backoff(attempts))
                       : sqlite3_column_int64(get, 2));
    if ((r = sqlite3_step(up)) != SQLITE_DONE)
        SQL_FAIL(r, "record result");
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(get);
    sqlite3_finalize(up);
    rc = end_durable(s, rc);
    return rc;
}

static authcert_status sq_results(void *impl, int64_t command_id,
                                  authcert_delivery_cb cb, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    int r;

    /* One read transaction: the existence check and the rows agree. */
    GUARD(exec(s, "BEGIN"));
    GUARD(prepare(s, "SELECT 1 FROM commands WHERE id = ?1", &st));
    sqlite3_bind_int64(st, 1, command_id);
    r = sqlite3_step(st);
    if (r == SQLITE_DONE)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: no command %lld", (long long)command_id);
    if (r != SQLITE_ROW)
        SQL_FAIL(r, "results");
    sqlite3_finalize(st);
    st = NULL;
    GUARD(prepare(s, DELIVERY_SELECT "WHERE d.command_id = ?1 ORDER BY d.agent", &st));
    sqlite3_bind_int64(st, 1, command_id);
    GUARD(stream_deliveries(s, st, cb, ctx, NULL));
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    rollback(s); /* read-only: ending it either way is the same */
    return rc;
}

const authcert_registry_backend authcert_registry_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .checkin = sq_checkin,
    .get_agent = sq_get_agent,
    .count_agents = sq_count_agents,
    .foreach_agent = sq_foreach_agent,
    .count_by_thumbprint = sq_count_by_thumbprint,
    .enqueue = sq_enqueue,
    .pending = sq_pending,
    .claim = sq_claim,
    .record_result = sq_record_result,
    .results = sq_results,
};
