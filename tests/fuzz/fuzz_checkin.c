/*
 * What authcertd receives from anyone who can reach it: a check-in body
 * (POST /v1/checkin) or a result body (POST /v1/result). The first byte
 * picks which, the rest is the body. A parsed message must pass the
 * registry's own check of a report, and its results must be JSON objects.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "authcert/protocol.h"

static void check_result(const authcert_agent_result *r)
{
    json_t *j = json_loads(r->result_json, JSON_REJECT_DUPLICATES, NULL);

    if (r->did <= 0 || !json_is_object(j))
        __builtin_trap();
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    authcert_agent_message *m = NULL;
    const char *body = (const char *)data + 1;

    if (size == 0)
        return 0;
    if (data[0] & 1) {
        if (authcert_result_parse(body, size - 1, &m) == AUTHCERT_OK) {
            if (m->nresults != 1 || m->report.agent_id == NULL || *m->report.agent_id == '\0')
                __builtin_trap();
            check_result(&m->results[0]);
        }
    } else if (authcert_checkin_parse(body, size - 1, "192.0.2.1", &m) == AUTHCERT_OK) {
        if (authcert_registry_validate_report(&m->report) != AUTHCERT_OK ||
            m->nresults > AUTHCERT_CHECKIN_RESULTS_MAX)
            __builtin_trap();
        for (size_t i = 0; i < m->nresults; i++)
            check_result(&m->results[i]);
    } else if (m != NULL) {
        __builtin_trap(); /* a failure leaves nothing behind */
    }
    authcert_agent_message_free(m);
    return 0;
}
