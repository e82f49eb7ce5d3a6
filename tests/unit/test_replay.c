/* The replay cache on its own: full, swept, and filled many times over. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/replay.h"
#include "testlib.h"

#define NOW 1700000000

static void test_replay_cache_full(void **state)
{
    (void)state;
    authcert_replay_cache *rc = NULL;
    const int64_t leeway = 60;
    assert_ok(authcert_replay_cache_new(4, leeway, &rc));
    /* Two short-lived and two long-lived entries fill it. */
    assert_ok(authcert_replay_check_and_add(rc, "jti-short-1", NOW + 10, NOW));
    assert_ok(authcert_replay_check_and_add(rc, "jti-short-2", NOW + 10, NOW));
    assert_ok(authcert_replay_check_and_add(rc, "jti-long--1", NOW + 1000, NOW));
    assert_ok(authcert_replay_check_and_add(rc, "jti-long--2", NOW + 1000, NOW));
    assert_int_equal(authcert_replay_cache_count(rc), 4);

    /* Full of live entries: the new token is refused, nothing is forgotten. */
    assert_status(authcert_replay_check_and_add(rc, "jti-new---1", NOW + 300, NOW),
                  AUTHCERT_E_BUSY);
    assert_int_equal(authcert_replay_cache_count(rc), 4);
    assert_status(authcert_replay_check_and_add(rc, "jti-short-1", NOW + 10, NOW),
                  AUTHCERT_E_AUTH);
    /* At exp + leeway the short ones are still kept... */
    assert_status(authcert_replay_check_and_add(rc, "jti-new---1", NOW + 300, NOW + 10 + leeway),
                  AUTHCERT_E_BUSY);
    /* ...one second later they make room. */
    assert_ok(authcert_replay_check_and_add(rc, "jti-new---1", NOW + 300, NOW + 11 + leeway));
    assert_int_equal(authcert_replay_cache_count(rc), 3);
    assert_ok(authcert_replay_check_and_add(rc, "jti-new---2", NOW + 300, NOW + 11 + leeway));
    /* The long-lived ones survived the sweep. */
    assert_status(authcert_replay_check_and_add(rc, "jti-long--1", NOW + 1000, NOW + 12 + leeway),
                  AUTHCERT_E_AUTH);
    assert_status(authcert_replay_check_and_add(rc, "jti-long--2", NOW + 1000, NOW + 12 + leeway),
                  AUTHCERT_E_AUTH);
    assert_status(authcert_replay_check_and_add(rc, "", NOW, NOW), AUTHCERT_E_USAGE);
    authcert_replay_cache_free(rc);
}

static void test_replay_cache_many(void **state)
{
    (void)state;
    /* Default capacity, filled and swept repeatedly: the probing stays sound. */
    authcert_replay_cache *rc = NULL;
    char jti[32];
    assert_ok(authcert_replay_cache_new(0, 0, &rc));
    for (int round = 0; round < 3; round++) {
        int64_t now = NOW + round * 1000;
        for (int i = 0; i < AUTHCERT_REPLAY_DEFAULT_CAPACITY; i++) {
            snprintf(jti, sizeof jti, "jti-%d-%d", round, i);
            assert_ok(authcert_replay_check_and_add(rc, jti, now + 500, now));
        }
        for (int i = 0; i < AUTHCERT_REPLAY_DEFAULT_CAPACITY; i += 97) {
            snprintf(jti, sizeof jti, "jti-%d-%d", round, i);
            assert_status(authcert_replay_check_and_add(rc, jti, now + 500, now), AUTHCERT_E_AUTH);
        }
        assert_status(authcert_replay_check_and_add(rc, "jti-one-more", now + 500, now),
                      AUTHCERT_E_BUSY);
    }
    authcert_replay_cache_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_cache_full),
        cmocka_unit_test(test_replay_cache_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
