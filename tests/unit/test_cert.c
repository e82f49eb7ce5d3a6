/* Certificates: generation checked by the openssl CLI, encodings, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ctype.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testlib.h"
#include "certdata.h"

static const authcert_key_type all_types[] = {
    AUTHCERT_KEY_ED25519, AUTHCERT_KEY_P256, AUTHCERT_KEY_RSA2048,
    AUTHCERT_KEY_RSA3072, AUTHCERT_KEY_RSA4096,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static int setup(void **state)
{
    (void)state;
    return authcert_init() == AUTHCERT_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    authcert_cleanup();
    return 0;
}

static authcert_cert *gen(authcert_key_type type, int days, const char *subject)
{
    authcert_cert_params p = { .type = type, .days = days, .subject = subject };
    authcert_cert *c = NULL;

    assert_ok(authcert_cert_generate(&p, &c));
    assert_non_null(c);
    return c;
}

/* Run `openssl x509 -inform DER ARGS` on c's DER; its stdout, caller frees. */
static char *openssl_x509(const authcert_cert *c, const char *args)
{
    char *dir = testlib_tmpdir("cert");
    char path[4096], outp[4096];
    size_t len;
    const uint8_t *der = authcert_cert_der(c, &len);
    uint8_t *out;

    snprintf(path, sizeof path, "%s/c.der", dir);
    snprintf(outp, sizeof outp, "%s/out.txt", dir);
    spill(path, der, len);
    assert_int_equal(testlib_sh("openssl x509 -inform DER -in '%s' %s > '%s'", path, args, outp), 0);
    out = slurp(outp, &len);
    assert_non_null(out);
    testlib_rmrf(dir);
    free(dir);
    return (char *)out;
}

static void test_generate_every_type_as_openssl_sees_it(void **state)
{
    static const char *sigalg[] = {
        "ED25519", "ecdsa-with-SHA256", "sha256WithRSAEncryption",
        "sha256WithRSAEncryption", "sha256WithRSAEncryption",
    };
    static const char *pubkey[] = {
        "ED25519 Public-Key", "Public-Key: (256 bit)", "Public-Key: (2048 bit)",
        "Public-Key: (3072 bit)", "Public-Key: (4096 bit)",
    };
    (void)state;
    for (size_t i = 0; i < N_TYPES; i++) {
        authcert_cert *c = gen(all_types[i], 0, NULL);
        authcert_cert_info info;
        char *fp, *text, *serial, want[80];
        size_t k = 0;

        assert_int_equal(authcert_cert_key_type(c), all_types[i]);
        assert_true(authcert_cert_has_key(c));
        assert_int_equal(X509_verify(authcert_cert_x509(c), authcert_cert_pubkey(c)), 1);
        assert_int_equal(EVP_PKEY_eq(authcert_cert_pkey(c), authcert_cert_pubkey(c)), 1);

        /* Thumbprint = openssl's SHA-256 fingerprint without colons, lowercased. */
        fp = openssl_x509(c, "-noout -fingerprint -sha256");
        assert_non_null(strstr(fp, "Fingerprint="));
        for (const char *p = strchr(fp, '=') + 1; *p != '\0' && *p != '\n'; p++)
            if (*p != ':')
                want[k++] = (char)tolower((unsigned char)*p);
        want[k] = '\0';
        assert_string_equal(authcert_cert_thumbprint(c), want);
        assert_true(authcert_thumbprint_valid(authcert_cert_thumbprint(c)));

        text = openssl_x509(c, "-noout -text");
        assert_non_null(strstr(text, "Version: 3 (0x2)"));
        assert_non_null(strstr(text, "X509v3 Key Usage: critical\n                Digital Signature\n"));
        assert_non_null(strstr(text, "X509v3 Basic Constraints: critical\n                CA:FALSE\n"));
        assert_non_null(strstr(text, "X509v3 Subject Key Identifier"));
        assert_non_null(strstr(text, "X509v3 Authority Key Identifier"));
        {
            const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(authcert_cert_x509(c));
            const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(authcert_cert_x509(c));
            assert_non_null(skid);
            assert_non_null(akid);
            assert_int_equal(ASN1_OCTET_STRING_cmp(skid, akid), 0);
        }
        assert_non_null(strstr(text, "Issuer: CN = authcert server authentication\n"));
        assert_non_null(strstr(text, "Subject: CN = authcert server authentication\n"));
        assert_non_null(strstr(text, sigalg[i]));
        assert_non_null(strstr(text, pubkey[i]));

        /* Serial: positive, at most 16 bytes, the same as get_info shows. */
        serial = openssl_x509(c, "-noout -serial");
        serial[strcspn(serial, "\n")] = '\0';
        authcert_cert_get_info(c, &info);
        assert_string_equal(serial + strlen("serial="), info.serial);
        assert_true(strlen(info.serial) <= 32 && strlen(info.serial) >= 16);
        assert_true(strlen(info.serial) < 32 || strchr("01234567", info.serial[0]) != NULL);
        for (const char *p = info.serial; *p; p++)
            assert_true(isxdigit((unsigned char)*p) && !islower((unsigned char)*p));
        assert_int_equal(info.type, all_types[i]);
        assert_true(info.has_key);
        assert_ptr_equal(info.thumbprint, authcert_cert_thumbprint(c));
        assert_string_equal(info.subject, "CN=authcert server authentication");
        assert_int_equal(info.not_after - info.not_before,
                         (time_t)AUTHCERT_DEFAULT_DAYS * 86400 + 60);

        free(fp);
        free(text);
        free(serial);
        authcert_cert_free(c);
    }
}

static void test_serials_differ(void **state)
{
    authcert_cert *a = gen(AUTHCERT_KEY_ED25519, 0, NULL);
    authcert_cert *b = gen(AUTHCERT_KEY_ED25519, 0, NULL);
    authcert_cert_info ia, ib;

    (void)state;
    authcert_cert_get_info(a, &ia);
    authcert_cert_get_info(b, &ib);
    assert_string_not_equal(ia.serial, ib.serial);
    assert_string_not_equal(authcert_cert_thumbprint(a), authcert_cert_thumbprint(b));
    authcert_cert_free(a);
    authcert_cert_free(b);
}

static void test_key_type_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_TYPES; i++)
        assert_int_equal(authcert_key_type_parse(authcert_key_type_name(all_types[i])),
                         all_types[i]);
    assert_string_equal(authcert_key_type_name(AUTHCERT_KEY_P256), "p256");
    assert_string_equal(authcert_key_type_name(AUTHCERT_KEY_UNKNOWN), "unknown");
    assert_int_equal(authcert_key_type_parse("RSA3072"), AUTHCERT_KEY_RSA3072);
    assert_int_equal(authcert_key_type_parse("rsa1024"), AUTHCERT_KEY_UNKNOWN);
    assert_int_equal(authcert_key_type_parse(""), AUTHCERT_KEY_UNKNOWN);
    assert_int_equal(authcert_key_type_parse(NULL), AUTHCERT_KEY_UNKNOWN);
}

static void test_validity_days(void **state)
{
    static const int good[] = { 1, 365, 36500 };
    static const int bad[] = { -1, 36501, 1000000 };
    time_t now = time(NULL);
    (void)state;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        authcert_cert *c = gen(AUTHCERT_KEY_ED25519, good[i], NULL);
        authcert_cert_info info;

        authcert_cert_get_info(c, &info);
        assert_true(info.not_before <= now && info.not_before >= now - 120);
        assert_int_equal(info.not_after - info.not_before, (time_t)good[i] * 86400 + 60);
        authcert_cert_free(c);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        authcert_cert_params p = { .type = AUTHCERT_KEY_ED25519, .days = bad[i] };
        authcert_cert *c = (authcert_cert *)&p; /* must be reset to NULL */

        assert_status(authcert_cert_generate(&p, &c), AUTHCERT_E_USAGE);
        assert_null(c);
    }
    {
        authcert_cert_params p = { .type = (authcert_key_type)99 };
        authcert_cert *c = NULL;

        assert_status(authcert_cert_generate(&p, &c), AUTHCERT_E_USAGE);
        assert_null(c);
    }
}

static void test_subject_forms(void **state)
{
    static const struct { const char *in, *rfc2253; } good[] = {
        { "CN=x,O=y", "CN=x,O=y" },
        { "CN=x, O=y", "CN=x,O=y" },
        { "/O=y/CN=x", "CN=x,O=y" },
        { "/CN=only", "CN=only" },
        { "CN=a\\,b,O=y", "CN=a\\,b,O=y" },
        { "CN=Zoë", "CN=Zo\\C3\\AB" },
    };
    static const char *bad[] = {
        "", "/", "CN", "CN=", "CN=x,", "/CN=x/", "=x", "XX=foo", "CN=x,,O=y",
        "CN=0123456789012345678901234567890123456789012345678901234567890123456789",
    };
    (void)state;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        authcert_cert *c = gen(AUTHCERT_KEY_ED25519, 0, good[i].in);
        authcert_cert_info info;

        authcert_cert_get_info(c, &info);
        assert_string_equal(info.subject, good[i].rfc2253);
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(authcert_cert_x509(c)),
                                       X509_get_issuer_name(authcert_cert_x509(c))), 0);
        authcert_cert_free(c);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        authcert_cert_params p = { .type = AUTHCERT_KEY_ED25519, .subject = bad[i] };
        authcert_cert *c = NULL;

        assert_status(authcert_cert_generate(&p, &c), AUTHCERT_E_USAGE);
        assert_null(c);
    }
}

static void test_der_round_trip(void **state)
{
    authcert_cert *c = gen(AUTHCERT_KEY_P256, 0, NULL);
    authcert_cert *d = NULL;
    size_t len, len2;
    const uint8_t *der = authcert_cert_der(c, &len);

    (void)state;
    assert_ok(authcert_cert_from_der(der, len, &d));
    assert_string_equal(authcert_cert_thumbprint(d), authcert_cert_thumbprint(c));
    assert_false(authcert_cert_has_key(d));
    assert_null(authcert_cert_pkey(d));
    assert_non_null(authcert_cert_pubkey(d));
    assert_int_equal(authcert_cert_key_type(d), AUTHCERT_KEY_P256);
    assert_memory_equal(authcert_cert_der(d, &len2), der, len);
    assert_int_equal(len2, len);
    authcert_cert_free(d);
    authcert_cert_free(c);
}

static void test_der_refusals(void **state)
{
    authcert_cert *c = gen(AUTHCERT_KEY_P256, 0, NULL);
    authcert_cert *d = NULL;
    size_t len = 0, klen = 0;
    const uint8_t *der = authcert_cert_der(c, &len);
    uint8_t *buf = malloc(len + 1), *p384, *key = NULL;
    static const uint8_t junk[] = "not a certificate";
    int n;

    (void)state;
    memcpy(buf, der, len);
    buf[len] = 0;
    assert_status(authcert_cert_from_der(buf, len + 1, &d), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "trailing"));
    assert_null(d);
    assert_status(authcert_cert_from_der(buf, len - 1, &d), AUTHCERT_E_CORRUPT);
    assert_status(authcert_cert_from_der(buf, 20, &d), AUTHCERT_E_CORRUPT);
    assert_status(authcert_cert_from_der(buf, 0, &d), AUTHCERT_E_CORRUPT);
    assert_status(authcert_cert_from_der(junk, sizeof junk, &d), AUTHCERT_E_CORRUPT);
    /* A valid DER structure that is not a certificate: the public key alone. */
    n = i2d_PUBKEY(authcert_cert_pubkey(c), &key);
    assert_true(n > 0);
    assert_status(authcert_cert_from_der(key, (size_t)n, &d), AUTHCERT_E_CORRUPT);
    assert_null(d);

    /* A certificate, but with a key we do not support. */
    p384 = slurp_data("p384.der", &klen);
    assert_status(authcert_cert_from_der(p384, klen, &d), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "unsupported key type"));
    assert_null(d);

    OPENSSL_free(key);
    free(p384);
    free(buf);
    authcert_cert_free(c);
}

static void test_golden_vector(void **state)
{
    size_t dlen = 0, plen = 0, klen = 0, tlen = 0, len = 0;
    uint8_t *der = slurp_data("p256.der", &dlen);
    uint8_t *pem = slurp_data("p256.pem", &plen);
    uint8_t *key = slurp_data("p256.key", &klen);
    uint8_t *thumb = slurp_data("p256.sha256", &tlen);
    authcert_cert *a = NULL, *b = NULL;
    authcert_cert_info info;

    (void)state;
    thumb[strcspn((char *)thumb, "\n")] = '\0';
    assert_ok(authcert_cert_from_der(der, dlen, &a));
    assert_string_equal(authcert_cert_thumbprint(a), (char *)thumb);
    assert_ok(authcert_cert_from_pem((char *)pem, plen, (char *)key, klen, &b));
    assert_true(authcert_cert_has_key(b));
    assert_string_equal(authcert_cert_thumbprint(b), (char *)thumb);
    assert_memory_equal(authcert_cert_der(b, &len), der, dlen);
    assert_int_equal(len, dlen);
    authcert_cert_get_info(b, &info);
    assert_string_equal(info.subject, "O=authcert tests,CN=authcert golden vector");
    assert_int_equal(info.type, AUTHCERT_KEY_P256);
    assert_int_equal(info.not_after - info.not_before, (time_t)3650 * 86400);
    authcert_cert_free(a);
    authcert_cert_free(b);
    free(der);
    free(pem);
    free(key);
    free(thumb);
}

static void test_pem_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        authcert_cert *c = gen(all_types[i], 0, NULL);
        authcert_cert *d = NULL, *e = NULL;
        char *cpem = NULL, *kpem = NULL, *dpem = NULL;
        size_t clen = 0, klen = 0, dlen = 0;

        assert_ok(authcert_cert_to_pem(c, &cpem, &clen));
        assert_ok(authcert_cert_key_to_pem(c, &kpem, &klen));
        assert_int_equal(strlen(cpem), clen);
        assert_int_equal(strlen(kpem), klen);
        assert_true(strncmp(cpem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
        assert_true(strncmp(kpem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0); /* PKCS#8 */

        assert_ok(authcert_cert_from_pem(cpem, clen, kpem, klen, &d));
        assert_string_equal(authcert_cert_thumbprint(d), authcert_cert_thumbprint(c));
        assert_true(authcert_cert_has_key(d));
        assert_int_equal(EVP_PKEY_eq(authcert_cert_pkey(d), authcert_cert_pkey(c)), 1);

        /* Certificate alone; then it has no key to write. */
        assert_ok(authcert_cert_from_pem(cpem, clen, NULL, 0, &e));
        assert_false(authcert_cert_has_key(e));
        assert_status(authcert_cert_key_to_pem(e, &dpem, &dlen), AUTHCERT_E_USAGE);
        assert_null(dpem);

        OPENSSL_clear_free(cpem, clen);
        OPENSSL_clear_free(kpem, klen);
        authcert_cert_free(c);
        authcert_cert_free(d);
        authcert_cert_free(e);
    }
}

static void test_key_mismatch_refused(void **state)
{
    authcert_cert *a = gen(AUTHCERT_KEY_P256, 0, NULL);
    authcert_cert *b = gen(AUTHCERT_KEY_P256, 0, NULL);
    authcert_cert *d = NULL;
    X509 *x = authcert_cert_x509(a);
    EVP_PKEY *k = authcert_cert_pkey(b);
    size_t plen = 0, klen = 0;
    uint8_t *pem = slurp_data("p256.pem", &plen);
    uint8_t *other = slurp_data("other-p256.key", &klen);

    (void)state;
    X509_up_ref(x);
    EVP_PKEY_up_ref(k);
    assert_status(authcert_cert_adopt(x, k, &d), AUTHCERT_E_CORRUPT); /* frees both */
    assert_string_equal(authcert_detail(), "key does not match certificate");
    assert_null(d);

    assert_status(authcert_cert_from_pem((char *)pem, plen, (char *)other, klen, &d),
                  AUTHCERT_E_CORRUPT);
    assert_string_equal(authcert_detail(), "key does not match certificate");
    assert_null(d);
    assert_status(authcert_cert_from_pem((char *)pem, plen, "garbage", 7, &d), AUTHCERT_E_CORRUPT);
    assert_status(authcert_cert_from_pem("garbage", 7, NULL, 0, &d), AUTHCERT_E_CORRUPT);
    assert_null(d);
    assert_status(authcert_cert_adopt(NULL, NULL, &d), AUTHCERT_E_USAGE);

    free(pem);
    free(other);
    authcert_cert_free(a);
    authcert_cert_free(b);
}

/* Keys the openssl CLI makes that the store must not accept. */
static void test_openssl_made_refusals(void **state)
{
    char *dir = testlib_tmpdir("cert");
    char cp[4096], kp[4096], ep[4096];
    uint8_t *cpem, *kpem, *epem;
    size_t clen = 0, klen = 0, elen = 0;
    authcert_cert *d = NULL;

    (void)state;
    snprintf(cp, sizeof cp, "%s/c.pem", dir);
    snprintf(kp, sizeof kp, "%s/k.pem", dir);
    snprintf(ep, sizeof ep, "%s/e.pem", dir);
    assert_int_equal(testlib_sh("openssl req -x509 -newkey rsa:1024 -nodes -subj /CN=small "
                                "-keyout '%s' -out '%s' 2>/dev/null", kp, cp), 0);
    cpem = slurp(cp, &clen);
    kpem = slurp(kp, &klen);
    assert_status(authcert_cert_from_pem((char *)cpem, clen, (char *)kpem, klen, &d),
                  AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "unsupported key type"));
    assert_null(d);
    free(cpem);
    free(kpem);

    /* An encrypted PKCS#8 key: refused, never a passphrase prompt. */
    assert_int_equal(testlib_sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                                "-nodes -subj /CN=enc -keyout '%s' -out '%s' 2>/dev/null", kp, cp), 0);
    assert_int_equal(testlib_sh("openssl pkcs8 -topk8 -in '%s' -out '%s' -passout pass:x", kp, ep), 0);
    cpem = slurp(cp, &clen);
    kpem = slurp(kp, &klen);
    epem = slurp(ep, &elen);
    assert_non_null(strstr((char *)epem, "ENCRYPTED PRIVATE KEY"));
    assert_status(authcert_cert_from_pem((char *)cpem, clen, (char *)epem, elen, &d),
                  AUTHCERT_E_CORRUPT);
    assert_null(d);
    assert_ok(authcert_cert_from_pem((char *)cpem, clen, (char *)kpem, klen, &d));
    assert_int_equal(authcert_cert_key_type(d), AUTHCERT_KEY_P256);
    authcert_cert_free(d);
    free(cpem);
    free(kpem);
    free(epem);
    testlib_rmrf(dir);
    free(dir);
}

static void test_ref_counting(void **state)
{
    authcert_cert *c = gen(AUTHCERT_KEY_ED25519, 0, NULL);
    authcert_cert *r = authcert_cert_ref(c);
    char thumb[65];

    (void)state;
    assert_ptr_equal(r, c);
    snprintf(thumb, sizeof thumb, "%s", authcert_cert_thumbprint(c));
    authcert_cert_free(c);
    /* Still alive through the second reference (ASan would catch a use after free). */
    assert_string_equal(authcert_cert_thumbprint(r), thumb);
    authcert_cert_free(r);
    authcert_cert_free(NULL);
    assert_null(authcert_cert_ref(NULL));
}

static void test_thumbprints(void **state)
{
    char out[65];

    (void)state;
    /* SHA-256("abc"), FIPS 180-2 appendix B.1 */
    authcert_thumbprint_of((const uint8_t *)"abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(authcert_thumbprint_valid(out));
    assert_false(authcert_thumbprint_valid(NULL));
    assert_false(authcert_thumbprint_valid(""));
    assert_false(authcert_thumbprint_valid(
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    assert_false(authcert_thumbprint_valid(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
    assert_false(authcert_thumbprint_valid(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
    assert_false(authcert_thumbprint_valid(
        "ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_every_type_as_openssl_sees_it),
        cmocka_unit_test(test_serials_differ),
        cmocka_unit_test(test_key_type_names),
        cmocka_unit_test(test_validity_days),
        cmocka_unit_test(test_subject_forms),
        cmocka_unit_test(test_der_round_trip),
        cmocka_unit_test(test_der_refusals),
        cmocka_unit_test(test_golden_vector),
        cmocka_unit_test(test_pem_round_trip),
        cmocka_unit_test(test_key_mismatch_refused),
        cmocka_unit_test(test_openssl_made_refusals),
        cmocka_unit_test(test_ref_counting),
        cmocka_unit_test(test_thumbprints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
