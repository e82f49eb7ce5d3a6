/*
 * Authenticating a v2 request (docs/protocol.md, "Requests of an enrolled
 * agent"): the Authorization header names the agent, its key epoch and a
 * counter, and carries an HMAC-SHA256 with the agent's MAC key, which is
 * derived here from the server secret (never stored anywhere). No
 * asymmetric operation: a check-in costs one HKDF and two HMACs.
 *
 * Replay: the counter must be higher than the registry's (every node reads
 * the same one) and within five minutes of our clock. The registry's is
 * raised by the batching writer, a few milliseconds after the answer; in
 * that window a copy of the request sent to this node again is refused by
 * a per-node memory of the last counter of each agent, and one sent to
 * another node would be answered like the original (TLS stands in the way
 * of anyone who has a copy: it must have broken it). Requests that change
 * something that must not happen twice (results) are strict: the counter
 * is compared and set in the registry before they act.
 *
 * A request that fails changes nothing, is answered 401 with one line and
 * a code the agent acts on ("enroll": enroll again), counted in /metrics
 * and against its source's rate of failures (429 beyond it).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "authcert/auth.h"
#include "authcert/identity.h"
#include "daemon.h"

#define CLOCK_WINDOW_US (300ULL * 1000000ULL)
#define RECENT_SLOTS 65536

void answer_refusal(http_answer *out, unsigned status, enum refusal why, const char *code,
                    unsigned retry_after, const char *fmt, ...)
{
    char msg[512];
    json_t *o;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    metric_refusal(why);
    o = json_pack("{s:s, s:s}", "error", msg, "code", code);
    if (o != NULL && retry_after > 0)
        json_object_set_new(o, "retry_after", json_integer(retry_after));
    out->status = status;
    out->content_type = "application/json";
    out->retry_after = retry_after;
    out->body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
}

authcert_status auth_agent_key(const daemon_ctx *d, const char *agent_id, uint64_t epoch,
                               unsigned char key[32])
{
    return authcert_mac_kdf_key(d->mac_kdf, agent_id, epoch, key);
}

/*
 * The last counter seen per agent on this node (a hash of the id picks the
 * slot; a collision forgets the older agent, whose requests are then held
 * to the registry's counter alone).
 */
struct recent {
    uint64_t id_hash;
    uint64_t counter;
};
static struct recent recent[RECENT_SLOTS];
static pthread_mutex_t recent_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t id_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h | 1;
}

/* True when counter is new for the agent on this node (and remember it). */
static bool recent_advance(const char *agent_id, uint64_t counter)
{
    uint64_t h = id_hash(agent_id);
    struct recent *r = &recent[h % RECENT_SLOTS];
    bool ok = true;

    pthread_mutex_lock(&recent_lock);
    if (r->id_hash == h && counter <= r->counter)
        ok = false;
    else {
        r->id_hash = h;
        r->counter = counter;
    }
    pthread_mutex_unlock(&recent_lock);
    return ok;
}

static bool refuse(daemon_ctx *d, const http_request *rq, const char *agent, const char *code,
                   http_answer *out, const char *why)
{
    (void)d;
    limits_spend(LIMIT_AUTH_FAIL, rq->peer);
    dlog("refused %s from %s (agent %s): %s", rq->path, rq->peer, agent, why);
    answer_refusal(out, 401, REFUSE_UNAUTHENTICATED, code, 0, "%s", why);
    return false;
}

bool auth_request(daemon_ctx *d, const http_request *rq, bool strict, authed *a,
                  http_answer *out)
{
    authcert_auth_header h;
    authcert_registry *reg = NULL;
    unsigned char key[32];
    struct timespec ts;
    uint64_t now_us, stored_epoch = 0, stored_counter = 0;
    bool bound = false, ok;
    unsigned wait;
    authcert_status rc;

    memset(a, 0, sizeof *a);
    if ((wait = limits_retry_after(LIMIT_AUTH_FAIL, rq->peer)) > 0) {
        answer_refusal(out, 429, REFUSE_RATE, "rate", wait,
                       "too many failed authentications from %s: try again in %u s", rq->peer,
                       wait);
        return false;
    }
    if (rq->authz == NULL)
        return refuse(d, rq, "-", "auth", out, "no Authorization: an enrolled agent's request "
                      "carries one (protocol v2)");
    if (authcert_auth_header_parse(rq->authz, &h) != AUTHCERT_OK)
        return refuse(d, rq, "-", "auth", out, "malformed Authorization header");
    clock_gettime(CLOCK_REALTIME, &ts);
    now_us = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
    if (h.counter + CLOCK_WINDOW_US < now_us || h.counter > now_us + CLOCK_WINDOW_US)
        return refuse(d, rq, h.agent_id, "clock", out,
                      "the request's time is more than 5 minutes from the server's "
                      "(check both clocks)");
    if ((rc = dreg(d, &reg)) != AUTHCERT_OK) {
        answer_refusal(out, 503, REFUSE_REGISTRY, "unavailable", 5, "registry unavailable");
        return false;
    }
    rc = authcert_registry_auth_state(reg, h.agent_id, &bound, &stored_epoch, &stored_counter);
    if (rc != AUTHCERT_OK && rc != AUTHCERT_E_NOTFOUND) {
        dreg_done();
        answer_refusal(out, 503, REFUSE_REGISTRY, "unavailable", 5, "registry unavailable");
        return false;
    }
    if (rc == AUTHCERT_E_NOTFOUND || !bound) {
        dreg_done();
        return refuse(d, rq, h.agent_id, "enroll", out, "this agent is not enrolled: enroll it "
                      "(authcert-agent --enroll-token-file)");
    }
    if (h.epoch != stored_epoch) {
        dreg_done();
        return refuse(d, rq, h.agent_id, "enroll", out,
                      "its key epoch is not the current one: enroll again");
    }
    if (auth_agent_key(d, h.agent_id, h.epoch, key) != AUTHCERT_OK) {
        dreg_done();
        answer_refusal(out, 500, REFUSE_STORE, "internal", 0, "cannot derive the key");
        return false;
    }
    ok = authcert_request_mac_ok(key, &(authcert_request_auth){
                                            .method = "POST", .path = rq->path,
                                            .agent_id = h.agent_id, .epoch = h.epoch,
                                            .server_id = authcert_server_id(d->srv),
                                            .counter = h.counter, .body = rq->body,
                                            .body_len = rq->len },
                                 h.mac);
    OPENSSL_cleanse(key, sizeof key);
    if (!ok) {
        dreg_done();
        return refuse(d, rq, h.agent_id, "auth", out, "the MAC does not verify");
    }
    /* Only now, for an authentic request: a forger cannot move the counters. */
    if (h.counter <= stored_counter || !recent_advance(h.agent_id, h.counter)) {
        dreg_done();
        return refuse(d, rq, h.agent_id, "replay", out,
                      "a replayed request (its counter is not above the last one)");
    }
    if (strict) {
        bool advanced = false;
        rc = authcert_registry_auth_advance(reg, h.agent_id, h.epoch, h.counter, &advanced);
        if (rc != AUTHCERT_OK) {
            dreg_done();
            answer_refusal(out, 503, REFUSE_REGISTRY, "unavailable", 5, "registry unavailable");
            return false;
        }
        if (!advanced) {
            dreg_done();
            return refuse(d, rq, h.agent_id, "replay", out, "a replayed request (another node "
                          "took this counter)");
        }
    }
    dreg_done();
    snprintf(a->agent_id, sizeof a->agent_id, "%s", h.agent_id);
    a->epoch = h.epoch;
    a->counter = h.counter;
    return true;
}

/*
 * A push's answer is the agent's own: its Authcert-Mac verifies with the MAC
 * key of the agent's current key epoch, over the answer's body, with the
 * token's delivery id as the counter. (The update-key that comes before a
 * command in one push has no delivery id of its own and is not checked: the
 * pinned TLS connection is the agent's, and only the command's result is
 * recorded.)
 */
bool auth_push_answer(daemon_ctx *d, authcert_registry *reg, const char *agent_id, uint64_t did,
                      const char *mac_header, const char *body, size_t len)
{
    authcert_auth_header h;
    unsigned char key[32];
    uint64_t epoch = 0, counter = 0;
    bool bound = false, ok;

    if (mac_header[0] == '\0' || authcert_auth_header_parse(mac_header, &h) != AUTHCERT_OK ||
        strcmp(h.agent_id, agent_id) != 0 || h.counter != did)
        return false;
    if (authcert_registry_auth_state(reg, agent_id, &bound, &epoch, &counter) != AUTHCERT_OK ||
        !bound || h.epoch != epoch)
        return false;
    if (auth_agent_key(d, agent_id, epoch, key) != AUTHCERT_OK)
        return false;
    ok = authcert_request_mac_ok(key, &(authcert_request_auth){
                                          .method = "PUSH-ANSWER", .path = "/v1/command",
                                          .agent_id = agent_id, .epoch = epoch,
                                          .server_id = authcert_server_id(d->srv),
                                          .counter = did, .body = body, .body_len = len },
                                 h.mac);
    OPENSSL_cleanse(key, sizeof key);
    return ok;
}
