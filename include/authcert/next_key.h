/*
 * authcert/next_key.h — pre-rotation's successor key, sealed.
 *
 * The key the current certificate commits to (authcert/commitment.h) is
 * made at the same time as that certificate and kept sealed under a
 * recovery secret that is not the store password: the store password, or a
 * copy of the store, never yields it. Its file form, which is also what
 * `authcert --next-key export` writes, is two PEM blocks:
 *
 *   -----BEGIN PUBLIC KEY-----            the SubjectPublicKeyInfo (its
 *                                         SHA-256 is the commitment)
 *   -----BEGIN ENCRYPTED PRIVATE KEY----- PKCS#8, PBES2: scrypt and AES-256-CBC
 *
 * so that `openssl pkey -in FILE` reads the key with the recovery secret,
 * and anyone can check which commitment a file answers without it.
 */
#ifndef AUTHCERT_NEXT_KEY_H
#define AUTHCERT_NEXT_KEY_H

#include <stddef.h>

#include <openssl/evp.h>

#include "authcert/cert.h"
#include "authcert/commitment.h"
#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct authcert_next_key authcert_next_key;

/* Largest file form read (an RSA-4096 key sealed is about 3.5 KiB). */
#define AUTHCERT_NEXT_KEY_MAX (16u * 1024)

/*
 * A fresh key of type, sealed under secret. The private key exists in
 * memory only for the sealing and is wiped before this returns.
 * Errors: AUTHCERT_E_USAGE (an empty secret, an unknown type), AUTHCERT_E_CRYPTO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_next_key_generate(authcert_key_type type, const char *secret, authcert_next_key **out);

/* The file form back. Errors: AUTHCERT_E_CORRUPT (not the two blocks above). */
AUTHCERT_MUST_CHECK authcert_status
authcert_next_key_from_pem(const char *pem, size_t len, authcert_next_key **out);

/* The file form; caller frees *pem (it holds no secret in clear). */
AUTHCERT_MUST_CHECK authcert_status
authcert_next_key_to_pem(const authcert_next_key *k, char **pem, size_t *len);

/* SHA-256 of its SubjectPublicKeyInfo: what a certificate commits to. */
const char *authcert_next_key_hash(const authcert_next_key *k);
authcert_key_type authcert_next_key_type(const authcert_next_key *k);

/*
 * The private key, for the certificate that promotes it. Errors:
 * AUTHCERT_E_AUTH (the secret is wrong), AUTHCERT_E_CORRUPT (it decrypts
 * to a key that is not the one named by the public block).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_next_key_unseal(const authcert_next_key *k, const char *secret, EVP_PKEY **out);

void authcert_next_key_free(authcert_next_key *k);

#ifdef __cplusplus
}
#endif

#endif
