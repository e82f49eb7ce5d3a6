/*
 * authcert/protocol.h — the bodies agents send to authcertd, parsed and
 * checked (docs/protocol.md): the check-in and the result. Outside input
 * from any machine that can reach the server, hence one strict parser in
 * the library (fuzzed: tests/fuzz/fuzz_checkin.c) rather than in the daemon.
 *
 * Rules: a UTF-8 JSON object within the size cap, duplicate keys refused,
 * unknown members ignored (newer agents, older servers); every known member
 * has its type and bounds (the agent report's bounds are
 * authcert_registry_validate_report's).
 */
#ifndef AUTHCERT_PROTOCOL_H
#define AUTHCERT_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authcert/error.h"
#include "authcert/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_CHECKIN_BODY_MAX (16 * 1024)
#define AUTHCERT_RESULT_BODY_MAX (64 * 1024)
#define AUTHCERT_CHECKIN_RESULTS_MAX 64 /* results in one check-in */

/* A result an agent reports for a command it got in a check-in answer. */
typedef struct authcert_agent_result {
    int64_t did;             /* the token's "did": delivery id, or a broadcast's command id */
    bool ok;                 /* status "ok"; false: "failed" */
    const char *result_json; /* {"status", "exit", "output"} as the registry keeps it */
} authcert_agent_result;

/* A parsed body: strings are owned by it and live until it is freed. */
typedef struct authcert_agent_message {
    authcert_agent_report report; /* a result body sets only agent_id */
    size_t nresults;
    authcert_agent_result *results;
    struct authcert_agent_message_priv *priv;
} authcert_agent_message;

/*
 * Parse a check-in body (POST /v1/checkin): {"agent_id", "hostname",
 * "port", "thumbprint", optional "version", "key_pin" (the pin of its
 * listener's TLS key: report.key_pin, NULL when absent) and "results"}.
 * address: where the request came from (the agent does not say; it goes to
 * report.address). Caller frees *out with authcert_agent_message_free.
 * Errors: AUTHCERT_E_CORRUPT (too large, not JSON, duplicate keys, not an
 * object: the detail says which), AUTHCERT_E_USAGE (a member missing, of
 * the wrong type or out of bounds: the detail names it), AUTHCERT_E_NOMEM.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_checkin_parse(const char *body, size_t len, const char *address,
                       authcert_agent_message **out);

/*
 * Parse a result body (POST /v1/result): {"agent_id", "delivery", "status",
 * "exit", "output"}: report.agent_id and one result. Errors as above.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_result_parse(const char *body, size_t len, authcert_agent_message **out);

void authcert_agent_message_free(authcert_agent_message *m);

#ifdef __cplusplus
}
#endif
#endif
