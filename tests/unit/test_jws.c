/*
 * Signed commands: signing and verifying each alg, every refusal with its
 * status, and the replay cache as the verifier uses it. Forged tokens are built here with
 * OpenSSL directly, not with the code under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "authcert/base64url.h"
#include "authcert/jws.h"
#include "testlib.h"

#define NOW 1700000000
#define TTL 300
#define AGENT "agent-0001"

static authcert_cert *ed, *ec, *rsa, *ec2, *ed2;

static int setup(void **state)
{
    (void)state;
    authcert_cert_params p = {0};
    if (authcert_init() != AUTHCERT_OK)
        return -1;
    p.type = AUTHCERT_KEY_ED25519;
    if (authcert_cert_generate(&p, &ed) || authcert_cert_generate(&p, &ed2))
        return -1;
    p.type = AUTHCERT_KEY_P256;
    if (authcert_cert_generate(&p, &ec) || authcert_cert_generate(&p, &ec2))
        return -1;
    p.type = AUTHCERT_KEY_RSA2048;
    if (authcert_cert_generate(&p, &rsa))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    authcert_cert_free(ed);
    authcert_cert_free(ed2);
    authcert_cert_free(ec);
    authcert_cert_free(ec2);
    authcert_cert_free(rsa);
    authcert_cleanup();
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static char *b64(const void *p, size_t n)
{
    char *s = NULL;
    assert_ok(authcert_b64url_encode(p, n, &s));
    return s;
}

static char *b64s(const char *s)
{
    return b64(s, strlen(s));
}

/* x5t#S256 computed here from the DER, independently of jws.c. */
static char *x5t(const authcert_cert *c)
{
    size_t n;
    const uint8_t *der = authcert_cert_der(c, &n);
    uint8_t md[32];
    assert_int_equal(EVP_Digest(der, n, md, NULL, EVP_sha256(), NULL), 1);
    return b64(md, sizeof md);
}

static char *header_for(const char *alg, const authcert_cert *c)
{
    char *t = x5t(c);
    char *h = NULL;
    assert_true(asprintf(&h, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}", alg, t) > 0);
    free(t);
    return h;
}

static char *claims_json(const char *aud, int64_t iat, int64_t exp, const char *jti)
{
    char *s = NULL;
    assert_true(asprintf(&s,
                         "{\"iss\":\"srv\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld,"
                         "\"jti\":\"%s\",\"cmd\":\"ping\"}",
                         aud, (long long)iat, (long long)exp, jti) > 0);
    return s;
}

/*
 * A token over header and payload JSON signed with k by raw OpenSSL, as
 * `how`: EdDSA, ES256 (raw R||S), ES256-DER, PS256, RS256, none.
 */
static char *forge(const char *hdr, const char *payload, EVP_PKEY *k, const char *how)
{
    char *h = b64s(hdr), *p = b64s(payload), *input = NULL, *tok = NULL, *s = NULL;
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    assert_true(asprintf(&input, "%s.%s", h, p) > 0);

    if (strcmp(how, "none") == 0) {
        siglen = 0;
    } else {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        const char *md = strcmp(how, "EdDSA") == 0 ? NULL : "SHA256";
        assert_int_equal(EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, k, NULL), 1);
        if (strcmp(how, "PS256") == 0) {
            assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
            assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) > 0);
        }
        assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)input,
                                        strlen(input)), 1);
        EVP_MD_CTX_free(ctx);
        if (strcmp(how, "ES256") == 0) {
            const unsigned char *q = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)siglen);
            const BIGNUM *r, *ss;
            ECDSA_SIG_get0(es, &r, &ss);
            assert_int_equal(BN_bn2binpad(r, sig, 32), 32);
            assert_int_equal(BN_bn2binpad(ss, sig + 32, 32), 32);
            ECDSA_SIG_free(es);
            siglen = 64;
        }
    }
    s = b64(sig, siglen);
    assert_true(asprintf(&tok, "%s.%s", input, s) > 0);
    free(h);
    free(p);
    free(input);
    free(s);
    return tok;
}

/* A genuine token from the library. */
static char *token_for(const authcert_cert *c, const char *aud, int64_t now)
{
    json_t *cl = NULL;
    char *tok = NULL;
    assert_ok(authcert_jws_claims_new("srv", aud, "ping", NULL, TTL, now, &cl));
    assert_ok(authcert_jws_sign(c, cl, &tok));
    json_decref(cl);
    return tok;
}

static authcert_jws_expect expect_at(int64_t now)
{
    authcert_jws_expect ex = {.audience = AGENT, .now = now, .leeway = 60};
    return ex;
}

/* Verify and check the status, that *claims stays NULL, and the detail. */
static void refused(const authcert_cert *trusted, const char *tok, const authcert_jws_expect *ex,
                    authcert_status want, const char *detail_part)
{
    json_t *cl = (json_t *)0x1;
    assert_status(authcert_jws_verify(trusted, tok, strlen(tok), ex, &cl), want);
    assert_null(cl);
    if (strstr(authcert_detail(), detail_part) == NULL)
        fail_msg("detail \"%s\" lacks \"%s\"", authcert_detail(), detail_part);
}

static void accepted(const authcert_cert *trusted, const char *tok, const authcert_jws_expect *ex)
{
    json_t *cl = NULL;
    assert_ok(authcert_jws_verify(trusted, tok, strlen(tok), ex, &cl));
    assert_non_null(cl);
    json_decref(cl);
}

/* ---- signing and verifying --------------------------------------------- */

static void sign_verify_one(const authcert_cert *c, const char *alg, size_t siglen)
{
    json_t *args = json_pack("{s:s}", "path", "/tmp/x");
    json_t *cl = NULL, *out = NULL;
    char *tok = NULL;
    assert_ok(authcert_jws_claims_new("srv", AGENT, "run", args, TTL, NOW, &cl));
    assert_ok(authcert_jws_sign(c, cl, &tok));

    /* The header, decoded here, is exactly the profile. */
    char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
    uint8_t *raw = NULL;
    size_t n = 0;
    assert_ok(authcert_b64url_decode(tok, (size_t)(dot1 - tok), &raw, &n));
    char *want = header_for(alg, c);
    assert_string_equal((char *)raw, want);
    free(want);
    free(raw);
    assert_ok(authcert_b64url_decode(dot2 + 1, strlen(dot2 + 1), &raw, &n));
    assert_int_equal(n, siglen);
    free(raw);

    authcert_jws_expect ex = expect_at(NOW + 10);
    assert_ok(authcert_jws_verify(c, tok, strlen(tok), &ex, &out));
    assert_string_equal(json_string_value(json_object_get(out, "cmd")), "run");
    assert_string_equal(json_string_value(json_object_get(out, "aud")), AGENT);
    assert_string_equal(json_string_value(json_object_get(out, "iss")), "srv");
    assert_int_equal(json_integer_value(json_object_get(out, "iat")), NOW);
    assert_int_equal(json_integer_value(json_object_get(out, "exp")), NOW + TTL);
    assert_true(json_equal(json_object_get(out, "args"), args));
    /* 128 random bits in base64url. */
    assert_int_equal(strlen(json_string_value(json_object_get(out, "jti"))), 22);

    /* The public half alone (the agent certificate file) verifies it. */
    size_t dlen;
    const uint8_t *der = authcert_cert_der(c, &dlen);
    authcert_cert *agent = NULL;
    assert_ok(authcert_cert_from_der(der, dlen, &agent));
    json_decref(out);
    assert_ok(authcert_jws_verify(agent, tok, strlen(tok), &ex, &out));
    authcert_cert_free(agent);

    json_decref(out);
    json_decref(cl);
    json_decref(args);
    free(tok);
}

static void test_sign_verify_eddsa(void **state)
{
    (void)state;
    sign_verify_one(ed, "EdDSA", 64);
}

static void test_sign_verify_es256(void **state)
{
    (void)state;
    sign_verify_one(ec, "ES256", 64);
}

static void test_sign_verify_ps256(void **state)
{
    (void)state;
    sign_verify_one(rsa, "PS256", 256);
}

static void test_signer_is_reusable(void **state)
{
    (void)state;
    authcert_jws_signer *s = NULL;
    authcert_jws_expect ex = expect_at(NOW);
    assert_ok(authcert_jws_signer_new(ec, &s));
    assert_string_equal(authcert_jws_signer_alg(s), "ES256");
    char *toks[20];
    for (int i = 0; i < 20; i++) {
        json_t *cl = NULL;
        assert_ok(authcert_jws_claims_new("srv", AGENT, "ping", NULL, TTL, NOW, &cl));
        assert_ok(authcert_jws_signer_sign(s, cl, &toks[i]));
        json_decref(cl);
    }
    for (int i = 0; i < 20; i++) {
        accepted(ec, toks[i], &ex);
        if (i > 0)
            assert_string_not_equal(toks[i], toks[i - 1]);
    }
    for (int i = 0; i < 20; i++)
        free(toks[i]);
    authcert_jws_signer_free(s);
}

static void test_sign_usage_errors(void **state)
{
    (void)state;
    json_t *cl = NULL;
    char *tok = (char *)0x1;
    size_t n;
    const uint8_t *der = authcert_cert_der(ec, &n);
    authcert_cert *pub = NULL;
    assert_ok(authcert_cert_from_der(der, n, &pub));
    assert_ok(authcert_jws_claims_new("srv", AGENT, "ping", NULL, TTL, NOW, &cl));
    assert_status(authcert_jws_sign(pub, cl, &tok), AUTHCERT_E_USAGE);
    assert_null(tok);
    tok = (char *)0x1;
    assert_status(authcert_jws_signer_sign(NULL, cl, &tok), AUTHCERT_E_USAGE);
    assert_null(tok);
    json_t *arr = json_array();
    assert_status(authcert_jws_sign(ec, arr, &tok), AUTHCERT_E_USAGE);
    json_decref(arr);
    json_decref(cl);
    assert_status(authcert_jws_claims_new("srv", "", "ping", NULL, TTL, NOW, &cl),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_jws_claims_new("srv", AGENT, "ping", NULL, 0, NOW, &cl),
                  AUTHCERT_E_USAGE);
    assert_null(cl);
    authcert_cert_free(pub);
}

/* ---- refusals ---------------------------------------------------------- */

static void test_alg_none_refused(void **state)
{
    (void)state;
    char *h = header_for("none", ec), *p = claims_json(AGENT, NOW, NOW + TTL, "jti-none-0001");
    char *tok = forge(h, p, NULL, "none");
    assert_non_null(strstr(tok, ".")); /* ends with an empty signature */
    assert_int_equal(tok[strlen(tok) - 1], '.');
    authcert_jws_expect ex = expect_at(NOW);
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "alg none refused");
    free(tok);
    free(h);
    free(p);
}

static void test_alg_swapped_refused(void **state)
{
    (void)state;
    /* The agent trusts a P-256 certificate; a token claims EdDSA, signed by an Ed25519 key. */
    char *h = header_for("EdDSA", ec), *p = claims_json(AGENT, NOW, NOW + TTL, "jti-swap-0001");
    char *tok = forge(h, p, authcert_cert_pkey(ed), "EdDSA");
    authcert_jws_expect ex = expect_at(NOW);
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "alg EdDSA refused");
    free(tok);
    free(h);
    /* RS256 with the right RSA key is refused too: PS256 only. */
    h = header_for("RS256", rsa);
    tok = forge(h, p, authcert_cert_pkey(rsa), "RS256");
    refused(rsa, tok, &ex, AUTHCERT_E_AUTH, "alg RS256 refused");
    free(tok);
    free(h);
    free(p);
}

static void test_hs256_with_public_key_refused(void **state)
{
    (void)state;
    /* The classic confusion: HMAC keyed with the public key anyone can read. */
    char *h = header_for("HS256", ec), *p = claims_json(AGENT, NOW, NOW + TTL, "jti-hmac-0001");
    char *hb = b64s(h), *pb = b64s(p), *input = NULL, *tok = NULL;
    assert_true(asprintf(&input, "%s.%s", hb, pb) > 0);
    unsigned char *pem = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, authcert_cert_pubkey(ec)), 1);
    long pemlen = BIO_get_mem_data(bio, (char **)&pem);
    unsigned char mac[32];
    unsigned int maclen = 0;
    assert_non_null(HMAC(EVP_sha256(), pem, (int)pemlen, (unsigned char *)input, strlen(input),
                         mac, &maclen));
    char *mb = b64(mac, maclen);
    assert_true(asprintf(&tok, "%s.%s", input, mb) > 0);
    authcert_jws_expect ex = expect_at(NOW);
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "alg HS256 refused");
    BIO_free(bio);
    free(mb);
    free(tok);
    free(input);
    free(hb);
    free(pb);
    free(h);
    free(p);
}

static void test_forged_by_another_key_refused(void **state)
{
    (void)state;
    /* Same type, header naming the trusted certificate: only the signature is wrong. */
    const struct { authcert_cert *trusted, *other; const char *alg; } cases[] = {
        {ec, ec2, "ES256"}, {ed, ed2, "EdDSA"},
    };
    authcert_jws_expect ex = expect_at(NOW);
    for (size_t i = 0; i < 2; i++) {
        char *h = header_for(cases[i].alg, cases[i].trusted);
        char *p = claims_json(AGENT, NOW, NOW + TTL, "jti-forged-001");
        char *tok = forge(h, p, authcert_cert_pkey(cases[i].other), cases[i].alg);
        refused(cases[i].trusted, tok, &ex, AUTHCERT_E_AUTH, "bad signature");
        free(tok);
        /* The same forge with the trusted key passes: the helper is sound. */
        tok = forge(h, p, authcert_cert_pkey(cases[i].trusted), cases[i].alg);
        accepted(cases[i].trusted, tok, &ex);
        free(tok);
        free(h);
        free(p);
    }
}

static void test_payload_altered_refused(void **state)
{
    (void)state;
    authcert_cert *certs[] = {ed, ec, rsa};
    authcert_jws_expect ex = expect_at(NOW);
    for (size_t i = 0; i < 3; i++) {
        char *tok = token_for(certs[i], AGENT, NOW);
        char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
        char *p = claims_json(AGENT, NOW, NOW + 86400, "jti-altered-01");
        char *pb = b64s(p), *forged = NULL;
        assert_true(asprintf(&forged, "%.*s.%s%s", (int)(dot1 - tok), tok, pb, dot2) > 0);
        refused(certs[i], forged, &ex, AUTHCERT_E_AUTH, "bad signature");
        /* One bit of the signature flipped. */
        size_t last = strlen(tok) - 3;
        tok[last] = tok[last] == 'A' ? 'B' : 'A';
        refused(certs[i], tok, &ex, AUTHCERT_E_AUTH, "bad signature");
        free(forged);
        free(pb);
        free(p);
        free(tok);
    }
}

static void test_x5t_of_another_cert_refused(void **state)
{
    (void)state;
    authcert_jws_expect ex = expect_at(NOW);
    char *tok = token_for(ec2, AGENT, NOW);
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "signed for another certificate");
    free(tok);
    /* No x5t#S256 at all. */
    char *p = claims_json(AGENT, NOW, NOW + TTL, "jti-nox5t-001");
    tok = forge("{\"alg\":\"ES256\",\"typ\":\"JWT\"}", p, authcert_cert_pkey(ec), "ES256");
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "no x5t#S256");
    free(tok);
    free(p);
}

static void test_crit_and_typ_refused(void **state)
{
    (void)state;
    authcert_jws_expect ex = expect_at(NOW);
    char *t = x5t(ed), *h = NULL;
    char *p = claims_json(AGENT, NOW, NOW + TTL, "jti-crit-0001");
    assert_true(asprintf(&h, "{\"alg\":\"EdDSA\",\"crit\":[\"exp\"],\"exp\":1,\"x5t#S256\":\"%s\"}",
                         t) > 0);
    char *tok = forge(h, p, authcert_cert_pkey(ed), "EdDSA");
    refused(ed, tok, &ex, AUTHCERT_E_AUTH, "crit");
    free(tok);
    free(h);
    assert_true(asprintf(&h, "{\"alg\":\"EdDSA\",\"typ\":\"dpop+jwt\",\"x5t#S256\":\"%s\"}", t) > 0);
    tok = forge(h, p, authcert_cert_pkey(ed), "EdDSA");
    refused(ed, tok, &ex, AUTHCERT_E_AUTH, "typ is not JWT");
    free(tok);
    free(h);
    /* Without typ, it is fine (other JOSE libraries may leave it out). */
    assert_true(asprintf(&h, "{\"alg\":\"EdDSA\",\"x5t#S256\":\"%s\"}", t) > 0);
    tok = forge(h, p, authcert_cert_pkey(ed), "EdDSA");
    accepted(ed, tok, &ex);
    free(tok);
    free(h);
    free(p);
    free(t);
}

static void test_expired_refused(void **state)
{
    (void)state;
    char *tok = token_for(ed, AGENT, NOW);
    authcert_jws_expect ex = expect_at(NOW + TTL + 60); /* exp + leeway: still fine */
    accepted(ed, tok, &ex);
    ex.now++;
    refused(ed, tok, &ex, AUTHCERT_E_AUTH, "expired");
    ex = expect_at(NOW + TTL + 1);
    ex.leeway = 0;
    refused(ed, tok, &ex, AUTHCERT_E_AUTH, "expired");
    free(tok);
}

static void test_iat_in_future_refused(void **state)
{
    (void)state;
    char *tok = token_for(ed, AGENT, NOW);
    authcert_jws_expect ex = expect_at(NOW - 60);
    accepted(ed, tok, &ex);
    ex.now--;
    refused(ed, tok, &ex, AUTHCERT_E_AUTH, "issued in the future");
    free(tok);
}

static void test_audience_rules(void **state)
{
    (void)state;
    authcert_jws_expect ex = expect_at(NOW);
    char *tok = token_for(ec, "agent-0002", NOW);
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "audience agent-0002 is not this agent");
    free(tok);

    tok = token_for(ec, AUTHCERT_JWS_BROADCAST, NOW);
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "broadcast audience not accepted");
    ex.allow_broadcast = true;
    accepted(ec, tok, &ex);
    free(tok);

    /* An aud array, even one holding our id, is refused. */
    char *h = header_for("ES256", ec);
    tok = forge(h, "{\"aud\":[\"agent-0001\"],\"iat\":1700000000,\"exp\":1700000300,"
                   "\"jti\":\"jti-array-001\"}", authcert_cert_pkey(ec), "ES256");
    refused(ec, tok, &ex, AUTHCERT_E_CORRUPT, "aud must be one string");
    free(tok);

    /* Issuer, when the agent pins one. */
    tok = token_for(ec, AGENT, NOW);
    ex.issuer = "other-server";
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "issuer");
    ex.issuer = "srv";
    accepted(ec, tok, &ex);
    free(tok);
    free(h);
}

static void test_missing_claims_refused(void **state)
{
    (void)state;
    authcert_jws_expect ex = expect_at(NOW);
    char *h = header_for("EdDSA", ed);
    static const struct { const char *payload, *detail; } cases[] = {
        {"{\"aud\":\"agent-0001\",\"iat\":1700000000,\"jti\":\"jti-noexp-01\"}", "no integer exp"},
        {"{\"aud\":\"agent-0001\",\"iat\":1700000000,\"exp\":\"1700000300\",\"jti\":\"jti-strexp-1\"}",
         "no integer exp"},
        {"{\"aud\":\"agent-0001\",\"exp\":1700000300,\"jti\":\"jti-noiat-01\"}", "no integer iat"},
        {"{\"aud\":\"agent-0001\",\"iat\":1700000000,\"exp\":1700000300}", "jti must be"},
        {"{\"aud\":\"agent-0001\",\"iat\":1700000000,\"exp\":1700000300,\"jti\":\"short\"}",
         "jti must be"},
        {"{\"iat\":1700000000,\"exp\":1700000300,\"jti\":\"jti-noaud-01\"}", "no aud"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *tok = forge(h, cases[i].payload, authcert_cert_pkey(ed), "EdDSA");
        refused(ed, tok, &ex, AUTHCERT_E_CORRUPT, cases[i].detail);
        free(tok);
    }
    free(h);
}

static void test_duplicated_keys_refused(void **state)
{
    (void)state;
    authcert_jws_expect ex = expect_at(NOW);
    char *t = x5t(ec), *h = NULL;
    char *p = claims_json(AGENT, NOW, NOW + TTL, "jti-dup-00001");
    /* jansson's default (last wins) would read alg "ES256" here. */
    assert_true(asprintf(&h, "{\"alg\":\"none\",\"alg\":\"ES256\",\"x5t#S256\":\"%s\"}", t) > 0);
    char *tok = forge(h, p, authcert_cert_pkey(ec), "ES256");
    refused(ec, tok, &ex, AUTHCERT_E_CORRUPT, "header is not valid JSON");
    free(tok);
    free(h);
    /* A duplicated aud in a correctly signed payload. */
    h = header_for("ES256", ec);
    tok = forge(h, "{\"aud\":\"agent-0002\",\"aud\":\"agent-0001\",\"iat\":1700000000,"
                   "\"exp\":1700000300,\"jti\":\"jti-dup-00002\"}", authcert_cert_pkey(ec), "ES256");
    refused(ec, tok, &ex, AUTHCERT_E_CORRUPT, "payload is not valid JSON");
    free(tok);
    free(h);
    free(p);
    free(t);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    authcert_jws_expect ex = expect_at(NOW);
    char *tok = token_for(ec, AGENT, NOW);
    char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
    int hl = (int)(dot1 - tok), pl = (int)(dot2 - dot1 - 1);
    char *bad = NULL;

    /* Base64url: padding on the header, a space in the signature. */
    assert_true(asprintf(&bad, "%.*s=%s", hl, tok, dot1) > 0);
    refused(ec, bad, &ex, AUTHCERT_E_CORRUPT, "header: base64url");
    free(bad);
    assert_true(asprintf(&bad, "%.*s.+%s%s", hl, tok, dot1 + 2, "") > 0);
    /* The signature is checked before the payload is decoded: a changed payload is a forgery. */
    refused(ec, bad, &ex, AUTHCERT_E_AUTH, "bad signature");
    free(bad);
    assert_true(asprintf(&bad, "%.*s.%.*s.A B", hl, tok, pl, dot1 + 1) > 0);
    refused(ec, bad, &ex, AUTHCERT_E_CORRUPT, "signature: base64url: invalid character");
    free(bad);

    /* 2, 4 and 1 parts. */
    assert_true(asprintf(&bad, "%.*s", (int)(dot2 - tok), tok) > 0);
    refused(ec, bad, &ex, AUTHCERT_E_CORRUPT, "2 parts");
    free(bad);
    assert_true(asprintf(&bad, "%s.AAAA", tok) > 0);
    refused(ec, bad, &ex, AUTHCERT_E_CORRUPT, "4 parts");
    free(bad);
    refused(ec, "abc", &ex, AUTHCERT_E_CORRUPT, "1 parts");
    refused(ec, "..", &ex, AUTHCERT_E_CORRUPT, "header is not valid JSON");
    free(tok);

    /* A payload with bad base64url under a good signature. */
    char *h = header_for("ES256", ec), *hb = b64s(h), *input = NULL;
    free(h);
    assert_true(asprintf(&input, "%s.eyJ9=", hb) > 0);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[80];
    size_t sl = sizeof sig;
    assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL,
                                           authcert_cert_pkey(ec), NULL), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &sl, (unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    const unsigned char *q = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)sl);
    const BIGNUM *r, *s;
    unsigned char raw[64];
    ECDSA_SIG_get0(es, &r, &s);
    BN_bn2binpad(r, raw, 32);
    BN_bn2binpad(s, raw + 32, 32);
    ECDSA_SIG_free(es);
    char *sb = b64(raw, 64);
    assert_true(asprintf(&bad, "%s.%s", input, sb) > 0);
    refused(ec, bad, &ex, AUTHCERT_E_CORRUPT, "payload: base64url");
    free(bad);
    free(sb);
    free(input);
    free(hb);
}

static void test_oversized_refused(void **state)
{
    (void)state;
    authcert_jws_expect ex = expect_at(NOW);
    size_t n = AUTHCERT_JWS_MAX_TOKEN_DEFAULT + 1;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[10] = big[20] = '.';
    big[n] = '\0';
    refused(ec, big, &ex, AUTHCERT_E_CORRUPT, "more than 65536");
    free(big);
    /* A genuine token over the agent's own limit. */
    char *tok = token_for(ec, AGENT, NOW);
    ex.max_token_size = strlen(tok) - 1;
    refused(ec, tok, &ex, AUTHCERT_E_CORRUPT, "bytes, more than");
    ex.max_token_size = strlen(tok);
    accepted(ec, tok, &ex);
    free(tok);
}

static void test_non_object_json_refused(void **state)
{
    (void)state;
    authcert_jws_expect ex = expect_at(NOW);
    char *p = claims_json(AGENT, NOW, NOW + TTL, "jti-nonobj-01");
    char *tok = forge("[\"alg\",\"EdDSA\"]", p, authcert_cert_pkey(ed), "EdDSA");
    refused(ed, tok, &ex, AUTHCERT_E_CORRUPT, "header is not a JSON object");
    free(tok);
    char *h = header_for("EdDSA", ed);
    tok = forge(h, "[1,2,3]", authcert_cert_pkey(ed), "EdDSA");
    refused(ed, tok, &ex, AUTHCERT_E_CORRUPT, "payload is not a JSON object");
    free(tok);
    tok = forge(h, "\"agent-0001\"", authcert_cert_pkey(ed), "EdDSA");
    refused(ed, tok, &ex, AUTHCERT_E_CORRUPT, "payload is not valid JSON");
    free(tok);
    free(h);
    free(p);
}

static void test_es256_der_signature_refused(void **state)
{
    (void)state;
    authcert_jws_expect ex = expect_at(NOW);
    char *h = header_for("ES256", ec), *p = claims_json(AGENT, NOW, NOW + TTL, "jti-der-00001");
    char *tok = forge(h, p, authcert_cert_pkey(ec), "ES256-DER");
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "want 64 (raw R||S)");
    free(tok);
    free(h);
    free(p);
}

static void test_usage_errors(void **state)
{
    (void)state;
    json_t *cl = NULL;
    char *tok = token_for(ec, AGENT, NOW);
    authcert_jws_expect ex = expect_at(NOW);
    ex.audience = NULL;
    assert_status(authcert_jws_verify(ec, tok, strlen(tok), &ex, &cl), AUTHCERT_E_USAGE);
    ex.audience = AUTHCERT_JWS_BROADCAST;
    assert_status(authcert_jws_verify(ec, tok, strlen(tok), &ex, &cl), AUTHCERT_E_USAGE);
    ex = expect_at(NOW);
    ex.leeway = -1;
    assert_status(authcert_jws_verify(ec, tok, strlen(tok), &ex, &cl), AUTHCERT_E_USAGE);
    assert_null(cl);
    free(tok);
}

/* ---- replay ------------------------------------------------------------ */

static void test_replayed_jti_refused(void **state)
{
    (void)state;
    authcert_replay_cache *rc = NULL;
    assert_ok(authcert_replay_cache_new(0, 60, &rc));
    authcert_jws_expect ex = expect_at(NOW);
    ex.replay = rc;

    /* A forged token is refused before the cache sees its jti. */
    char *h = header_for("ES256", ec), *p = claims_json(AGENT, NOW, NOW + TTL, "jti-replay-01");
    char *forged = forge(h, p, authcert_cert_pkey(ec2), "ES256");
    refused(ec, forged, &ex, AUTHCERT_E_AUTH, "bad signature");
    assert_int_equal(authcert_replay_cache_count(rc), 0);
    char *tok = forge(h, p, authcert_cert_pkey(ec), "ES256");
    accepted(ec, tok, &ex);
    assert_int_equal(authcert_replay_cache_count(rc), 1);
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "replayed");
    ex.now += 100; /* still valid, still remembered */
    refused(ec, tok, &ex, AUTHCERT_E_AUTH, "replayed");

    /* A different token is fine. */
    char *tok2 = token_for(ec, AGENT, NOW);
    accepted(ec, tok2, &ex);
    assert_int_equal(authcert_replay_cache_count(rc), 2);
    free(tok2);
    free(forged);
    free(tok);
    free(h);
    free(p);
    authcert_replay_cache_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify_eddsa),
        cmocka_unit_test(test_sign_verify_es256),
        cmocka_unit_test(test_sign_verify_ps256),
        cmocka_unit_test(test_signer_is_reusable),
        cmocka_unit_test(test_sign_usage_errors),
        cmocka_unit_test(test_alg_none_refused),
        cmocka_unit_test(test_alg_swapped_refused),
        cmocka_unit_test(test_hs256_with_public_key_refused),
        cmocka_unit_test(test_forged_by_another_key_refused),
        cmocka_unit_test(test_payload_altered_refused),
        cmocka_unit_test(test_x5t_of_another_cert_refused),
        cmocka_unit_test(test_crit_and_typ_refused),
        cmocka_unit_test(test_expired_refused),
        cmocka_unit_test(test_iat_in_future_refused),
        cmocka_unit_test(test_audience_rules),
        cmocka_unit_test(test_missing_claims_refused),
        cmocka_unit_test(test_duplicated_keys_refused),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_oversized_refused),
        cmocka_unit_test(test_non_object_json_refused),
        cmocka_unit_test(test_es256_der_signature_refused),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_replayed_jti_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
