/*
 * The PostgreSQL registry backend (libpq): the registry several authcertd
 * nodes share. One connection per handle; the command queue is in
 * pg_queue.c, the agent scan (COPY) in pg_copy.c, the rules in
 * docs/registry.md.
 *
 * Same schema as SQLite (sqlite.c), same version numbers, in the
 * connection's schema (search_path; `?options=-csearch_path%3Dx` in the URI
 * picks another). Integers are bigint seconds, as on SQLite, so the two
 * copy into each other unchanged (authcert --migrate-registry). Where SQLite
 * keeps the version in PRAGMA user_version and marks the file with
 * application_id, this keeps both in a table authcert_meta. Commands and
 * deliveries take their ids from one SEQUENCE authcert_ids (the `did` an
 * agent echoes names one or the other, never both).
 *
 * Several nodes open the same database at once: creating and migrating the
 * schema happens under an advisory lock, so the first
 * opener does it and the others wait and find it done.
 *
 * Durability, as on SQLite: the session runs with synchronous_commit off,
 * so a check-in commit does not wait for the WAL flush (a crash forgets at
 * most the last fraction of a second of last_seen updates); enqueue and
 * record_result turn it on for their transaction, because "queued" and a
 * recorded result must survive a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/pg.h"

#define APPLICATION "authcert registry"
#define MIGRATE_LOCK "1094931015" /* pg_advisory_lock key: "ACRG" */
#define FETCH_ROWS "1000"

static const char schema_v1[] =
    "CREATE TABLE authcert_meta (key text PRIMARY KEY, value text NOT NULL);"
    "CREATE SEQUENCE authcert_ids;"
    "CREATE TABLE agents ("
    " id bigserial PRIMARY KEY,"
    " agent_id text NOT NULL UNIQUE,"
    " hostname text NOT NULL,"
    " address text NOT NULL,"
    " port integer NOT NULL,"
    " thumbprint text NOT NULL,"
    " version text NOT NULL,"
    " first_seen bigint NOT NULL,"
    " last_seen bigint NOT NULL);"
    "CREATE INDEX agents_thumbprint ON agents(thumbprint);"
    "CREATE TABLE commands ("
    " id bigint PRIMARY KEY DEFAULT nextval('authcert_ids'),"
    " command text NOT NULL,"
    " args text,"
    " broadcast integer NOT NULL,"
    " created_at bigint NOT NULL);"
    "CREATE TABLE deliveries ("
    " id bigint PRIMARY KEY DEFAULT nextval('authcert_ids'),"
    " command_id bigint NOT NULL REFERENCES commands(id),"
    " agent bigint NOT NULL REFERENCES agents(id),"
    " state text NOT NULL DEFAULT 'queued'"
    "  CHECK (state IN ('queued', 'delivered', 'failed')),"
    " attempts integer NOT NULL DEFAULT 0,"
    " next_attempt_at bigint NOT NULL,"
    " lease_until bigint NOT NULL DEFAULT 0,"
    " lease_token bigint,"
    " updated_at bigint NOT NULL,"
    " result text,"
    " UNIQUE (command_id, agent));"
    "CREATE INDEX deliveries_pending ON deliveries(agent, id) WHERE state = 'queued';"
    "CREATE INDEX deliveries_due ON deliveries(next_attempt_at, id) WHERE state = 'queued';"
    "CREATE INDEX deliveries_lease ON deliveries(lease_token) WHERE lease_token IS NOT NULL;"
    "INSERT INTO authcert_meta VALUES ('application', '" APPLICATION "');";

/* Version 2, as on SQLite: an idempotency key (sqlite.c). */
static const char schema_v2[] =
    "ALTER TABLE deliveries ADD COLUMN once_key text;"
    "CREATE UNIQUE INDEX deliveries_once ON deliveries(agent, once_key)"
    " WHERE state = 'queued' AND once_key IS NOT NULL;";

/* Version 3, as on SQLite: the agent's key pin, '' for none (sqlite.c). */
static const char schema_v3[] =
    "ALTER TABLE agents ADD COLUMN key_pin text NOT NULL DEFAULT '';";

/* Version 4, as on SQLite: who each agent is (sqlite.c). */
static const char schema_v4[] =
    "ALTER TABLE agents ADD COLUMN key_spki text NOT NULL DEFAULT '',"
    " ADD COLUMN key_epoch bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN mac_counter bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN enrolled_at bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN clone_pin text NOT NULL DEFAULT '',"
    " ADD COLUMN clone_seen_at bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN known_before integer NOT NULL DEFAULT 1;"
    "CREATE TABLE enroll_tokens ("
    " id text PRIMARY KEY,"
    " hash text NOT NULL,"
    " agent_id text,"
    " uses_left bigint NOT NULL,"
    " uses bigint NOT NULL DEFAULT 0,"
    " created_at bigint NOT NULL,"
    " expires_at bigint NOT NULL,"
    " last_used_at bigint NOT NULL DEFAULT 0,"
    " revoked integer NOT NULL DEFAULT 0);"
    "CREATE TABLE enroll_pending ("
    " agent_id text NOT NULL,"
    " key_pin text NOT NULL,"
    " key_spki text NOT NULL,"
    " hostname text NOT NULL,"
    " address text NOT NULL,"
    " port integer NOT NULL,"
    " version text NOT NULL,"
    " requested_at bigint NOT NULL,"
    " last_seen bigint NOT NULL,"
    " approved integer NOT NULL DEFAULT 0,"
    " PRIMARY KEY (agent_id, key_pin));";

/* Index i takes the schema from version i to i + 1. */
static const char *const migrations[] = { schema_v1, schema_v2, schema_v3, schema_v4 };
#define KNOWN_VERSION ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(KNOWN_VERSION == AUTHCERT_REGISTRY_SCHEMA_VERSION,
               "registry.h and the PostgreSQL migrations disagree");

/* ---- helpers shared with pg_queue.c ------------------------------------- */

const char *pg_i64(pg_int buf, long long v)
{
    snprintf(buf, sizeof(pg_int), "%lld", v);
    return buf;
}

long long pg_get_i64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* The server's message without its trailing newline, one line. */
static const char *one_line(const char *msg, char *buf, size_t size)
{
    size_t i;

    snprintf(buf, size, "%s", msg != NULL && *msg != '\0' ? msg : "unknown error");
    for (i = 0; buf[i] != '\0'; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            break;
    buf[i] = '\0';
    return buf;
}

/*
 * A SQLSTATE's status: a whole code, or a two-character class. The first
 * match wins, so 57014 (query cancelled) is BUSY before class 57 is IO.
 */
static authcert_status sqlstate_status(const char *state)
{
    static const struct {
        const char *code;
        authcert_status st;
    } map[] = {
        {"40001", AUTHCERT_E_BUSY}, {"40P01", AUTHCERT_E_BUSY},
        {"55P03", AUTHCERT_E_BUSY}, {"57014", AUTHCERT_E_BUSY},
        {"08", AUTHCERT_E_IO},      {"53", AUTHCERT_E_IO},
        {"58", AUTHCERT_E_IO},      {"57", AUTHCERT_E_IO},
        {"28", AUTHCERT_E_PERM},    {"42501", AUTHCERT_E_PERM},
        {"25006", AUTHCERT_E_PERM}, {"23", AUTHCERT_E_USAGE},
        {"XX", AUTHCERT_E_CORRUPT},
    };

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t n = strlen(map[i].code);
        if (strncmp(state, map[i].code, n) == 0 && (n == 2 || state[n] == '\0'))
            return map[i].st;
    }
    return AUTHCERT_E_INTERNAL;
}

authcert_status pg_fail(pg *p, const PGresult *res, const char *what)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorMessage(res) : NULL;
    authcert_status st;
    char line[400];

    if (msg == NULL || *msg == '\0')
        msg = PQerrorMessage(p->conn);
    if (state == NULL || PQstatus(p->conn) != CONNECTION_OK)
        st = AUTHCERT_E_IO; /* no answer from the server: the connection */
    else
        st = sqlstate_status(state);
    return authcert_fail(st, "registry %s: %s: %s", p->name, what,
                         one_line(msg, line, sizeof line));
}

authcert_status pg_run(pg *p, const char *sql, int n, const char *const *params,
                       PGresult **res)
{
    /* The simple protocol when there are no parameters: a migration is
     * several statements in one string. */
    PGresult *r = n == 0 ? PQexec(p->conn, sql)
                         : PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    authcert_status rc;

    if (res != NULL)
        *res = NULL;
    if (r == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "registry %s: out of memory", p->name);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        rc = pg_fail(p, r, "query");
        PQclear(r);
        return rc;
    }
    if (res != NULL)
        *res = r;
    else
        PQclear(r);
    return AUTHCERT_OK;
}

authcert_status pg_cmd(pg *p, const char *sql)
{
    return pg_run(p, sql, 0, NULL, NULL);
}

void pg_rollback(pg *p)
{
    if (PQtransactionStatus(p->conn) != PQTRANS_IDLE)
        PQclear(PQexec(p->conn, "ROLLBACK"));
}

authcert_status pg_stream(pg *p, const char *sql, int n, const char *const *params,
                          pg_row_cb cb, void *ctx, size_t *rows)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;
    char *declare = NULL;
    size_t dummy;
    int got, own = PQtransactionStatus(p->conn) == PQTRANS_IDLE;

    if (rows == NULL)
        rows = &dummy;
    *rows = 0;
    GUARD_ALLOC(declare = malloc(strlen(sql) + 64));
    sprintf(declare, "DECLARE authcert_cursor NO SCROLL CURSOR FOR %s", sql);
    if (own)
        GUARD(pg_cmd(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    GUARD(pg_run(p, declare, n, params, NULL));
    do {
        GUARD(pg_run(p, "FETCH " FETCH_ROWS " FROM authcert_cursor", 0, NULL, &res));
        got = PQntuples(res);
        for (int i = 0; i < got; i++) {
            ++*rows;
            GUARD(cb(res, i, ctx));
        }
        PQclear(res);
        res = NULL;
    } while (got > 0);
    GUARD(pg_cmd(p, own ? "COMMIT" : "CLOSE authcert_cursor"));
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    free(declare);
    if (rc != AUTHCERT_OK && own)
        pg_rollback(p);
    return rc;
}

authcert_status pg_text_array(const char *const *v, size_t n, size_t stride, char **buf)
{
    size_t len = 3, k = 0;
    char *out;

    *buf = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *s = *(const char *const *)((const char *)v + i * stride);
        len += 3;
        for (; s != NULL && *s != '\0'; s++)
            len += (*s == '"' || *s == '\\') ? 2 : 1;
    }
    if ((out = malloc(len)) == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    out[k++] = '{';
    for (size_t i = 0; i < n; i++) {
        const char *s = *(const char *const *)((const char *)v + i * stride);
        if (i > 0)
            out[k++] = ',';
        out[k++] = '"';
        for (; s != NULL && *s != '\0'; s++) {
            if (*s == '"' || *s == '\\')
                out[k++] = '\\';
            out[k++] = *s;
        }
        out[k++] = '"';
    }
    out[k++] = '}';
    out[k] = '\0';
    *buf = out;
    return AUTHCERT_OK;
}

/*
 * Every condition is always there and a NULL parameter switches it off:
 * PQexecParams plans with the values known, so the planner drops the
 * switched-off ones (and the thumbprint index still serves an equality).
 */
void pg_filter_sql(int base, char *out, size_t size)
{
    snprintf(out, size, " AND ($%d::text IS NULL OR thumbprint = $%d)"
             " AND ($%d::text IS NULL OR thumbprint <> $%d)"
             " AND ($%d::bigint IS NULL OR last_seen >= $%d)"
             " AND ($%d::bigint IS NULL OR last_seen < $%d)"
             " AND ($%d::boolean IS NOT TRUE OR port <> 0)",
             base, base, base + 1, base + 1, base + 2, base + 2, base + 3, base + 3,
             base + 4);
}

void pg_filter_params(const authcert_agent_filter *f, const char **params, pg_int since,
                      pg_int before)
{
    params[0] = f != NULL ? f->thumbprint : NULL;
    params[1] = f != NULL ? f->not_thumbprint : NULL;
    params[2] = f != NULL && f->seen_since != 0 ? pg_i64(since, f->seen_since) : NULL;
    params[3] = f != NULL && f->seen_before != 0 ? pg_i64(before, f->seen_before) : NULL;
    params[4] = f != NULL && f->listening ? "true" : NULL;
}

/* ---- connection and schema ---------------------------------------------- */

/* The stored version, 0 for an empty database; refuses what is not ours. */
static authcert_status read_version(pg *p, int *version)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;
    const char *app;

    *version = 0;
    GUARD(pg_run(p, "SELECT to_regclass('authcert_meta') IS NOT NULL, "
                 "to_regclass('agents') IS NOT NULL", 0, NULL, &res));
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
            FAIL(AUTHCERT_E_CORRUPT, "registry %s: has a table \"agents\" but is not an "
                 "authcert registry (nothing was changed)", p->name);
        rc = AUTHCERT_OK;
        goto out;
    }
    PQclear(res);
    res = NULL;
    GUARD(pg_run(p, "SELECT (SELECT value FROM authcert_meta WHERE key = 'application'), "
                 "(SELECT value FROM authcert_meta WHERE key = 'schema_version')",
                 0, NULL, &res));
    app = PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
    if (strcmp(app, APPLICATION) != 0)
        FAIL(AUTHCERT_E_CORRUPT, "registry %s: has a table \"authcert_meta\" but is not an "
             "authcert registry (nothing was changed)", p->name);
    *version = (int)pg_get_i64(res, 0, 1);
    if (*version > KNOWN_VERSION)
        FAIL(AUTHCERT_E_POLICY, "registry %s: schema version %d is newer than this "
             "authcert knows (%d): upgrade authcert (nothing was changed)", p->name,
             *version, KNOWN_VERSION);
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

/*
 * A session lock taken before BEGIN, not a transaction lock after it: the
 * transaction's start is where this backend drops what it cached about
 * tables that did not exist (a node that waited must see the tables the
 * first one made; after an xact lock it would still "not see" them).
 */
static authcert_status migrate(pg *p)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    int version, locked = 0;
    char sql[160];

    GUARD(pg_cmd(p, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")"));
    locked = 1;
    GUARD(pg_cmd(p, "BEGIN"));
    GUARD(read_version(p, &version)); /* again: another node may have done it */
    for (; version < KNOWN_VERSION; version++)
        GUARD(pg_cmd(p, migrations[version]));
    snprintf(sql, sizeof sql, "INSERT INTO authcert_meta VALUES ('schema_version', '%d') "
             "ON CONFLICT (key) DO UPDATE SET value = excluded.value", KNOWN_VERSION);
    GUARD(pg_cmd(p, sql));
    GUARD(pg_cmd(p, "COMMIT"));
    rc = AUTHCERT_OK;
out:
    if (rc != AUTHCERT_OK)
        pg_rollback(p);
    if (locked)
        PQclear(PQexec(p->conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")"));
    return rc;
}

static void pgb_close(void *impl)
{
    pg *p = impl;

    if (p == NULL)
        return;
    PQfinish(p->conn);
    free(p->name);
    free(p);
}

/* libpq writes NOTICEs to stderr by default; the library never prints. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static authcert_status pgb_open(const char *uri, void **impl)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = NULL;
    int version = 0;
    char line[400];

    GUARD_ALLOC(p = calloc(1, sizeof *p));
    p->conn = PQconnectdb(uri);
    GUARD_ALLOC(p->conn);
    if (asprintf(&p->name, "database %s on %s", PQdb(p->conn) != NULL ? PQdb(p->conn) : "?",
                 PQhost(p->conn) != NULL ? PQhost(p->conn) : "?") < 0) {
        p->name = NULL;
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    }
    if (PQstatus(p->conn) != CONNECTION_OK) {
        const char *m = PQerrorMessage(p->conn);
        /* A bad URI never reached a server: the operator's mistake. */
        FAIL(strstr(m, "invalid") != NULL || strstr(m, "missing") != NULL
             ? AUTHCERT_E_USAGE
             : strstr(m, "authentication") != NULL || strstr(m, "permission") != NULL
             ? AUTHCERT_E_PERM : AUTHCERT_E_IO,
             "registry %s: cannot connect: %s", p->name, one_line(m, line, sizeof line));
    }
    PQsetNoticeProcessor(p->conn, quiet, NULL);
    GUARD(pg_cmd(p, "SET synchronous_commit = off"));
    GUARD(pg_cmd(p, "SET client_encoding = 'UTF8'"));
    GUARD(read_version(p, &version));
    if (version != KNOWN_VERSION)
        GUARD(migrate(p));
    *impl = p;
    p = NULL;
    rc = AUTHCERT_OK;
out:
    pgb_close(p);
    return rc;
}

static authcert_status pgb_schema_version(void *impl, int *version)
{
    return read_version(impl, version);
}

/* ---- agents ------------------------------------------------------------- */

static void row_agent(const PGresult *res, int i, authcert_agent *a)
{
    a->agent_id = PQgetvalue(res, i, 0);
    a->hostname = PQgetvalue(res, i, 1);
    a->address = PQgetvalue(res, i, 2);
    a->port = (uint16_t)pg_get_i64(res, i, 3);
    a->thumbprint = PQgetvalue(res, i, 4);
    a->version = PQgetvalue(res, i, 5);
    a->first_seen = (time_t)pg_get_i64(res, i, 6);
    a->last_seen = (time_t)pg_get_i64(res, i, 7);
    a->key_pin = PQgetvalue(res, i, 8);
    a->key_epoch = (uint64_t)pg_get_i64(res, i, 9);
    a->clone_pin = PQgetvalue(res, i, 10);
}

/*
 * One statement for the whole batch: the reports go as arrays, unnest()
 * turns them back into rows. A batch that names one agent twice keeps the
 * last report (what n separate upserts would leave) but the first non-empty
 * key pin in it (likewise: the first pin recorded stays), and new agents
 * get their ids in report order.
 */
static authcert_status pgb_checkin(void *impl, const authcert_agent_report *reports,
                                   size_t n, time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;
    char *arr[8] = { NULL };
    const char *params[9];
    const char **tp = NULL, **ver = NULL, **pin = NULL;
    char **ports = NULL, **ctr = NULL;
    pg_int t;
    size_t st = sizeof *reports;

    GUARD_ALLOC(tp = calloc(n, sizeof *tp));
    GUARD_ALLOC(ver = calloc(n, sizeof *ver));
    GUARD_ALLOC(pin = calloc(n, sizeof *pin));
    GUARD_ALLOC(ports = calloc(n, sizeof *ports));
    GUARD_ALLOC(ctr = calloc(n, sizeof *ctr));
    for (size_t i = 0; i < n; i++) {
        tp[i] = reports[i].thumbprint != NULL ? reports[i].thumbprint : "";
        ver[i] = reports[i].version != NULL ? reports[i].version : "";
        pin[i] = reports[i].key_pin != NULL ? reports[i].key_pin : "";
        GUARD_ALLOC(ports[i] = malloc(8));
        snprintf(ports[i], 8, "%u", (unsigned)reports[i].port);
        GUARD_ALLOC(ctr[i] = malloc(24));
        snprintf(ctr[i], 24, "%llu", (unsigned long long)reports[i].mac_counter);
    }
    GUARD(pg_text_array((const char *const *)&reports[0].agent_id, n, st, &arr[0]));
    GUARD(pg_text_array((const char *const *)&reports[0].hostname, n, st, &arr[1]));
    GUARD(pg_text_array((const char *const *)&reports[0].address, n, st, &arr[2]));
    GUARD(pg_text_array((const char *const *)ports, n, sizeof *ports, &arr[3]));
    GUARD(pg_text_array(tp, n, sizeof *tp, &arr[4]));
    GUARD(pg_text_array(ver, n, sizeof *ver, &arr[5]));
    GUARD(pg_text_array(pin, n, sizeof *pin, &arr[6]));
    GUARD(pg_text_array((const char *const *)ctr, n, sizeof *ctr, &arr[7]));
    for (int i = 0; i < 8; i++)
        params[i] = arr[i];
    params[8] = pg_i64(t, now);
    GUARD(pg_run(p,
        "INSERT INTO agents(" PG_AGENT_COLS ", mac_counter) "
        "SELECT a, h, ad, p::integer, t, v, $9::bigint, $9::bigint, k, c FROM ("
        " SELECT DISTINCT ON (a) a, h, ad, p, t, v, o, first_value(k) OVER (PARTITION BY a "
        " ORDER BY k = '', o) AS k, max(c::bigint) OVER (PARTITION BY a) AS c "
        " FROM unnest($1::text[], $2::text[], $3::text[], "
        " $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY "
        " AS u(a, h, ad, p, t, v, k, c, o) ORDER BY a, o DESC) last ORDER BY o "
        "ON CONFLICT (agent_id) DO UPDATE SET hostname = excluded.hostname, "
        "address = excluded.address, port = excluded.port, "
        "thumbprint = excluded.thumbprint, version = excluded.version, "
        "last_seen = excluded.last_seen, key_pin = CASE WHEN agents.key_pin = '' "
        "THEN excluded.key_pin ELSE agents.key_pin END, "
        "mac_counter = greatest(agents.mac_counter, excluded.mac_counter)", 9, params, NULL));
    rc = AUTHCERT_OK;
out:
    for (int i = 0; i < 8; i++)
        free(arr[i]);
    for (size_t i = 0; ports != NULL && i < n; i++)
        free(ports[i]);
    for (size_t i = 0; ctr != NULL && i < n; i++)
        free(ctr[i]);
    free(ports);
    free(ctr);
    free(tp);
    free(ver);
    free(pin);
    return rc;
}

static authcert_status pgb_get_agent(void *impl, const char *agent_id,
                                     authcert_agent_cb cb, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;
    PGresult *res = NULL;
    authcert_agent a;

    GUARD(pg_run(p, "SELECT " PG_AGENT_COLS ", CASE WHEN key_spki <> '' THEN key_epoch "
                 "ELSE 0 END, clone_pin FROM agents WHERE agent_id = $1", 1,
                 &agent_id, &res));
    if (PQntuples(res) == 0)
        FAIL(AUTHCERT_E_NOTFOUND, "registry: no agent %s", agent_id);
    row_agent(res, 0, &a);
    GUARD(cb(ctx, &a));
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

static authcert_status pgb_count_agents(void *impl, uint64_t *n)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;

    GUARD(pg_run(impl, "SELECT count(*) FROM agents", 0, NULL, &res));
    *n = (uint64_t)pg_get_i64(res, 0, 0);
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

static authcert_status pgb_foreach_agent(void *impl, const authcert_agent_filter *f,
                                         authcert_agent_cb cb, void *ctx)
{
    return pg_copy_agents(impl, f, cb, ctx);
}

static authcert_status pgb_count_by_thumbprint(void *impl, authcert_thumbprint_count_cb cb,
                                               void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PGresult *res = NULL;

    GUARD(pg_run(impl, "SELECT thumbprint, count(*) FROM agents GROUP BY thumbprint",
                 0, NULL, &res));
    for (int i = 0; i < PQntuples(res); i++)
        GUARD(cb(ctx, PQgetvalue(res, i, 0), (uint64_t)pg_get_i64(res, i, 1)));
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

static authcert_status pgb_update_thumbprint(void *impl, const char *agent_id,
                                             const char *from, const char *to, bool *changed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *params[3] = { agent_id, from, to };
    PGresult *res = NULL;

    GUARD(pg_run(impl, "UPDATE agents SET thumbprint = $3 WHERE agent_id = $1 "
                 "AND thumbprint = $2", 3, params, &res));
    *changed = strcmp(PQcmdTuples(res), "0") != 0;
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}

/* ---- portable SQL (identity.c) ----------------------------------------- */

static authcert_status pgb_sql(void *impl, const char *sql, const reg_value *v, int n,
                               reg_row_cb cb, void *ctx, uint64_t *changes)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;
    PGresult *res = NULL;
    const char *params[16], *cols[16];
    pg_int nums[16];
    char *text = NULL;
    int nc;

    if (n > 16)
        return authcert_fail(AUTHCERT_E_INTERNAL, "registry: %d parameters", n);
    /* ?N is $N here; no string constant of identity.c holds a '?'. */
    GUARD_ALLOC(text = strdup(sql));
    for (char *c = text; *c != '\0'; c++)
        if (*c == '?')
            *c = '$';
    for (int i = 0; i < n; i++)
        params[i] = v[i].text != NULL ? v[i].text : pg_i64(nums[i], v[i].num);
    GUARD(pg_run(p, text, n, params, &res));
    nc = PQnfields(res);
    if (nc > 16)
        FAIL(AUTHCERT_E_INTERNAL, "registry: a query of %d columns", nc);
    for (int r = 0; cb != NULL && r < PQntuples(res); r++) {
        for (int i = 0; i < nc; i++)
            cols[i] = PQgetvalue(res, r, i);
        GUARD(cb(ctx, cols, nc));
    }
    if (changes != NULL)
        *changes = strtoull(PQcmdTuples(res), NULL, 10);
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    free(text);
    return rc;
}

/* Durable like an enqueue (pg_queue.c): synchronous_commit on for it. */
static authcert_status pgb_tx(void *impl, enum reg_tx what)
{
    pg *p = impl;
    authcert_status rc;

    switch (what) {
    case REG_BEGIN:
        if ((rc = pg_cmd(p, "BEGIN")) != AUTHCERT_OK)
            return rc;
        if ((rc = pg_cmd(p, "SET LOCAL synchronous_commit = on")) != AUTHCERT_OK)
            pg_rollback(p);
        return rc;
    case REG_COMMIT:
        if ((rc = pg_cmd(p, "COMMIT")) != AUTHCERT_OK)
            pg_rollback(p);
        return rc;
    case REG_ROLLBACK:
        pg_rollback(p);
        return AUTHCERT_OK;
    }
    return AUTHCERT_E_INTERNAL;
}

const authcert_registry_backend authcert_registry_pg = {
    .name = "postgresql",
    .open = pgb_open,
    .close = pgb_close,
    .schema_version = pgb_schema_version,
    .checkin = pgb_checkin,
    .get_agent = pgb_get_agent,
    .count_agents = pgb_count_agents,
    .foreach_agent = pgb_foreach_agent,
    .count_by_thumbprint = pgb_count_by_thumbprint,
    .enqueue = pg_enqueue,
    .enqueue_matching = pg_enqueue_matching,
    .pending = pg_pending,
    .claim = pg_claim,
    .claim_agent = pg_claim_agent,
    .record_result = pg_record_result,
    .record_results = pg_record_results,
    .record_agent_result = pg_record_agent_result,
    .update_thumbprint = pgb_update_thumbprint,
    .results = pg_results,
    .node_report = pg_node_report,
    .foreach_node = pg_foreach_node,
    .sql = pgb_sql,
    .tx = pgb_tx,
    .row_locks = true,
};
