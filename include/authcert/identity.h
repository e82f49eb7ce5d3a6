/*
 * authcert/identity.h — who an agent is, as the agent registry keeps it
 * (protocol v2, docs/protocol.md "Agent identity"): the key bound to each
 * agent id, the enrollment tokens and the pending enrollment requests that
 * bind them, and the counter that refuses a replayed request on every node.
 *
 * Nothing here is a secret that lets anyone act as an agent or enroll one:
 * the registry may be a PostgreSQL database that more people can read than
 * the certificate store. It holds public keys and their pins, the SHA-256 of
 * each token's secret (never the secret), and counters. The agents' MAC keys
 * are derived from the server secret in the certificate store
 * (authcert/auth.h), from the agent id and the key epoch kept here.
 *
 * Every call is one transaction: two nodes enrolling the same id at once
 * bind one key, and a token with one use left enrolls one agent.
 */
#ifndef AUTHCERT_IDENTITY_H
#define AUTHCERT_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "authcert/error.h"
#include "authcert/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A DER SubjectPublicKeyInfo in base64url without padding: P-256 and Ed25519 fit. */
#define AUTHCERT_SPKI_B64_MAX 256
#define AUTHCERT_TOKEN_ID_MAX 32     /* visible ASCII, [A-Za-z0-9_-] */
#define AUTHCERT_TOKEN_HASH_LEN 64   /* SHA-256 of the token's secret, lowercase hex */
#define AUTHCERT_PENDING_DEFAULT_CAP 1000

/*
 * An agent's identity. key_epoch counts the keys ever bound to this id (it
 * never goes down, so a MAC key of a forgotten or rotated key is never valid
 * again); the id is bound when key_pin is not "".
 */
typedef struct authcert_agent_identity {
    const char *agent_id;
    const char *key_pin;      /* the bound key's pin (authcert/tls.h), "" when not bound */
    const char *key_spki;     /* the bound key, base64url DER SubjectPublicKeyInfo, "" */
    uint64_t key_epoch;       /* 0: never enrolled */
    uint64_t mac_counter;     /* the highest request counter accepted for this id */
    time_t enrolled_at;       /* when the key was bound (0: not bound) */
    const char *clone_pin;    /* the last other key refused for this bound id, "" none */
    time_t clone_seen_at;     /* when (0: never) */
    /* The id checked in before it was first bound (protocol v1, or before
     * enrollment was required): anyone who saw a check-in knows it, so a
     * general token may not enroll it (only approval, or a token made for it). */
    bool known_before;
} authcert_agent_identity;

/*
 * The identity of agent_id. Caller frees with authcert_agent_identity_free.
 * Errors: AUTHCERT_E_NOTFOUND (no row for it: never checked in nor enrolled).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_get_identity(authcert_registry *reg, const char *agent_id,
                               authcert_agent_identity **out);
void authcert_agent_identity_free(authcert_agent_identity *id);

/*
 * What a request needs to authenticate an agent, read fast (a statement
 * prepared once per handle, on the check-in path of every request):
 * *bound, *epoch and *counter. Unknown agent: AUTHCERT_E_NOTFOUND.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_auth_state(authcert_registry *reg, const char *agent_id, bool *bound,
                             uint64_t *epoch, uint64_t *counter);

/*
 * Move the agent's counter to `counter` if it is bound with key epoch
 * `epoch` and counter is higher than the one stored: compare and set, in one
 * statement, so of two nodes given the same request only one sees *advanced
 * true. The check-in path does not call this for every request (the batching
 * writer raises the counter with the report: authcert_agent_report's
 * mac_counter); results, key rotations and deliveries do.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_auth_advance(authcert_registry *reg, const char *agent_id, uint64_t epoch,
                               uint64_t counter, bool *advanced);

/* A request to bind a key to an agent id (enrollment). */
typedef struct authcert_enroll_request {
    const char *agent_id;
    const char *key_pin;     /* the agent key's pin */
    const char *key_spki;    /* base64url DER SPKI (AUTHCERT_SPKI_B64_MAX at most) */
    const char *hostname;    /* as a check-in reports them, for a new row */
    const char *address;
    uint16_t port;
    const char *version;
} authcert_enroll_request;

/*
 * Bind r's key to r's id (policy "open", or an approved request): a new
 * agent row, or an id not bound (never, or forgotten) gets key_epoch + 1;
 * the same key again is no change (the agent lost its MAC key but not its
 * key). *epoch is the epoch now. allow_known: false refuses an id that is
 * known_before (policy "open" may bind those only when the operator says).
 * Errors: AUTHCERT_E_POLICY with detail "clone" when the id is bound to
 * another key (clone_pin and clone_seen_at are recorded, nothing else
 * changes), or "known" for a known id without allow_known.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_bind_key(authcert_registry *reg, const authcert_enroll_request *r,
                           bool allow_known, time_t now, uint64_t *epoch);

/*
 * Enroll with a token, in one transaction: the token token_id must exist,
 * hold the secret whose SHA-256 is token_hash (compared in constant time),
 * not be revoked or expired, have a use left, and, when it was made for one
 * agent id, be presented for that id; a general token does not enroll an id
 * that is known_before. Then the key is bound as bind_key does and one use
 * taken (uses + 1, last_used_at = now). Errors: AUTHCERT_E_AUTH (no such
 * token, or not its secret: the same answer for both), AUTHCERT_E_POLICY
 * with a detail "revoked", "expired", "used up", "another agent", "known",
 * "clone" (nothing changed in any of these cases).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_enroll_with_token(authcert_registry *reg, const char *token_id,
                                    const char *token_hash, const authcert_enroll_request *r,
                                    time_t now, uint64_t *epoch);

/*
 * A new key for a bound agent, asked by the agent with its current key
 * (the caller verified both signatures): bound to old_pin still, then
 * new_pin/new_spki with key_epoch + 1. Errors: AUTHCERT_E_POLICY (not
 * bound, or bound to another key than old_pin).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_rotate_key(authcert_registry *reg, const char *agent_id, const char *old_pin,
                             const char *new_pin, const char *new_spki, time_t now,
                             uint64_t *epoch);

/*
 * authcert --forget ID: the id is no longer bound (key_pin, key_spki "",
 * clone cleared; key_epoch kept, so no old MAC key comes back), its pending
 * requests dropped; its next enrollment binds whatever key it brings, as
 * the policy allows. Errors: AUTHCERT_E_NOTFOUND.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_forget(authcert_registry *reg, const char *agent_id);

/* ---- enrollment tokens ---------------------------------------------- */

typedef struct authcert_enroll_token {
    const char *id;
    const char *agent_id;   /* NULL: any agent (not a known one) */
    uint64_t uses_left;
    uint64_t uses;
    time_t created_at;
    time_t expires_at;      /* 0: never */
    time_t last_used_at;    /* 0: never */
    bool revoked;
} authcert_enroll_token;

typedef authcert_status (*authcert_token_cb)(void *ctx, const authcert_enroll_token *t);

/*
 * A new token: id (AUTHCERT_TOKEN_ID_MAX at most, [A-Za-z0-9_-]), the
 * SHA-256 of its secret (64 lowercase hex), uses >= 1, expires_at (0 never),
 * agent_id (NULL: any agent). Errors: AUTHCERT_E_USAGE (bounds, an id that
 * exists).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_token_add(authcert_registry *reg, const char *id, const char *hash,
                            uint64_t uses, time_t expires_at, const char *agent_id, time_t now);

/* Revoke it (kept, listed as revoked). Errors: AUTHCERT_E_NOTFOUND. */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_token_revoke(authcert_registry *reg, const char *id);

/* Every token, oldest first. */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_foreach_token(authcert_registry *reg, authcert_token_cb cb, void *ctx);

/* ---- pending requests (policy "approve") ---------------------------- */

typedef struct authcert_enroll_pending {
    const char *agent_id;
    const char *key_pin;
    const char *key_spki;
    const char *hostname;
    const char *address;
    time_t requested_at;    /* first request */
    time_t last_seen;       /* latest request */
    bool approved;
} authcert_enroll_pending;

typedef authcert_status (*authcert_pending_cb)(void *ctx, const authcert_enroll_pending *p);

/*
 * Record (or refresh) a request of r's id with r's key, at most cap pending
 * requests in all (a new one beyond: AUTHCERT_E_BUSY, nothing written).
 * *approved says whether the operator approved this (id, key): then the
 * caller binds it (bind_key with allow_known) and the request is removed by
 * that bind. The same id with another key is another request.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_pending_add(authcert_registry *reg, const authcert_enroll_request *r,
                              unsigned cap, time_t now, bool *approved);

/*
 * authcert --approve ID [--key PIN]: approve the pending request(s) of the
 * id (with that key only, when key_pin is not NULL). *n how many. Errors:
 * AUTHCERT_E_NOTFOUND (none pending), AUTHCERT_E_USAGE (several keys pending
 * for the id and no key_pin given: the detail lists their pins).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_pending_approve(authcert_registry *reg, const char *agent_id,
                                  const char *key_pin, unsigned *n);

/* Every pending request, oldest first. */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_foreach_pending(authcert_registry *reg, authcert_pending_cb cb, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
