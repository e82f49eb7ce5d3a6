/*
 * authcert_registry_record_results: many outcomes in one durable transaction
 * (the push thread's), each with record_result's rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/registry.h"
#include "testlib.h"

#define TP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define T0 1780000000

typedef struct fixture {
    char *dir, *path;
    authcert_registry *reg;
    int64_t id[3]; /* agent-1..3's deliveries of one command, claimed */
} fixture;

typedef struct seen {
    size_t n;
    int64_t id[8];
    authcert_delivery_state state[8];
    char result[8][64];
    time_t next[8];
} seen;

static authcert_status seen_cb(void *ctx, const authcert_delivery *d)
{
    seen *s = ctx;

    assert_true(s->n < 8);
    s->id[s->n] = d->id;
    s->state[s->n] = d->state;
    s->next[s->n] = d->next_attempt_at;
    snprintf(s->result[s->n], sizeof s->result[0], "%s",
             d->result_json != NULL ? d->result_json : "(null)");
    s->n++;
    return AUTHCERT_OK;
}

static int64_t command;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    authcert_agent_report r[3];
    const char *ids[3] = { "agent-1", "agent-2", "agent-3" };
    seen s = { 0 };
    size_t claimed = 0;

    f->dir = testlib_tmpdir("registry-batch");
    if (asprintf(&f->path, "%s/registry.db", f->dir) < 0)
        abort();
    assert_ok(authcert_registry_open(f->path, &f->reg));
    for (int i = 0; i < 3; i++)
        r[i] = (authcert_agent_report){ .agent_id = ids[i], .hostname = "h",
                                        .address = "192.0.2.7", .port = 7443,
                                        .thumbprint = TP_A, .version = "0.1.0" };
    assert_ok(authcert_registry_checkin_batch(f->reg, r, 3, T0));
    assert_ok(authcert_registry_enqueue_list(f->reg, ids, 3, "ping", NULL, T0, &command));
    assert_ok(authcert_registry_claim(f->reg, 10, 60, T0 + 1, seen_cb, &s, &claimed));
    assert_int_equal(claimed, 3);
    memcpy(f->id, s.id, sizeof f->id);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    authcert_registry_close(f->reg);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

static void test_batch_records_each_with_its_own_status(void **state)
{
    fixture *f = *state;
    seen s = { 0 };
    authcert_delivery_outcome o[5] = {
        { .delivery_id = f->id[0], .state = AUTHCERT_DELIVERY_DELIVERED,
          .result_json = "{\"exit\":0}", .status = AUTHCERT_E_INTERNAL },
        { .delivery_id = f->id[1], .state = AUTHCERT_DELIVERY_FAILED,
          .result_json = "\"unreachable\"" },
        { .delivery_id = f->id[2], .state = AUTHCERT_DELIVERY_QUEUED },
        { .delivery_id = 424242, .state = AUTHCERT_DELIVERY_DELIVERED },
        /* The same delivery twice in one batch: the first outcome stands. */
        { .delivery_id = f->id[0], .state = AUTHCERT_DELIVERY_FAILED },
    };

    assert_ok(authcert_registry_record_results(f->reg, o, 5, T0 + 10));
    assert_int_equal(o[0].status, AUTHCERT_OK);
    assert_int_equal(o[1].status, AUTHCERT_OK);
    assert_int_equal(o[2].status, AUTHCERT_OK);
    assert_int_equal(o[3].status, AUTHCERT_E_NOTFOUND);
    assert_int_equal(o[4].status, AUTHCERT_E_POLICY);

    /* Committed: a second handle sees it (and the retried one backs off). */
    authcert_registry *other = NULL;
    assert_ok(authcert_registry_open(f->path, &other));
    assert_ok(authcert_registry_results(other, command, seen_cb, &s));
    authcert_registry_close(other);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.state[0], AUTHCERT_DELIVERY_DELIVERED);
    assert_string_equal(s.result[0], "{\"exit\":0}");
    assert_int_equal(s.state[1], AUTHCERT_DELIVERY_FAILED);
    assert_string_equal(s.result[1], "\"unreachable\"");
    assert_int_equal(s.state[2], AUTHCERT_DELIVERY_QUEUED);
    assert_int_equal(s.next[2], T0 + 10 + 30);

    /* Recording again: every one is final or gone, nothing changes. */
    assert_ok(authcert_registry_record_results(f->reg, o, 2, T0 + 20));
    assert_int_equal(o[0].status, AUTHCERT_E_POLICY);
    assert_int_equal(o[1].status, AUTHCERT_E_POLICY);
}

static void test_batch_refusals_record_nothing(void **state)
{
    fixture *f = *state;
    seen s = { 0 };
    authcert_delivery_outcome bad_json[2] = {
        { .delivery_id = f->id[0], .state = AUTHCERT_DELIVERY_DELIVERED },
        { .delivery_id = f->id[1], .state = AUTHCERT_DELIVERY_DELIVERED,
          .result_json = "{bad json" },
    };
    authcert_delivery_outcome bad_id[2] = {
        { .delivery_id = f->id[0], .state = AUTHCERT_DELIVERY_DELIVERED },
        { .delivery_id = 0, .state = AUTHCERT_DELIVERY_DELIVERED },
    };
    authcert_delivery_outcome bad_state[1] = {
        { .delivery_id = f->id[0], .state = (authcert_delivery_state)42 },
    };

    assert_status(authcert_registry_record_results(f->reg, bad_json, 2, T0 + 10),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_record_results(f->reg, bad_id, 2, T0 + 10),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_record_results(f->reg, bad_state, 1, T0 + 10),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_record_results(NULL, bad_state, 1, T0 + 10),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_record_results(f->reg, NULL, 1, T0 + 10),
                  AUTHCERT_E_USAGE);
    assert_ok(authcert_registry_record_results(f->reg, NULL, 0, T0 + 10));

    assert_ok(authcert_registry_results(f->reg, command, seen_cb, &s));
    assert_int_equal(s.n, 3);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(s.state[i], AUTHCERT_DELIVERY_QUEUED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_records_each_with_its_own_status, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_refusals_record_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
