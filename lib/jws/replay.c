/*
 * The replay cache: an open-addressing hash set of SHA-256(jti), each with
 * the time after which it may be forgotten. Hashing the jti gives fixed-size
 * entries (no allocation per token) and a well-spread hash; the jti values
 * reach us only from tokens whose signature already verified, so nobody can
 * choose them to collide.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "authcert/replay.h"
#include "internal.h"

#define REPLAY_JTI_MAX 128

typedef struct replay_entry {
    uint8_t id[32];   /* SHA-256 of the jti */
    int64_t until;    /* forgettable once now > until */
    bool used;
} replay_entry;

struct authcert_replay_cache {
    pthread_mutex_t lock;
    replay_entry *slots;
    size_t nslots;    /* a power of two, at least twice capacity: short probes */
    size_t capacity;
    size_t count;
    int64_t leeway;
};

authcert_status authcert_replay_cache_new(size_t capacity, int64_t leeway,
                                          authcert_replay_cache **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_replay_cache *c = NULL;

    *out = NULL;
    if (capacity == 0)
        capacity = AUTHCERT_REPLAY_DEFAULT_CAPACITY;
    if (capacity > ((size_t)1 << 24))
        FAIL(AUTHCERT_E_USAGE, "replay cache: capacity %zu is too large", capacity);
    if (leeway < 0 || leeway > 86400)
        FAIL(AUTHCERT_E_USAGE, "replay cache: leeway %lld out of range", (long long)leeway);
    GUARD_ALLOC(c = calloc(1, sizeof *c));
    c->nslots = 16;
    while (c->nslots < 2 * capacity)
        c->nslots *= 2;
    GUARD_ALLOC(c->slots = calloc(c->nslots, sizeof *c->slots));
    c->capacity = capacity;
    c->leeway = leeway;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->slots);
        c->slots = NULL;
        FAIL(AUTHCERT_E_INTERNAL, "replay cache: mutex");
    }
    *out = c;
    c = NULL;
    rc = AUTHCERT_OK;
out:
    if (c != NULL)
        free(c->slots);
    free(c);
    return rc;
}

void authcert_replay_cache_free(authcert_replay_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->slots);
    free(c);
}

static size_t slot_of(const authcert_replay_cache *c, const uint8_t id[32])
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    return (size_t)h & (c->nslots - 1);
}

/* The slot holding id, or the empty slot where it would go. */
static replay_entry *probe(authcert_replay_cache *c, const uint8_t id[32])
{
    for (size_t i = slot_of(c, id);; i = (i + 1) & (c->nslots - 1)) {
        replay_entry *e = &c->slots[i];
        if (!e->used || memcmp(e->id, id, 32) == 0)
            return e;
    }
}

/*
 * Drop every entry past its time. Linear probing cannot simply clear a slot
 * (it would cut the probe chains behind it), so the survivors are re-placed
 * in a fresh table; this runs only when the cache is full, O(capacity).
 */
static authcert_status sweep(authcert_replay_cache *c, int64_t now)
{
    replay_entry *old = c->slots;
    replay_entry *fresh = calloc(c->nslots, sizeof *fresh);
    if (fresh == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    c->slots = fresh;
    c->count = 0;
    for (size_t i = 0; i < c->nslots; i++) {
        if (!old[i].used || now > old[i].until)
            continue;
        *probe(c, old[i].id) = old[i];
        c->count++;
    }
    free(old);
    return AUTHCERT_OK;
}

authcert_status authcert_replay_check_and_add(authcert_replay_cache *c, const char *jti,
                                              int64_t exp, int64_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    uint8_t id[32];
    size_t len = jti != NULL ? strnlen(jti, REPLAY_JTI_MAX + 1) : 0;

    if (len == 0 || len > REPLAY_JTI_MAX)
        return authcert_fail(AUTHCERT_E_USAGE, "replay cache: jti empty or too long");
    if (EVP_Digest(jti, len, id, NULL, EVP_sha256(), NULL) != 1)
        return authcert_fail_ossl(AUTHCERT_E_CRYPTO, "replay cache: SHA-256");

    pthread_mutex_lock(&c->lock);
    replay_entry *e = probe(c, id);
    if (e->used)
        FAIL(AUTHCERT_E_AUTH, "replayed: jti %s was already accepted", jti);
    if (c->count >= c->capacity) {
        GUARD(sweep(c, now));
        if (c->count >= c->capacity)
            FAIL(AUTHCERT_E_BUSY,
                 "replay cache full: %zu commands still within their validity", c->count);
        e = probe(c, id);
    }
    memcpy(e->id, id, sizeof id);
    e->until = exp > INT64_MAX - c->leeway ? INT64_MAX : exp + c->leeway;
    e->used = true;
    c->count++;
    rc = AUTHCERT_OK;
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

size_t authcert_replay_cache_count(authcert_replay_cache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}
