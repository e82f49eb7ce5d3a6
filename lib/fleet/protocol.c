/*
 * The bodies agents send (protocol.h): parsed with jansson, duplicate keys
 * refused, every known member checked, unknown ones ignored. The parsed
 * JSON stays alive inside the message, so the report's strings are
 * jansson's and nothing is copied twice.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "authcert/protocol.h"
#include "internal.h"

struct authcert_agent_message_priv {
    json_t *root;
    char **texts; /* the results' JSON, one allocation each */
};

void authcert_agent_message_free(authcert_agent_message *m)
{
    if (m == NULL)
        return;
    if (m->priv != NULL) {
        for (size_t i = 0; i < m->nresults; i++)
            free(m->priv->texts[i]);
        free(m->priv->texts);
        json_decref(m->priv->root);
        free(m->priv);
    }
    free(m->results);
    free(m);
}

/* Parse the object: too large, not JSON, duplicates, not an object are CORRUPT. */
static authcert_status load(const char *what, const char *body, size_t len, size_t max,
                            json_t **out)
{
    json_error_t jerr;
    json_t *j;

    *out = NULL;
    if (body == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: no body", what);
    if (len > max)
        return authcert_fail(AUTHCERT_E_CORRUPT, "%s: body larger than %zu bytes", what, max);
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        return authcert_fail(AUTHCERT_E_CORRUPT, "%s: not a JSON object: %s", what, jerr.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return authcert_fail(AUTHCERT_E_CORRUPT, "%s: not a JSON object: another JSON value",
                             what);
    }
    *out = j;
    return AUTHCERT_OK;
}

/*
 * A string member: required, or absent-is-NULL when optional. A required one
 * is never NULL, not even after a failure.
 */
static authcert_status get_string(const char *what, json_t *o, const char *key, bool optional,
                                  const char **v)
{
    json_t *m = json_object_get(o, key);

    *v = optional ? NULL : "";
    if (m == NULL && optional)
        return AUTHCERT_OK;
    if (!json_is_string(m))
        return authcert_fail(AUTHCERT_E_USAGE, "%s: %s must be a string%s", what, key,
                             m == NULL ? " (missing)" : "");
    /* jansson lets \u0000 through as a length; our strings are C strings */
    if (strlen(json_string_value(m)) != json_string_length(m))
        return authcert_fail(AUTHCERT_E_USAGE, "%s: %s contains a NUL", what, key);
    *v = json_string_value(m);
    return AUTHCERT_OK;
}

/* One result: {"delivery": N > 0, "status": "ok"|"failed", "exit"?: int, "output"?: str}. */
static authcert_status parse_result(const char *what, json_t *r, authcert_agent_result *out,
                                    char **text)
{
    json_t *did = json_object_get(r, "delivery"), *st = json_object_get(r, "status");
    json_t *ex = json_object_get(r, "exit"), *outp = json_object_get(r, "output");
    json_t *keep = NULL;
    const char *s;

    *text = NULL;
    if (!json_is_object(r) || !json_is_integer(did) || json_integer_value(did) <= 0 ||
        !json_is_string(st) || (ex != NULL && !json_is_integer(ex)) ||
        (outp != NULL && !json_is_string(outp)))
        return authcert_fail(AUTHCERT_E_USAGE, "%s: a result needs delivery (a positive "
                             "integer), status (\"ok\" or \"failed\"), and optional exit "
                             "(integer) and output (string)", what);
    s = json_string_value(st);
    if (strcmp(s, "ok") != 0 && strcmp(s, "failed") != 0)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: status must be \"ok\" or \"failed\"", what);
    keep = json_pack("{s:O, s:O*, s:O*}", "status", st, "exit", ex, "output", outp);
    if (keep == NULL || (*text = json_dumps(keep, JSON_COMPACT)) == NULL) {
        json_decref(keep);
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    json_decref(keep);
    out->did = json_integer_value(did);
    out->ok = strcmp(s, "ok") == 0;
    out->result_json = *text;
    return AUTHCERT_OK;
}

static authcert_status message_new(json_t *root, size_t nresults, authcert_agent_message **out)
{
    authcert_agent_message *m = calloc(1, sizeof *m);

    *out = NULL;
    if (m == NULL || (m->priv = calloc(1, sizeof *m->priv)) == NULL ||
        (nresults > 0 && ((m->results = calloc(nresults, sizeof *m->results)) == NULL ||
                          (m->priv->texts = calloc(nresults, sizeof *m->priv->texts)) == NULL))) {
        authcert_agent_message_free(m);
        json_decref(root);
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    m->priv->root = root;
    *out = m;
    return AUTHCERT_OK;
}

authcert_status authcert_checkin_parse(const char *body, size_t len, const char *address,
                                       authcert_agent_message **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_agent_message *m = NULL;
    json_t *root = NULL, *port, *results;
    authcert_agent_report *r;
    size_t n = 0;
    char where[48];

    if (out == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "check-in: no result pointer");
    *out = NULL;
    GUARD(load("check-in", body, len, AUTHCERT_CHECKIN_BODY_MAX, &root));
    results = json_object_get(root, "results");
    if (results != NULL && (!json_is_array(results) ||
                            json_array_size(results) > AUTHCERT_CHECKIN_RESULTS_MAX)) {
        json_decref(root);
        return authcert_fail(AUTHCERT_E_USAGE, "check-in: results must be an array of at "
                             "most %d", AUTHCERT_CHECKIN_RESULTS_MAX);
    }
    n = json_array_size(results);
    GUARD(message_new(root, n, &m));
    r = &m->report;
    r->address = address != NULL ? address : "";
    GUARD(get_string("check-in", root, "agent_id", false, &r->agent_id));
    GUARD(get_string("check-in", root, "hostname", false, &r->hostname));
    GUARD(get_string("check-in", root, "thumbprint", false, &r->thumbprint));
    GUARD(get_string("check-in", root, "version", true, &r->version));
    /* Optional: older agents have no key of their own (NULL: none reported). */
    GUARD(get_string("check-in", root, "key_pin", true, &r->key_pin));
    r->handoff = json_is_true(json_object_get(root, "handoff"));
    port = json_object_get(root, "port");
    if (!json_is_integer(port) || json_integer_value(port) < 0 ||
        json_integer_value(port) > 65535)
        FAIL(AUTHCERT_E_USAGE, "check-in: port must be an integer from 0 to 65535");
    r->port = (uint16_t)json_integer_value(port);
    if (authcert_registry_validate_report(r) != AUTHCERT_OK)
        GUARD(AUTHCERT_E_USAGE); /* its detail names the field */
    for (size_t i = 0; i < n; i++) {
        snprintf(where, sizeof where, "check-in: results[%zu]", i);
        GUARD(parse_result(where, json_array_get(results, i), &m->results[i],
                           &m->priv->texts[i]));
        m->nresults++;
    }
    *out = m;
    m = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_agent_message_free(m);
    return rc;
}

authcert_status authcert_result_parse(const char *body, size_t len,
                                      authcert_agent_message **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_agent_message *m = NULL;
    json_t *root = NULL;
    const char *id;
    size_t idlen;

    if (out == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "result: no result pointer");
    *out = NULL;
    GUARD(load("result", body, len, AUTHCERT_RESULT_BODY_MAX, &root));
    GUARD(message_new(root, 1, &m));
    GUARD(get_string("result", root, "agent_id", false, &id));
    idlen = strlen(id);
    if (idlen == 0 || idlen > AUTHCERT_AGENT_ID_MAX)
        FAIL(AUTHCERT_E_USAGE, "result: agent_id must be 1 to %d characters",
             AUTHCERT_AGENT_ID_MAX);
    for (size_t i = 0; i < idlen; i++)
        if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
            FAIL(AUTHCERT_E_USAGE, "result: agent_id must be visible ASCII");
    m->report.agent_id = id;
    GUARD(parse_result("result", root, &m->results[0], &m->priv->texts[0]));
    m->nresults = 1;
    *out = m;
    m = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_agent_message_free(m);
    return rc;
}
