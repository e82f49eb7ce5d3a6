/*
 * Deliveries this agent has already carried out, with their results.
 *
 * The server delivers at least once: if it dies after the agent ran a
 * command but before it recorded the answer, the delivery's lease runs out
 * and it is signed again (a new jti, so the replay cache does not see it)
 * and sent again. The delivery id ("did") stays the same, so the agent
 * answers with the result it already has instead of running the command a
 * second time. A bounded ring: old entries make way, which only matters
 * for a redelivery older than the last DONE_CAPACITY commands.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "daemon.h"

#define DONE_CAPACITY 128

struct done_entry {
    int64_t did;
    unsigned char what[32]; /* SHA-256 of cmd and args: a did from another registry differs */
    json_t *result;
};

static struct done_entry ring[DONE_CAPACITY];
static size_t next_slot;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* What was asked: the command and its arguments, canonically. */
static bool digest_of(const json_t *claims, unsigned char out[32])
{
    json_t *what = json_pack("{s:O?, s:O?}", "cmd", json_object_get(claims, "cmd"), "args",
                             json_object_get(claims, "args"));
    char *text = what != NULL ? json_dumps(what, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    bool ok = text != NULL && EVP_Digest(text, strlen(text), out, NULL, EVP_sha256(), NULL) == 1;

    free(text);
    json_decref(what);
    return ok;
}

json_t *agent_done_lookup(const json_t *claims)
{
    const json_t *did = json_object_get(claims, "did");
    unsigned char what[32];
    json_t *res = NULL;

    if (!json_is_integer(did) || !digest_of(claims, what))
        return NULL;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < DONE_CAPACITY && res == NULL; i++)
        if (ring[i].result != NULL && ring[i].did == json_integer_value(did)
            && CRYPTO_memcmp(ring[i].what, what, sizeof what) == 0)
            res = json_deep_copy(ring[i].result);
    pthread_mutex_unlock(&lock);
    return res;
}

void agent_done_record(const json_t *claims, const json_t *result)
{
    const json_t *did = json_object_get(claims, "did");
    struct done_entry e;

    if (!json_is_integer(did) || result == NULL || !digest_of(claims, e.what))
        return;
    e.did = json_integer_value(did);
    e.result = json_deep_copy(result);
    if (e.result == NULL)
        return;
    pthread_mutex_lock(&lock);
    json_decref(ring[next_slot].result);
    ring[next_slot] = e;
    next_slot = (next_slot + 1) % DONE_CAPACITY;
    pthread_mutex_unlock(&lock);
}

void agent_done_clear(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < DONE_CAPACITY; i++) {
        json_decref(ring[i].result);
        ring[i].result = NULL;
    }
    pthread_mutex_unlock(&lock);
}
