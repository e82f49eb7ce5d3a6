/*
 * authcert/pkcs12.h — certificates in and out of PKCS#12 (.pfx) files.
 */
#ifndef AUTHCERT_PKCS12_H
#define AUTHCERT_PKCS12_H

#include <stddef.h>
#include <stdint.h>

#include "authcert/cert.h"
#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Caps before cost: a PKCS#12 is opened only if every key derivation it
 * asks for (the MAC, each encrypted safe, each encrypted key) has at most
 * AUTHCERT_PKCS12_MAX_ITER iterations, and all of them together at most
 * AUTHCERT_PKCS12_MAX_TOTAL_ITER; the counts are read before any key is
 * derived. OpenSSL writes 2048, Windows 2000, authcert_pkcs12_export
 * PKCS12_DEFAULT_ITER (2048). 10,000,000 PBKDF2-SHA-256 rounds take about
 * 2 s of one core (0.22 us a round where this was measured), so a file is
 * refused rather than cost more than some seconds.
 */
#define AUTHCERT_PKCS12_MAX_ITER 10000000u
#define AUTHCERT_PKCS12_MAX_TOTAL_ITER (3u * AUTHCERT_PKCS12_MAX_ITER)

/*
 * c (which must have its key) as a PKCS#12 encrypted with password:
 * PBES2 / PBKDF2 / AES-256-CBC for key and certificate, HMAC-SHA-256 MAC.
 * The friendly name is the thumbprint. password "" is the empty password;
 * NULL is refused (it would mean no encryption).
 * Caller frees *der with OPENSSL_free. Errors: AUTHCERT_E_USAGE (no key,
 * NULL password), AUTHCERT_E_CRYPTO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_pkcs12_export(const authcert_cert *c, const char *password,
                       uint8_t **der, size_t *len);

/*
 * The certificate and key inside a PKCS#12: modern (PBES2/AES) and legacy
 * (RC2-40, 3DES as Windows exports them; needs authcert_init()). When the
 * file holds chain certificates too, the one matching the key is taken.
 * password NULL and "" are the same here: like OpenSSL, both "no password"
 * and "empty password" are tried, since exporters disagree on which "" means.
 * A damaged file whose MAC no longer verifies reads as AUTHCERT_E_AUTH:
 * PKCS#12 cannot tell it from a wrong password. Iteration counts past the
 * caps above, and PBES2 with a key derivation other than PBKDF2 (scrypt),
 * are AUTHCERT_E_CORRUPT, refused before any key is derived.
 * Caller owns *out. Errors: AUTHCERT_E_AUTH (wrong password: the MAC does
 * not verify), AUTHCERT_E_CORRUPT (not PKCS#12, truncated, no key, no
 * certificate, key does not match the certificate, unsupported key type,
 * iteration counts past the caps).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_pkcs12_import(const uint8_t *der, size_t len, const char *password,
                       authcert_cert **out);

#ifdef __cplusplus
}
#endif
#endif
