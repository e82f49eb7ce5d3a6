/*
 * authcert/handoff.h — the hand-off chain: how an agent holding any old
 * certificate reaches the current one with no key but each link's own.
 *
 * At every replacement (authcert -c; with --compromised only when the
 * leaked certificate commits to the successor being promoted) the outgoing
 * key signs one statement for its successor, once. The store keeps every statement,
 * so the retired private keys are no longer needed to roll agents over,
 * and a leaked key signs nothing after its one statement. A statement is a
 * JWS in our profile (authcert/jws.h), so any JOSE library verifies it:
 *
 *   claims  {"iss": "authcert hand-off", "aud": "*", "iat": T, "exp": T + 100 years,
 *            "jti": random, "cmd": "hand-off",
 *            "args": {"from": thumbprint of the signing certificate,
 *                     "certificate": base64url(DER of the successor),
 *                     "thumbprint": the successor's, "gen": the link's number}}
 *
 * An agent walks a chain link by link (authcert_handoff_walk): each link
 * verified with the key of the certificate it holds at that point, from
 * that certificate, to a certificate the policy accepts against it (the
 * commitment and the self-signature when there is one; the dates of the
 * intermediate certificates ignored, so a long-offline agent catches up),
 * with generations strictly increasing, ending at the certificate the
 * server names. Never a statement as a command: its lifetime alone is past
 * every agent's limit, and the agent refuses the command name.
 */
#ifndef AUTHCERT_HANDOFF_H
#define AUTHCERT_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "authcert/cert.h"
#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_HANDOFF_COMMAND "hand-off"
#define AUTHCERT_HANDOFF_ISSUER "authcert hand-off"
/* The longest chain an agent walks: 1,024 replacements (3,000 years at the default validity). */
#define AUTHCERT_HANDOFF_MAX_LINKS 1024

/*
 * The statement by which outgoing (with its private key) hands to
 * successor, as link gen (>= 1), made at now (0: time(NULL)). Caller frees
 * *jws. Errors: AUTHCERT_E_USAGE (no key, gen 0), AUTHCERT_E_CRYPTO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_handoff_sign(const authcert_cert *outgoing, const authcert_cert *successor,
                      uint64_t gen, int64_t now, char **jws);

/*
 * A statement's claims, NOT verified: for the server, which chains the
 * statements of its own store. from and to get thumbprints.
 * Errors: AUTHCERT_E_CORRUPT.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_handoff_peek(const char *jws, char from[65], char to[65], uint64_t *gen);

/*
 * Walk chain (a JSON array of statement strings) from held; on success
 * *out is the last link's certificate, whose thumbprint is want_last (may
 * be NULL: not checked). now: 0 for time(NULL). Errors: AUTHCERT_E_CORRUPT
 * (not an array of strings, empty, longer than AUTHCERT_HANDOFF_MAX_LINKS,
 * a malformed link), AUTHCERT_E_AUTH (a signature, a gap, a reordering, a
 * rollback of generations, a chain ending elsewhere), AUTHCERT_E_POLICY (a
 * certificate the policy refuses against the one before it).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_handoff_walk(const authcert_cert *held, const json_t *chain, const char *want_last,
                      int64_t now, authcert_cert **out);

#ifdef __cplusplus
}
#endif

#endif
