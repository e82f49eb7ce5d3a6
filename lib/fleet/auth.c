/*
 * How an agent proves who it is (authcert/auth.h): derived MAC keys, request
 * MACs and their header, stateless nonces, enrollment proofs and tokens.
 * The texts that are MACed or signed are built in one place each, so the
 * agent, the server and the documented worked example (docs/protocol.md)
 * cannot drift apart.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "authcert/auth.h"
#include "authcert/base64url.h"
#include "authcert/tls.h"
#include "internal.h"

#define MAC_SALT "authcert-v2 agent MAC key"
#define NONCE_SALT "authcert-v2 enrollment nonce key"

void authcert_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[32];
    static const char digits[] = "0123456789abcdef";

    if (EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) != 1)
        memset(md, 0, sizeof md);
    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

/* HKDF with kdf in one mode: "EXTRACT_AND_EXPAND", or one half of it (RFC 5869 2.2, 2.3). */
static authcert_status hkdf_mode(EVP_KDF *kdf, const char *mode, const uint8_t *key, size_t klen,
                                 const char *salt, const uint8_t *info, size_t ilen,
                                 uint8_t *out, size_t olen)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM p[6], *q = p;

    GUARD_OSSL_PTR(ctx = EVP_KDF_CTX_new(kdf), "HKDF: context");
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *)mode, 0);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, klen);
    if (salt != NULL)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
                                                 strlen(salt));
    if (info != NULL)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, ilen);
    *q = OSSL_PARAM_construct_end();
    GUARD_OSSL(EVP_KDF_derive(ctx, out, olen, p), "HKDF: %s", mode);
    rc = AUTHCERT_OK;
out:
    EVP_KDF_CTX_free(ctx);
    return rc;
}

/* HKDF-SHA-256 in one call: a fetch of its own (the cold paths). */
static authcert_status hkdf(const uint8_t *secret, size_t slen, const char *salt,
                            const uint8_t *info, size_t ilen, uint8_t *out, size_t olen)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_KDF *kdf = NULL;

    GUARD_OSSL_PTR(kdf = EVP_KDF_fetch(NULL, "HKDF", NULL), "HKDF: fetch");
    rc = hkdf_mode(kdf, "EXTRACT_AND_EXPAND", secret, slen, salt, info, ilen, out, olen);
out:
    EVP_KDF_free(kdf);
    return rc;
}

/* HKDF's info for an agent's MAC key: agent_id NUL epoch (8 bytes, big-endian). */
static authcert_status mac_key_info(const char *agent_id, uint64_t epoch, uint8_t info[128 + 9],
                                    size_t *len)
{
    size_t n = strlen(agent_id);

    if (n == 0 || n > 128)
        return authcert_fail(AUTHCERT_E_USAGE, "MAC key: agent id of %zu bytes", n);
    memcpy(info, agent_id, n);
    info[n] = '\0';
    for (int i = 0; i < 8; i++)
        info[n + 1 + i] = (uint8_t)(epoch >> (56 - 8 * i));
    *len = n + 9;
    return AUTHCERT_OK;
}

authcert_status authcert_agent_mac_key(const uint8_t secret[AUTHCERT_SECRET_LEN],
                                       const char *agent_id, uint64_t epoch,
                                       uint8_t key[AUTHCERT_MAC_KEY_LEN])
{
    uint8_t info[128 + 9];
    size_t n;
    authcert_status rc;

    if ((rc = mac_key_info(agent_id, epoch, info, &n)) != AUTHCERT_OK)
        return rc;
    rc = hkdf(secret, AUTHCERT_SECRET_LEN, MAC_SALT, info, n, key, AUTHCERT_MAC_KEY_LEN);
    OPENSSL_cleanse(info, sizeof info);
    return rc;
}

/*
 * HKDF split as RFC 5869 defines it: the extract step depends only on the
 * secret and the salt, so it runs once; each key is one expand, from a
 * context with the pseudorandom key and digest set, kept for reuse: a
 * derivation takes one (or makes one), sets only the info and gives it
 * back. (OpenSSL 3.0 cannot copy an HKDF context, so this is a pool, as
 * many as derivations ever ran at once: one per request thread.)
 */
#define MAC_KDF_POOL 64

struct authcert_mac_kdf {
    pthread_mutex_t lock;
    EVP_KDF *kdf;
    uint8_t prk[32]; /* HKDF-Extract(MAC_SALT, secret): the same for every agent */
    EVP_KDF_CTX *idle[MAC_KDF_POOL];
    size_t nidle;
};

authcert_status authcert_mac_kdf_new(const uint8_t secret[AUTHCERT_SECRET_LEN],
                                     authcert_mac_kdf **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_mac_kdf *k = NULL;

    *out = NULL;
    GUARD_ALLOC(k = calloc(1, sizeof *k));
    if (pthread_mutex_init(&k->lock, NULL) != 0) {
        free(k);
        return authcert_fail(AUTHCERT_E_INTERNAL, "HKDF: mutex");
    }
    GUARD_OSSL_PTR(k->kdf = EVP_KDF_fetch(NULL, "HKDF", NULL), "HKDF: fetch");
    GUARD(hkdf_mode(k->kdf, "EXTRACT_ONLY", secret, AUTHCERT_SECRET_LEN, MAC_SALT, NULL, 0,
                    k->prk, sizeof k->prk));
    *out = k;
    k = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_mac_kdf_free(k);
    return rc;
}

/* An idle context of the pool, or a new one with the template's parameters. */
static EVP_KDF_CTX *kdf_take(authcert_mac_kdf *k)
{
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM p[4], *q = p;

    pthread_mutex_lock(&k->lock);
    if (k->nidle > 0)
        ctx = k->idle[--k->nidle];
    pthread_mutex_unlock(&k->lock);
    if (ctx != NULL)
        return ctx;
    if ((ctx = EVP_KDF_CTX_new(k->kdf)) == NULL)
        return NULL;
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *)"EXPAND_ONLY", 0);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, k->prk, sizeof k->prk);
    *q = OSSL_PARAM_construct_end();
    if (EVP_KDF_CTX_set_params(ctx, p) != 1) {
        EVP_KDF_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void kdf_give_back(authcert_mac_kdf *k, EVP_KDF_CTX *ctx)
{
    pthread_mutex_lock(&k->lock);
    if (k->nidle < MAC_KDF_POOL) {
        k->idle[k->nidle++] = ctx;
        ctx = NULL;
    }
    pthread_mutex_unlock(&k->lock);
    EVP_KDF_CTX_free(ctx);
}

authcert_status authcert_mac_kdf_key(const authcert_mac_kdf *kc, const char *agent_id,
                                     uint64_t epoch, uint8_t key[AUTHCERT_MAC_KEY_LEN])
{
    authcert_mac_kdf *k = (authcert_mac_kdf *)kc; /* the pool changes, the keys do not */
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_KDF_CTX *ctx = NULL;
    uint8_t info[128 + 9];
    size_t n = 0;
    OSSL_PARAM p[2];

    GUARD(mac_key_info(agent_id, epoch, info, &n));
    GUARD_OSSL_PTR(ctx = kdf_take(k), "HKDF: context");
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
    p[1] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(ctx, key, AUTHCERT_MAC_KEY_LEN, p) != 1) {
        EVP_KDF_CTX_free(ctx);
        ctx = NULL;
        GUARD_OSSL(0, "HKDF: derive");
    }
    kdf_give_back(k, ctx);
    rc = AUTHCERT_OK;
out:
    OPENSSL_cleanse(info, sizeof info);
    return rc;
}

void authcert_mac_kdf_free(authcert_mac_kdf *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->nidle; i++)
        EVP_KDF_CTX_free(k->idle[i]); /* the provider wipes the key it copied */
    EVP_KDF_free(k->kdf);
    pthread_mutex_destroy(&k->lock);
    OPENSSL_cleanse(k->prk, sizeof k->prk);
    free(k);
}

authcert_status authcert_server_id_derive(const uint8_t secret[AUTHCERT_SECRET_LEN],
                                          char id[AUTHCERT_DERIVED_SERVER_ID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t raw[8] = { 0 };
    authcert_status rc = hkdf(secret, AUTHCERT_SECRET_LEN, "authcert-v2 server id",
                              (const uint8_t *)"", 0, raw, sizeof raw);

    if (rc != AUTHCERT_OK)
        return rc;
    memcpy(id, "authcert-", 9);
    for (size_t i = 0; i < sizeof raw; i++) {
        id[9 + 2 * i] = digits[raw[i] >> 4];
        id[9 + 2 * i + 1] = digits[raw[i] & 15];
    }
    id[AUTHCERT_DERIVED_SERVER_ID_LEN] = '\0';
    return AUTHCERT_OK;
}

static bool visible(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || n >= max)
            return false;
    return n > 0;
}

authcert_status authcert_request_mac_text(const authcert_request_auth *r, char **text)
{
    char hex[65];
    int n;

    *text = NULL;
    if (!visible(r->method, 32) || !visible(r->path, 256) || !visible(r->agent_id, 128) ||
        !visible(r->server_id, 256))
        return authcert_fail(AUTHCERT_E_USAGE, "MAC: a field is empty or not visible ASCII");
    authcert_sha256_hex(r->body != NULL ? r->body : "", r->body != NULL ? r->body_len : 0, hex);
    n = asprintf(text, "authcert-v2\n%s\n%s\n%s\n%" PRIu64 "\n%s\n%" PRIu64 "\n%s", r->method,
                 r->path, r->agent_id, r->epoch, r->server_id, r->counter, hex);
    if (n < 0) {
        *text = NULL;
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    return AUTHCERT_OK;
}

/*
 * HMAC-SHA256 from a context with the algorithm and digest set once for the
 * process, copied per use (EVP_Q_mac fetches HMAC and SHA-256 each time: a
 * server MACs every request). Returns 1 on success, as OpenSSL does.
 */
static EVP_MAC_CTX *hmac_template;

static void hmac_template_make(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM p[2] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                         (char *)"SHA256", 0),
                        OSSL_PARAM_construct_end() };

    if (ctx != NULL && EVP_MAC_CTX_set_params(ctx, p) == 1)
        hmac_template = ctx;
    else
        EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac); /* the context holds its own reference */
}

static int hmac_sha256(const uint8_t *key, size_t klen, const void *data, size_t len,
                       uint8_t md[32])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    EVP_MAC_CTX *ctx;
    size_t mdlen = 0;
    int ok;

    pthread_once(&once, hmac_template_make);
    if (hmac_template == NULL || (ctx = EVP_MAC_CTX_dup(hmac_template)) == NULL)
        return 0;
    ok = EVP_MAC_init(ctx, key, klen, NULL) == 1 && EVP_MAC_update(ctx, data, len) == 1 &&
         EVP_MAC_final(ctx, md, &mdlen, 32) == 1 && mdlen == 32;
    EVP_MAC_CTX_free(ctx);
    return ok;
}

static authcert_status hmac_b64(const uint8_t *key, size_t klen, const void *data, size_t len,
                                char out[AUTHCERT_MAC_B64_LEN + 1])
{
    unsigned char md[32];
    char buf[AUTHCERT_B64URL_BUFSIZE(32)];

    if (hmac_sha256(key, klen, data, len, md) != 1)
        return authcert_fail_ossl(AUTHCERT_E_CRYPTO, "HMAC-SHA256");
    authcert_b64url_encode_to(md, 32, buf);
    memcpy(out, buf, AUTHCERT_MAC_B64_LEN + 1);
    OPENSSL_cleanse(md, sizeof md);
    return AUTHCERT_OK;
}

authcert_status authcert_request_mac(const uint8_t key[AUTHCERT_MAC_KEY_LEN],
                                     const authcert_request_auth *r,
                                     char mac[AUTHCERT_MAC_B64_LEN + 1])
{
    char *text = NULL;
    authcert_status rc = authcert_request_mac_text(r, &text);

    mac[0] = '\0';
    if (rc == AUTHCERT_OK && text != NULL)
        rc = hmac_b64(key, AUTHCERT_MAC_KEY_LEN, text, strlen(text), mac);
    free(text);
    return rc;
}

bool authcert_request_mac_ok(const uint8_t key[AUTHCERT_MAC_KEY_LEN],
                             const authcert_request_auth *r, const char *mac)
{
    char want[AUTHCERT_MAC_B64_LEN + 1];

    if (mac == NULL || strlen(mac) != AUTHCERT_MAC_B64_LEN ||
        authcert_request_mac(key, r, want) != AUTHCERT_OK)
        return false;
    return CRYPTO_memcmp(want, mac, AUTHCERT_MAC_B64_LEN) == 0;
}

authcert_status authcert_auth_header_format(const char *agent_id, uint64_t epoch,
                                            uint64_t counter, const char *mac, char *out,
                                            size_t size)
{
    int n = snprintf(out, size, AUTHCERT_AUTH_SCHEME " agent=\"%s\", epoch=%" PRIu64
                     ", counter=%" PRIu64 ", mac=\"%s\"", agent_id, epoch, counter, mac);

    if (n < 0 || (size_t)n >= size)
        return authcert_fail(AUTHCERT_E_USAGE, "Authorization header too long");
    return AUTHCERT_OK;
}

/* A decimal without sign or leading zero, at most 2^63 - 1. */
static const char *number(const char *p, uint64_t *v)
{
    uint64_t n = 0;
    const char *start = p;

    if (*p == '0')
        return p[1] >= '0' && p[1] <= '9' ? NULL : (*v = 0, p + 1);
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(*p - '0')) / 10)
            return NULL;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (p == start)
        return NULL;
    *v = n;
    return p;
}

/* "NAME=\"VALUE\"" with VALUE of allowed characters, at most max bytes. */
static const char *quoted(const char *p, const char *name, char *out, size_t max, bool b64)
{
    size_t n = strlen(name), k = 0;

    if (strncmp(p, name, n) != 0 || p[n] != '=' || p[n + 1] != '"')
        return NULL;
    for (p += n + 2; *p != '"'; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = b64 ? ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_')
                      : (c > 0x20 && c < 0x7f && c != '"' && c != '\\');
        if (!ok || k + 1 > max)
            return NULL;
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return k > 0 ? p + 1 : NULL;
}

authcert_status authcert_auth_header_parse(const char *v, authcert_auth_header *h)
{
    const char *p = v;
    size_t sl = strlen(AUTHCERT_AUTH_SCHEME);

    memset(h, 0, sizeof *h);
    if (v == NULL || strncmp(p, AUTHCERT_AUTH_SCHEME " ", sl + 1) != 0)
        goto bad;
    p += sl + 1;
    if ((p = quoted(p, "agent", h->agent_id, 128, false)) == NULL || strncmp(p, ", epoch=", 8) != 0)
        goto bad;
    if ((p = number(p + 8, &h->epoch)) == NULL || strncmp(p, ", counter=", 10) != 0)
        goto bad;
    if ((p = number(p + 10, &h->counter)) == NULL || strncmp(p, ", ", 2) != 0)
        goto bad;
    if ((p = quoted(p + 2, "mac", h->mac, AUTHCERT_MAC_B64_LEN, true)) == NULL ||
        *p != '\0' || strlen(h->mac) != AUTHCERT_MAC_B64_LEN)
        goto bad;
    return AUTHCERT_OK;
bad:
    memset(h, 0, sizeof *h);
    return authcert_fail(AUTHCERT_E_CORRUPT, "Authorization: not " AUTHCERT_AUTH_SCHEME
                         " agent=\"ID\", epoch=N, counter=N, mac=\"B64\"");
}

/* ---- nonces ----------------------------------------------------------- */

static authcert_status nonce_tag(const uint8_t secret[AUTHCERT_SECRET_LEN], const uint8_t *msg,
                                 uint8_t tag[16])
{
    uint8_t key[32], md[32];
    authcert_status rc = hkdf(secret, AUTHCERT_SECRET_LEN, NONCE_SALT,
                              (const uint8_t *)"", 0, key, sizeof key);

    if (rc != AUTHCERT_OK)
        return rc;
    if (hmac_sha256(key, sizeof key, msg, 24, md) != 1)
        rc = authcert_fail_ossl(AUTHCERT_E_CRYPTO, "nonce: HMAC");
    memcpy(tag, md, 16);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

authcert_status authcert_nonce_make(const uint8_t secret[AUTHCERT_SECRET_LEN], time_t now,
                                    char nonce[AUTHCERT_NONCE_B64_LEN + 1])
{
    uint8_t raw[40];
    char buf[AUTHCERT_B64URL_BUFSIZE(40)];
    authcert_status rc;

    for (int i = 0; i < 8; i++)
        raw[i] = (uint8_t)((uint64_t)now >> (56 - 8 * i));
    if (RAND_bytes(raw + 8, 16) != 1)
        return authcert_fail_ossl(AUTHCERT_E_CRYPTO, "nonce: random");
    if ((rc = nonce_tag(secret, raw, raw + 24)) != AUTHCERT_OK)
        return rc;
    authcert_b64url_encode_to(raw, sizeof raw, buf);
    memcpy(nonce, buf, AUTHCERT_NONCE_B64_LEN + 1);
    return AUTHCERT_OK;
}

authcert_status authcert_nonce_check(const uint8_t secret[AUTHCERT_SECRET_LEN], const char *nonce,
                                     time_t now, unsigned max_age)
{
    uint8_t *raw = NULL, tag[16];
    size_t len = 0;
    uint64_t t = 0;
    authcert_status rc;

    if (nonce == NULL || strlen(nonce) != AUTHCERT_NONCE_B64_LEN ||
        authcert_b64url_decode(nonce, AUTHCERT_NONCE_B64_LEN, &raw, &len) != AUTHCERT_OK ||
        len != 40) {
        free(raw);
        return authcert_fail(AUTHCERT_E_AUTH, "nonce: not one of ours");
    }
    rc = nonce_tag(secret, raw, tag);
    if (rc == AUTHCERT_OK && CRYPTO_memcmp(tag, raw + 24, 16) != 0)
        rc = authcert_fail(AUTHCERT_E_AUTH, "nonce: not one of ours");
    for (int i = 0; i < 8; i++)
        t = (t << 8) | raw[i];
    free(raw);
    if (rc == AUTHCERT_OK && ((int64_t)t > (int64_t)now + 60 || (int64_t)t + max_age < (int64_t)now))
        rc = authcert_fail(AUTHCERT_E_AUTH, "nonce: too old (ask for a new one)");
    return rc;
}

/* ---- enrollment proofs ------------------------------------------------ */

authcert_status authcert_enroll_proof_text(const char *agent_id, const char *key_pin,
                                           const char *server_id, const char *nonce,
                                           const char *token_hash, char **text)
{
    static const char zeros[] =
        "0000000000000000000000000000000000000000000000000000000000000000";

    *text = NULL;
    if (!visible(agent_id, 128) || !authcert_pin_valid(key_pin) || !visible(server_id, 256) ||
        !visible(nonce, 128) || (token_hash != NULL && strlen(token_hash) != 64))
        return authcert_fail(AUTHCERT_E_USAGE, "enrollment proof: a field is malformed");
    if (asprintf(text, "authcert-v2 enroll\n%s\n%s\n%s\n%s\n%s", agent_id, key_pin, server_id,
                 nonce, token_hash != NULL ? token_hash : zeros) < 0) {
        *text = NULL;
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    return AUTHCERT_OK;
}

authcert_status authcert_rotate_proof_text(const char *agent_id, const char *old_pin,
                                           const char *new_pin, const char *server_id,
                                           uint64_t counter, char **text)
{
    *text = NULL;
    if (!visible(agent_id, 128) || !authcert_pin_valid(old_pin) || !authcert_pin_valid(new_pin) ||
        !visible(server_id, 256))
        return authcert_fail(AUTHCERT_E_USAGE, "rotation proof: a field is malformed");
    if (asprintf(text, "authcert-v2 rotate\n%s\n%s\n%s\n%s\n%" PRIu64, agent_id, old_pin,
                 new_pin, server_id, counter) < 0) {
        *text = NULL;
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    return AUTHCERT_OK;
}

static bool ed25519(EVP_PKEY *k)
{
    return EVP_PKEY_is_a(k, "ED25519");
}

authcert_status authcert_proof_sign(EVP_PKEY *key, const char *text, char **sig)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_MD_CTX *md = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;

    *sig = NULL;
    GUARD_OSSL_PTR(md = EVP_MD_CTX_new(), "proof: context");
    GUARD_OSSL(EVP_DigestSignInit_ex(md, NULL, ed25519(key) ? NULL : "SHA256", NULL, NULL, key,
                                     NULL), "proof: sign init");
    GUARD_OSSL(EVP_DigestSign(md, NULL, &len, (const unsigned char *)text, strlen(text)),
               "proof: sign");
    GUARD_ALLOC(buf = malloc(len));
    GUARD_OSSL(EVP_DigestSign(md, buf, &len, (const unsigned char *)text, strlen(text)),
               "proof: sign");
    GUARD(authcert_b64url_encode(buf, len, sig));
    rc = AUTHCERT_OK;
out:
    free(buf);
    EVP_MD_CTX_free(md);
    return rc;
}

static authcert_status spki_key(const char *spki, EVP_PKEY **out)
{
    uint8_t *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    EVP_PKEY *k = NULL;
    authcert_status rc;

    *out = NULL;
    if (spki == NULL || strlen(spki) > 256)
        return authcert_fail(AUTHCERT_E_CORRUPT, "key: missing or too long");
    if ((rc = authcert_b64url_decode(spki, strlen(spki), &der, &len)) != AUTHCERT_OK)
        return authcert_fail(AUTHCERT_E_CORRUPT, "key: not base64url");
    p = der;
    k = d2i_PUBKEY(NULL, &p, (long)len);
    if (k == NULL || p != der + len) {
        EVP_PKEY_free(k);
        free(der);
        return authcert_fail_ossl(AUTHCERT_E_CORRUPT, "key: not a DER SubjectPublicKeyInfo");
    }
    free(der);
    if (!ed25519(k)) {
        char curve[32] = "";
        size_t n = 0;
        if (!EVP_PKEY_is_a(k, "EC") ||
            EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof curve, &n) != 1 ||
            (strcmp(curve, "prime256v1") != 0 && strcmp(curve, "P-256") != 0)) {
            EVP_PKEY_free(k);
            return authcert_fail(AUTHCERT_E_CORRUPT, "key: an agent key is P-256 or Ed25519");
        }
    }
    *out = k;
    return AUTHCERT_OK;
}

authcert_status authcert_proof_verify(const char *spki, const char *text, const char *sig,
                                      char pin[53])
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_PKEY *k = NULL;
    EVP_MD_CTX *md = NULL;
    uint8_t *raw = NULL;
    size_t len = 0;

    pin[0] = '\0';
    GUARD(spki_key(spki, &k));
    GUARD(authcert_key_pin(k, pin));
    if (sig == NULL || strlen(sig) > 256 ||
        authcert_b64url_decode(sig, strlen(sig), &raw, &len) != AUTHCERT_OK)
        FAIL(AUTHCERT_E_AUTH, "proof: not a signature");
    GUARD_OSSL_PTR(md = EVP_MD_CTX_new(), "proof: context");
    GUARD_OSSL(EVP_DigestVerifyInit_ex(md, NULL, ed25519(k) ? NULL : "SHA256", NULL, NULL, k,
                                       NULL), "proof: verify init");
    if (EVP_DigestVerify(md, raw, len, (const unsigned char *)text, strlen(text)) != 1)
        FAIL_OSSL(AUTHCERT_E_AUTH, "proof: the signature does not verify with the key sent");
    rc = AUTHCERT_OK;
out:
    free(raw);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    return rc;
}

authcert_status authcert_spki_pin(const char *spki, char pin[53])
{
    EVP_PKEY *k = NULL;
    authcert_status rc;

    pin[0] = '\0';
    if ((rc = spki_key(spki, &k)) != AUTHCERT_OK)
        return rc;
    rc = authcert_key_pin(k, pin);
    EVP_PKEY_free(k);
    return rc;
}

authcert_status authcert_key_spki(EVP_PKEY *key, char **spki)
{
    unsigned char *der = NULL;
    int len;
    authcert_status rc;

    *spki = NULL;
    if ((len = i2d_PUBKEY(key, &der)) <= 0)
        return authcert_fail_ossl(AUTHCERT_E_CRYPTO, "encode the public key");
    rc = authcert_b64url_encode(der, (size_t)len, spki);
    OPENSSL_free(der);
    return rc;
}

/* ---- tokens ----------------------------------------------------------- */

authcert_status authcert_token_new(char id[13], char secret[AUTHCERT_TOKEN_SECRET_B64_LEN + 1])
{
    uint8_t raw[41];
    char buf[AUTHCERT_B64URL_BUFSIZE(32)];

    if (RAND_bytes(raw, sizeof raw) != 1)
        return authcert_fail_ossl(AUTHCERT_E_CRYPTO, "token: random");
    /* The id never starts with '-' (or '_'): `authcert --enroll-token revoke
     * -xyz` read it as a flag (exit 2), one token in 32. The top bit clear
     * keeps the first character in A-Z, a-f; the id is not a secret. */
    raw[0] &= 0x7f;
    authcert_b64url_encode_to(raw, 9, buf); /* 12 characters */
    memcpy(id, buf, 13);
    authcert_b64url_encode_to(raw + 9, 32, buf);
    memcpy(secret, buf, AUTHCERT_TOKEN_SECRET_B64_LEN + 1);
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(buf, sizeof buf);
    return AUTHCERT_OK;
}

void authcert_token_hash(const char *secret, char hash[65])
{
    authcert_sha256_hex(secret, strlen(secret), hash);
}

authcert_status authcert_token_split(const char *token, char id[33],
                                     char secret[AUTHCERT_TOKEN_SECRET_B64_LEN + 1])
{
    const char *dot = token != NULL ? strchr(token, '.') : NULL;
    size_t il = dot != NULL ? (size_t)(dot - token) : 0;

    id[0] = secret[0] = '\0';
    if (dot == NULL || il == 0 || il > 32 || strlen(dot + 1) != AUTHCERT_TOKEN_SECRET_B64_LEN)
        return authcert_fail(AUTHCERT_E_CORRUPT, "enrollment token: not ID.SECRET");
    for (size_t i = 0; i < il; i++) {
        unsigned char c = (unsigned char)token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return authcert_fail(AUTHCERT_E_CORRUPT, "enrollment token: not ID.SECRET");
    }
    memcpy(id, token, il);
    id[il] = '\0';
    memcpy(secret, dot + 1, AUTHCERT_TOKEN_SECRET_B64_LEN + 1);
    return AUTHCERT_OK;
}
