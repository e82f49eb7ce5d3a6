/*
 * POST /v1/checkin and POST /v1/result (docs/protocol.md).
 *
 * A check-in is answered from memory and the registry: the state comes from
 * the certificate store's snapshot (authcert_server), the commands from
 * authcert_registry_claim_agent, which leases them to this agent so that the
 * push thread does not send them too (and a push in flight is not offered
 * here); the lease is durable, so that holds across restarts and across
 * several daemons on one registry. An agent with nothing queued costs one
 * indexed read. The report itself joins the writer's next batch. Results
 * (rare) are written on the request thread, before the claim.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "daemon.h"

#define COMMANDS_MAX 64 /* per answer; the rest comes with the next check-in */

void answer_error(http_answer *out, unsigned status, enum refusal why, const char *fmt, ...)
{
    char msg[512];
    json_t *o;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    metric_refusal(why);
    o = json_pack("{s:s}", "error", msg);
    out->status = status;
    out->content_type = "application/json";
    out->body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
}

static void answer_json(http_answer *out, json_t *o)
{
    out->status = 200;
    out->content_type = "application/json";
    out->body = json_dumps(o, JSON_COMPACT);
    if (out->body == NULL) {
        out->status = 500;
        out->body = strdup("{\"error\":\"out of memory\"}");
    }
}

/* A parse failure as the protocol answers it. */
static void answer_parse_error(http_answer *out, authcert_status rc)
{
    if (rc == AUTHCERT_E_CORRUPT)
        answer_error(out, 400, REFUSE_BAD_JSON, "%s", authcert_detail());
    else if (rc == AUTHCERT_E_USAGE)
        answer_error(out, 400, REFUSE_BAD_FIELD, "%s", authcert_detail());
    else
        answer_error(out, 500, REFUSE_REGISTRY, "out of memory");
}

unsigned checkin_lease(const daemon_ctx *d)
{
    /* Until its next check-in has brought the results, with a margin. */
    return (unsigned)(2 * d->cfg.interval + d->cfg.push_timeout + 30);
}

/* ---- the deliveries a check-in claimed ------------------------------- */

struct claimed {
    int64_t id, command_id;
    bool broadcast;
    char *command, *args;
};

struct claim_list {
    struct claimed c[COMMANDS_MAX];
    size_t n;
};

static authcert_status claim_cb(void *ctx, const authcert_delivery *d)
{
    struct claim_list *l = ctx;
    struct claimed *c;

    if (l->n >= COMMANDS_MAX) /* claim_agent's limit: cannot happen */
        return AUTHCERT_OK;
    c = &l->c[l->n];
    *c = (struct claimed){ .id = d->id, .command_id = d->command_id,
                           .broadcast = d->broadcast };
    if ((c->command = strdup(d->command)) == NULL ||
        (d->args_json != NULL && (c->args = strdup(d->args_json)) == NULL)) {
        free(c->command);
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    l->n++;
    return AUTHCERT_OK;
}

static void claim_list_free(struct claim_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->c[i].command);
        free(l->c[i].args);
    }
    l->n = 0;
}

/*
 * Record one result. The registry matches it to THIS agent's delivery (by
 * delivery id, or by command id for a broadcast), so an agent can never
 * close another's; a late or repeated one is ignored (the first stands).
 */
static authcert_status record_one(authcert_registry *reg, const char *agent_id,
                                  const authcert_agent_result *r, bool *recorded)
{
    int64_t id = 0;
    authcert_status rc = authcert_registry_record_agent_result(
        reg, agent_id, r->did, AUTHCERT_DELIVERY_DELIVERED, r->result_json, time(NULL), &id);

    *recorded = rc == AUTHCERT_OK;
    if (rc == AUTHCERT_OK) {
        dlog("result: agent %s delivery %lld %s", agent_id, (long long)id,
             r->ok ? "ok" : "failed");
    } else if (rc == AUTHCERT_E_NOTFOUND || rc == AUTHCERT_E_POLICY) {
        dlog("result from %s for %lld ignored: %s", agent_id, (long long)r->did,
             authcert_detail());
        rc = AUTHCERT_OK;
    }
    return rc;
}

/*
 * Queued update-keys the batch did not use: the agent is on the current
 * certificate already (its check-in beat the push), nothing to send; or
 * the answer carries the store's hand-off chain instead.
 */
static void settle_unneeded(authcert_registry *reg, const struct claim_list *l,
                            const authcert_server_batch *b)
{
    for (size_t i = 0; i < l->n; i++) {
        bool used = false;

        if (strcmp(l->c[i].command, AUTHCERT_UPDATE_KEY_COMMAND) != 0)
            continue;
        for (size_t k = 0; k < b->ntokens && !used; k++)
            used = b->dids[k] == l->c[i].id;
        if (!used && authcert_registry_record_result(
                         reg, l->c[i].id, AUTHCERT_DELIVERY_DELIVERED,
                         b->handoff != NULL
                             ? "{\"status\":\"ok\",\"output\":\"the hand-off chain went in "
                               "the check-in answer\"}"
                             : "{\"status\":\"ok\",\"output\":\"already on the current "
                               "certificate\"}",
                         time(NULL)) == AUTHCERT_OK)
            metric_push(PUSH_NOT_NEEDED);
    }
}

/*
 * Routine check-ins that carried something (an update-key for an expired
 * certificate, queued commands) are counted and logged once a second: a
 * roll-over of 100,000 agents is one line a second, not 100,000 lines.
 */
static atomic_ullong routine_expired, routine_commands, routine_update_keys, routine_handoffs;
static atomic_llong routine_logged; /* CLOCK_MONOTONIC ms of the last line */

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count_routine(const authcert_server_batch *b)
{
    long long now = mono_ms(), last = atomic_load(&routine_logged);

    if (b->state == AUTHCERT_AGENT_EXPIRED)
        atomic_fetch_add(&routine_expired, 1);
    if (b->update_key)
        atomic_fetch_add(&routine_update_keys, 1);
    if (b->handoff != NULL)
        atomic_fetch_add(&routine_handoffs, 1);
    atomic_fetch_add(&routine_commands, b->ntokens - (b->update_key ? 1 : 0));
    if (last == 0) { /* the first one starts the first second */
        atomic_compare_exchange_strong(&routine_logged, &last, now);
        return;
    }
    if (now - last >= 1000 && atomic_compare_exchange_strong(&routine_logged, &last, now))
        checkin_summary();
}

void checkin_summary(void)
{
    unsigned long long expired = atomic_exchange(&routine_expired, 0);
    unsigned long long keys = atomic_exchange(&routine_update_keys, 0);
    unsigned long long cmds = atomic_exchange(&routine_commands, 0);
    unsigned long long chains = atomic_exchange(&routine_handoffs, 0);

    if (expired > 0 || keys > 0 || cmds > 0)
        dlog("check-ins: %llu on an expired certificate, %llu update-key(s), %llu hand-off "
             "chain(s) and %llu command(s) sent since the last line", expired, keys, chains,
             cmds);
}

void v1_refused(http_answer *out)
{
    answer_refusal(out, 410, REFUSE_PROTOCOL_V1, "protocol_v1", 0,
                   "protocol v1 is no longer served: upgrade authcert-agent and enroll it "
                   "(authcert --enroll-token new; docs/operations.md, \"Enrolling agents\")");
}

void checkin_handle(daemon_ctx *d, const http_request *rq, http_answer *out)
{
    const char *body = rq->body, *peer = rq->peer;
    size_t len = rq->len;
    authed who;
    authcert_agent_message *m = NULL;
    char *ans = NULL;
    authcert_registry *reg = NULL;
    authcert_server_batch *b = NULL;
    authcert_server_command cmds[COMMANDS_MAX];
    struct claim_list l = { .n = 0 };
    time_t now = time(NULL);
    authcert_status rc;
    authcert_agent_state state;
    const char *agent_id;

    if (!auth_request(d, rq, false, &who, out))
        goto out;
    if ((rc = authcert_checkin_parse(body, len, peer, &m)) != AUTHCERT_OK) {
        answer_parse_error(out, rc);
        goto out;
    }
    agent_id = m->report.agent_id;
    if (strcmp(agent_id, who.agent_id) != 0) {
        answer_refusal(out, 401, REFUSE_UNAUTHENTICATED, "auth", 0,
                       "the check-in is for another agent than its Authorization");
        goto out;
    }
    m->report.mac_counter = who.counter; /* the writer raises the registry's counter */
    daemon_refresh(d);
    state = authcert_server_classify(d->srv, m->report.thumbprint, NULL);

    if (m->nresults > 0 || state != AUTHCERT_AGENT_MISMATCHED) {
        if ((rc = dreg(d, &reg)) != AUTHCERT_OK) {
            reg = NULL;
            dlog("check-in of %s: registry: %s (%s); answering without commands", agent_id,
                 authcert_strerror(rc), authcert_detail());
        }
    }
    for (size_t i = 0; reg != NULL && i < m->nresults; i++) {
        bool recorded;
        if ((rc = record_one(reg, agent_id, &m->results[i], &recorded)) != AUTHCERT_OK)
            dlog("check-in of %s: result not recorded: %s (%s)", agent_id,
                 authcert_strerror(rc), authcert_detail());
    }
    /* Nothing is ever signed for a mismatched agent: claim nothing for it. */
    if (reg != NULL && state != AUTHCERT_AGENT_MISMATCHED) {
        rc = authcert_registry_claim_agent(reg, agent_id, COMMANDS_MAX, checkin_lease(d), now,
                                           claim_cb, &l, NULL);
        if (rc != AUTHCERT_OK) {
            dlog("check-in of %s: registry: %s (%s); answering without commands", agent_id,
                 authcert_strerror(rc), authcert_detail());
            claim_list_free(&l); /* leased or not, a later claim takes them */
        }
    }
    for (size_t i = 0; i < l.n; i++)
        cmds[i] = (authcert_server_command){
            .delivery_id = l.c[i].id, .command_id = l.c[i].command_id,
            .broadcast = l.c[i].broadcast, .command = l.c[i].command,
            .args_json = l.c[i].args };
    /* The hand-off chain only to an agent that says it walks one. */
    rc = m->report.handoff
             ? authcert_server_sign_checkin(d->srv, agent_id, m->report.thumbprint, cmds, l.n,
                                            now, &b)
             : authcert_server_sign_for(d->srv, agent_id, m->report.thumbprint, cmds, l.n, now,
                                        &b);
    if (rc != AUTHCERT_OK) {
        /* What was claimed stays leased; once the lease ends it goes out again. */
        if (reg != NULL)
            dreg_done();
        dlog("check-in of %s: cannot sign: %s (%s)", agent_id, authcert_strerror(rc),
             authcert_detail());
        answer_error(out, 503, REFUSE_STORE, "the server cannot sign now");
        goto out;
    }
    metric_signatures(b->signatures);
    if (reg != NULL) {
        settle_unneeded(reg, &l, b);
        dreg_done();
    }
    if ((rc = authcert_server_answer(d->srv, b, &ans)) != AUTHCERT_OK) {
        dlog("check-in of %s: no answer: %s (%s)", agent_id, authcert_strerror(rc),
             authcert_detail());
        answer_error(out, 500, REFUSE_STORE, "the server cannot answer now");
        goto out;
    }
    writer_submit(d->writer, &m->report);
    metric_checkin();
    if (b->state == AUTHCERT_AGENT_MISMATCHED) /* a refusal: each one is worth a line */
        dlog("check-in: agent %s (%s) mismatched %s, nothing sent", agent_id, peer,
             authcert_mismatch_reason_name(b->reason));
    else if (b->state != AUTHCERT_AGENT_CURRENT || b->ntokens > 0)
        count_routine(b);
    out->status = 200;
    out->content_type = "application/json";
    out->body = ans;
    ans = NULL;
out:
    claim_list_free(&l);
    authcert_server_batch_free(b);
    free(ans);
    authcert_agent_message_free(m);
}

void result_handle(daemon_ctx *d, const http_request *rq, http_answer *out)
{
    authcert_agent_message *m = NULL;
    authcert_registry *reg = NULL;
    json_t *ans = NULL;
    authcert_status rc;
    bool recorded = false;
    authed who;

    /* Strict: a result acts once, so its counter is taken in the registry first. */
    if (!auth_request(d, rq, true, &who, out))
        goto out;
    if ((rc = authcert_result_parse(rq->body, rq->len, &m)) != AUTHCERT_OK) {
        answer_parse_error(out, rc);
        goto out;
    }
    if (strcmp(m->report.agent_id, who.agent_id) != 0) {
        answer_refusal(out, 401, REFUSE_UNAUTHENTICATED, "auth", 0,
                       "the result is for another agent than its Authorization");
        goto out;
    }
    if ((rc = dreg(d, &reg)) == AUTHCERT_OK) {
        rc = record_one(reg, m->report.agent_id, &m->results[0], &recorded);
        dreg_done();
    }
    if (rc != AUTHCERT_OK) {
        answer_error(out, 503, REFUSE_REGISTRY, "result not recorded");
        goto out;
    }
    ans = json_pack("{s:b}", "recorded", recorded);
    if (ans != NULL)
        answer_json(out, ans);
    else
        answer_error(out, 500, REFUSE_REGISTRY, "out of memory");
out:
    json_decref(ans);
    authcert_agent_message_free(m);
}
