/*
 * The hand-off chain (authcert/handoff.h): a chain of statements walked
 * from an old certificate to the current one, each link verified with the
 * key held at that point; and every way a chain can be wrong (forged,
 * truncated, reordered, duplicated, a gap, rolled back, too long), each
 * beside the control that passes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "authcert/agent.h"
#include "authcert/authcert.h"
#include "authcert/handoff.h"
#include "testlib.h"

#define N 5 /* certificates C0..C4, each committing to the next one's key */
#define NOW ((int64_t)time(NULL))

typedef struct fixture {
    EVP_PKEY *k[N + 1];
    authcert_cert *c[N];
    char *s[N - 1]; /* s[i]: C(i) hands to C(i+1), generation i+1 */
    char *dir;
    char path[512];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    for (int i = 0; i <= N; i++)
        f->k[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    for (int i = 0; i < N; i++) {
        char h[65];
        assert_ok(authcert_spki_sha256(f->k[i + 1], h));
        /* C1 lives one day: an agent walking later finds it expired. */
        authcert_cert_params p = {.commit_to = h, .days = i == 1 ? 1 : 0};
        assert_ok(authcert_cert_generate_for(&p, f->k[i], &f->c[i]));
    }
    for (int i = 0; i < N - 1; i++)
        assert_ok(authcert_handoff_sign(f->c[i], f->c[i + 1], (uint64_t)i + 1, 0, &f->s[i]));
    f->dir = testlib_tmpdir("handoff");
    snprintf(f->path, sizeof f->path, "%s/authcert-server.der", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i <= N; i++)
        EVP_PKEY_free(f->k[i]);
    for (int i = 0; i < N; i++)
        authcert_cert_free(f->c[i]);
    for (int i = 0; i < N - 1; i++)
        free(f->s[i]);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A JSON array of the given links (by index into f->s, -1 ends). */
static json_t *chain_of(fixture *f, ...)
{
    json_t *a = json_array();
    va_list ap;
    va_start(ap, f);
    for (int i = va_arg(ap, int); i >= 0; i = va_arg(ap, int))
        json_array_append_new(a, json_string(f->s[i]));
    va_end(ap);
    return a;
}

static void walk_refused(fixture *f, int from, json_t *chain, const char *want_last,
                         authcert_status want)
{
    authcert_cert *out = NULL;
    assert_status(authcert_handoff_walk(f->c[from], chain, want_last, 0, &out), want);
    assert_null(out);
    json_decref(chain);
}

static void test_walks_to_the_current_one(void **state)
{
    fixture *f = *state;
    authcert_cert *out = NULL;
    json_t *ch = chain_of(f, 0, 1, 2, 3, -1);
    assert_ok(authcert_handoff_walk(f->c[0], ch, authcert_cert_thumbprint(f->c[4]), 0, &out));
    assert_string_equal(authcert_cert_thumbprint(out), authcert_cert_thumbprint(f->c[4]));
    authcert_cert_free(out);
    /* Two days on, C1 has expired: an intermediate's dates do not matter. */
    assert_ok(authcert_handoff_walk(f->c[0], ch, NULL, NOW + 2 * 86400, &out));
    authcert_cert_free(out);
    /* ...but the last one's do: the chain may not end on an expired certificate. */
    json_t *to_c1 = chain_of(f, 0, -1);
    assert_status(authcert_handoff_walk(f->c[0], to_c1, NULL, NOW + 2 * 86400, &out),
                  AUTHCERT_E_POLICY);
    json_decref(to_c1);
    /* From the middle, the rest of the chain. */
    json_t *tail = chain_of(f, 2, 3, -1);
    assert_ok(authcert_handoff_walk(f->c[2], tail, NULL, 0, &out));
    assert_string_equal(authcert_cert_thumbprint(out), authcert_cert_thumbprint(f->c[4]));
    authcert_cert_free(out);
    json_decref(tail);
    json_decref(ch);
}

static void test_broken_chains_refused(void **state)
{
    fixture *f = *state;
    const char *cur = authcert_cert_thumbprint(f->c[4]);

    walk_refused(f, 0, chain_of(f, 0, 1, -1), cur, AUTHCERT_E_AUTH);       /* truncated */
    walk_refused(f, 0, chain_of(f, 0, 2, 3, -1), cur, AUTHCERT_E_AUTH);    /* a gap */
    walk_refused(f, 0, chain_of(f, 1, 0, 2, 3, -1), cur, AUTHCERT_E_AUTH); /* reordered */
    walk_refused(f, 0, chain_of(f, 0, 0, 1, 2, 3, -1), cur, AUTHCERT_E_AUTH); /* duplicated */
    walk_refused(f, 1, chain_of(f, 0, 1, 2, 3, -1), cur, AUTHCERT_E_AUTH); /* not from here */
    walk_refused(f, 0, json_array(), cur, AUTHCERT_E_CORRUPT);             /* empty */
    walk_refused(f, 0, json_string("x"), cur, AUTHCERT_E_CORRUPT);         /* not a list */
    json_t *junk = json_pack("[s, i]", f->s[0], 7);
    walk_refused(f, 0, junk, cur, AUTHCERT_E_CORRUPT);
    /* Longer than the bound: refused before any signature is checked. */
    json_t *lng = json_array();
    for (int i = 0; i <= AUTHCERT_HANDOFF_MAX_LINKS; i++)
        json_array_append_new(lng, json_string(f->s[0]));
    walk_refused(f, 0, lng, cur, AUTHCERT_E_CORRUPT);
}

static void test_rollback_refused(void **state)
{
    fixture *f = *state;
    authcert_cert *out = NULL;
    char *back = NULL;
    /* C3 hands to C4 again, but as generation 1: after 1, 2, 3 that goes back. */
    assert_ok(authcert_handoff_sign(f->c[3], f->c[4], 1, 0, &back));
    json_t *ch = chain_of(f, 0, 1, 2, -1);
    json_array_append_new(ch, json_string(back));
    assert_status(authcert_handoff_walk(f->c[0], ch, NULL, 0, &out), AUTHCERT_E_AUTH);
    /* Control: the same link with its real generation. */
    json_array_set_new(ch, 3, json_string(f->s[3]));
    assert_ok(authcert_handoff_walk(f->c[0], ch, NULL, 0, &out));
    authcert_cert_free(out);
    json_decref(ch);
    free(back);
}

static void test_thief_of_a_key_in_the_chain(void **state)
{
    fixture *f = *state;
    authcert_cert *out = NULL, *thief_cert = NULL;
    char *link = NULL;
    /* The thief holds K0 (C0 with its key) and signs a statement handing
     * C0's agents to a certificate of the thief's own. */
    authcert_cert_params p = {.type = AUTHCERT_KEY_P256};
    assert_ok(authcert_cert_generate(&p, &thief_cert));
    assert_ok(authcert_handoff_sign(f->c[0], thief_cert, 9, 0, &link));
    json_t *ch = json_pack("[s]", link);
    assert_status(authcert_handoff_walk(f->c[0], ch, NULL, 0, &out), AUTHCERT_E_POLICY);
    json_decref(ch);
    free(link);
    /* A link signed by any other key than the held one. */
    assert_ok(authcert_handoff_sign(thief_cert, f->c[1], 1, 0, &link));
    ch = json_pack("[s]", link);
    assert_status(authcert_handoff_walk(f->c[0], ch, NULL, 0, &out), AUTHCERT_E_AUTH);
    json_decref(ch);
    free(link);
    authcert_cert_free(thief_cert);
}

static void test_statement_is_no_command(void **state)
{
    fixture *f = *state;
    char from[65], to[65];
    uint64_t gen = 0;
    assert_ok(authcert_handoff_peek(f->s[2], from, to, &gen));
    assert_string_equal(from, authcert_cert_thumbprint(f->c[2]));
    assert_string_equal(to, authcert_cert_thumbprint(f->c[3]));
    assert_int_equal(gen, 3);
    /* An agent's command verifier (lifetime at most an hour) refuses it. */
    authcert_agent_trust *t = NULL;
    authcert_agent_trust_opts o = {.leeway = 30, .replay_capacity = 16, .max_lifetime = 3600};
    assert_ok(authcert_agent_trust_new(f->c[2], &o, &t));
    json_t *claims = NULL;
    authcert_agent_verdict v;
    assert_int_not_equal(authcert_agent_verify(t, "5f0c6a1e-0000-4000-8000-000000000001", f->s[2],
                                               strlen(f->s[2]), 0, &claims, &v), AUTHCERT_OK);
    assert_null(claims);
    authcert_agent_trust_free(t);
}

static void test_agent_installs_only_a_whole_chain(void **state)
{
    fixture *f = *state;
    size_t n = 0;
    const uint8_t *der = authcert_cert_der(f->c[0], &n);
    assert_ok(authcert_write_atomic(f->path, der, n, 0644));
    authcert_agent_trust_opts o = {.leeway = 30, .replay_capacity = 16};
    authcert_agent_trust *t = NULL;
    assert_ok(authcert_agent_trust_open(f->path, &o, &t));
    char tp[65];
    json_t *bad = chain_of(f, 0, 1, 3, -1); /* a gap at the third link */
    assert_status(authcert_agent_apply_handoff(t, bad, NULL, tp), AUTHCERT_E_AUTH);
    json_decref(bad);
    authcert_agent_trust_thumbprint(t, tp);
    assert_string_equal(tp, authcert_cert_thumbprint(f->c[0]));
    uint8_t *now = NULL;
    size_t m = 0;
    assert_ok(authcert_read_file(f->path, 1 << 20, &now, &m));
    assert_int_equal(m, n);
    assert_memory_equal(now, der, n);
    free(now);
    json_t *good = chain_of(f, 0, 1, 2, 3, -1);
    assert_ok(authcert_agent_apply_handoff(t, good, authcert_cert_thumbprint(f->c[4]), tp));
    assert_string_equal(tp, authcert_cert_thumbprint(f->c[4]));
    json_decref(good);
    assert_ok(authcert_read_file(f->path, 1 << 20, &now, &m));
    const uint8_t *d4 = authcert_cert_der(f->c[4], &n);
    assert_int_equal(m, n);
    assert_memory_equal(now, d4, n);
    free(now);
    authcert_agent_trust_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_walks_to_the_current_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_chains_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thief_of_a_key_in_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statement_is_no_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_installs_only_a_whole_chain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
