/*
 * The certificate policy: what a certificate must be to become current (at
 * an agent through update-key, in the store through -c, -i, -r). The rules
 * and their order are in include/authcert/cert_policy.h; every field is
 * read through OpenSSL's parsers, never from the DER by hand.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authcert/cert_policy.h"
#include "authcert/commitment.h"
#include "internal.h"

/* The critical extensions we understand (cert_policy.h says why these). */
static const int known_critical[] = {
    NID_basic_constraints,
    NID_key_usage,
    NID_ext_key_usage,
    NID_subject_alt_name,
};

const char *authcert_cert_refusal_name(authcert_cert_refusal r)
{
    switch (r) {
    case AUTHCERT_CERT_ACCEPTABLE: return "acceptable";
    case AUTHCERT_CERT_MALFORMED: return "malformed extensions";
    case AUTHCERT_CERT_KEY_TYPE: return "unsupported key type";
    case AUTHCERT_CERT_KEY_CHANGE: return "another key type than the trusted one";
    case AUTHCERT_CERT_CRITICAL_EXTENSION: return "unknown critical extension";
    case AUTHCERT_CERT_CA: return "CA certificate";
    case AUTHCERT_CERT_KEY_USAGE: return "key usage without digitalSignature";
    case AUTHCERT_CERT_NOT_YET_VALID: return "not yet valid";
    case AUTHCERT_CERT_EXPIRED: return "expired";
    case AUTHCERT_CERT_NOT_COMMITTED: return "not the committed successor";
    case AUTHCERT_CERT_SELF_SIGNATURE: return "not signed by its own key";
    }
    return "?";
}

static bool known_nid(int nid)
{
    for (size_t i = 0; i < sizeof known_critical / sizeof known_critical[0]; i++)
        if (known_critical[i] == nid)
            return true;
    return false;
}

/* The first critical extension outside the known list: its OID into oid. */
static bool unknown_critical(const X509 *x, char *oid, size_t size)
{
    int n = X509_get_ext_count(x);

    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_get_ext(x, i);
        const ASN1_OBJECT *obj;

        if (ext == NULL || X509_EXTENSION_get_critical(ext) <= 0)
            continue;
        obj = X509_EXTENSION_get_object(ext);
        if (known_nid(OBJ_obj2nid(obj)))
            continue;
        if (OBJ_obj2txt(oid, (int)size, obj, 1) <= 0)
            snprintf(oid, size, "?");
        return true;
    }
    return false;
}

/* An ASN1_TIME as "2026-01-01T00:00:00Z" into buf ("?" when unreadable). */
static void time_text(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1
        || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "?");
}

/* Ed25519, P-256 or RSA 2048/3072/4096, by OpenSSL's view of the key. */
static bool supported_key(const authcert_cert *c)
{
    const EVP_PKEY *pk = authcert_cert_pubkey(c);
    int bits = EVP_PKEY_get_bits(pk);

    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_ED25519:
        return authcert_cert_key_type(c) == AUTHCERT_KEY_ED25519;
    case EVP_PKEY_EC:
        return bits == 256 && authcert_cert_key_type(c) == AUTHCERT_KEY_P256;
    case EVP_PKEY_RSA:
        return bits == 2048 || bits == 3072 || bits == 4096;
    default:
        return false;
    }
}

/* c's key may follow the trusted one's: same family, and RSA no shorter. */
static bool same_family(const authcert_cert *c, const authcert_cert *trusted)
{
    const EVP_PKEY *a = authcert_cert_pubkey(c);
    const EVP_PKEY *b = authcert_cert_pubkey(trusted);

    if (EVP_PKEY_get_base_id(a) != EVP_PKEY_get_base_id(b))
        return false;
    return EVP_PKEY_get_base_id(a) != EVP_PKEY_RSA || EVP_PKEY_get_bits(a) >= EVP_PKEY_get_bits(b);
}

/*
 * Pre-rotation: c's own commitment must be readable, and when trusted
 * commits to a successor, c is that successor and signed by it. *r is
 * the rule being checked, for the caller's refusal.
 */
static authcert_status commitment_rule(const authcert_cert *c, const authcert_cert *trusted,
                                       authcert_cert_refusal *r)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *tp = authcert_cert_thumbprint(c);
    char want[AUTHCERT_SPKI_HASH_LEN + 1], got[AUTHCERT_SPKI_HASH_LEN + 1];
    char inner[256];
    bool has = false;

    /* authcert_detail() is the buffer FAIL writes: copied out first. */
    *r = AUTHCERT_CERT_MALFORMED;
    if (authcert_cert_commitment(c, &has, want) != AUTHCERT_OK) {
        snprintf(inner, sizeof inner, "%s", authcert_detail());
        FAIL(AUTHCERT_E_POLICY, "%s", inner);
    }
    /* Committing to itself would let whoever holds this key sign its own
     * successor: no protection, so not a commitment we accept. */
    if (has) {
        GUARD(authcert_spki_sha256(authcert_cert_pubkey(c), got));
        if (strcmp(got, want) == 0)
            FAIL(AUTHCERT_E_POLICY, "certificate %s: commits to its own key", tp);
    }
    if (trusted == NULL) {
        rc = AUTHCERT_OK;
        goto out;
    }
    *r = AUTHCERT_CERT_NOT_COMMITTED;
    if (authcert_cert_commitment(trusted, &has, want) != AUTHCERT_OK) {
        snprintf(inner, sizeof inner, "%s", authcert_detail());
        FAIL(AUTHCERT_E_POLICY, "certificate %s: the trusted certificate's commitment is "
             "unreadable, so no successor is accepted (%s)", tp, inner);
    }
    if (!has) {
        rc = AUTHCERT_OK;
        goto out;
    }
    GUARD(authcert_spki_sha256(authcert_cert_pubkey(c), got));
    if (strcmp(got, want) != 0)
        FAIL(AUTHCERT_E_POLICY, "certificate %s: its key (SPKI SHA-256 %.16s...) is not the "
             "successor the trusted certificate commits to (%.16s...)", tp, got, want);
    *r = AUTHCERT_CERT_SELF_SIGNATURE;
    if (X509_verify(authcert_cert_x509(c), authcert_cert_pubkey(c)) != 1)
        FAIL(AUTHCERT_E_POLICY, "certificate %s: carries the committed key but is not signed "
             "by it", tp);
    rc = AUTHCERT_OK;
out:
    ERR_clear_error();
    return rc;
}

authcert_status authcert_cert_check_policy(const authcert_cert *c, const authcert_cert_policy *p,
                                           authcert_cert_refusal *why)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert_refusal r = AUTHCERT_CERT_MALFORMED;
    const authcert_cert_policy none = {0};
    const char *tp;
    X509 *x;
    uint32_t flags, ku;
    time_t now, later, before;
    char text[128];
    int cmp;

    if (why != NULL)
        *why = AUTHCERT_CERT_MALFORMED;
    if (c == NULL)
        FAIL(AUTHCERT_E_USAGE, "certificate policy: no certificate");
    if (p == NULL)
        p = &none;
    tp = authcert_cert_thumbprint(c);
    x = authcert_cert_x509(c);

    /* Computes (once, cached by OpenSSL) what every rule below reads. */
    flags = X509_get_extension_flags(x);
    if ((flags & EXFLAG_INVALID) != 0)
        FAIL(AUTHCERT_E_POLICY, "certificate %s: extensions that cannot be parsed "
             "(malformed or repeated)", tp);

    r = AUTHCERT_CERT_KEY_TYPE;
    if (!supported_key(c))
        FAIL(AUTHCERT_E_POLICY, "certificate %s: unsupported key type (%s, %d bits): "
             "ed25519, p256, rsa2048, rsa3072 and rsa4096 are", tp,
             EVP_PKEY_get0_type_name(authcert_cert_pubkey(c)) != NULL
                 ? EVP_PKEY_get0_type_name(authcert_cert_pubkey(c)) : "?",
             EVP_PKEY_get_bits(authcert_cert_pubkey(c)));

    r = AUTHCERT_CERT_KEY_CHANGE;
    if (p->trusted != NULL && !same_family(c, p->trusted))
        FAIL(AUTHCERT_E_POLICY, "certificate %s: its key is %s and the trusted one %s: a key "
             "update keeps the key type (copy the exported agent certificate file instead)",
             tp, authcert_key_type_name(authcert_cert_key_type(c)),
             authcert_key_type_name(authcert_cert_key_type(p->trusted)));

    GUARD(commitment_rule(c, p->trusted, &r));

    r = AUTHCERT_CERT_CRITICAL_EXTENSION;
    if (unknown_critical(x, text, sizeof text))
        FAIL(AUTHCERT_E_POLICY, "certificate %s: unknown critical extension %s", tp, text);
    if ((flags & EXFLAG_CRITICAL) != 0) /* cannot happen: ours is the shorter list */
        FAIL(AUTHCERT_E_POLICY, "certificate %s: a critical extension OpenSSL does not "
             "support", tp);

    r = AUTHCERT_CERT_CA;
    ku = X509_get_key_usage(x); /* UINT32_MAX when absent */
    if ((flags & EXFLAG_CA) != 0)
        FAIL(AUTHCERT_E_POLICY, "certificate %s: a CA certificate (basic constraints cA "
             "true): make it with CA:FALSE", tp);
    if ((flags & EXFLAG_KUSAGE) != 0 && (ku & KU_KEY_CERT_SIGN) != 0)
        FAIL(AUTHCERT_E_POLICY, "certificate %s: a CA certificate (key usage keyCertSign)", tp);
    cmp = X509_check_ca(x);
    if (cmp != 0)
        FAIL(AUTHCERT_E_POLICY, "certificate %s: a CA certificate (%s)", tp,
             cmp == 3 ? "version 1 and self-signed" : "by X509_check_ca");

    r = AUTHCERT_CERT_KEY_USAGE;
    if ((flags & EXFLAG_KUSAGE) != 0 && (ku & KU_DIGITAL_SIGNATURE) == 0)
        FAIL(AUTHCERT_E_POLICY, "certificate %s: its key usage does not include "
             "digitalSignature", tp);

    if (!p->any_dates) {
        now = p->now != 0 ? p->now : time(NULL);
        later = now + AUTHCERT_CERT_LEEWAY;
        before = now - 1;
        r = AUTHCERT_CERT_NOT_YET_VALID;
        /* -1: notBefore <= now + leeway; 0: unreadable. */
        cmp = X509_cmp_time(X509_get0_notBefore(x), &later);
        time_text(X509_get0_notBefore(x), text, sizeof text);
        if (cmp != -1)
            FAIL(AUTHCERT_E_POLICY, "certificate %s: not valid before %s", tp, text);
        r = AUTHCERT_CERT_EXPIRED;
        /* 1: notAfter > now - 1, so notAfter >= now. */
        cmp = X509_cmp_time(X509_get0_notAfter(x), &before);
        time_text(X509_get0_notAfter(x), text, sizeof text);
        if (cmp != 1)
            FAIL(AUTHCERT_E_POLICY, "certificate %s: expired on %s", tp, text);
    }

    r = AUTHCERT_CERT_ACCEPTABLE;
    rc = AUTHCERT_OK;
out:
    ERR_clear_error();
    if (why != NULL && rc != AUTHCERT_E_USAGE)
        *why = r;
    return rc;
}
