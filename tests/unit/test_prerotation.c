/*
 * Pre-rotation (authcert/commitment.h, authcert/next_key.h): the
 * commitment in a certificate, the sealed successor, and the rule an agent
 * applies to a key update. Each attack beside the control that passes, so
 * that a refusal cannot pass because nothing is accepted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authcert/agent.h"
#include "authcert/authcert.h"
#include "authcert/base64url.h"
#include "testlib.h"

#define SECRET "orbit lantern quietly 7 rivers"

typedef struct fixture {
    char *dir;
    char path[512];
    authcert_next_key *next;   /* the successor, sealed */
    EVP_PKEY *next_priv;       /* ...and unsealed, as the server's next -c would */
    authcert_cert *current;    /* committing to next */
    authcert_agent_trust *trust;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = testlib_tmpdir("prerotation");
    snprintf(f->path, sizeof f->path, "%s/authcert-server.der", f->dir);
    assert_ok(authcert_next_key_generate(AUTHCERT_KEY_P256, SECRET, &f->next));
    assert_ok(authcert_next_key_unseal(f->next, SECRET, &f->next_priv));
    authcert_cert_params p = {.type = AUTHCERT_KEY_P256,
                              .commit_to = authcert_next_key_hash(f->next)};
    assert_ok(authcert_cert_generate(&p, &f->current));
    size_t n = 0;
    const uint8_t *der = authcert_cert_der(f->current, &n);
    assert_ok(authcert_write_atomic(f->path, der, n, 0644));
    authcert_agent_trust_opts o = {.leeway = 30, .replay_capacity = 64};
    assert_ok(authcert_agent_trust_open(f->path, &o, &f->trust));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    authcert_agent_trust_free(f->trust);
    authcert_cert_free(f->current);
    EVP_PKEY_free(f->next_priv);
    authcert_next_key_free(f->next);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void test_commitment_round_trip(void **state)
{
    fixture *f = *state;
    char got[65];
    bool has = false;

    assert_ok(authcert_cert_commitment(f->current, &has, got));
    assert_true(has);
    assert_string_equal(got, authcert_next_key_hash(f->next));

    /* The hash is of the SPKI: the unsealed key gives the same. */
    char again[65];
    assert_ok(authcert_spki_sha256(f->next_priv, again));
    assert_string_equal(again, got);

    /* Non-critical, under our OID. */
    ASN1_OBJECT *oid = OBJ_txt2obj(AUTHCERT_COMMITMENT_OID, 1);
    int at = X509_get_ext_by_OBJ(authcert_cert_x509(f->current), oid, -1);
    assert_true(at >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(authcert_cert_x509(f->current), at)), 0);
    ASN1_OBJECT_free(oid);

    /* A certificate made without one has none. */
    authcert_cert *plain = NULL;
    authcert_cert_params p = {.type = AUTHCERT_KEY_P256};
    assert_ok(authcert_cert_generate(&p, &plain));
    assert_ok(authcert_cert_commitment(plain, &has, got));
    assert_false(has);
    assert_string_equal(got, "");
    authcert_cert_free(plain);
}

static void test_sealed_key(void **state)
{
    fixture *f = *state;
    char *pem = NULL;
    size_t len = 0;
    authcert_next_key *back = NULL, *other = NULL;
    EVP_PKEY *k = NULL;

    assert_ok(authcert_next_key_to_pem(f->next, &pem, &len));
    assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
    assert_non_null(strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    assert_ok(authcert_next_key_from_pem(pem, len, &back));
    assert_string_equal(authcert_next_key_hash(back), authcert_next_key_hash(f->next));
    assert_int_equal(authcert_next_key_type(back), AUTHCERT_KEY_P256);

    /* The right secret opens it to the committed key; a wrong one does not. */
    assert_ok(authcert_next_key_unseal(back, SECRET, &k));
    assert_int_equal(EVP_PKEY_eq(k, f->next_priv), 1);
    EVP_PKEY_free(k);
    k = NULL;
    assert_status(authcert_next_key_unseal(back, SECRET "x", &k), AUTHCERT_E_AUTH);
    assert_null(k);
    assert_status(authcert_next_key_unseal(back, "", &k), AUTHCERT_E_USAGE);

    /* A file whose public block names another key than the sealed one. */
    char *opem = NULL;
    size_t olen = 0;
    assert_ok(authcert_next_key_generate(AUTHCERT_KEY_P256, SECRET, &other));
    assert_ok(authcert_next_key_to_pem(other, &opem, &olen));
    const char *sealed_at = strstr(pem, "-----BEGIN ENCRYPTED");
    const char *opub_end = strstr(opem, "-----BEGIN ENCRYPTED");
    size_t a = (size_t)(opub_end - opem), b = strlen(sealed_at);
    char *mixed = malloc(a + b + 1);
    memcpy(mixed, opem, a);
    memcpy(mixed + a, sealed_at, b + 1);
    authcert_next_key *liar = NULL;
    assert_ok(authcert_next_key_from_pem(mixed, a + b, &liar));
    assert_status(authcert_next_key_unseal(liar, SECRET, &k), AUTHCERT_E_CORRUPT);
    authcert_next_key_free(liar);

    /* Not the two blocks: refused. */
    authcert_next_key *bad = NULL;
    assert_status(authcert_next_key_from_pem(sealed_at, b, &bad), AUTHCERT_E_CORRUPT);
    assert_status(authcert_next_key_from_pem(pem, 40, &bad), AUTHCERT_E_CORRUPT);

    free(mixed);
    OPENSSL_free(opem);
    OPENSSL_free(pem);
    authcert_next_key_free(other);
    authcert_next_key_free(back);
}

/* The successor's certificate, as the next -c makes it: for the committed
 * key, signed by it, committing to a fresh key of its own. */
static authcert_cert *successor(fixture *f)
{
    authcert_next_key *after = NULL;
    authcert_cert *c = NULL;
    assert_ok(authcert_next_key_generate(AUTHCERT_KEY_P256, SECRET, &after));
    authcert_cert_params p = {.commit_to = authcert_next_key_hash(after)};
    assert_ok(authcert_cert_generate_for(&p, f->next_priv, &c));
    authcert_next_key_free(after);
    return c;
}

/* x re-signed by key after edit (NULL: none) of its commitment to commit_to. */
static authcert_cert *resigned(const authcert_cert *from, EVP_PKEY *key, const char *commit_to)
{
    X509 *x = X509_dup(authcert_cert_x509(from));
    authcert_cert *c = NULL;
    if (commit_to != NULL) {
        ASN1_OBJECT *oid = OBJ_txt2obj(AUTHCERT_COMMITMENT_OID, 1);
        int at = X509_get_ext_by_OBJ(x, oid, -1);
        assert_true(at >= 0);
        X509_EXTENSION_free(X509_delete_ext(x, at));
        ASN1_OBJECT_free(oid);
        assert_ok(authcert_commitment_add(x, commit_to));
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_ok(authcert_cert_adopt(x, NULL, &c));
    return c;
}

static json_t *update_claims(const authcert_cert *c)
{
    size_t n = 0;
    const uint8_t *der = authcert_cert_der(c, &n);
    char *b = NULL;
    assert_ok(authcert_b64url_encode(der, n, &b));
    json_t *j = json_pack("{s:s, s:{s:s, s:s}}", "cmd", "update-key", "args", "certificate", b,
                          "thumbprint", authcert_cert_thumbprint(c));
    free(b);
    return j;
}

static void assert_refused(fixture *f, const authcert_cert *c, authcert_cert_refusal want)
{
    authcert_cert_policy pol = {.trusted = f->current};
    authcert_cert_refusal why = AUTHCERT_CERT_ACCEPTABLE;
    char tp[65];

    assert_status(authcert_cert_check_policy(c, &pol, &why), AUTHCERT_E_POLICY);
    assert_int_equal(why, want);
    /* ...and at the agent: its file and trust unchanged. */
    json_t *cl = update_claims(c);
    assert_status(authcert_agent_apply_update_key(f->trust, cl, NULL), AUTHCERT_E_POLICY);
    json_decref(cl);
    authcert_agent_trust_thumbprint(f->trust, tp);
    assert_string_equal(tp, authcert_cert_thumbprint(f->current));
    authcert_cert *onfile = NULL;
    uint8_t *der = NULL;
    size_t n = 0;
    assert_ok(authcert_read_file(f->path, 1 << 20, &der, &n));
    assert_ok(authcert_cert_from_der(der, n, &onfile));
    assert_string_equal(authcert_cert_thumbprint(onfile), authcert_cert_thumbprint(f->current));
    authcert_cert_free(onfile);
    free(der);
}

static void test_agent_follows_only_the_committed_key(void **state)
{
    fixture *f = *state;
    authcert_cert *good = successor(f);
    EVP_PKEY *thief = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char thief_hash[65];
    assert_ok(authcert_spki_sha256(thief, thief_hash));

    /* 1. A thief of the current key moves agents to a certificate of its own. */
    authcert_cert *own = NULL;
    authcert_cert_params p = {.type = AUTHCERT_KEY_P256};
    assert_ok(authcert_cert_generate(&p, &own));
    assert_refused(f, own, AUTHCERT_CERT_NOT_COMMITTED);

    /* 2. ...or forges one with the successor's public key that commits to
     *    the thief's key: signed by the thief, not by the successor. */
    authcert_cert *forged = resigned(good, thief, thief_hash);
    assert_refused(f, forged, AUTHCERT_CERT_SELF_SIGNATURE);

    /* 3. The real successor's certificate with its signature spoiled. */
    authcert_cert *spoiled = resigned(good, thief, NULL);
    assert_refused(f, spoiled, AUTHCERT_CERT_SELF_SIGNATURE);

    /* Control: the successor's own certificate is followed. */
    authcert_cert_policy pol = {.trusted = f->current};
    assert_ok(authcert_cert_check_policy(good, &pol, NULL));
    json_t *cl = update_claims(good);
    char tp[65];
    assert_ok(authcert_agent_apply_update_key(f->trust, cl, tp));
    assert_string_equal(tp, authcert_cert_thumbprint(good));
    json_decref(cl);

    authcert_cert_free(good);
    authcert_cert_free(own);
    authcert_cert_free(forged);
    authcert_cert_free(spoiled);
    EVP_PKEY_free(thief);
}

static void test_without_commitment_policy_is_as_before(void **state)
{
    (void)state;
    authcert_cert *old = NULL, *next = NULL;
    authcert_cert_params p = {.type = AUTHCERT_KEY_P256};
    assert_ok(authcert_cert_generate(&p, &old));
    assert_ok(authcert_cert_generate(&p, &next));
    authcert_cert_policy pol = {.trusted = old};
    assert_ok(authcert_cert_check_policy(next, &pol, NULL));
    authcert_cert_free(old);
    authcert_cert_free(next);
}

/* A commitment that is not one OCTET STRING of 32 bytes, or is critical. */
static authcert_cert *with_raw_commitment(const unsigned char *value, int len, int critical)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    authcert_cert *base = NULL, *c = NULL;
    authcert_cert_params p = {0};
    assert_ok(authcert_cert_generate_for(&p, k, &base));
    X509 *x = X509_dup(authcert_cert_x509(base));
    ASN1_OBJECT *oid = OBJ_txt2obj(AUTHCERT_COMMITMENT_OID, 1);
    ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(v, value, len);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, oid, critical, v);
    assert_true(X509_add_ext(x, ext, -1) == 1);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    assert_ok(authcert_cert_adopt(x, NULL, &c));
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(v);
    ASN1_OBJECT_free(oid);
    authcert_cert_free(base);
    EVP_PKEY_free(k);
    return c;
}

static void test_malformed_commitments(void **state)
{
    (void)state;
    /* 04 1f + 31 bytes: an OCTET STRING, one byte short. */
    unsigned char short_one[33] = {0x04, 0x1f};
    /* 04 20 + 32 bytes + a trailing byte. */
    unsigned char trailing[35] = {0x04, 0x20};
    unsigned char good[34] = {0x04, 0x20};
    /* The same 32 bytes in BER: a long-form length (04 81 20) and an
     * indefinite constructed string (24 80 04 20 ... 00 00). */
    unsigned char longform[35] = {0x04, 0x81, 0x20};
    unsigned char indefinite[38] = {0x24, 0x80, 0x04, 0x20};
    authcert_cert *lf = with_raw_commitment(longform, sizeof longform, 0);
    authcert_cert *ind = with_raw_commitment(indefinite, sizeof indefinite, 0);
    authcert_cert *a = with_raw_commitment(short_one, sizeof short_one, 0);
    authcert_cert *b = with_raw_commitment(trailing, sizeof trailing, 0);
    authcert_cert *crit = with_raw_commitment(good, sizeof good, 1);
    authcert_cert *ok = with_raw_commitment(good, sizeof good, 0);
    authcert_cert *next = NULL;
    authcert_cert_params p = {.type = AUTHCERT_KEY_P256};
    assert_ok(authcert_cert_generate(&p, &next));
    bool has;
    char h[65];
    authcert_cert_refusal why;

    assert_status(authcert_cert_commitment(a, &has, h), AUTHCERT_E_CORRUPT);
    assert_status(authcert_cert_commitment(lf, &has, h), AUTHCERT_E_CORRUPT);
    assert_status(authcert_cert_commitment(ind, &has, h), AUTHCERT_E_CORRUPT);
    assert_status(authcert_cert_commitment(b, &has, h), AUTHCERT_E_CORRUPT);
    assert_status(authcert_cert_commitment(crit, &has, h), AUTHCERT_E_CORRUPT);
    assert_ok(authcert_cert_commitment(ok, &has, h)); /* control */
    assert_true(has);

    /* Such a certificate is not accepted, nor does one it trusts get a successor. */
    assert_status(authcert_cert_check_policy(a, NULL, &why), AUTHCERT_E_POLICY);
    assert_int_equal(why, AUTHCERT_CERT_MALFORMED);
    authcert_cert_policy pol = {.trusted = a};
    assert_status(authcert_cert_check_policy(next, &pol, &why), AUTHCERT_E_POLICY);
    assert_int_equal(why, AUTHCERT_CERT_NOT_COMMITTED);

    authcert_cert_free(a);
    authcert_cert_free(b);
    authcert_cert_free(lf);
    authcert_cert_free(ind);
    authcert_cert_free(crit);
    authcert_cert_free(ok);
    authcert_cert_free(next);
}

/* A certificate that commits to its own key protects nothing: refused. */
static void test_self_commitment_refused(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char own[65];
    authcert_cert *self = NULL, *other = NULL;
    assert_ok(authcert_spki_sha256(k, own));
    authcert_cert_params p = {.commit_to = own};
    assert_ok(authcert_cert_generate_for(&p, k, &self));
    authcert_cert_refusal why;
    assert_status(authcert_cert_check_policy(self, NULL, &why), AUTHCERT_E_POLICY);
    assert_int_equal(why, AUTHCERT_CERT_MALFORMED);
    /* Control: committing to another key passes. */
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char next[65];
    assert_ok(authcert_spki_sha256(k2, next));
    authcert_cert_params q = {.commit_to = next};
    assert_ok(authcert_cert_generate_for(&q, k, &other));
    assert_ok(authcert_cert_check_policy(other, NULL, NULL));
    authcert_cert_free(self);
    authcert_cert_free(other);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commitment_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_follows_only_the_committed_key, setup, teardown),
        cmocka_unit_test(test_without_commitment_policy_is_as_before),
        cmocka_unit_test(test_malformed_commitments),
        cmocka_unit_test(test_self_commitment_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
