/*
 * base64url without padding, on top of OpenSSL's standard base64 codec: we
 * translate the two differing characters and handle the padding ourselves,
 * so the bit-twiddling stays OpenSSL's and only the strictness is ours.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "authcert/base64url.h"
#include "internal.h"

size_t authcert_b64url_encoded_len(size_t n)
{
    return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t authcert_b64url_encode_to(const uint8_t *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    size_t w = 0;

    for (int i = 0; i < n; i++) {
        char ch = out[i];
        if (ch == '=')
            break; /* padding only ever ends the output */
        out[w++] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    }
    out[w] = '\0';
    return w;
}

authcert_status authcert_b64url_encode(const uint8_t *in, size_t len, char **out)
{
    *out = NULL;
    if (len > AUTHCERT_B64URL_MAX_IN)
        return authcert_fail(AUTHCERT_E_USAGE, "base64url: %zu bytes is too long", len);
    char *buf = malloc(AUTHCERT_B64URL_BUFSIZE(len));
    if (buf == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    authcert_b64url_encode_to(in, len, buf);
    *out = buf;
    return AUTHCERT_OK;
}

static int b64url_char_ok(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

authcert_status authcert_b64url_decode(const char *in, size_t len, uint8_t **out,
                                       size_t *outlen)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char *std = NULL;
    uint8_t *bin = NULL;

    *out = NULL;
    *outlen = 0;
    if (len > AUTHCERT_B64URL_MAX_IN)
        FAIL(AUTHCERT_E_USAGE, "base64url: %zu characters is too long", len);
    if (len % 4 == 1)
        FAIL(AUTHCERT_E_CORRUPT, "base64url: length %zu is impossible", len);

    /*
     * Pad with 'A' (zero bits) rather than '=': OpenSSL's EVP_DecodeBlock
     * counts '=' as zero bytes anyway, and with 'A' the bits left over in
     * the last real character land in the first padding byte, where the
     * canonical check below can see them.
     */
    size_t padded = (len + 3) / 4 * 4;
    GUARD_ALLOC(std = malloc(padded + 1));
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!b64url_char_ok(ch))
            FAIL(AUTHCERT_E_CORRUPT, "base64url: invalid character 0x%02x at %zu", ch, i);
        std[i] = ch == '-' ? '+' : ch == '_' ? '/' : (char)ch;
    }
    memset(std + len, 'A', padded - len);
    std[padded] = '\0';

    GUARD_ALLOC(bin = malloc(padded / 4 * 3 + 1));
    int n = EVP_DecodeBlock(bin, (const unsigned char *)std, (int)padded);
    if (n < 0 || (size_t)n != padded / 4 * 3)
        FAIL(AUTHCERT_E_CORRUPT, "base64url: OpenSSL refused the input");
    size_t real = len * 3 / 4;
    if (len % 4 != 0 && bin[real] != 0)
        FAIL(AUTHCERT_E_CORRUPT, "base64url: non-zero trailing bits at %zu", len - 1);
    bin[real] = '\0';

    *out = bin;
    *outlen = real;
    bin = NULL;
    rc = AUTHCERT_OK;
out:
    free(std);
    free(bin);
    return rc;
}
