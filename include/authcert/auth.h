/*
 * authcert/auth.h — how an agent proves who it is (protocol v2,
 * docs/protocol.md "Agent identity"), in the exact bytes both sides compute:
 *
 * - the **enrollment proof**: the agent signs, with its own key, the text
 *   authcert_enroll_proof_text builds from its id, its key's pin, the
 *   server's id, a nonce from the server and the SHA-256 of the token it
 *   presents; the server checks it with the public key the agent sent (one
 *   asymmetric operation, once per agent);
 * - the **request MAC** on every check-in and result afterwards (no
 *   asymmetric operation on the steady path): HMAC-SHA256 with a per-agent
 *   key derived from the server secret by HKDF over the agent id and a key
 *   epoch, over the method, the path, the agent id, the epoch, the server
 *   id, a counter and the SHA-256 of the body;
 * - **nonces** any node of a fleet can check without shared state (a time
 *   and random bytes, MACed with a key derived from the server secret);
 * - **enrollment tokens**: "ID.SECRET", of which the registry keeps the id
 *   and the SHA-256 of the secret.
 *
 * OpenSSL does every primitive; MACs are compared in constant time.
 */
#ifndef AUTHCERT_AUTH_H
#define AUTHCERT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_SECRET_LEN 32   /* the server secret (the certificate store keeps it) */
#define AUTHCERT_MAC_KEY_LEN 32  /* a derived key */
#define AUTHCERT_MAC_B64_LEN 43  /* base64url of 32 bytes, no padding */
#define AUTHCERT_NONCE_B64_LEN 54 /* base64url of 40 bytes: time(8) random(16) tag(16) */
#define AUTHCERT_NONCE_MAX_AGE 300 /* seconds a nonce stays good */
#define AUTHCERT_TOKEN_SECRET_B64_LEN 43 /* 32 random bytes */
#define AUTHCERT_AUTH_SCHEME "AUTHCERT-V2"

/*
 * The server id agents bind at enrollment when none is configured:
 * "authcert-" and 16 hex characters derived (HKDF-SHA256, salt
 * "authcert-v2 server id", no info) from the server secret. Every node
 * serving the same store (-b/-r carry the secret) has the same one, and it
 * does not change with a host name.
 */
#define AUTHCERT_DERIVED_SERVER_ID_LEN 25
AUTHCERT_MUST_CHECK authcert_status
authcert_server_id_derive(const uint8_t secret[AUTHCERT_SECRET_LEN],
                          char id[AUTHCERT_DERIVED_SERVER_ID_LEN + 1]);

/*
 * The MAC key of one agent: HKDF-SHA256(secret, salt "authcert-v2 agent
 * MAC key", info agent_id NUL epoch-as-8-bytes-big-endian), 32 bytes.
 * Errors: AUTHCERT_E_CRYPTO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_agent_mac_key(const uint8_t secret[AUTHCERT_SECRET_LEN], const char *agent_id,
                       uint64_t epoch, uint8_t key[AUTHCERT_MAC_KEY_LEN]);

/*
 * The same keys, for a server that derives one per request: HKDF fetched
 * once, and contexts with the secret, salt and digest set kept for reuse
 * (fetching HKDF and SHA-256 and parsing their parameters each time was a
 * twentieth of authcertd's CPU in a roll-over). Safe to share between
 * threads; freeing it wipes the secret it holds. Errors: AUTHCERT_E_CRYPTO,
 * AUTHCERT_E_USAGE (an agent id of 0 or over 128 bytes).
 */
typedef struct authcert_mac_kdf authcert_mac_kdf;

AUTHCERT_MUST_CHECK authcert_status
authcert_mac_kdf_new(const uint8_t secret[AUTHCERT_SECRET_LEN], authcert_mac_kdf **out);
AUTHCERT_MUST_CHECK authcert_status
authcert_mac_kdf_key(const authcert_mac_kdf *kdf, const char *agent_id, uint64_t epoch,
                     uint8_t key[AUTHCERT_MAC_KEY_LEN]);
void authcert_mac_kdf_free(authcert_mac_kdf *kdf);

/* What a request MAC covers. */
typedef struct authcert_request_auth {
    const char *method;     /* "POST", or "PUSH-ANSWER" for an agent's answer to a push */
    const char *path;       /* "/v2/checkin"; a push answer: the token's jti */
    const char *agent_id;
    uint64_t epoch;         /* the key epoch the MAC key was derived for */
    const char *server_id;
    uint64_t counter;       /* strictly increasing per agent: microseconds of the agent's clock */
    const void *body;
    size_t body_len;
} authcert_request_auth;

/*
 * The text that is MACed, caller frees: "authcert-v2\n" METHOD "\n" PATH
 * "\n" AGENT_ID "\n" EPOCH "\n" SERVER_ID "\n" COUNTER "\n" and the
 * lowercase hex SHA-256 of the body, numbers in decimal, no trailing
 * newline. Every field must be visible ASCII (no newline can shift them).
 * Errors: AUTHCERT_E_USAGE, AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_request_mac_text(const authcert_request_auth *r, char **text);

/* base64url(HMAC-SHA256(key, that text)) into mac. */
AUTHCERT_MUST_CHECK authcert_status
authcert_request_mac(const uint8_t key[AUTHCERT_MAC_KEY_LEN], const authcert_request_auth *r,
                     char mac[AUTHCERT_MAC_B64_LEN + 1]);

/* The MAC of r under key is mac: recomputed, compared in constant time. */
bool authcert_request_mac_ok(const uint8_t key[AUTHCERT_MAC_KEY_LEN],
                             const authcert_request_auth *r, const char *mac);

/*
 * The Authorization header's value: AUTHCERT-V2 agent="ID", epoch=N,
 * counter=N, mac="B64". Parse refuses anything else (order fixed, no
 * duplicates, bounds checked). Errors: AUTHCERT_E_CORRUPT.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_auth_header_format(const char *agent_id, uint64_t epoch, uint64_t counter,
                            const char *mac, char *out, size_t size);
typedef struct authcert_auth_header {
    char agent_id[129];
    uint64_t epoch;
    uint64_t counter;
    char mac[AUTHCERT_MAC_B64_LEN + 1];
} authcert_auth_header;
AUTHCERT_MUST_CHECK authcert_status
authcert_auth_header_parse(const char *value, authcert_auth_header *out);

/*
 * A nonce for an enrollment, good for AUTHCERT_NONCE_MAX_AGE seconds on any
 * node that holds the same server secret. check: well-formed, its tag, not
 * older than max_age nor more than 60 s in the future. Errors (check):
 * AUTHCERT_E_AUTH (not ours, or too old).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_nonce_make(const uint8_t secret[AUTHCERT_SECRET_LEN], time_t now,
                    char nonce[AUTHCERT_NONCE_B64_LEN + 1]);
AUTHCERT_MUST_CHECK authcert_status
authcert_nonce_check(const uint8_t secret[AUTHCERT_SECRET_LEN], const char *nonce, time_t now,
                     unsigned max_age);

/*
 * The text an enrollment proof signs, caller frees: "authcert-v2 enroll\n"
 * AGENT_ID "\n" KEY_PIN "\n" SERVER_ID "\n" NONCE "\n" TOKEN_SHA256_HEX (64
 * zeros without a token), no trailing newline.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_enroll_proof_text(const char *agent_id, const char *key_pin, const char *server_id,
                           const char *nonce, const char *token_hash, char **text);

/*
 * The text both keys sign to rotate an enrolled agent's key, caller frees:
 * "authcert-v2 rotate\n" AGENT_ID "\n" OLD_PIN "\n" NEW_PIN "\n" SERVER_ID
 * "\n" COUNTER (the counter of the authenticated request that carries it).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_rotate_proof_text(const char *agent_id, const char *old_pin, const char *new_pin,
                           const char *server_id, uint64_t counter, char **text);

/*
 * Sign text with the agent's key (ECDSA P-256 with SHA-256, DER signature;
 * or Ed25519), base64url into *sig (caller frees). Errors: AUTHCERT_E_CRYPTO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_proof_sign(EVP_PKEY *key, const char *text, char **sig);

/*
 * Check a proof: spki is the agent's public key (base64url DER
 * SubjectPublicKeyInfo: P-256 or Ed25519 only), sig its signature of text.
 * pin receives the key's pin. Errors: AUTHCERT_E_CORRUPT (not a key we
 * take), AUTHCERT_E_AUTH (the signature does not verify).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_proof_verify(const char *spki, const char *text, const char *sig, char pin[53]);

/*
 * The pin of an agent key sent as base64url DER SubjectPublicKeyInfo
 * (P-256 or Ed25519). Errors: AUTHCERT_E_CORRUPT.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_spki_pin(const char *spki, char pin[53]);

/* The base64url DER SubjectPublicKeyInfo of key; caller frees. */
AUTHCERT_MUST_CHECK authcert_status
authcert_key_spki(EVP_PKEY *key, char **spki);

/*
 * A new enrollment token: id (12 base64url characters) and secret (43);
 * the token an operator hands out is "ID.SECRET". hash: the lowercase hex
 * SHA-256 of the secret, what the registry keeps.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_token_new(char id[13], char secret[AUTHCERT_TOKEN_SECRET_B64_LEN + 1]);
void authcert_token_hash(const char *secret, char hash[65]);
/* Split "ID.SECRET" (in place copies into id and secret). Errors: AUTHCERT_E_CORRUPT. */
AUTHCERT_MUST_CHECK authcert_status
authcert_token_split(const char *token, char id[33], char secret[AUTHCERT_TOKEN_SECRET_B64_LEN + 1]);

/* SHA-256 of data as 64 lowercase hex. */
void authcert_sha256_hex(const void *data, size_t len, char hex[65]);

#ifdef __cplusplus
}
#endif
#endif
