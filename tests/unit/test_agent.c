/*
 * The agent's trust: each refusal and the status the listener gives it,
 * the key update (success, and failures that leave file and trust as they
 * were), reload of a file replaced on disk, agent ids.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "authcert/agent.h"
#include "authcert/base64url.h"
#include "authcert/jws.h"
#include "testlib.h"

#define AGENT "5f0c6a1e-0000-4000-8000-000000000001"
#define NOW ((int64_t)1700000000)

typedef struct fixture {
    char *dir;
    char path[512];
    authcert_cert *key;    /* the server's certificate with its key (Ed25519) */
    authcert_cert *other;  /* another server's */
    authcert_agent_trust *trust;
} fixture;

static void write_der(const char *path, const authcert_cert *c)
{
    size_t n = 0;
    const uint8_t *der = authcert_cert_der(c, &n);
    assert_ok(authcert_write_atomic(path, der, n, 0644));
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    authcert_cert_params p = {.type = AUTHCERT_KEY_ED25519};
    f->dir = testlib_tmpdir("agent");
    snprintf(f->path, sizeof f->path, "%s/authcert-server.der", f->dir);
    assert_ok(authcert_cert_generate(&p, &f->key));
    assert_ok(authcert_cert_generate(&p, &f->other));
    write_der(f->path, f->key);
    authcert_agent_trust_opts o = {.leeway = 30, .replay_capacity = 64};
    assert_ok(authcert_agent_trust_open(f->path, &o, &f->trust));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    authcert_agent_trust_free(f->trust);
    authcert_cert_free(f->key);
    authcert_cert_free(f->other);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static char *enc(const char *s)
{
    char *out = NULL;
    assert_ok(authcert_b64url_encode((const uint8_t *)s, strlen(s), &out));
    return out;
}

static char *x5t_of(const authcert_cert *c)
{
    size_t n = 0;
    const uint8_t *der = authcert_cert_der(c, &n);
    uint8_t d[32];
    assert_int_equal(EVP_Digest(der, n, d, NULL, EVP_sha256(), NULL), 1);
    char *out = NULL;
    assert_ok(authcert_b64url_encode(d, sizeof d, &out));
    return out;
}

/*
 * header.claims signed with signer's Ed25519 key, both given verbatim, so
 * that tests can write what the library never would. sign false: no signature.
 */
static char *raw_token(const authcert_cert *signer, const char *header, const char *claims,
                       bool sign)
{
    char *h = enc(header), *c = enc(claims);
    char input[8192];
    snprintf(input, sizeof input, "%s.%s", h, c);
    free(h);
    free(c);
    char *sig = strdup("");
    if (sign) {
        uint8_t s[64];
        size_t sl = sizeof s;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, authcert_cert_pkey(signer)), 1);
        assert_int_equal(EVP_DigestSign(ctx, s, &sl, (uint8_t *)input, strlen(input)), 1);
        EVP_MD_CTX_free(ctx);
        free(sig);
        assert_ok(authcert_b64url_encode(s, sl, &sig));
    }
    char *tok = malloc(strlen(input) + strlen(sig) + 2);
    sprintf(tok, "%s.%s", input, sig);
    free(sig);
    return tok;
}

static char *header_for(const authcert_cert *named, const char *alg)
{
    char *x = x5t_of(named);
    char *h = malloc(256);
    snprintf(h, 256, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}", alg, x);
    free(x);
    return h;
}

static char *claims_text(const char *aud, int64_t iat, int64_t exp, const char *jti)
{
    char *c = malloc(512);
    snprintf(c, 512,
             "{\"iss\":\"srv\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\","
             "\"cmd\":\"ping\",\"did\":7}",
             aud, (long long)iat, (long long)exp, jti);
    return c;
}

/* A token the server would make: the real signer, the given claims. */
static char *good_token(const fixture *f, const char *aud, int64_t iat, int64_t exp,
                        const char *jti)
{
    char *h = header_for(f->key, "EdDSA"), *c = claims_text(aud, iat, exp, jti);
    char *t = raw_token(f->key, h, c, true);
    free(h);
    free(c);
    return t;
}

static authcert_agent_verdict verify(fixture *f, const char *tok, authcert_status want)
{
    json_t *cl = NULL;
    authcert_agent_verdict v = AUTHCERT_AGENT_ACCEPTED;
    assert_status(authcert_agent_verify(f->trust, AGENT, tok, strlen(tok), NOW, &cl, &v), want);
    if (want == AUTHCERT_OK) {
        assert_non_null(cl);
        assert_int_equal(json_integer_value(json_object_get(cl, "did")), 7);
    } else {
        assert_null(cl);
    }
    json_decref(cl);
    return v;
}

static void test_accepts_and_refuses_replay(void **state)
{
    fixture *f = *state;
    char *t = good_token(f, AGENT, NOW, NOW + 300, "jti-accept-0001");
    assert_int_equal(verify(f, t, AUTHCERT_OK), AUTHCERT_AGENT_ACCEPTED);
    /* The same token again: signed by our server, so 403, not 401. */
    assert_int_equal(verify(f, t, AUTHCERT_E_AUTH), AUTHCERT_AGENT_FORBIDDEN);
    assert_non_null(strstr(authcert_detail(), "replay"));
    free(t);

    /* Broadcast accepted, and through the library's own signer too. */
    t = good_token(f, "*", NOW, NOW + 300, "jti-broadcast-01");
    assert_int_equal(verify(f, t, AUTHCERT_OK), AUTHCERT_AGENT_ACCEPTED);
    free(t);
    json_t *cl = NULL, *out = NULL;
    char *tok = NULL;
    authcert_agent_verdict v;
    assert_ok(authcert_jws_claims_new("srv", AGENT, "ping", NULL, 300, 0, &cl));
    json_object_set_new(cl, "did", json_integer(7));
    assert_ok(authcert_jws_sign(f->key, cl, &tok));
    assert_ok(authcert_agent_verify(f->trust, AGENT, tok, strlen(tok), 0, &out, &v));
    assert_int_equal(v, AUTHCERT_AGENT_ACCEPTED);
    assert_int_equal(authcert_agent_verdict_http(v), 200);
    json_decref(cl);
    json_decref(out);
    free(tok);
}

static void test_forbidden_refusals(void **state)
{
    fixture *f = *state;
    struct { const char *what; char *tok; const char *detail; } cases[] = {
        {"another agent", good_token(f, "someone-else", NOW, NOW + 300, "jti-forbid-0001"),
         "audience"},
        {"expired", good_token(f, AGENT, NOW - 600, NOW - 31, "jti-forbid-0002"), "expired"},
        {"issued in the future", good_token(f, AGENT, NOW + 120, NOW + 400, "jti-forbid-0003"),
         "future"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        authcert_agent_verdict v = verify(f, cases[i].tok, AUTHCERT_E_AUTH);
        if (v != AUTHCERT_AGENT_FORBIDDEN || strstr(authcert_detail(), cases[i].detail) == NULL)
            fail_msg("%s: verdict %s, detail %s", cases[i].what, authcert_agent_verdict_name(v),
                     authcert_detail());
        assert_int_equal(authcert_agent_verdict_http(v), 403);
        free(cases[i].tok);
    }
    /* Inside the leeway is still fine. */
    char *t = good_token(f, AGENT, NOW - 600, NOW - 29, "jti-forbid-0004");
    verify(f, t, AUTHCERT_OK);
    free(t);
}

static void test_unauthenticated_refusals(void **state)
{
    fixture *f = *state;
    char *ours = header_for(f->key, "EdDSA");
    char *theirs = header_for(f->other, "EdDSA");
    char *cl = claims_text(AGENT, NOW, NOW + 300, "jti-unauth-00001");
    char *none = header_for(f->key, "none");
    char *es = header_for(f->key, "ES256");
    char *hs = header_for(f->key, "HS256");
    char *good = raw_token(f->key, ours, cl, true);
    char *badsig = strdup(good);
    badsig[strlen(badsig) - 5] = badsig[strlen(badsig) - 5] == 'A' ? 'B' : 'A';
    char dup[512];
    snprintf(dup, sizeof dup, "{\"alg\":\"EdDSA\",\"alg\":\"none\",\"x5t#S256\":\"x\"}");
    struct { const char *what; char *tok; } cases[] = {
        {"unsigned", raw_token(f->key, ours, cl, false)},
        {"alg none", raw_token(f->key, none, cl, false)},
        {"alg none signed", raw_token(f->key, none, cl, true)},
        {"alg swapped ES256", raw_token(f->key, es, cl, true)},
        {"alg HS256", raw_token(f->key, hs, cl, true)},
        {"forged: our x5t, another key", raw_token(f->other, ours, cl, true)},
        {"another server's certificate", raw_token(f->other, theirs, cl, true)},
        {"no x5t", raw_token(f->key, "{\"alg\":\"EdDSA\"}", cl, true)},
        {"crit", raw_token(f->key, "{\"alg\":\"EdDSA\",\"crit\":[\"x\"]}", cl, true)},
        {"duplicate alg", raw_token(f->key, dup, cl, true)},
        {"signature changed", strdup(badsig)},
        {"not base64", strdup("e30.$$$.AAAA")},
        {"two parts", strdup("e30.e30")},
        {"header not JSON", raw_token(f->key, "{nope", cl, true)},
        {"claims not an object", raw_token(f->key, ours, "[1,2]", true)},
        {"claims without exp", raw_token(f->key, ours, "{\"aud\":\"" AGENT "\",\"iat\":1,"
                                                        "\"jti\":\"abcdefghij\"}", true)},
        {"empty", strdup("")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *out = NULL;
        authcert_agent_verdict v = AUTHCERT_AGENT_ACCEPTED;
        authcert_status st = authcert_agent_verify(f->trust, AGENT, cases[i].tok,
                                                   strlen(cases[i].tok), NOW, &out, &v);
        if ((st != AUTHCERT_E_AUTH && st != AUTHCERT_E_CORRUPT) ||
            v != AUTHCERT_AGENT_UNAUTHENTICATED || out != NULL)
            fail_msg("%s: %s, verdict %s (%s)", cases[i].what, authcert_strerror(st),
                     authcert_agent_verdict_name(v), authcert_detail());
        assert_int_equal(authcert_agent_verdict_http(v), 401);
        assert_true(authcert_detail()[0] != '\0');
        free(cases[i].tok);
    }
    /* None of the refused ones used up the jti: the real token still passes. */
    verify(f, good, AUTHCERT_OK);
    free(good);
    free(badsig);
    free(ours);
    free(theirs);
    free(cl);
    free(none);
    free(es);
    free(hs);
}

static void test_usage(void **state)
{
    fixture *f = *state;
    json_t *cl = NULL;
    authcert_agent_verdict v;
    assert_status(authcert_agent_verify(f->trust, "*", "a.b.c", 5, NOW, &cl, &v),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_agent_verify(f->trust, "", "a.b.c", 5, NOW, &cl, &v),
                  AUTHCERT_E_USAGE);
    authcert_agent_trust *t = NULL;
    authcert_agent_trust_opts o = {.leeway = -1};
    assert_status(authcert_agent_trust_open(f->path, &o, &t), AUTHCERT_E_USAGE);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.der", f->dir);
    assert_status(authcert_agent_trust_open(missing, NULL, &t), AUTHCERT_E_NOTFOUND);
    assert_null(t);
    char junk[600];
    snprintf(junk, sizeof junk, "%s/junk.der", f->dir);
    assert_ok(authcert_write_atomic(junk, "hello", 5, 0644));
    assert_status(authcert_agent_trust_open(junk, NULL, &t), AUTHCERT_E_CORRUPT);
}

/* ---- key update ------------------------------------------------------------ */

static json_t *update_claims(const authcert_cert *c, const char *thumb_override)
{
    size_t n = 0;
    const uint8_t *der = authcert_cert_der(c, &n);
    char *b = NULL;
    assert_ok(authcert_b64url_encode(der, n, &b));
    json_t *j = json_pack("{s:s, s:{s:s, s:s}}", "cmd", "update-key", "args", "certificate", b,
                          "thumbprint",
                          thumb_override != NULL ? thumb_override : authcert_cert_thumbprint(c));
    free(b);
    return j;
}

static uint8_t *file_bytes(const char *path, size_t *len)
{
    uint8_t *d = NULL;
    assert_ok(authcert_read_file(path, 1 << 20, &d, len));
    return d;
}

static void test_update_key_replaces_file_and_trust(void **state)
{
    fixture *f = *state;
    json_t *cl = update_claims(f->other, NULL);
    char thumb[65];
    assert_ok(authcert_agent_apply_update_key(f->trust, cl, thumb));
    assert_string_equal(thumb, authcert_cert_thumbprint(f->other));
    json_decref(cl);

    /* The file is the new DER, public, and openssl reads it with that fingerprint. */
    size_t n = 0, m = 0;
    uint8_t *got = file_bytes(f->path, &n);
    const uint8_t *want = authcert_cert_der(f->other, &m);
    assert_int_equal(n, m);
    assert_memory_equal(got, want, n);
    free(got);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(testlib_sh("openssl x509 -inform DER -in '%s' -noout -fingerprint -sha256 "
                                "| tr -d : | tr A-F a-f | grep -q '=%s$'",
                                f->path, authcert_cert_thumbprint(f->other)), 0);

    /* Tokens of the old key are now refused, the new key's accepted. */
    char *old = good_token(f, AGENT, NOW, NOW + 300, "jti-after-update1");
    assert_int_equal(verify(f, old, AUTHCERT_E_AUTH), AUTHCERT_AGENT_UNAUTHENTICATED);
    free(old);
    char *h = header_for(f->other, "EdDSA"), *c = claims_text(AGENT, NOW, NOW + 300,
                                                              "jti-after-update2");
    char *nt = raw_token(f->other, h, c, true);
    verify(f, nt, AUTHCERT_OK);
    free(nt);
    free(h);
    free(c);

    /* reload sees the file it wrote itself as unchanged. */
    bool changed = true;
    assert_ok(authcert_agent_trust_reload(f->trust, &changed));
    assert_false(changed);

    /* Updating to the same certificate again is a success that writes nothing. */
    assert_int_equal(stat(f->path, &st), 0);
    ino_t ino = st.st_ino;
    cl = update_claims(f->other, NULL);
    assert_ok(authcert_agent_apply_update_key(f->trust, cl, thumb));
    json_decref(cl);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_ino, ino);
}

static void assert_unchanged(fixture *f, const uint8_t *before, size_t blen)
{
    size_t n = 0;
    uint8_t *now = file_bytes(f->path, &n);
    assert_int_equal(n, blen);
    assert_memory_equal(now, before, n);
    free(now);
    char thumb[65];
    authcert_agent_trust_thumbprint(f->trust, thumb);
    assert_string_equal(thumb, authcert_cert_thumbprint(f->key));
}

static void test_update_key_failures_change_nothing(void **state)
{
    fixture *f = *state;
    size_t blen = 0;
    uint8_t *before = file_bytes(f->path, &blen);
    struct { const char *what; json_t *cl; authcert_status want; } cases[] = {
        {"thumbprint of another", update_claims(f->other, authcert_cert_thumbprint(f->key)),
         AUTHCERT_E_AUTH},
        {"thumbprint not hex", update_claims(f->other, "XYZ"), AUTHCERT_E_CORRUPT},
        {"not a certificate", json_pack("{s:s, s:{s:s, s:s}}", "cmd", "update-key", "args",
                                        "certificate", "aGVsbG8", "thumbprint",
                                        authcert_cert_thumbprint(f->other)), AUTHCERT_E_CORRUPT},
        {"not base64url", json_pack("{s:s, s:{s:s, s:s}}", "cmd", "update-key", "args",
                                    "certificate", "a+b/c==", "thumbprint",
                                    authcert_cert_thumbprint(f->other)), AUTHCERT_E_CORRUPT},
        {"no args", json_pack("{s:s}", "cmd", "update-key"), AUTHCERT_E_CORRUPT},
        {"args of the wrong type", json_pack("{s:s, s:{s:i, s:s}}", "cmd", "update-key", "args",
                                             "certificate", 5, "thumbprint", "x"),
         AUTHCERT_E_CORRUPT},
        {"another command", json_pack("{s:s}", "cmd", "ping"), AUTHCERT_E_CORRUPT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        authcert_status st = authcert_agent_apply_update_key(f->trust, cases[i].cl, NULL);
        if (st != cases[i].want)
            fail_msg("%s: %s (%s)", cases[i].what, authcert_strerror(st), authcert_detail());
        json_decref(cases[i].cl);
        assert_unchanged(f, before, blen);
    }

    /* A directory that cannot be written: E_IO, and the trust is the old one. */
    if (geteuid() != 0) {
        assert_int_equal(chmod(f->dir, 0555), 0);
        json_t *cl = update_claims(f->other, NULL);
        assert_status(authcert_agent_apply_update_key(f->trust, cl, NULL), AUTHCERT_E_IO);
        json_decref(cl);
        assert_int_equal(chmod(f->dir, 0755), 0);
        assert_unchanged(f, before, blen);
    }
    free(before);
}

/* A memory-only trust (load generators) swaps without writing. */
static void test_memory_trust(void **state)
{
    fixture *f = *state;
    authcert_agent_trust *t = NULL;
    authcert_agent_trust_opts o = {.replay_capacity = 4};
    assert_ok(authcert_agent_trust_new(f->key, &o, &t));
    json_t *cl = update_claims(f->other, NULL);
    assert_ok(authcert_agent_apply_update_key(t, cl, NULL));
    json_decref(cl);
    char th[65];
    authcert_agent_trust_thumbprint(t, th);
    assert_string_equal(th, authcert_cert_thumbprint(f->other));
    bool changed = true;
    assert_ok(authcert_agent_trust_reload(t, &changed));
    assert_false(changed);
    authcert_agent_trust_free(t);
}

/* ---- the file replaced on disk ------------------------------------------- */

static void test_reload_of_replaced_file(void **state)
{
    fixture *f = *state;
    bool changed = true;
    assert_ok(authcert_agent_trust_reload(f->trust, &changed));
    assert_false(changed);

    /* An operator copies another server's exported file over it. */
    write_der(f->path, f->other);
    /* Until reload the object keeps verifying with what it loaded. */
    char *t = good_token(f, AGENT, NOW, NOW + 300, "jti-reload-00001");
    verify(f, t, AUTHCERT_OK);
    free(t);
    assert_ok(authcert_agent_trust_reload(f->trust, &changed));
    assert_true(changed);
    char th[65];
    authcert_agent_trust_thumbprint(f->trust, th);
    assert_string_equal(th, authcert_cert_thumbprint(f->other));

    /* A damaged file does not replace the trust; a missing one neither. */
    assert_ok(authcert_write_atomic(f->path, "garbage", 7, 0644));
    assert_status(authcert_agent_trust_reload(f->trust, &changed), AUTHCERT_E_CORRUPT);
    assert_false(changed);
    assert_int_equal(unlink(f->path), 0);
    assert_status(authcert_agent_trust_reload(f->trust, &changed), AUTHCERT_E_NOTFOUND);
    authcert_agent_trust_thumbprint(f->trust, th);
    assert_string_equal(th, authcert_cert_thumbprint(f->other));
}

/*
 * Kill a process in the middle of key updates, many times: the file is
 * always one complete certificate, the old or the new one.
 */
static void test_update_killed_leaves_whole_file(void **state)
{
    fixture *f = *state;
    const char *a = authcert_cert_thumbprint(f->key), *b = authcert_cert_thumbprint(f->other);
    for (int round = 0; round < 30; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (int i = 0;; i++) {
                json_t *cl = update_claims(i % 2 == 0 ? f->other : f->key, NULL);
                if (authcert_agent_apply_update_key(f->trust, cl, NULL) != AUTHCERT_OK)
                    _exit(3);
                json_decref(cl);
            }
        }
        struct timespec ts = {0, 1000000L * (1 + round % 7)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        size_t n = 0;
        uint8_t *d = file_bytes(f->path, &n);
        authcert_cert *c = NULL;
        assert_ok(authcert_cert_from_der(d, n, &c));
        const char *got = authcert_cert_thumbprint(c);
        assert_true(strcmp(got, a) == 0 || strcmp(got, b) == 0);
        authcert_cert_free(c);
        free(d);
    }
}

static void test_agent_ids(void **state)
{
    (void)state;
    char id[37], id2[37];
    assert_ok(authcert_agent_id_generate(id));
    assert_ok(authcert_agent_id_generate(id2));
    assert_int_equal(strlen(id), 36);
    assert_string_not_equal(id, id2);
    assert_int_equal(id[14], '4');
    assert_non_null(strchr("89ab", id[19]));
    for (const char *p = id; *p; p++)
        assert_non_null(strchr("0123456789abcdef-", *p));
    assert_true(authcert_agent_id_valid(id));
    assert_false(authcert_agent_id_valid("*"));
    assert_false(authcert_agent_id_valid(""));
    assert_false(authcert_agent_id_valid("has space"));
    assert_false(authcert_agent_id_valid("new\nline"));
    char long_id[130];
    memset(long_id, 'a', 129);
    long_id[129] = '\0';
    assert_false(authcert_agent_id_valid(long_id));
    long_id[128] = '\0';
    assert_true(authcert_agent_id_valid(long_id));
}

int main(void)
{
    if (authcert_init() != AUTHCERT_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accepts_and_refuses_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forbidden_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthenticated_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_key_replaces_file_and_trust, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_key_failures_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_trust, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_of_replaced_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_killed_leaves_whole_file, setup, teardown),
        cmocka_unit_test(test_agent_ids),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    authcert_cleanup();
    return r;
}
