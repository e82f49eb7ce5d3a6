/*
 * PKCS#12 (.pfx) export and import.
 *
 * Passwords: PKCS#12 tells "no password" (NULL) from "empty password" ("")
 * — they derive different keys — and tools disagree about which one an empty
 * password means. Like OpenSSL's PKCS12_parse and `openssl pkcs12`, import
 * treats NULL and "" alike and tries both, keeping whichever verifies the MAC.
 * Export refuses NULL (it would mean an unencrypted file) and writes "" as
 * the empty password.
 */
#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "authcert/pkcs12.h"
#include "internal.h"

authcert_status authcert_pkcs12_export(const authcert_cert *c, const char *password,
                                       uint8_t **der, size_t *len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PKCS12 *p12 = NULL;
    unsigned char *buf = NULL;
    int n;

    if (c == NULL || password == NULL || der == NULL || len == NULL)
        FAIL(AUTHCERT_E_USAGE, "pkcs12 export: missing argument");
    *der = NULL;
    *len = 0;
    if (!authcert_cert_has_key(c))
        FAIL(AUTHCERT_E_USAGE, "certificate %s has no private key to export",
             authcert_cert_thumbprint(c));

    /* mac_iter -1: no MAC yet, so that it can be made with SHA-256 below. */
    p12 = PKCS12_create_ex((char *)password, (char *)authcert_cert_thumbprint(c),
                           authcert_cert_pkey(c), authcert_cert_x509(c), NULL,
                           NID_aes_256_cbc, NID_aes_256_cbc, PKCS12_DEFAULT_ITER, -1, 0,
                           NULL, NULL);
    GUARD_OSSL_PTR(p12, "create PKCS#12");
    GUARD_OSSL(PKCS12_set_mac(p12, password, -1, NULL, 0, PKCS12_DEFAULT_ITER, EVP_sha256()),
               "PKCS#12 MAC");
    n = i2d_PKCS12(p12, &buf);
    if (n <= 0)
        FAIL_OSSL(AUTHCERT_E_CRYPTO, "encode PKCS#12");
    *der = buf;
    *len = (size_t)n;
    buf = NULL;
    rc = AUTHCERT_OK;
out:
    OPENSSL_free(buf);
    PKCS12_free(p12);
    return rc;
}

/*
 * The password that opens p12's MAC, in the form PKCS12_parse wants, or
 * AUTHCERT_E_AUTH. *use points at password, "" or NULL.
 */
static authcert_status check_mac(PKCS12 *p12, const char *password, const char **use)
{
    if (!PKCS12_mac_present(p12)) {
        /* Nothing to check against: decryption below is the only test. */
        *use = password;
        return AUTHCERT_OK;
    }
    if (password == NULL || *password == '\0') {
        if (PKCS12_verify_mac(p12, NULL, 0) == 1) {
            *use = NULL;
            return AUTHCERT_OK;
        }
        if (PKCS12_verify_mac(p12, "", 0) == 1) {
            *use = "";
            return AUTHCERT_OK;
        }
    } else if (PKCS12_verify_mac(p12, password, -1) == 1) {
        *use = password;
        return AUTHCERT_OK;
    }
    ERR_clear_error();
    return authcert_fail(AUTHCERT_E_AUTH, "wrong password (PKCS#12 MAC does not verify)");
}

/* Whether key belongs to cert, leaving no error behind either way. */
static bool key_matches(X509 *cert, EVP_PKEY *key)
{
    int ok;

    ERR_set_mark();
    ok = X509_check_private_key(cert, key);
    ERR_pop_to_mark();
    return ok == 1;
}

authcert_status authcert_pkcs12_import(const uint8_t *der, size_t len, const char *password,
                                       authcert_cert **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PKCS12 *p12 = NULL;
    const unsigned char *p = der;
    const char *use = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *x509 = NULL;
    STACK_OF(X509) *ca = NULL;

    if (out == NULL || (der == NULL && len > 0))
        FAIL(AUTHCERT_E_USAGE, "pkcs12 import: missing argument");
    *out = NULL;
    if (len == 0 || len > LONG_MAX)
        FAIL(AUTHCERT_E_CORRUPT, "not a PKCS#12 file (%zu bytes)", len);
    p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (p12 == NULL)
        FAIL_OSSL(AUTHCERT_E_CORRUPT, "not a PKCS#12 file, or truncated");
    if ((size_t)(p - der) != len)
        FAIL(AUTHCERT_E_CORRUPT, "%zu bytes of trailing data after the PKCS#12",
             len - (size_t)(p - der));
    GUARD(check_mac(p12, password, &use));

    /*
     * The MAC held, so a failure here is damage inside the file, or a legacy
     * cipher (RC2-40) without OpenSSL's legacy provider: the reason says which.
     */
    if (PKCS12_parse(p12, use, &pkey, &x509, &ca) != 1) {
        if (ERR_GET_REASON(ERR_peek_error()) == ERR_R_UNSUPPORTED)
            FAIL_OSSL(AUTHCERT_E_CORRUPT, "PKCS#12 uses a cipher this OpenSSL cannot run "
                      "(legacy RC2/3DES needs the legacy provider: authcert_init)");
        FAIL_OSSL(AUTHCERT_E_CORRUPT, "cannot decrypt or read the PKCS#12 contents");
    }
    if (pkey == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 contains no private key");
    if (x509 == NULL && sk_X509_num(ca) <= 0)
        FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 contains no certificate");

    /*
     * PKCS12_parse picks the certificate by localKeyId or key match; a
     * Windows PFX may carry its chain too, so look there before giving up.
     */
    if (x509 == NULL || !key_matches(x509, pkey)) {
        X509 *match = NULL;
        for (int i = 0; i < sk_X509_num(ca) && match == NULL; i++)
            if (key_matches(sk_X509_value(ca, i), pkey))
                match = sk_X509_delete(ca, i);
        if (match == NULL)
            FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 key does not match certificate");
        X509_free(x509);
        x509 = match;
    }
    rc = authcert_cert_adopt(x509, pkey, out);
    x509 = NULL;
    pkey = NULL;
out:
    sk_X509_pop_free(ca, X509_free);
    X509_free(x509);
    EVP_PKEY_free(pkey);
    PKCS12_free(p12);
    return rc;
}
