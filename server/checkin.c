/*
 * POST /v1/checkin and POST /v1/result (docs/protocol.md).
 *
 * A check-in is answered from memory and one indexed read: the state comes
 * from the certificate store's snapshot (authcert_server), the commands from
 * the agent's pending deliveries; the report itself joins the writer's next
 * batch. Only results (rare) are written on the request thread, because the
 * pending read that follows must already see them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon.h"

#define RESULTS_MAX 64   /* per check-in */
#define COMMANDS_MAX 64  /* per answer; the rest comes with the next check-in */

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

/* A required (or, with optional, absent-is-NULL) string member. */
static int get_string(json_t *o, const char *key, bool optional, const char **v)
{
    json_t *m = json_object_get(o, key);

    *v = NULL;
    if (m == NULL)
        return optional ? 0 : -1;
    if (!json_is_string(m))
        return -1;
    *v = json_string_value(m);
    return 0;
}

/* ---- pending deliveries of one agent --------------------------------- */

struct pend {
    int64_t id, command_id;
    char *command, *args;
    time_t lease_until;
    bool done; /* a result was recorded in this request */
};

struct pend_list {
    struct pend *p;
    size_t n;
    bool oom;
};

static authcert_status pend_cb(void *ctx, const authcert_delivery *d)
{
    struct pend_list *l = ctx;
    struct pend *p;

    if (l->n >= 4 * COMMANDS_MAX) /* enough for one answer and its results */
        return AUTHCERT_OK;
    if ((p = realloc(l->p, (l->n + 1) * sizeof *p)) == NULL)
        goto oom;
    l->p = p;
    p = &l->p[l->n];
    *p = (struct pend){ .id = d->id, .command_id = d->command_id,
                        .lease_until = d->lease_until };
    if ((p->command = strdup(d->command)) == NULL)
        goto oom;
    if (d->args_json != NULL && (p->args = strdup(d->args_json)) == NULL) {
        free(p->command);
        goto oom;
    }
    l->n++;
    return AUTHCERT_OK;
oom:
    l->oom = true;
    return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
}

static void pend_free(struct pend_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->p[i].command);
        free(l->p[i].args);
    }
    free(l->p);
    l->p = NULL;
    l->n = 0;
}

/*
 * Record one result an agent reports for a delivery it got in a check-in
 * answer. The delivery must be one of ITS pending ones: an agent cannot
 * close another agent's deliveries. did is what the token carried: the
 * delivery id (a broadcast would carry the command id, not used yet: the
 * registry does not say which deliveries are broadcasts).
 */
static authcert_status record_one(authcert_registry *reg, daemon_ctx *d, struct pend_list *l,
                                  const char *agent_id, json_t *r, bool *recorded)
{
    json_t *did = json_object_get(r, "delivery"), *st = json_object_get(r, "status");
    json_t *ex = json_object_get(r, "exit"), *outp = json_object_get(r, "output");
    json_t *keep = NULL;
    char *text = NULL;
    authcert_status rc;
    struct pend *p = NULL;

    *recorded = false;
    if (!json_is_object(r) || !json_is_integer(did) || !json_is_string(st) ||
        (strcmp(json_string_value(st), "ok") != 0 &&
         strcmp(json_string_value(st), "failed") != 0) ||
        (ex != NULL && !json_is_integer(ex)) || (outp != NULL && !json_is_string(outp)))
        return authcert_fail(AUTHCERT_E_USAGE, "a result needs delivery (integer), status "
                             "(\"ok\" or \"failed\"), and optional exit and output");
    for (size_t i = 0; i < l->n && p == NULL; i++)
        if (l->p[i].id == json_integer_value(did) && !l->p[i].done)
            p = &l->p[i];
    if (p == NULL) {
        dlog("result from %s for delivery %lld ignored: not pending for it", agent_id,
             (long long)json_integer_value(did));
        return AUTHCERT_OK; /* late or duplicate: the first result stands */
    }
    keep = json_pack("{s:O, s:O*, s:O*}", "status", st, "exit", ex, "output", outp);
    if (keep == NULL || (text = json_dumps(keep, JSON_COMPACT)) == NULL) {
        json_decref(keep);
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    rc = authcert_registry_record_result(reg, p->id, AUTHCERT_DELIVERY_DELIVERED, text,
                                         time(NULL));
    if (rc == AUTHCERT_E_POLICY) /* recorded meanwhile (a push answered) */
        rc = AUTHCERT_OK;
    if (rc == AUTHCERT_OK) {
        p->done = true;
        *recorded = true;
        offered_forget(d->offered, p->id);
        dlog("result: agent %s delivery %lld %s", agent_id, (long long)p->id,
             json_string_value(st));
    }
    free(text);
    json_decref(keep);
    return rc;
}

void checkin_handle(daemon_ctx *d, const char *body, size_t len, const char *peer,
                    http_answer *out)
{
    json_error_t jerr;
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr), *port, *results;
    json_t *ans = NULL;
    authcert_agent_report r = { .address = peer };
    authcert_registry *reg = NULL;
    authcert_server_batch *b = NULL;
    authcert_server_command cmds[COMMANDS_MAX];
    struct pend_list l = { 0 };
    size_t ncmds = 0;
    time_t now = time(NULL);
    authcert_status rc;

    if (req == NULL || !json_is_object(req)) {
        answer_error(out, 400, REFUSE_BAD_JSON, "check-in: not a JSON object: %s",
                     req == NULL ? jerr.text : "another JSON value");
        goto out;
    }
    port = json_object_get(req, "port");
    results = json_object_get(req, "results");
    if (get_string(req, "agent_id", false, &r.agent_id) != 0 ||
        get_string(req, "hostname", false, &r.hostname) != 0 ||
        get_string(req, "thumbprint", false, &r.thumbprint) != 0 ||
        get_string(req, "version", true, &r.version) != 0 ||
        !json_is_integer(port) || json_integer_value(port) < 0 ||
        json_integer_value(port) > 65535 ||
        (results != NULL && (!json_is_array(results) || json_array_size(results) > RESULTS_MAX))) {
        answer_error(out, 400, REFUSE_BAD_FIELD, "check-in: needs agent_id, hostname, "
                     "thumbprint (strings), port (0-65535), optional version and results "
                     "(at most %d)", RESULTS_MAX);
        goto out;
    }
    r.port = (uint16_t)json_integer_value(port);
    if (authcert_registry_validate_report(&r) != AUTHCERT_OK) {
        answer_error(out, 400, REFUSE_BAD_FIELD, "check-in: %s", authcert_detail());
        goto out;
    }
    daemon_refresh(d);

    if ((results != NULL && json_array_size(results) > 0) ||
        authcert_server_classify(d->srv, r.thumbprint, NULL) != AUTHCERT_AGENT_MISMATCHED) {
        if ((rc = dreg(d, &reg)) != AUTHCERT_OK) {
            reg = NULL;
        } else if ((rc = authcert_registry_pending(reg, r.agent_id, pend_cb, &l)) !=
                   AUTHCERT_OK) {
            dreg_done();
            reg = NULL;
        }
        if (reg == NULL) {
            dlog("check-in of %s: registry: %s (%s); answering without commands",
                 r.agent_id, authcert_strerror(rc), authcert_detail());
            pend_free(&l);
        }
    }
    if (reg != NULL && results != NULL) {
        for (size_t i = 0; i < json_array_size(results); i++) {
            bool recorded;
            rc = record_one(reg, d, &l, r.agent_id, json_array_get(results, i), &recorded);
            if (rc == AUTHCERT_E_USAGE) {
                dreg_done();
                answer_error(out, 400, REFUSE_BAD_FIELD, "check-in: results[%zu]: %s", i,
                             authcert_detail());
                goto out;
            }
            if (rc != AUTHCERT_OK)
                dlog("check-in of %s: result not recorded: %s (%s)", r.agent_id,
                     authcert_strerror(rc), authcert_detail());
        }
    }
    if (reg != NULL)
        dreg_done();
    /* Offer what is queued and not on its way by push (a lease is taken). */
    for (size_t i = 0; i < l.n && ncmds < COMMANDS_MAX; i++) {
        if (l.p[i].done || l.p[i].lease_until > now)
            continue;
        cmds[ncmds++] = (authcert_server_command){
            .delivery_id = l.p[i].id, .command_id = l.p[i].command_id,
            .command = l.p[i].command, .args_json = l.p[i].args };
    }
    rc = authcert_server_sign_for(d->srv, r.agent_id, r.thumbprint, cmds, ncmds, now, &b);
    if (rc != AUTHCERT_OK) {
        dlog("check-in of %s: cannot sign: %s (%s)", r.agent_id, authcert_strerror(rc),
             authcert_detail());
        answer_error(out, 503, REFUSE_STORE, "the server cannot sign now");
        goto out;
    }
    metric_signatures(b->signatures);
    for (size_t i = 0; i < b->ntokens; i++)
        if (b->dids[i] > 0)
            offered_add(d->offered, b->dids[i],
                        now + 2 * (time_t)d->cfg.interval + d->cfg.push_timeout + 30);
    if (authcert_server_answer(d->srv, b, &ans) != AUTHCERT_OK) {
        answer_error(out, 500, REFUSE_STORE, "out of memory");
        goto out;
    }
    writer_submit(d->writer, &r);
    metric_checkin();
    if (b->state != AUTHCERT_AGENT_CURRENT || b->ntokens > 0)
        dlog("check-in: agent %s (%s) %s%s%s, %zu command(s)%s", r.agent_id, peer,
             authcert_agent_state_name(b->state),
             b->state == AUTHCERT_AGENT_MISMATCHED ? " " : "",
             b->state == AUTHCERT_AGENT_MISMATCHED ? authcert_mismatch_reason_name(b->reason) : "",
             b->ntokens - (b->update_key ? 1 : 0), b->update_key ? " + update-key" : "");
    answer_json(out, ans);
out:
    pend_free(&l);
    authcert_server_batch_free(b);
    json_decref(ans);
    json_decref(req);
}

void result_handle(daemon_ctx *d, const char *body, size_t len, http_answer *out)
{
    json_error_t jerr;
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr), *ans = NULL;
    const char *agent_id = NULL;
    authcert_registry *reg = NULL;
    struct pend_list l = { 0 };
    authcert_status rc;
    bool recorded = false;

    if (req == NULL || !json_is_object(req)) {
        answer_error(out, 400, REFUSE_BAD_JSON, "result: not a JSON object: %s",
                     req == NULL ? jerr.text : "another JSON value");
        goto out;
    }
    if (get_string(req, "agent_id", false, &agent_id) != 0 ||
        strlen(agent_id) > AUTHCERT_AGENT_ID_MAX || *agent_id == '\0') {
        answer_error(out, 400, REFUSE_BAD_FIELD, "result: needs agent_id");
        goto out;
    }
    if ((rc = dreg(d, &reg)) == AUTHCERT_OK) {
        if ((rc = authcert_registry_pending(reg, agent_id, pend_cb, &l)) == AUTHCERT_OK)
            rc = record_one(reg, d, &l, agent_id, req, &recorded);
        dreg_done();
    }
    if (rc == AUTHCERT_E_USAGE) {
        answer_error(out, 400, REFUSE_BAD_FIELD, "result: %s", authcert_detail());
        goto out;
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
    pend_free(&l);
    json_decref(ans);
    json_decref(req);
}
