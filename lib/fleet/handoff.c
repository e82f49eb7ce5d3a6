/*
 * The hand-off chain (authcert/handoff.h): statements signed once by each
 * outgoing key, and the walk an agent makes through them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authcert/agent.h"
#include "authcert/base64url.h"
#include "authcert/cert_policy.h"
#include "authcert/handoff.h"
#include "authcert/jws.h"
#include "internal.h"

#define CENTURY ((int64_t)100 * 366 * 86400)

authcert_status authcert_handoff_sign(const authcert_cert *outgoing, const authcert_cert *successor,
                                      uint64_t gen, int64_t now, char **jws)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_t *claims = NULL, *args = NULL;
    const uint8_t *der;
    size_t derlen = 0;
    char *b64 = NULL;

    *jws = NULL;
    if (outgoing == NULL || successor == NULL || !authcert_cert_has_key(outgoing) || gen == 0)
        FAIL(AUTHCERT_E_USAGE, "hand-off: an outgoing key, a successor and a generation are needed");
    der = authcert_cert_der(successor, &derlen);
    GUARD(authcert_b64url_encode(der, derlen, &b64));
    GUARD_ALLOC(args = json_pack("{s:s, s:s, s:s, s:I}", "from", authcert_cert_thumbprint(outgoing),
                                 "certificate", b64, "thumbprint",
                                 authcert_cert_thumbprint(successor), "gen", (json_int_t)gen));
    /* The claims of any token (iat, jti), but a century to live: a link
     * is valid for as long as an agent may stay offline. */
    GUARD(authcert_jws_claims_new(AUTHCERT_HANDOFF_ISSUER, AUTHCERT_JWS_BROADCAST,
                                  AUTHCERT_HANDOFF_COMMAND, args, 60, now, &claims));
    if (json_object_set_new(claims, "exp",
                            json_integer(json_integer_value(json_object_get(claims, "iat"))
                                         + CENTURY)) != 0)
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    GUARD(authcert_jws_sign(outgoing, claims, jws));
    rc = AUTHCERT_OK;
out:
    json_decref(args);
    json_decref(claims);
    free(b64);
    return rc;
}

/* args of a statement's claims: from, thumbprint, gen, and the DER. */
static authcert_status link_args(const json_t *claims, const char **from, const char **to,
                                 uint64_t *gen, const json_t **cert)
{
    const char *cmd = json_string_value(json_object_get(claims, "cmd"));
    const json_t *args = json_object_get(claims, "args");
    const json_t *g = json_object_get(args, "gen");

    if (cmd == NULL || strcmp(cmd, AUTHCERT_HANDOFF_COMMAND) != 0 || !json_is_object(args))
        return authcert_fail(AUTHCERT_E_CORRUPT, "hand-off: not a hand-off statement");
    *from = json_string_value(json_object_get(args, "from"));
    *to = json_string_value(json_object_get(args, "thumbprint"));
    *cert = json_object_get(args, "certificate");
    if (!authcert_thumbprint_valid(*from) || !authcert_thumbprint_valid(*to)
        || !json_is_string(*cert) || !json_is_integer(g) || json_integer_value(g) < 1)
        return authcert_fail(AUTHCERT_E_CORRUPT, "hand-off: malformed statement arguments");
    *gen = (uint64_t)json_integer_value(g);
    return AUTHCERT_OK;
}

authcert_status authcert_handoff_peek(const char *jws, char from[65], char to[65], uint64_t *gen)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *dot1 = jws != NULL ? strchr(jws, '.') : NULL;
    const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    const char *f = NULL, *t = NULL;
    const json_t *cert = NULL;
    uint8_t *payload = NULL;
    size_t plen = 0;
    json_t *claims = NULL;

    if (dot2 == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "hand-off: not a compact JWS");
    GUARD(authcert_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload, &plen));
    claims = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims))
        FAIL(AUTHCERT_E_CORRUPT, "hand-off: claims are not a JSON object");
    GUARD(link_args(claims, &f, &t, gen, &cert));
    if (f == NULL || t == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "hand-off: malformed statement arguments");
    memcpy(from, f, 65);
    memcpy(to, t, 65);
    rc = AUTHCERT_OK;
out:
    json_decref(claims);
    free(payload);
    return rc;
}

authcert_status authcert_handoff_walk(const authcert_cert *held, const json_t *chain,
                                      const char *want_last, int64_t now, authcert_cert **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert *at = NULL, *next = NULL;
    json_t *claims = NULL;
    uint8_t *der = NULL;
    size_t n, derlen = 0;
    uint64_t last_gen = 0;
    char why[256];

    *out = NULL;
    if (held == NULL || !json_is_array(chain))
        FAIL(AUTHCERT_E_CORRUPT, "hand-off: the chain is not a list");
    n = json_array_size(chain);
    if (n == 0 || n > AUTHCERT_HANDOFF_MAX_LINKS)
        FAIL(AUTHCERT_E_CORRUPT, "hand-off: a chain of %zu links (1 to %d)", n,
             AUTHCERT_HANDOFF_MAX_LINKS);
    if (now == 0)
        now = (int64_t)time(NULL);
    at = authcert_cert_ref((authcert_cert *)held);
    for (size_t i = 0; i < n; i++) {
        const json_t *tok = json_array_get(chain, i);
        /* aud is "*" (any agent): the audience given only has to be some id. */
        const authcert_jws_expect expect = { .audience = AUTHCERT_HANDOFF_COMMAND,
                                             .allow_broadcast = true,
                                             .issuer = AUTHCERT_HANDOFF_ISSUER,
                                             .now = now, .leeway = 300 };
        authcert_cert_policy policy = { .now = now, .trusted = at, .any_dates = i + 1 < n };
        const char *from = NULL, *to = NULL;
        const json_t *jcert = NULL;
        uint64_t gen = 0;

        if (!json_is_string(tok))
            FAIL(AUTHCERT_E_CORRUPT, "hand-off: link %zu is not a string", i + 1);
        /* Signed by the key held at this point: by nobody else. */
        rc = authcert_jws_verify(at, json_string_value(tok), json_string_length(tok), &expect,
                                 &claims);
        if (rc != AUTHCERT_OK) {
            snprintf(why, sizeof why, "%s", authcert_detail());
            FAIL(AUTHCERT_E_AUTH, "hand-off: link %zu is not signed by %.16s...: %s", i + 1,
                 authcert_cert_thumbprint(at), why);
        }
        /* The verifier takes "*" as broadcast, or the audience given: only "*" is ours. */
        if (strcmp(json_string_value(json_object_get(claims, "aud")) != NULL
                       ? json_string_value(json_object_get(claims, "aud")) : "",
                   AUTHCERT_JWS_BROADCAST) != 0)
            FAIL(AUTHCERT_E_AUTH, "hand-off: link %zu is not addressed to every agent", i + 1);
        GUARD(link_args(claims, &from, &to, &gen, &jcert));
        if (jcert != NULL && json_string_length(jcert) > 4 * AUTHCERT_AGENT_CERT_MAX / 3 + 4)
            FAIL(AUTHCERT_E_CORRUPT, "hand-off: link %zu: certificate too large", i + 1);
        if (from == NULL || to == NULL || jcert == NULL) /* link_args checked: for the analyzer */
            FAIL(AUTHCERT_E_CORRUPT, "hand-off: link %zu: malformed arguments", i + 1);
        if (strcmp(from, authcert_cert_thumbprint(at)) != 0)
            FAIL(AUTHCERT_E_AUTH, "hand-off: link %zu starts from %.16s..., not from %.16s... "
                 "(a gap or a reordering)", i + 1, from, authcert_cert_thumbprint(at));
        if (gen <= last_gen)
            FAIL(AUTHCERT_E_AUTH, "hand-off: link %zu goes back to generation %llu after %llu",
                 i + 1, (unsigned long long)gen, (unsigned long long)last_gen);
        last_gen = gen;
        rc = authcert_b64url_decode(json_string_value(jcert), json_string_length(jcert), &der,
                                    &derlen);
        if (rc == AUTHCERT_OK)
            rc = authcert_cert_from_der(der, derlen, &next);
        if (rc != AUTHCERT_OK) {
            snprintf(why, sizeof why, "%s", authcert_detail());
            FAIL(AUTHCERT_E_CORRUPT, "hand-off: link %zu: %s", i + 1, why);
        }
        if (strcmp(authcert_cert_thumbprint(next), to) != 0)
            FAIL(AUTHCERT_E_AUTH, "hand-off: link %zu names %.16s... and carries %.16s...",
                 i + 1, to, authcert_cert_thumbprint(next));
        rc = authcert_cert_check_policy(next, &policy, NULL);
        if (rc != AUTHCERT_OK) {
            snprintf(why, sizeof why, "%s", authcert_detail());
            FAIL(rc, "hand-off: link %zu: %s", i + 1, why);
        }
        authcert_cert_free(at);
        at = next;
        next = NULL;
        json_decref(claims);
        claims = NULL;
        free(der);
        der = NULL;
    }
    if (want_last != NULL && strcmp(authcert_cert_thumbprint(at), want_last) != 0)
        FAIL(AUTHCERT_E_AUTH, "hand-off: the chain ends at %.16s..., not at the current "
             "certificate %.16s...", authcert_cert_thumbprint(at), want_last);
    *out = at;
    at = NULL;
    rc = AUTHCERT_OK;
out:
    json_decref(claims);
    free(der);
    authcert_cert_free(next);
    authcert_cert_free(at);
    return rc;
}
