/*
 * The agent's credential from enrollment (STATE_DIR/agent.mac): its MAC
 * key and key epoch, the server's id, and the counter of its requests.
 *
 * The counter is microseconds of the agent's clock, and never lower than
 * one already used: it is saved before the request that uses it goes out,
 * so a restarted agent (or one whose clock stepped back) never sends a
 * counter the server has seen, which the server would refuse as a replay.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authcert/auth.h"
#include "authcert/base64url.h"
#include "authcert/fsutil.h"
#include "daemon.h"

#define CREDS_FILE "agent.mac"
#define CREDS_MAX 4096

static authcert_status path_of(const agent *a, char *out, size_t size)
{
    if ((size_t)snprintf(out, size, "%s/" CREDS_FILE, a->cfg.state_dir) >= size)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", a->cfg.state_dir);
    return AUTHCERT_OK;
}

authcert_status agent_creds_load(agent *a)
{
    char path[4096];
    uint8_t *data = NULL, *key = NULL;
    size_t len = 0, klen = 0;
    json_t *j = NULL;
    const char *mk, *sid;
    authcert_status rc;

    memset(&a->creds, 0, sizeof a->creds);
    if ((rc = path_of(a, path, sizeof path)) != AUTHCERT_OK)
        return rc;
    if ((rc = authcert_read_private(path, CREDS_MAX, &data, &len)) == AUTHCERT_E_NOTFOUND)
        return AUTHCERT_OK;
    if (rc != AUTHCERT_OK)
        return rc;
    j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    mk = json_string_value(json_object_get(j, "mac_key"));
    sid = json_string_value(json_object_get(j, "server_id"));
    if (!json_is_integer(json_object_get(j, "epoch")) ||
        !json_is_integer(json_object_get(j, "counter")) || mk == NULL || sid == NULL ||
        strlen(sid) >= sizeof a->creds.server_id ||
        authcert_b64url_decode(mk, strlen(mk), &key, &klen) != AUTHCERT_OK || klen != 32 ||
        json_integer_value(json_object_get(j, "epoch")) < 1) {
        rc = authcert_fail(AUTHCERT_E_CORRUPT, "%s: not an agent credential (remove it to "
                           "enroll again)", path);
        goto out;
    }
    memcpy(a->creds.mac_key, key, 32);
    a->creds.epoch = (uint64_t)json_integer_value(json_object_get(j, "epoch"));
    a->creds.counter = (uint64_t)json_integer_value(json_object_get(j, "counter"));
    snprintf(a->creds.server_id, sizeof a->creds.server_id, "%s", sid);
    a->creds.have = true;
    rc = AUTHCERT_OK;
out:
    if (key != NULL)
        OPENSSL_clear_free(key, klen);
    json_decref(j); /* its strings held the key too: jansson frees them, we cannot wipe */
    OPENSSL_clear_free(data, len);
    return rc;
}

authcert_status agent_creds_save(agent *a)
{
    char path[4096], key[AUTHCERT_B64URL_BUFSIZE(32)], *text = NULL;
    authcert_status rc;
    int n;

    if ((rc = path_of(a, path, sizeof path)) != AUTHCERT_OK)
        return rc;
    authcert_b64url_encode_to(a->creds.mac_key, 32, key);
    n = asprintf(&text, "{\"agent_id\":\"%s\",\"epoch\":%" PRIu64 ",\"mac_key\":\"%s\","
                 "\"server_id\":\"%s\",\"counter\":%" PRIu64 "}\n", a->id, a->creds.epoch, key,
                 a->creds.server_id, a->creds.counter);
    OPENSSL_cleanse(key, sizeof key);
    if (n < 0)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    rc = authcert_write_atomic(path, text, (size_t)n, 0600);
    OPENSSL_clear_free(text, (size_t)n);
    return rc;
}

void agent_creds_clear(agent *a)
{
    char path[4096];

    pthread_mutex_lock(&a->creds_lock);
    OPENSSL_cleanse(&a->creds, sizeof a->creds);
    if (path_of(a, path, sizeof path) == AUTHCERT_OK)
        (void)unlink(path);
    pthread_mutex_unlock(&a->creds_lock);
}

uint64_t agent_creds_next_counter(agent *a)
{
    struct timespec ts;
    uint64_t now, next;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
    next = now > a->creds.counter ? now : a->creds.counter + 1;
    a->creds.counter = next;
    if (agent_creds_save(a) != AUTHCERT_OK) {
        agent_log(LOG_WARN, "cannot save the request counter: %s", authcert_detail());
        return 0;
    }
    return next;
}

authcert_status agent_creds_authorize(agent *a, const char *method, const char *path,
                                      const char *body, size_t len, uint64_t counter_or_0,
                                      char *out, size_t size)
{
    char mac[AUTHCERT_MAC_B64_LEN + 1];
    authcert_status rc;
    uint64_t counter;

    pthread_mutex_lock(&a->creds_lock);
    if (!a->creds.have) {
        pthread_mutex_unlock(&a->creds_lock);
        return authcert_fail(AUTHCERT_E_AUTH, "not enrolled");
    }
    counter = counter_or_0 != 0 ? counter_or_0 : agent_creds_next_counter(a);
    if (counter == 0) {
        pthread_mutex_unlock(&a->creds_lock);
        return authcert_fail(AUTHCERT_E_IO, "cannot save the request counter");
    }
    rc = authcert_request_mac(a->creds.mac_key,
                              &(authcert_request_auth){ .method = method, .path = path,
                                                        .agent_id = a->id,
                                                        .epoch = a->creds.epoch,
                                                        .server_id = a->creds.server_id,
                                                        .counter = counter, .body = body,
                                                        .body_len = len },
                              mac);
    if (rc == AUTHCERT_OK)
        rc = authcert_auth_header_format(a->id, a->creds.epoch, counter, mac, out, size);
    pthread_mutex_unlock(&a->creds_lock);
    return rc;
}
