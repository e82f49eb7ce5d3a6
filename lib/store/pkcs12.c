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
#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "authcert/pkcs12.h"
#include "internal.h"
#include "store/pkcs12_internal.h"

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
 * Caps before cost. Every key a PKCS#12 derives from the password costs as
 * many hash rounds as the file asks for, and the file is the attacker's: a
 * MAC with 2^31-1 iterations runs for hours. So each count is read from the
 * file's parameters (PKCS12_get0_mac, the PBEPARAM / PBES2-PBKDF2PARAM of
 * every encrypted safe and key) and checked against AUTHCERT_PKCS12_MAX_ITER,
 * and their sum against the budget, before the derivation it governs: all
 * of them before the MAC, except an encrypted key inside an encrypted safe,
 * which is seen (and checked) once that safe is open. PBES2 with
 * any other key derivation (scrypt) is refused. The MAC is derived once, and
 * the contents are unpacked here rather than by PKCS12_parse, which would
 * derive the MAC again and decrypt before anyone looked at the counts.
 */

/* n iterations charged to *left, or a one-line refusal naming what asked for them. */
static authcert_status charge(uint64_t *left, uint64_t n, const char *what)
{
    if (n > AUTHCERT_PKCS12_MAX_ITER)
        return authcert_fail(AUTHCERT_E_CORRUPT,
                             "PKCS#12 %s asks for %llu iterations (at most %u): refused "
                             "before deriving its key", what, (unsigned long long)n,
                             AUTHCERT_PKCS12_MAX_ITER);
    if (n > *left)
        return authcert_fail(AUTHCERT_E_CORRUPT,
                             "PKCS#12 key derivations ask for more than %u iterations "
                             "together: refused before deriving the %s key",
                             AUTHCERT_PKCS12_MAX_TOTAL_ITER, what);
    *left -= n;
    return AUTHCERT_OK;
}

/* An iteration count from the file: a positive INTEGER that fits. */
static authcert_status count_of(const ASN1_INTEGER *a, const char *what, uint64_t *n)
{
    if (a == NULL) {
        *n = 1; /* the ASN.1 DEFAULT of the MAC's iterations */
        return AUTHCERT_OK;
    }
    if (ASN1_INTEGER_get_uint64(n, a) != 1) {
        ERR_clear_error();
        return authcert_fail(AUTHCERT_E_CORRUPT, "PKCS#12 %s: iteration count is negative "
                             "or too large", what);
    }
    return AUTHCERT_OK;
}

/*
 * The iteration count of a password-based encryption (PKCS#12 / PKCS#5 v1
 * PBE: PBEPARAM; PBES2: PBKDF2PARAM), read without deriving anything.
 */
static authcert_status pbe_iterations(const X509_ALGOR *alg, const char *what, uint64_t *n)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const ASN1_OBJECT *oid = NULL;
    const void *pval = NULL;
    int ptype = V_ASN1_UNDEF;
    PBEPARAM *pbe = NULL;
    PBE2PARAM *pbe2 = NULL;
    PBKDF2PARAM *kdf = NULL;

    if (alg == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 %s: no encryption algorithm", what);
    X509_ALGOR_get0(&oid, &ptype, &pval, alg);
    if (ptype != V_ASN1_SEQUENCE)
        FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 %s: encryption parameters missing", what);
    if (OBJ_obj2nid(oid) == NID_pbes2) {
        pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
        if (pbe2 == NULL || pbe2->keyfunc == NULL)
            FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 %s: malformed PBES2 parameters", what);
        if (OBJ_obj2nid(pbe2->keyfunc->algorithm) != NID_id_pbkdf2)
            FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 %s: key derivation %s is not supported "
                 "(PBKDF2 only)", what, OBJ_nid2sn(OBJ_obj2nid(pbe2->keyfunc->algorithm)));
        kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter);
        if (kdf == NULL)
            FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 %s: malformed PBKDF2 parameters", what);
        GUARD(count_of(kdf->iter, what, n));
    } else {
        pbe = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);
        if (pbe == NULL || pbe->iter == NULL)
            FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 %s: unsupported or malformed encryption", what);
        GUARD(count_of(pbe->iter, what, n));
    }
    rc = AUTHCERT_OK;
out:
    if (rc != AUTHCERT_OK)
        ERR_clear_error();
    PBKDF2PARAM_free(kdf);
    PBE2PARAM_free(pbe2);
    PBEPARAM_free(pbe);
    return rc;
}

/* Nested safe contents deeper than this are not a real PFX. */
#define PKCS12_MAX_NESTING 4

/* Every encrypted key in bags (and in the safe contents inside them), charged. */
static authcert_status charge_keys(const STACK_OF(PKCS12_SAFEBAG) *bags, int depth,
                                   uint64_t *left)
{
    authcert_status rc = AUTHCERT_OK;

    if (depth > PKCS12_MAX_NESTING)
        return authcert_fail(AUTHCERT_E_CORRUPT, "PKCS#12 safe contents nested too deep");
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags) && rc == AUTHCERT_OK; i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        const X509_ALGOR *alg = NULL;
        uint64_t n = 0;

        switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_pkcs8ShroudedKeyBag:
            X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
            rc = pbe_iterations(alg, "encrypted key", &n);
            if (rc == AUTHCERT_OK)
                rc = charge(left, n, "encrypted key");
            break;
        case NID_safeContentsBag:
            rc = charge_keys(PKCS12_SAFEBAG_get0_safes(bag), depth + 1, left);
            break;
        default:
            break;
        }
    }
    return rc;
}

/*
 * What the file will cost, from what can be read before deriving anything:
 * the MAC, every encrypted safe, every encrypted key outside them. The keys
 * inside an encrypted safe are charged when it has been opened.
 */
static authcert_status charge_visible(const PKCS12 *p12, const STACK_OF(PKCS7) *safes,
                                      uint64_t *left)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    uint64_t n = 0;

    if (PKCS12_mac_present(p12)) {
        const X509_ALGOR *macalg = NULL;
        const ASN1_INTEGER *iter = NULL;
        const ASN1_OBJECT *oid = NULL;

        PKCS12_get0_mac(NULL, &macalg, NULL, &iter, p12);
        X509_ALGOR_get0(&oid, NULL, NULL, macalg);
        if (OBJ_obj2nid(oid) == NID_pbmac1)
            FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 MAC: PBMAC1 is not supported");
        GUARD(count_of(iter, "MAC", &n));
        GUARD(charge(left, n, "MAC"));
    }
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);

        if (PKCS7_type_is_encrypted(p7)) {
            if (p7->d.encrypted == NULL || p7->d.encrypted->enc_data == NULL)
                FAIL(AUTHCERT_E_CORRUPT, "PKCS#12: malformed encrypted contents");
            GUARD(pbe_iterations(p7->d.encrypted->enc_data->algorithm, "encrypted safe",
                                 &n));
            GUARD(charge(left, n, "encrypted safe"));
        } else if (PKCS7_type_is_data(p7)) {
            bags = PKCS12_unpack_p7data(p7);
            if (bags == NULL)
                FAIL_OSSL(AUTHCERT_E_CORRUPT, "PKCS#12: malformed contents");
            GUARD(charge_keys(bags, 0, left));
            sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
            bags = NULL;
        }
    }
    rc = AUTHCERT_OK;
out:
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    return rc;
}

/*
 * The password that opens p12's MAC, in the form the decryption wants, or
 * AUTHCERT_E_AUTH. *use points at password, "" or NULL. One derivation
 * (two for an empty password, which has two encodings).
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

/*
 * The MAC held (or there is none), so a decryption failure is damage inside
 * the file, or a legacy cipher (RC2-40) without OpenSSL's legacy provider:
 * the reason says which.
 */
static authcert_status decrypt_fail(void)
{
    if (ERR_GET_REASON(ERR_peek_error()) == ERR_R_UNSUPPORTED)
        return authcert_fail_ossl(AUTHCERT_E_CORRUPT, "PKCS#12 uses a cipher this OpenSSL "
                                  "cannot run (legacy RC2/3DES needs the legacy provider: "
                                  "authcert_init)");
    return authcert_fail_ossl(AUTHCERT_E_CORRUPT, "cannot decrypt or read the PKCS#12 contents");
}

/*
 * The key and certificates in bags, as PKCS12_parse takes them: the first
 * key (plain or encrypted: its count was charged before we get here), and
 * every X.509 certificate into certs.
 */
static authcert_status take_bags(const STACK_OF(PKCS12_SAFEBAG) *bags, const char *pass,
                                 int depth, EVP_PKEY **pkey, STACK_OF(X509) *certs)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509 *x = NULL;

    if (depth > PKCS12_MAX_NESTING)
        FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 safe contents nested too deep");
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);

        switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_keyBag:
            if (*pkey == NULL && (*pkey = EVP_PKCS82PKEY(PKCS12_SAFEBAG_get0_p8inf(bag))) == NULL)
                FAIL_OSSL(AUTHCERT_E_CORRUPT, "cannot read the PKCS#12 key");
            break;
        case NID_pkcs8ShroudedKeyBag:
            if (*pkey != NULL)
                break;
            if ((p8 = PKCS12_decrypt_skey(bag, pass, -1)) == NULL)
                GUARD(decrypt_fail());
            if ((*pkey = EVP_PKCS82PKEY(p8)) == NULL)
                FAIL_OSSL(AUTHCERT_E_CORRUPT, "cannot read the PKCS#12 key");
            PKCS8_PRIV_KEY_INFO_free(p8);
            p8 = NULL;
            break;
        case NID_certBag:
            if (PKCS12_SAFEBAG_get_bag_nid(bag) != NID_x509Certificate)
                break;
            if ((x = PKCS12_SAFEBAG_get1_cert(bag)) == NULL)
                FAIL_OSSL(AUTHCERT_E_CORRUPT, "cannot read a PKCS#12 certificate");
            GUARD_ALLOC(sk_X509_push(certs, x) > 0 ? certs : NULL);
            x = NULL;
            break;
        case NID_safeContentsBag:
            GUARD(take_bags(PKCS12_SAFEBAG_get0_safes(bag), pass, depth + 1, pkey, certs));
            break;
        default:
            break;
        }
    }
    rc = AUTHCERT_OK;
out:
    X509_free(x);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return rc;
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

authcert_status pkcs12_import_budget(const uint8_t *der, size_t len, const char *password,
                                     uint64_t *left, authcert_cert **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PKCS12 *p12 = NULL;
    const unsigned char *p = der;
    const char *use = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *x509 = NULL;

    if (out == NULL || left == NULL || (der == NULL && len > 0))
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
    if ((safes = PKCS12_unpack_authsafes(p12)) == NULL)
        FAIL_OSSL(AUTHCERT_E_CORRUPT, "cannot read the PKCS#12 contents");
    GUARD(charge_visible(p12, safes, left));
    GUARD(check_mac(p12, password, &use));

    GUARD_ALLOC(certs = sk_X509_new_null());
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);

        if (PKCS7_type_is_encrypted(p7)) {
            if ((bags = PKCS12_unpack_p7encdata(p7, use, -1)) == NULL)
                GUARD(decrypt_fail());
            /* Now the keys inside can be seen: their counts before their keys. */
            GUARD(charge_keys(bags, 0, left));
        } else if (PKCS7_type_is_data(p7)) {
            if ((bags = PKCS12_unpack_p7data(p7)) == NULL)
                FAIL_OSSL(AUTHCERT_E_CORRUPT, "cannot read the PKCS#12 contents");
        } else {
            continue; /* public-key privacy mode: not ours to open, as in PKCS12_parse */
        }
        GUARD(take_bags(bags, use, 0, &pkey, certs));
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
        bags = NULL;
    }
    if (pkey == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 contains no private key");
    if (sk_X509_num(certs) <= 0)
        FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 contains no certificate");

    /* The key's own certificate: a Windows PFX may carry its chain too. */
    for (int i = 0; i < sk_X509_num(certs) && x509 == NULL; i++)
        if (key_matches(sk_X509_value(certs, i), pkey))
            x509 = sk_X509_delete(certs, i);
    if (x509 == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "PKCS#12 key does not match certificate");
    rc = authcert_cert_adopt(x509, pkey, out);
    x509 = NULL;
    pkey = NULL;
out:
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_X509_pop_free(certs, X509_free);
    X509_free(x509);
    EVP_PKEY_free(pkey);
    PKCS12_free(p12);
    return rc;
}

authcert_status authcert_pkcs12_import(const uint8_t *der, size_t len, const char *password,
                                       authcert_cert **out)
{
    uint64_t left = AUTHCERT_PKCS12_MAX_TOTAL_ITER;

    return pkcs12_import_budget(der, len, password, &left, out);
}
