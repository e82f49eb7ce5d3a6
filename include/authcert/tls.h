/*
 * authcert/tls.h — what TLS between authcertd and its agents needs of our
 * own keys: public-key pins, the key files of agents and of the server's TLS
 * certificate, checked before use.
 *
 * A pin names a public key, not a certificate: "sha256//" and the base64 of
 * the SHA-256 of its DER SubjectPublicKeyInfo (RFC 7469's pin-sha256, in the
 * form curl's --pinnedpubkey takes), so a certificate renewed on the same
 * key keeps its pin. TLS itself is libmicrohttpd's (GnuTLS) on the serving
 * side and libcurl's (OpenSSL) on the calling side; every key and
 * certificate here is made and checked with OpenSSL.
 */
#ifndef AUTHCERT_TLS_H
#define AUTHCERT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/types.h>

#include "authcert/cert.h"
#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * What both TLS servers (authcertd, an agent's listener: libmicrohttpd's
 * GnuTLS) accept: TLS 1.2 and 1.3, ECDHE only (forward secrecy), AEAD only.
 */
#define AUTHCERT_TLS_GNUTLS_PRIORITIES                                                  \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:" \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"
/* The same for the clients (libcurl with OpenSSL): TLS 1.2's suites; 1.3's are all AEAD. */
#define AUTHCERT_TLS_OPENSSL_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

#define AUTHCERT_PIN_PREFIX "sha256//"
#define AUTHCERT_PIN_LEN (8 + 44) /* the prefix and 44 base64 characters */

/* The pin of a public (or private) key into out. Errors: AUTHCERT_E_CRYPTO. */
AUTHCERT_MUST_CHECK authcert_status
authcert_key_pin(EVP_PKEY *key, char out[AUTHCERT_PIN_LEN + 1]);

/* The pin of the leaf certificate in PEM or DER text. Errors: AUTHCERT_E_CORRUPT. */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_pin(const void *cert, size_t len, char out[AUTHCERT_PIN_LEN + 1]);

/* True when s is a well-formed pin. */
bool authcert_pin_valid(const char *s);

/*
 * A private key file of our own (an agent's key, a TLS key): read it when
 * it exists, else make a key of the given type and write it, PKCS#8 PEM,
 * 0600, atomically (it never existed half-written). An existing file must
 * be a regular file (not a link), owned by the caller or root, and neither
 * readable nor writable by group or others. *created says which happened.
 * Caller owns *out. Errors: AUTHCERT_E_PERM (owner or mode: the detail
 * names the file and the fix), AUTHCERT_E_CORRUPT (not a key, or a type
 * we do not support), AUTHCERT_E_IO, AUTHCERT_E_USAGE (type).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_key_file_load_or_create(const char *path, authcert_key_type type, EVP_PKEY **out,
                                 bool *created);

/* The same for a key that must exist. Errors as above, AUTHCERT_E_NOTFOUND. */
AUTHCERT_MUST_CHECK authcert_status
authcert_key_file_load(const char *path, EVP_PKEY **out);

/* A server's TLS certificate and key as loaded and checked. */
typedef struct authcert_tls_files {
    char *cert_pem;    /* the chain as read, leaf first */
    size_t cert_len;
    char *key_pem;     /* the key as read; wiped and freed by _clear */
    size_t key_len;
    char pin[AUTHCERT_PIN_LEN + 1];
    char subject[256]; /* the leaf's, RFC 2253 */
    time_t not_before, not_after;
    size_t chain_len;  /* certificates in cert_pem */
} authcert_tls_files;

/*
 * Read and check a TLS certificate file (PEM, the leaf first, then its
 * chain) and its key file (PEM): the key file as authcert_key_file_load
 * requires it; the key matches the leaf; the leaf is valid at now (no
 * leeway: a server must not start on an expired certificate); its key is
 * P-256, P-384, Ed25519 or RSA of 2048 bits or more. Errors, each with a
 * detail naming the file: AUTHCERT_E_NOTFOUND, AUTHCERT_E_PERM (the key
 * file's owner or mode), AUTHCERT_E_CORRUPT (not PEM, no certificate, the
 * key does not match), AUTHCERT_E_POLICY (expired, not yet valid, a key
 * too weak), AUTHCERT_E_IO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_tls_files_load(const char *cert_path, const char *key_path, time_t now,
                        authcert_tls_files *out);
void authcert_tls_files_clear(authcert_tls_files *f);

/*
 * The subjectAltName of the leaf certificate in cert (PEM or DER): its DNS
 * names and IP addresses as two NULL-terminated lists (a renewal keeps the
 * names). Free both with authcert_names_free. Errors: AUTHCERT_E_CORRUPT.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_alt_names(const void *cert, size_t len, char ***dns, char ***ips);
void authcert_names_free(char **names);

#ifdef __cplusplus
}
#endif
#endif
