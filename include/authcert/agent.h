/*
 * authcert/agent.h — the agent's side of a signed command: the certificate
 * it trusts (the agent certificate file), the verification of a token for
 * one agent id with the refusal category the listener answers with, and
 * the key update (docs/protocol.md).
 *
 * Used by the authcert-agent daemon (one trust) and by load generators that
 * simulate many agents in one process (one trust each, sharing one
 * certificate through authcert_agent_trust_new). No globals: a trust costs
 * its struct plus its replay cache (about 100 bytes per entry of capacity,
 * see replay.h), so a generator picks a small replay_capacity.
 *
 * Thread safety: every function below may be called from several threads on
 * the same trust. Verification works on a reference to the certificate
 * taken under a lock, so a key update or reload swaps it without ever
 * leaving the trust with none, and without stopping a verification running.
 */
#ifndef AUTHCERT_AGENT_H
#define AUTHCERT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "authcert/cert.h"
#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The agent certificate file's largest size we read (a certificate is ~1 KiB). */
#define AUTHCERT_AGENT_CERT_MAX ((size_t)64 * 1024)

/* What the listener answers a token with (docs/protocol.md, "Push"). */
typedef enum authcert_agent_verdict {
    AUTHCERT_AGENT_ACCEPTED = 0,    /* 200: verified, may be run */
    AUTHCERT_AGENT_UNAUTHENTICATED, /* 401: unsigned, malformed, bad signature,
                                       wrong alg, crit, unknown x5t#S256 */
    AUTHCERT_AGENT_FORBIDDEN,       /* 403: signed by our server but not for
                                       us now: another agent's aud, broadcast
                                       refused, issuer, expired, not yet
                                       valid, replayed */
    AUTHCERT_AGENT_UNAVAILABLE,     /* 503: replay cache full of live tokens,
                                       out of memory, OpenSSL failure */
} authcert_agent_verdict;

/* 200, 401, 403, 503 for a verdict. */
int authcert_agent_verdict_http(authcert_agent_verdict v);

/* "accepted", "unauthenticated", "forbidden", "unavailable". */
const char *authcert_agent_verdict_name(authcert_agent_verdict v);

typedef struct authcert_agent_trust_opts {
    int64_t leeway;          /* clock skew allowed on exp/iat, seconds,
                                0..AUTHCERT_JWS_MAX_LEEWAY (0 is none) */
    size_t replay_capacity;  /* tokens remembered; 0: AUTHCERT_REPLAY_DEFAULT_CAPACITY */
    bool refuse_broadcast;   /* refuse aud "*" (accepted by default) */
    const char *issuer;      /* when not NULL, "iss" must equal it (copied) */
    int64_t max_lifetime;    /* when > 0, a token whose exp - iat exceeds it is refused */
    const char *replay_file; /* when not NULL, the replay cache survives restarts there
                                (authcert_replay_cache_persist) */
} authcert_agent_trust_opts;

typedef struct authcert_agent_trust authcert_agent_trust;

/*
 * Load the agent certificate file (DER) at cert_path; the trust keeps the
 * path to write key updates to and to reload from. opts may be NULL (no
 * leeway, default replay capacity). Caller frees *out with
 * authcert_agent_trust_free.
 * Errors: AUTHCERT_E_NOTFOUND (no such file), AUTHCERT_E_CORRUPT (not a
 * DER certificate of a supported key type, larger than
 * AUTHCERT_AGENT_CERT_MAX), AUTHCERT_E_IO, AUTHCERT_E_USAGE (leeway or
 * capacity out of range), AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_agent_trust_open(const char *cert_path, const authcert_agent_trust_opts *opts,
                          authcert_agent_trust **out);

/*
 * A trust held in memory only (no file: key updates swap the certificate
 * and write nothing; reload does nothing). Takes its own reference to cert,
 * so one certificate can back many trusts. Errors as above, without the
 * file ones.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_agent_trust_new(authcert_cert *cert, const authcert_agent_trust_opts *opts,
                         authcert_agent_trust **out);

void authcert_agent_trust_free(authcert_agent_trust *t);

/*
 * From now on "iss" must equal issuer (the server's id, learnt at
 * enrollment). Errors: AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_agent_trust_set_issuer(authcert_agent_trust *t, const char *issuer);

/* The thumbprint of the certificate trusted now, copied into out[65]. */
void authcert_agent_trust_thumbprint(authcert_agent_trust *t, char out[65]);

/* A new reference to the certificate trusted now (authcert_cert_free it). */
authcert_cert *authcert_agent_trust_cert(authcert_agent_trust *t);

/*
 * Re-read the certificate file when it is not the one loaded (device,
 * inode, size or modification time differ: an operator copied the exported
 * agent certificate file over it) and trust the new certificate. *changed
 * (may be NULL) tells whether the trusted certificate changed. On failure
 * the old certificate stays trusted. A trust without file: OK, unchanged.
 * Errors: as authcert_agent_trust_open.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_agent_trust_reload(authcert_agent_trust *t, bool *changed);

/*
 * Verify token (len bytes) for the agent agent_id at time now (0:
 * time(NULL)) with the trusted certificate, as authcert_jws_verify does
 * (alg of the key, x5t#S256, signature, aud agent_id or "*", exp/iat with
 * the leeway, jti not seen; the jti is remembered only when all passed).
 * *verdict is always set. On AUTHCERT_OK *claims is the verified payload
 * (caller json_decref's it); otherwise NULL, and the detail names the rule
 * that refused the token. A refused token costs at most two signature
 * checks: the second tells a token our server signed for someone else
 * (403) from one it did not sign (401).
 * Errors: AUTHCERT_E_AUTH, AUTHCERT_E_CORRUPT (refused; see *verdict),
 * AUTHCERT_E_BUSY (replay cache full), AUTHCERT_E_USAGE (empty agent_id,
 * or "*"), AUTHCERT_E_CRYPTO, AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_agent_verify(authcert_agent_trust *t, const char *agent_id, const char *token,
                      size_t len, int64_t now, json_t **claims,
                      authcert_agent_verdict *verdict);

/*
 * Carry out a verified "update-key" command: claims.args.certificate (the
 * DER in base64url) must parse as a certificate of a supported key type,
 * its thumbprint equal claims.args.thumbprint, and it must pass the
 * certificate policy (authcert/cert_policy.h) with the trusted certificate
 * as the one whose key family it keeps: valid now (5 minutes' leeway on
 * notBefore), no unknown critical extension, not a CA, digitalSignature
 * allowed, the same key family. The file is then replaced
 * atomically (mode 0644: a certificate is public; temporary name, fsync,
 * rename), and only then the trusted certificate swapped. new_thumbprint
 * (may be NULL) receives the thumbprint trusted afterwards. Updating to the
 * certificate already trusted is a success that writes nothing.
 * On any failure the old file stays byte for byte and the old certificate
 * stays trusted.
 * Errors: AUTHCERT_E_CORRUPT (cmd not update-key, args missing or of the
 * wrong type, certificate not base64url DER of a supported certificate,
 * thumbprint not 64 hex), AUTHCERT_E_AUTH (thumbprint mismatch),
 * AUTHCERT_E_POLICY (refused by the certificate policy; the detail says
 * which rule), AUTHCERT_E_IO (the file could not be written),
 * AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_agent_apply_update_key(authcert_agent_trust *t, const json_t *claims,
                                char new_thumbprint[65]);

/*
 * Walk the hand-off chain (authcert/handoff.h) from the trusted
 * certificate to want_last (the current certificate the server names; NULL:
 * not checked), then install the last certificate as
 * authcert_agent_apply_update_key does: one write, only after every link
 * verified. A chain starting from another certificate than the trusted one
 * changes nothing. Errors: as authcert_handoff_walk, and AUTHCERT_E_IO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_agent_apply_handoff(authcert_agent_trust *t, const json_t *chain, const char *want_last,
                             char new_thumbprint[65]);

/*
 * True when id is a valid agent id: 1..128 printable ASCII characters
 * (0x21..0x7e), not the broadcast audience "*".
 */
bool authcert_agent_id_valid(const char *id);

/*
 * A new agent id: a random UUID v4 in lowercase (RAND_bytes) into out[37].
 * Errors: AUTHCERT_E_CRYPTO (no randomness).
 */
AUTHCERT_MUST_CHECK authcert_status authcert_agent_id_generate(char out[37]);

#ifdef __cplusplus
}
#endif
#endif
