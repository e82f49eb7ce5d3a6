/*
 * authcert/server.h — what authcertd decides, without HTTP: which state an
 * agent is in (by the thumbprint it reports), and which signed tokens it
 * gets. The daemon (server/) and the benchmarks call this; the registry and
 * the network stay outside.
 *
 * An authcert_server holds the certificate store (opened read-only) and a
 * snapshot of it, the "keyring": every certificate by thumbprint with its
 * state and a pool of prepared JWS signers. The keyring is rebuilt when
 * authcert_store_refresh reports a change (`authcert -c`, `-r`, `-i` in
 * another process), so a replacement takes effect without a restart.
 *
 * The rules (docs/protocol.md):
 *   current   -> queued commands signed with the current key
 *   expired   -> first `update-key` (args.certificate: the current
 *                certificate's DER in base64url, args.thumbprint), signed
 *                with THAT expired key; then the queued commands, signed
 *                with the same expired key. However many replacements the
 *                agent missed, the update takes it to the current one.
 *   revoked   -> mismatched, reason "revoked": nothing is signed, ever
 *   unknown   -> mismatched, reason "unknown" (also: no thumbprint at all)
 *
 * Threads: every function here may be called from any number of threads at
 * once (the keyring is swapped under a lock and reference counted; signers
 * are taken from a per-certificate pool).
 */
#ifndef AUTHCERT_SERVER_H
#define AUTHCERT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "authcert/cert.h"
#include "authcert/error.h"
#include "authcert/mismatch.h"
#include "authcert/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_SERVER_TOKEN_TTL_DEFAULT 300
#define AUTHCERT_SERVER_INTERVAL_DEFAULT 60
#define AUTHCERT_UPDATE_KEY_COMMAND "update-key"

typedef enum authcert_agent_state {
    AUTHCERT_AGENT_CURRENT = 0,
    AUTHCERT_AGENT_EXPIRED,
    AUTHCERT_AGENT_MISMATCHED,
} authcert_agent_state;

/* "current", "expired", "mismatched". */
const char *authcert_agent_state_name(authcert_agent_state s);

typedef struct authcert_server_options {
    const char *server_id; /* the tokens' "iss"; NULL or "": the host name */
    int64_t token_ttl;     /* seconds a token lives; 0: 300 */
    unsigned interval;     /* check-in interval told to agents; 0: 60 */
} authcert_server_options;

typedef struct authcert_server authcert_server;

/*
 * A server over store (borrowed: it must outlive the server, and from now
 * on only the server refreshes it). Caller frees *out with
 * authcert_server_free. Errors: AUTHCERT_E_NOTFOUND (the store has no
 * current certificate), AUTHCERT_E_USAGE (ttl out of 1..31 days),
 * AUTHCERT_E_CRYPTO, AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_server_new(authcert_store *store, const authcert_server_options *opt,
                    authcert_server **out);
void authcert_server_free(authcert_server *srv);

const char *authcert_server_id(const authcert_server *srv);
unsigned authcert_server_interval(const authcert_server *srv);

/*
 * Re-read the store if another process changed it and rebuild the keyring.
 * *changed (may be NULL) says whether it did (compare
 * authcert_server_current before and after to see a replacement). The old keyring
 * stays in use when the store cannot be read (the error is returned) or has
 * no current certificate any more (AUTHCERT_E_NOTFOUND). Serialized.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_server_refresh(authcert_server *srv, bool *changed);

/*
 * The same, at most once a second (now: time(NULL) or a test clock); a call
 * within the second is a no-op that reports no change.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_server_maybe_refresh(authcert_server *srv, time_t now, bool *changed);

/* The current certificate: thumbprint into out[65]; its notAfter (may be NULL). */
void authcert_server_current(authcert_server *srv, char out[AUTHCERT_THUMBPRINT_LEN + 1],
                             time_t *not_after);

/* The store's generation the keyring was built from. */
unsigned long long authcert_server_generation(authcert_server *srv);

/*
 * The state of an agent that reports thumbprint (NULL or "": holds none).
 * *reason (may be NULL; mismatch.h's reasons): REVOKED or UNKNOWN when
 * mismatched, EXPIRED when expired, UNKNOWN (meaningless) when current.
 */
authcert_agent_state authcert_server_classify(authcert_server *srv, const char *thumbprint,
                                              authcert_mismatch_reason *reason);

/* A queued command to sign (a delivery of the registry, as plain data). */
typedef struct authcert_server_command {
    int64_t delivery_id;  /* the "did" of a per-agent token */
    int64_t command_id;   /* the "did" of a broadcast token */
    bool broadcast;       /* aud "*", one token per certificate (cached) */
    const char *command;
    const char *args_json; /* a JSON object or NULL */
} authcert_server_command;

/* What an agent gets: its state and the tokens, in order. */
typedef struct authcert_server_batch {
    authcert_agent_state state;
    authcert_mismatch_reason reason; /* as for authcert_server_classify */
    char current_thumbprint[AUTHCERT_THUMBPRINT_LEN + 1];
    bool update_key;   /* tokens[0] is the update-key */
    size_t ntokens;    /* 0 when mismatched */
    char **tokens;     /* NUL-terminated compact JWS, each its own allocation */
    int64_t *dids;     /* dids[i]: delivery id of tokens[i] (whatever the token's
                          "did" claim says); -1 for an update-key made without a
                          queued one */
    unsigned signatures; /* signatures made (cache hits not counted) */
    /* An expired agent whose certificate the store's hand-off statements
     * lead from to the current one (authcert/handoff.h), with no queued
     * update-key: the chain as a JSON array text, given instead of an
     * update-key (nothing signed for it); NULL otherwise. */
    char *handoff;
    size_t handoff_links;
    /* The agent's certificate is revoked (a leaked key) and its one
     * hand-off statement leads on: state says expired, no command goes
     * with the chain, and the answer says "compromised": true. */
    bool compromised;
} authcert_server_batch;

/*
 * Decide and sign for one agent: agent_id (the per-agent "aud"), the
 * thumbprint it reports, and its queued commands (n may be 0; cmds may be
 * NULL then). now: seconds since the epoch (0: time(NULL)). A command whose
 * args_json is not a JSON object is an AUTHCERT_E_USAGE error (the registry
 * only keeps objects). Caller frees *out with authcert_server_batch_free.
 *
 * A broadcast command (aud "*", did = its command_id) is signed once per
 * (command, certificate) and cached; threads that miss at the same moment
 * still make one signature (b->signatures counts only real ones).
 * A queued `update-key` command (the daemon's proactive roll-over, or an
 * operator's) is not signed as such: for an expired agent it becomes the
 * update-key token (its delivery id in dids[0], and as the token's did), and
 * for a current agent nothing is made for it (the caller sees its delivery
 * id missing from dids and settles it: the agent needs no update).
 * Errors: AUTHCERT_E_USAGE, AUTHCERT_E_CRYPTO, AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_server_sign_for(authcert_server *srv, const char *agent_id, const char *thumbprint,
                         const authcert_server_command *cmds, size_t n, time_t now,
                         authcert_server_batch **out);

/*
 * As authcert_server_sign_for, for a check-in answer: an expired agent
 * whose certificate the store's hand-off statements lead from to the
 * current one gets the chain (b->handoff) instead of a signed update-key,
 * for a queued update-key too (its delivery id is then missing from dids).
 * A push, one token to a listener, cannot carry a chain: sign_for.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_server_sign_checkin(authcert_server *srv, const char *agent_id, const char *thumbprint,
                             const authcert_server_command *cmds, size_t n, time_t now,
                             authcert_server_batch **out);
void authcert_server_batch_free(authcert_server_batch *b);

/*
 * The check-in answer (docs/protocol.md) as JSON text: {"state",
 * "current_thumbprint", "interval", "commands": [tokens], "reason"
 * (mismatched only)}. Caller frees *out. Errors: AUTHCERT_E_NOMEM,
 * AUTHCERT_E_INTERNAL (a token that is not compact JWS).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_server_answer(const authcert_server *srv, const authcert_server_batch *b,
                       char **out);

/* How many broadcast tokens are cached (for tests and /metrics). */
size_t authcert_server_cached_tokens(authcert_server *srv);

#ifdef __cplusplus
}
#endif
#endif
