/*
 * Pre-rotation's commitment (authcert/commitment.h): the extension that
 * names a certificate's successor key, written and read with OpenSSL's
 * ASN.1 encoders, never by hand.
 */
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "authcert/commitment.h"
#include "internal.h"

#define HASH_BYTES 32

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

authcert_status authcert_spki_sha256(const EVP_PKEY *key, char out[AUTHCERT_SPKI_HASH_LEN + 1])
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    unsigned char *der = NULL, md[HASH_BYTES];
    int len;

    out[0] = '\0';
    if (key == NULL)
        FAIL(AUTHCERT_E_USAGE, "SPKI hash: no key");
    len = i2d_PUBKEY(key, &der);
    if (len <= 0)
        FAIL_OSSL(AUTHCERT_E_CRYPTO, "SPKI hash: encode the public key");
    GUARD_OSSL(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL), "SPKI hash: SHA-256");
    to_hex(md, sizeof md, out);
    rc = AUTHCERT_OK;
out:
    OPENSSL_free(der);
    return rc;
}

/* The extension's OID; a fresh object each time (OBJ_txt2obj allocates). */
static authcert_status commitment_oid(ASN1_OBJECT **out)
{
    *out = OBJ_txt2obj(AUTHCERT_COMMITMENT_OID, 1);
    if (*out == NULL)
        return authcert_fail(AUTHCERT_E_CRYPTO, "commitment: OID");
    return AUTHCERT_OK;
}

authcert_status authcert_commitment_add(X509 *x, const char *spki_hash)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    unsigned char raw[HASH_BYTES], *der = NULL;
    ASN1_OCTET_STRING *inner = NULL, *value = NULL;
    ASN1_OBJECT *oid = NULL;
    X509_EXTENSION *ext = NULL;
    int len;

    if (x == NULL || spki_hash == NULL || strlen(spki_hash) != AUTHCERT_SPKI_HASH_LEN)
        FAIL(AUTHCERT_E_USAGE, "commitment: a SHA-256 in 64 lowercase hex characters is needed");
    for (size_t i = 0; i < HASH_BYTES; i++) {
        int hi = hex_value(spki_hash[2 * i]), lo = hex_value(spki_hash[2 * i + 1]);
        if (hi < 0 || lo < 0)
            FAIL(AUTHCERT_E_USAGE, "commitment: not lowercase hex");
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    /* extnValue is an OCTET STRING holding the DER of the value, itself
     * an OCTET STRING of the 32 bytes. */
    GUARD_OSSL_PTR(inner = ASN1_OCTET_STRING_new(), "commitment: value");
    GUARD_OSSL(ASN1_OCTET_STRING_set(inner, raw, sizeof raw), "commitment: value");
    len = i2d_ASN1_OCTET_STRING(inner, &der);
    if (len <= 0)
        FAIL_OSSL(AUTHCERT_E_CRYPTO, "commitment: encode");
    GUARD_OSSL_PTR(value = ASN1_OCTET_STRING_new(), "commitment: extnValue");
    GUARD_OSSL(ASN1_OCTET_STRING_set(value, der, len), "commitment: extnValue");
    GUARD(commitment_oid(&oid));
    GUARD_OSSL_PTR(ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, value), "commitment: extension");
    GUARD_OSSL(X509_add_ext(x, ext, -1), "commitment: add extension");
    rc = AUTHCERT_OK;
out:
    X509_EXTENSION_free(ext);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(value);
    ASN1_OCTET_STRING_free(inner);
    OPENSSL_free(der);
    return rc;
}

authcert_status authcert_cert_commitment(const authcert_cert *c, bool *has,
                                         char out[AUTHCERT_SPKI_HASH_LEN + 1])
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const X509 *x = authcert_cert_x509(c);
    ASN1_OBJECT *oid = NULL;
    ASN1_OCTET_STRING *inner = NULL;
    const ASN1_OCTET_STRING *value;
    const unsigned char *p;
    X509_EXTENSION *ext;
    int at;

    *has = false;
    out[0] = '\0';
    GUARD(commitment_oid(&oid));
    at = X509_get_ext_by_OBJ(x, oid, -1);
    if (at < 0) {
        rc = AUTHCERT_OK;
        goto out;
    }
    if (X509_get_ext_by_OBJ(x, oid, at) >= 0)
        FAIL(AUTHCERT_E_CORRUPT, "certificate %s: two pre-rotation commitments",
             authcert_cert_thumbprint(c));
    ext = X509_get_ext(x, at);
    if (X509_EXTENSION_get_critical(ext) > 0)
        FAIL(AUTHCERT_E_CORRUPT, "certificate %s: a critical pre-rotation commitment "
             "(it is made non-critical)", authcert_cert_thumbprint(c));
    value = X509_EXTENSION_get_data(ext);
    p = ASN1_STRING_get0_data(value);
    /* Exactly the DER docs/protocol.md gives, 04 20 and 32 bytes: a BER
     * form (indefinite or long lengths) other readers could read otherwise. */
    if (ASN1_STRING_length(value) != 2 + HASH_BYTES || p[0] != 0x04 || p[1] != HASH_BYTES)
        FAIL(AUTHCERT_E_CORRUPT, "certificate %s: a malformed pre-rotation commitment",
             authcert_cert_thumbprint(c));
    inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(value));
    if (inner == NULL || p != ASN1_STRING_get0_data(value) + ASN1_STRING_length(value)
        || ASN1_STRING_length(inner) != HASH_BYTES)
        FAIL(AUTHCERT_E_CORRUPT, "certificate %s: a malformed pre-rotation commitment",
             authcert_cert_thumbprint(c));
    to_hex(ASN1_STRING_get0_data(inner), HASH_BYTES, out);
    *has = true;
    rc = AUTHCERT_OK;
out:
    ERR_clear_error();
    ASN1_OCTET_STRING_free(inner);
    ASN1_OBJECT_free(oid);
    return rc;
}
