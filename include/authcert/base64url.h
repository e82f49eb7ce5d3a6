/*
 * authcert/base64url.h — base64url without padding (RFC 4648 section 5), as
 * JWS (RFC 7515 section 2) uses it.
 *
 * The decoder is strict because its input comes from the network and a token
 * must have exactly one spelling: it refuses padding ('='), whitespace, any
 * character outside [A-Za-z0-9_-], a length of 1 modulo 4, and non-zero
 * trailing bits in the last character ("Zh" is not a second spelling of "Zg").
 * The codec underneath is OpenSSL's (EVP_EncodeBlock / EVP_DecodeBlock).
 */
#ifndef AUTHCERT_BASE64URL_H
#define AUTHCERT_BASE64URL_H

#include <stddef.h>
#include <stdint.h>

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest input either function takes (OpenSSL's codec counts in int). */
#define AUTHCERT_B64URL_MAX_IN ((size_t)1 << 28)

/* Characters of the encoding of n bytes, without padding and without NUL. */
size_t authcert_b64url_encoded_len(size_t n);

/*
 * Buffer size authcert_b64url_encode_to needs for n bytes: the padded
 * encoding plus NUL (OpenSSL writes the padding before we strip it).
 */
#define AUTHCERT_B64URL_BUFSIZE(n) (4 * (((size_t)(n) + 2) / 3) + 1)

/*
 * Encode len bytes into out (at least AUTHCERT_B64URL_BUFSIZE(len) bytes),
 * NUL-terminated. Returns the number of characters written (without NUL).
 * For the hot path: no allocation. len must be <= AUTHCERT_B64URL_MAX_IN
 * (not checked here; authcert_b64url_encode checks).
 */
size_t authcert_b64url_encode_to(const uint8_t *in, size_t len, char *out);

/*
 * Encode into a new NUL-terminated string; caller frees *out with free().
 * Errors: AUTHCERT_E_USAGE (too long), AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_b64url_encode(const uint8_t *in, size_t len, char **out);

/*
 * Decode len characters of in (NUL not needed) into a new buffer; caller
 * frees *out with free() (it is NUL-terminated past *outlen, so decoded JSON
 * can be used as a string). Errors: AUTHCERT_E_CORRUPT with the offending
 * position in the detail, AUTHCERT_E_USAGE (too long), AUTHCERT_E_NOMEM.
 * On failure *out is NULL and *outlen 0.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *outlen);

#ifdef __cplusplus
}
#endif
#endif
