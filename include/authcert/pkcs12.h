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
 * PKCS#12 cannot tell it from a wrong password.
 * Caller owns *out. Errors: AUTHCERT_E_AUTH (wrong password: the MAC does
 * not verify), AUTHCERT_E_CORRUPT (not PKCS#12, truncated, no key, no
 * certificate, key does not match the certificate, unsupported key type).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_pkcs12_import(const uint8_t *der, size_t len, const char *password,
                       authcert_cert **out);

#ifdef __cplusplus
}
#endif
#endif
