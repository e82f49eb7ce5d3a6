/*
 * The push thread: server-initiated delivery (docs/protocol.md, "Push").
 *
 * It claims due deliveries from the registry with a lease (so a daemon killed
 * at any moment loses nothing: the lease runs out and they are claimed
 * again), signs each for its agent the way a check-in would (the key of the
 * certificate the agent reports; update-key first for an agent on an expired
 * certificate; nothing for a mismatched one), and POSTs the tokens to the
 * agent's listener with libcurl's multi interface: at most push_concurrency
 * at once, at most push_rate new pushes a second (a token bucket, so that a
 * broadcast or a replacement does not stampede the fleet), short timeouts
 * so that an agent that does not answer stalls only its own delivery.
 *
 * Over HTTPS, pinned to the key the agent reported at check-in (its
 * listener's certificate is self-signed with that key): a listener with
 * another key, or an agent with none recorded, is sent nothing; the command
 * waits for the agent's next check-in, on the connection it opens to us.
 *
 * Outcomes: the agent's 200 answer is recorded as DELIVERED with its result;
 * anything else goes back to the queue (the registry backs off, 30 s
 * doubling to 1 h) until MAX_ATTEMPTS, then FAILED. The registry's leases
 * keep a check-in and a push from taking the same delivery.
 *
 * Broadcasts are signed once per certificate (authcert_server's cache): a
 * fleet on one certificate costs one signature. When update-key goes
 * through (the agent answers "ok"), the registry is told the agent's new
 * thumbprint and the rest of the job is signed again with the current key,
 * which is now the one the agent holds.
 *
 * Proactive roll-over (pusher_rollover): after a replacement, rollover.c
 * queues one update-key for every agent with a listener on an expired
 * certificate; they go out at --push-rate like any delivery.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include <strings.h>

#include <openssl/crypto.h>

#include "authcert/auth.h"
#include "authcert/identity.h"
#include "authcert/tls.h"
#include "daemon.h"

#define MAX_ATTEMPTS 8
#define ANSWER_MAX (64 * 1024)
/*
 * How often an idle push thread looks for due deliveries: a command queued
 * by another process (authcert --push) cannot wake this one, and the look
 * is one read of the due index (no write lock).
 */
#define IDLE_POLL_MS 100
#define SUMMARY_MS 1000

struct job {
    struct job *prev, *next_job; /* the in-flight list */
    struct pusher *p;
    int64_t id;
    unsigned attempts;
    int64_t command_id;
    bool broadcast;
    char agent_id[AUTHCERT_AGENT_ID_MAX + 1];
    char address[AUTHCERT_ADDRESS_MAX + 1];
    char thumbprint[AUTHCERT_THUMBPRINT_LEN + 1];
    char key_pin[AUTHCERT_PIN_LEN + 1]; /* the agent's key as recorded: pushes are pinned to it */
    uint16_t port;
    char *command, *args;
    authcert_server_batch *batch;
    size_t next; /* the token being sent */
    CURL *easy;
    struct curl_slist *hdrs;
    char url[AUTHCERT_ADDRESS_MAX + 32];
    char *answer;
    size_t alen;
    bool overflow;
    char mac[600];   /* the answer's Authcert-Mac header ("" none) */
};

struct pusher {
    daemon_ctx *d;
    pthread_t thread;
    CURLM *multi;
    CURLSH *share;  /* TLS sessions across pushes to the same agent */
    atomic_bool stop;
    size_t inflight;
    struct job *flying;
    double bucket;
    struct timespec refilled;
    /* what claim hands over, before the jobs start */
    struct job **claimed;
    size_t nclaimed;
    atomic_bool rollover; /* a replacement was seen: queue the update-keys */
    /*
     * Outcomes of one pass (what curl_multi_info_read handed over, or one
     * claim's immediate settlements), recorded together in one durable
     * transaction: one fsync for up to push_concurrency deliveries.
     */
    authcert_delivery_outcome *out;
    size_t nout, capout;
    /* (agent, cause) pairs already logged: once each, not at every retry. */
    uint64_t said[4096];
    /* Since the last summary line (one a second, not one per delivery). */
    uint64_t delivered, with_update_key, rolled;
    struct timespec summarised;
};

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    if (j->easy != NULL)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->hdrs);
    authcert_server_batch_free(j->batch);
    free(j->command);
    free(j->args);
    free(j->answer);
    free(j);
}

/* Record all outcomes of this pass in one durable transaction. */
static void flush_outcomes(struct pusher *p, authcert_registry *reg)
{
    authcert_status rc;

    if (p->nout == 0)
        return;
    rc = authcert_registry_record_results(reg, p->out, p->nout, time(NULL));
    if (rc == AUTHCERT_E_BUSY) /* another writer held it past the busy timeout */
        rc = authcert_registry_record_results(reg, p->out, p->nout, time(NULL));
    if (rc != AUTHCERT_OK)
        dlog("push: %zu result(s) not recorded: %s (%s); their leases run out and they "
             "go out again", p->nout, authcert_strerror(rc), authcert_detail());
    for (size_t i = 0; i < p->nout; i++) {
        /* POLICY: a check-in recorded it first, and the first result stands. */
        if (rc == AUTHCERT_OK && p->out[i].status == AUTHCERT_E_NOTFOUND)
            dlog("push: delivery %lld: result not recorded: no such delivery",
                 (long long)p->out[i].delivery_id);
        free((char *)p->out[i].result_json);
    }
    p->nout = 0;
}

/* Queue an outcome for flush_outcomes (copied). */
static void record_as(struct pusher *p, authcert_registry *reg, struct job *j,
                      authcert_delivery_state st, const char *result_json, bool checkin_only)
{
    char *copy = NULL;

    if (p->nout == p->capout) {
        size_t cap = p->capout ? 2 * p->capout : 64;
        authcert_delivery_outcome *o = realloc(p->out, cap * sizeof *o);
        if (o != NULL) {
            p->out = o;
            p->capout = cap;
        }
    }
    if (p->nout == p->capout || (result_json != NULL && (copy = strdup(result_json)) == NULL)) {
        /* Out of memory: record this one now rather than not at all. */
        authcert_status rc = authcert_registry_record_result(reg, j->id, st, result_json,
                                                             time(NULL));
        if (rc != AUTHCERT_OK && rc != AUTHCERT_E_POLICY)
            dlog("push: delivery %lld: result not recorded: %s (%s)", (long long)j->id,
                 authcert_strerror(rc), authcert_detail());
        return;
    }
    p->out[p->nout++] = (authcert_delivery_outcome){ .delivery_id = j->id, .state = st,
                                                     .result_json = copy,
                                                     .checkin_only = checkin_only };
}

static void record(struct pusher *p, authcert_registry *reg, struct job *j,
                   authcert_delivery_state st, const char *result_json)
{
    record_as(p, reg, j, st, result_json, false);
}

/*
 * Log a push problem once per agent and cause (FNV-1a of both in a small
 * table, emptied when full): an agent that keeps failing in the same way
 * is one line, not one line per retry.
 */
static bool first_time(struct pusher *p, const char *agent_id, const char *cause)
{
    uint64_t h = 14695981039346656037ULL;
    size_t n = sizeof p->said / sizeof *p->said, i;

    for (const char *s = agent_id; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *s = cause; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h |= 1; /* 0 marks an empty slot */
    for (i = 0; i < n; i++) {
        uint64_t *slot = &p->said[(h + i) % n];
        if (*slot == h)
            return false;
        if (*slot == 0) {
            *slot = h;
            return true;
        }
    }
    memset(p->said, 0, sizeof p->said);
    p->said[h % n] = h;
    return true;
}

/* One line a second at most for the routine outcomes. */
static void summarise(struct pusher *p, bool force)
{
    struct timespec now;
    long ms;

    if (p->delivered == 0 && p->rolled == 0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (now.tv_sec - p->summarised.tv_sec) * 1000 +
         (now.tv_nsec - p->summarised.tv_nsec) / 1000000;
    if (!force && ms < SUMMARY_MS)
        return;
    dlog("push: %llu delivered (%llu with update-key), %llu agent(s) rolled over to the "
         "current certificate, in the last %ld ms", (unsigned long long)p->delivered,
         (unsigned long long)p->with_update_key, (unsigned long long)p->rolled, ms);
    p->delivered = p->with_update_key = p->rolled = 0;
    p->summarised = now;
}

/* Back to the queue, or FAILED when it has been tried enough. */
static void retry_or_fail(struct pusher *p, authcert_registry *reg, struct job *j,
                          const char *why)
{
    json_t *o = json_pack("{s:s}", "error", why);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    bool final = j->attempts >= MAX_ATTEMPTS;

    metric_push(final ? PUSH_FAILED : PUSH_RETRY);
    dlog("push: delivery %lld to %s: %s%s", (long long)j->id, j->agent_id, why,
         final ? " (giving up)" : " (will retry)");
    record(p, reg, j, final ? AUTHCERT_DELIVERY_FAILED : AUTHCERT_DELIVERY_QUEUED, text);
    free(text);
    json_decref(o);
}

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
    struct job *j = ud;
    size_t len = size * n;
    char *p;

    if (j->alen + len > ANSWER_MAX) {
        j->overflow = true;
        return 0; /* aborts the transfer */
    }
    if ((p = realloc(j->answer, j->alen + len + 1)) == NULL)
        return 0;
    j->answer = p;
    memcpy(j->answer + j->alen, ptr, len);
    j->alen += len;
    j->answer[j->alen] = '\0';
    return len;
}

/* Keep the answer's Authcert-Mac header (the agent's MAC over its answer). */
static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
    struct job *j = ud;
    size_t len = size * n;
    static const char name[] = "authcert-mac:";

    if (len > sizeof name - 1 && strncasecmp(ptr, name, sizeof name - 1) == 0) {
        size_t k = sizeof name - 1;
        while (k < len && ptr[k] == ' ')
            k++;
        size_t v = len - k;
        while (v > 0 && (ptr[k + v - 1] == '\r' || ptr[k + v - 1] == '\n'))
            v--;
        if (v < sizeof j->mac) {
            memcpy(j->mac, ptr + k, v);
            j->mac[v] = '\0';
        }
    }
    return len;
}

static bool send_next(struct pusher *p, struct job *j)
{
    const char *tok = j->batch->tokens[j->next];

    if (j->easy == NULL) {
        if ((j->easy = curl_easy_init()) == NULL)
            return false;
        j->hdrs = curl_slist_append(NULL, "Content-Type: application/jwt");
        j->hdrs = curl_slist_append(j->hdrs, "Expect:");
        if (j->hdrs == NULL)
            return false;
        if (strchr(j->address, ':') != NULL)
            snprintf(j->url, sizeof j->url, "https://[%s]:%u/v1/command", j->address, j->port);
        else
            snprintf(j->url, sizeof j->url, "https://%s:%u/v1/command", j->address, j->port);
    } else {
        curl_easy_reset(j->easy);
    }
    free(j->answer);
    j->answer = NULL;
    j->alen = 0;
    j->mac[0] = '\0';
    curl_easy_setopt(j->easy, CURLOPT_URL, j->url);
    curl_easy_setopt(j->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "https");
    /*
     * The agent's listener presents a self-signed certificate of its own
     * key: the trust is the pin of the key it reported, nothing else (no
     * CA, no name), and libcurl refuses any other key before a byte of the
     * command is sent.
     */
    curl_easy_setopt(j->easy, CURLOPT_PINNEDPUBLICKEY, j->key_pin);
    curl_easy_setopt(j->easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(j->easy, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(j->easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(j->easy, CURLOPT_SSL_CIPHER_LIST, AUTHCERT_TLS_OPENSSL_CIPHERS);
    curl_easy_setopt(j->easy, CURLOPT_SHARE, p->share);
    curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->hdrs);
    curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, tok);
    curl_easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(tok));
    curl_easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, p->d->cfg.push_timeout * 1000L);
    curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS,
                     p->d->cfg.push_timeout * 1000L < 2000 ? p->d->cfg.push_timeout * 1000L
                                                           : 2000L);
    curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
    return curl_multi_add_handle(p->multi, j->easy) == CURLM_OK;
}

static authcert_status claim_cb(void *ctx, const authcert_delivery *dl)
{
    struct pusher *p = ctx;
    struct job *j = calloc(1, sizeof *j), **list;

    if (j == NULL || (list = realloc(p->claimed, (p->nclaimed + 1) * sizeof *list)) == NULL) {
        free(j);
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    p->claimed = list;
    p->claimed[p->nclaimed++] = j;
    j->p = p;
    j->id = dl->id;
    j->command_id = dl->command_id;
    j->broadcast = dl->broadcast;
    j->attempts = dl->attempts;
    snprintf(j->agent_id, sizeof j->agent_id, "%s", dl->agent_id);
    snprintf(j->address, sizeof j->address, "%s", dl->address);
    snprintf(j->thumbprint, sizeof j->thumbprint, "%s", dl->thumbprint);
    snprintf(j->key_pin, sizeof j->key_pin, "%s", dl->key_pin != NULL ? dl->key_pin : "");
    j->port = dl->port;
    j->command = strdup(dl->command);
    j->args = dl->args_json != NULL ? strdup(dl->args_json) : NULL;
    if (j->command == NULL || (dl->args_json != NULL && j->args == NULL))
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    return AUTHCERT_OK;
}

static authcert_status sign_job(struct pusher *p, struct job *j, const char *thumbprint)
{
    authcert_server_command c = { .delivery_id = j->id, .command_id = j->command_id,
                                  .broadcast = j->broadcast, .command = j->command,
                                  .args_json = j->args };
    authcert_server_batch *b = NULL;
    authcert_status rc;

    authcert_server_batch_free(j->batch);
    j->batch = NULL;
    j->next = 0;
    rc = authcert_server_sign_for(p->d->srv, j->agent_id, thumbprint, &c, 1, 0, &b);
    j->batch = b;
    if (rc == AUTHCERT_OK)
        metric_signatures(b->signatures);
    return rc;
}

/* Sign and start one claimed delivery, or settle it at once. */
static void start(struct pusher *p, authcert_registry *reg, struct job *j)
{
    authcert_status rc;

    if (j->port == 0 || j->address[0] == '\0') {
        metric_push(PUSH_NO_LISTENER);
        record(p, reg, j, AUTHCERT_DELIVERY_QUEUED, NULL); /* its check-in will take it */
        job_free(j);
        return;
    }
    if (j->key_pin[0] == '\0') {
        /* Nothing to pin (an agent that never reported a key): never pushed in clear
         * or to whoever answers; its check-in takes it. */
        metric_push(PUSH_NO_KEY);
        if (first_time(p, j->agent_id, "no key"))
            dlog("push: agent %s has reported no key: its commands wait for its check-ins",
                 j->agent_id);
        record_as(p, reg, j, AUTHCERT_DELIVERY_QUEUED, NULL, true);
        job_free(j);
        return;
    }
    {
        /* Only an enrolled agent can prove its answer (Authcert-Mac): pushing
         * to one that is not (never, or forgotten) would only be retried. */
        bool bound = false;
        uint64_t epoch, counter;
        if (authcert_registry_auth_state(reg, j->agent_id, &bound, &epoch, &counter) !=
                AUTHCERT_OK || !bound) {
            metric_push(PUSH_NO_KEY);
            if (first_time(p, j->agent_id, "not enrolled"))
                dlog("push: agent %s is not enrolled: its commands wait for its enrollment "
                     "and check-ins", j->agent_id);
            record_as(p, reg, j, AUTHCERT_DELIVERY_QUEUED, NULL, true);
            job_free(j);
            return;
        }
    }
    if ((rc = sign_job(p, j, j->thumbprint)) != AUTHCERT_OK) {
        dlog("push: delivery %lld: %s (%s)", (long long)j->id, authcert_strerror(rc),
             authcert_detail());
        retry_or_fail(p, reg, j, "cannot sign");
        job_free(j);
        return;
    }
    if (j->batch->state == AUTHCERT_AGENT_MISMATCHED) {
        metric_push(PUSH_MISMATCHED);
        dlog("push: delivery %lld to %s not sent: certificate %s", (long long)j->id,
             j->agent_id, authcert_mismatch_reason_name(j->batch->reason));
        record(p, reg, j, AUTHCERT_DELIVERY_FAILED, "{\"error\":\"mismatched\"}");
        job_free(j);
        return;
    }
    if (j->batch->ntokens == 0) { /* a queued update-key for an agent that is current */
        metric_push(PUSH_NOT_NEEDED);
        record(p, reg, j, AUTHCERT_DELIVERY_DELIVERED,
               "{\"status\":\"ok\",\"output\":\"already on the current certificate\"}");
        job_free(j);
        return;
    }
    if (!send_next(p, j)) {
        retry_or_fail(p, reg, j, "cannot start the request");
        job_free(j);
        return;
    }
    p->inflight++;
    j->next_job = p->flying;
    if (p->flying != NULL)
        p->flying->prev = j;
    p->flying = j;
}

/*
 * The agent took the update-key (token 0): it holds the current certificate
 * now. Tell the registry, and sign what is left with the current key, since
 * the old one no longer verifies at the agent. false: the rest cannot go.
 */
static bool rolled_over(struct pusher *p, authcert_registry *reg, struct job *j)
{
    char cur[AUTHCERT_THUMBPRINT_LEN + 1];
    bool changed = false;
    authcert_status rc;

    memcpy(cur, j->batch->current_thumbprint, sizeof cur);
    rc = authcert_registry_update_thumbprint(reg, j->agent_id, j->thumbprint, cur, &changed);
    if (rc != AUTHCERT_OK)
        dlog("push: agent %s: thumbprint not updated: %s (%s)", j->agent_id,
             authcert_strerror(rc), authcert_detail());
    p->rolled++;
    if (j->batch->ntokens == 1)
        return true; /* the update-key was the delivery */
    memcpy(j->thumbprint, cur, sizeof j->thumbprint);
    if (sign_job(p, j, cur) != AUTHCERT_OK || j->batch->ntokens == 0)
        return false;
    return true;
}

/* One transfer ended: next token, or the delivery's outcome. */
static void done(struct pusher *p, authcert_registry *reg, struct job *j, CURLcode cc)
{
    long status = 0;
    char why[160];
    json_t *ans = NULL, *keep = NULL;
    char *text = NULL;

    curl_multi_remove_handle(p->multi, j->easy);
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
        /* Not the agent's key: whoever answered got nothing. The check-in, on
         * the connection the agent opened to us, takes the command. */
        metric_push(PUSH_WRONG_KEY);
        if (first_time(p, j->agent_id, "wrong key"))
            dlog("push: agent %s: the listener at %s:%u answered with another key than "
                 "the agent's %s: nothing sent; its commands wait for its check-ins",
                 j->agent_id, j->address, j->port, j->key_pin);
        record_as(p, reg, j, AUTHCERT_DELIVERY_QUEUED, NULL, true);
        goto finished;
    }
    if (cc != CURLE_OK || status != 200) {
        if (cc != CURLE_OK)
            snprintf(why, sizeof why, "%s", j->overflow ? "answer too large"
                                                        : curl_easy_strerror(cc));
        else
            snprintf(why, sizeof why, "agent answered %ld%s", status,
                     j->next > 0 ? " after update-key" : "");
        retry_or_fail(p, reg, j, why);
        goto finished;
    }
    ans = j->answer != NULL ? json_loads(j->answer, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (j->next == 0 && j->batch->update_key &&
        strcmp(json_string_value(json_object_get(ans, "status")) != NULL
                   ? json_string_value(json_object_get(ans, "status")) : "", "ok") == 0) {
        if (!rolled_over(p, reg, j)) {
            retry_or_fail(p, reg, j, "cannot sign after update-key");
            goto finished;
        }
        if (j->batch->update_key) /* not re-signed: the update-key was the delivery */
            j->next = 1;
    } else {
        j->next++;
    }
    if (j->next < j->batch->ntokens) { /* update-key went through: now the command */
        json_decref(ans);
        ans = NULL;
        if (send_next(p, j))
            return;
        retry_or_fail(p, reg, j, "cannot start the request");
        goto finished;
    }
    if (!auth_push_answer(p->d, reg, j->agent_id,
                          (uint64_t)(j->broadcast ? j->command_id : j->id), j->mac,
                          j->answer, j->alen)) {
        if (first_time(p, j->agent_id, "unauthenticated answer"))
            dlog("push: agent %s: its answer to delivery %lld carries no valid Authcert-Mac: "
                 "not recorded", j->agent_id, (long long)j->id);
        retry_or_fail(p, reg, j, "the agent's answer is not authenticated");
        goto finished;
    }
    keep = json_pack("{s:O*, s:O*, s:O*}",
                     "status", json_object_get(ans, "status"),
                     "exit", json_object_get(ans, "exit"),
                     "output", json_object_get(ans, "output"));
    text = keep != NULL ? json_dumps(keep, JSON_COMPACT) : NULL;
    metric_push(PUSH_OK);
    p->delivered++;
    p->with_update_key += j->batch->update_key ? 1 : 0;
    record(p, reg, j, AUTHCERT_DELIVERY_DELIVERED, text);
finished:
    free(text);
    json_decref(keep);
    json_decref(ans);
    p->inflight--;
    if (j->prev != NULL)
        j->prev->next_job = j->next_job;
    else
        p->flying = j->next_job;
    if (j->next_job != NULL)
        j->next_job->prev = j->prev;
    job_free(j);
}

/* ---- proactive roll-over (rollover.c queues, we push) ------------------ */

static void rollover(struct pusher *p, authcert_registry *reg)
{
    uint64_t total = 0;

    if (rollover_queue(p->d, reg, &total) != AUTHCERT_OK) {
        dlog("roll-over: %s; trying again in a minute", authcert_detail());
        atomic_store(&p->rollover, true);
    }
    metric_rollover(total);
}

static void pusher_rollover(struct pusher *p)
{
    atomic_store(&p->rollover, true);
    curl_multi_wakeup(p->multi);
}

static void refill(struct pusher *p)
{
    struct timespec now;
    double dt, rate = (double)p->d->cfg.push_rate;

    clock_gettime(CLOCK_MONOTONIC, &now);
    dt = (double)(now.tv_sec - p->refilled.tv_sec) +
         (double)(now.tv_nsec - p->refilled.tv_nsec) / 1e9;
    p->refilled = now;
    p->bucket += dt * rate;
    if (p->bucket > rate) /* a burst of at most one second's worth */
        p->bucket = rate;
}

static void *run(void *arg)
{
    struct pusher *p = arg;
    authcert_registry *reg = NULL;
    authcert_status rc;
    struct timespec last_claim = { 0, 0 }, last_rollover = { 0, 0 };

    clock_gettime(CLOCK_MONOTONIC, &p->refilled);
    p->summarised = p->refilled;
    while (!atomic_load(&p->stop)) {
        struct timespec now;
        long since;
        size_t room, want;
        int running = 0, left = 0;
        CURLMsg *m;
        unsigned lease;

        refill(p);
        /* A replacement must be seen without any check-in (long intervals). */
        daemon_refresh(p->d);
        clock_gettime(CLOCK_MONOTONIC, &now);
        /* At most once a minute when it fails (a busy registry), at once otherwise. */
        if (atomic_load(&p->rollover) &&
            (last_rollover.tv_sec == 0 || now.tv_sec - last_rollover.tv_sec >= 60) &&
            atomic_exchange(&p->rollover, false)) {
            last_rollover = now;
            if (dreg(p->d, &reg) == AUTHCERT_OK) {
                rollover(p, reg);
                dreg_done();
            } else {
                atomic_store(&p->rollover, true);
            }
            last_claim.tv_sec = 0; /* claim them now */
            if (!atomic_load(&p->rollover))
                last_rollover.tv_sec = 0;
        }
        since = (now.tv_sec - last_claim.tv_sec) * 1000 +
                (now.tv_nsec - last_claim.tv_nsec) / 1000000;
        room = (size_t)p->d->cfg.push_concurrency - p->inflight;
        want = room < (size_t)p->bucket ? room : (size_t)p->bucket;
        if (want > 10000)
            want = 10000;
        if (want > 0 && since >= IDLE_POLL_MS) {
            size_t got = 0;

            /*
             * Long enough for update-key and the command (each bounded by
             * push_timeout) and a margin; a daemon killed meanwhile leaves
             * the delivery to be claimed again when it ends.
             */
            lease = (unsigned)(2 * p->d->cfg.push_timeout + 5);
            if ((rc = dreg(p->d, &reg)) == AUTHCERT_OK) {
                rc = authcert_registry_claim(reg, (unsigned)want, lease, time(NULL), claim_cb,
                                             p, &got);
                dreg_done();
            }
            if (rc != AUTHCERT_OK)
                dlog("push: claim: %s (%s)", authcert_strerror(rc), authcert_detail());
            for (size_t i = 0; i < p->nclaimed; i++) {
                p->bucket -= 1;
                if (dreg(p->d, &reg) != AUTHCERT_OK) {
                    job_free(p->claimed[i]); /* the lease runs out: claimed again later */
                    continue;
                }
                start(p, reg, p->claimed[i]);
                dreg_done();
            }
            p->nclaimed = 0;
            if (p->nout > 0 && dreg(p->d, &reg) == AUTHCERT_OK) {
                flush_outcomes(p, reg);
                dreg_done();
            }
            /* A full claim means more are due: claim again at once. */
            if (got < want)
                last_claim = now;
        }
        curl_multi_perform(p->multi, &running);
        while ((m = curl_multi_info_read(p->multi, &left)) != NULL) {
            struct job *j = NULL;
            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            if (dreg(p->d, &reg) != AUTHCERT_OK)
                continue; /* stopping: its lease runs out */
            done(p, reg, j, m->data.result);
            dreg_done();
        }
        if (p->nout > 0 && dreg(p->d, &reg) == AUTHCERT_OK) {
            flush_outcomes(p, reg);
            dreg_done();
        }
        summarise(p, false);
        curl_multi_poll(p->multi, NULL, 0, IDLE_POLL_MS, NULL);
    }
    if (p->nout > 0 && dreg(p->d, &reg) == AUTHCERT_OK) {
        flush_outcomes(p, reg);
        dreg_done();
    }
    summarise(p, true);
    /* In flight at stop: their leases run out and another claim retries them. */
    return NULL;
}

static void pusher_wake(struct pusher *p)
{
    curl_multi_wakeup(p->multi);
}

/* d->store_changed (refresh.c): a replacement starts the roll-over; any
 * change wakes the thread. */
static void store_changed(void *cookie, bool replaced)
{
    struct pusher *p = cookie;

    if (replaced)
        pusher_rollover(p);
    pusher_wake(p);
}

authcert_status pusher_start(daemon_ctx *d, struct pusher **out)
{
    struct pusher *p = calloc(1, sizeof *p);

    if (p == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    p->d = d;
    atomic_init(&p->rollover, true); /* a replacement may have happened while we were down */
    if ((p->multi = curl_multi_init()) == NULL || (p->share = curl_share_init()) == NULL) {
        if (p->multi != NULL)
            curl_multi_cleanup(p->multi);
        free(p);
        return authcert_fail(AUTHCERT_E_INTERNAL, "curl_multi_init failed");
    }
    /* One thread uses it: no lock functions needed. */
    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, d->cfg.push_concurrency);
    d->store_changed = store_changed;
    d->store_changed_cookie = p;
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        d->store_changed = NULL;
        d->store_changed_cookie = NULL;
        curl_multi_cleanup(p->multi);
        curl_share_cleanup(p->share);
        free(p);
        return authcert_fail(AUTHCERT_E_INTERNAL, "cannot start the push thread");
    }
    *out = p;
    return AUTHCERT_OK;
}

void pusher_stop(struct pusher *p)
{
    struct job *j, *next;

    if (p == NULL)
        return;
    atomic_store(&p->stop, true);
    curl_multi_wakeup(p->multi);
    pthread_join(p->thread, NULL);
    /* main.c stops the HTTP threads first: nobody refreshes any more. */
    p->d->store_changed = NULL;
    p->d->store_changed_cookie = NULL;
    for (j = p->flying; j != NULL; j = next) {
        next = j->next_job;
        curl_multi_remove_handle(p->multi, j->easy);
        job_free(j);
    }
    curl_multi_cleanup(p->multi);
    curl_share_cleanup(p->share);
    for (size_t i = 0; i < p->nout; i++)
        free((char *)p->out[i].result_json);
    free(p->out);
    free(p->claimed);
    free(p);
}
