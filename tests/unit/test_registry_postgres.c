/*
 * What only the PostgreSQL backend has to show (test_registry runs the
 * shared behaviour on it too): a row another node holds is skipped, not
 * waited for; a version 1 database is migrated; nodes opening a fresh
 * database at once create the schema once; the agent scan (COPY, binary)
 * hands back every byte of what is stored, takes filter values as data,
 * and reports a connection lost mid-stream. Needs the CTest fixture "pg".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "authcert/registry.h"
#include "testlib.h"
#include "testlib_registry.h"

#define TP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define T0 1780000000

typedef struct fixture {
    char *dir;
    char *uri;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    if (!testlib_pg())
        fail_msg("AUTHCERT_TEST_PG_URI(_FILE) is not set: run through CTest (fixture pg)");
    f->dir = testlib_tmpdir("registry_pg");
    f->uri = testlib_registry_new(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    testlib_registry_drop(f->uri);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f->uri);
    free(f);
    return 0;
}

static authcert_status count_cb(void *ctx, const authcert_delivery *d)
{
    (void)d;
    ++*(size_t *)ctx;
    return AUTHCERT_OK;
}

static PGconn *connect_to(const char *uri)
{
    PGconn *c = PQconnectdb(uri);

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

static void sql_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static void test_a_locked_row_is_skipped_not_waited_for(void **state)
{
    fixture *f = *state;
    authcert_registry *reg = NULL;
    authcert_agent_report r = { .agent_id = "agent-1", .hostname = "h", .address = "a",
                                .port = 7443, .thumbprint = TP_A };
    PGconn *other;
    size_t seen = 0, claimed = 99;
    time_t t;

    assert_ok(authcert_registry_open(f->uri, &reg));
    assert_ok(authcert_registry_checkin(reg, &r, T0));
    assert_ok(authcert_registry_enqueue(reg, "agent-1", "first", NULL, T0, NULL));
    assert_ok(authcert_registry_enqueue(reg, "agent-1", "second", NULL, T0, NULL));

    /* Another node is in the middle of leasing the oldest row. */
    other = connect_to(f->uri);
    sql_ok(other, "BEGIN");
    sql_ok(other, "SELECT id FROM deliveries ORDER BY id LIMIT 1 FOR UPDATE");

    t = time(NULL);
    assert_ok(authcert_registry_claim_agent(reg, "agent-1", 64, 30, T0, count_cb, &seen,
                                            &claimed));
    assert_true(time(NULL) - t < 2);
    assert_int_equal(claimed, 1); /* the second only */
    claimed = 99;
    assert_ok(authcert_registry_claim(reg, 64, 30, T0, count_cb, &seen, &claimed));
    assert_int_equal(claimed, 0); /* the first is locked, the second leased */
    sql_ok(other, "ROLLBACK");
    PQfinish(other);
    assert_ok(authcert_registry_claim(reg, 64, 30, T0, count_cb, &seen, &claimed));
    assert_int_equal(claimed, 1);
    authcert_registry_close(reg);
}

static void test_version_1_is_migrated(void **state)
{
    fixture *f = *state;
    authcert_registry *reg = NULL;
    authcert_agent_filter all = { 0 };
    PGconn *c;
    int version = 0;
    uint64_t n = 99;
    size_t claimed = 0, seen = 0;

    /* Make a current database, then take it back to what version 1 was. */
    assert_ok(authcert_registry_open(f->uri, &reg));
    authcert_registry_close(reg);
    c = connect_to(f->uri);
    sql_ok(c, "DROP TABLE enroll_tokens; DROP TABLE enroll_pending; ALTER TABLE agents "
              "DROP COLUMN key_spki, DROP COLUMN key_epoch, DROP COLUMN mac_counter, "
              "DROP COLUMN enrolled_at, DROP COLUMN clone_pin, DROP COLUMN clone_seen_at, "
              "DROP COLUMN known_before; "
              "DROP INDEX deliveries_once; ALTER TABLE deliveries DROP COLUMN once_key; "
              "ALTER TABLE agents DROP COLUMN key_pin; "
              "UPDATE authcert_meta SET value = '1' WHERE key = 'schema_version'; "
              "INSERT INTO agents(agent_id, hostname, address, port, thumbprint, version, "
              "first_seen, last_seen) VALUES ('old-agent', 'h', 'a', 7443, '', '', 1, 1); "
              "INSERT INTO commands(command, broadcast, created_at) VALUES ('restart', 1, 1); "
              "INSERT INTO deliveries(command_id, agent, next_attempt_at, updated_at) "
              "SELECT max(c.id), max(a.id), 1, 1 FROM commands c, agents a");
    PQfinish(c);

    assert_ok(authcert_registry_open(f->uri, &reg));
    assert_ok(authcert_registry_schema_version(reg, &version));
    assert_int_equal(version, AUTHCERT_REGISTRY_SCHEMA_VERSION);
    assert_ok(authcert_registry_claim_agent(reg, "old-agent", 64, 30, T0, count_cb, &seen,
                                            &claimed));
    assert_int_equal(claimed, 1);
    assert_ok(authcert_registry_enqueue_matching(reg, &all, "update-key", NULL, "update-key",
                                                 T0, NULL, &n));
    assert_int_equal(n, 1);
    assert_ok(authcert_registry_enqueue_matching(reg, &all, "update-key", NULL, "update-key",
                                                 T0, NULL, &n));
    assert_int_equal(n, 0);
    authcert_registry_close(reg);
}

typedef struct opener {
    const char *uri;
    authcert_status rc;
    char detail[400]; /* the detail is per thread */
} opener;

static void *open_one(void *arg)
{
    opener *o = arg;
    authcert_registry *reg = NULL;

    o->rc = authcert_registry_open(o->uri, &reg);
    snprintf(o->detail, sizeof o->detail, "%s", authcert_detail());
    authcert_registry_close(reg);
    return NULL;
}

static void test_nodes_starting_together_create_the_schema_once(void **state)
{
    fixture *f = *state;
    enum { NODES = 6 };
    pthread_t t[NODES];
    opener o[NODES];
    PGconn *c;
    PGresult *r;

    for (int i = 0; i < NODES; i++) {
        o[i] = (opener){ .uri = f->uri, .rc = AUTHCERT_E_INTERNAL };
        assert_int_equal(pthread_create(&t[i], NULL, open_one, &o[i]), 0);
    }
    for (int i = 0; i < NODES; i++) {
        pthread_join(t[i], NULL);
        if (o[i].rc != AUTHCERT_OK)
            fail_msg("node %d: %s (%s)", i, authcert_strerror(o[i].rc), o[i].detail);
    }
    c = connect_to(f->uri);
    r = PQexec(c, "SELECT value FROM authcert_meta WHERE key = 'schema_version'");
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(atoi(PQgetvalue(r, 0, 0)), AUTHCERT_REGISTRY_SCHEMA_VERSION);
    PQclear(r);
    PQfinish(c);
}

typedef struct scanned {
    size_t n;
    char id[4][80], host[4][80], tp[4][80], version[4][80];
    uint16_t port[4];
    time_t first[4], last[4];
    PGconn *killer; /* set: end the registry's connection at the first row */
} scanned;

static authcert_status scan_cb(void *ctx, const authcert_agent *a)
{
    scanned *s = ctx;

    if (s->killer != NULL && s->n == 0)
        sql_ok(s->killer, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    if (s->n < 4) {
        snprintf(s->id[s->n], sizeof s->id[0], "%s", a->agent_id);
        snprintf(s->host[s->n], sizeof s->host[0], "%s", a->hostname);
        snprintf(s->tp[s->n], sizeof s->tp[0], "%s", a->thumbprint);
        snprintf(s->version[s->n], sizeof s->version[0], "%s", a->version);
        s->port[s->n] = a->port;
        s->first[s->n] = a->first_seen;
        s->last[s->n] = a->last_seen;
    }
    s->n++;
    return AUTHCERT_OK;
}

static size_t scan(authcert_registry *reg, const authcert_agent_filter *f)
{
    scanned s = { 0 };

    assert_ok(authcert_registry_foreach_agent(reg, f, scan_cb, &s));
    return s.n;
}

/*
 * Rows planted by SQL (no check-in validation): whatever the database
 * holds comes back byte for byte, empty strings and the bytes COPY's text
 * format would escape included; a filter value with quotes is data.
 */
static void test_agent_scan_returns_every_byte(void **state)
{
    fixture *f = *state;
    authcert_registry *reg = NULL;
    const char *evil = "it's'; DROP TABLE agents; --";
    authcert_agent_filter filt = { .not_thumbprint = evil };
    scanned s = { 0 };
    uint64_t n = 0;
    PGconn *c;

    assert_ok(authcert_registry_open(f->uri, &reg));
    c = connect_to(f->uri);
    sql_ok(c, "INSERT INTO agents(agent_id, hostname, address, port, thumbprint, version, "
              "first_seen, last_seen) VALUES "
              "('a-1', E'tab\\there, \"quoted\" back\\\\slash\\nnew\\rline', '192.0.2.1', 65535, "
              "'" TP_A "', '1.0', -5, 1780000000), "
              "('a-2', 'b\xc3\xbcro-pc \xf0\x9f\x96\xa5', '::1', 0, '', '', 0, 9000000000), "
              "('a-3', '\\N', '', 1, 'it''s''; DROP TABLE agents; --', 'v', 1, 2)");
    PQfinish(c);

    assert_ok(authcert_registry_foreach_agent(reg, NULL, scan_cb, &s));
    assert_int_equal(s.n, 3);
    assert_string_equal(s.id[0], "a-1");
    assert_string_equal(s.host[0], "tab\there, \"quoted\" back\\slash\nnew\rline");
    assert_int_equal(s.port[0], 65535);
    assert_string_equal(s.tp[0], TP_A);
    assert_string_equal(s.version[0], "1.0");
    assert_int_equal(s.first[0], -5);
    assert_int_equal(s.last[0], 1780000000);
    assert_string_equal(s.host[1], "b\xc3\xbcro-pc \xf0\x9f\x96\xa5");
    assert_int_equal(s.port[1], 0);
    assert_string_equal(s.tp[1], "");
    assert_string_equal(s.version[1], "");
    assert_true(s.last[1] == (time_t)9000000000LL);
    assert_string_equal(s.host[2], "\\N");
    assert_string_equal(s.tp[2], evil);

    /* Filter values are data: quoted, never SQL. */
    assert_int_equal(scan(reg, &filt), 2);
    filt = (authcert_agent_filter){ .thumbprint = evil };
    assert_int_equal(scan(reg, &filt), 1);
    filt = (authcert_agent_filter){ .thumbprint = "'" };
    assert_int_equal(scan(reg, &filt), 0);
    filt = (authcert_agent_filter){ .listening = true };
    assert_int_equal(scan(reg, &filt), 2);
    filt = (authcert_agent_filter){ .seen_since = 2, .seen_before = 1780000001 };
    assert_int_equal(scan(reg, &filt), 2);
    filt = (authcert_agent_filter){ .thumbprint = "", .listening = true };
    assert_int_equal(scan(reg, &filt), 0);
    assert_ok(authcert_registry_count_agents(reg, &n));
    assert_int_equal(n, 3);
    authcert_registry_close(reg);
}

/* The server goes away mid-stream: AUTHCERT_E_IO, not a short list as if complete. */
static void test_agent_scan_connection_lost(void **state)
{
    fixture *f = *state;
    enum { N = 50000 }; /* ~5 MB: more than the socket buffers hold */
    authcert_registry *reg = NULL;
    scanned s = { 0 };
    PGconn *c;

    assert_ok(authcert_registry_open(f->uri, &reg));
    c = connect_to(f->uri);
    sql_ok(c, "INSERT INTO agents(agent_id, hostname, address, port, thumbprint, version, "
              "first_seen, last_seen) SELECT 'agent-' || i, repeat('h', 60), '192.0.2.1', "
              "7443, '" TP_A "', '1.0', i, i FROM generate_series(1, 50000) i");
    s.killer = c;
    assert_status(authcert_registry_foreach_agent(reg, NULL, scan_cb, &s), AUTHCERT_E_IO);
    assert_true(s.n >= 1 && s.n < N);
    assert_non_null(strstr(authcert_detail(), "agent list"));
    PQfinish(c);
    authcert_registry_close(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_locked_row_is_skipped_not_waited_for, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_version_1_is_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_scan_returns_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_scan_connection_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_starting_together_create_the_schema_once,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
