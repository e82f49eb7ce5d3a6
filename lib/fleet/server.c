/*
 * The server's decisions without HTTP (server.h): the keyring built from the
 * store, the check-in rules, and the cache of broadcast tokens.
 *
 * The keyring is an immutable snapshot: a check-in takes a reference under a
 * short lock and then reads it freely, so a refresh that swaps in a new one
 * never waits for signing and never frees a key that is in use. The only
 * mutable parts are the signer pools (a lock around a push and a pop).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authcert/base64url.h"
#include "authcert/commitment.h"
#include "authcert/handoff.h"
#include "authcert/jws.h"
#include "authcert/server.h"
#include "internal.h"
#include "jws/sign_text.h"

#define TTL_MAX (31 * 86400)
#define CACHE_BUCKETS 1024
#define CACHE_SWEEP_AT 4096
#define CACHE_MAX 65536

struct key {
    char tp[AUTHCERT_THUMBPRINT_LEN + 1];
    authcert_state state;
    authcert_cert *cert;
    pthread_mutex_t lock; /* guards the pool */
    authcert_jws_signer **pool;
    size_t npool, cap;
    /* Pre-rotation: an expired key that commits to a successor other than
     * the current key hands its agents to that successor (its agents accept
     * no other), one step per check-in; NULL: to the current one. */
    char *update_args;
    size_t update_args_len;
    /* The hand-off statements from this key to the current one, as a JSON
     * array text, and how many; NULL when the store's statements do not
     * lead there (keyring_chains). */
    char *chain;
    size_t chain_links;
    char *statement; /* the one this key signed, or NULL */
};

typedef struct keyring {
    atomic_long refs;
    struct key *keys; /* sorted by thumbprint */
    size_t n;
    struct key *current;
    char *current_der_b64;
    /* update-key's arguments (the current certificate, ~600 characters of
     * base64url) as JSON text, built once: every expired agent's claims are
     * a small object dumped by jansson with this spliced in (sign_one), so
     * the certificate is not escaped character by character per agent. */
    char *update_args;
    size_t update_args_len;
    time_t current_not_after;
    unsigned long long generation;
} keyring;

struct cached {
    struct cached *next;
    int64_t command_id;
    char tp[AUTHCERT_THUMBPRINT_LEN + 1];
    char *token;
    int64_t exp;
};

struct authcert_server {
    authcert_store *store;
    char *id;
    int64_t ttl;
    unsigned interval;

    pthread_mutex_t ring_lock; /* guards ring (the pointer) */
    keyring *ring;
    pthread_mutex_t refresh_lock; /* one refresh at a time: the store is ours */
    atomic_llong last_refresh;

    pthread_mutex_t cache_lock;
    pthread_mutex_t miss_lock; /* one broadcast signature at a time: no double sign */
    struct cached *cache[CACHE_BUCKETS];
    size_t ncached;
};

const char *authcert_agent_state_name(authcert_agent_state s)
{
    switch (s) {
    case AUTHCERT_AGENT_CURRENT:    return "current";
    case AUTHCERT_AGENT_EXPIRED:    return "expired";
    case AUTHCERT_AGENT_MISMATCHED: return "mismatched";
    }
    return "unknown";
}

/* ---- keyring --------------------------------------------------------- */

static void keyring_free(keyring *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        struct key *k = &r->keys[i];
        for (size_t j = 0; j < k->npool; j++)
            authcert_jws_signer_free(k->pool[j]);
        free(k->pool);
        free(k->update_args);
        free(k->chain);
        free(k->statement);
        pthread_mutex_destroy(&k->lock);
        authcert_cert_free(k->cert);
    }
    free(r->keys);
    free(r->current_der_b64);
    free(r->update_args);
    free(r);
}

static void keyring_release(keyring *r)
{
    if (r != NULL && atomic_fetch_sub(&r->refs, 1) == 1)
        keyring_free(r);
}

static keyring *keyring_acquire(authcert_server *srv)
{
    keyring *r;

    pthread_mutex_lock(&srv->ring_lock);
    r = srv->ring;
    atomic_fetch_add(&r->refs, 1);
    pthread_mutex_unlock(&srv->ring_lock);
    return r;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(((const struct key *)a)->tp, ((const struct key *)b)->tp);
}

static struct key *keyring_find(const keyring *r, const char *tp)
{
    struct key probe;

    if (tp == NULL || !authcert_thumbprint_valid(tp))
        return NULL;
    memcpy(probe.tp, tp, sizeof probe.tp);
    return bsearch(&probe, r->keys, r->n, sizeof *r->keys, key_cmp);
}

/* update-key's arguments carrying c: {"certificate": DER b64url, "thumbprint": T}. */
static authcert_status update_args_for(const authcert_cert *c, char **text, size_t *len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const uint8_t *der;
    size_t derlen = 0;
    char *b64 = NULL;
    json_t *args = NULL;

    der = authcert_cert_der(c, &derlen);
    GUARD(authcert_b64url_encode(der, derlen, &b64));
    GUARD_ALLOC(args = json_pack("{s:s, s:s}", "certificate", b64,
                                 "thumbprint", authcert_cert_thumbprint(c)));
    GUARD_ALLOC(*text = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER));
    *len = strlen(*text);
    rc = AUTHCERT_OK;
out:
    json_decref(args);
    free(b64);
    return rc;
}

/*
 * Pre-rotation: each expired key that commits to a successor hands its
 * agents to that successor when it is not the current key (an agent three
 * replacements behind climbs one certificate per check-in). A commitment
 * nobody in the store answers (broken on purpose) hands to the current
 * key, which such agents refuse: they need the exported file, as the tool
 * warned.
 */
static authcert_status keyring_successors(keyring *r)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char want[AUTHCERT_SPKI_HASH_LEN + 1], got[AUTHCERT_SPKI_HASH_LEN + 1];

    for (size_t i = 0; i < r->n; i++) {
        struct key *k = &r->keys[i];
        bool has = false;

        if (k->state != AUTHCERT_STATE_EXPIRED
            || authcert_cert_commitment(k->cert, &has, want) != AUTHCERT_OK || !has)
            continue;
        for (size_t j = 0; j < r->n; j++) {
            struct key *next = &r->keys[j];
            if (next == k || next == r->current || next->state == AUTHCERT_STATE_REVOKED
                || authcert_spki_sha256(authcert_cert_pubkey(next->cert), got) != AUTHCERT_OK
                || strcmp(got, want) != 0)
                continue;
            GUARD(update_args_for(next->cert, &k->update_args, &k->update_args_len));
            break;
        }
    }
    authcert_clear_detail();
    rc = AUTHCERT_OK;
out:
    return rc;
}

/* Logged once per refresh: why a key's agents get an update-key, not a chain. */
static void dropped_chain(const char *tp)
{
    fprintf(stderr, "authcertd: the hand-off chain from %.16s... does not verify (%s): its "
            "agents get a signed update-key\n", tp, authcert_detail());
    authcert_clear_detail();
}

/* Compact JWS characters only: spliced into the answer as they are. */
static bool jws_text(const char *s)
{
    return s != NULL && *s != '\0'
           && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
                  == strlen(s);
}

/*
 * For each expired key, the chain of the store's hand-off statements from
 * it to the current key (authcert/handoff.h), when they lead there: the
 * statements are the tool's, signed once at each replacement, and here only
 * followed (each one's "to", unverified: the agent verifies every link).
 * No chain (a statement missing: a store older than them, a replacement
 * without commitment) leaves the key to the signed update-key.
 */
static authcert_status keyring_chains(keyring *r)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;

    for (size_t i = 0; i < r->n; i++) {
        struct key *k = &r->keys[i], *at = k;
        size_t links = 0, len = 1;
        char *text = NULL;
        bool whole = false;

        /* Revoked too: a leaked key may have signed its one hand-off. */
        if (k->state == AUTHCERT_STATE_CURRENT)
            continue;
        /* First the length: follow "to" until the current key. */
        while (at != NULL && links < AUTHCERT_HANDOFF_MAX_LINKS && jws_text(at->statement)) {
            char from[65], to[65];
            uint64_t gen;
            if (authcert_handoff_peek(at->statement, from, to, &gen) != AUTHCERT_OK
                || strcmp(from, at->tp) != 0)
                break;
            len += strlen(at->statement) + 3;
            links++;
            at = keyring_find(r, to);
            if (at == r->current) {
                whole = true;
                break;
            }
        }
        authcert_clear_detail();
        if (!whole)
            continue;
        GUARD_ALLOC(text = malloc(len + 1));
        text[0] = '[';
        len = 1;
        at = k;
        for (size_t j = 0; j < links; j++) {
            char from[65], to[65];
            uint64_t gen;
            size_t sl = strlen(at->statement);
            if (j > 0)
                text[len++] = ',';
            text[len++] = '"';
            memcpy(text + len, at->statement, sl);
            len += sl;
            text[len++] = '"';
            if (authcert_handoff_peek(at->statement, from, to, &gen) != AUTHCERT_OK) {
                free(text);
                FAIL(AUTHCERT_E_INTERNAL, "hand-off: a statement changed while chained");
            }
            at = keyring_find(r, to);
        }
        text[len++] = ']';
        text[len] = '\0';
        /* Walked once here as an agent will: a statement that does not
         * verify (planted in store.json, restored from a doctored backup)
         * would strand every agent given it, so such a key keeps the
         * signed update-key instead. */
        {
            json_t *arr = json_loads(text, 0, NULL);
            authcert_cert *end = NULL;
            authcert_status st = arr != NULL
                                     ? authcert_handoff_walk(k->cert, arr, r->current->tp, 0, &end)
                                     : AUTHCERT_E_CORRUPT;
            authcert_cert_free(end);
            json_decref(arr);
            if (st != AUTHCERT_OK) {
                dropped_chain(k->tp);
                free(text);
                continue;
            }
        }
        k->chain = text;
        k->chain_links = links;
    }
    rc = AUTHCERT_OK;
out:
    return rc;
}

/* A snapshot of the store as it is now (the caller holds refresh_lock). */
static authcert_status keyring_build(authcert_store *store, keyring **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    keyring *r = NULL;
    const authcert_store_entry *cur = authcert_store_current(store);
    size_t n = authcert_store_count(store), derlen = 0;
    const uint8_t *der;
    authcert_cert_info info;
    json_t *args = NULL;

    if (cur == NULL)
        FAIL(AUTHCERT_E_NOTFOUND, "store %s has no current certificate",
             authcert_store_dir(store));
    GUARD_ALLOC(r = calloc(1, sizeof *r));
    atomic_init(&r->refs, 1);
    GUARD_ALLOC(r->keys = calloc(n, sizeof *r->keys));
    for (size_t i = 0; i < n; i++) {
        const authcert_store_entry *e = authcert_store_entry_at(store, i);
        struct key *k = &r->keys[r->n];

        memcpy(k->tp, e->thumbprint, sizeof k->tp);
        k->state = e->state;
        k->cert = authcert_cert_ref(e->cert);
        if (e->handoff != NULL)
            GUARD_ALLOC(k->statement = strdup(e->handoff));
        pthread_mutex_init(&k->lock, NULL);
        r->n++;
    }
    qsort(r->keys, r->n, sizeof *r->keys, key_cmp);
    r->current = keyring_find(r, cur->thumbprint);
    if (r->current == NULL || r->current->state != AUTHCERT_STATE_CURRENT)
        FAIL(AUTHCERT_E_CORRUPT, "store: current certificate not in its own list");
    der = authcert_cert_der(r->current->cert, &derlen);
    GUARD(authcert_b64url_encode(der, derlen, &r->current_der_b64));
    GUARD_ALLOC(args = json_pack("{s:s, s:s}", "certificate", r->current_der_b64,
                                 "thumbprint", r->current->tp));
    GUARD_ALLOC(r->update_args = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER));
    r->update_args_len = strlen(r->update_args);
    GUARD(keyring_successors(r));
    GUARD(keyring_chains(r));
    authcert_cert_get_info(r->current->cert, &info);
    r->current_not_after = info.not_after;
    r->generation = authcert_store_generation(store);
    *out = r;
    r = NULL;
    rc = AUTHCERT_OK;
out:
    json_decref(args);
    keyring_free(r);
    return rc;
}

/* Sign with k's key, using a pooled signer (made on first need). */
static authcert_status key_sign(struct key *k, const char *claims, size_t len, char **token)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_jws_signer *s = NULL;

    if (k->state == AUTHCERT_STATE_REVOKED) /* the rule that must never break */
        return authcert_fail(AUTHCERT_E_POLICY, "refusing to sign with revoked %s", k->tp);
    pthread_mutex_lock(&k->lock);
    if (k->npool > 0)
        s = k->pool[--k->npool];
    pthread_mutex_unlock(&k->lock);
    if (s == NULL)
        GUARD(authcert_jws_signer_new(k->cert, &s));
    GUARD(authcert_jws_signer_sign_text(s, claims, len, token));
    rc = AUTHCERT_OK;
out:
    if (s != NULL) {
        pthread_mutex_lock(&k->lock);
        if (k->npool == k->cap) {
            size_t cap = k->cap ? 2 * k->cap : 4;
            authcert_jws_signer **p = realloc(k->pool, cap * sizeof *p);
            if (p != NULL) {
                k->pool = p;
                k->cap = cap;
            }
        }
        if (k->npool < k->cap) {
            k->pool[k->npool++] = s;
            s = NULL;
        }
        pthread_mutex_unlock(&k->lock);
        authcert_jws_signer_free(s);
    }
    return rc;
}

/* ---- the server ------------------------------------------------------ */

authcert_status authcert_server_new(authcert_store *store, const authcert_server_options *opt,
                                    authcert_server **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_server *srv = NULL;
    char host[256];

    if (store == NULL || out == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "server: missing argument");
    *out = NULL;
    GUARD_ALLOC(srv = calloc(1, sizeof *srv));
    pthread_mutex_init(&srv->ring_lock, NULL);
    pthread_mutex_init(&srv->refresh_lock, NULL);
    pthread_mutex_init(&srv->cache_lock, NULL);
    pthread_mutex_init(&srv->miss_lock, NULL);
    srv->store = store;
    srv->ttl = opt != NULL && opt->token_ttl != 0 ? opt->token_ttl
                                                  : AUTHCERT_SERVER_TOKEN_TTL_DEFAULT;
    if (srv->ttl < 1 || srv->ttl > TTL_MAX)
        FAIL(AUTHCERT_E_USAGE, "token lifetime must be 1 to %d seconds", TTL_MAX);
    srv->interval = opt != NULL && opt->interval != 0 ? opt->interval
                                                      : AUTHCERT_SERVER_INTERVAL_DEFAULT;
    if (opt != NULL && opt->server_id != NULL && *opt->server_id != '\0') {
        GUARD_ALLOC(srv->id = strdup(opt->server_id));
    } else {
        if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
            strcpy(host, "authcertd");
        host[sizeof host - 1] = '\0';
        GUARD_ALLOC(srv->id = strdup(host));
    }
    GUARD(keyring_build(store, &srv->ring));
    *out = srv;
    srv = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_server_free(srv);
    return rc;
}

static void cache_clear(authcert_server *srv)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        struct cached *c = srv->cache[i], *next;
        for (; c != NULL; c = next) {
            next = c->next;
            free(c->token);
            free(c);
        }
        srv->cache[i] = NULL;
    }
    srv->ncached = 0;
}

void authcert_server_free(authcert_server *srv)
{
    if (srv == NULL)
        return;
    keyring_release(srv->ring);
    cache_clear(srv);
    pthread_mutex_destroy(&srv->ring_lock);
    pthread_mutex_destroy(&srv->refresh_lock);
    pthread_mutex_destroy(&srv->cache_lock);
    pthread_mutex_destroy(&srv->miss_lock);
    free(srv->id);
    free(srv);
}

const char *authcert_server_id(const authcert_server *srv)
{
    return srv->id;
}

unsigned authcert_server_interval(const authcert_server *srv)
{
    return srv->interval;
}

authcert_status authcert_server_refresh(authcert_server *srv, bool *changed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    keyring *fresh = NULL, *old = NULL;
    bool did = false;

    if (changed != NULL)
        *changed = false;
    pthread_mutex_lock(&srv->refresh_lock);
    GUARD(authcert_store_refresh(srv->store, &did));
    if (did || authcert_store_generation(srv->store) != srv->ring->generation) {
        GUARD(keyring_build(srv->store, &fresh));
        pthread_mutex_lock(&srv->ring_lock);
        old = srv->ring;
        srv->ring = fresh;
        fresh = NULL;
        pthread_mutex_unlock(&srv->ring_lock);
        did = true;
    }
    if (changed != NULL)
        *changed = did;
    rc = AUTHCERT_OK;
out:
    pthread_mutex_unlock(&srv->refresh_lock);
    keyring_release(old);
    keyring_free(fresh);
    return rc;
}

authcert_status authcert_server_maybe_refresh(authcert_server *srv, time_t now, bool *changed)
{
    long long last = atomic_load(&srv->last_refresh);

    if (changed != NULL)
        *changed = false;
    if (now == 0)
        now = time(NULL);
    /* One caller per second wins the exchange; the others go on at once. */
    if ((long long)now == last ||
        !atomic_compare_exchange_strong(&srv->last_refresh, &last, (long long)now))
        return AUTHCERT_OK;
    return authcert_server_refresh(srv, changed);
}

void authcert_server_current(authcert_server *srv, char out[AUTHCERT_THUMBPRINT_LEN + 1],
                             time_t *not_after)
{
    keyring *r = keyring_acquire(srv);

    memcpy(out, r->current->tp, AUTHCERT_THUMBPRINT_LEN + 1);
    if (not_after != NULL)
        *not_after = r->current_not_after;
    keyring_release(r);
}

unsigned long long authcert_server_generation(authcert_server *srv)
{
    keyring *r = keyring_acquire(srv);
    unsigned long long g = r->generation;

    keyring_release(r);
    return g;
}

static authcert_agent_state classify(const keyring *r, const char *tp, struct key **key,
                                     authcert_mismatch_reason *reason)
{
    struct key *k = keyring_find(r, tp);

    *key = k;
    *reason = AUTHCERT_MISMATCH_UNKNOWN;
    if (k == NULL) {
        *reason = AUTHCERT_MISMATCH_UNKNOWN;
        return AUTHCERT_AGENT_MISMATCHED;
    }
    switch (k->state) {
    case AUTHCERT_STATE_CURRENT: return AUTHCERT_AGENT_CURRENT;
    case AUTHCERT_STATE_EXPIRED:
        *reason = AUTHCERT_MISMATCH_EXPIRED;
        return AUTHCERT_AGENT_EXPIRED;
    case AUTHCERT_STATE_REVOKED: break;
    }
    *key = NULL;
    *reason = AUTHCERT_MISMATCH_REVOKED;
    return AUTHCERT_AGENT_MISMATCHED;
}

authcert_agent_state authcert_server_classify(authcert_server *srv, const char *thumbprint,
                                              authcert_mismatch_reason *reason)
{
    keyring *r = keyring_acquire(srv);
    struct key *k;
    authcert_mismatch_reason why;
    authcert_agent_state st = classify(r, thumbprint, &k, &why);

    keyring_release(r);
    if (reason != NULL)
        *reason = why;
    return st;
}

/* ---- tokens ---------------------------------------------------------- */

/* The arguments come as JSON text (a queued command's, parsed: checked to be
 * one object, whatever the registry holds). */
static authcert_status make_claims(authcert_server *srv, const char *aud, const char *command,
                                   const char *args_json, int64_t did, time_t now,
                                   json_t **claims)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_t *args = NULL;
    json_error_t jerr;

    if (args_json != NULL) {
        args = json_loads(args_json, JSON_REJECT_DUPLICATES, &jerr);
        if (args == NULL || !json_is_object(args))
            FAIL(AUTHCERT_E_USAGE, "command %s: arguments are not a JSON object", command);
    }
    GUARD(authcert_jws_claims_new(srv->id, aud, command, args, srv->ttl, (int64_t)now,
                                  claims));
    if (did >= 0 && json_object_set_new(*claims, "did", json_integer(did)) != 0) {
        json_decref(*claims);
        *claims = NULL;
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    }
    rc = AUTHCERT_OK;
out:
    json_decref(args);
    return rc;
}

/*
 * Sign one command for aud. args_text (the keyring's update-key arguments,
 * our own jansson output) is spliced in as "args" after the rest of the
 * claims is dumped: the same members as with args_json, only in another
 * order, which JSON does not give a meaning.
 */
static authcert_status sign_one(authcert_server *srv, struct key *k, const char *aud,
                                const char *command, const char *args_json,
                                const char *args_text, size_t args_len, int64_t did,
                                time_t now, char **token)
{
    static const char member[] = ",\"args\":";
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_t *claims = NULL;
    char *text = NULL, *joined = NULL;
    size_t len;

    GUARD(make_claims(srv, aud, command, args_json, did, now, &claims));
    GUARD_ALLOC(text = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER));
    len = strlen(text);
    if (args_text != NULL) {
        /* "{...}" with members (iss, aud, ...): its '}' becomes ,"args":{...}} */
        GUARD_ALLOC(joined = malloc(len - 1 + sizeof member - 1 + args_len + 2));
        memcpy(joined, text, len - 1);
        memcpy(joined + len - 1, member, sizeof member - 1);
        memcpy(joined + len - 1 + sizeof member - 1, args_text, args_len);
        len = len - 1 + sizeof member - 1 + args_len;
        joined[len++] = '}';
        joined[len] = '\0';
        free(text);
        text = joined;
    }
    GUARD(key_sign(k, text, len, token));
    rc = AUTHCERT_OK;
out:
    free(text);
    json_decref(claims);
    return rc;
}

static size_t cache_bucket(int64_t command_id, const char *tp)
{
    uint64_t h = (uint64_t)command_id * 0x9e3779b97f4a7c15ULL;

    for (size_t i = 0; i < 16; i++) /* thumbprints are hashes: a prefix spreads well */
        h = (h ^ (unsigned char)tp[i]) * 0x100000001b3ULL;
    return (size_t)(h % CACHE_BUCKETS);
}

/* Drop tokens past half their life (they would not be handed out again). */
static void cache_sweep(authcert_server *srv, int64_t now)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        struct cached **pp = &srv->cache[i];
        while (*pp != NULL) {
            struct cached *c = *pp;
            if (c->exp - now < srv->ttl / 2) {
                *pp = c->next;
                free(c->token);
                free(c);
                srv->ncached--;
            } else {
                pp = &c->next;
            }
        }
    }
    if (srv->ncached > CACHE_MAX)
        cache_clear(srv);
}

/* A copy of the cached token for (command, k), if it has half its life left. */
static authcert_status cache_lookup(authcert_server *srv, struct key *k, int64_t command_id,
                                    time_t now, char **token)
{
    struct cached *e;

    *token = NULL;
    pthread_mutex_lock(&srv->cache_lock);
    for (e = srv->cache[cache_bucket(command_id, k->tp)]; e != NULL; e = e->next) {
        if (e->command_id == command_id && strcmp(e->tp, k->tp) == 0 &&
            e->exp - (int64_t)now >= srv->ttl / 2) {
            *token = strdup(e->token);
            break;
        }
    }
    pthread_mutex_unlock(&srv->cache_lock);
    if (e != NULL && *token == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    return AUTHCERT_OK;
}

/*
 * A broadcast token for (command, certificate): signed once and handed to
 * every agent on that certificate while it has at least half its life left,
 * so that an agent never gets one about to expire. A miss is signed under
 * miss_lock after a second look, so threads that miss together (check-ins
 * and the push thread) still make one signature: "signed once per
 * certificate" is what an operator counts in authcert_signatures_total.
 * Hits never wait for it.
 */
static authcert_status broadcast_token(authcert_server *srv, struct key *k,
                                       const authcert_server_command *c, time_t now,
                                       char **token, unsigned *signatures)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    struct cached *fresh = NULL;
    char *tok = NULL;
    size_t b;
    bool locked = false;

    GUARD(cache_lookup(srv, k, c->command_id, now, &tok));
    if (tok == NULL) {
        pthread_mutex_lock(&srv->miss_lock);
        locked = true;
        GUARD(cache_lookup(srv, k, c->command_id, now, &tok));
    }
    if (tok != NULL) {
        *token = tok;
        tok = NULL;
        rc = AUTHCERT_OK;
        goto out;
    }
    GUARD(sign_one(srv, k, AUTHCERT_JWS_BROADCAST, c->command, c->args_json, NULL, 0,
                   c->command_id, now, &tok));
    ++*signatures;
    GUARD_ALLOC(fresh = calloc(1, sizeof *fresh));
    GUARD_ALLOC(fresh->token = strdup(tok));
    fresh->command_id = c->command_id;
    memcpy(fresh->tp, k->tp, sizeof fresh->tp);
    fresh->exp = (int64_t)now + srv->ttl;
    pthread_mutex_lock(&srv->cache_lock);
    if (srv->ncached >= CACHE_SWEEP_AT)
        cache_sweep(srv, (int64_t)now);
    b = cache_bucket(c->command_id, k->tp);
    fresh->next = srv->cache[b];
    srv->cache[b] = fresh;
    srv->ncached++;
    fresh = NULL;
    pthread_mutex_unlock(&srv->cache_lock);
    *token = tok;
    tok = NULL;
    rc = AUTHCERT_OK;
out:
    if (locked)
        pthread_mutex_unlock(&srv->miss_lock);
    free(tok);
    if (fresh != NULL)
        free(fresh->token);
    free(fresh);
    return rc;
}

size_t authcert_server_cached_tokens(authcert_server *srv)
{
    size_t n;

    pthread_mutex_lock(&srv->cache_lock);
    n = srv->ncached;
    pthread_mutex_unlock(&srv->cache_lock);
    return n;
}

void authcert_server_batch_free(authcert_server_batch *b)
{
    if (b == NULL)
        return;
    free(b->handoff);
    for (size_t i = 0; i < b->ntokens; i++)
        free(b->tokens[i]);
    free(b->tokens);
    free(b->dids);
    free(b);
}

static bool is_update_key(const authcert_server_command *c)
{
    return c->command != NULL && strcmp(c->command, AUTHCERT_UPDATE_KEY_COMMAND) == 0;
}

static authcert_status sign_batch(authcert_server *srv, const char *agent_id,
                                  const char *thumbprint, const authcert_server_command *cmds,
                                  size_t n, time_t now, bool chains, authcert_server_batch **out);

authcert_status authcert_server_sign_for(authcert_server *srv, const char *agent_id,
                                         const char *thumbprint,
                                         const authcert_server_command *cmds, size_t n,
                                         time_t now, authcert_server_batch **out)
{
    return sign_batch(srv, agent_id, thumbprint, cmds, n, now, false, out);
}

authcert_status authcert_server_sign_checkin(authcert_server *srv, const char *agent_id,
                                             const char *thumbprint,
                                             const authcert_server_command *cmds, size_t n,
                                             time_t now, authcert_server_batch **out)
{
    return sign_batch(srv, agent_id, thumbprint, cmds, n, now, true, out);
}

static authcert_status sign_batch(authcert_server *srv, const char *agent_id,
                                  const char *thumbprint, const authcert_server_command *cmds,
                                  size_t n, time_t now, bool chains, authcert_server_batch **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_server_batch *b = NULL;
    keyring *r = NULL;
    struct key *k = NULL;
    const authcert_server_command *queued_update = NULL;

    if (srv == NULL || agent_id == NULL || *agent_id == '\0' || out == NULL ||
        (n > 0 && cmds == NULL))
        return authcert_fail(AUTHCERT_E_USAGE, "sign_for: missing argument");
    *out = NULL;
    if (now == 0)
        now = time(NULL);
    r = keyring_acquire(srv);
    GUARD_ALLOC(b = calloc(1, sizeof *b));
    b->state = classify(r, thumbprint, &k, &b->reason);
    memcpy(b->current_thumbprint, r->current->tp, sizeof b->current_thumbprint);
    if (b->state == AUTHCERT_AGENT_MISMATCHED && b->reason == AUTHCERT_MISMATCH_REVOKED && chains) {
        /* A leaked key that signed its one hand-off (pre-rotation, -c
         * --compromised): its agents get the chain to the committed
         * successor and nothing else; nothing is signed with that key. */
        const struct key *leaked = keyring_find(r, thumbprint);
        if (leaked != NULL && leaked->chain != NULL) {
            GUARD_ALLOC(b->handoff = strdup(leaked->chain));
            b->handoff_links = leaked->chain_links;
            b->state = AUTHCERT_AGENT_EXPIRED;
            b->compromised = true;
            *out = b;
            b = NULL;
            rc = AUTHCERT_OK;
            goto out;
        }
    }
    if (b->state == AUTHCERT_AGENT_MISMATCHED) {
        *out = b;
        b = NULL;
        rc = AUTHCERT_OK;
        goto out;
    }
    GUARD_ALLOC(b->tokens = calloc(n + 1, sizeof *b->tokens));
    GUARD_ALLOC(b->dids = calloc(n + 1, sizeof *b->dids));
    for (size_t i = 0; i < n && queued_update == NULL; i++)
        if (is_update_key(&cmds[i]))
            queued_update = &cmds[i];
    if (b->state == AUTHCERT_AGENT_EXPIRED && chains && k->chain != NULL) {
        /* The store's hand-off chain: nothing to sign, and no retired key
         * needed (authcert/handoff.h). */
        GUARD_ALLOC(b->handoff = strdup(k->chain));
        b->handoff_links = k->chain_links;
    } else if (b->state == AUTHCERT_AGENT_EXPIRED) {
        /* Signed with the key the agent holds; it carries the current one. */
        GUARD(sign_one(srv, k, agent_id, AUTHCERT_UPDATE_KEY_COMMAND, NULL,
                       k->update_args != NULL ? k->update_args : r->update_args,
                       k->update_args != NULL ? k->update_args_len : r->update_args_len,
                       queued_update == NULL ? -1
                       : queued_update->broadcast ? queued_update->command_id
                                                  : queued_update->delivery_id,
                       now, &b->tokens[0]));
        b->dids[0] = queued_update != NULL ? queued_update->delivery_id : -1;
        b->ntokens = 1;
        b->signatures++;
        b->update_key = true;
    }
    for (size_t i = 0; i < n; i++) {
        const authcert_server_command *c = &cmds[i];

        if (c->command == NULL || *c->command == '\0')
            FAIL(AUTHCERT_E_USAGE, "sign_for: command %zu has no name", i);
        if (is_update_key(c))
            continue; /* made above for an expired agent; nothing to do for a current one */
        if (c->broadcast) {
            GUARD(broadcast_token(srv, k, c, now, &b->tokens[b->ntokens], &b->signatures));
        } else {
            GUARD(sign_one(srv, k, agent_id, c->command, c->args_json, NULL, 0,
                           c->delivery_id, now, &b->tokens[b->ntokens]));
            b->signatures++;
        }
        b->dids[b->ntokens++] = c->delivery_id;
    }
    *out = b;
    b = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_server_batch_free(b);
    keyring_release(r);
    return rc;
}

/*
 * The answer as text, without jansson: its strings are our own names, a
 * hex thumbprint and compact JWS tokens (base64url and dots), none of which
 * JSON escapes; dumping it with jansson (every token's ~1 KiB checked as
 * UTF-8, then escaped a character at a time) was a tenth of authcertd's
 * instructions per check-in with a command. A token with any other byte
 * would be a bug of ours: refused, not escaped.
 */
static const char jws_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

authcert_status authcert_server_answer(const authcert_server *srv,
                                       const authcert_server_batch *b, char **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *reason = b->state == AUTHCERT_AGENT_MISMATCHED
                             ? authcert_mismatch_reason_name(b->reason) : NULL;
    char head[256];
    size_t cap, n;
    char *text = NULL;
    int hn;

    *out = NULL;
    hn = snprintf(head, sizeof head,
                  "{\"state\":\"%s\",\"current_thumbprint\":\"%s\",\"interval\":%u,"
                  "\"commands\":[", authcert_agent_state_name(b->state), b->current_thumbprint,
                  srv->interval);
    if (hn < 0 || (size_t)hn >= sizeof head)
        FAIL(AUTHCERT_E_INTERNAL, "check-in answer: header too long");
    cap = (size_t)hn + 64 + (reason != NULL ? strlen(reason) : 0)
          + (b->handoff != NULL ? strlen(b->handoff) + 16 : 0) + 24;
    for (size_t i = 0; i < b->ntokens; i++) {
        size_t len = strlen(b->tokens[i]);
        if (len == 0 || strspn(b->tokens[i], jws_chars) != len)
            FAIL(AUTHCERT_E_INTERNAL, "check-in answer: token %zu is not compact JWS", i);
        cap += len + 3;
    }
    GUARD_ALLOC(text = malloc(cap));
    memcpy(text, head, (size_t)hn);
    n = (size_t)hn;
    for (size_t i = 0; i < b->ntokens; i++) {
        size_t len = strlen(b->tokens[i]);
        if (i > 0)
            text[n++] = ',';
        text[n++] = '"';
        memcpy(text + n, b->tokens[i], len);
        n += len;
        text[n++] = '"';
    }
    text[n++] = ']';
    if (reason != NULL)
        n += (size_t)snprintf(text + n, cap - n, ",\"reason\":\"%s\"", reason);
    if (b->compromised) {
        memcpy(text + n, ",\"compromised\":true", 19);
        n += 19;
    }
    if (b->handoff != NULL) {
        size_t hl = strlen(b->handoff);
        memcpy(text + n, ",\"handoff\":", 11);
        n += 11;
        memcpy(text + n, b->handoff, hl);
        n += hl;
    }
    text[n++] = '}';
    text[n] = '\0';
    *out = text;
    text = NULL;
    rc = AUTHCERT_OK;
out:
    free(text);
    return rc;
}
