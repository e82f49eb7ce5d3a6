/* The replay cache on its own: full, swept, filled many times over, and small while it holds little. */
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

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

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

/* The process's resident memory, in KiB. */
static long rss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");

    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    assert_true(kib > 0);
    return kib;
}

static void test_replay_cache_small_while_it_holds_little(void **state)
{
    (void)state;
    /*
     * An agent remembers a few commands at a time: 32 caches of the default
     * capacity (4096) holding 200 tokens each must cost what 200 entries
     * take, not what 4096 would (a table of 8192 slots from the start: 384
     * KiB each, all of it resident, since the entries land on every page).
     */
    enum { NCACHES = 32, NTOKENS = 200 };
    authcert_replay_cache *rc[NCACHES];
    char jti[32];
    long before = rss_kib();
    const long full_kib = NCACHES * 8192L * 48 / 1024; /* 8192 slots of 48 bytes each */

    for (int k = 0; k < NCACHES; k++) {
        assert_ok(authcert_replay_cache_new(0, 60, &rc[k]));
        for (int i = 0; i < NTOKENS; i++) {
            snprintf(jti, sizeof jti, "jti-%d-%d", k, i);
            assert_ok(authcert_replay_check_and_add(rc[k], jti, NOW + 300, NOW));
        }
    }
    /* grown, the tables still know every token */
    for (int k = 0; k < NCACHES; k++)
        for (int i = 0; i < NTOKENS; i += 7) {
            snprintf(jti, sizeof jti, "jti-%d-%d", k, i);
            assert_status(authcert_replay_check_and_add(rc[k], jti, NOW + 300, NOW),
                          AUTHCERT_E_AUTH);
        }
    /*
     * Here 0.7 MiB (4.7 under ASan, its redzones and quarantine), against
     * 12 MiB for tables sized for the capacity. Under memcheck the process's
     * memory is valgrind's: only the above holds.
     */
    if (!RUNNING_ON_VALGRIND)
        assert_true(rss_kib() - before < full_kib / 2);
    for (int k = 0; k < NCACHES; k++)
        authcert_replay_cache_free(rc[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_cache_full),
        cmocka_unit_test(test_replay_cache_many),
        cmocka_unit_test(test_replay_cache_small_while_it_holds_little),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
