/*
 * The SQLite registry backend: one file, WAL, one connection per handle.
 *
 * Schema version 4 (PRAGMA user_version; PRAGMA application_id marks the
 * file as ours). docs/registry.md explains each column. The command queue
 * is in sqlite_queue.c.
 *
 *   agents(id INTEGER PRIMARY KEY, agent_id TEXT UNIQUE, hostname, address,
 *          port, thumbprint, version, first_seen, last_seen, key_pin)
 *   commands(id INTEGER PRIMARY KEY, command, args, broadcast, created_at)
 *   deliveries(id INTEGER PRIMARY KEY, command_id -> commands, agent -> agents,
 *          state queued|delivered|failed, attempts, next_attempt_at,
 *          lease_until, lease_token, updated_at, result, once_key)
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

#include "authcert/trusted_path.h"
#include "registry/sqlite.h"

#define APPLICATION_ID 0x41435247 /* "ACRG": authcert registry */
#define BUSY_TIMEOUT_MS 5000
/* Page cache sizes (negative: KiB), see sq_open and sq_foreach_agent. */
#define READER_CACHE "-4096"
#define WRITER_CACHE "-16384"
#define SCAN_CACHE "-1024"

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

/*
 * Version 2: an idempotency key on deliveries, so that a command queued
 * "once per agent" (the daemon's proactive update-key) cannot pile up: at
 * most one QUEUED delivery per (agent, key). (commands.broadcast is already
 * in version 1.) Existing rows get NULL: no key.
 */
static const char schema_v2[] =
    "ALTER TABLE deliveries ADD COLUMN once_key TEXT;"
    "CREATE UNIQUE INDEX deliveries_once ON deliveries(agent, once_key)"
    " WHERE state = 'queued' AND once_key IS NOT NULL;";

/*
 * Version 3: the pin of the key each agent's listener serves TLS with, the
 * first one it reported ('' until then, and for every existing agent).
 */
static const char schema_v3[] =
    "ALTER TABLE agents ADD COLUMN key_pin TEXT NOT NULL DEFAULT '';";

/*
 * Version 4: who each agent is (authcert/identity.h, docs/registry.md): the
 * key bound to its id, the epoch of that key, the highest request counter
 * accepted, the last other key that asked for a bound id; the enrollment
 * tokens (the SHA-256 of their secrets, never the secrets) and the requests
 * waiting for an operator. Every existing agent checked in before it could
 * enroll: known_before = 1 (so is any row a check-in creates).
 */
static const char schema_v4[] =
    "ALTER TABLE agents ADD COLUMN key_spki TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE agents ADD COLUMN key_epoch INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN mac_counter INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN enrolled_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN clone_pin TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE agents ADD COLUMN clone_seen_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN known_before INTEGER NOT NULL DEFAULT 1;"
    "CREATE TABLE enroll_tokens ("
    " id TEXT PRIMARY KEY,"
    " hash TEXT NOT NULL,"
    " agent_id TEXT,"
    " uses_left INTEGER NOT NULL,"
    " uses INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " last_used_at INTEGER NOT NULL DEFAULT 0,"
    " revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE enroll_pending ("
    " agent_id TEXT NOT NULL,"
    " key_pin TEXT NOT NULL,"
    " key_spki TEXT NOT NULL,"
    " hostname TEXT NOT NULL,"
    " address TEXT NOT NULL,"
    " port INTEGER NOT NULL,"
    " version TEXT NOT NULL,"
    " requested_at INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " approved INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (agent_id, key_pin));";

/* Index i takes the schema from version i to i + 1. */
static const char *const migrations[] = { schema_v1, schema_v2, schema_v3, schema_v4 };
#define KNOWN_VERSION ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(KNOWN_VERSION == AUTHCERT_REGISTRY_SCHEMA_VERSION,
               "registry.h and the migrations disagree");

/* Map a SQLite result code to our categories, with its message as detail. */
authcert_status sq_fail(sq *s, int code, const char *what)
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

authcert_status sq_exec(sq *s, const char *sql)
{
    int r = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

    return r == SQLITE_OK ? AUTHCERT_OK : sq_fail(s, r, sql);
}

authcert_status sq_prepare(sq *s, const char *sql, sqlite3_stmt **st)
{
    int r = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

    return r == SQLITE_OK ? AUTHCERT_OK : sq_fail(s, r, "prepare");
}

authcert_status sq_cached(sq *s, enum sq_stmt which, const char *sql, sqlite3_stmt **st)
{
    int r;

    if (s->stmt[which] == NULL) {
        r = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[which],
                               NULL);
        if (r != SQLITE_OK)
            return sq_fail(s, r, "prepare");
    }
    sqlite3_reset(s->stmt[which]);
    sqlite3_clear_bindings(s->stmt[which]);
    *st = s->stmt[which];
    return AUTHCERT_OK;
}

void sq_rollback(sq *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static authcert_status pragma_int(sq *s, const char *sql, int *v)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sqlite3_stmt *st = NULL;
    int r;

    GUARD(sq_prepare(s, sql, &st));
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
    int version = 0, fresh = 0;
    char sql[64];

    GUARD(sq_exec(s, "BEGIN IMMEDIATE"));
    GUARD(check_ours(s, &version, &fresh));
    for (; version < KNOWN_VERSION; version++)
        GUARD(sq_exec(s, migrations[version]));
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", KNOWN_VERSION);
    GUARD(sq_exec(s, sql));
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d", APPLICATION_ID);
    GUARD(sq_exec(s, sql));
    GUARD(sq_exec(s, "COMMIT"));
    rc = AUTHCERT_OK;
out:
    if (rc != AUTHCERT_OK)
        sq_rollback(s);
    return rc;
}

static void sq_close(void *impl)
{
    sq *s = impl;

    if (s == NULL)
        return;
    for (int i = 0; i < SQ_STMT_MAX; i++)
        sqlite3_finalize(s->stmt[i]);
    for (int i = 0; i < SQ_SQL_CACHE; i++)
        sqlite3_finalize(s->cache[i].st);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

/*
 * The registry file, its -wal and -shm, and every folder above are root's
 * or ours and nobody else can write them (authcert/trusted_path.h): another
 * user who could swap the file could hand authcertd agents, commands and
 * key pins of their choosing.
 */
static authcert_status registry_trusted(const char *path)
{
    static const char *const suffix[] = { "", "-wal", "-shm" };
    char dir[4096], file[4200];
    const char *slash = strrchr(path, '/');
    authcert_status rc;

    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    rc = authcert_path_trusted(dir, geteuid());
    if (rc == AUTHCERT_E_NOTFOUND)
        return AUTHCERT_OK; /* open says what is missing */
    if (rc != AUTHCERT_OK)
        return authcert_fail(rc, "registry %s: not safe: %s", path, authcert_detail());
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        snprintf(file, sizeof file, "%s%s", path, suffix[i]);
        rc = authcert_entry_trusted(file, geteuid(), false);
        if (rc != AUTHCERT_OK && rc != AUTHCERT_E_NOTFOUND)
            return authcert_fail(rc, "registry %s: not safe: %s", path, authcert_detail());
    }
    return AUTHCERT_OK;
}

static authcert_status sq_open(const char *path, void **impl)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = NULL;
    int version = 0, fresh = 0, r, fd;

    GUARD(registry_trusted(path));
    GUARD_ALLOC(s = calloc(1, sizeof *s));
    GUARD_ALLOC(s->path = strdup(path));

    /*
     * SQLite would create it 0644; agent inventories are nobody else's
     * business. Only when it does not exist yet: closing any descriptor of
     * a file drops every POSIX lock this process holds on it, which would
     * pull the locks from under another open handle of the same registry.
     */
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    else if (errno != EEXIST)
        FAIL(errno == ENOENT ? AUTHCERT_E_NOTFOUND :
             errno == EACCES || errno == EPERM || errno == EROFS ? AUTHCERT_E_PERM :
             AUTHCERT_E_IO, "registry %s: %s", path, strerror(errno));

    r = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL);
    if (r != SQLITE_OK)
        SQL_FAIL(r, "open");
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);

    /* The first read of the header tells a foreign file apart. */
    GUARD(check_ours(s, &version, &fresh));

    GUARD(sq_exec(s, "PRAGMA journal_mode = WAL"));
    GUARD(sq_exec(s, "PRAGMA synchronous = NORMAL"));
    GUARD(sq_exec(s, "PRAGMA foreign_keys = ON"));
    /*
     * New agents land at random places in the agent_id index. Measured with
     * 1M agents in batches of 500: a 32 MB page cache and checkpoints every
     * ~40 MB of WAL (not every 4 MB) take first check-ins from ~15k to
     * ~57k/s; repeat check-ins run at ~170k/s. That cache is for the handle
     * that writes check-in batches (sq_checkin switches to it); the others
     * (a daemon's request threads, the push thread, the admin tool) read a
     * few pages each time and keep a small one: authcertd has a handle per
     * thread, and four 32 MiB caches took it to 85 MiB with 1M agents.
     */
    GUARD(sq_exec(s, "PRAGMA cache_size = " READER_CACHE));

    GUARD(sq_exec(s, "PRAGMA wal_autocheckpoint = 10000"));
    if (version != KNOWN_VERSION || fresh)
        GUARD(migrate(s));

    /* The first pin an agent id reports stays (docs/registry.md, key_pin). */
    r = sqlite3_prepare_v3(s->db,
        "INSERT INTO agents(" AGENT_COLS ", mac_counter) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9) "
        "ON CONFLICT(agent_id) DO UPDATE SET hostname = excluded.hostname, "
        "address = excluded.address, port = excluded.port, "
        "thumbprint = excluded.thumbprint, version = excluded.version, "
        "last_seen = excluded.last_seen, key_pin = CASE WHEN agents.key_pin = '' "
        "THEN excluded.key_pin ELSE agents.key_pin END, "
        "mac_counter = max(agents.mac_counter, excluded.mac_counter)", -1,
        SQLITE_PREPARE_PERSISTENT,
        &s->stmt[SQ_UPSERT], NULL);
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

void sq_filter_sql(const authcert_agent_filter *f, int base, char *out, size_t size)
{
    char p[4][32] = { "", "", "", "" };

    if (f != NULL) {
        if (f->thumbprint != NULL)
            snprintf(p[0], sizeof p[0], " AND thumbprint = ?%d", base);
        if (f->not_thumbprint != NULL)
            snprintf(p[1], sizeof p[1], " AND thumbprint != ?%d", base + 1);
        if (f->seen_since != 0)
            snprintf(p[2], sizeof p[2], " AND last_seen >= ?%d", base + 2);
        if (f->seen_before != 0)
            snprintf(p[3], sizeof p[3], " AND last_seen < ?%d", base + 3);
    }
    snprintf(out, size, "%s%s%s%s%s", p[0], p[1], p[2], p[3],
             f != NULL && f->listening ? " AND port != 0" : "");
}

void sq_filter_bind(sqlite3_stmt *st, const authcert_agent_filter *f, int base)
{
    if (f == NULL)
        return;
    if (f->thumbprint != NULL)
        sqlite3_bind_text(st, base, f->thumbprint, -1, SQLITE_STATIC);
    if (f->not_thumbprint != NULL)
        sqlite3_bind_text(st, base + 1, f->not_thumbprint, -1, SQLITE_STATIC);
    if (f->seen_since != 0)
        sqlite3_bind_int64(st, base + 2, (sqlite3_int64)f->seen_since);
    if (f->seen_before != 0)
        sqlite3_bind_int64(st, base + 3, (sqlite3_int64)f->seen_before);
}

const char *sq_txt(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    return t != NULL ? (const char *)t : "";
}

static void row_agent(sqlite3_stmt *st, authcert_agent *a)
{
    a->agent_id = sq_txt(st, 0);
    a->hostname = sq_txt(st, 1);
    a->address = sq_txt(st, 2);
    a->port = (uint16_t)sqlite3_column_int(st, 3);
    a->thumbprint = sq_txt(st, 4);
    a->version = sq_txt(st, 5);
    a->first_seen = (time_t)sqlite3_column_int64(st, 6);
    a->last_seen = (time_t)sqlite3_column_int64(st, 7);
    a->key_pin = sq_txt(st, 8);
    a->key_epoch = (uint64_t)sqlite3_column_int64(st, 9);
    a->clone_pin = sq_txt(st, 10);
}

static authcert_status sq_checkin(void *impl, const authcert_agent_report *reports,
                                  size_t n, time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = s->stmt[SQ_UPSERT];
    int r;

    if (n > 1 && !s->writer) { /* the batch writer: sq_open */
        GUARD(sq_exec(s, "PRAGMA cache_size = " WRITER_CACHE));
        s->writer = true;
    }
    if (n > 1)
        GUARD(sq_exec(s, "BEGIN IMMEDIATE"));
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
        sqlite3_bind_text(st, 8, p->key_pin != NULL ? p->key_pin : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, (sqlite3_int64)p->mac_counter);
        r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
            SQL_FAIL(r, "check-in");
    }
    if (n > 1)
        GUARD(sq_exec(s, "COMMIT"));
    rc = AUTHCERT_OK;
out:
    sqlite3_clear_bindings(st);
    if (rc != AUTHCERT_OK)
        sq_rollback(s);
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
    return r == SQLITE_DONE ? AUTHCERT_OK : sq_fail(s, r, "read agents");
}

static authcert_status sq_get_agent(void *impl, const char *agent_id,
                                    authcert_agent_cb cb, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    size_t rows;

    GUARD(sq_prepare(s, "SELECT " AGENT_SELECT " FROM agents WHERE agent_id = ?1", &st));
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

    GUARD(sq_prepare(s, "SELECT count(*) FROM agents", &st));
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
    char sql[512], where[256];
    size_t rows;
    bool scan = false;

    sq_filter_sql(f, 1, where, sizeof where);
    snprintf(sql, sizeof sql, "SELECT " AGENT_SELECT " FROM agents WHERE 1%s ORDER BY id", where);
    GUARD(sq_prepare(s, sql, &st));
    sq_filter_bind(st, f, 1);
    /*
     * A one-pass scan reads each page once: the writer's 32 MiB cache would
     * only fill up (authcert -l over 1M agents: 41 MiB peak and slower than
     * sqlite3 itself, bench/README.md). A small one for the scan's duration.
     */
    GUARD(sq_exec(s, "PRAGMA cache_size = " SCAN_CACHE));
    scan = true;
    GUARD(stream_agents(s, st, cb, ctx, &rows));
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    if (scan) {
        sqlite3_exec(s->db, s->writer ? "PRAGMA cache_size = " WRITER_CACHE
                                      : "PRAGMA cache_size = " READER_CACHE, NULL, NULL, NULL);
    }
    return rc;
}

static authcert_status sq_count_by_thumbprint(void *impl, authcert_thumbprint_count_cb cb,
                                              void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    int r;

    GUARD(sq_prepare(s, "SELECT thumbprint, count(*) FROM agents GROUP BY thumbprint", &st));
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        GUARD(cb(ctx, sq_txt(st, 0), (uint64_t)sqlite3_column_int64(st, 1)));
    if (r != SQLITE_DONE)
        SQL_FAIL(r, "count by thumbprint");
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static authcert_status sq_update_thumbprint(void *impl, const char *agent_id,
                                            const char *from, const char *to, bool *changed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    int r;

    GUARD(sq_prepare(s, "UPDATE agents SET thumbprint = ?3 WHERE agent_id = ?1 "
                     "AND thumbprint = ?2", &st));
    sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
    if ((r = sqlite3_step(st)) != SQLITE_DONE)
        SQL_FAIL(r, "update thumbprint");
    *changed = sqlite3_changes(s->db) > 0;
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* ---- portable SQL (identity.c) ----------------------------------------- */

/* The statement for sql, prepared once per handle and kept by its pointer. */
static authcert_status cached_sql(sq *s, const char *sql, sqlite3_stmt **st, bool *own)
{
    int r, i;

    *own = false;
    for (i = 0; i < SQ_SQL_CACHE && s->cache[i].sql != NULL; i++) {
        if (s->cache[i].sql == sql) {
            sqlite3_reset(s->cache[i].st);
            sqlite3_clear_bindings(s->cache[i].st);
            *st = s->cache[i].st;
            return AUTHCERT_OK;
        }
    }
    r = sqlite3_prepare_v3(s->db, sql, -1, i < SQ_SQL_CACHE ? SQLITE_PREPARE_PERSISTENT : 0,
                           st, NULL);
    if (r != SQLITE_OK)
        return sq_fail(s, r, "prepare");
    if (i < SQ_SQL_CACHE) {
        s->cache[i].sql = sql;
        s->cache[i].st = *st;
    } else {
        *own = true; /* a full cache: finalized after use */
    }
    return AUTHCERT_OK;
}

static authcert_status sq_sql(void *impl, const char *sql, const reg_value *p, int n,
                              reg_row_cb cb, void *ctx, uint64_t *changes)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    const char *cols[16];
    bool own = false;
    int r, nc;

    GUARD(cached_sql(s, sql, &st, &own));
    for (int i = 0; i < n; i++) {
        if (p[i].text != NULL)
            sqlite3_bind_text(st, i + 1, p[i].text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, i + 1, (sqlite3_int64)p[i].num);
    }
    nc = sqlite3_column_count(st);
    if (nc > 16)
        FAIL(AUTHCERT_E_INTERNAL, "registry: a query of %d columns", nc);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < nc; i++)
            cols[i] = sq_txt(st, i);
        if (cb != NULL)
            GUARD(cb(ctx, cols, nc));
    }
    if (r != SQLITE_DONE)
        SQL_FAIL(r, "identity");
    if (changes != NULL)
        *changes = (uint64_t)sqlite3_changes(s->db);
    rc = AUTHCERT_OK;
out:
    if (own)
        sqlite3_finalize(st);
    else if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    return rc;
}

/* Durable like an enqueue (sqlite_queue.c): the COMMIT fsyncs the WAL. */
static authcert_status sq_tx(void *impl, enum reg_tx what)
{
    sq *s = impl;
    authcert_status rc;

    switch (what) {
    case REG_BEGIN:
        if ((rc = sq_exec(s, "PRAGMA synchronous = FULL")) != AUTHCERT_OK)
            return rc;
        if ((rc = sq_exec(s, "BEGIN IMMEDIATE")) != AUTHCERT_OK)
            sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        return rc;
    case REG_COMMIT:
        rc = sq_exec(s, "COMMIT");
        if (rc != AUTHCERT_OK)
            sq_rollback(s);
        sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        return rc;
    case REG_ROLLBACK:
        sq_rollback(s);
        sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        return AUTHCERT_OK;
    }
    return AUTHCERT_E_INTERNAL;
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
    .enqueue_matching = sq_enqueue_matching,
    .pending = sq_pending,
    .claim = sq_claim,
    .claim_agent = sq_claim_agent,
    .record_result = sq_record_result,
    .record_results = sq_record_results,
    .record_agent_result = sq_record_agent_result,
    .update_thumbprint = sq_update_thumbprint,
    .results = sq_results,
    .node_report = sq_node_report,
    .foreach_node = sq_foreach_node,
    .sql = sq_sql,
    .tx = sq_tx,
    .row_locks = false,
};
