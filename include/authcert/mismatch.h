/*
 * authcert/mismatch.h — the mismatch list (DESIGN.md 3): the agents whose
 * reported certificate is not the current one, as RFC 4180 CSV.
 *
 * Columns, in this order, after a header row naming them:
 *   agent_id,hostname,address,last_seen,reported_thumbprint,reason,current_thumbprint
 * last_seen is ISO 8601 UTC ("2026-11-25T12:00:00Z"); reported_thumbprint is
 * empty for an agent that holds no certificate; reason is expired (the server
 * rolls it over at its next check-in), revoked, or unknown (lost, corrupt, from
 * another server: repair by hand). Formula-looking fields are neutralized
 * (authcert/csv.h says why).
 */
#ifndef AUTHCERT_MISMATCH_H
#define AUTHCERT_MISMATCH_H

#include <stddef.h>
#include <stdio.h>

#include "authcert/error.h"
#include "authcert/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum authcert_mismatch_reason {
    AUTHCERT_MISMATCH_UNKNOWN = 0,
    AUTHCERT_MISMATCH_EXPIRED = 1,
    AUTHCERT_MISMATCH_REVOKED = 2,
} authcert_mismatch_reason;

/* "unknown", "expired", "revoked" */
const char *authcert_mismatch_reason_name(authcert_mismatch_reason r);

/*
 * Why an agent reporting thumbprint ("" for none) is mismatched: the
 * caller answers from its certificate store. Called once per distinct
 * thumbprint (answers are cached), so it need not be fast.
 */
typedef authcert_mismatch_reason (*authcert_mismatch_classify_cb)(void *ctx,
                                                                  const char *thumbprint);

/*
 * Write the list for the agents in reg whose reported thumbprint differs
 * from current_thumbprint (NULL or "": there is no current certificate, so
 * every agent is listed) to out, streaming: memory does not depend on the
 * number of agents. classify NULL: every reason is unknown. *rows (may be
 * NULL) is the number of agents listed (the header not counted). The
 * caller owns and closes out; on error part of the list may be written
 * (write it to a temporary file and rename, as the admin tool does).
 * Errors: AUTHCERT_E_IO (a write failed), and the registry's.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_mismatch_list_write(authcert_registry *reg, const char *current_thumbprint,
                             authcert_mismatch_classify_cb classify, void *ctx,
                             FILE *out, size_t *rows);

#ifdef __cplusplus
}
#endif
#endif
