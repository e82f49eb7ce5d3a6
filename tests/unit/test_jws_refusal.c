/*
 * authcert_jws_verify_why: the stage that refused a token, which an agent
 * turns into 401 (not proven to come from its server) or 403 (signed by its
 * server, but not for here or now) without a second signature check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <jansson.h>

#include "testlib.h"

static authcert_cert *ours, *other;

static int setup(void **state)
{
    authcert_cert_params p = { .type = AUTHCERT_KEY_P256 };

    (void)state;
    assert_ok(authcert_init());
    assert_ok(authcert_cert_generate(&p, &ours));
    assert_ok(authcert_cert_generate(&p, &other));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    authcert_cert_free(ours);
    authcert_cert_free(other);
    authcert_cleanup();
    return 0;
}

static char *token_for(authcert_cert *signer, const char *aud, int64_t now)
{
    json_t *claims = NULL;
    char *tok = NULL;

    assert_ok(authcert_jws_claims_new("srv", aud, "ping", NULL, 300, now, &claims));
    assert_ok(authcert_jws_sign(signer, claims, &tok));
    json_decref(claims);
    return tok;
}

static authcert_jws_refusal why_of(const char *tok, authcert_jws_expect *ex,
                                   authcert_status want)
{
    authcert_jws_refusal why = AUTHCERT_JWS_ACCEPTED;
    json_t *claims = NULL;

    assert_status(authcert_jws_verify_why(ours, tok, strlen(tok), ex, &claims, &why), want);
    json_decref(claims);
    return why;
}

static void test_stages(void **state)
{
    const int64_t now = 1800000000;
    authcert_replay_cache *replay = NULL;
    authcert_jws_expect ex = { .audience = "agent-1", .now = now, .leeway = 30 };
    char *good = token_for(ours, "agent-1", now);
    char *forged = token_for(other, "agent-1", now);
    char *elsewhere = token_for(ours, "agent-2", now);
    char *tampered = strdup(good);

    (void)state;
    assert_int_equal(why_of(good, &ex, AUTHCERT_OK), AUTHCERT_JWS_ACCEPTED);
    /* Not proven: another key, an altered signature, garbage. */
    assert_int_equal(why_of(forged, &ex, AUTHCERT_E_AUTH), AUTHCERT_JWS_UNPROVEN);
    tampered[strlen(tampered) - 2] = tampered[strlen(tampered) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(why_of(tampered, &ex, AUTHCERT_E_AUTH), AUTHCERT_JWS_UNPROVEN);
    assert_int_equal(why_of("a.b.c", &ex, AUTHCERT_E_CORRUPT), AUTHCERT_JWS_UNPROVEN);
    /* Proven, refused: another audience, too late. */
    assert_int_equal(why_of(elsewhere, &ex, AUTHCERT_E_AUTH), AUTHCERT_JWS_REFUSED);
    ex.now = now + 3600;
    assert_int_equal(why_of(good, &ex, AUTHCERT_E_AUTH), AUTHCERT_JWS_REFUSED);
    /* Replayed; and a refused token never used up its jti. */
    ex.now = now;
    assert_ok(authcert_replay_cache_new(16, 30, &replay));
    ex.replay = replay;
    assert_int_equal(why_of(elsewhere, &ex, AUTHCERT_E_AUTH), AUTHCERT_JWS_REFUSED);
    assert_int_equal(authcert_replay_cache_count(replay), 0);
    assert_int_equal(why_of(good, &ex, AUTHCERT_OK), AUTHCERT_JWS_ACCEPTED);
    assert_int_equal(why_of(good, &ex, AUTHCERT_E_AUTH), AUTHCERT_JWS_REPLAYED);
    authcert_replay_cache_free(replay);
    free(good);
    free(forged);
    free(elsewhere);
    free(tampered);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
