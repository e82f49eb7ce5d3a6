/*
 * authcert/commitment.h — pre-rotation: a certificate that names its successor.
 *
 * A certificate made by authcert -c carries a non-critical extension with
 * the SHA-256 of the SubjectPublicKeyInfo of the key that will succeed it
 * (docs/protocol.md, "Pre-rotation"). An agent that holds such a
 * certificate follows a key update only to a certificate for exactly that
 * key, signed by that key: whoever steals the current key can move no agent
 * anywhere but to a key the thief does not hold.
 *
 *   OID    2.25.43928483603551435612044611491830138667
 *          (a UUID arc: 210c5175-729f-4f1c-a6f9-4a728f5f872b)
 *   value  OCTET STRING (SIZE (32))  -- SHA-256 of the successor's DER SPKI
 *
 * Non-critical, so that every other reader (openssl x509, browsers, the
 * agents of an older release) still accepts the certificate and ignores it.
 */
#ifndef AUTHCERT_COMMITMENT_H
#define AUTHCERT_COMMITMENT_H

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "authcert/cert.h"
#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_COMMITMENT_OID "2.25.43928483603551435612044611491830138667"
#define AUTHCERT_SPKI_HASH_LEN 64 /* lowercase hex of SHA-256 */

/* SHA-256 of key's DER SubjectPublicKeyInfo, as lowercase hex, into out. */
AUTHCERT_MUST_CHECK authcert_status
authcert_spki_sha256(const EVP_PKEY *key, char out[AUTHCERT_SPKI_HASH_LEN + 1]);

/* Add the commitment to spki_hash (64 lowercase hex) to x, before it is signed. */
AUTHCERT_MUST_CHECK authcert_status
authcert_commitment_add(X509 *x, const char *spki_hash);

/*
 * The commitment c carries: *has false (and out "") when none. Errors:
 * AUTHCERT_E_CORRUPT when the extension is there but is not one OCTET
 * STRING of 32 bytes, is critical, or appears twice: a reader must then
 * refuse every successor rather than guess.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_commitment(const authcert_cert *c, bool *has,
                         char out[AUTHCERT_SPKI_HASH_LEN + 1]);

#ifdef __cplusplus
}
#endif

#endif
