/*
 * authcert/cert.h — a server authentication certificate and its key.
 *
 * An authcert_cert is a self-signed X.509 v3 certificate, with its private
 * key when the holder has one (the server) and without (an agent, or a
 * certificate read from an agent certificate file). It is named by its
 * thumbprint: SHA-256 of the DER, 64 lowercase hex characters.
 */
#ifndef AUTHCERT_CERT_H
#define AUTHCERT_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum authcert_key_type {
    AUTHCERT_KEY_UNKNOWN = 0,
    AUTHCERT_KEY_ED25519,
    AUTHCERT_KEY_P256,
    AUTHCERT_KEY_RSA2048,
    AUTHCERT_KEY_RSA3072,
    AUTHCERT_KEY_RSA4096,
} authcert_key_type;

/*
 * ECDSA P-256: the fastest signer among the secure choices on the target
 * machine (bench/README.md has the figures), and ES256 is what every JOSE
 * library verifies.
 */
#define AUTHCERT_KEY_DEFAULT AUTHCERT_KEY_P256
#define AUTHCERT_DEFAULT_DAYS 1095 /* 3 years */
#define AUTHCERT_DEFAULT_SUBJECT "CN=authcert server authentication"
#define AUTHCERT_THUMBPRINT_LEN 64

typedef struct authcert_cert authcert_cert;

typedef struct authcert_cert_params {
    authcert_key_type type;  /* AUTHCERT_KEY_UNKNOWN means the default */
    int days;                /* validity from now; 0 means the default */
    const char *subject;     /* "CN=...,O=..." (OpenSSL oneline or comma form); NULL: default */
    /*
     * A TLS certificate (authcert --tls-cert new, an agent's listener):
     * extended key usage serverAuth and clientAuth, and these names as
     * subjectAltName (DNS names, IPv4/IPv6 addresses; NULL-terminated
     * lists, NULL for none). Not for the authentication certificate.
     */
    bool tls;
    const char *const *dns_names;
    const char *const *ip_addresses;
    /*
     * Pre-rotation (authcert/commitment.h): the SHA-256 of the successor
     * key's SubjectPublicKeyInfo, 64 lowercase hex, or NULL for none.
     */
    const char *commit_to;
} authcert_cert_params;
/*
 * Subject forms: "/O=y/CN=x" lists RDNs in encoding order (as `openssl req
 * -subj`); "CN=x,O=y" is RFC 4514 order (most specific first, as .NET and
 * Windows write it). Both give the same certificate, shown by get_info as
 * "CN=x,O=y". A backslash escapes the next character. days: 1..36500.
 */

/* What --status shows of a certificate. Strings point into the cert. */
typedef struct authcert_cert_info {
    const char *thumbprint;  /* 64 hex */
    char serial[64];         /* hex, uppercase, no separators */
    char subject[256];       /* RFC 2253 form */
    authcert_key_type type;
    time_t not_before;
    time_t not_after;
    bool has_key;
} authcert_cert_info;

/* "ed25519", "p256", "rsa2048", ... and back (AUTHCERT_KEY_UNKNOWN if none). */
const char *authcert_key_type_name(authcert_key_type t);
authcert_key_type authcert_key_type_parse(const char *name);
/* Which of our key types pk is; AUTHCERT_KEY_UNKNOWN for any other (P-384, RSA-1024). */
authcert_key_type authcert_key_type_of(const EVP_PKEY *pk);
/* A new key of type (the successor of pre-rotation, a certificate's). Caller frees. */
AUTHCERT_MUST_CHECK authcert_status authcert_key_generate(authcert_key_type type, EVP_PKEY **out);

/*
 * A new key of the given type and a self-signed certificate for it: random
 * positive 128-bit serial, subject = issuer, subject key identifier, key
 * usage digitalSignature (critical), basic constraints CA:FALSE.
 * Caller owns *out. Errors: AUTHCERT_E_USAGE (bad subject or days),
 * AUTHCERT_E_CRYPTO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_generate(const authcert_cert_params *params, authcert_cert **out);

/*
 * A self-signed certificate for a key the caller already has (an agent's
 * own key, for its listener's TLS): as authcert_cert_generate otherwise,
 * params->type ignored. *out holds a reference to key. Errors as above.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_generate_for(const authcert_cert_params *params, EVP_PKEY *key,
                           authcert_cert **out);

/*
 * A certificate without key from DER (the agent certificate file format).
 * Errors: AUTHCERT_E_CORRUPT (not a certificate, trailing bytes, not DER,
 * unsupported key type).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_from_der(const uint8_t *der, size_t len, authcert_cert **out);

/*
 * A certificate and key from PEM text (certificate, then a PKCS#8 key; the
 * store's on-disk form). key_pem may be NULL. Errors: AUTHCERT_E_CORRUPT,
 * including when the key does not match the certificate.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_from_pem(const char *cert_pem, size_t cert_len,
                       const char *key_pem, size_t key_len, authcert_cert **out);

/*
 * Take ownership of an X509 and (optional) EVP_PKEY, checking that they
 * match and that the key type is one we support. On failure both are freed.
 * Errors: AUTHCERT_E_CORRUPT ("key does not match certificate", "unsupported
 * key type" — RSA other than 2048/3072/4096, curves other than P-256).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_adopt(X509 *x509, EVP_PKEY *pkey, authcert_cert **out);

/*
 * PEM encodings for the store (the key as unencrypted PKCS#8); the caller
 * frees with OPENSSL_clear_free. Errors: AUTHCERT_E_USAGE (key_to_pem of a
 * certificate without key), AUTHCERT_E_CRYPTO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_to_pem(const authcert_cert *c, char **pem, size_t *len);
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_key_to_pem(const authcert_cert *c, char **pem, size_t *len);

void authcert_cert_free(authcert_cert *c);

/* Another reference to the same certificate (cheap; both must be freed). */
authcert_cert *authcert_cert_ref(authcert_cert *c);

const char *authcert_cert_thumbprint(const authcert_cert *c);
/* The DER, owned by c. */
const uint8_t *authcert_cert_der(const authcert_cert *c, size_t *len);
void authcert_cert_get_info(const authcert_cert *c, authcert_cert_info *info);
bool authcert_cert_has_key(const authcert_cert *c);
authcert_key_type authcert_cert_key_type(const authcert_cert *c);

/* Borrowed OpenSSL handles (for signing and PKCS#12); owned by c. */
X509 *authcert_cert_x509(const authcert_cert *c);
EVP_PKEY *authcert_cert_pkey(const authcert_cert *c);    /* NULL without key */
EVP_PKEY *authcert_cert_pubkey(const authcert_cert *c);  /* always set */

/* Thumbprint of arbitrary DER into out[65]. */
void authcert_thumbprint_of(const uint8_t *der, size_t len, char out[65]);

/* True when s is 64 lowercase hex characters. */
bool authcert_thumbprint_valid(const char *s);

#ifdef __cplusplus
}
#endif
#endif
