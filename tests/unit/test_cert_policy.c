/*
 * The certificate policy (authcert/cert_policy.h): each rule with the
 * certificate that breaks it and, beside it, the nearest one that passes,
 * so that a refusal cannot pass because nothing is accepted. Certificates
 * are built here with OpenSSL's own X509 and X509V3 calls, so that each
 * has exactly the dates and extensions a case needs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authcert/agent.h"
#include "authcert/base64url.h"
#include "testlib.h"
#include "certdata.h"

/* Keys made once; the RSA ones read from tests/data (generation takes
 * minutes under valgrind). */
static EVP_PKEY *k_p256, *k_p256b, *k_ed25519, *k_rsa2048, *k_rsa3072;
static time_t T; /* "now" of every policy check here */

static EVP_PKEY *data_key(const char *name)
{
    char *path = data_path(name);
    FILE *f = fopen(path, "r");
    EVP_PKEY *pk = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

    if (f != NULL)
        fclose(f);
    free(path);
    return pk;
}

static int group_setup(void **state)
{
    (void)state;
    if (authcert_init() != AUTHCERT_OK)
        return -1;
    k_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    k_p256b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    k_ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    k_rsa2048 = data_key("policy-rsa2048.key");
    k_rsa3072 = data_key("policy-rsa3072.key");
    T = time(NULL);
    return k_p256 && k_p256b && k_ed25519 && k_rsa2048 && k_rsa3072 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(k_p256);
    EVP_PKEY_free(k_p256b);
    EVP_PKEY_free(k_ed25519);
    EVP_PKEY_free(k_rsa2048);
    EVP_PKEY_free(k_rsa3072);
    authcert_cleanup();
    return 0;
}

/* An extension as `openssl req -addext NAME=VALUE` writes it. */
typedef struct ext {
    const char *name;
    const char *value;
} ext;

#define DAY 86400
/* What authcert -c writes. */
static const ext ours[] = {
    {"subjectKeyIdentifier", "hash"},
    {"keyUsage", "critical,digitalSignature"},
    {"basicConstraints", "critical,CA:FALSE"},
    {NULL, NULL},
};

/*
 * A self-signed certificate of pk, X.509 version (1 or 3), valid from nb to
 * na, with the extensions listed (NULL-terminated; NULL for none).
 */
static authcert_cert *make(EVP_PKEY *pk, int version, time_t nb, time_t na, const ext *exts)
{
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX ctx;
    CONF *conf = NCONF_new(NULL); /* certificatePolicies wants one, even empty */
    authcert_cert *c = NULL;

    assert_non_null(x);
    assert_non_null(conf);
    assert_int_equal(X509_set_version(x, version - 1), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 4242), 1);
    name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"policy test", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
    assert_int_equal(X509_set_pubkey(x, pk), 1);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509V3_set_nconf(&ctx, conf);
    for (size_t i = 0; exts != NULL && exts[i].name != NULL; i++) {
        X509_EXTENSION *e = X509V3_EXT_nconf(NULL, &ctx, exts[i].name, exts[i].value);
        if (e == NULL)
            fail_msg("extension %s=%s", exts[i].name, exts[i].value);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    NCONF_free(conf);
    assert_true(X509_sign(x, pk, EVP_PKEY_is_a(pk, "ED25519") ? NULL : EVP_sha256()) > 0);
    assert_int_equal(EVP_PKEY_up_ref(pk), 1);
    assert_ok(authcert_cert_adopt(x, pk, &c));
    return c;
}

/* A certificate like ours with these extensions instead, valid around T. */
static authcert_cert *with_exts(const ext *exts)
{
    return make(k_p256, 3, T - DAY, T + 30 * DAY, exts);
}

/* Check c at T; the refusal reason, and (on refusal) a one-line detail naming it. */
static authcert_cert_refusal check(const authcert_cert *c, const authcert_cert *trusted,
                                   bool any_dates)
{
    authcert_cert_policy p = {.now = T, .trusted = trusted, .any_dates = any_dates};
    authcert_cert_refusal why = AUTHCERT_CERT_MALFORMED;
    authcert_status st = authcert_cert_check_policy(c, &p, &why);

    if (why == AUTHCERT_CERT_ACCEPTABLE) {
        if (st != AUTHCERT_OK)
            fail_msg("acceptable but %s (%s)", authcert_strerror(st), authcert_detail());
    } else {
        assert_int_equal(st, AUTHCERT_E_POLICY);
        assert_non_null(strstr(authcert_detail(), authcert_cert_thumbprint(c)));
        assert_null(strchr(authcert_detail(), '\n'));
    }
    return why;
}

#define assert_refused(c, trusted, want)                                    \
    do {                                                                    \
        authcert_cert_refusal got_ = check((c), (trusted), false);          \
        if (got_ != (want))                                                 \
            fail_msg("want %s, got %s (%s)", authcert_cert_refusal_name(want), \
                     authcert_cert_refusal_name(got_), authcert_detail());  \
    } while (0)

#define assert_accepted(c, trusted) assert_refused((c), (trusted), AUTHCERT_CERT_ACCEPTABLE)

static void test_generated_certificates_pass(void **state)
{
    /* RSA: authcert_cert_generate_for below, with a key from tests/data. */
    static const authcert_key_type types[] = {AUTHCERT_KEY_ED25519, AUTHCERT_KEY_P256};
    static const char *const dns[] = {"agent.example", NULL};
    (void)state;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        authcert_cert_params p = {.type = types[i]};
        authcert_cert *c = NULL;
        assert_ok(authcert_cert_generate(&p, &c));
        /* Now, not at T: generation has just happened. */
        assert_ok(authcert_cert_check_policy(c, NULL, NULL));
        authcert_cert_free(c);
    }
    authcert_cert *c = NULL;
    assert_ok(authcert_cert_generate_for(NULL, k_rsa2048, &c));
    assert_ok(authcert_cert_check_policy(c, NULL, NULL));
    authcert_cert_free(c);
    /* A TLS certificate (extended key usage, subject alternative names) too. */
    authcert_cert_params tls = {.tls = true, .dns_names = dns};
    assert_ok(authcert_cert_generate(&tls, &c));
    assert_ok(authcert_cert_check_policy(c, NULL, NULL));
    authcert_cert_free(c);
}

static void test_golden_vector_from_openssl_req_passes(void **state)
{
    char *path = data_path("p256.der");
    size_t len = 0;
    uint8_t *der = slurp(path, &len);
    authcert_cert *c = NULL;
    authcert_cert_refusal why = AUTHCERT_CERT_MALFORMED;
    (void)state;
    assert_non_null(der);
    assert_ok(authcert_cert_from_der(der, len, &c));
    /* Made with -addext keyUsage=critical,digitalSignature basicConstraints=critical,CA:FALSE
     * and ten years of validity; dates aside, it must pass whenever the test runs. */
    authcert_cert_policy p = {.any_dates = true};
    assert_ok(authcert_cert_check_policy(c, &p, &why));
    assert_int_equal(why, AUTHCERT_CERT_ACCEPTABLE);
    authcert_cert_free(c);
    free(der);
    free(path);
}

static void test_validity_with_leeway(void **state)
{
    struct {
        time_t nb, na;
        authcert_cert_refusal want;
    } cases[] = {
        {T - DAY, T + DAY, AUTHCERT_CERT_ACCEPTABLE},
        {T + AUTHCERT_CERT_LEEWAY, T + DAY, AUTHCERT_CERT_ACCEPTABLE}, /* a clock ahead */
        {T + AUTHCERT_CERT_LEEWAY + 1, T + DAY, AUTHCERT_CERT_NOT_YET_VALID},
        {T + 30 * DAY, T + 60 * DAY, AUTHCERT_CERT_NOT_YET_VALID},
        {T - DAY, T, AUTHCERT_CERT_ACCEPTABLE}, /* its last second */
        {T - DAY, T - 1, AUTHCERT_CERT_EXPIRED},
        {T - 60 * DAY, T - 30 * DAY, AUTHCERT_CERT_EXPIRED},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        authcert_cert *c = make(k_p256, 3, cases[i].nb, cases[i].na, ours);
        authcert_cert_refusal got = check(c, NULL, false);
        if (got != cases[i].want)
            fail_msg("case %zu: want %s, got %s (%s)", i,
                     authcert_cert_refusal_name(cases[i].want), authcert_cert_refusal_name(got),
                     authcert_detail());
        /* Dates are not checked for what does not become current (--as-expired). */
        assert_int_equal(check(c, NULL, true), AUTHCERT_CERT_ACCEPTABLE);
        authcert_cert_free(c);
    }
    /* The detail says when. */
    authcert_cert *c = make(k_p256, 3, 1700000000 - DAY, 1700000000, ours);
    assert_int_equal(check(c, NULL, false), AUTHCERT_CERT_EXPIRED);
    assert_non_null(strstr(authcert_detail(), "expired on 2023-11-14T22:13:20Z"));
    authcert_cert_free(c);
}

static void test_critical_extensions(void **state)
{
    static const ext unknown_crit[] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"1.3.6.1.4.1.55555.1", "critical,ASN1:UTF8String:must understand"},
        {NULL, NULL},
    };
    static const ext unknown_plain[] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"1.3.6.1.4.1.55555.1", "ASN1:UTF8String:may ignore"},
        {NULL, NULL},
    };
    static const ext known_crit[] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"keyUsage", "critical,digitalSignature"},
        {"extendedKeyUsage", "critical,serverAuth,clientAuth"},
        {"subjectAltName", "critical,DNS:server.example"},
        {NULL, NULL},
    };
    /* In an end-entity certificate: not known (CA-only, or forbidden critical). */
    static const ext name_constraints[] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"nameConstraints", "critical,permitted;DNS:example.com"},
        {NULL, NULL},
    };
    static const ext policies[] = {
        {"certificatePolicies", "critical,1.2.3.4"},
        {NULL, NULL},
    };
    static const ext crit_ski[] = {
        {"subjectKeyIdentifier", "critical,hash"},
        {NULL, NULL},
    };
    struct {
        const char *what;
        const ext *exts;
        authcert_cert_refusal want;
    } cases[] = {
        {"unknown critical", unknown_crit, AUTHCERT_CERT_CRITICAL_EXTENSION},
        {"unknown, not critical", unknown_plain, AUTHCERT_CERT_ACCEPTABLE},
        {"the known ones critical", known_crit, AUTHCERT_CERT_ACCEPTABLE},
        {"nameConstraints critical", name_constraints, AUTHCERT_CERT_CRITICAL_EXTENSION},
        {"certificatePolicies critical", policies, AUTHCERT_CERT_CRITICAL_EXTENSION},
        {"subjectKeyIdentifier critical", crit_ski, AUTHCERT_CERT_CRITICAL_EXTENSION},
        {"no extensions (version 3)", NULL, AUTHCERT_CERT_ACCEPTABLE},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        authcert_cert *c = with_exts(cases[i].exts);
        authcert_cert_refusal got = check(c, NULL, false);
        if (got != cases[i].want)
            fail_msg("%s: want %s, got %s (%s)", cases[i].what,
                     authcert_cert_refusal_name(cases[i].want), authcert_cert_refusal_name(got),
                     authcert_detail());
        /* Even for what is not made current: it is not ours to ignore. */
        assert_int_equal(check(c, NULL, true), cases[i].want);
        authcert_cert_free(c);
    }
    /* The refusal names the extension's OID. */
    authcert_cert *c = with_exts(unknown_crit);
    assert_int_equal(check(c, NULL, false), AUTHCERT_CERT_CRITICAL_EXTENSION);
    assert_non_null(strstr(authcert_detail(), "unknown critical extension 1.3.6.1.4.1.55555.1"));
    authcert_cert_free(c);
}

static void test_malformed_extensions(void **state)
{
    /* basicConstraints whose content is not a BasicConstraints. */
    static const ext garbage_bc[] = {
        {"basicConstraints", "critical,DER:01:01:FF"},
        {NULL, NULL},
    };
    /* Two basicConstraints: which one would a verifier read? */
    static const ext twice[] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"basicConstraints", "critical,CA:TRUE"},
        {NULL, NULL},
    };
    (void)state;
    authcert_cert *c = with_exts(garbage_bc);
    assert_refused(c, NULL, AUTHCERT_CERT_MALFORMED);
    authcert_cert_free(c);
    c = with_exts(twice);
    assert_refused(c, NULL, AUTHCERT_CERT_MALFORMED);
    authcert_cert_free(c);
}

static void test_ca_and_key_usage(void **state)
{
    static const ext ca_certsign[] = {
        {"basicConstraints", "critical,CA:TRUE"},
        {"keyUsage", "critical,keyCertSign"},
        {NULL, NULL},
    };
    static const ext ca_default[] = { /* `openssl req -x509` without -addext */
        {"subjectKeyIdentifier", "hash"},
        {"authorityKeyIdentifier", "keyid:always"},
        {"basicConstraints", "critical,CA:TRUE"},
        {NULL, NULL},
    };
    static const ext ca_with_digsig[] = {
        {"basicConstraints", "CA:TRUE"},
        {"keyUsage", "digitalSignature"},
        {NULL, NULL},
    };
    static const ext certsign_no_bc[] = {
        {"keyUsage", "critical,digitalSignature,keyCertSign"},
        {NULL, NULL},
    };
    static const ext certsign_ca_false[] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"keyUsage", "critical,digitalSignature,keyCertSign"},
        {NULL, NULL},
    };
    static const ext no_digsig[] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"keyUsage", "critical,keyEncipherment"},
        {NULL, NULL},
    };
    static const ext digsig_and_more[] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"keyUsage", "critical,digitalSignature,nonRepudiation,keyEncipherment"},
        {NULL, NULL},
    };
    static const ext bc_only[] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {NULL, NULL},
    };
    struct {
        const char *what;
        const ext *exts;
        authcert_cert_refusal want;
    } cases[] = {
        {"CA with keyCertSign only", ca_certsign, AUTHCERT_CERT_CA},
        {"openssl req -x509 default", ca_default, AUTHCERT_CERT_CA},
        {"CA:TRUE with digitalSignature", ca_with_digsig, AUTHCERT_CERT_CA},
        {"keyCertSign without basicConstraints", certsign_no_bc, AUTHCERT_CERT_CA},
        {"keyCertSign with CA:FALSE", certsign_ca_false, AUTHCERT_CERT_CA},
        {"keyUsage without digitalSignature", no_digsig, AUTHCERT_CERT_KEY_USAGE},
        {"digitalSignature among others", digsig_and_more, AUTHCERT_CERT_ACCEPTABLE},
        {"no keyUsage", bc_only, AUTHCERT_CERT_ACCEPTABLE},
        {"ours", ours, AUTHCERT_CERT_ACCEPTABLE},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        authcert_cert *c = with_exts(cases[i].exts);
        authcert_cert_refusal got = check(c, NULL, false);
        if (got != cases[i].want)
            fail_msg("%s: want %s, got %s (%s)", cases[i].what,
                     authcert_cert_refusal_name(cases[i].want), authcert_cert_refusal_name(got),
                     authcert_detail());
        authcert_cert_free(c);
    }
    /* Version 1 and self-signed: OpenSSL takes it for a root. */
    authcert_cert *v1 = make(k_p256, 1, T - DAY, T + DAY, NULL);
    assert_refused(v1, NULL, AUTHCERT_CERT_CA);
    authcert_cert_free(v1);
    /* A CA refusal is reported before its dates: --as-expired would not help. */
    authcert_cert *old_ca = make(k_p256, 3, T - 60 * DAY, T - 30 * DAY, ca_certsign);
    assert_refused(old_ca, NULL, AUTHCERT_CERT_CA);
    authcert_cert_free(old_ca);
}

static void test_key_family_against_the_trusted_one(void **state)
{
    authcert_cert *p256 = make(k_p256, 3, T - DAY, T + DAY, ours);
    authcert_cert *p256b = make(k_p256b, 3, T - DAY, T + DAY, ours);
    authcert_cert *ed = make(k_ed25519, 3, T - DAY, T + DAY, ours);
    authcert_cert *rsa2k = make(k_rsa2048, 3, T - DAY, T + DAY, ours);
    authcert_cert *rsa3k = make(k_rsa3072, 3, T - DAY, T + DAY, ours);
    (void)state;

    /* Without a trusted certificate, every supported type passes. */
    assert_accepted(p256, NULL);
    assert_accepted(ed, NULL);
    assert_accepted(rsa2k, NULL);
    /* Another key of the same type: a routine replacement. */
    assert_accepted(p256b, p256);
    assert_accepted(p256, p256);
    /* Another family. */
    assert_refused(ed, p256, AUTHCERT_CERT_KEY_CHANGE);
    assert_refused(p256, ed, AUTHCERT_CERT_KEY_CHANGE);
    assert_refused(rsa2k, p256, AUTHCERT_CERT_KEY_CHANGE);
    assert_refused(p256, rsa3k, AUTHCERT_CERT_KEY_CHANGE);
    assert_non_null(strstr(authcert_detail(), "its key is p256 and the trusted one rsa3072"));
    /* RSA may grow, not shrink. */
    assert_accepted(rsa3k, rsa2k);
    assert_refused(rsa2k, rsa3k, AUTHCERT_CERT_KEY_CHANGE);

    authcert_cert_free(p256);
    authcert_cert_free(p256b);
    authcert_cert_free(ed);
    authcert_cert_free(rsa2k);
    authcert_cert_free(rsa3k);
}

static void test_unsupported_keys_never_get_this_far(void **state)
{
    /* P-384 is refused when the certificate is read, before any policy. */
    char *path = data_path("p384.der");
    size_t len = 0;
    uint8_t *der = slurp(path, &len);
    authcert_cert *c = NULL;
    (void)state;
    assert_non_null(der);
    assert_status(authcert_cert_from_der(der, len, &c), AUTHCERT_E_CORRUPT);
    assert_null(c);
    assert_status(authcert_cert_check_policy(NULL, NULL, NULL), AUTHCERT_E_USAGE);
    free(der);
    free(path);
}

/* ---- at the agent: update-key through the policy ---- */

static json_t *update_claims(const authcert_cert *c)
{
    size_t n = 0;
    const uint8_t *der = authcert_cert_der(c, &n);
    char *b = NULL;
    json_t *j;

    assert_ok(authcert_b64url_encode(der, n, &b));
    j = json_pack("{s:s, s:{s:s, s:s}}", "cmd", "update-key", "args", "certificate", b,
                  "thumbprint", authcert_cert_thumbprint(c));
    free(b);
    assert_non_null(j);
    return j;
}

static void test_update_key_applies_the_policy(void **state)
{
    /* update-key checks at time(NULL): certificates around the real now. */
    time_t now = time(NULL);
    static const ext ca_certsign[] = {
        {"basicConstraints", "critical,CA:TRUE"},
        {"keyUsage", "critical,keyCertSign"},
        {NULL, NULL},
    };
    static const ext unknown_crit[] = {
        {"1.3.6.1.4.1.55555.1", "critical,ASN1:UTF8String:must understand"},
        {NULL, NULL},
    };
    authcert_cert *trusted = make(k_p256, 3, now - DAY, now + DAY, ours);
    struct {
        const char *what;
        authcert_cert *c;
    } bad[] = {
        {"expired", make(k_p256b, 3, now - 2 * DAY, now - DAY, ours)},
        {"not yet valid", make(k_p256b, 3, now + DAY, now + 2 * DAY, ours)},
        {"unknown critical extension", make(k_p256b, 3, now - DAY, now + DAY, unknown_crit)},
        {"CA with keyCertSign only", make(k_p256b, 3, now - DAY, now + DAY, ca_certsign)},
        {"another key type", make(k_ed25519, 3, now - DAY, now + DAY, ours)},
    };
    authcert_cert *good = make(k_p256b, 3, now - DAY, now + DAY, ours);
    authcert_agent_trust *t = NULL;
    authcert_agent_trust_opts o = {.replay_capacity = 4};
    char thumb[65];
    (void)state;

    assert_ok(authcert_agent_trust_new(trusted, &o, &t));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *cl = update_claims(bad[i].c);
        authcert_status st = authcert_agent_apply_update_key(t, cl, NULL);
        if (st != AUTHCERT_E_POLICY)
            fail_msg("%s: %s (%s)", bad[i].what, authcert_strerror(st), authcert_detail());
        assert_non_null(strstr(authcert_detail(), "update-key: certificate "));
        authcert_agent_trust_thumbprint(t, thumb);
        assert_string_equal(thumb, authcert_cert_thumbprint(trusted));
        json_decref(cl);
        authcert_cert_free(bad[i].c);
    }
    /* The control: a valid certificate of the same type is installed. */
    json_t *cl = update_claims(good);
    assert_ok(authcert_agent_apply_update_key(t, cl, thumb));
    assert_string_equal(thumb, authcert_cert_thumbprint(good));
    json_decref(cl);

    authcert_agent_trust_free(t);
    authcert_cert_free(trusted);
    authcert_cert_free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_certificates_pass),
        cmocka_unit_test(test_golden_vector_from_openssl_req_passes),
        cmocka_unit_test(test_validity_with_leeway),
        cmocka_unit_test(test_critical_extensions),
        cmocka_unit_test(test_malformed_extensions),
        cmocka_unit_test(test_ca_and_key_usage),
        cmocka_unit_test(test_key_family_against_the_trusted_one),
        cmocka_unit_test(test_unsupported_keys_never_get_this_far),
        cmocka_unit_test(test_update_key_applies_the_policy),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
