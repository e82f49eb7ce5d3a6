/*
 * The agent registry: check-ins, iteration, the command queue. The same
 * tests run on SQLite (unit/test_registry) and on PostgreSQL
 * (unit/test_registry_pg: AUTHCERT_TEST_PG_URI names a throwaway cluster).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pthread.h>
#include <sqlite3.h>

#include "authcert/registry.h"
#include "authcert/registry_copy.h"
#include "testlib.h"
#include "testlib_registry.h"

#define TP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define TP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define T0 1780000000
/* Key pins: "sha256//" + base64 of a SHA-256 (of "a" and of "b"). */
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

    f->dir = testlib_tmpdir("registry");
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

static authcert_agent_report report(const char *id, const char *tp)
{
    authcert_agent_report r = { .agent_id = id, .hostname = "host-1.example",
                                .address = "192.0.2.7", .port = 7443,
                                .thumbprint = tp, .version = "0.1.0" };
    return r;
}

static uint64_t count(authcert_registry *reg)
{
    uint64_t n = 99;

    assert_ok(authcert_registry_count_agents(reg, &n));
    return n;
}

static void test_checkin_inserts_then_updates(void **state)
{
    fixture *f = *state;
    authcert_agent_report r = report("6f1c2d3e-0000-4000-8000-000000000001", TP_A);
    authcert_agent *a = NULL;

    assert_ok(authcert_registry_checkin(f->reg, &r, T0));
    r.thumbprint = TP_B;
    r.hostname = "renamed";
    r.port = 9000;
    assert_ok(authcert_registry_checkin(f->reg, &r, T0 + 60));

    assert_ok(authcert_registry_get_agent(f->reg, r.agent_id, &a));
    assert_string_equal(a->agent_id, r.agent_id);
    assert_string_equal(a->hostname, "renamed");
    assert_string_equal(a->address, "192.0.2.7");
    assert_int_equal(a->port, 9000);
    assert_string_equal(a->thumbprint, TP_B);
    assert_string_equal(a->version, "0.1.0");
    assert_int_equal(a->first_seen, T0);
    assert_int_equal(a->last_seen, T0 + 60);
    authcert_agent_free(a);
    assert_int_equal(count(f->reg), 1);

    /* No certificate at all is "" (NULL in the report). */
    r.thumbprint = NULL;
    r.version = NULL;
    assert_ok(authcert_registry_checkin(f->reg, &r, T0 + 120));
    assert_ok(authcert_registry_get_agent(f->reg, r.agent_id, &a));
    assert_string_equal(a->thumbprint, "");
    assert_string_equal(a->version, "");
    authcert_agent_free(a);

    a = (authcert_agent *)1;
    assert_status(authcert_registry_get_agent(f->reg, "nobody", &a), AUTHCERT_E_NOTFOUND);
    assert_null(a);
}

static void test_untrusted_reports_are_bounded(void **state)
{
    fixture *f = *state;
    char id[AUTHCERT_AGENT_ID_MAX + 2], host[AUTHCERT_HOSTNAME_MAX + 2];
    authcert_agent_report r;
    struct { const char *id, *host, *addr, *tp, *field; } bad[] = {
        { "", "h", "a", TP_A, "agent id" },
        { "has space", "h", "a", TP_A, "agent id" },
        { "tab\there", "h", "a", TP_A, "agent id" },
        { "caf\xc3\xa9", "h", "a", TP_A, "agent id" },
        { "ok", "line\nbreak", "a", TP_A, "hostname" },
        { "ok", "bad\xc3(utf8", "a", TP_A, "hostname" },
        { "ok", "overlong\xc0\xaf", "a", TP_A, "hostname" },
        /* names that would display as another (spoofing in --agents, -l) */
        { "ok", "web-1\xe2\x80\xae" "gpj.exe", "a", TP_A, "hostname" },     /* U+202E */
        { "ok", "web\xe2\x80\x8b-1", "a", TP_A, "hostname" },                /* U+200B */
        { "ok", "web\xe2\x80\xa8" "1", "a", TP_A, "hostname" },               /* U+2028 */
        { "ok", "web\xe2\x81\xa6" "1", "a", TP_A, "hostname" },               /* U+2066 */
        { "ok", "\xef\xbb\xbfweb-1", "a", TP_A, "hostname" },                 /* U+FEFF */
        { "ok", "web\xe2\x80\x8f" "1", "a", TP_A, "hostname" },               /* U+200F */
        { "ok", "h", "a b", TP_A, "address" },
        { "ok", "h", "a", "AAAA", "thumbprint" },
        { "ok", "h", "a", TP_A "0", "thumbprint" },
    };

    memset(id, 'x', sizeof id - 1);
    id[AUTHCERT_AGENT_ID_MAX] = '\0';
    memset(host, 'h', sizeof host - 1);
    host[AUTHCERT_HOSTNAME_MAX] = '\0';
    r = report(id, TP_A);
    r.hostname = host;
    /* Exactly at the bounds is fine, and UTF-8 hostnames are. */
    assert_ok(authcert_registry_checkin(f->reg, &r, T0));
    r.hostname = "b\xc3\xbcro-pc";
    assert_ok(authcert_registry_checkin(f->reg, &r, T0));

    id[AUTHCERT_AGENT_ID_MAX] = 'x';
    id[AUTHCERT_AGENT_ID_MAX + 1] = '\0';
    assert_status(authcert_registry_checkin(f->reg, &r, T0), AUTHCERT_E_USAGE);
    assert_non_null(strstr(authcert_detail(), "agent id"));
    host[AUTHCERT_HOSTNAME_MAX] = 'h';
    host[AUTHCERT_HOSTNAME_MAX + 1] = '\0';
    r = report("ok", TP_A);
    r.hostname = host;
    assert_status(authcert_registry_checkin(f->reg, &r, T0), AUTHCERT_E_USAGE);
    assert_non_null(strstr(authcert_detail(), "hostname"));

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = report(bad[i].id, bad[i].tp);
        r.hostname = bad[i].host;
        r.address = bad[i].addr;
        assert_status(authcert_registry_checkin(f->reg, &r, T0), AUTHCERT_E_USAGE);
        if (strstr(authcert_detail(), bad[i].field) == NULL)
            fail_msg("case %zu: detail '%s' does not name %s", i, authcert_detail(),
                     bad[i].field);
    }
    assert_int_equal(count(f->reg), 1);
}

static authcert_agent_report *many(size_t n, char (*ids)[48])
{
    authcert_agent_report *r = calloc(n, sizeof *r);

    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "%08zx-9c1e-4b7a-8f00-%012zx",
                 (i * 2654435761u) & 0xffffffffu, i & 0xffffffffffffu);
        r[i] = report(ids[i], i % 4 == 0 ? TP_A : TP_B);
    }
    return r;
}

typedef struct seen {
    size_t n;
    char first[AUTHCERT_AGENT_ID_MAX + 1];
    char last[AUTHCERT_AGENT_ID_MAX + 1];
    size_t stop_at;
} seen;

static authcert_status count_cb(void *ctx, const authcert_agent *a)
{
    seen *s = ctx;

    if (s->n == 0)
        snprintf(s->first, sizeof s->first, "%s", a->agent_id);
    snprintf(s->last, sizeof s->last, "%s", a->agent_id);
    if (++s->n == s->stop_at)
        return AUTHCERT_E_IO;
    return AUTHCERT_OK;
}

static authcert_status tp_cb(void *ctx, const char *tp, uint64_t n)
{
    uint64_t *counts = ctx;

    if (strcmp(tp, TP_A) == 0)
        counts[0] = n;
    else if (strcmp(tp, TP_B) == 0)
        counts[1] = n;
    else
        counts[2] += n;
    return AUTHCERT_OK;
}

static void test_batch_count_foreach(void **state)
{
    fixture *f = *state;
    enum { N = 10000 };
    char (*ids)[48] = calloc(N, sizeof *ids);
    authcert_agent_report *r = many(N, ids);
    authcert_agent_filter filt = { .thumbprint = TP_A };
    uint64_t counts[3] = { 0 };
    seen s = { 0 };

    assert_ok(authcert_registry_checkin_batch(f->reg, r, N, T0));
    assert_int_equal(count(f->reg), N);
    /* A second batch updates, it does not add. */
    assert_ok(authcert_registry_checkin_batch(f->reg, r, N, T0 + 1));
    assert_int_equal(count(f->reg), N);

    assert_ok(authcert_registry_foreach_agent(f->reg, NULL, count_cb, &s));
    assert_int_equal(s.n, N);
    assert_string_equal(s.first, ids[0]);
    assert_string_equal(s.last, ids[N - 1]);

    memset(&s, 0, sizeof s);
    assert_ok(authcert_registry_foreach_agent(f->reg, &filt, count_cb, &s));
    assert_int_equal(s.n, N / 4);
    memset(&s, 0, sizeof s);
    filt = (authcert_agent_filter){ .not_thumbprint = TP_A, .seen_since = T0 + 1 };
    assert_ok(authcert_registry_foreach_agent(f->reg, &filt, count_cb, &s));
    assert_int_equal(s.n, N - N / 4);
    memset(&s, 0, sizeof s);
    filt = (authcert_agent_filter){ .seen_before = T0 + 1 };
    assert_ok(authcert_registry_foreach_agent(f->reg, &filt, count_cb, &s));
    assert_int_equal(s.n, 0);

    /* The callback's status stops the walk and comes back. */
    memset(&s, 0, sizeof s);
    s.stop_at = 10;
    assert_status(authcert_registry_foreach_agent(f->reg, NULL, count_cb, &s), AUTHCERT_E_IO);
    assert_int_equal(s.n, 10);

    assert_ok(authcert_registry_count_by_thumbprint(f->reg, tp_cb, counts));
    assert_int_equal(counts[0], N / 4);
    assert_int_equal(counts[1], N - N / 4);
    assert_int_equal(counts[2], 0);

    /* One bad report refuses the whole batch, naming it. */
    r[5].hostname = "evil\r\n";
    r[0].agent_id = "brand-new-agent";
    assert_status(authcert_registry_checkin_batch(f->reg, r, N, T0 + 2), AUTHCERT_E_USAGE);
    assert_non_null(strstr(authcert_detail(), "report 5 of"));
    assert_int_equal(count(f->reg), N);
    free(r);
    free(ids);
}

static void assert_pin(authcert_registry *reg, const char *agent_id, const char *want)
{
    authcert_agent *a = NULL;

    assert_ok(authcert_registry_get_agent(reg, agent_id, &a));
    assert_string_equal(a->key_pin, want);
    authcert_agent_free(a);
}

static authcert_status pins_cb(void *ctx, const authcert_agent *a)
{
    char *text = ctx;
    size_t used = strlen(text);

    snprintf(text + used, 512 - used, "[%s %s]", a->agent_id, a->key_pin);
    return AUTHCERT_OK;
}

/*
 * The first key pin an agent id reports is kept until enrollment binds
 * keys: whoever checks in later under that id with another key (or none)
 * does not move it, so authcertd never pushes to that other key.
 */
static void test_the_first_key_pin_stays(void **state)
{
    fixture *f = *state;
    authcert_agent_report r = report("agent-1", TP_A), b[3];
    char pins[512] = "";

    assert_ok(authcert_registry_checkin(f->reg, &r, T0));
    assert_pin(f->reg, "agent-1", ""); /* none reported yet */
    r.key_pin = PIN_A;
    assert_ok(authcert_registry_checkin(f->reg, &r, T0 + 1));
    assert_pin(f->reg, "agent-1", PIN_A);
    r.key_pin = PIN_B;
    r.hostname = "impostor";
    assert_ok(authcert_registry_checkin(f->reg, &r, T0 + 2));
    assert_pin(f->reg, "agent-1", PIN_A);
    r.key_pin = "";
    assert_ok(authcert_registry_checkin(f->reg, &r, T0 + 3));
    r.key_pin = NULL;
    assert_ok(authcert_registry_checkin_batch(f->reg, &r, 1, T0 + 4));
    assert_pin(f->reg, "agent-1", PIN_A);

    /* In one batch as in separate check-ins: the first non-empty pin. */
    b[0] = report("agent-2", TP_B);
    b[1] = report("agent-2", TP_B);
    b[1].key_pin = PIN_B;
    b[2] = report("agent-2", TP_B);
    b[2].key_pin = PIN_A;
    assert_ok(authcert_registry_checkin_batch(f->reg, b, 3, T0 + 5));
    b[0] = report("agent-1", TP_B);
    b[0].key_pin = PIN_B;
    assert_ok(authcert_registry_checkin_batch(f->reg, b, 1, T0 + 6));
    assert_ok(authcert_registry_foreach_agent(f->reg, NULL, pins_cb, pins));
    assert_string_equal(pins, "[agent-1 " PIN_A "][agent-2 " PIN_B "]");
}

static void test_malformed_key_pins_are_refused(void **state)
{
    fixture *f = *state;
    authcert_agent_report r = report("agent-1", TP_A), b[2];
    static const char *const bad[] = {
        "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs",   /* no padding */
        "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs==", /* one too many */
        "sha256//ypeBEsobvcr6wjGzmiPcTaeG7_gUfE5yuYB3ha-uSLs=",  /* base64url */
        "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uS==",   /* 31 bytes */
        "sha1//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=AA",  /* another hash */
        "SHA256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=",
        "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSL =",
        "sha256//", "ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=", " " PIN_A,
    };

    r.key_pin = PIN_A;
    assert_ok(authcert_registry_checkin(f->reg, &r, T0));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = report(i % 2 ? "agent-1" : "agent-new", TP_A);
        r.key_pin = bad[i];
        assert_status(authcert_registry_validate_report(&r), AUTHCERT_E_USAGE);
        assert_status(authcert_registry_checkin(f->reg, &r, T0 + 1), AUTHCERT_E_USAGE);
        if (strstr(authcert_detail(), "key_pin") == NULL)
            fail_msg("case %zu: detail '%s' does not name key_pin", i, authcert_detail());
    }
    /* A batch with one bad pin records nothing. */
    b[0] = report("agent-new", TP_A);
    b[0].key_pin = PIN_B;
    b[1] = report("agent-1", TP_A);
    b[1].key_pin = "sha256//x";
    assert_status(authcert_registry_checkin_batch(f->reg, b, 2, T0 + 2), AUTHCERT_E_USAGE);
    assert_non_null(strstr(authcert_detail(), "report 1 of 2"));
    assert_int_equal(count(f->reg), 1);
    assert_pin(f->reg, "agent-1", PIN_A);
}

/*
 * authcert --migrate-registry keeps the pins, both ways: on SQLite a copy
 * to another file and back; on PostgreSQL to a SQLite file and from it
 * into a second database. Either way the copy's row counts hold.
 */
static void test_a_copy_keeps_the_key_pins(void **state)
{
    fixture *f = *state;
    authcert_agent_report r[2] = { report("agent-1", TP_A), report("agent-2", TP_B) };
    authcert_registry_copy_stats st = { 0 };
    authcert_registry *back = NULL;
    char mid[4200], *dst;

    r[0].key_pin = PIN_A;
    assert_ok(authcert_registry_checkin_batch(f->reg, r, 2, T0));
    snprintf(mid, sizeof mid, "%s/copy.db", f->dir);
    assert_ok(authcert_registry_copy(f->path, mid, &st));
    assert_int_equal(st.agents, 2);
    if (testlib_pg()) {
        dst = testlib_registry_new(f->dir);
    } else if (asprintf(&dst, "%s/back.db", f->dir) < 0) {
        fail();
    }
    assert_ok(authcert_registry_copy(mid, dst, &st));
    assert_int_equal(st.agents, 2);
    assert_ok(authcert_registry_open(dst, &back));
    assert_pin(back, "agent-1", PIN_A);
    assert_pin(back, "agent-2", "");
    /* Still the first pin there: a new one does not replace it. */
    r[0].key_pin = PIN_B;
    assert_ok(authcert_registry_checkin(back, &r[0], T0 + 1));
    assert_pin(back, "agent-1", PIN_A);
    authcert_registry_close(back);
    testlib_registry_drop(dst);
    free(dst);
}

/* Collects deliveries (a copy of what the tests look at). */
typedef struct got {
    size_t n;
    int64_t id[16];
    int64_t command_id[16];
    char agent[16][64];
    char command[16][32];
    char args[16][64];
    char result[16][64];
    authcert_delivery_state state[16];
    unsigned attempts[16];
    time_t next[16], lease[16];
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
    snprintf(g->args[i], sizeof g->args[i], "%s", d->args_json ? d->args_json : "(null)");
    snprintf(g->result[i], sizeof g->result[i], "%s",
             d->result_json ? d->result_json : "(null)");
    g->state[i] = d->state;
    g->attempts[i] = d->attempts;
    g->next[i] = d->next_attempt_at;
    g->lease[i] = d->lease_until;
    return AUTHCERT_OK;
}

static void checkin3(authcert_registry *reg)
{
    authcert_agent_report r[3] = { report("agent-1", TP_A), report("agent-2", TP_A),
                                   report("agent-3", TP_B) };
    assert_ok(authcert_registry_checkin_batch(reg, r, 3, T0));
}

static void test_queue_enqueue_pending_claim_result(void **state)
{
    fixture *f = *state;
    int64_t c1 = 0, c2 = 0, c3 = 0;
    uint64_t n = 0;
    size_t claimed = 99;
    got g = { 0 };
    const char *list[] = { "agent-1", "agent-3" }, *dup[] = { "agent-1", "agent-1" },
               *unknown[] = { "agent-1", "ghost" };

    checkin3(f->reg);
    assert_ok(authcert_registry_enqueue(f->reg, "agent-2", "run", "{\"script\":\"x\"}",
                                        T0 + 1, &c1));
    assert_ok(authcert_registry_enqueue_all(f->reg, "restart", NULL, T0 + 2, &c2, &n));
    assert_int_equal(n, 3);
    assert_ok(authcert_registry_enqueue_list(f->reg, list, 2, "ping", "{}", T0 + 3, &c3));
    assert_true(c1 > 0 && c2 > c1 && c3 > c2);

    /* Refusals queue nothing. */
    assert_status(authcert_registry_enqueue(f->reg, "ghost", "run", NULL, T0, NULL),
                  AUTHCERT_E_NOTFOUND);
    assert_status(authcert_registry_enqueue_list(f->reg, unknown, 2, "run", NULL, T0, NULL),
                  AUTHCERT_E_NOTFOUND);
    assert_non_null(strstr(authcert_detail(), "ghost"));
    assert_status(authcert_registry_enqueue_list(f->reg, dup, 2, "run", NULL, T0, NULL),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_enqueue(f->reg, "agent-1", "run", "[1]", T0, NULL),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_enqueue(f->reg, "agent-1", "run",
                                            "{\"a\":1,\"a\":2}", T0, NULL),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_enqueue(f->reg, "agent-1", "", NULL, T0, NULL),
                  AUTHCERT_E_USAGE);

    /* agent-2: its own command, then the broadcast; oldest first. */
    assert_ok(authcert_registry_pending(f->reg, "agent-2", got_cb, &g));
    assert_int_equal(g.n, 2);
    assert_string_equal(g.command[0], "run");
    assert_string_equal(g.args[0], "{\"script\":\"x\"}");
    assert_string_equal(g.command[1], "restart");
    assert_string_equal(g.args[1], "(null)");
    memset(&g, 0, sizeof g);
    assert_ok(authcert_registry_pending(f->reg, "agent-1", got_cb, &g));
    assert_int_equal(g.n, 2);
    memset(&g, 0, sizeof g);
    assert_ok(authcert_registry_pending(f->reg, "ghost", got_cb, &g));
    assert_int_equal(g.n, 0);

    /* Claim 3 of the 6 deliveries with a 60 s lease. */
    memset(&g, 0, sizeof g);
    assert_ok(authcert_registry_claim(f->reg, 3, 60, T0 + 10, got_cb, &g, &claimed));
    assert_int_equal(claimed, 3);
    assert_int_equal(g.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(g.attempts[i], 1);
        assert_int_equal(g.lease[i], T0 + 70);
    }
    assert_string_equal(g.agent[0], "agent-2"); /* oldest first */
    /* The rest, then nothing while the leases run. */
    got g2 = { 0 };
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 20, got_cb, &g2, &claimed));
    assert_int_equal(claimed, 3);
    memset(&g2, 0, sizeof g2);
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 69, got_cb, &g2, &claimed));
    assert_int_equal(claimed, 0);
    assert_int_equal(g2.n, 0);

    /* Deliver the first, fail the second for good, retry the third. */
    assert_ok(authcert_registry_record_result(f->reg, g.id[0], AUTHCERT_DELIVERY_DELIVERED,
                                              "{\"exit\":0}", T0 + 30));
    assert_ok(authcert_registry_record_result(f->reg, g.id[1], AUTHCERT_DELIVERY_FAILED,
                                              "\"unreachable\"", T0 + 30));
    assert_ok(authcert_registry_record_result(f->reg, g.id[2], AUTHCERT_DELIVERY_QUEUED,
                                              NULL, T0 + 30));
    assert_status(authcert_registry_record_result(f->reg, g.id[0], AUTHCERT_DELIVERY_FAILED,
                                                  NULL, T0 + 31), AUTHCERT_E_POLICY);
    assert_status(authcert_registry_record_result(f->reg, 424242, AUTHCERT_DELIVERY_DELIVERED,
                                                  NULL, T0 + 31), AUTHCERT_E_NOTFOUND);
    assert_status(authcert_registry_record_result(f->reg, g.id[2], AUTHCERT_DELIVERY_DELIVERED,
                                                  "{bad json", T0 + 31), AUTHCERT_E_USAGE);

    /* The retried one is due after its 30 s backoff (second attempt), while
     * the second claim's leases still run; when they end, those come back. */
    memset(&g2, 0, sizeof g2);
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 59, got_cb, &g2, &claimed));
    assert_int_equal(claimed, 0);
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 60, got_cb, &g2, &claimed));
    assert_int_equal(claimed, 1);
    assert_int_equal(g2.id[0], g.id[2]);
    assert_int_equal(g2.attempts[0], 2);
    memset(&g2, 0, sizeof g2);
    assert_ok(authcert_registry_claim(f->reg, 100, 60, T0 + 80, got_cb, &g2, &claimed));
    assert_int_equal(claimed, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(g2.attempts[i], 2);
        assert_int_not_equal(g2.id[i], g.id[2]);
    }

    /* Results of the broadcast: one row per agent, states as recorded. */
    got r = { 0 };
    assert_ok(authcert_registry_results(f->reg, c2, got_cb, &r));
    assert_int_equal(r.n, 3);
    assert_string_equal(r.agent[0], "agent-1");
    assert_string_equal(r.agent[2], "agent-3");
    for (size_t i = 0; i < r.n; i++)
        assert_int_equal(r.command_id[i], c2);
    memset(&r, 0, sizeof r);
    assert_ok(authcert_registry_results(f->reg, c1, got_cb, &r));
    assert_int_equal(r.n, 1);
    assert_int_equal(r.state[0], AUTHCERT_DELIVERY_DELIVERED);
    assert_string_equal(r.result[0], "{\"exit\":0}");
    assert_status(authcert_registry_results(f->reg, 9999, got_cb, &r), AUTHCERT_E_NOTFOUND);

    /* Delivered leaves pending; argument bounds. */
    memset(&g2, 0, sizeof g2);
    assert_ok(authcert_registry_pending(f->reg, "agent-2", got_cb, &g2));
    assert_int_equal(g2.n, 1);
    assert_status(authcert_registry_claim(f->reg, 0, 60, T0, got_cb, &g2, NULL),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_claim(f->reg, 10, 0, T0, got_cb, &g2, NULL),
                  AUTHCERT_E_USAGE);
}

static void test_queue_survives_reopen(void **state)
{
    fixture *f = *state;
    int64_t c = 0;
    int version = 0;
    got g = { 0 };

    checkin3(f->reg);
    assert_ok(authcert_registry_enqueue(f->reg, "agent-3", "collect", "{\"n\":1}", T0, &c));
    authcert_registry_close(f->reg);
    f->reg = NULL;

    assert_ok(authcert_registry_open(f->path, &f->reg));
    assert_ok(authcert_registry_schema_version(f->reg, &version));
    assert_int_equal(version, AUTHCERT_REGISTRY_SCHEMA_VERSION);
    assert_int_equal(count(f->reg), 3);
    assert_ok(authcert_registry_pending(f->reg, "agent-3", got_cb, &g));
    assert_int_equal(g.n, 1);
    assert_int_equal(g.command_id[0], c);
    assert_string_equal(g.args[0], "{\"n\":1}");

    /* "sqlite:" names the same file; "postgres://" the same database. */
    authcert_registry *again = NULL;
    char uri[4200];
    if (testlib_pg())
        snprintf(uri, sizeof uri, "postgres://%s", f->path + strlen("postgresql://"));
    else
        snprintf(uri, sizeof uri, "sqlite:%s", f->path);
    assert_ok(authcert_registry_open(uri, &again));
    assert_int_equal(count(again), 3);
    authcert_registry_close(again);
}

static void test_file_mode_and_uris(void **state)
{
    fixture *f = *state;
    authcert_registry *r = (authcert_registry *)1;
    struct stat st;
    char uri[4200];

    if (!testlib_pg()) {
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    /* A malformed PostgreSQL URI is the operator's mistake; no server is IO. */
    assert_status(authcert_registry_open("postgresql://db:notaport/authcert", &r),
                  AUTHCERT_E_USAGE);
    assert_null(r);
    snprintf(uri, sizeof uri, "postgresql:///authcert?host=%s&port=1", f->dir);
    assert_status(authcert_registry_open(uri, &r), AUTHCERT_E_IO);
    assert_non_null(strstr(authcert_detail(), "cannot connect"));
    assert_null(strstr(authcert_detail(), "postgresql://")); /* the URI may hold a password */
    assert_status(authcert_registry_open("sqlite:", &r), AUTHCERT_E_USAGE);
    assert_status(authcert_registry_open("/nonexistent-dir/x/registry.db", &r),
                  AUTHCERT_E_NOTFOUND);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = calloc(1, 1 << 16);

    assert_non_null(fp);
    *len = fread(buf, 1, (1 << 16) - 1, fp);
    fclose(fp);
    return buf;
}

static void test_not_sqlite_is_corrupt(void **state)
{
    fixture *f = *state;
    authcert_registry *r = NULL;
    char path[4200];
    const char junk[] = "this is a CSV file, not a database\n1,2,3\n";
    size_t len;
    char *after;

    if (testlib_pg()) {
        /* Someone else's table "agents" in the database: refused, untouched. */
        char *other = testlib_registry_new(f->dir);
        assert_int_equal(testlib_registry_sql(other, "CREATE TABLE agents(x int); "
                                              "INSERT INTO agents VALUES (7)"), 0);
        assert_status(authcert_registry_open(other, &r), AUTHCERT_E_CORRUPT);
        assert_null(r);
        assert_non_null(strstr(authcert_detail(), "not an authcert registry"));
        assert_int_equal(testlib_registry_sql(other, "DO $$ BEGIN IF (SELECT count(*) FROM "
                                              "pg_tables WHERE schemaname = 'public') <> 1 "
                                              "OR (SELECT x FROM agents) <> 7 THEN "
                                              "RAISE 'changed'; END IF; END $$"), 0);
        testlib_registry_drop(other);
        free(other);
        return;
    }
    snprintf(path, sizeof path, "%s/junk.db", f->dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fwrite(junk, 1, sizeof junk - 1, fp);
    fclose(fp);
    assert_status(authcert_registry_open(path, &r), AUTHCERT_E_CORRUPT);
    assert_null(r);
    assert_non_null(strstr(authcert_detail(), "not a SQLite database"));
    assert_non_null(strstr(authcert_detail(), "junk.db"));
    after = slurp(path, &len);
    assert_int_equal(len, sizeof junk - 1);
    assert_memory_equal(after, junk, len);
    free(after);
}

static void test_foreign_and_newer_databases_are_refused(void **state)
{
    fixture *f = *state;
    authcert_registry *r = NULL;
    sqlite3 *db;
    char path[4200];
    int v = -1;

    if (testlib_pg()) {
        /* Someone else's authcert_meta, then ours from the future. */
        char *other = testlib_registry_new(f->dir);
        assert_int_equal(testlib_registry_sql(other, "CREATE TABLE authcert_meta"
                                              "(key text, value text)"), 0);
        assert_status(authcert_registry_open(other, &r), AUTHCERT_E_CORRUPT);
        testlib_registry_drop(other);
        free(other);
        authcert_registry_close(f->reg);
        f->reg = NULL;
        assert_int_equal(testlib_registry_sql(f->path, "UPDATE authcert_meta SET value = '99' "
                                              "WHERE key = 'schema_version'"), 0);
        assert_status(authcert_registry_open(f->path, &r), AUTHCERT_E_POLICY);
        assert_non_null(strstr(authcert_detail(), "schema version 99 is newer"));
        assert_int_equal(testlib_registry_sql(f->path, "DO $$ BEGIN IF (SELECT value FROM "
                                              "authcert_meta WHERE key = 'schema_version') "
                                              "<> '99' THEN RAISE 'changed'; END IF; END $$"),
                         0);
        return;
    }
    /* Someone else's SQLite database: refused, not turned into WAL. */
    snprintf(path, sizeof path, "%s/other.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_status(authcert_registry_open(path, &r), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "not an authcert registry"));
    assert_int_equal(testlib_sh("test \"$(sqlite3 '%s' 'PRAGMA journal_mode')\" = delete",
                                path), 0);

    /* Ours, but from the future. */
    authcert_registry_close(f->reg);
    f->reg = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_status(authcert_registry_open(f->path, &r), AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "schema version 99 is newer"));
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(v, 99);
}

/*
 * Two handles are two nodes (or two worker threads): claiming at the same
 * time from one queue, every delivery goes to exactly one of them (on
 * PostgreSQL: FOR UPDATE SKIP LOCKED; on SQLite: the write lock), a result
 * is recorded once, and a lease left by a node that died goes to the other.
 */
enum { RACE_AGENTS = 300 };

typedef struct racer {
    const char *uri;
    unsigned char *owner; /* per delivery id offset: who claimed it */
    int64_t base;
    int me;
    size_t claimed, dup;
} racer;

static authcert_status race_cb(void *ctx, const authcert_delivery *d)
{
    racer *r = ctx;
    int64_t i = d->id - r->base;

    if (i < 0 || i >= 4 * RACE_AGENTS || r->owner[i] != 0)
        r->dup++;
    else
        r->owner[i] = (unsigned char)r->me;
    r->claimed++;
    return AUTHCERT_OK;
}

static void *race(void *arg)
{
    racer *r = arg;
    authcert_registry *reg = NULL;
    size_t n = 0;

    if (authcert_registry_open(r->uri, &reg) != AUTHCERT_OK)
        return NULL;
    do {
        if (authcert_registry_claim(reg, 7, 60, T0 + 10, race_cb, r, &n) != AUTHCERT_OK)
            break;
    } while (n > 0);
    authcert_registry_close(reg);
    return NULL;
}

static authcert_status first_id(void *ctx, const authcert_delivery *d)
{
    int64_t *min = ctx;

    if (*min == 0 || d->id < *min)
        *min = d->id;
    return AUTHCERT_OK;
}

static void test_two_nodes_claim_each_delivery_once(void **state)
{
    fixture *f = *state;
    char (*ids)[48] = calloc(RACE_AGENTS, sizeof *ids);
    authcert_agent_report *rep = many(RACE_AGENTS, ids);
    unsigned char *owner = calloc(4 * RACE_AGENTS, 1);
    racer a = { .uri = f->path, .owner = owner, .me = 1 };
    racer b = { .uri = f->path, .owner = owner, .me = 2 };
    pthread_t ta, tb;
    int64_t cmd = 0, base = 0;
    uint64_t n = 0;
    size_t claimed = 0;
    got g = { 0 };

    assert_ok(authcert_registry_checkin_batch(f->reg, rep, RACE_AGENTS, T0));
    assert_ok(authcert_registry_enqueue_all(f->reg, "restart", NULL, T0, &cmd, &n));
    assert_int_equal(n, RACE_AGENTS);
    assert_ok(authcert_registry_results(f->reg, cmd, first_id, &base));
    a.base = b.base = base;

    /* The two claim loops write owner[] apart: a slot is claimed once. */
    assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.dup + b.dup, 0);
    assert_int_equal(a.claimed + b.claimed, RACE_AGENTS);

    /* "Node 1" dies holding its leases: after they end, node 2 gets them. */
    assert_ok(authcert_registry_claim(f->reg, 10000, 60, T0 + 69, got_cb, &g, &claimed));
    assert_int_equal(claimed, 0);
    authcert_registry *other = NULL;
    racer c = { .owner = calloc(4 * RACE_AGENTS, 1), .base = base, .me = 3 };
    assert_ok(authcert_registry_open(f->path, &other));
    assert_ok(authcert_registry_claim(other, 10000, 60, T0 + 70, race_cb, &c, &claimed));
    assert_int_equal(claimed, RACE_AGENTS);
    assert_int_equal(c.dup, 0);

    /* A result is recorded once, whichever node reports it. */
    assert_ok(authcert_registry_record_result(other, base, AUTHCERT_DELIVERY_DELIVERED,
                                              "{\"ok\":true}", T0 + 71));
    assert_status(authcert_registry_record_result(f->reg, base, AUTHCERT_DELIVERY_DELIVERED,
                                                  "{\"ok\":false}", T0 + 72),
                  AUTHCERT_E_POLICY);
    authcert_registry_close(other);
    free(c.owner);
    free(owner);
    free(rep);
    free(ids);
}

struct node_seen {
    char text[512];
};

static authcert_status collect_node(void *ctx, const authcert_node *n)
{
    struct node_seen *ns = ctx;
    size_t used = strlen(ns->text);

    snprintf(ns->text + used, sizeof ns->text - used, "[%s %.8s %lld]", n->node_id,
             n->thumbprint, (long long)n->last_seen);
    return AUTHCERT_OK;
}

/* Server nodes and the certificate each serves with, on both backends. */
static void test_nodes_report_their_certificate(void **state)
{
    fixture *f = *state;
    authcert_registry *other = NULL;
    struct node_seen ns = { "" };
    char a[65], b[65];

    memset(a, 'a', 64);
    memset(b, 'b', 64);
    a[64] = b[64] = '\0';
    assert_ok(authcert_registry_foreach_node(f->reg, 0, collect_node, &ns));
    assert_string_equal(ns.text, "");
    assert_ok(authcert_registry_node_report(f->reg, "node-1", a, 1000));
    /* A second handle: another node on the same registry. */
    assert_ok(authcert_registry_open(f->path, &other));
    assert_ok(authcert_registry_node_report(other, "node-2", a, 1010));
    assert_ok(authcert_registry_node_report(other, "node-2", b, 1020));
    assert_ok(authcert_registry_foreach_node(f->reg, 0, collect_node, &ns));
    assert_string_equal(ns.text, "[node-1 aaaaaaaa 1000][node-2 bbbbbbbb 1020]");
    ns.text[0] = '\0';
    assert_ok(authcert_registry_foreach_node(f->reg, 1001, collect_node, &ns));
    assert_string_equal(ns.text, "[node-2 bbbbbbbb 1020]");
    assert_status(authcert_registry_node_report(f->reg, "bad id", a, 1), AUTHCERT_E_USAGE);
    assert_status(authcert_registry_node_report(f->reg, "node-3", "abc", 1), AUTHCERT_E_USAGE);
    authcert_registry_close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_checkin_inserts_then_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_reports_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_count_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_first_key_pin_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_key_pins_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_copy_keeps_the_key_pins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_enqueue_pending_claim_result, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode_and_uris, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_sqlite_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_and_newer_databases_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_claim_each_delivery_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nodes_report_their_certificate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
