/* Password strength (zxcvbn), scrypt storage, and wiping of secrets. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <zxcvbn.h>

#include "authcert/password.h"
#include "internal.h"

/* ---------------------------------------------------------------- strength */

/*
 * Words an attacker who knows what the password protects tries first; zxcvbn
 * rates them as near-free, so "authcert-backup-password" is judged weak.
 */
static const char *user_dict[] = {
    "authcert", "authcertd", "agent", "backup", "restore", "certificate",
    "cert", "password", "passphrase", "secret", "admin", "administrator",
    "server", "store", "fleet", "management", NULL,
};

/* Fewer characters than this is "too short" whatever else zxcvbn found. */
#define SHORT_CHARS 8

enum weakness { W_SHORT, W_DICT, W_SEQ, W_SPATIAL, W_REPEAT, W_DATE, W_COUNT };

static const char *const weakness_text[W_COUNT] = {
    [W_SHORT] = "it is too short: add more words or characters",
    [W_DICT] = "it is mostly dictionary words or names",
    [W_SEQ] = "it is mostly a common sequence such as abc or 123",
    [W_SPATIAL] = "it is mostly a keyboard pattern",
    [W_REPEAT] = "it is mostly repeated characters or words",
    [W_DATE] = "it is mostly a date or year",
};

/*
 * The kind of match that covers most of the password. Random characters
 * (brute-force matches) that still score too low mean it is too short.
 */
static enum weakness dominant_weakness(const ZxcMatch_t *info, size_t chars)
{
    long cover[W_COUNT] = {0};
    enum weakness best = W_SHORT;

    for (const ZxcMatch_t *m = info; m != NULL; m = m->Next) {
        enum weakness w;

        if (m->Type & MULTIPLE_MATCH) {
            w = W_REPEAT;
        } else {
            switch (m->Type) {
            case BRUTE_MATCH:      w = W_SHORT; break;
            case DICTIONARY_MATCH:
            case DICT_LEET_MATCH:
            case USER_MATCH:
            case USER_LEET_MATCH:  w = W_DICT; break;
            case REPEATS_MATCH:    w = W_REPEAT; break;
            case SEQUENCE_MATCH:   w = W_SEQ; break;
            case SPATIAL_MATCH:    w = W_SPATIAL; break;
            case DATE_MATCH:
            case YEAR_MATCH:       w = W_DATE; break;
            default:               continue; /* NON_MATCH, LONG_PWD_MATCH */
            }
        }
        cover[w] += m->Length;
    }
    if (chars < SHORT_CHARS)
        return W_SHORT;
    for (int w = W_DICT; w < W_COUNT; w++)
        if (cover[w] > cover[best])
            best = (enum weakness)w;
    return best;
}

/*
 * Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF),
 * with no C0 or C1 control characters and no DEL. *chars gets the number of
 * code points. 1 when acceptable.
 */
static int valid_text(const unsigned char *s, size_t len, size_t *chars,
                      const char **why)
{
    size_t i = 0, n = 0;

    while (i < len) {
        unsigned c = s[i];
        uint32_t cp;
        size_t extra;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                *why = "it contains a control character (a newline, tab or similar)";
                return 0;
            }
            i++;
            n++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            goto bad;
        }
        if (len - i <= extra)
            goto bad;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000)
            || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            goto bad;
        if (cp >= 0x80 && cp <= 0x9f) {
            *why = "it contains a control character (a newline, tab or similar)";
            return 0;
        }
        i += extra + 1;
        n++;
    }
    *chars = n;
    return 1;
bad:
    *why = "it is not valid UTF-8 text";
    return 0;
}

authcert_status authcert_password_check_strength(const char *password,
                                                 double *bits)
{
    ZxcMatch_t *info = NULL;
    const char *why = NULL;
    size_t len, chars = 0;
    double est;

    if (bits != NULL)
        *bits = 0.0;
    if (password == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "no password given");
    len = strnlen(password, AUTHCERT_PASSWORD_MAX_LEN + 1);
    if (len == 0)
        return authcert_fail(AUTHCERT_E_WEAK,
                             "password too weak: it is empty, at least %d bits needed",
                             (int)AUTHCERT_PASSWORD_MIN_BITS);
    if (len > AUTHCERT_PASSWORD_MAX_LEN)
        return authcert_fail(AUTHCERT_E_WEAK,
                             "password refused: longer than %d bytes",
                             AUTHCERT_PASSWORD_MAX_LEN);
    if (!valid_text((const unsigned char *)password, len, &chars, &why))
        return authcert_fail(AUTHCERT_E_WEAK, "password refused: %s", why);

    est = ZxcvbnMatch(password, user_dict, &info);
    if (bits != NULL)
        *bits = est;
    if (est >= AUTHCERT_PASSWORD_MIN_BITS) {
        ZxcvbnFreeInfo(info);
        return AUTHCERT_OK;
    }
    why = weakness_text[dominant_weakness(info, chars)];
    ZxcvbnFreeInfo(info);
    /* Truncated, so that 59.7 never reads as "60 bits, at least 60 needed". */
    return authcert_fail(AUTHCERT_E_WEAK,
                         "password too weak: estimated %d bits, at least %d needed (%s)",
                         (int)est, (int)AUTHCERT_PASSWORD_MIN_BITS, why);
}

/* ------------------------------------------------------------------ scrypt */

#define SCRYPT_LOG2N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SALT_LEN 16
#define HASH_LEN 32
#define B64_LEN(n) (4 * (((n) + 2) / 3))

/*
 * Bounds on what verify will compute, so that a doctored store cannot make
 * it allocate gigabytes or run for minutes: at most 256 MiB and 16 times
 * the work of our own parameters.
 */
#define SCRYPT_MAX_MEM (256u * 1024 * 1024)
#define SCRYPT_MAX_WORK ((uint64_t)16 * SCRYPT_R * SCRYPT_P << SCRYPT_LOG2N)

/* Longest encoding verify looks at: "scrypt$20$32$16$" plus the two fields. */
#define ENCODED_MAX (sizeof "scrypt$20$32$16$$" - 1 + B64_LEN(SALT_LEN) + B64_LEN(HASH_LEN))

struct scrypt_params {
    unsigned log2n, r, p;
};

/* The derived key of password under sp and salt, into out[HASH_LEN]. */
static authcert_status scrypt_derive(const char *password,
                                     const struct scrypt_params *sp,
                                     const unsigned char *salt,
                                     unsigned char *out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[7], *p = params;
    uint64_t n = (uint64_t)1 << sp->log2n;
    uint32_t r = sp->r, par = sp->p;
    /* OpenSSL needs 128*r*(N+2) for V plus 128*r*p for B; a page of slack. */
    uint64_t maxmem = 128 * (uint64_t)r * (n + 2 + par) + 4096;

    GUARD_OSSL_PTR(kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL), "scrypt: fetch");
    GUARD_OSSL_PTR(kctx = EVP_KDF_CTX_new(kdf), "scrypt: new context");
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                             (void *)password, strlen(password));
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                             (void *)salt, SALT_LEN);
    *p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    *p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    *p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par);
    *p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    *p = OSSL_PARAM_construct_end();
    GUARD_OSSL(EVP_KDF_derive(kctx, out, HASH_LEN, params), "scrypt: derive");
    rc = AUTHCERT_OK;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return rc;
}

authcert_status authcert_password_hash(const char *password, char **encoded)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    static const struct scrypt_params sp = {SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P};
    unsigned char salt[SALT_LEN], key[HASH_LEN];
    char salt_b64[B64_LEN(SALT_LEN) + 1], key_b64[B64_LEN(HASH_LEN) + 1];
    char *buf = NULL;
    int len;

    if (encoded != NULL)
        *encoded = NULL;
    if (encoded == NULL || password == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "password hash: no password or output");
    if (strnlen(password, AUTHCERT_PASSWORD_MAX_LEN + 1) > AUTHCERT_PASSWORD_MAX_LEN)
        return authcert_fail(AUTHCERT_E_USAGE, "password longer than %d bytes",
                             AUTHCERT_PASSWORD_MAX_LEN);
    GUARD_OSSL(RAND_bytes(salt, sizeof salt), "password salt");
    GUARD(scrypt_derive(password, &sp, salt, key));
    EVP_EncodeBlock((unsigned char *)salt_b64, salt, sizeof salt);
    EVP_EncodeBlock((unsigned char *)key_b64, key, sizeof key);
    len = snprintf(NULL, 0, "scrypt$%u$%u$%u$%s$%s", sp.log2n, sp.r, sp.p,
                   salt_b64, key_b64);
    GUARD_ALLOC(buf = malloc((size_t)len + 1));
    snprintf(buf, (size_t)len + 1, "scrypt$%u$%u$%u$%s$%s", sp.log2n, sp.r,
             sp.p, salt_b64, key_b64);
    *encoded = buf;
    rc = AUTHCERT_OK;
out:
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(key_b64, sizeof key_b64);
    return rc;
}

/* A decimal in [lo, hi] written without sign, spaces or leading zeros. */
static int parse_uint(const char *s, size_t len, unsigned lo, unsigned hi,
                      unsigned *v)
{
    unsigned x = 0;

    if (len == 0 || len > 2 || (len > 1 && s[0] == '0'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    if (x < lo || x > hi)
        return 0;
    *v = x;
    return 1;
}

/*
 * Exactly n bytes from their canonical, padded base64 (what EVP_EncodeBlock
 * writes): anything EVP_DecodeBlock would also tolerate, such as spaces or
 * stray low bits, is refused by encoding the result again and comparing.
 */
static int parse_b64(const char *s, size_t len, unsigned char *out, size_t n)
{
    unsigned char raw[B64_LEN(HASH_LEN)];
    char again[B64_LEN(HASH_LEN) + 1];
    int ok;

    if (len != B64_LEN(n) || n > HASH_LEN)
        return 0;
    if (EVP_DecodeBlock(raw, (const unsigned char *)s, (int)len) < (int)n)
        return 0;
    EVP_EncodeBlock((unsigned char *)again, raw, (int)n);
    ok = memcmp(again, s, len) == 0;
    if (ok)
        memcpy(out, raw, n);
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(again, sizeof again);
    return ok;
}

authcert_status authcert_password_verify(const char *password,
                                         const char *encoded)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    struct scrypt_params sp;
    unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
    const char *field[6];
    size_t flen[6], len, nf = 0;
    const char *s;

    if (password == NULL || encoded == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "password verify: no password or hash");
    len = strnlen(encoded, ENCODED_MAX + 1);
    if (len > ENCODED_MAX)
        return authcert_fail(AUTHCERT_E_CORRUPT, "password hash: too long");

    /* Split on '$' into exactly six fields. */
    s = encoded;
    for (;;) {
        const char *d = strchr(s, '$');
        if (nf == 6)
            return authcert_fail(AUTHCERT_E_CORRUPT, "password hash: too many fields");
        field[nf] = s;
        flen[nf] = d != NULL ? (size_t)(d - s) : strlen(s);
        nf++;
        if (d == NULL)
            break;
        s = d + 1;
    }
    if (nf != 6)
        return authcert_fail(AUTHCERT_E_CORRUPT,
                             "password hash: %zu fields, want 6", nf);
    if (flen[0] != 6 || memcmp(field[0], "scrypt", 6) != 0)
        return authcert_fail(AUTHCERT_E_CORRUPT, "password hash: not scrypt");
    if (!parse_uint(field[1], flen[1], 10, 20, &sp.log2n)
        || !parse_uint(field[2], flen[2], 1, 32, &sp.r)
        || !parse_uint(field[3], flen[3], 1, 16, &sp.p))
        return authcert_fail(AUTHCERT_E_CORRUPT,
                             "password hash: scrypt parameters out of range");
    if (((uint64_t)128 * sp.r << sp.log2n) > SCRYPT_MAX_MEM
        || ((uint64_t)sp.r * sp.p << sp.log2n) > SCRYPT_MAX_WORK)
        return authcert_fail(AUTHCERT_E_CORRUPT,
                             "password hash: scrypt parameters too costly");
    if (!parse_b64(field[4], flen[4], salt, sizeof salt))
        return authcert_fail(AUTHCERT_E_CORRUPT, "password hash: bad salt");
    if (!parse_b64(field[5], flen[5], want, sizeof want))
        return authcert_fail(AUTHCERT_E_CORRUPT, "password hash: bad hash");

    /* A password too long to have been hashed cannot match. */
    if (strnlen(password, AUTHCERT_PASSWORD_MAX_LEN + 1) > AUTHCERT_PASSWORD_MAX_LEN)
        FAIL(AUTHCERT_E_AUTH, "wrong password");
    GUARD(scrypt_derive(password, &sp, salt, got));
    if (CRYPTO_memcmp(got, want, HASH_LEN) != 0)
        FAIL(AUTHCERT_E_AUTH, "wrong password");
    rc = AUTHCERT_OK;
out:
    OPENSSL_cleanse(got, sizeof got);
    OPENSSL_cleanse(want, sizeof want);
    return rc;
}

/* ----------------------------------------------------------------- secrets */

void authcert_secret_free(char *secret)
{
    if (secret != NULL)
        OPENSSL_clear_free(secret, strlen(secret) + 1);
}

char *authcert_secret_dup(const char *secret)
{
    size_t len;
    char *copy;

    if (secret == NULL)
        return NULL;
    len = strlen(secret);
    copy = OPENSSL_malloc(len + 1);
    if (copy != NULL)
        memcpy(copy, secret, len + 1);
    return copy;
}
