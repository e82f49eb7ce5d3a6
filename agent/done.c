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
 *
 * The ring survives a restart (STATE_DIR/done, 0600): each record is
 * appended as a JSON line and flushed before the answer goes out; at start
 * the file is read back (the last DONE_CAPACITY lines) and rewritten with
 * those only, and when it has grown to 4x that it is rewritten again.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authcert/fsutil.h"
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
static int journal = -1;
static size_t journaled;
static char *journal_path;

/* One entry as a JSON line (caller frees). */
static char *line_of(const struct done_entry *e)
{
    char hex[65];
    json_t *o;
    char *text;

    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", e->what[i]);
    o = json_pack("{s:I, s:s, s:O}", "did", (json_int_t)e->did, "what", hex, "result", e->result);
    text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* The ring, oldest first, to a new file renamed over the journal. Under lock. */
static authcert_status rewrite(void)
{
    char *all = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&all, &len);
    authcert_status rc;
    int fd;

    if (f == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    for (size_t k = 0; k < DONE_CAPACITY; k++) {
        const struct done_entry *e = &ring[(next_slot + k) % DONE_CAPACITY];
        char *text = e->result != NULL ? line_of(e) : NULL;
        if (text != NULL) {
            fprintf(f, "%s\n", text);
            n++;
        }
        free(text);
    }
    fclose(f);
    rc = authcert_write_atomic(journal_path, all, len, 0600);
    free(all);
    if (rc != AUTHCERT_OK)
        return rc;
    if ((fd = open(journal_path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", journal_path, strerror(errno));
    if (journal >= 0)
        close(journal);
    journal = fd;
    journaled = n;
    return AUTHCERT_OK;
}

static void ring_put(struct done_entry e)
{
    json_decref(ring[next_slot].result);
    ring[next_slot] = e;
    next_slot = (next_slot + 1) % DONE_CAPACITY;
}

authcert_status agent_done_persist(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    authcert_status rc;

    pthread_mutex_lock(&lock);
    free(journal_path);
    if ((journal_path = strdup(path)) == NULL) {
        pthread_mutex_unlock(&lock);
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    rc = authcert_read_private(path, (size_t)64 * 1024 * 1024, &data, &len);
    if (rc == AUTHCERT_OK) {
        for (char *line = (char *)data, *end; line < (char *)data + len; line = end + 1) {
            json_t *o;
            const char *hex;
            struct done_entry e = { 0 };
            if ((end = memchr(line, '\n', (size_t)((char *)data + len - line))) == NULL)
                break; /* a last line cut by a crash: not recorded, not answered */
            o = json_loadb(line, (size_t)(end - line), JSON_REJECT_DUPLICATES, NULL);
            hex = json_string_value(json_object_get(o, "what"));
            if (json_is_integer(json_object_get(o, "did")) && hex != NULL && strlen(hex) == 64 &&
                json_object_get(o, "result") != NULL) {
                for (size_t i = 0; i < 32; i++) {
                    char byte[3] = { hex[2 * i], hex[2 * i + 1], '\0' };
                    e.what[i] = (unsigned char)strtoul(byte, NULL, 16);
                }
                e.did = json_integer_value(json_object_get(o, "did"));
                e.result = json_incref(json_object_get(o, "result"));
                ring_put(e);
            }
            json_decref(o);
        }
        OPENSSL_clear_free(data, len);
    } else if (rc != AUTHCERT_E_NOTFOUND) {
        pthread_mutex_unlock(&lock);
        return rc;
    }
    rc = rewrite();
    pthread_mutex_unlock(&lock);
    return rc;
}

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
    if (journal >= 0) {
        char *text = line_of(&e);
        bool ok = text != NULL;
        if (ok && journaled >= 4 * DONE_CAPACITY)
            ok = rewrite() == AUTHCERT_OK;
        if (ok) {
            size_t n = strlen(text);
            text[n] = '\n'; /* the NUL goes: written with its length */
            ok = write(journal, text, n + 1) == (ssize_t)(n + 1) && fdatasync(journal) == 0;
            journaled++;
        }
        free(text);
        if (!ok)
            agent_log(LOG_WARN, "%s: cannot record a result (%s): a redelivery after a "
                      "restart would run it again", journal_path, strerror(errno));
    }
    ring_put(e);
    pthread_mutex_unlock(&lock);
}

void agent_done_clear(void)
{
    pthread_mutex_lock(&lock);
    if (journal >= 0)
        close(journal);
    journal = -1;
    free(journal_path);
    journal_path = NULL;
    for (size_t i = 0; i < DONE_CAPACITY; i++) {
        json_decref(ring[i].result);
        ring[i].result = NULL;
    }
    pthread_mutex_unlock(&lock);
}
