/*
 * The agent registry's public face: picks the backend from the URI and checks
 * every argument once, so that backends only ever see valid input. Agent
 * reports are untrusted (any machine can check in), hence the bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "authcert/registry.h"
#include "authcert/tls.h"
#include "internal.h"
#include "registry/backend.h"

_Static_assert(AUTHCERT_KEY_PIN_LEN == AUTHCERT_PIN_LEN, "registry.h and tls.h disagree on a pin");

const char *authcert_delivery_state_name(authcert_delivery_state s)
{
    switch (s) {
    case AUTHCERT_DELIVERY_QUEUED:    return "queued";
    case AUTHCERT_DELIVERY_DELIVERED: return "delivered";
    case AUTHCERT_DELIVERY_FAILED:    return "failed";
    }
    return "unknown";
}

authcert_status authcert_registry_open(const char *uri, authcert_registry **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_registry *reg = NULL;
    const char *target = uri;

    if (out == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: no result pointer");
    *out = NULL;
    if (uri == NULL || *uri == '\0')
        return authcert_fail(AUTHCERT_E_USAGE, "registry: empty location");
    GUARD_ALLOC(reg = calloc(1, sizeof *reg));
    reg->be = &authcert_registry_sqlite;
    /* libpq takes the whole URI (both schemes are its own). */
    if (strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0)
        reg->be = &authcert_registry_pg;
    else if (strncmp(uri, "sqlite:", 7) == 0)
        target = uri + 7;
    if (*target == '\0')
        FAIL(AUTHCERT_E_USAGE, "registry: %s: no file name", uri);

    GUARD(reg->be->open(target, &reg->impl));
    *out = reg;
    reg = NULL;
    rc = AUTHCERT_OK;
out:
    free(reg);
    return rc;
}

void authcert_registry_close(authcert_registry *reg)
{
    if (reg == NULL)
        return;
    reg->be->close(reg->impl);
    free(reg);
}

authcert_status authcert_registry_schema_version(authcert_registry *reg, int *version)
{
    if (reg == NULL || version == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    return reg->be->schema_version(reg->impl, version);
}

/* ---- input bounds ---------------------------------------------------- */

static int visible_ascii(const char *s, size_t min, size_t max)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= max || (unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    }
    return i >= min;
}

/*
 * Characters that change how a name is shown without being seen: bidi
 * embeddings, overrides and isolates (U+202E makes "web-1<U+202E>gpj.exe"
 * display as "web-1exe.jpg"), zero-width ones, line and paragraph
 * separators, the BOM. A name with them could pass for another agent's in
 * --agents and -l.
 */
static int invisible(unsigned cp)
{
    return cp == 0x061c || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

/* Well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF), no controls,
 * nothing invisible. */
static int clean_utf8(const char *str, size_t max)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (s[i] != '\0') {
        unsigned c = s[i], need, cp, lo;

        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) { need = 1; cp = c & 0x1f; lo = 0x80; }
        else if (c >= 0xe0 && c <= 0xef) { need = 2; cp = c & 0x0f; lo = 0x800; }
        else if (c >= 0xf0 && c <= 0xf4) { need = 3; cp = c & 0x07; lo = 0x10000; }
        else return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < lo || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp < 0xa0) || invisible(cp))
            return 0;
        i += need + 1;
    }
    return i <= max;
}

static int is_thumbprint(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= AUTHCERT_THUMBPRINT_LEN ||
            !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return i == AUTHCERT_THUMBPRINT_LEN;
}

authcert_status authcert_registry_check_agent_id(const char *id)
{
    if (id == NULL || !visible_ascii(id, 1, AUTHCERT_AGENT_ID_MAX))
        return authcert_fail(AUTHCERT_E_USAGE,
                             "agent id must be 1 to %d visible ASCII characters",
                             AUTHCERT_AGENT_ID_MAX);
    return AUTHCERT_OK;
}

authcert_status authcert_registry_validate_report(const authcert_agent_report *r)
{
    authcert_status rc;

    if (r == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "check-in: no report");
    if ((rc = authcert_registry_check_agent_id(r->agent_id)) != AUTHCERT_OK)
        return rc;
    if (r->hostname == NULL || !clean_utf8(r->hostname, AUTHCERT_HOSTNAME_MAX))
        return authcert_fail(AUTHCERT_E_USAGE,
                             "check-in: hostname must be at most %d bytes of UTF-8 "
                             "without control, bidirectional or invisible characters",
                             AUTHCERT_HOSTNAME_MAX);
    if (r->address == NULL || !visible_ascii(r->address, 0, AUTHCERT_ADDRESS_MAX))
        return authcert_fail(AUTHCERT_E_USAGE,
                             "check-in: address must be at most %d visible ASCII "
                             "characters", AUTHCERT_ADDRESS_MAX);
    if (r->thumbprint != NULL && r->thumbprint[0] != '\0' && !is_thumbprint(r->thumbprint))
        return authcert_fail(AUTHCERT_E_USAGE,
                             "check-in: thumbprint must be 64 lowercase hex characters");
    if (r->version != NULL && !visible_ascii(r->version, 0, AUTHCERT_AGENT_VERSION_MAX))
        return authcert_fail(AUTHCERT_E_USAGE,
                             "check-in: version must be at most %d visible ASCII "
                             "characters", AUTHCERT_AGENT_VERSION_MAX);
    if (r->key_pin != NULL && r->key_pin[0] != '\0' && !authcert_pin_valid(r->key_pin))
        return authcert_fail(AUTHCERT_E_USAGE,
                             "check-in: key_pin must be \"sha256//\" and 44 base64 "
                             "characters (%d in all)", AUTHCERT_KEY_PIN_LEN);
    if (r->mac_counter > INT64_MAX)
        return authcert_fail(AUTHCERT_E_USAGE, "check-in: counter above 2^63 - 1");
    return AUTHCERT_OK;
}

/* Parse once with the project's JSON rules; the backend stores the text. */
static authcert_status check_json(const char *what, const char *text, int object_only)
{
    json_error_t err;
    json_t *j;
    size_t len;
    int ok;

    if (text == NULL)
        return AUTHCERT_OK;
    len = strnlen(text, AUTHCERT_JSON_MAX + 1);
    if (len > AUTHCERT_JSON_MAX)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: longer than %d bytes",
                             what, AUTHCERT_JSON_MAX);
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (j == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: not valid JSON: %s", what, err.text);
    ok = !object_only || json_is_object(j);
    json_decref(j);
    if (!ok)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: must be a JSON object", what);
    return AUTHCERT_OK;
}

static authcert_status check_command(const char *command, const char *args_json)
{
    if (command == NULL || !visible_ascii(command, 1, AUTHCERT_COMMAND_MAX))
        return authcert_fail(AUTHCERT_E_USAGE,
                             "command name must be 1 to %d visible ASCII characters",
                             AUTHCERT_COMMAND_MAX);
    return check_json("command arguments", args_json, 1);
}

/* ---- agents ---------------------------------------------------------- */

authcert_status authcert_registry_checkin(authcert_registry *reg,
                                          const authcert_agent_report *r, time_t now)
{
    return authcert_registry_checkin_batch(reg, r, 1, now);
}

authcert_status authcert_registry_checkin_batch(authcert_registry *reg,
                                                const authcert_agent_report *reports,
                                                size_t n, time_t now)
{
    if (reg == NULL || (reports == NULL && n > 0))
        return authcert_fail(AUTHCERT_E_USAGE, "check-in: missing argument");
    for (size_t i = 0; i < n; i++) {
        if (authcert_registry_validate_report(&reports[i]) != AUTHCERT_OK) {
            if (n > 1) {
                char why[400];
                snprintf(why, sizeof why, "%s", authcert_detail());
                return authcert_fail(AUTHCERT_E_USAGE, "report %zu of %zu: %s "
                                     "(nothing recorded)", i, n, why);
            }
            return AUTHCERT_E_USAGE;
        }
    }
    if (n == 0)
        return AUTHCERT_OK;
    return reg->be->checkin(reg->impl, reports, n, now);
}

static size_t slen(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

/* Copy the borrowed agent into one allocation the caller frees. */
static authcert_status copy_agent(void *ctx, const authcert_agent *a)
{
    authcert_agent **out = ctx, *c;
    const char *src[7] = { a->agent_id, a->hostname, a->address, a->thumbprint, a->version,
                           a->key_pin, a->clone_pin };
    const char **dst[7];
    size_t total = sizeof *c;
    char *p;

    for (int i = 0; i < 7; i++)
        total += slen(src[i]) + (src[i] == NULL);
    c = malloc(total);
    if (c == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    *c = *a;
    dst[0] = &c->agent_id; dst[1] = &c->hostname; dst[2] = &c->address;
    dst[3] = &c->thumbprint; dst[4] = &c->version; dst[5] = &c->key_pin;
    dst[6] = &c->clone_pin;
    p = (char *)(c + 1);
    for (int i = 0; i < 7; i++) {
        size_t l = src[i] != NULL ? strlen(src[i]) : 0;
        if (l > 0)
            memcpy(p, src[i], l);
        p[l] = '\0';
        *dst[i] = p;
        p += l + 1;
    }
    *out = c;
    return AUTHCERT_OK;
}

authcert_status authcert_registry_get_agent(authcert_registry *reg, const char *agent_id,
                                            authcert_agent **out)
{
    authcert_status rc;

    if (reg == NULL || out == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "get agent: missing argument");
    *out = NULL;
    if ((rc = authcert_registry_check_agent_id(agent_id)) != AUTHCERT_OK)
        return rc;
    return reg->be->get_agent(reg->impl, agent_id, copy_agent, out);
}

void authcert_agent_free(authcert_agent *a)
{
    free(a);
}

authcert_status authcert_registry_count_agents(authcert_registry *reg, uint64_t *n)
{
    if (reg == NULL || n == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "count agents: missing argument");
    return reg->be->count_agents(reg->impl, n);
}

authcert_status authcert_registry_foreach_agent(authcert_registry *reg,
                                                const authcert_agent_filter *filter,
                                                authcert_agent_cb cb, void *ctx)
{
    if (reg == NULL || cb == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "list agents: missing argument");
    return reg->be->foreach_agent(reg->impl, filter, cb, ctx);
}

authcert_status authcert_registry_count_by_thumbprint(authcert_registry *reg,
                                                      authcert_thumbprint_count_cb cb,
                                                      void *ctx)
{
    if (reg == NULL || cb == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "count by thumbprint: missing argument");
    return reg->be->count_by_thumbprint(reg->impl, cb, ctx);
}

/* ---- command queue --------------------------------------------------- */

authcert_status authcert_registry_enqueue(authcert_registry *reg, const char *agent_id,
                                          const char *command, const char *args_json,
                                          time_t now, int64_t *command_id)
{
    return authcert_registry_enqueue_list(reg, &agent_id, 1, command, args_json, now,
                                          command_id);
}

authcert_status authcert_registry_enqueue_list(authcert_registry *reg,
                                               const char *const *agent_ids, size_t n,
                                               const char *command, const char *args_json,
                                               time_t now, int64_t *command_id)
{
    authcert_status rc;
    int64_t id;

    if (reg == NULL || agent_ids == NULL || n == 0)
        return authcert_fail(AUTHCERT_E_USAGE, "enqueue: no agent given");
    for (size_t i = 0; i < n; i++)
        if ((rc = authcert_registry_check_agent_id(agent_ids[i])) != AUTHCERT_OK)
            return rc;
    if ((rc = check_command(command, args_json)) != AUTHCERT_OK)
        return rc;
    rc = reg->be->enqueue(reg->impl, agent_ids, n, command, args_json, now, &id, NULL);
    if (rc == AUTHCERT_OK && command_id != NULL)
        *command_id = id;
    return rc;
}

authcert_status authcert_registry_enqueue_all(authcert_registry *reg, const char *command,
                                              const char *args_json, time_t now,
                                              int64_t *command_id, uint64_t *deliveries)
{
    authcert_status rc;
    int64_t id;
    uint64_t count;

    if (reg == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "enqueue: no registry");
    if ((rc = check_command(command, args_json)) != AUTHCERT_OK)
        return rc;
    rc = reg->be->enqueue(reg->impl, NULL, 0, command, args_json, now, &id, &count);
    if (rc == AUTHCERT_OK) {
        if (command_id != NULL)
            *command_id = id;
        if (deliveries != NULL)
            *deliveries = count;
    }
    return rc;
}

authcert_status authcert_registry_pending(authcert_registry *reg, const char *agent_id,
                                          authcert_delivery_cb cb, void *ctx)
{
    authcert_status rc;

    if (reg == NULL || cb == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "pending: missing argument");
    if ((rc = authcert_registry_check_agent_id(agent_id)) != AUTHCERT_OK)
        return rc;
    return reg->be->pending(reg->impl, agent_id, cb, ctx);
}

#define CLAIM_LIMIT_MAX 10000
#define LEASE_MAX (7 * 24 * 3600)

authcert_status authcert_registry_claim(authcert_registry *reg, unsigned limit,
                                        unsigned lease_seconds, time_t now,
                                        authcert_delivery_cb cb, void *ctx,
                                        size_t *claimed)
{
    size_t dummy;

    if (claimed == NULL)
        claimed = &dummy;
    *claimed = 0;
    if (reg == NULL || cb == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "claim: missing argument");
    if (limit == 0 || limit > CLAIM_LIMIT_MAX)
        return authcert_fail(AUTHCERT_E_USAGE, "claim: limit must be 1 to %d",
                             CLAIM_LIMIT_MAX);
    if (lease_seconds == 0 || lease_seconds > LEASE_MAX)
        return authcert_fail(AUTHCERT_E_USAGE, "claim: lease must be 1 to %d seconds",
                             LEASE_MAX);
    return reg->be->claim(reg->impl, limit, lease_seconds, now, cb, ctx, claimed);
}

authcert_status authcert_registry_claim_agent(authcert_registry *reg, const char *agent_id,
                                              unsigned limit, unsigned lease_seconds,
                                              time_t now, authcert_delivery_cb cb, void *ctx,
                                              size_t *claimed)
{
    authcert_status rc;
    size_t dummy;

    if (claimed == NULL)
        claimed = &dummy;
    *claimed = 0;
    if (reg == NULL || cb == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "claim: missing argument");
    if ((rc = authcert_registry_check_agent_id(agent_id)) != AUTHCERT_OK)
        return rc;
    if (limit == 0 || limit > CLAIM_LIMIT_MAX)
        return authcert_fail(AUTHCERT_E_USAGE, "claim: limit must be 1 to %d",
                             CLAIM_LIMIT_MAX);
    if (lease_seconds == 0 || lease_seconds > LEASE_MAX)
        return authcert_fail(AUTHCERT_E_USAGE, "claim: lease must be 1 to %d seconds",
                             LEASE_MAX);
    return reg->be->claim_agent(reg->impl, agent_id, limit, lease_seconds, now, cb, ctx,
                                claimed);
}

static authcert_status check_state(authcert_delivery_state state)
{
    if (state != AUTHCERT_DELIVERY_QUEUED && state != AUTHCERT_DELIVERY_DELIVERED &&
        state != AUTHCERT_DELIVERY_FAILED)
        return authcert_fail(AUTHCERT_E_USAGE, "record result: unknown state %d",
                             (int)state);
    return AUTHCERT_OK;
}

authcert_status authcert_registry_record_agent_result(authcert_registry *reg,
                                                      const char *agent_id, int64_t did,
                                                      authcert_delivery_state state,
                                                      const char *result_json, time_t now,
                                                      int64_t *delivery_id)
{
    authcert_status rc;

    if (reg == NULL || did <= 0)
        return authcert_fail(AUTHCERT_E_USAGE, "record result: missing argument");
    if ((rc = authcert_registry_check_agent_id(agent_id)) != AUTHCERT_OK ||
        (rc = check_state(state)) != AUTHCERT_OK ||
        (rc = check_json("delivery result", result_json, 0)) != AUTHCERT_OK)
        return rc;
    return reg->be->record_agent_result(reg->impl, agent_id, did, state, result_json, now,
                                        delivery_id);
}

static authcert_status check_filter(const authcert_agent_filter *f)
{
    if (f == NULL)
        return AUTHCERT_OK;
    if ((f->thumbprint != NULL && !is_thumbprint(f->thumbprint) && *f->thumbprint != '\0') ||
        (f->not_thumbprint != NULL && !is_thumbprint(f->not_thumbprint) &&
         *f->not_thumbprint != '\0'))
        return authcert_fail(AUTHCERT_E_USAGE,
                             "agent filter: a thumbprint is 64 lowercase hex characters");
    return AUTHCERT_OK;
}

authcert_status authcert_registry_enqueue_matching(authcert_registry *reg,
                                                   const authcert_agent_filter *filter,
                                                   const char *command, const char *args_json,
                                                   const char *key, time_t now,
                                                   int64_t *command_id, uint64_t *deliveries)
{
    authcert_status rc;
    int64_t id = 0;
    uint64_t count = 0;

    if (reg == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "enqueue: no registry");
    if ((rc = check_filter(filter)) != AUTHCERT_OK ||
        (rc = check_command(command, args_json)) != AUTHCERT_OK)
        return rc;
    if (key != NULL && !visible_ascii(key, 1, AUTHCERT_COMMAND_MAX))
        return authcert_fail(AUTHCERT_E_USAGE, "enqueue: a key must be 1 to %d visible "
                             "ASCII characters", AUTHCERT_COMMAND_MAX);
    rc = reg->be->enqueue_matching(reg->impl, filter, command, args_json, key, now, &id,
                                   &count);
    if (rc == AUTHCERT_OK) {
        if (command_id != NULL)
            *command_id = id;
        if (deliveries != NULL)
            *deliveries = count;
    }
    return rc;
}

authcert_status authcert_registry_update_thumbprint(authcert_registry *reg,
                                                    const char *agent_id, const char *from,
                                                    const char *to, bool *changed)
{
    authcert_status rc;
    bool dummy;

    if (changed == NULL)
        changed = &dummy;
    *changed = false;
    if (reg == NULL || from == NULL || to == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "update thumbprint: missing argument");
    if ((rc = authcert_registry_check_agent_id(agent_id)) != AUTHCERT_OK)
        return rc;
    if (!is_thumbprint(from) || !is_thumbprint(to))
        return authcert_fail(AUTHCERT_E_USAGE,
                             "update thumbprint: 64 lowercase hex characters each");
    return reg->be->update_thumbprint(reg->impl, agent_id, from, to, changed);
}

authcert_status authcert_registry_record_result(authcert_registry *reg, int64_t delivery_id,
                                                authcert_delivery_state state,
                                                const char *result_json, time_t now)
{
    authcert_status rc;

    if (reg == NULL || delivery_id <= 0)
        return authcert_fail(AUTHCERT_E_USAGE, "record result: missing argument");
    if ((rc = check_state(state)) != AUTHCERT_OK ||
        (rc = check_json("delivery result", result_json, 0)) != AUTHCERT_OK)
        return rc;
    return reg->be->record_result(reg->impl, delivery_id, state, result_json, now);
}

authcert_status authcert_registry_record_results(authcert_registry *reg,
                                                 authcert_delivery_outcome *o, size_t n,
                                                 time_t now)
{
    authcert_status rc;

    if (reg == NULL || (o == NULL && n > 0))
        return authcert_fail(AUTHCERT_E_USAGE, "record results: missing argument");
    for (size_t i = 0; i < n; i++) {
        if (o[i].delivery_id <= 0)
            return authcert_fail(AUTHCERT_E_USAGE, "record results: missing argument");
        if ((rc = check_state(o[i].state)) != AUTHCERT_OK ||
            (rc = check_json("delivery result", o[i].result_json, 0)) != AUTHCERT_OK)
            return rc;
        o[i].status = AUTHCERT_OK;
    }
    if (n == 0)
        return AUTHCERT_OK;
    return reg->be->record_results(reg->impl, o, n, now);
}

authcert_status authcert_registry_results(authcert_registry *reg, int64_t command_id,
                                          authcert_delivery_cb cb, void *ctx)
{
    if (reg == NULL || cb == NULL || command_id <= 0)
        return authcert_fail(AUTHCERT_E_USAGE, "results: missing argument");
    return reg->be->results(reg->impl, command_id, cb, ctx);
}

authcert_status authcert_registry_node_report(authcert_registry *reg, const char *node_id,
                                              const char *thumbprint, time_t now)
{
    authcert_status rc;

    if (reg == NULL || thumbprint == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "node report: missing argument");
    if ((rc = authcert_registry_check_agent_id(node_id)) != AUTHCERT_OK) /* same rules as an agent id */
        return authcert_fail(AUTHCERT_E_USAGE, "node id: 1..%d visible ASCII characters",
                             AUTHCERT_AGENT_ID_MAX);
    if (!is_thumbprint(thumbprint))
        return authcert_fail(AUTHCERT_E_USAGE, "node report: 64 lowercase hex characters");
    return reg->be->node_report(reg->impl, node_id, thumbprint, now);
}

authcert_status authcert_registry_foreach_node(authcert_registry *reg, time_t since,
                                               authcert_node_cb cb, void *ctx)
{
    if (reg == NULL || cb == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "nodes: missing argument");
    return reg->be->foreach_node(reg->impl, since, cb, ctx);
}
