/*
 * The replay cache: an open-addressing hash set of SHA-256(jti), each with
 * the time after which it may be forgotten. Hashing the jti gives fixed-size
 * entries (no allocation per token) and a well-spread hash; the jti values
 * reach us only from tokens whose signature already verified, so nobody can
 * choose them to collide. The table starts small and doubles as entries come
 * (never past twice the capacity): an agent remembers a few commands, and a
 * table sized for 4096 from the start was 384 KiB of every agent's memory,
 * all of it resident once the journal's rewrite had read it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authcert/fsutil.h"
#include "authcert/replay.h"
#include "internal.h"

#define REPLAY_JTI_MAX 128
#define REPLAY_MIN_SLOTS 16

typedef struct replay_entry {
    uint8_t id[32];   /* SHA-256 of the jti */
    int64_t until;    /* forgettable once now > until */
    bool used;
} replay_entry;

struct authcert_replay_cache {
    pthread_mutex_t lock;
    replay_entry *slots;
    size_t nslots;    /* a power of two, at least twice count: short probes */
    size_t max_slots; /* the least power of two at least twice capacity */
    size_t capacity;
    size_t count;
    int64_t leeway;
    int journal;      /* -1: memory only; else the file each entry is appended to */
    size_t journaled; /* records in it since it was last rewritten */
    char *path;
};

/* One record of the journal: the hash, and until as 8 bytes big-endian. */
#define RECORD_LEN 40

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
    c->max_slots = REPLAY_MIN_SLOTS;
    while (c->max_slots < 2 * capacity)
        c->max_slots *= 2;
    c->nslots = REPLAY_MIN_SLOTS;
    GUARD_ALLOC(c->slots = calloc(c->nslots, sizeof *c->slots));
    c->capacity = capacity;
    c->leeway = leeway;
    c->journal = -1;
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
    if (c->journal >= 0)
        close(c->journal);
    free(c->path);
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
 * The live entries moved to a fresh table of nslots, those past their time
 * dropped. Linear probing cannot simply clear a slot (it would cut the probe
 * chains behind it), so forgetting is this too. O(nslots); it runs when the
 * table must grow or the cache is full.
 */
static authcert_status rehash(authcert_replay_cache *c, size_t nslots, int64_t now)
{
    replay_entry *old = c->slots;
    size_t nold = c->nslots;
    replay_entry *fresh = calloc(nslots, sizeof *fresh);
    if (fresh == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    c->slots = fresh;
    c->nslots = nslots;
    c->count = 0;
    for (size_t i = 0; i < nold; i++) {
        if (!old[i].used || now > old[i].until)
            continue;
        *probe(c, old[i].id) = old[i];
        c->count++;
    }
    free(old);
    return AUTHCERT_OK;
}

/*
 * Room for one more entry: the table doubles while it is half full and may
 * grow; at capacity, what is past its time is forgotten. On return
 * c->count < c->capacity, or AUTHCERT_E_BUSY (nothing changed but a sweep).
 */
static authcert_status make_room(authcert_replay_cache *c, int64_t now)
{
    if (c->count >= c->capacity) {
        authcert_status rc = rehash(c, c->nslots, now);
        if (rc != AUTHCERT_OK)
            return rc;
        if (c->count >= c->capacity)
            return AUTHCERT_E_BUSY;
    }
    if (2 * (c->count + 1) > c->nslots && c->nslots < c->max_slots)
        return rehash(c, 2 * c->nslots, now);
    return AUTHCERT_OK;
}

static void record_of(const replay_entry *e, uint8_t rec[RECORD_LEN])
{
    memcpy(rec, e->id, 32);
    for (int i = 0; i < 8; i++)
        rec[32 + i] = (uint8_t)((uint64_t)e->until >> (56 - 8 * i));
}

/* The live entries, written to a new file renamed over the journal. Under lock. */
static authcert_status journal_rewrite(authcert_replay_cache *c)
{
    uint8_t *buf = malloc(c->count * RECORD_LEN + 1);
    size_t n = 0;
    authcert_status rc;
    int fd;

    if (buf == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    for (size_t i = 0; i < c->nslots; i++)
        if (c->slots[i].used)
            record_of(&c->slots[i], buf + RECORD_LEN * n++);
    rc = authcert_write_atomic(c->path, buf, n * RECORD_LEN, 0600);
    free(buf);
    if (rc != AUTHCERT_OK)
        return rc;
    if ((fd = open(c->path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", c->path, strerror(errno));
    if (c->journal >= 0)
        close(c->journal);
    c->journal = fd;
    c->journaled = n;
    return AUTHCERT_OK;
}

/* Append e and flush; a journal grown to 4x the capacity is rewritten first. */
static authcert_status journal_append(authcert_replay_cache *c, const replay_entry *e)
{
    uint8_t rec[RECORD_LEN];

    if (c->journaled >= 4 * c->capacity && journal_rewrite(c) != AUTHCERT_OK)
        return AUTHCERT_E_IO;
    record_of(e, rec);
    if (write(c->journal, rec, sizeof rec) != (ssize_t)sizeof rec || fdatasync(c->journal) != 0)
        return AUTHCERT_E_IO;
    c->journaled++;
    return AUTHCERT_OK;
}

authcert_status authcert_replay_cache_persist(authcert_replay_cache *c, const char *path,
                                              int64_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    uint8_t *data = NULL;
    size_t len = 0;

    pthread_mutex_lock(&c->lock);
    GUARD_ALLOC(c->path = strdup(path));
    rc = authcert_read_private(path, 64 * 1024 * 1024, &data, &len);
    if (rc != AUTHCERT_OK && rc != AUTHCERT_E_NOTFOUND)
        goto out;
    if (len % RECORD_LEN != 0)
        FAIL(AUTHCERT_E_CORRUPT, "%s: not a replay journal (%zu bytes)", path, len);
    for (size_t off = 0; off < len; off += RECORD_LEN) {
        replay_entry e = { .used = true };
        uint64_t until = 0;
        memcpy(e.id, data + off, 32);
        for (int i = 0; i < 8; i++)
            until = (until << 8) | data[off + 32 + i];
        e.until = (int64_t)until;
        if (now > e.until || probe(c, e.id)->used)
            continue;
        if ((rc = make_room(c, now)) == AUTHCERT_E_BUSY)
            break; /* more live ones than it holds: the rest expire within a ttl */
        if (rc != AUTHCERT_OK)
            goto out;
        *probe(c, e.id) = e;
        c->count++;
    }
    GUARD(journal_rewrite(c));
    rc = AUTHCERT_OK;
out:
    if (rc != AUTHCERT_OK) {
        free(c->path);
        c->path = NULL;
    }
    if (data != NULL)
        OPENSSL_clear_free(data, len);
    pthread_mutex_unlock(&c->lock);
    return rc;
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
    if ((rc = make_room(c, now)) == AUTHCERT_E_BUSY)
        FAIL(AUTHCERT_E_BUSY, "replay cache full: %zu commands still within their validity",
             c->count);
    if (rc != AUTHCERT_OK)
        goto out;
    e = probe(c, id);
    memcpy(e->id, id, sizeof id);
    e->until = exp > INT64_MAX - c->leeway ? INT64_MAX : exp + c->leeway;
    if (c->journal >= 0 && journal_append(c, e) != AUTHCERT_OK) {
        rc = authcert_fail(AUTHCERT_E_IO, "replay cache: %s: cannot record the token (%s): "
                           "refused rather than run unremembered", c->path, strerror(errno));
        goto out;
    }
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
