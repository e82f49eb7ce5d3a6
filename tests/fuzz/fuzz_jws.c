/* What an agent's listener receives: a JWS compact token from anyone. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "authcert/authcert.h"

static authcert_cert *trusted;
static authcert_replay_cache *replay;
static authcert_agent_trust *trust; /* the agent's own path: prepared verifier, verdicts */

/* Inside the validity window of the corpus tokens (corpus/README.md). */
#define FUZZ_NOW 1795610000

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t *der = NULL;
    size_t len = 0;

    (void)argc;
    (void)argv;
    if (authcert_read_file(AUTHCERT_SRC_DIR "/tests/data/p256.der", 65536, &der, &len)
            != AUTHCERT_OK
        || authcert_cert_from_der(der, len, &trusted) != AUTHCERT_OK
        || authcert_replay_cache_new(64, 60, &replay) != AUTHCERT_OK
        || authcert_agent_trust_new(trusted, &(authcert_agent_trust_opts){ .leeway = 60,
                                                                           .replay_capacity = 64 },
                                    &trust) != AUTHCERT_OK)
        abort();
    free(der);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    authcert_jws_expect expect = {
        .audience = "agent-1",
        .allow_broadcast = true,
        .now = FUZZ_NOW,
        .leeway = 60,
        /* A small cache that fills: the eviction and full paths get fuzzed too. */
        .replay = (size & 1) ? replay : NULL,
    };
    json_t *claims = NULL;

    authcert_agent_verdict verdict;

    if (authcert_jws_verify(trusted, (const char *)data, size, &expect, &claims)
        == AUTHCERT_OK) {
        if (!json_is_object(claims))
            __builtin_trap();
        json_decref(claims);
    }
    /* And as the agent's listener sees it. */
    claims = NULL;
    if (authcert_agent_verify(trust, "agent-1", (const char *)data, size, FUZZ_NOW, &claims,
                              &verdict) == AUTHCERT_OK) {
        if (!json_is_object(claims) || verdict != AUTHCERT_AGENT_ACCEPTED)
            __builtin_trap();
    } else if (verdict == AUTHCERT_AGENT_ACCEPTED) {
        __builtin_trap(); /* a refusal must never read as accepted */
    }
    json_decref(claims);
    return 0;
}
