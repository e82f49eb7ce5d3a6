/*
 * The registry's delivery rules between check-ins and pushes: claim_agent
 * against claim, results matched to the agent that reports them (broadcasts
 * by command id), the idempotent enqueue_matching, update_thumbprint, and
 * the migration of a version 1 database. On SQLite, and on PostgreSQL when
 * AUTHCERT_TEST_PG_URI(_FILE) is set (CTest's unit/test_registry_claim_pg):
 * where the backends differ (the write lock, the schema version), each has
 * its form of the same check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "authcert/identity.h"
#include "authcert/registry.h"
#include "testlib.h"
#include "testlib_registry.h"

#define TP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define TP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define T0 1780000000
#define PIN_A "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs="
#define PIN_B "sha256//PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0="

typedef struct fixture {
    char *dir;
    char *path;
    authcert_registry *reg;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    f->dir = testlib_tmpdir("registry_claim");
    f->path = testlib_registry_new(f->dir);
    assert_ok(authcert_registry_open(f->path, &f->reg));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    authcert_registry_close(f->reg);
    testlib_registry_drop(f->path);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

static authcert_agent_report report(const char *id, const char *tp, uint16_t port)
{
    authcert_agent_report r = { .agent_id = id, .hostname = "h", .address = "192.0.2.7",
                                .port = port, .thumbprint = tp, .version = "0.1.0" };
    return r;
}

/* agent-1 (A, listening), agent-2 (A, no listener), agent-3 (B, listening). */
static void checkin3(authcert_registry *reg)
{
    authcert_agent_report r[3] = { report("agent-1", TP_A, 7443), report("agent-2", TP_A, 0),
                                   report("agent-3", TP_B, 7443) };
    assert_ok(authcert_registry_checkin_batch(reg, r, 3, T0));
}

typedef struct got {
    size_t n;
    int64_t id[16], command_id[16];
    char agent[16][64], command[16][32], thumbprint[16][65], key_pin[16][64];
    bool broadcast[16];
    unsigned attempts[16];
    time_t lease[16];
} got;

static authcert_status got_cb(void *ctx, const authcert_delivery *d)
{
    got *g = ctx;
    size_t i = g->n++;

    assert_true(i < 16);
    g->id[i] = d->id;
    g->command_id[i] = d->command_id;
    snprintf(g->agent[i], sizeof g->agent[i], "%s", d->agent_id);
    snprintf(g->command[i], sizeof g->command[i], "%s", d->command);
    snprintf(g->thumbprint[i], sizeof g->thumbprint[i], "%s", d->thumbprint);
    snprintf(g->key_pin[i], sizeof g->key_pin[i], "%s", d->key_pin);
    g->broadcast[i] = d->broadcast;
    g->attempts[i] = d->attempts;
    g->lease[i] = d->lease_until;
    return AUTHCERT_OK;
}

static size_t nqueued(fixture *f, const char *agent)
{
    got g = { 0 };

    assert_ok(authcert_registry_pending(f->reg, agent, got_cb, &g));
    return g.n;
}

static void test_check_in_and_push_never_take_the_same_delivery(void **state)
{
    fixture *f = *state;
    int64_t c1 = 0, c2 = 0;
    size_t claimed = 99;
    got g = { 0 }, p = { 0 };

    checkin3(f->reg);
    assert_ok(authcert_registry_enqueue(f->reg, "agent-1", "run", NULL, T0, &c1));
    assert_ok(authcert_registry_enqueue_all(f->reg, "restart", NULL, T0, &c2, NULL));

    /* The check-in of agent-1 leases both of its deliveries, with what a push needs. */
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-1", 64, 300, T0 + 1, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 2);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.command[0], "run");
    assert_false(g.broadcast[0]);
    assert_string_equal(g.command[1], "restart");
    assert_true(g.broadcast[1]);
    assert_int_equal(g.command_id[1], c2);
    assert_string_equal(g.thumbprint[0], TP_A);
    assert_int_equal(g.lease[0], T0 + 301);
    assert_int_equal(g.attempts[0], 1);

    /* A push claim meanwhile gets only agent-3's broadcast delivery (agent-2
     * has no listener: its check-in will take it). */
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 2, got_cb, &p, &claimed));
    assert_int_equal(claimed, 1);
    assert_string_equal(p.agent[0], "agent-3");
    assert_string_equal(p.thumbprint[0], TP_B);
    assert_true(p.broadcast[0]);

    /* ... and the other way round: what a push holds is not offered at check-in. */
    memset(&g, 0, sizeof g);
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-3", 64, 300, T0 + 3, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 0);
    assert_int_equal(g.n, 0);
    /* A second check-in inside the lease gets nothing again. */
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-1", 64, 300, T0 + 4, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 0);

    /* Once the push lease ends with no result, the check-in takes it. */
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-3", 64, 300, T0 + 62, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 1);
    assert_int_equal(g.attempts[0], 2);
    /* And once the check-in's lease ends, a push may (whatever next_attempt_at was). */
    memset(&p, 0, sizeof p);
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 302, got_cb, &p, &claimed));
    assert_int_equal(claimed, 2); /* agent-1's two; never agent-2's */
    assert_string_equal(p.agent[0], "agent-1");
    assert_string_equal(p.agent[1], "agent-1");

    /* The limit is kept; unknown agents and bad arguments. */
    memset(&g, 0, sizeof g);
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-2", 1, 30, T0 + 9999, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 1);
    assert_ok(authcert_registry_claim_agent(f->reg, "ghost", 64, 30, T0, got_cb, &g, &claimed));
    assert_int_equal(claimed, 0);
    assert_status(authcert_registry_claim_agent(f->reg, "agent-1", 0, 30, T0, got_cb, &g, NULL),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_claim_agent(f->reg, "agent-1", 64, 0, T0, got_cb, &g, NULL),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_claim_agent(f->reg, "a b", 64, 30, T0, got_cb, &g, NULL),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_claim_agent(f->reg, "agent-1", 64, 30, T0, NULL, &g, NULL),
                  AUTHCERT_E_USAGE);
}

/* What a push is pinned to comes with the delivery, from either claim. */
static void test_claims_hand_the_recorded_key_pin(void **state)
{
    fixture *f = *state;
    authcert_agent_report r = report("agent-1", TP_A, 7443);
    size_t claimed = 0;
    got g = { 0 }, p = { 0 };

    checkin3(f->reg);
    r.key_pin = PIN_A;
    assert_ok(authcert_registry_checkin(f->reg, &r, T0));
    r.key_pin = PIN_B; /* not recorded: the first pin stays */
    assert_ok(authcert_registry_checkin(f->reg, &r, T0));
    assert_ok(authcert_registry_enqueue_all(f->reg, "restart", NULL, T0, NULL, NULL));
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 1, got_cb, &p, &claimed));
    assert_int_equal(claimed, 2); /* agent-2 has no listener */
    assert_string_equal(p.agent[0], "agent-1");
    assert_string_equal(p.key_pin[0], PIN_A);
    assert_string_equal(p.agent[1], "agent-3");
    assert_string_equal(p.key_pin[1], "");
    assert_ok(authcert_registry_enqueue(f->reg, "agent-1", "run", NULL, T0, NULL));
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-1", 64, 60, T0 + 2, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 1);
    assert_string_equal(g.key_pin[0], PIN_A);
}

/*
 * A delivery for an agent without a listener is never due for the push
 * thread (it could only lease it and put it back, and a check-in in that
 * moment found it leased); the agent's check-in takes it, whenever.
 */
static void test_a_listener_less_agent_gets_its_commands_at_check_in_only(void **state)
{
    fixture *f = *state;
    int64_t c1 = 0, c2 = 0;
    size_t claimed = 99;
    got g = { 0 }, p = { 0 };
    authcert_agent_report back = report("agent-1", TP_A, 0);

    checkin3(f->reg);
    assert_ok(authcert_registry_enqueue(f->reg, "agent-2", "run", NULL, T0, &c1));
    assert_int_equal(nqueued(f, "agent-2"), 1);
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 86400 * 365, got_cb, &p, &claimed));
    assert_int_equal(claimed, 0);
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-2", 64, 30, T0 + 1, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 1);
    assert_string_equal(g.command[0], "run");
    /* Put back (the check-in brought no result): still the check-in's only. */
    assert_ok(authcert_registry_record_result(f->reg, g.id[0], AUTHCERT_DELIVERY_QUEUED, NULL,
                                              T0 + 2));
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 86400 * 365, got_cb, &p, &claimed));
    assert_int_equal(claimed, 0);
    memset(&g, 0, sizeof g);
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-2", 64, 30, T0 + 3, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 1);

    /* A listening agent's delivery goes to the push thread; a retry waits 30 s. */
    assert_ok(authcert_registry_enqueue(f->reg, "agent-1", "run", NULL, T0, &c2));
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 1, got_cb, &p, &claimed));
    assert_int_equal(claimed, 1);
    assert_string_equal(p.agent[0], "agent-1");
    assert_ok(authcert_registry_record_result(f->reg, p.id[0], AUTHCERT_DELIVERY_QUEUED, NULL,
                                              T0 + 2));
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 31, got_cb, &p, &claimed));
    assert_int_equal(claimed, 0);
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 32, got_cb, &p, &claimed));
    assert_int_equal(claimed, 1);
    /* It loses its listener: the push puts it back, and from then on only its
     * check-in takes it. */
    assert_ok(authcert_registry_checkin_batch(f->reg, &back, 1, T0 + 40));
    assert_ok(authcert_registry_record_result(f->reg, p.id[1], AUTHCERT_DELIVERY_QUEUED, NULL,
                                              T0 + 41));
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 86400 * 365, got_cb, &p, &claimed));
    assert_int_equal(claimed, 0);
    memset(&g, 0, sizeof g);
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-1", 64, 30, T0 + 42, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 1);
    assert_int_equal(g.command_id[0], c2);
}

/*
 * A push that met another key than the agent's pin puts the delivery back
 * for the agent's check-in only: the push thread never takes it again, the
 * agent's next check-in does. Beside it, a plain retry (the control) and a
 * final outcome, where checkin_only changes nothing.
 */
static void test_a_checkin_only_outcome_waits_for_the_check_in(void **state)
{
    fixture *f = *state;
    authcert_delivery_outcome o[3];
    size_t claimed = 0;
    got p = { 0 }, g = { 0 };

    checkin3(f->reg);
    assert_ok(authcert_registry_enqueue(f->reg, "agent-1", "run", NULL, T0, NULL));
    assert_ok(authcert_registry_enqueue(f->reg, "agent-3", "run", NULL, T0, NULL));
    assert_ok(authcert_registry_enqueue(f->reg, "agent-3", "ping", NULL, T0, NULL));
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 1, got_cb, &p, &claimed));
    assert_int_equal(claimed, 3);
    o[0] = (authcert_delivery_outcome){ .delivery_id = p.id[0],
                                        .state = AUTHCERT_DELIVERY_QUEUED,
                                        .result_json = "{\"error\":\"key\"}",
                                        .checkin_only = true };
    o[1] = (authcert_delivery_outcome){ .delivery_id = p.id[1],
                                        .state = AUTHCERT_DELIVERY_QUEUED };
    o[2] = (authcert_delivery_outcome){ .delivery_id = p.id[2],
                                        .state = AUTHCERT_DELIVERY_DELIVERED,
                                        .checkin_only = true };
    assert_ok(authcert_registry_record_results(f->reg, o, 3, T0 + 2));
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(o[i].status, AUTHCERT_OK);

    /* A year on, the push thread has the retry only. */
    memset(&p, 0, sizeof p);
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 86400 * 365, got_cb, &p,
                                      &claimed));
    assert_int_equal(claimed, 1);
    assert_string_equal(p.agent[0], "agent-3");
    assert_string_equal(p.command[0], "run");
    assert_int_equal(nqueued(f, "agent-3"), 1); /* the ping was delivered */
    /* agent-1's check-in brings it at once. */
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-1", 64, 60, T0 + 3, got_cb, &g,
                                            &claimed));
    assert_int_equal(claimed, 1);
    assert_string_equal(g.command[0], "run");
    assert_int_equal(g.attempts[0], 2);
}

/*
 * PostgreSQL's counterpart of SQLite's write lock: a table lock that stops
 * every writer of deliveries and no reader. CREATE INDEX takes one (SHARE),
 * authcert --migrate-registry another (EXCLUSIVE). The registry handle has a
 * lock_timeout so that a claim which does wait fails instead of hanging.
 */
static void claim_with_nothing_under_a_pg_table_lock(fixture *f)
{
    authcert_registry *r = NULL;
    PGconn *other = PQconnectdb(f->path);
    PGresult *res;
    char *uri = NULL;
    size_t claimed = 99;
    got g = { 0 };
    time_t t;

    if (asprintf(&uri, "%s&options=-c%%20lock_timeout%%3D3000", f->path) < 0)
        abort();
    assert_ok(authcert_registry_open(uri, &r));
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    res = PQexec(other, "BEGIN; LOCK TABLE deliveries IN EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    t = time(NULL);
    assert_ok(authcert_registry_claim_agent(r, "agent-1", 64, 30, T0, got_cb, &g, &claimed));
    assert_int_equal(claimed, 0);
    claimed = 99;
    assert_ok(authcert_registry_claim(r, 64, 30, T0, got_cb, &g, &claimed));
    assert_int_equal(claimed, 0);
    assert_true(time(NULL) - t < 2); /* not the 3 s lock_timeout */
    PQclear(PQexec(other, "ROLLBACK"));
    PQfinish(other);
    authcert_registry_close(r);
    free(uri);
}

/* An agent with nothing to claim does not need the write lock. */
static void test_claim_agent_with_nothing_does_not_write(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    size_t claimed = 99;
    got g = { 0 };
    time_t t;

    checkin3(f->reg);
    if (testlib_pg()) {
        claim_with_nothing_under_a_pg_table_lock(f);
        return;
    }
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    t = time(NULL);
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-1", 64, 30, T0, got_cb, &g,
                                            &claimed));
    assert_true(time(NULL) - t < 2); /* not the 5 s busy timeout */
    assert_int_equal(claimed, 0);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
}

static authcert_delivery_state state_of(fixture *f, int64_t command_id, const char *agent,
                                        char *result, size_t size);

typedef struct one_state {
    const char *agent;
    authcert_delivery_state state;
    char result[128];
    bool seen;
} one_state;

static authcert_status state_cb(void *ctx, const authcert_delivery *d)
{
    one_state *o = ctx;

    if (strcmp(d->agent_id, o->agent) == 0) {
        o->state = d->state;
        snprintf(o->result, sizeof o->result, "%s", d->result_json ? d->result_json : "");
        o->seen = true;
    }
    return AUTHCERT_OK;
}

static authcert_delivery_state state_of(fixture *f, int64_t command_id, const char *agent,
                                        char *result, size_t size)
{
    one_state o = { .agent = agent };

    assert_ok(authcert_registry_results(f->reg, command_id, state_cb, &o));
    assert_true(o.seen);
    if (result != NULL)
        snprintf(result, size, "%s", o.result);
    return o.state;
}

static void test_results_are_matched_to_the_reporting_agent(void **state)
{
    fixture *f = *state;
    int64_t c1 = 0, cb = 0, d1 = 0, got_id = 0;
    got g = { 0 };
    char res[128];

    checkin3(f->reg);
    assert_ok(authcert_registry_enqueue(f->reg, "agent-1", "run", NULL, T0, &c1));
    assert_ok(authcert_registry_enqueue_all(f->reg, "restart", NULL, T0, &cb, NULL));
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-1", 64, 300, T0, got_cb, &g, NULL));
    d1 = g.id[0];
    /* One id sequence: no delivery id is also a command id. */
    for (size_t i = 0; i < g.n; i++)
        assert_true(g.id[i] != c1 && g.id[i] != cb);

    /* Another agent cannot close agent-1's delivery, by either number. */
    assert_status(authcert_registry_record_agent_result(f->reg, "agent-2", d1,
                                                        AUTHCERT_DELIVERY_DELIVERED, "{}",
                                                        T0, NULL),
                  AUTHCERT_E_NOTFOUND);
    assert_non_null(strstr(authcert_detail(), "agent-2"));
    assert_int_equal(state_of(f, c1, "agent-1", NULL, 0), AUTHCERT_DELIVERY_QUEUED);
    /* A per-agent command is not matched by its command id. */
    assert_status(authcert_registry_record_agent_result(f->reg, "agent-1", c1,
                                                        AUTHCERT_DELIVERY_DELIVERED, "{}",
                                                        T0, NULL),
                  AUTHCERT_E_NOTFOUND);
    /* Its own, by delivery id (leased by its check-in: fine). */
    assert_ok(authcert_registry_record_agent_result(f->reg, "agent-1", d1,
                                                    AUTHCERT_DELIVERY_DELIVERED,
                                                    "{\"status\":\"ok\"}", T0 + 5, &got_id));
    assert_int_equal(got_id, d1);
    assert_int_equal(state_of(f, c1, "agent-1", res, sizeof res), AUTHCERT_DELIVERY_DELIVERED);
    assert_string_equal(res, "{\"status\":\"ok\"}");
    /* Twice: the first stands. */
    assert_status(authcert_registry_record_agent_result(f->reg, "agent-1", d1,
                                                        AUTHCERT_DELIVERY_FAILED, "{}",
                                                        T0 + 6, NULL),
                  AUTHCERT_E_POLICY);
    assert_int_equal(state_of(f, c1, "agent-1", NULL, 0), AUTHCERT_DELIVERY_DELIVERED);

    /* Not handed to agent-3 yet: its result is not taken, nothing changes. */
    assert_status(authcert_registry_record_agent_result(f->reg, "agent-3", cb,
                                                        AUTHCERT_DELIVERY_DELIVERED, "{}",
                                                        T0 + 6, NULL),
                  AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "not leased"));
    assert_int_equal(state_of(f, cb, "agent-3", NULL, 0), AUTHCERT_DELIVERY_QUEUED);
    got g3 = { 0 };
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-3", 64, 30, T0 + 6, got_cb, &g3,
                                            NULL));
    /* A broadcast: matched on (agent, command id); closes that agent's only. */
    assert_ok(authcert_registry_record_agent_result(f->reg, "agent-3", cb,
                                                    AUTHCERT_DELIVERY_DELIVERED,
                                                    "{\"status\":\"ok\"}", T0 + 7, &got_id));
    assert_int_equal(state_of(f, cb, "agent-3", NULL, 0), AUTHCERT_DELIVERY_DELIVERED);
    assert_int_equal(state_of(f, cb, "agent-1", NULL, 0), AUTHCERT_DELIVERY_QUEUED);
    assert_int_equal(state_of(f, cb, "agent-2", NULL, 0), AUTHCERT_DELIVERY_QUEUED);
    /* A lease that ran out takes no result: the next claim's will. */
    got g2 = { 0 };
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-2", 64, 30, T0 + 6, got_cb, &g2,
                                            NULL));
    assert_status(authcert_registry_record_agent_result(f->reg, "agent-2", cb,
                                                        AUTHCERT_DELIVERY_DELIVERED, "{}",
                                                        T0 + 37, NULL),
                  AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "not leased"));
    assert_int_equal(state_of(f, cb, "agent-2", NULL, 0), AUTHCERT_DELIVERY_QUEUED);
    /* A broadcast delivery's own id is not what its token said. */
    assert_status(authcert_registry_record_agent_result(f->reg, "agent-1", g.id[1],
                                                        AUTHCERT_DELIVERY_DELIVERED, "{}",
                                                        T0, NULL),
                  AUTHCERT_E_NOTFOUND);
    assert_status(authcert_registry_record_agent_result(f->reg, "ghost", cb,
                                                        AUTHCERT_DELIVERY_DELIVERED, "{}",
                                                        T0, NULL),
                  AUTHCERT_E_NOTFOUND);
    assert_status(authcert_registry_record_agent_result(f->reg, "agent-1", 0,
                                                        AUTHCERT_DELIVERY_DELIVERED, "{}",
                                                        T0, NULL),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_record_agent_result(f->reg, "agent-1", cb,
                                                        AUTHCERT_DELIVERY_DELIVERED, "{x",
                                                        T0, NULL),
                  AUTHCERT_E_USAGE);
    assert_int_equal(state_of(f, cb, "agent-1", NULL, 0), AUTHCERT_DELIVERY_QUEUED);
}

static void test_enqueue_matching_is_idempotent_with_a_key(void **state)
{
    fixture *f = *state;
    authcert_agent_filter fa = { .thumbprint = TP_A, .listening = true };
    authcert_agent_filter bad = { .thumbprint = "XYZ" };
    int64_t c = 0, c2 = 0;
    uint64_t n = 99;
    got g = { 0 };

    checkin3(f->reg);
    /* Only agent-1 is on A and listening. */
    assert_ok(authcert_registry_enqueue_matching(f->reg, &fa, "update-key", NULL, "update-key",
                                                 T0, &c, &n));
    assert_int_equal(n, 1);
    assert_int_equal(nqueued(f, "agent-1"), 1);
    assert_int_equal(nqueued(f, "agent-2"), 0);
    assert_int_equal(nqueued(f, "agent-3"), 0);
    /* Again, and with every agent: the queued one is not doubled. */
    assert_ok(authcert_registry_enqueue_matching(f->reg, &fa, "update-key", NULL, "update-key",
                                                 T0 + 1, &c2, &n));
    assert_int_equal(n, 0);
    assert_true(c2 > c);
    assert_ok(authcert_registry_enqueue_matching(f->reg, NULL, "update-key", NULL, "update-key",
                                                 T0 + 2, &c2, &n));
    assert_int_equal(n, 2);
    assert_int_equal(nqueued(f, "agent-1"), 1);
    assert_int_equal(nqueued(f, "agent-2"), 1);
    /* Not a broadcast. */
    assert_ok(authcert_registry_claim_agent(f->reg, "agent-1", 64, 30, T0, got_cb, &g, NULL));
    assert_false(g.broadcast[0]);
    assert_string_equal(g.command[0], "update-key");
    /* Settled, the key is free again. */
    assert_ok(authcert_registry_record_result(f->reg, g.id[0], AUTHCERT_DELIVERY_DELIVERED,
                                              NULL, T0 + 3));
    assert_ok(authcert_registry_enqueue_matching(f->reg, &fa, "update-key", NULL, "update-key",
                                                 T0 + 4, NULL, &n));
    assert_int_equal(n, 1);
    /* Without a key nothing is skipped. */
    assert_ok(authcert_registry_enqueue_matching(f->reg, &fa, "ping", NULL, NULL, T0, NULL, &n));
    assert_ok(authcert_registry_enqueue_matching(f->reg, &fa, "ping", NULL, NULL, T0, NULL, &n));
    assert_int_equal(n, 1);
    assert_int_equal(nqueued(f, "agent-1"), 3);

    assert_status(authcert_registry_enqueue_matching(f->reg, &bad, "ping", NULL, NULL, T0,
                                                     NULL, &n),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_enqueue_matching(f->reg, &fa, "ping", NULL, "a key", T0,
                                                     NULL, &n),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_enqueue_matching(f->reg, &fa, "ping", "[]", NULL, T0,
                                                     NULL, &n),
                  AUTHCERT_E_USAGE);
    assert_int_equal(nqueued(f, "agent-1"), 3);
}

static void test_update_thumbprint_only_from_the_expected_one(void **state)
{
    fixture *f = *state;
    authcert_agent *a = NULL;
    bool changed = true;

    checkin3(f->reg);
    assert_ok(authcert_registry_update_thumbprint(f->reg, "agent-3", TP_A, TP_B, &changed));
    assert_false(changed); /* it reports B already, not A */
    assert_ok(authcert_registry_update_thumbprint(f->reg, "agent-1", TP_A, TP_B, &changed));
    assert_true(changed);
    assert_ok(authcert_registry_get_agent(f->reg, "agent-1", &a));
    assert_string_equal(a->thumbprint, TP_B);
    authcert_agent_free(a);
    assert_ok(authcert_registry_update_thumbprint(f->reg, "ghost", TP_A, TP_B, &changed));
    assert_false(changed);
    assert_status(authcert_registry_update_thumbprint(f->reg, "agent-2", TP_A, "", &changed),
                  AUTHCERT_E_USAGE);
    assert_ok(authcert_registry_get_agent(f->reg, "agent-2", &a));
    assert_string_equal(a->thumbprint, TP_A);
    authcert_agent_free(a);
}

/* The version 1 schema as authcert 0.1 wrote it, with one queued delivery. */
static const char v1[] =
    "CREATE TABLE agents (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL UNIQUE,"
    " hostname TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL,"
    " thumbprint TEXT NOT NULL, version TEXT NOT NULL, first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL);"
    "CREATE INDEX agents_thumbprint ON agents(thumbprint);"
    "CREATE TABLE commands (id INTEGER PRIMARY KEY, command TEXT NOT NULL, args TEXT,"
    " broadcast INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE deliveries (id INTEGER PRIMARY KEY,"
    " command_id INTEGER NOT NULL REFERENCES commands(id),"
    " agent INTEGER NOT NULL REFERENCES agents(id),"
    " state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'failed')),"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,"
    " lease_until INTEGER NOT NULL DEFAULT 0, lease_token INTEGER,"
    " updated_at INTEGER NOT NULL, result TEXT, UNIQUE (command_id, agent));"
    "CREATE INDEX deliveries_pending ON deliveries(agent, id) WHERE state = 'queued';"
    "CREATE INDEX deliveries_due ON deliveries(next_attempt_at, id) WHERE state = 'queued';"
    "CREATE INDEX deliveries_lease ON deliveries(lease_token) WHERE lease_token IS NOT NULL;"
    "INSERT INTO agents VALUES (1, 'old-agent', 'h', '192.0.2.1', 7443, '" TP_A "', '0.1.0',"
    " 1780000000, 1780000000);"
    "INSERT INTO commands VALUES (1, 'restart', NULL, 1, 1780000000);"
    "INSERT INTO deliveries(id, command_id, agent, next_attempt_at, updated_at)"
    " VALUES (1, 1, 1, 1780000000, 1780000000);"
    "PRAGMA application_id = 1094931015; PRAGMA user_version = 1;";

/* The same on PostgreSQL, from the current schema the fixture made. */
static const char v1_pg[] =
    "DROP TABLE enroll_tokens; DROP TABLE enroll_pending; ALTER TABLE agents DROP COLUMN "
    "key_spki, DROP COLUMN key_epoch, DROP COLUMN mac_counter, DROP COLUMN enrolled_at, "
    "DROP COLUMN clone_pin, DROP COLUMN clone_seen_at, DROP COLUMN known_before;"
    "DROP INDEX deliveries_once; ALTER TABLE deliveries DROP COLUMN once_key;"
    "ALTER TABLE agents DROP COLUMN key_pin;"
    "UPDATE authcert_meta SET value = '1' WHERE key = 'schema_version';"
    "INSERT INTO agents VALUES (1, 'old-agent', 'h', '192.0.2.1', 7443, '" TP_A "', '0.1.0',"
    " 1780000000, 1780000000);"
    "INSERT INTO commands VALUES (1, 'restart', NULL, 1, 1780000000);"
    "INSERT INTO deliveries(id, command_id, agent, next_attempt_at, updated_at)"
    " VALUES (1, 1, 1, 1780000000, 1780000000);"
    "SELECT setval('authcert_ids', 1), setval(pg_get_serial_sequence('agents', 'id'), 1)";

static void test_version_1_is_migrated(void **state)
{
    fixture *f = *state;
    char path[4200];
    authcert_registry *r = NULL;
    authcert_agent_filter all = { .listening = true };
    sqlite3 *db = NULL;
    int version = 0;
    uint64_t n = 0;
    got g = { 0 };

    if (testlib_pg()) {
        /* The fixture's database, taken back to version 1. */
        authcert_registry_close(f->reg);
        f->reg = NULL;
        assert_int_equal(testlib_registry_sql(f->path, v1_pg), 0);
        snprintf(path, sizeof path, "%s", f->path);
    } else {
        snprintf(path, sizeof path, "%s/v1.db", f->dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }

    assert_ok(authcert_registry_open(path, &r));
    assert_ok(authcert_registry_schema_version(r, &version));
    assert_int_equal(version, AUTHCERT_REGISTRY_SCHEMA_VERSION);
    /* The old delivery is intact: a broadcast, claimable, matched by command id. */
    assert_ok(authcert_registry_claim_agent(r, "old-agent", 64, 30, T0, got_cb, &g, NULL));
    assert_int_equal(g.n, 1);
    assert_true(g.broadcast[0]);
    assert_string_equal(g.command[0], "restart");
    assert_ok(authcert_registry_record_agent_result(r, "old-agent", 1,
                                                    AUTHCERT_DELIVERY_DELIVERED, NULL, T0, NULL));
    /* The new key works on it. */
    assert_ok(authcert_registry_enqueue_matching(r, &all, "update-key", NULL, "update-key", T0,
                                                 NULL, &n));
    assert_ok(authcert_registry_enqueue_matching(r, &all, "update-key", NULL, "update-key", T0,
                                                 NULL, &n));
    assert_int_equal(n, 0);
    authcert_registry_close(r);
    /* Reopening a current file changes nothing. */
    assert_ok(authcert_registry_open(path, &r));
    assert_ok(authcert_registry_schema_version(r, &version));
    assert_int_equal(version, AUTHCERT_REGISTRY_SCHEMA_VERSION);
    authcert_registry_close(r);
}

/* Version 2 (authcert 0.2): version 1 and the idempotency key. */
static const char v1_to_v2[] =
    "ALTER TABLE deliveries ADD COLUMN once_key TEXT;"
    "CREATE UNIQUE INDEX deliveries_once ON deliveries(agent, once_key)"
    " WHERE state = 'queued' AND once_key IS NOT NULL;"
    "PRAGMA user_version = 2;";

/* PostgreSQL: the fixture's database taken back to version 2, with rows. */
static const char v2_pg[] =
    "DROP TABLE enroll_tokens; DROP TABLE enroll_pending; ALTER TABLE agents DROP COLUMN "
    "key_spki, DROP COLUMN key_epoch, DROP COLUMN mac_counter, DROP COLUMN enrolled_at, "
    "DROP COLUMN clone_pin, DROP COLUMN clone_seen_at, DROP COLUMN known_before;"
    "ALTER TABLE agents DROP COLUMN key_pin;"
    "UPDATE authcert_meta SET value = '2' WHERE key = 'schema_version';"
    "INSERT INTO agents VALUES (1, 'old-agent', 'h', '192.0.2.1', 7443, '" TP_A "', '0.1.0',"
    " 1780000000, 1780000000);"
    "INSERT INTO commands VALUES (1, 'restart', NULL, 1, 1780000000);"
    "INSERT INTO deliveries(id, command_id, agent, next_attempt_at, updated_at)"
    " VALUES (2, 1, 1, 1780000000, 1780000000);"
    "SELECT setval('authcert_ids', 2), setval(pg_get_serial_sequence('agents', 'id'), 1)";

/* Version 3 adds agents.key_pin: existing agents have none ('') until they report one. */
static void test_version_2_is_migrated(void **state)
{
    fixture *f = *state;
    char path[4200];
    authcert_registry *r = NULL;
    authcert_agent_report rep = report("old-agent", TP_A, 7443);
    authcert_agent *a = NULL;
    sqlite3 *db = NULL;
    int version = 0;
    got g = { 0 };

    if (testlib_pg()) {
        authcert_registry_close(f->reg);
        f->reg = NULL;
        assert_int_equal(testlib_registry_sql(f->path, v2_pg), 0);
        snprintf(path, sizeof path, "%s", f->path);
    } else {
        snprintf(path, sizeof path, "%s/v2.db", f->dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, v1_to_v2, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }

    assert_ok(authcert_registry_open(path, &r));
    assert_ok(authcert_registry_schema_version(r, &version));
    assert_int_equal(version, AUTHCERT_REGISTRY_SCHEMA_VERSION);
    assert_ok(authcert_registry_get_agent(r, "old-agent", &a));
    assert_string_equal(a->key_pin, "");
    assert_string_equal(a->thumbprint, TP_A);
    assert_int_equal(a->first_seen, 1780000000);
    authcert_agent_free(a);
    assert_ok(authcert_registry_claim_agent(r, "old-agent", 64, 30, T0, got_cb, &g, NULL));
    assert_int_equal(g.n, 1);
    assert_string_equal(g.command[0], "restart");
    assert_string_equal(g.key_pin[0], "");
    /* The old agent's first pin is recorded, and kept. */
    rep.key_pin = PIN_A;
    assert_ok(authcert_registry_checkin(r, &rep, T0 + 1));
    rep.key_pin = PIN_B;
    assert_ok(authcert_registry_checkin(r, &rep, T0 + 2));
    authcert_registry_close(r);
    assert_ok(authcert_registry_open(path, &r));
    assert_ok(authcert_registry_schema_version(r, &version));
    assert_int_equal(version, AUTHCERT_REGISTRY_SCHEMA_VERSION);
    assert_ok(authcert_registry_get_agent(r, "old-agent", &a));
    assert_string_equal(a->key_pin, PIN_A);
    assert_int_equal(a->last_seen, T0 + 2);
    authcert_agent_free(a);
    /* Version 4: an agent from before enrollment is known, and not bound. */
    authcert_agent_identity *id = NULL;
    assert_ok(authcert_registry_get_identity(r, "old-agent", &id));
    assert_true(id->known_before);
    assert_string_equal(id->key_spki, "");
    assert_int_equal(id->key_epoch, 0);
    authcert_agent_identity_free(id);
    authcert_registry_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check_in_and_push_never_take_the_same_delivery,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_claims_hand_the_recorded_key_pin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_listener_less_agent_gets_its_commands_at_check_in_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_checkin_only_outcome_waits_for_the_check_in,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_agent_with_nothing_does_not_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_results_are_matched_to_the_reporting_agent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_matching_is_idempotent_with_a_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_update_thumbprint_only_from_the_expected_one,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_1_is_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_2_is_migrated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
