/*
 * authcert/jws.h — signed commands: JWTs in JWS compact serialization
 * (RFC 7515, 7519). The replay cache the verifier uses is in replay.h.
 *
 * Profile (what we sign, and all that a verifier accepts):
 *   header  {"alg":A,"typ":"JWT","x5t#S256":base64url(SHA-256(cert DER))}
 *           A is dictated by the key of the certificate, never by the token:
 *             Ed25519 -> "EdDSA"   P-256 -> "ES256" (raw R||S, 64 bytes)
 *             RSA     -> "PS256"   (RSA-PSS, SHA-256, MGF1-SHA-256, salt 32)
 *           RSA keys sign and verify PS256 only, RS256 is refused: both the
 *           keys we generate and RSA keys imported from PFX files are ours to
 *           sign with, so nothing needs the older PKCS#1 v1.5 scheme, and one
 *           alg per key type leaves no room for a downgrade.
 *           "crit" is refused (we understand no extension); "typ", when
 *           present, must be "JWT".
 *   claims  "iss" server id, "aud" one string: an agent id or the broadcast
 *           audience AUTHCERT_JWS_BROADCAST ("*", not a valid agent id),
 *           "iat", "exp" (integers, seconds since the epoch), "jti" (8..128
 *           characters; we make 128 random bits, base64url), "cmd" the
 *           command name, "args" its arguments (any JSON, optional).
 *           An "aud" array is refused, although RFC 7519 allows one: we never
 *           sign one (a list of agents gets one token each, "all" gets one
 *           broadcast), and a single string leaves one way to match.
 */
#ifndef AUTHCERT_JWS_H
#define AUTHCERT_JWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "authcert/cert.h"
#include "authcert/error.h"
#include "authcert/replay.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_JWS_BROADCAST "*"
#define AUTHCERT_JWS_MAX_TOKEN_DEFAULT ((size_t)64 * 1024)
#define AUTHCERT_JWS_MAX_LEEWAY 3600
#define AUTHCERT_JWS_JTI_MIN 8
#define AUTHCERT_JWS_JTI_MAX 128

/* "EdDSA", "ES256", "PS256" for a key type, NULL for an unsupported one. */
const char *authcert_jws_alg_for(authcert_key_type t);

/* ---- signing (server) ---------------------------------------------------- */

typedef struct authcert_jws_signer authcert_jws_signer;

/*
 * A signer for one certificate with its key: the header is serialized and
 * encoded once, and a prepared signing context is copied for each token, so
 * that a token costs the claims' encoding and one signature. The signer
 * holds its own references; signer may be freed afterwards.
 * A signer is not safe to use from two threads at once: make one per thread
 * (they are cheap) or hold a lock. Caller frees *out with
 * authcert_jws_signer_free. Errors: AUTHCERT_E_USAGE (no private key, key
 * type without a JWS alg), AUTHCERT_E_CRYPTO, AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_jws_signer_new(const authcert_cert *signer, authcert_jws_signer **out);
void authcert_jws_signer_free(authcert_jws_signer *s);

/* The alg the signer writes ("ES256"...), owned by s. */
const char *authcert_jws_signer_alg(const authcert_jws_signer *s);

/*
 * Sign claims (a JSON object, serialized compactly) into a NUL-terminated
 * compact JWS; caller frees *token with free(). Errors: AUTHCERT_E_USAGE
 * (claims not an object), AUTHCERT_E_CRYPTO, AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_jws_signer_sign(authcert_jws_signer *s, const json_t *claims, char **token);

/* One-shot form of the two above, for callers that sign rarely. */
AUTHCERT_MUST_CHECK authcert_status
authcert_jws_sign(const authcert_cert *signer, const json_t *claims, char **token);

/*
 * The claims of a command: iss, aud, cmd, args (a new reference is taken;
 * NULL leaves "args" out), iat = now, exp = now + ttl_seconds, jti = 128
 * random bits in base64url. now 0 means time(NULL). Caller owns *claims
 * (json_decref). Errors: AUTHCERT_E_USAGE (empty iss, aud or command, ttl
 * not in 1..31 days), AUTHCERT_E_CRYPTO (no randomness), AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_jws_claims_new(const char *iss, const char *aud, const char *command,
                        json_t *args, int64_t ttl_seconds, int64_t now,
                        json_t **claims);

/* ---- verifying (agent) --------------------------------------------------- */

typedef struct authcert_jws_expect {
    const char *audience;          /* required: this agent's id */
    bool allow_broadcast;          /* also accept aud == AUTHCERT_JWS_BROADCAST */
    const char *issuer;            /* when not NULL, "iss" must equal it */
    int64_t now;                   /* seconds since the epoch; 0: time(NULL) */
    int64_t leeway;                /* clock skew allowed on exp and iat, 0..AUTHCERT_JWS_MAX_LEEWAY */
    size_t max_token_size;         /* 0: AUTHCERT_JWS_MAX_TOKEN_DEFAULT */
    int64_t max_lifetime;          /* when > 0, exp - iat may be at most this (seconds):
                                      a token made to live for days is refused */
    authcert_replay_cache *replay; /* when not NULL, the jti is checked and
                                      remembered, once all else passed */
} authcert_jws_expect;

/*
 * Verify token (len bytes, NUL not needed) against the trusted certificate
 * (the agent certificate file) and expect. On success *claims is the
 * payload object (caller json_decref's it); on failure it is NULL and the
 * detail says which rule refused the token.
 * Errors:
 *   AUTHCERT_E_CORRUPT  malformed: size, not 3 parts, bad base64url, JSON
 *                       that does not parse (duplicate keys included) or is
 *                       not an object, a header without alg, claims missing
 *                       or of the wrong type (exp, iat, jti, aud)
 *   AUTHCERT_E_AUTH     refused: alg other than the key's, "crit", typ not
 *                       JWT, x5t#S256 missing or of another certificate,
 *                       signature wrong (ES256 not 64 bytes included),
 *                       audience or issuer not ours, broadcast not allowed,
 *                       expired, issued in the future, replayed
 *   AUTHCERT_E_BUSY     the replay cache is full of live entries (replay.h)
 *   AUTHCERT_E_USAGE    no audience, leeway out of range
 *   AUTHCERT_E_CRYPTO, AUTHCERT_E_NOMEM
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_jws_verify(const authcert_cert *trusted, const char *token, size_t len,
                    const authcert_jws_expect *expect, json_t **claims);

/*
 * Which stage refused a token: before the signature was proven (anyone may
 * have sent it: an agent answers 401) or after (the trusted key signed it,
 * but not for here or not now: 403). Lets a caller tell the two apart
 * without verifying the signature a second time.
 */
typedef enum authcert_jws_refusal {
    AUTHCERT_JWS_ACCEPTED = 0,
    AUTHCERT_JWS_UNPROVEN,  /* malformed, wrong alg, x5t#S256 or crit, bad signature */
    AUTHCERT_JWS_REFUSED,   /* signed by the trusted key; audience, time, issuer or jti refuse it */
    AUTHCERT_JWS_REPLAYED,  /* signed and valid, and its jti was seen before */
    AUTHCERT_JWS_NO_ROOM,   /* signed and valid, and the replay cache is full (E_BUSY) */
} authcert_jws_refusal;

/* authcert_jws_verify, and *why (not NULL) says which stage refused. */
AUTHCERT_MUST_CHECK authcert_status
authcert_jws_verify_why(const authcert_cert *trusted, const char *token, size_t len,
                        const authcert_jws_expect *expect, json_t **claims,
                        authcert_jws_refusal *why);

#ifdef __cplusplus
}
#endif
#endif
