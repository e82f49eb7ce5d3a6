/*
 * Signed commands: JWS compact serialization with the profile in jws.h.
 *
 * The verifier trusts nothing in the token to choose how to verify it: the
 * alg comes from the trusted certificate's key, the key from the certificate
 * only (jwk, x5c, jku and kid are ignored), and the header is parsed only to
 * be compared with what that certificate dictates. The payload is parsed
 * only after the signature verified.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "authcert/base64url.h"
#include "authcert/jws.h"
#include "internal.h"
#include "jws/sign_text.h"
#include "jws/verifier.h"

#define X5T_LEN 43          /* base64url of 32 bytes */
#define ES256_COORD 32      /* bytes of R and of S */
#define SIG_MAX 1024        /* RSA-4096 signs 512 bytes; room to spare */
#define TTL_MAX (31 * 86400)

const char *authcert_jws_alg_for(authcert_key_type t)
{
    switch (t) {
    case AUTHCERT_KEY_ED25519:
        return "EdDSA";
    case AUTHCERT_KEY_P256:
        return "ES256";
    case AUTHCERT_KEY_RSA2048:
    case AUTHCERT_KEY_RSA3072:
    case AUTHCERT_KEY_RSA4096:
        return "PS256";
    default:
        return NULL;
    }
}

/* base64url(SHA-256(DER)) from the thumbprint the certificate already has. */
static authcert_status x5t_of(const authcert_cert *c, char out[X5T_LEN + 1])
{
    uint8_t bin[32];
    size_t n = 0;

    if (OPENSSL_hexstr2buf_ex(bin, sizeof bin, &n, authcert_cert_thumbprint(c), '\0') != 1 ||
        n != sizeof bin)
        return authcert_fail_ossl(AUTHCERT_E_INTERNAL, "jws: certificate thumbprint");
    authcert_b64url_encode_to(bin, sizeof bin, out);
    return AUTHCERT_OK;
}

/* A digest-sign or digest-verify context for the key's one JWS alg. */
static authcert_status init_ctx(EVP_MD_CTX *ctx, EVP_PKEY *pkey, authcert_key_type t,
                                bool sign)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_PKEY_CTX *pctx = NULL;
    /* Ed25519 hashes internally: EVP_DigestSign with no digest. */
    const char *md = t == AUTHCERT_KEY_ED25519 ? NULL : "SHA256";

    if (sign)
        GUARD_OSSL(EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, pkey, NULL),
                   "jws: sign init");
    else
        GUARD_OSSL(EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, pkey, NULL),
                   "jws: verify init");
    if (t == AUTHCERT_KEY_RSA2048 || t == AUTHCERT_KEY_RSA3072 || t == AUTHCERT_KEY_RSA4096) {
        /* RFC 7518 3.5: MGF1 with the same SHA-256, salt as long as the hash. */
        GUARD_OSSL(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 ? 1 : 0,
                   "jws: PSS padding");
        GUARD_OSSL(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0 ? 1 : 0,
                   "jws: PSS salt length");
    }
    rc = AUTHCERT_OK;
out:
    return rc;
}

/* JWS ES256 wants R||S, 32 bytes each; OpenSSL speaks DER. */
static authcert_status es256_der_to_raw(const uint8_t *der, size_t len, uint8_t raw[64])
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const unsigned char *p = der;
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r = NULL, *s = NULL;

    GUARD_OSSL_PTR(sig = d2i_ECDSA_SIG(NULL, &p, (long)len), "jws: ECDSA signature");
    ECDSA_SIG_get0(sig, &r, &s);
    GUARD_OSSL(BN_bn2binpad(r, raw, ES256_COORD) == ES256_COORD ? 1 : 0, "jws: ECDSA R");
    GUARD_OSSL(BN_bn2binpad(s, raw + ES256_COORD, ES256_COORD) == ES256_COORD ? 1 : 0,
               "jws: ECDSA S");
    rc = AUTHCERT_OK;
out:
    ECDSA_SIG_free(sig);
    return rc;
}

static authcert_status es256_raw_to_der(const uint8_t raw[64], uint8_t **der, size_t *len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *buf = NULL;

    GUARD_OSSL_PTR(sig = ECDSA_SIG_new(), "jws: ECDSA signature");
    GUARD_OSSL_PTR(r = BN_bin2bn(raw, ES256_COORD, NULL), "jws: ECDSA R");
    GUARD_OSSL_PTR(s = BN_bin2bn(raw + ES256_COORD, ES256_COORD, NULL), "jws: ECDSA S");
    GUARD_OSSL(ECDSA_SIG_set0(sig, r, s), "jws: ECDSA signature");
    r = s = NULL; /* owned by sig now */
    int n = i2d_ECDSA_SIG(sig, &buf);
    GUARD_OSSL(n > 0 ? 1 : 0, "jws: ECDSA signature to DER");
    *der = buf;
    *len = (size_t)n;
    buf = NULL;
    rc = AUTHCERT_OK;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    OPENSSL_free(buf);
    return rc;
}

/*
 * The protected header our signer writes for cert, base64url-encoded (the
 * verifier compares a token's first segment with it).
 */
static authcert_status encoded_header(const authcert_cert *cert, const char *alg, char **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_t *hdr = NULL;
    char *hjson = NULL;
    char x5t[X5T_LEN + 1];

    *out = NULL;
    GUARD(x5t_of(cert, x5t));
    GUARD_ALLOC(hdr = json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "x5t#S256", x5t));
    GUARD_ALLOC(hjson = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER));
    GUARD(authcert_b64url_encode((const uint8_t *)hjson, strlen(hjson), out));
    rc = AUTHCERT_OK;
out:
    free(hjson);
    json_decref(hdr);
    return rc;
}

/* ---- signing ----------------------------------------------------------- */

struct authcert_jws_signer {
    EVP_PKEY *pkey;         /* our reference */
    authcert_key_type type;
    const char *alg;
    char *header;           /* base64url of the header JSON */
    size_t header_len;
    EVP_MD_CTX *proto;      /* initialised once, copied for each token */
    EVP_MD_CTX *work;
};

void authcert_jws_signer_free(authcert_jws_signer *s)
{
    if (s == NULL)
        return;
    EVP_MD_CTX_free(s->work);
    EVP_MD_CTX_free(s->proto);
    EVP_PKEY_free(s->pkey);
    free(s->header);
    free(s);
}

const char *authcert_jws_signer_alg(const authcert_jws_signer *s)
{
    return s->alg;
}

authcert_status authcert_jws_signer_new(const authcert_cert *signer, authcert_jws_signer **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_jws_signer *s = NULL;

    *out = NULL;
    EVP_PKEY *pkey = authcert_cert_pkey(signer);
    if (pkey == NULL)
        FAIL(AUTHCERT_E_USAGE, "jws: certificate %.16s... has no private key",
             authcert_cert_thumbprint(signer));
    GUARD_ALLOC(s = calloc(1, sizeof *s));
    s->type = authcert_cert_key_type(signer);
    s->alg = authcert_jws_alg_for(s->type);
    if (s->alg == NULL)
        FAIL(AUTHCERT_E_USAGE, "jws: the certificate's key type has no JWS alg");
    if (EVP_PKEY_get_size(pkey) > SIG_MAX)
        FAIL(AUTHCERT_E_USAGE, "jws: key too large");
    GUARD_OSSL(EVP_PKEY_up_ref(pkey), "jws: key reference");
    s->pkey = pkey;

    GUARD(encoded_header(signer, s->alg, &s->header));
    s->header_len = strlen(s->header);

    GUARD_OSSL_PTR(s->proto = EVP_MD_CTX_new(), "jws: context");
    GUARD_OSSL_PTR(s->work = EVP_MD_CTX_new(), "jws: context");
    GUARD(init_ctx(s->proto, s->pkey, s->type, true));

    *out = s;
    s = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_jws_signer_free(s);
    return rc;
}

authcert_status authcert_jws_signer_sign(authcert_jws_signer *s, const json_t *claims,
                                         char **token)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char *payload = NULL;

    *token = NULL;
    if (s == NULL)
        FAIL(AUTHCERT_E_USAGE, "jws: no signer");
    if (!json_is_object(claims))
        FAIL(AUTHCERT_E_USAGE, "jws: claims must be a JSON object");
    GUARD_ALLOC(payload = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER));
    rc = authcert_jws_signer_sign_text(s, payload, strlen(payload), token);
out:
    free(payload);
    return rc;
}

authcert_status authcert_jws_signer_sign_text(authcert_jws_signer *s, const char *claims_json,
                                              size_t plen, char **token)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char *tok = NULL;
    uint8_t sig[SIG_MAX];
    size_t siglen = sizeof sig;

    *token = NULL;
    if (s == NULL)
        FAIL(AUTHCERT_E_USAGE, "jws: no signer");
    if (plen < 2 || claims_json[0] != '{' || claims_json[plen - 1] != '}')
        FAIL(AUTHCERT_E_USAGE, "jws: claims must be a JSON object");
    if (plen > AUTHCERT_B64URL_MAX_IN)
        FAIL(AUTHCERT_E_USAGE, "jws: claims too large");

    /* One buffer: header '.' payload, signed in place, then '.' signature. */
    GUARD_ALLOC(tok = malloc(s->header_len + 1 + AUTHCERT_B64URL_BUFSIZE(plen) + 1 +
                             AUTHCERT_B64URL_BUFSIZE(SIG_MAX)));
    memcpy(tok, s->header, s->header_len);
    size_t n = s->header_len;
    tok[n++] = '.';
    n += authcert_b64url_encode_to((const uint8_t *)claims_json, plen, tok + n);

    GUARD_OSSL(EVP_MD_CTX_copy_ex(s->work, s->proto), "jws: context copy");
    GUARD_OSSL(EVP_DigestSign(s->work, sig, &siglen, (const unsigned char *)tok, n),
               "jws: sign");
    if (s->type == AUTHCERT_KEY_P256) {
        uint8_t raw[2 * ES256_COORD];
        GUARD(es256_der_to_raw(sig, siglen, raw));
        memcpy(sig, raw, sizeof raw);
        siglen = sizeof raw;
    }
    tok[n++] = '.';
    authcert_b64url_encode_to(sig, siglen, tok + n);

    *token = tok;
    tok = NULL;
    rc = AUTHCERT_OK;
out:
    free(tok);
    return rc;
}

authcert_status authcert_jws_sign(const authcert_cert *signer, const json_t *claims,
                                  char **token)
{
    authcert_jws_signer *s = NULL;
    *token = NULL;
    authcert_status rc = authcert_jws_signer_new(signer, &s);
    if (rc == AUTHCERT_OK)
        rc = authcert_jws_signer_sign(s, claims, token);
    authcert_jws_signer_free(s);
    return rc;
}

authcert_status authcert_jws_claims_new(const char *iss, const char *aud, const char *command,
                                        json_t *args, int64_t ttl_seconds, int64_t now,
                                        json_t **claims)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_t *c = NULL;
    uint8_t rnd[16];
    char jti[AUTHCERT_B64URL_BUFSIZE(sizeof rnd)];

    *claims = NULL;
    if (iss == NULL || *iss == '\0' || aud == NULL || *aud == '\0' || command == NULL ||
        *command == '\0')
        FAIL(AUTHCERT_E_USAGE, "jws: iss, aud and command must not be empty");
    if (ttl_seconds < 1 || ttl_seconds > TTL_MAX)
        FAIL(AUTHCERT_E_USAGE, "jws: ttl %lld s not in 1..%d", (long long)ttl_seconds, TTL_MAX);
    if (now == 0)
        now = (int64_t)time(NULL);
    if (now < 0 || now > INT64_MAX - TTL_MAX)
        FAIL(AUTHCERT_E_USAGE, "jws: time %lld out of range", (long long)now);
    GUARD_OSSL(RAND_bytes(rnd, sizeof rnd), "jws: random jti");
    authcert_b64url_encode_to(rnd, sizeof rnd, jti);
    GUARD_ALLOC(c = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "iss", iss, "aud", aud,
                              "iat", (json_int_t)now, "exp", (json_int_t)(now + ttl_seconds),
                              "jti", jti, "cmd", command));
    if (args != NULL && json_object_set(c, "args", args) != 0)
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    *claims = c;
    c = NULL;
    rc = AUTHCERT_OK;
out:
    json_decref(c);
    return rc;
}

/* ---- verifying --------------------------------------------------------- */

/* Prefix the detail of a failed step (copied: the detail is the buffer written). */
static authcert_status refail(authcert_status st, const char *what)
{
    char inner[256];
    snprintf(inner, sizeof inner, "%s", authcert_detail());
    return authcert_fail(st, "jws: %s: %s", what, inner);
}

/* Header values come from anyone: only short printable ones go in a detail. */
static const char *shown(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (n >= 32 || s[n] < 0x20 || s[n] > 0x7e)
            return "(unprintable)";
    return s;
}

static authcert_status decode_json(const char *what, const char *b64, size_t len, json_t **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    json_error_t err;

    *out = NULL;
    rc = authcert_b64url_decode(b64, len, &raw, &rawlen);
    if (rc != AUTHCERT_OK) {
        rc = refail(rc, what);
        goto out;
    }
    /* Duplicate keys would let {"alg":"ES256","alg":"none"} mean two things. */
    json_t *j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "jws: %s is not valid JSON: %s", what, err.text);
    if (!json_is_object(j)) {
        json_decref(j);
        FAIL(AUTHCERT_E_CORRUPT, "jws: %s is not a JSON object", what);
    }
    *out = j;
    rc = AUTHCERT_OK;
out:
    free(raw);
    return rc;
}

static authcert_status check_header(const authcert_cert *trusted, const json_t *hdr,
                                    const char *want_alg)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char x5t[X5T_LEN + 1];

    const json_t *alg = json_object_get(hdr, "alg");
    if (alg == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "jws: header has no alg");
    if (!json_is_string(alg))
        FAIL(AUTHCERT_E_CORRUPT, "jws: header alg is not a string");
    if (strcmp(json_string_value(alg), want_alg) != 0)
        FAIL(AUTHCERT_E_AUTH, "jws: alg %s refused: the trusted certificate's key signs %s",
             shown(json_string_value(alg)), want_alg);
    if (json_object_get(hdr, "crit") != NULL)
        FAIL(AUTHCERT_E_AUTH, "jws: header has crit, and no extension is understood");
    const json_t *typ = json_object_get(hdr, "typ");
    if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        FAIL(AUTHCERT_E_AUTH, "jws: typ is not JWT");

    const json_t *h5 = json_object_get(hdr, "x5t#S256");
    if (h5 == NULL)
        FAIL(AUTHCERT_E_AUTH, "jws: header has no x5t#S256");
    if (!json_is_string(h5))
        FAIL(AUTHCERT_E_CORRUPT, "jws: header x5t#S256 is not a string");
    GUARD(x5t_of(trusted, x5t));
    if (json_string_length(h5) != X5T_LEN ||
        CRYPTO_memcmp(json_string_value(h5), x5t, X5T_LEN) != 0)
        FAIL(AUTHCERT_E_AUTH, "jws: signed for another certificate (x5t#S256 %s, ours %s)",
             shown(json_string_value(h5)), x5t);
    rc = AUTHCERT_OK;
out:
    return rc;
}

/* proto: a context prepared by init_ctx for trusted's key, or NULL to set one up. */
static authcert_status check_signature(const authcert_cert *trusted, const EVP_MD_CTX *proto,
                                       const char *signed_part, size_t signed_len,
                                       const char *sig_b64, size_t sig_b64_len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    uint8_t *sig = NULL, *der = NULL;
    size_t siglen = 0, derlen = 0;
    EVP_MD_CTX *ctx = NULL;
    authcert_key_type t = authcert_cert_key_type(trusted);

    rc = authcert_b64url_decode(sig_b64, sig_b64_len, &sig, &siglen);
    if (rc != AUTHCERT_OK) {
        rc = refail(rc, "signature");
        goto out;
    }
    const uint8_t *vsig = sig;
    size_t vlen = siglen;
    if (t == AUTHCERT_KEY_P256) {
        /* A DER signature here is a different encoding, not a second spelling. */
        if (siglen != 2 * ES256_COORD)
            FAIL(AUTHCERT_E_AUTH, "jws: ES256 signature is %zu bytes, want 64 (raw R||S)",
                 siglen);
        GUARD(es256_raw_to_der(sig, &der, &derlen));
        vsig = der;
        vlen = derlen;
    }
    GUARD_OSSL_PTR(ctx = EVP_MD_CTX_new(), "jws: context");
    if (proto != NULL)
        GUARD_OSSL(EVP_MD_CTX_copy_ex(ctx, proto), "jws: context copy");
    else
        GUARD(init_ctx(ctx, authcert_cert_pubkey(trusted), t, false));
    if (EVP_DigestVerify(ctx, vsig, vlen, (const unsigned char *)signed_part, signed_len) != 1) {
        ERR_clear_error();
        FAIL(AUTHCERT_E_AUTH, "jws: bad signature");
    }
    rc = AUTHCERT_OK;
out:
    EVP_MD_CTX_free(ctx);
    free(sig);
    OPENSSL_free(der);
    return rc;
}

static authcert_status check_claims(const json_t *cl, const authcert_jws_expect *ex, int64_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;

    const json_t *aud = json_object_get(cl, "aud");
    if (aud == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "jws: claims have no aud");
    if (!json_is_string(aud))
        FAIL(AUTHCERT_E_CORRUPT, "jws: aud must be one string (arrays are not accepted)");
    const char *a = json_string_value(aud);
    if (strcmp(a, AUTHCERT_JWS_BROADCAST) == 0) {
        if (!ex->allow_broadcast)
            FAIL(AUTHCERT_E_AUTH, "jws: broadcast audience not accepted here");
    } else if (strcmp(a, ex->audience) != 0) {
        FAIL(AUTHCERT_E_AUTH, "jws: audience %s is not this agent (%s)", shown(a), ex->audience);
    }

    if (ex->issuer != NULL) {
        const json_t *iss = json_object_get(cl, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), ex->issuer) != 0)
            FAIL(AUTHCERT_E_AUTH, "jws: issuer is not %s", ex->issuer);
    }

    const json_t *exp = json_object_get(cl, "exp");
    const json_t *iat = json_object_get(cl, "iat");
    const json_t *nbf = json_object_get(cl, "nbf");
    if (!json_is_integer(exp))
        FAIL(AUTHCERT_E_CORRUPT, "jws: claims have no integer exp");
    if (!json_is_integer(iat))
        FAIL(AUTHCERT_E_CORRUPT, "jws: claims have no integer iat");
    if (nbf != NULL && !json_is_integer(nbf))
        FAIL(AUTHCERT_E_CORRUPT, "jws: nbf is not an integer");
    /* now and leeway are bounded, so these subtractions cannot overflow. */
    if (now - ex->leeway > json_integer_value(exp))
        FAIL(AUTHCERT_E_AUTH, "jws: expired at %lld (now %lld, leeway %lld s)",
             (long long)json_integer_value(exp), (long long)now, (long long)ex->leeway);
    if (ex->max_lifetime > 0) {
        /* exp and iat are the token's: their difference may not fit. */
        long long life;
        if (__builtin_sub_overflow((long long)json_integer_value(exp),
                                   (long long)json_integer_value(iat), &life) ||
            life > ex->max_lifetime)
            FAIL(AUTHCERT_E_AUTH, "jws: a lifetime (exp - iat) longer than the %lld s allowed",
                 (long long)ex->max_lifetime);
    }
    if (json_integer_value(iat) - ex->leeway > now)
        FAIL(AUTHCERT_E_AUTH, "jws: issued in the future (iat %lld, now %lld, leeway %lld s)",
             (long long)json_integer_value(iat), (long long)now, (long long)ex->leeway);
    if (nbf != NULL && json_integer_value(nbf) - ex->leeway > now)
        FAIL(AUTHCERT_E_AUTH, "jws: not valid before %lld (now %lld)",
             (long long)json_integer_value(nbf), (long long)now);

    const json_t *jti = json_object_get(cl, "jti");
    if (!json_is_string(jti) || json_string_length(jti) < AUTHCERT_JWS_JTI_MIN ||
        json_string_length(jti) > AUTHCERT_JWS_JTI_MAX)
        FAIL(AUTHCERT_E_CORRUPT, "jws: jti must be a string of %d..%d characters",
             AUTHCERT_JWS_JTI_MIN, AUTHCERT_JWS_JTI_MAX);
    rc = AUTHCERT_OK;
out:
    return rc;
}

authcert_status authcert_jws_verify(const authcert_cert *trusted, const char *token, size_t len,
                                    const authcert_jws_expect *expect, json_t **claims)
{
    authcert_jws_refusal why;

    return authcert_jws_verify_why(trusted, token, len, expect, claims, &why);
}

struct authcert_jws_verifier {
    atomic_int refs;
    authcert_cert *cert;  /* our reference */
    EVP_MD_CTX *proto;    /* initialised once, copied for each token */
    char *header;         /* what our signer writes for cert, encoded */
    size_t header_len;
};

static authcert_status verify(const authcert_cert *trusted, const authcert_jws_verifier *v,
                              const char *token, size_t len, const authcert_jws_expect *expect,
                              json_t **claims, authcert_jws_refusal *why);

authcert_status authcert_jws_verify_why(const authcert_cert *trusted, const char *token,
                                        size_t len, const authcert_jws_expect *expect,
                                        json_t **claims, authcert_jws_refusal *why)
{
    return verify(trusted, NULL, token, len, expect, claims, why);
}

authcert_status authcert_jws_verifier_new(authcert_cert *trusted, authcert_jws_verifier **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_jws_verifier *v = NULL;
    authcert_key_type t;
    const char *alg;

    *out = NULL;
    if (trusted == NULL)
        FAIL(AUTHCERT_E_USAGE, "jws: verifier needs a certificate");
    t = authcert_cert_key_type(trusted);
    if ((alg = authcert_jws_alg_for(t)) == NULL)
        FAIL(AUTHCERT_E_USAGE, "jws: the trusted certificate's key type has no JWS alg");
    GUARD_ALLOC(v = calloc(1, sizeof *v));
    atomic_init(&v->refs, 1);
    v->cert = authcert_cert_ref(trusted);
    GUARD(encoded_header(trusted, alg, &v->header));
    v->header_len = strlen(v->header);
    GUARD_OSSL_PTR(v->proto = EVP_MD_CTX_new(), "jws: context");
    GUARD(init_ctx(v->proto, authcert_cert_pubkey(trusted), t, false));
    *out = v;
    v = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_jws_verifier_free(v);
    return rc;
}

authcert_jws_verifier *authcert_jws_verifier_ref(authcert_jws_verifier *v)
{
    if (v != NULL)
        atomic_fetch_add(&v->refs, 1);
    return v;
}

void authcert_jws_verifier_free(authcert_jws_verifier *v)
{
    if (v == NULL || atomic_fetch_sub(&v->refs, 1) > 1)
        return;
    EVP_MD_CTX_free(v->proto);
    authcert_cert_free(v->cert);
    free(v->header);
    free(v);
}

const authcert_cert *authcert_jws_verifier_cert(const authcert_jws_verifier *v)
{
    return v->cert;
}

authcert_status authcert_jws_verifier_verify_why(authcert_jws_verifier *v, const char *token,
                                                 size_t len, const authcert_jws_expect *expect,
                                                 json_t **claims, authcert_jws_refusal *why)
{
    if (v == NULL) {
        *claims = NULL;
        *why = AUTHCERT_JWS_UNPROVEN;
        return authcert_fail(AUTHCERT_E_USAGE, "jws: verify needs a verifier");
    }
    return verify(v->cert, v, token, len, expect, claims, why);
}

static authcert_status verify(const authcert_cert *trusted, const authcert_jws_verifier *v,
                              const char *token, size_t len, const authcert_jws_expect *expect,
                              json_t **claims, authcert_jws_refusal *why)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_t *hdr = NULL, *cl = NULL;
    /* How far the token got: the trusted key signed it, its claims passed. */
    authcert_jws_refusal stage = AUTHCERT_JWS_UNPROVEN;

    *claims = NULL;
    if (trusted == NULL || token == NULL || expect == NULL || expect->audience == NULL ||
        expect->audience[0] == '\0' || strcmp(expect->audience, AUTHCERT_JWS_BROADCAST) == 0)
        FAIL(AUTHCERT_E_USAGE, "jws: verify needs a certificate, a token and an agent id");
    if (expect->leeway < 0 || expect->leeway > AUTHCERT_JWS_MAX_LEEWAY)
        FAIL(AUTHCERT_E_USAGE, "jws: leeway %lld s not in 0..%d", (long long)expect->leeway,
             AUTHCERT_JWS_MAX_LEEWAY);
    int64_t now = expect->now != 0 ? expect->now : (int64_t)time(NULL);
    if (now < 0)
        FAIL(AUTHCERT_E_USAGE, "jws: negative time");
    size_t max = expect->max_token_size != 0 ? expect->max_token_size
                                             : AUTHCERT_JWS_MAX_TOKEN_DEFAULT;
    if (len > max)
        FAIL(AUTHCERT_E_CORRUPT, "jws: token is %zu bytes, more than %zu", len, max);

    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))
                                    : NULL;
    size_t parts = 1;
    for (size_t i = 0; i < len; i++)
        parts += token[i] == '.';
    if (parts != 3)
        FAIL(AUTHCERT_E_CORRUPT, "jws: token has %zu parts, want 3", parts);

    const char *want_alg = authcert_jws_alg_for(authcert_cert_key_type(trusted));
    if (want_alg == NULL)
        FAIL(AUTHCERT_E_USAGE, "jws: the trusted certificate's key type has no JWS alg");

    /* Our own signer's header for this certificate passes check_header as it is. */
    if (v == NULL || (size_t)(dot1 - token) != v->header_len ||
        memcmp(token, v->header, v->header_len) != 0) {
        GUARD(decode_json("header", token, (size_t)(dot1 - token), &hdr));
        GUARD(check_header(trusted, hdr, want_alg));
    }
    GUARD(check_signature(trusted, v != NULL ? v->proto : NULL, token,
                          (size_t)(dot2 - token), dot2 + 1, len - (size_t)(dot2 + 1 - token)));
    stage = AUTHCERT_JWS_REFUSED;
    GUARD(decode_json("payload", dot1 + 1, (size_t)(dot2 - dot1 - 1), &cl));
    GUARD(check_claims(cl, expect, now));
    /* Last, so that a refused token never uses up its jti. */
    if (expect->replay != NULL) {
        stage = AUTHCERT_JWS_REPLAYED;
        GUARD(authcert_replay_check_and_add(expect->replay,
                                            json_string_value(json_object_get(cl, "jti")),
                                            json_integer_value(json_object_get(cl, "exp")),
                                            now));
    }

    *claims = cl;
    cl = NULL;
    rc = AUTHCERT_OK;
out:
    if (rc == AUTHCERT_OK)
        *why = AUTHCERT_JWS_ACCEPTED;
    else if (stage == AUTHCERT_JWS_REPLAYED && rc == AUTHCERT_E_BUSY)
        *why = AUTHCERT_JWS_NO_ROOM;
    else
        *why = stage;
    json_decref(hdr);
    json_decref(cl);
    return rc;
}
