/* PKCS#12: our exports read by the openssl CLI, openssl's (and Windows-style) read by us. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "testlib.h"
#include "testlib_pfx.h"
#include "certdata.h"
#include "store/pkcs12_internal.h"

#define VECTOR_PASSWORD "authcert-test" /* tests/data/mkdata.sh */

static const authcert_key_type all_types[] = {
    AUTHCERT_KEY_ED25519, AUTHCERT_KEY_P256, AUTHCERT_KEY_RSA2048,
    AUTHCERT_KEY_RSA3072, AUTHCERT_KEY_RSA4096,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

/* One certificate of each type, made once: RSA-4096 key generation is slow. */
static authcert_cert *certs[N_TYPES];

static int setup(void **state)
{
    (void)state;
    if (authcert_init() != AUTHCERT_OK)
        return -1;
    for (size_t i = 0; i < N_TYPES; i++) {
        authcert_cert_params p = { .type = all_types[i] };
        if (authcert_cert_generate(&p, &certs[i]) != AUTHCERT_OK)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_TYPES; i++)
        authcert_cert_free(certs[i]);
    authcert_cleanup();
    return 0;
}

static authcert_cert *p256(void)
{
    return certs[1];
}

static void assert_same_cert(const authcert_cert *a, const authcert_cert *b)
{
    assert_string_equal(authcert_cert_thumbprint(a), authcert_cert_thumbprint(b));
    assert_true(authcert_cert_has_key(a) && authcert_cert_has_key(b));
    assert_int_equal(EVP_PKEY_eq(authcert_cert_pkey(a), authcert_cert_pkey(b)), 1);
}

static void test_round_trip_every_type(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_TYPES; i++) {
        uint8_t *der = NULL;
        size_t len = 0;
        authcert_cert *back = NULL;

        assert_ok(authcert_pkcs12_export(certs[i], TESTLIB_PASSWORD, &der, &len));
        assert_ok(authcert_pkcs12_import(der, len, TESTLIB_PASSWORD, &back));
        assert_same_cert(back, certs[i]);
        assert_int_equal(authcert_cert_key_type(back), all_types[i]);
        authcert_cert_free(back);
        OPENSSL_free(der);
    }
}

/* The openssl CLI opens our export with the password and sees AES-256 and SHA-256. */
static void test_openssl_reads_export(void **state)
{
    char *dir = testlib_tmpdir("p12");
    char pfx[4096], info[4096], certp[4096], derp[4096];
    uint8_t *der = NULL, *text, *cder;
    size_t len = 0, tlen = 0, clen = 0, olen = 0;
    const uint8_t *ours = authcert_cert_der(p256(), &olen);
    const char *p;
    int n = 0;

    (void)state;
    snprintf(pfx, sizeof pfx, "%s/x.pfx", dir);
    snprintf(info, sizeof info, "%s/info.txt", dir);
    snprintf(certp, sizeof certp, "%s/cert.pem", dir);
    snprintf(derp, sizeof derp, "%s/cert.der", dir);
    assert_ok(authcert_pkcs12_export(p256(), TESTLIB_PASSWORD, &der, &len));
    spill(pfx, der, len);

    assert_int_equal(testlib_sh("openssl pkcs12 -in '%s' -passin 'pass:%s' -nokeys -out '%s'",
                                pfx, TESTLIB_PASSWORD, certp), 0);
    assert_int_equal(testlib_sh("openssl x509 -in '%s' -outform DER -out '%s'", certp, derp), 0);
    cder = slurp(derp, &clen);
    assert_int_equal(clen, olen);
    assert_memory_equal(cder, ours, olen);
    text = slurp(certp, &tlen);
    assert_non_null(strstr((char *)text, authcert_cert_thumbprint(p256()))); /* friendlyName */
    free(text);

    assert_int_equal(testlib_sh("openssl pkcs12 -in '%s' -passin 'pass:%s' -info -noout 2> '%s'",
                                pfx, TESTLIB_PASSWORD, info), 0);
    text = slurp(info, &tlen);
    assert_non_null(strstr((char *)text, "MAC: sha256, Iteration 2048"));
    for (p = (char *)text; (p = strstr(p, "PBES2, PBKDF2, AES-256-CBC, Iteration 2048")) != NULL; p++)
        n++;
    assert_int_equal(n, 2); /* the certificate bag and the shrouded key bag */
    assert_non_null(strstr((char *)text, "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC"));
    free(text);

    assert_int_not_equal(testlib_sh("openssl pkcs12 -in '%s' -passin pass:wrong -nokeys "
                                    "-out /dev/null 2>/dev/null", pfx), 0);
    free(cder);
    OPENSSL_free(der);
    testlib_rmrf(dir);
    free(dir);
}

static void test_import_openssl_vectors(void **state)
{
    size_t len = 0, dlen = 0, rlen = 0, blen = 0;
    uint8_t *pfx = slurp_data("p256.pfx", &len);
    uint8_t *der = slurp_data("p256.der", &dlen);
    uint8_t *legacy = slurp_data("rsa2048-legacy.pfx", &rlen);
    uint8_t *rder = slurp_data("rsa2048.der", &blen);
    authcert_cert *c = NULL;
    const uint8_t *got;
    size_t glen = 0;

    (void)state;
    assert_ok(authcert_pkcs12_import(pfx, len, VECTOR_PASSWORD, &c));
    got = authcert_cert_der(c, &glen);
    assert_int_equal(glen, dlen);
    assert_memory_equal(got, der, dlen);
    authcert_cert_free(c);
    c = NULL;

    /* RC2-40 + 3DES + SHA-1 MAC, and a chain certificate that is not the key's. */
    assert_ok(authcert_pkcs12_import(legacy, rlen, VECTOR_PASSWORD, &c));
    got = authcert_cert_der(c, &glen);
    assert_int_equal(glen, blen);
    assert_memory_equal(got, rder, blen);
    assert_int_equal(authcert_cert_key_type(c), AUTHCERT_KEY_RSA2048);
    authcert_cert_free(c);
    c = NULL;

    assert_status(authcert_pkcs12_import(legacy, rlen, "wrong", &c), AUTHCERT_E_AUTH);
    assert_null(c);
    free(pfx);
    free(der);
    free(legacy);
    free(rder);
}

/* `openssl pkcs12 -export -legacy` of a key and certificate we made. */
static void test_import_legacy_made_now(void **state)
{
    char *dir = testlib_tmpdir("p12");
    char kp[4096], cp[4096], pfx[4096];
    char *kpem = NULL, *cpem = NULL;
    size_t klen = 0, clen = 0, len = 0;
    uint8_t *der;
    authcert_cert *c = NULL;

    (void)state;
    snprintf(kp, sizeof kp, "%s/k.pem", dir);
    snprintf(cp, sizeof cp, "%s/c.pem", dir);
    snprintf(pfx, sizeof pfx, "%s/l.pfx", dir);
    for (size_t i = 0; i < 3; i++) {
        assert_ok(authcert_cert_key_to_pem(certs[i + 1], &kpem, &klen));
        assert_ok(authcert_cert_to_pem(certs[i + 1], &cpem, &clen));
        spill(kp, kpem, klen);
        spill(cp, cpem, clen);
        assert_int_equal(testlib_sh("openssl pkcs12 -export -legacy -in '%s' -inkey '%s' "
                                    "-passout 'pass:%s' -out '%s'", cp, kp, TESTLIB_PASSWORD, pfx), 0);
        der = slurp(pfx, &len);
        assert_ok(authcert_pkcs12_import(der, len, TESTLIB_PASSWORD, &c));
        assert_same_cert(c, certs[i + 1]);
        authcert_cert_free(c);
        c = NULL;
        free(der);
        OPENSSL_clear_free(kpem, klen);
        OPENSSL_free(cpem);
    }
    testlib_rmrf(dir);
    free(dir);
}

static void test_wrong_password(void **state)
{
    uint8_t *der = NULL;
    size_t len = 0;
    authcert_cert *c = NULL;

    (void)state;
    assert_ok(authcert_pkcs12_export(p256(), TESTLIB_PASSWORD, &der, &len));
    assert_status(authcert_pkcs12_import(der, len, "correct horse battery staple 43", &c),
                  AUTHCERT_E_AUTH);
    assert_string_equal(authcert_detail(), "wrong password (PKCS#12 MAC does not verify)");
    assert_null(c);
    assert_status(authcert_pkcs12_import(der, len, "", &c), AUTHCERT_E_AUTH);
    assert_status(authcert_pkcs12_import(der, len, NULL, &c), AUTHCERT_E_AUTH);
    assert_null(c);
    OPENSSL_free(der);
}

/* NULL and "" are the same to import (see lib/store/pkcs12.c); export needs a string. */
static void test_empty_password(void **state)
{
    uint8_t *der = NULL, *vec;
    size_t len = 0, vlen = 0;
    authcert_cert *c = NULL;

    (void)state;
    assert_status(authcert_pkcs12_export(p256(), NULL, &der, &len), AUTHCERT_E_USAGE);
    assert_null(der);
    assert_ok(authcert_pkcs12_export(p256(), "", &der, &len));
    assert_ok(authcert_pkcs12_import(der, len, NULL, &c));
    assert_same_cert(c, p256());
    authcert_cert_free(c);
    c = NULL;
    assert_ok(authcert_pkcs12_import(der, len, "", &c));
    authcert_cert_free(c);
    c = NULL;
    assert_status(authcert_pkcs12_import(der, len, "x", &c), AUTHCERT_E_AUTH);
    OPENSSL_free(der);

    vec = slurp_data("p256-nopass.pfx", &vlen); /* openssl -passout pass: */
    assert_ok(authcert_pkcs12_import(vec, vlen, NULL, &c));
    authcert_cert_free(c);
    c = NULL;
    assert_ok(authcert_pkcs12_import(vec, vlen, "", &c));
    authcert_cert_free(c);
    c = NULL;
    assert_status(authcert_pkcs12_import(vec, vlen, VECTOR_PASSWORD, &c), AUTHCERT_E_AUTH);
    free(vec);
}

static void test_damaged_input(void **state)
{
    uint8_t *der = NULL, *longer;
    size_t len = 0;
    authcert_cert *c = NULL;
    static const uint8_t junk[] = "PK\x03\x04 not a pfx";

    (void)state;
    assert_ok(authcert_pkcs12_export(p256(), TESTLIB_PASSWORD, &der, &len));
    for (size_t cut = 1; cut < len; cut += (cut < 64 ? 1 : 97)) {
        assert_status(authcert_pkcs12_import(der, len - cut, TESTLIB_PASSWORD, &c),
                      AUTHCERT_E_CORRUPT);
        assert_null(c);
    }
    longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    assert_status(authcert_pkcs12_import(longer, len + 1, TESTLIB_PASSWORD, &c), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "trailing"));
    assert_status(authcert_pkcs12_import(junk, sizeof junk, TESTLIB_PASSWORD, &c), AUTHCERT_E_CORRUPT);
    assert_status(authcert_pkcs12_import(der, 0, TESTLIB_PASSWORD, &c), AUTHCERT_E_CORRUPT);
    assert_null(c);
    /* A certificate is DER too, but not a PKCS#12. */
    {
        size_t clen = 0;
        const uint8_t *cder = authcert_cert_der(p256(), &clen);
        assert_status(authcert_pkcs12_import(cder, clen, TESTLIB_PASSWORD, &c), AUTHCERT_E_CORRUPT);
    }
    assert_null(c);
    free(longer);
    OPENSSL_free(der);
}

static void test_no_key(void **state)
{
    size_t len = 0, clen = 0;
    uint8_t *pfx = slurp_data("nokey.pfx", &len);
    authcert_cert *c = NULL, *pub = NULL;
    const uint8_t *cder = authcert_cert_der(p256(), &clen);
    uint8_t *der = NULL;
    size_t dlen = 0;

    (void)state;
    assert_status(authcert_pkcs12_import(pfx, len, VECTOR_PASSWORD, &c), AUTHCERT_E_CORRUPT);
    assert_string_equal(authcert_detail(), "PKCS#12 contains no private key");
    assert_null(c);

    assert_ok(authcert_cert_from_der(cder, clen, &pub));
    assert_status(authcert_pkcs12_export(pub, TESTLIB_PASSWORD, &der, &dlen), AUTHCERT_E_USAGE);
    assert_null(der);
    authcert_cert_free(pub);
    free(pfx);
}

/*
 * A PFX holding key and certificates as given, built by hand: the openssl
 * CLI and PKCS12_create refuse a key that matches no certificate.
 */
static uint8_t *build_pfx(EVP_PKEY *key, X509 **xs, int nx, size_t *len)
{
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    PKCS12 *p12;
    unsigned char *der = NULL;
    int n;

    for (int i = 0; i < nx; i++)
        assert_non_null(PKCS12_add_cert(&bags, xs[i]));
    if (key != NULL)
        assert_non_null(PKCS12_add_key(&bags, key, 0, PKCS12_DEFAULT_ITER, NID_aes_256_cbc,
                                       TESTLIB_PASSWORD));
    assert_non_null(PKCS12_add_safe(&safes, bags, -1, 0, NULL));
    assert_non_null(p12 = PKCS12_add_safes(safes, 0));
    assert_int_equal(PKCS12_set_mac(p12, TESTLIB_PASSWORD, -1, NULL, 0, PKCS12_DEFAULT_ITER,
                                    EVP_sha256()), 1);
    n = i2d_PKCS12(p12, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    return der;
}

static void test_key_cert_mismatch(void **state)
{
    X509 *other = authcert_cert_x509(certs[0]);
    X509 *mine = authcert_cert_x509(p256());
    X509 *both[2] = { other, mine };
    EVP_PKEY *key = authcert_cert_pkey(p256());
    authcert_cert *c = NULL;
    uint8_t *der;
    size_t len = 0;

    (void)state;
    der = build_pfx(key, &other, 1, &len);
    assert_status(authcert_pkcs12_import(der, len, TESTLIB_PASSWORD, &c), AUTHCERT_E_CORRUPT);
    assert_string_equal(authcert_detail(), "PKCS#12 key does not match certificate");
    assert_null(c);
    OPENSSL_free(der);

    /* No localKeyID anywhere, the chain certificate first: the key's own is found. */
    der = build_pfx(key, both, 2, &len);
    assert_ok(authcert_pkcs12_import(der, len, TESTLIB_PASSWORD, &c));
    assert_same_cert(c, p256());
    authcert_cert_free(c);
    c = NULL;
    OPENSSL_free(der);

    der = build_pfx(key, NULL, 0, &len);
    assert_status(authcert_pkcs12_import(der, len, TESTLIB_PASSWORD, &c), AUTHCERT_E_CORRUPT);
    assert_string_equal(authcert_detail(), "PKCS#12 contains no certificate");
    assert_null(c);
    OPENSSL_free(der);
}

static void test_unsupported_key_types(void **state)
{
    static const char *names[] = { "rsa1024.pfx", "p384.pfx" };
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        size_t len = 0;
        uint8_t *pfx = slurp_data(names[i], &len);
        authcert_cert *c = NULL;

        assert_status(authcert_pkcs12_import(pfx, len, VECTOR_PASSWORD, &c), AUTHCERT_E_CORRUPT);
        assert_non_null(strstr(authcert_detail(), "unsupported key type"));
        assert_null(c);
        free(pfx);
    }
}

/* ---- caps before cost (issue 14) --------------------------------------- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* der with field's count set to count must be refused, fast, naming the count. */
static void expect_capped(const uint8_t *der, size_t len, const char *password,
                          testlib_pfx_field field, int64_t count, const char *what)
{
    size_t plen = 0;
    uint8_t *p = testlib_pfx_set_iter(der, len, field, count, password, &plen);
    authcert_cert *c = NULL;
    char want[96];
    double t0;

    assert_non_null(p);
    t0 = now_s();
    assert_status(authcert_pkcs12_import(p, plen, password, &c), AUTHCERT_E_CORRUPT);
    /* Each of these counts would take from seconds to hours to derive. */
    assert_true(now_s() - t0 < 1.0);
    assert_null(c);
    snprintf(want, sizeof want, "PKCS#12 %s asks for %lld iterations", what, (long long)count);
    if (strstr(authcert_detail(), want) == NULL)
        fail_msg("detail \"%s\" does not say \"%s\"", authcert_detail(), want);
    OPENSSL_free(p);
}

/*
 * A 2^31-1 count in the MAC (patched in place, as an attacker would: openssl
 * would take hours to write it), in the encrypted safe and in the encrypted
 * key, of a modern, a legacy (RC2/3DES) and our own PFX: refused in well
 * under a second. The cap's first step past it too.
 */
static void test_iteration_caps(void **state)
{
    struct { const char *name, *password; } vec[] = {
        {"p256.pfx", VECTOR_PASSWORD}, {"rsa2048-legacy.pfx", VECTOR_PASSWORD}, {NULL, NULL}};
    static const struct { testlib_pfx_field field; const char *what; } fields[] = {
        {TESTLIB_PFX_MAC, "MAC"}, {TESTLIB_PFX_SAFE, "encrypted safe"},
        {TESTLIB_PFX_KEY, "encrypted key"}};
    uint8_t *ours = NULL;
    size_t olen = 0;

    (void)state;
    assert_ok(authcert_pkcs12_export(p256(), TESTLIB_PASSWORD, &ours, &olen));
    for (size_t v = 0; v < 3; v++) {
        size_t len = 0;
        uint8_t *der = vec[v].name != NULL ? slurp_data(vec[v].name, &len) : ours;
        const char *pw = vec[v].name != NULL ? vec[v].password : TESTLIB_PASSWORD;

        if (vec[v].name == NULL)
            len = olen;
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            expect_capped(der, len, pw, fields[f].field, INT32_MAX, fields[f].what);
            expect_capped(der, len, pw, fields[f].field, AUTHCERT_PKCS12_MAX_ITER + 1LL,
                          fields[f].what);
        }
        if (der != ours)
            free(der);
    }
    OPENSSL_free(ours);
}

/* A count that is not a positive number that fits is damage, not a cost. */
static void test_iteration_count_malformed(void **state)
{
    uint8_t *der = NULL, *p;
    size_t len = 0, plen = 0;
    authcert_cert *c = NULL;

    (void)state;
    assert_ok(authcert_pkcs12_export(p256(), TESTLIB_PASSWORD, &der, &len));
    assert_non_null(p = testlib_pfx_set_iter(der, len, TESTLIB_PFX_MAC, -1, TESTLIB_PASSWORD,
                                             &plen));
    assert_status(authcert_pkcs12_import(p, plen, TESTLIB_PASSWORD, &c), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "negative or too large"));
    OPENSSL_free(p);
    assert_non_null(p = testlib_pfx_set_iter(der, len, TESTLIB_PFX_KEY, -5, TESTLIB_PASSWORD,
                                             &plen));
    assert_status(authcert_pkcs12_import(p, plen, TESTLIB_PASSWORD, &c), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "negative or too large"));
    assert_null(c);
    OPENSSL_free(p);
    OPENSSL_free(der);
}

/*
 * The budget: our export asks for MAC + encrypted safe + encrypted key, 2048
 * each. Exactly that much opens it and spends it all; one iteration less is
 * refused before anything is derived.
 */
static void test_iteration_budget(void **state)
{
    uint8_t *der = NULL;
    size_t len = 0;
    uint64_t left = 3 * PKCS12_DEFAULT_ITER;
    authcert_cert *c = NULL;

    (void)state;
    assert_ok(authcert_pkcs12_export(p256(), TESTLIB_PASSWORD, &der, &len));
    assert_ok(pkcs12_import_budget(der, len, TESTLIB_PASSWORD, &left, &c));
    assert_int_equal(left, 0);
    assert_same_cert(c, p256());
    authcert_cert_free(c);
    c = NULL;
    left = 3 * PKCS12_DEFAULT_ITER - 1;
    assert_status(pkcs12_import_budget(der, len, TESTLIB_PASSWORD, &left, &c),
                  AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "together"));
    assert_null(c);
    OPENSSL_free(der);
}

/* Higher counts than the usual 2048 still open: a control for the caps. */
static void test_high_counts_below_cap_import(void **state)
{
    PKCS12 *p12;
    unsigned char *der = NULL;
    int n;
    authcert_cert *c = NULL;

    (void)state;
    p12 = PKCS12_create_ex(TESTLIB_PASSWORD, NULL, authcert_cert_pkey(p256()),
                           authcert_cert_x509(p256()), NULL, NID_aes_256_cbc, NID_aes_256_cbc,
                           100000, 100000, 0, NULL, NULL);
    assert_non_null(p12);
    n = i2d_PKCS12(p12, &der);
    assert_true(n > 0);
    assert_ok(authcert_pkcs12_import(der, (size_t)n, TESTLIB_PASSWORD, &c));
    assert_same_cert(c, p256());
    authcert_cert_free(c);
    OPENSSL_free(der);
    PKCS12_free(p12);
}

/*
 * An encrypted key inside an encrypted safe can only be seen once the safe
 * is open: its count is still checked before the key is derived.
 */
static void test_key_inside_encrypted_safe_capped(void **state)
{
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    PKCS12_SAFEBAG *bag;
    X509_ALGOR *alg = NULL;
    PKCS12 *p12;
    unsigned char *der = NULL;
    int n;
    authcert_cert *c = NULL;
    double t0;

    (void)state;
    assert_non_null(PKCS12_add_cert(&bags, authcert_cert_x509(p256())));
    assert_non_null(bag = PKCS12_add_key(&bags, authcert_cert_pkey(p256()), 0,
                                         PKCS12_DEFAULT_ITER, NID_aes_256_cbc,
                                         TESTLIB_PASSWORD));
    X509_SIG_getm((X509_SIG *)PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
    assert_int_equal(testlib_pbe_set_iter(alg, INT32_MAX), 1);
    /* The safe itself encrypted at the usual count. */
    assert_non_null(PKCS12_add_safe(&safes, bags, NID_aes_256_cbc, PKCS12_DEFAULT_ITER,
                                    TESTLIB_PASSWORD));
    assert_non_null(p12 = PKCS12_add_safes(safes, 0));
    assert_int_equal(PKCS12_set_mac(p12, TESTLIB_PASSWORD, -1, NULL, 0, PKCS12_DEFAULT_ITER,
                                    EVP_sha256()), 1);
    n = i2d_PKCS12(p12, &der);
    assert_true(n > 0);
    t0 = now_s();
    assert_status(authcert_pkcs12_import(der, (size_t)n, TESTLIB_PASSWORD, &c),
                  AUTHCERT_E_CORRUPT);
    assert_true(now_s() - t0 < 1.0);
    assert_non_null(strstr(authcert_detail(), "encrypted key asks for 2147483647"));
    assert_null(c);
    OPENSSL_free(der);
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
}

/* PBES2 with scrypt: a cost in memory and time no count cap describes. */
static void test_scrypt_key_refused(void **state)
{
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(authcert_cert_pkey(p256()));
    X509_ALGOR *pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, 1024, 8, 1);
    X509_SIG *sig;
    PKCS12_SAFEBAG *bag;
    PKCS12 *p12;
    unsigned char *der = NULL;
    int n;
    authcert_cert *c = NULL;

    (void)state;
    assert_non_null(p8);
    assert_non_null(pbe);
    assert_non_null(sig = PKCS8_set0_pbe(TESTLIB_PASSWORD, -1, p8, pbe));
    assert_non_null(bag = PKCS12_SAFEBAG_create0_pkcs8(sig));
    assert_non_null(bags = sk_PKCS12_SAFEBAG_new_null());
    assert_true(sk_PKCS12_SAFEBAG_push(bags, bag) > 0);
    assert_non_null(PKCS12_add_cert(&bags, authcert_cert_x509(p256())));
    assert_non_null(PKCS12_add_safe(&safes, bags, -1, 0, NULL));
    assert_non_null(p12 = PKCS12_add_safes(safes, 0));
    assert_int_equal(PKCS12_set_mac(p12, TESTLIB_PASSWORD, -1, NULL, 0, PKCS12_DEFAULT_ITER,
                                    EVP_sha256()), 1);
    n = i2d_PKCS12(p12, &der);
    assert_true(n > 0);
    assert_status(authcert_pkcs12_import(der, (size_t)n, TESTLIB_PASSWORD, &c),
                  AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "key derivation"));
    assert_null(c);
    OPENSSL_free(der);
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    PKCS8_PRIV_KEY_INFO_free(p8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_openssl_reads_export),
        cmocka_unit_test(test_import_openssl_vectors),
        cmocka_unit_test(test_import_legacy_made_now),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_empty_password),
        cmocka_unit_test(test_damaged_input),
        cmocka_unit_test(test_no_key),
        cmocka_unit_test(test_key_cert_mismatch),
        cmocka_unit_test(test_unsupported_key_types),
        cmocka_unit_test(test_iteration_caps),
        cmocka_unit_test(test_iteration_count_malformed),
        cmocka_unit_test(test_iteration_budget),
        cmocka_unit_test(test_high_counts_below_cap_import),
        cmocka_unit_test(test_key_inside_encrypted_safe_capped),
        cmocka_unit_test(test_scrypt_key_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
