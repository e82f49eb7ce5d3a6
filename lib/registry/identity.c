/*
 * Who each agent is (authcert/identity.h): the key bound to its id, the
 * enrollment tokens and pending requests that bind it, and the counter that
 * refuses a replayed request.
 *
 * Written once for both backends, in the SQL they share (reg->be->sql with
 * ?N parameters). Each call that reads then writes does it in one durable
 * transaction whose SELECT locks the rows it decides on (FOR UPDATE on
 * PostgreSQL; BEGIN IMMEDIATE locks the whole file on SQLite), so two
 * server nodes given the same enrollment, or the last use of a token, at
 * the same moment decide one after the other.
 *
 * Refusal details hold one fixed word the daemon's answers key on:
 * "clone", "known", "revoked", "expired", "used up", "another agent".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "authcert/identity.h"
#include "authcert/tls.h"
#include "internal.h"
#include "registry/backend.h"

#define BE(reg) ((reg)->be)
#define SQL(reg, text, params, n, cb, ctx, changes)                                 \
    BE(reg)->sql((reg)->impl, (text), (params), (n), (cb), (ctx), (changes))
/* A SELECT that locks the rows it reads against other nodes, inside a
 * transaction: both forms are constants (a backend caches by the pointer). */
#define LOCKED(reg, text) (BE(reg)->row_locks ? (text " FOR UPDATE") : (text))

/* ---- argument checks -------------------------------------------------- */

static bool b64url(const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        if (i >= max || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return i > 0;
}

static bool hex64(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++)
        if (i >= AUTHCERT_TOKEN_HASH_LEN ||
            !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == AUTHCERT_TOKEN_HASH_LEN;
}

static authcert_status check_id(const char *agent_id)
{
    authcert_status rc = authcert_registry_check_agent_id(agent_id);

    if (rc == AUTHCERT_OK && strcmp(agent_id, "*") == 0)
        return authcert_fail(AUTHCERT_E_USAGE, "\"*\" is not an agent id (it means every agent)");
    return rc;
}

static authcert_status check_pin(const char *pin)
{
    if (pin == NULL || !authcert_pin_valid(pin))
        return authcert_fail(AUTHCERT_E_USAGE, "a key pin is \"sha256//\" and 44 base64 "
                             "characters");
    return AUTHCERT_OK;
}

static authcert_status check_spki(const char *spki)
{
    if (spki == NULL || !b64url(spki, AUTHCERT_SPKI_B64_MAX))
        return authcert_fail(AUTHCERT_E_USAGE, "a key is 1 to %d characters of base64url",
                             AUTHCERT_SPKI_B64_MAX);
    return AUTHCERT_OK;
}

static authcert_status check_token_id(const char *id)
{
    if (id == NULL || !b64url(id, AUTHCERT_TOKEN_ID_MAX))
        return authcert_fail(AUTHCERT_E_USAGE, "a token id is 1 to %d characters of "
                             "[A-Za-z0-9_-]", AUTHCERT_TOKEN_ID_MAX);
    return AUTHCERT_OK;
}

static authcert_status check_request(const authcert_enroll_request *r)
{
    authcert_status rc;

    if (r == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "enrollment: no request");
    authcert_agent_report rep = { .agent_id = r->agent_id, .hostname = r->hostname,
                                  .address = r->address, .port = r->port,
                                  .version = r->version, .key_pin = r->key_pin };
    if ((rc = check_id(r->agent_id)) != AUTHCERT_OK ||
        (rc = authcert_registry_validate_report(&rep)) != AUTHCERT_OK ||
        (rc = check_pin(r->key_pin)) != AUTHCERT_OK || (rc = check_spki(r->key_spki)) != AUTHCERT_OK)
        return rc;
    return AUTHCERT_OK;
}

static const char *str(const char *s)
{
    return s != NULL ? s : "";
}

static uint64_t num(const char *s)
{
    return strtoull(s, NULL, 10);
}

/* ---- reading an identity ---------------------------------------------- */

#define IDENTITY_COLS "agent_id, key_pin, key_spki, key_epoch, mac_counter, enrolled_at, " \
                      "clone_pin, clone_seen_at, known_before"

static authcert_status copy_identity(void *ctx, const char *const *c, int n)
{
    authcert_agent_identity **out = ctx, *id;
    char *s[4];

    (void)n;
    if ((id = calloc(1, sizeof *id)) == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    s[0] = strdup(c[0]);
    s[1] = strdup(c[1]);
    s[2] = strdup(c[2]);
    s[3] = strdup(c[6]);
    id->agent_id = s[0];
    id->key_pin = s[1];
    id->key_spki = s[2];
    id->key_epoch = num(c[3]);
    id->mac_counter = num(c[4]);
    id->enrolled_at = (time_t)num(c[5]);
    id->clone_pin = s[3];
    id->clone_seen_at = (time_t)num(c[7]);
    id->known_before = num(c[8]) != 0;
    authcert_agent_identity_free(*out);
    *out = id;
    if (s[0] == NULL || s[1] == NULL || s[2] == NULL || s[3] == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    return AUTHCERT_OK;
}

void authcert_agent_identity_free(authcert_agent_identity *id)
{
    if (id == NULL)
        return;
    free((char *)id->agent_id);
    free((char *)id->key_pin);
    free((char *)id->key_spki);
    free((char *)id->clone_pin);
    free(id);
}

authcert_status authcert_registry_get_identity(authcert_registry *reg, const char *agent_id,
                                               authcert_agent_identity **out)
{
    authcert_status rc;
    reg_value p[1] = { REG_TEXT(agent_id) };

    if (reg == NULL || out == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    *out = NULL;
    if ((rc = authcert_registry_check_agent_id(agent_id)) != AUTHCERT_OK)
        return rc;
    rc = SQL(reg, "SELECT " IDENTITY_COLS " FROM agents WHERE agent_id = ?1", p, 1,
             copy_identity, out, NULL);
    if (rc != AUTHCERT_OK) {
        authcert_agent_identity_free(*out);
        *out = NULL;
        return rc;
    }
    if (*out == NULL)
        return authcert_fail(AUTHCERT_E_NOTFOUND, "registry: no agent %s", agent_id);
    return AUTHCERT_OK;
}

struct auth_state {
    bool found, bound;
    uint64_t epoch, counter;
};

static authcert_status read_auth_state(void *ctx, const char *const *c, int n)
{
    struct auth_state *a = ctx;

    (void)n;
    a->found = true;
    a->bound = c[0][0] != '\0';
    a->epoch = num(c[1]);
    a->counter = num(c[2]);
    return AUTHCERT_OK;
}

authcert_status authcert_registry_auth_state(authcert_registry *reg, const char *agent_id,
                                             bool *bound, uint64_t *epoch, uint64_t *counter)
{
    authcert_status rc;
    struct auth_state a = { 0 };
    reg_value p[1] = { REG_TEXT(agent_id) };

    if (reg == NULL || bound == NULL || epoch == NULL || counter == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    if ((rc = authcert_registry_check_agent_id(agent_id)) != AUTHCERT_OK)
        return rc;
    rc = SQL(reg, "SELECT key_spki, key_epoch, mac_counter FROM agents WHERE agent_id = ?1",
             p, 1, read_auth_state, &a, NULL);
    if (rc != AUTHCERT_OK)
        return rc;
    if (!a.found)
        return authcert_fail(AUTHCERT_E_NOTFOUND, "registry: no agent %s", agent_id);
    *bound = a.bound;
    *epoch = a.epoch;
    *counter = a.counter;
    return AUTHCERT_OK;
}

authcert_status authcert_registry_auth_advance(authcert_registry *reg, const char *agent_id,
                                               uint64_t epoch, uint64_t counter, bool *advanced)
{
    authcert_status rc;
    uint64_t changes = 0;

    if (reg == NULL || advanced == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    *advanced = false;
    if ((rc = authcert_registry_check_agent_id(agent_id)) != AUTHCERT_OK)
        return rc;
    if (epoch > INT64_MAX || counter > INT64_MAX)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: epoch or counter above 2^63 - 1");
    reg_value p[3] = { REG_TEXT(agent_id), REG_NUM(epoch), REG_NUM(counter) };
    rc = SQL(reg, "UPDATE agents SET mac_counter = ?3 WHERE agent_id = ?1 AND key_spki <> '' "
             "AND key_epoch = ?2 AND mac_counter < ?3", p, 3, NULL, NULL, &changes);
    if (rc == AUTHCERT_OK)
        *advanced = changes > 0;
    return rc;
}

/* ---- binding a key ---------------------------------------------------- */

#define BOUND_SELECT "SELECT key_pin, key_spki, key_epoch, known_before FROM agents " \
                     "WHERE agent_id = ?1"

struct bound {
    bool found;
    char pin[AUTHCERT_KEY_PIN_LEN + 1];
    bool has_key, known;
    uint64_t epoch;
};

static authcert_status read_bound(void *ctx, const char *const *c, int n)
{
    struct bound *b = ctx;

    (void)n;
    b->found = true;
    snprintf(b->pin, sizeof b->pin, "%s", c[0]);
    b->has_key = c[1][0] != '\0';
    b->epoch = num(c[2]);
    b->known = num(c[3]) != 0;
    return AUTHCERT_OK;
}

static authcert_status begin(authcert_registry *reg)
{
    return BE(reg)->tx(reg->impl, REG_BEGIN);
}

/* Commit when rc is OK or keep says so (a refusal that records something). */
static authcert_status end(authcert_registry *reg, authcert_status rc, bool keep)
{
    authcert_status c;

    if (rc == AUTHCERT_OK || keep) {
        /* a COMMIT that works leaves the refusal's detail as it is */
        c = BE(reg)->tx(reg->impl, REG_COMMIT);
        return c != AUTHCERT_OK ? c : rc;
    }
    (void)BE(reg)->tx(reg->impl, REG_ROLLBACK);
    return rc;
}

/* Lock the agent's row (made when the id is new) and read what binding needs. */
static authcert_status lock_agent(authcert_registry *reg, const authcert_enroll_request *r,
                                  time_t now, struct bound *b)
{
    authcert_status rc;
    reg_value ins[6] = { REG_TEXT(r->agent_id), REG_TEXT(r->hostname), REG_TEXT(r->address),
                         REG_NUM(r->port), REG_TEXT(str(r->version)), REG_NUM(now) };
    reg_value p[1] = { REG_TEXT(r->agent_id) };

    rc = SQL(reg, "INSERT INTO agents(agent_id, hostname, address, port, thumbprint, version, "
             "first_seen, last_seen, key_pin, known_before) VALUES (?1, ?2, ?3, ?4, '', ?5, ?6, "
             "?6, '', 0) ON CONFLICT (agent_id) DO NOTHING", ins, 6, NULL, NULL, NULL);
    if (rc != AUTHCERT_OK)
        return rc;
    memset(b, 0, sizeof *b);
    rc = SQL(reg, LOCKED(reg, BOUND_SELECT), p, 1, read_bound, b, NULL);
    if (rc != AUTHCERT_OK)
        return rc;
    if (!b->found)
        return authcert_fail(AUTHCERT_E_INTERNAL, "registry: agent %s vanished", r->agent_id);
    return AUTHCERT_OK;
}

/*
 * Bind inside the caller's transaction. *keep: commit even though rc is a
 * refusal (a clone was recorded).
 */
static authcert_status bind_locked(authcert_registry *reg, const authcert_enroll_request *r,
                                   bool allow_known, time_t now, uint64_t *epoch, bool *keep)
{
    authcert_status rc;
    struct bound b;
    reg_value id[1] = { REG_TEXT(r->agent_id) };

    *keep = false;
    if ((rc = lock_agent(reg, r, now, &b)) != AUTHCERT_OK)
        return rc;
    if (b.has_key) {
        if (CRYPTO_memcmp(b.pin, r->key_pin, AUTHCERT_KEY_PIN_LEN) == 0 &&
            strlen(b.pin) == strlen(r->key_pin)) {
            *epoch = b.epoch; /* the same key again: the agent lost its MAC key only */
            return SQL(reg, "DELETE FROM enroll_pending WHERE agent_id = ?1", id, 1, NULL, NULL,
                       NULL);
        }
        reg_value c[3] = { REG_TEXT(r->agent_id), REG_TEXT(r->key_pin), REG_NUM(now) };
        rc = SQL(reg, "UPDATE agents SET clone_pin = ?2, clone_seen_at = ?3 WHERE agent_id = ?1",
                 c, 3, NULL, NULL, NULL);
        if (rc != AUTHCERT_OK)
            return rc;
        *keep = true;
        return authcert_fail(AUTHCERT_E_POLICY, "agent %s is bound to another key (%s): a "
                             "clone, refused", r->agent_id, b.pin);
    }
    if (b.known && !allow_known)
        return authcert_fail(AUTHCERT_E_POLICY, "agent %s checked in before it enrolled "
                             "(known): only approval or a token made for this id binds it",
                             r->agent_id);
    if (b.epoch >= INT64_MAX)
        return authcert_fail(AUTHCERT_E_POLICY, "agent %s: key epochs exhausted", r->agent_id);
    reg_value u[8] = { REG_TEXT(r->agent_id), REG_TEXT(r->key_pin), REG_TEXT(r->key_spki),
                       REG_NUM(now), REG_TEXT(r->hostname), REG_TEXT(r->address),
                       REG_NUM(r->port), REG_TEXT(str(r->version)) };
    rc = SQL(reg, "UPDATE agents SET key_pin = ?2, key_spki = ?3, key_epoch = key_epoch + 1, "
             "mac_counter = 0, enrolled_at = ?4, clone_pin = '', clone_seen_at = 0, "
             "hostname = ?5, address = ?6, port = ?7, version = ?8, last_seen = ?4 "
             "WHERE agent_id = ?1", u, 8, NULL, NULL, NULL);
    if (rc != AUTHCERT_OK)
        return rc;
    *epoch = b.epoch + 1;
    return SQL(reg, "DELETE FROM enroll_pending WHERE agent_id = ?1", id, 1, NULL, NULL, NULL);
}

authcert_status authcert_registry_bind_key(authcert_registry *reg,
                                           const authcert_enroll_request *r, bool allow_known,
                                           time_t now, uint64_t *epoch)
{
    authcert_status rc;
    bool keep = false;

    if (reg == NULL || epoch == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    if ((rc = check_request(r)) != AUTHCERT_OK)
        return rc;
    if ((rc = begin(reg)) != AUTHCERT_OK)
        return rc;
    rc = bind_locked(reg, r, allow_known, now, epoch, &keep);
    return end(reg, rc, keep);
}

/* ---- tokens ------------------------------------------------------------- */

struct token_row {
    bool found;
    char hash[AUTHCERT_TOKEN_HASH_LEN + 1];
    char agent_id[AUTHCERT_AGENT_ID_MAX + 1];
    bool for_agent, revoked;
    uint64_t uses_left;
    time_t expires_at;
};

static authcert_status read_token(void *ctx, const char *const *c, int n)
{
    struct token_row *t = ctx;

    (void)n;
    t->found = true;
    snprintf(t->hash, sizeof t->hash, "%s", c[0]);
    snprintf(t->agent_id, sizeof t->agent_id, "%s", c[1]);
    t->for_agent = c[1][0] != '\0';
    t->uses_left = num(c[2]);
    t->expires_at = (time_t)num(c[3]);
    t->revoked = num(c[4]) != 0;
    return AUTHCERT_OK;
}

static authcert_status token_locked(authcert_registry *reg, const char *token_id,
                                    const char *token_hash, const authcert_enroll_request *r,
                                    time_t now, uint64_t *epoch, bool *keep)
{
    authcert_status rc;
    struct token_row t = { 0 };
    reg_value p[1] = { REG_TEXT(token_id) };

    rc = SQL(reg, LOCKED(reg, "SELECT hash, coalesce(agent_id, ''), uses_left, expires_at, "
                         "revoked FROM enroll_tokens WHERE id = ?1"), p, 1, read_token, &t, NULL);
    if (rc != AUTHCERT_OK)
        return rc;
    /* No such token and a wrong secret answer alike: an id is not a secret,
     * but the answer should not help guess which ids exist. */
    if (!t.found || strlen(t.hash) != AUTHCERT_TOKEN_HASH_LEN ||
        CRYPTO_memcmp(t.hash, token_hash, AUTHCERT_TOKEN_HASH_LEN) != 0)
        return authcert_fail(AUTHCERT_E_AUTH, "no enrollment token %s with that secret",
                             token_id);
    if (t.revoked)
        return authcert_fail(AUTHCERT_E_POLICY, "enrollment token %s is revoked", token_id);
    if (t.expires_at != 0 && now >= t.expires_at)
        return authcert_fail(AUTHCERT_E_POLICY, "enrollment token %s expired", token_id);
    if (t.uses_left == 0)
        return authcert_fail(AUTHCERT_E_POLICY, "enrollment token %s is used up", token_id);
    if (t.for_agent && strcmp(t.agent_id, r->agent_id) != 0)
        return authcert_fail(AUTHCERT_E_POLICY, "enrollment token %s was made for another "
                             "agent", token_id);
    /* A token made for this id may bind it even though it checked in before. */
    if ((rc = bind_locked(reg, r, t.for_agent, now, epoch, keep)) != AUTHCERT_OK)
        return rc;
    reg_value u[2] = { REG_TEXT(token_id), REG_NUM(now) };
    return SQL(reg, "UPDATE enroll_tokens SET uses_left = uses_left - 1, uses = uses + 1, "
               "last_used_at = ?2 WHERE id = ?1", u, 2, NULL, NULL, NULL);
}

authcert_status authcert_registry_enroll_with_token(authcert_registry *reg,
                                                    const char *token_id,
                                                    const char *token_hash,
                                                    const authcert_enroll_request *r,
                                                    time_t now, uint64_t *epoch)
{
    authcert_status rc;
    bool keep = false;

    if (reg == NULL || epoch == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    if ((rc = check_request(r)) != AUTHCERT_OK || (rc = check_token_id(token_id)) != AUTHCERT_OK)
        return rc;
    if (token_hash == NULL || !hex64(token_hash))
        return authcert_fail(AUTHCERT_E_USAGE, "a token hash is 64 lowercase hex characters");
    if ((rc = begin(reg)) != AUTHCERT_OK)
        return rc;
    rc = token_locked(reg, token_id, token_hash, r, now, epoch, &keep);
    return end(reg, rc, keep);
}

authcert_status authcert_registry_token_add(authcert_registry *reg, const char *id,
                                            const char *hash, uint64_t uses, time_t expires_at,
                                            const char *agent_id, time_t now)
{
    authcert_status rc;
    uint64_t changes = 0;

    if (reg == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    if ((rc = check_token_id(id)) != AUTHCERT_OK)
        return rc;
    if (hash == NULL || !hex64(hash))
        return authcert_fail(AUTHCERT_E_USAGE, "a token hash is 64 lowercase hex characters");
    if (uses < 1 || uses > 1000000)
        return authcert_fail(AUTHCERT_E_USAGE, "a token's uses: 1 to 1000000");
    if (expires_at < 0)
        return authcert_fail(AUTHCERT_E_USAGE, "a token's expiry: a time after 1970");
    if (agent_id != NULL && (rc = check_id(agent_id)) != AUTHCERT_OK)
        return rc;
    reg_value p[6] = { REG_TEXT(id), REG_TEXT(hash), agent_id != NULL ? REG_TEXT(agent_id)
                                                                      : REG_TEXT(""),
                       REG_NUM(uses), REG_NUM(now), REG_NUM(expires_at) };
    if ((rc = begin(reg)) != AUTHCERT_OK)
        return rc;
    rc = SQL(reg, "INSERT INTO enroll_tokens(id, hash, agent_id, uses_left, created_at, "
             "expires_at) VALUES (?1, ?2, nullif(CAST(?3 AS text), ''), ?4, ?5, ?6) ON CONFLICT (id) DO "
             "NOTHING", p, 6, NULL, NULL, &changes);
    if (rc == AUTHCERT_OK && changes == 0)
        rc = authcert_fail(AUTHCERT_E_USAGE, "a token %s exists already", id);
    return end(reg, rc, false);
}

authcert_status authcert_registry_token_revoke(authcert_registry *reg, const char *id)
{
    authcert_status rc;
    uint64_t changes = 0;
    reg_value p[1] = { REG_TEXT(id) };

    if (reg == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    if ((rc = check_token_id(id)) != AUTHCERT_OK)
        return rc;
    if ((rc = begin(reg)) != AUTHCERT_OK)
        return rc;
    rc = SQL(reg, "UPDATE enroll_tokens SET revoked = 1 WHERE id = ?1", p, 1, NULL, NULL,
             &changes);
    if (rc == AUTHCERT_OK && changes == 0)
        rc = authcert_fail(AUTHCERT_E_NOTFOUND, "no enrollment token %s", id);
    return end(reg, rc, false);
}

struct walk {
    authcert_token_cb token;
    authcert_pending_cb pending;
    void *ctx;
};

static authcert_status token_row(void *ctx, const char *const *c, int n)
{
    struct walk *w = ctx;
    authcert_enroll_token t = {
        .id = c[0], .agent_id = c[1][0] != '\0' ? c[1] : NULL, .uses_left = num(c[2]),
        .uses = num(c[3]), .created_at = (time_t)num(c[4]), .expires_at = (time_t)num(c[5]),
        .last_used_at = (time_t)num(c[6]), .revoked = num(c[7]) != 0,
    };

    (void)n;
    return w->token(w->ctx, &t);
}

authcert_status authcert_registry_foreach_token(authcert_registry *reg, authcert_token_cb cb,
                                                void *ctx)
{
    struct walk w = { .token = cb, .ctx = ctx };

    if (reg == NULL || cb == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    return SQL(reg, "SELECT id, coalesce(agent_id, ''), uses_left, uses, created_at, "
               "expires_at, last_used_at, revoked FROM enroll_tokens ORDER BY created_at, id",
               NULL, 0, token_row, &w, NULL);
}

/* ---- rotation and forgetting -------------------------------------------- */

authcert_status authcert_registry_rotate_key(authcert_registry *reg, const char *agent_id,
                                             const char *old_pin, const char *new_pin,
                                             const char *new_spki, time_t now, uint64_t *epoch)
{
    authcert_status rc;
    struct bound b;
    reg_value p[1] = { REG_TEXT(agent_id) };

    if (reg == NULL || epoch == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    if ((rc = check_id(agent_id)) != AUTHCERT_OK || (rc = check_pin(old_pin)) != AUTHCERT_OK ||
        (rc = check_pin(new_pin)) != AUTHCERT_OK || (rc = check_spki(new_spki)) != AUTHCERT_OK)
        return rc;
    if ((rc = begin(reg)) != AUTHCERT_OK)
        return rc;
    memset(&b, 0, sizeof b);
    rc = SQL(reg, LOCKED(reg, BOUND_SELECT), p, 1, read_bound, &b, NULL);
    if (rc != AUTHCERT_OK)
        return end(reg, rc, false);
    if (!b.found || !b.has_key)
        return end(reg, authcert_fail(AUTHCERT_E_POLICY, "agent %s is not enrolled", agent_id),
                   false);
    if (strcmp(b.pin, old_pin) != 0)
        return end(reg, authcert_fail(AUTHCERT_E_POLICY, "agent %s is bound to another key "
                                      "than the one that asked", agent_id), false);
    if (b.epoch >= INT64_MAX)
        return end(reg, authcert_fail(AUTHCERT_E_POLICY, "agent %s: key epochs exhausted",
                                      agent_id), false);
    reg_value u[4] = { REG_TEXT(agent_id), REG_TEXT(new_pin), REG_TEXT(new_spki), REG_NUM(now) };
    rc = SQL(reg, "UPDATE agents SET key_pin = ?2, key_spki = ?3, key_epoch = key_epoch + 1, "
             "mac_counter = 0, enrolled_at = ?4 WHERE agent_id = ?1", u, 4, NULL, NULL, NULL);
    if (rc == AUTHCERT_OK)
        *epoch = b.epoch + 1;
    return end(reg, rc, false);
}

authcert_status authcert_registry_forget(authcert_registry *reg, const char *agent_id)
{
    authcert_status rc;
    uint64_t changes = 0;
    reg_value p[1] = { REG_TEXT(agent_id) };

    if (reg == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    if ((rc = check_id(agent_id)) != AUTHCERT_OK)
        return rc;
    if ((rc = begin(reg)) != AUTHCERT_OK)
        return rc;
    rc = SQL(reg, "UPDATE agents SET key_pin = '', key_spki = '', clone_pin = '', "
             "clone_seen_at = 0, enrolled_at = 0 WHERE agent_id = ?1", p, 1, NULL, NULL,
             &changes);
    if (rc == AUTHCERT_OK && changes == 0)
        rc = authcert_fail(AUTHCERT_E_NOTFOUND, "registry: no agent %s", agent_id);
    if (rc == AUTHCERT_OK)
        rc = SQL(reg, "DELETE FROM enroll_pending WHERE agent_id = ?1", p, 1, NULL, NULL, NULL);
    return end(reg, rc, false);
}

/* ---- pending requests --------------------------------------------------- */

struct pending_probe {
    bool exists, approved;
    uint64_t count;
};

static authcert_status read_probe(void *ctx, const char *const *c, int n)
{
    struct pending_probe *p = ctx;

    (void)n;
    p->count = num(c[0]);
    p->exists = c[1][0] != '\0';
    p->approved = num(c[1]) != 0;
    return AUTHCERT_OK;
}

authcert_status authcert_registry_pending_add(authcert_registry *reg,
                                              const authcert_enroll_request *r, unsigned cap,
                                              time_t now, bool *approved)
{
    authcert_status rc;
    struct pending_probe pr = { 0 };
    reg_value k[2];

    if (reg == NULL || approved == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    *approved = false;
    if ((rc = check_request(r)) != AUTHCERT_OK)
        return rc;
    k[0] = REG_TEXT(r->agent_id);
    k[1] = REG_TEXT(r->key_pin);
    if ((rc = begin(reg)) != AUTHCERT_OK)
        return rc;
    rc = SQL(reg, "SELECT (SELECT count(*) FROM enroll_pending), coalesce((SELECT "
             "CAST(approved AS text) FROM enroll_pending WHERE agent_id = ?1 AND key_pin = ?2), "
             "'')", k, 2, read_probe, &pr, NULL);
    if (rc != AUTHCERT_OK)
        return end(reg, rc, false);
    if (!pr.exists && pr.count >= cap)
        return end(reg, authcert_fail(AUTHCERT_E_BUSY, "%llu enrollment requests are pending "
                                      "already", (unsigned long long)pr.count), false);
    reg_value u[9] = { REG_TEXT(r->agent_id), REG_TEXT(r->key_pin), REG_TEXT(r->key_spki),
                       REG_TEXT(r->hostname), REG_TEXT(r->address), REG_NUM(r->port),
                       REG_TEXT(str(r->version)), REG_NUM(now) };
    rc = SQL(reg, "INSERT INTO enroll_pending(agent_id, key_pin, key_spki, hostname, address, "
             "port, version, requested_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
             "?8) ON CONFLICT (agent_id, key_pin) DO UPDATE SET hostname = excluded.hostname, "
             "address = excluded.address, port = excluded.port, version = excluded.version, "
             "last_seen = excluded.last_seen", u, 8, NULL, NULL, NULL);
    if (rc == AUTHCERT_OK)
        *approved = pr.exists && pr.approved;
    return end(reg, rc, false);
}

struct pins {
    char list[512];
    unsigned n;
};

static authcert_status collect_pin(void *ctx, const char *const *c, int n)
{
    struct pins *p = ctx;
    size_t len = strlen(p->list);

    (void)n;
    if (len + strlen(c[0]) + 3 < sizeof p->list)
        snprintf(p->list + len, sizeof p->list - len, "%s%s", p->n > 0 ? ", " : "", c[0]);
    p->n++;
    return AUTHCERT_OK;
}

authcert_status authcert_registry_pending_approve(authcert_registry *reg, const char *agent_id,
                                                  const char *key_pin, unsigned *n)
{
    authcert_status rc;
    struct pins pins = { .list = "", .n = 0 };
    uint64_t changes = 0;
    reg_value p[2] = { REG_TEXT(agent_id), REG_TEXT(str(key_pin)) };

    if (reg == NULL || n == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    *n = 0;
    if ((rc = check_id(agent_id)) != AUTHCERT_OK ||
        (key_pin != NULL && (rc = check_pin(key_pin)) != AUTHCERT_OK))
        return rc;
    if ((rc = begin(reg)) != AUTHCERT_OK)
        return rc;
    rc = SQL(reg, "SELECT key_pin FROM enroll_pending WHERE agent_id = ?1 AND (CAST(?2 AS text) = '' OR "
             "key_pin = ?2) ORDER BY requested_at, key_pin", p, 2, collect_pin, &pins, NULL);
    if (rc != AUTHCERT_OK)
        return end(reg, rc, false);
    if (pins.n == 0)
        return end(reg, authcert_fail(AUTHCERT_E_NOTFOUND, "no enrollment request of %s%s%s "
                                      "is pending", agent_id, key_pin != NULL ? " with key " : "",
                                      str(key_pin)), false);
    if (pins.n > 1 && key_pin == NULL)
        return end(reg, authcert_fail(AUTHCERT_E_USAGE, "%u keys asked to enroll as %s: "
                                      "approve one with --key PIN (%s)", pins.n, agent_id,
                                      pins.list), false);
    rc = SQL(reg, "UPDATE enroll_pending SET approved = 1 WHERE agent_id = ?1 AND (CAST(?2 AS text) = '' OR "
             "key_pin = ?2)", p, 2, NULL, NULL, &changes);
    if (rc == AUTHCERT_OK)
        *n = (unsigned)changes;
    return end(reg, rc, false);
}

static authcert_status pending_row(void *ctx, const char *const *c, int n)
{
    struct walk *w = ctx;
    authcert_enroll_pending p = {
        .agent_id = c[0], .key_pin = c[1], .key_spki = c[2], .hostname = c[3],
        .address = c[4], .requested_at = (time_t)num(c[5]), .last_seen = (time_t)num(c[6]),
        .approved = num(c[7]) != 0,
    };

    (void)n;
    return w->pending(w->ctx, &p);
}

authcert_status authcert_registry_foreach_pending(authcert_registry *reg,
                                                  authcert_pending_cb cb, void *ctx)
{
    struct walk w = { .pending = cb, .ctx = ctx };

    if (reg == NULL || cb == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry: missing argument");
    return SQL(reg, "SELECT agent_id, key_pin, key_spki, hostname, address, requested_at, "
               "last_seen, approved FROM enroll_pending ORDER BY requested_at, agent_id, "
               "key_pin", NULL, 0, pending_row, &w, NULL);
}
