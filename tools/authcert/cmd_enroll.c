/*
 * Agent enrollment, the operator's side (docs/operations.md, "Enrolling
 * agents"):
 *
 *   --enroll-token new [FILE]   a token, written with the server's URL and
 *                               TLS pins as the one file an agent needs
 *   --enroll-token list|revoke  the tokens: uses, last use, expiry
 *   --enrollments               requests waiting for --approve
 *   --approve ID [--key PIN]    let a pending agent enroll with its key
 *   --forget ID                 unbind a key (a reinstalled agent)
 *   --server-secret init        the store's server secret, for an old store
 *
 * The registry keeps only the SHA-256 of a token's secret: the secret is
 * printed (or written to FILE, 0600) once, here, and never again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authcert/auth.h"
#include "authcert/identity.h"
#include "authcert/tls.h"
#include "tool.h"

#define TOKEN_USES_DEFAULT 1
#define TOKEN_EXPIRES_DEFAULT (24 * 3600)

/* The pins of STORE/tls (the current key's, and the prepared next one's). */
static json_t *store_pins(const struct tool_opts *o)
{
    char path[4096], pin[AUTHCERT_PIN_LEN + 1];
    uint8_t *crt = NULL;
    size_t len = 0;
    EVP_PKEY *next = NULL;
    json_t *pins = json_array();

    snprintf(path, sizeof path, "%s/tls/server.crt", o->store_dir);
    if (pins != NULL && authcert_read_file(path, 1024 * 1024, &crt, &len) == AUTHCERT_OK &&
        authcert_cert_pin(crt, len, pin) == AUTHCERT_OK)
        json_array_append_new(pins, json_string(pin));
    free(crt);
    snprintf(path, sizeof path, "%s/tls/next.key", o->store_dir);
    if (pins != NULL && authcert_key_file_load(path, &next) == AUTHCERT_OK &&
        authcert_key_pin(next, pin) == AUTHCERT_OK)
        json_array_append_new(pins, json_string(pin));
    EVP_PKEY_free(next);
    return pins;
}

static authcert_status token_new(const struct tool_opts *o, authcert_registry *reg)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char id[13], secret[AUTHCERT_TOKEN_SECRET_B64_LEN + 1], hash[65], token[64], when[32];
    time_t now = time(NULL);
    long long uses = o->uses > 0 ? o->uses : TOKEN_USES_DEFAULT;
    long long life = o->expires > 0 ? o->expires : TOKEN_EXPIRES_DEFAULT;
    const char *agent = o->nagents == 1 ? o->agents[0] : NULL;
    json_t *file = NULL, *pins = NULL;
    char *text = NULL;

    if (o->nagents > 1) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "a token is for one agent id, or for any");
        goto out;
    }
    TRY(authcert_token_new(id, secret));
    authcert_token_hash(secret, hash);
    TRY(authcert_registry_token_add(reg, id, hash, (uint64_t)uses, now + life, agent, now));
    snprintf(token, sizeof token, "%s.%s", id, secret);
    OPENSSL_cleanse(secret, sizeof secret);
    tool_iso8601(now + life, when, sizeof when);
    pins = store_pins(o);
    file = json_pack("{s:s, s:I, s:s}", "token", token, "uses", (json_int_t)uses, "expires",
                     when);
    OPENSSL_cleanse(token, sizeof token);
    if (file == NULL || pins == NULL) {
        rc = authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
        goto out;
    }
    if (o->server_url != NULL)
        json_object_set_new(file, "server", json_string(o->server_url));
    if (json_array_size(pins) > 0)
        json_object_set(file, "pins", pins);
    if (agent != NULL)
        json_object_set_new(file, "agent", json_string(agent));
    if ((text = json_dumps(file, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
        rc = authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
        goto out;
    }
    if (o->npos == 2) {
        size_t n = strlen(text);
        text[n] = '\n'; /* the file ends with a newline; the NUL is not written */
        rc = authcert_write_atomic(o->pos[1], text, n + 1, 0600);
        text[n] = '\0';
        TRY(rc);
        tool_say(o, "enrollment token %s (%lld use(s), until %s%s%s) written to %s", id, uses,
                 when, agent != NULL ? ", for agent " : "", agent != NULL ? agent : "", o->pos[1]);
    } else {
        printf("%s\n", text);
    }
    if (o->server_url == NULL)
        tool_warn(o, "no --server URL in the token: give the agent --server too");
    if (json_array_size(pins) == 0)
        tool_warn(o, "no TLS pin in the token (no %s/tls/server.crt): give the agent "
                  "--server-pin or --ca-file", o->store_dir);
    rc = AUTHCERT_OK;
out:
    if (text != NULL)
        OPENSSL_clear_free(text, strlen(text));
    json_decref(file); /* it held the token: jansson's memory */
    json_decref(pins);
    return rc;
}

struct listing {
    const struct tool_opts *o;
    json_t *all;
    time_t now;
};

static authcert_status one_token(void *ctx, const authcert_enroll_token *t)
{
    struct listing *l = ctx;
    char exp[32] = "never", last[32] = "never";
    const char *state = t->revoked                              ? "revoked"
                        : t->expires_at != 0 && t->expires_at <= l->now ? "expired"
                        : t->uses_left == 0                     ? "used up"
                                                                : "active";

    if (t->expires_at != 0)
        tool_iso8601(t->expires_at, exp, sizeof exp);
    if (t->last_used_at != 0)
        tool_iso8601(t->last_used_at, last, sizeof last);
    if (l->o->json) {
        json_array_append_new(l->all, json_pack("{s:s, s:s?, s:I, s:I, s:s, s:s, s:s}", "id",
                                                t->id, "agent", t->agent_id, "uses",
                                                (json_int_t)t->uses, "uses_left",
                                                (json_int_t)t->uses_left, "expires", exp,
                                                "last_used", last, "state", state));
    } else {
        printf("%-13s %-8s %5llu used %5llu left  expires %-20s  last used %-20s  %s\n", t->id,
               state, (unsigned long long)t->uses, (unsigned long long)t->uses_left, exp, last,
               t->agent_id != NULL ? t->agent_id : "(any agent)");
    }
    return AUTHCERT_OK;
}

int cmd_enroll_token(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_registry *reg = NULL;
    authcert_store *s = NULL;
    const char *op = o->pos[0];
    struct listing l = { .o = o, .now = time(NULL) };

    if (strcmp(op, "new") != 0 && strcmp(op, "list") != 0 && strcmp(op, "revoke") != 0) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "%s: not new, list or revoke", op);
        goto out;
    }
    if ((strcmp(op, "list") == 0 && o->npos != 1) || (strcmp(op, "revoke") == 0 && o->npos != 2)) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "--enroll-token new [FILE] | list | revoke ID");
        goto out;
    }
    if (strcmp(op, "new") != 0 && (o->given & (OPT_ENROLL | OPT_AGENT)) != 0) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "--uses, --expires, --agent, --server: with new only");
        goto out;
    }
    /* Only an administrator of the store makes tokens for its server. */
    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_READ, &s));
    TRY(tool_registry_open(o, &reg));
    if (strcmp(op, "new") == 0) {
        TRY(token_new(o, reg));
    } else if (strcmp(op, "revoke") == 0) {
        TRY(authcert_registry_token_revoke(reg, o->pos[1]));
        tool_say(o, "enrollment token %s revoked", o->pos[1]);
    } else {
        l.all = json_array();
        TRY(authcert_registry_foreach_token(reg, one_token, &l));
        if (o->json) {
            char *t = json_dumps(l.all, JSON_INDENT(2));
            printf("%s\n", t != NULL ? t : "[]");
            free(t);
        }
    }
    rc = AUTHCERT_OK;
out:
    json_decref(l.all);
    if (reg != NULL)
        authcert_registry_close(reg);
    if (s != NULL)
        authcert_store_close(s);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}

static authcert_status one_pending(void *ctx, const authcert_enroll_pending *p)
{
    struct listing *l = ctx;
    char first[32], last[32];

    tool_iso8601(p->requested_at, first, sizeof first);
    tool_iso8601(p->last_seen, last, sizeof last);
    if (l->o->json)
        json_array_append_new(l->all, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "agent_id",
                                                p->agent_id, "key_pin", p->key_pin, "hostname",
                                                p->hostname, "address", p->address,
                                                "requested", first, "last_seen", last,
                                                "approved", p->approved));
    else
        printf("%-36s %s  %-20s %-15s first %s last %s%s\n", p->agent_id, p->key_pin,
               p->hostname, p->address, first, last, p->approved ? "  approved" : "");
    return AUTHCERT_OK;
}

int cmd_enrollments(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_registry *reg = NULL;
    authcert_store *s = NULL;
    struct listing l = { .o = o, .now = time(NULL) };

    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_READ, &s));
    TRY(tool_registry_open(o, &reg));
    l.all = json_array();
    TRY(authcert_registry_foreach_pending(reg, one_pending, &l));
    if (o->json) {
        char *t = json_dumps(l.all, JSON_INDENT(2));
        printf("%s\n", t != NULL ? t : "[]");
        free(t);
    }
    rc = AUTHCERT_OK;
out:
    json_decref(l.all);
    if (reg != NULL)
        authcert_registry_close(reg);
    if (s != NULL)
        authcert_store_close(s);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}

int cmd_approve(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_registry *reg = NULL;
    authcert_store *s = NULL;
    unsigned n = 0;

    if (o->key_pin != NULL && !authcert_pin_valid(o->key_pin)) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "--key: not a pin (sha256//...)");
        goto out;
    }
    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_READ, &s));
    TRY(tool_registry_open(o, &reg));
    TRY(authcert_registry_pending_approve(reg, o->pos[0], o->key_pin, &n));
    tool_say(o, "approved: agent %s enrolls at its next attempt", o->pos[0]);
    rc = AUTHCERT_OK;
out:
    if (reg != NULL)
        authcert_registry_close(reg);
    if (s != NULL)
        authcert_store_close(s);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}

int cmd_forget(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_registry *reg = NULL;
    authcert_store *s = NULL;

    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_READ, &s));
    TRY(tool_registry_open(o, &reg));
    TRY(authcert_registry_forget(reg, o->pos[0]));
    tool_say(o, "agent %s: its key is forgotten; it may enroll again (with a token made for "
             "it, or by approval)", o->pos[0]);
    rc = AUTHCERT_OK;
out:
    if (reg != NULL)
        authcert_registry_close(reg);
    if (s != NULL)
        authcert_store_close(s);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}

int cmd_server_secret(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store *s = NULL;
    bool made = false;

    if (strcmp(o->pos[0], "init") != 0) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "--server-secret init");
        goto out;
    }
    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_WRITE, &s));
    TRY(authcert_store_ensure_secret(s, &made));
    tool_say(o, made ? "server secret made in %s" : "%s has a server secret already",
             o->store_dir);
    rc = AUTHCERT_OK;
out:
    if (s != NULL)
        authcert_store_close(s);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
