/*
 * --push COMMAND: queue a command for one agent, several (--agent, repeated)
 * or all (--all). The queue is the registry's and durable: authcertd signs
 * and delivers each, and an agent that cannot be reached gets it with its
 * next check-in. --wait follows the deliveries and prints each agent's result.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "authcert/handoff.h"
#include "tool.h"

struct tally {
    const struct tool_opts *o;
    size_t total, queued, ok, failed;
    bool print;
};

/* An agent's result: {"status": "ok"|"failed", "exit": N, "output": "..."}. */
static bool result_ok(const char *result_json)
{
    json_t *r = result_json ? json_loads(result_json, JSON_REJECT_DUPLICATES, NULL) : NULL;
    const char *st = json_string_value(json_object_get(r, "status"));
    bool ok = st != NULL && strcmp(st, "ok") == 0;

    json_decref(r);
    return ok;
}

static authcert_status count_delivery(void *ctx, const authcert_delivery *d)
{
    struct tally *t = ctx;
    bool ok = d->state == AUTHCERT_DELIVERY_DELIVERED && result_ok(d->result_json);

    t->total++;
    if (d->state == AUTHCERT_DELIVERY_QUEUED)
        t->queued++;
    else if (ok)
        t->ok++;
    else
        t->failed++;
    if (t->print) {
        const char *shown = d->state == AUTHCERT_DELIVERY_QUEUED ? "not delivered"
                            : ok                                 ? "ok"
                                                                 : "failed";
        if (t->o->json) {
            json_t *r = d->result_json ? json_loads(d->result_json, 0, NULL) : NULL;
            json_t *j = json_pack("{s:s, s:s, s:o?}", "agent_id", d->agent_id,
                                  "outcome", shown, "result", r);
            json_dumpf(j, stdout, JSON_COMPACT | JSON_SORT_KEYS);
            putchar('\n');
            json_decref(j);
        } else {
            printf("%-36s  %-13s  %s\n", d->agent_id, shown,
                   d->result_json != NULL ? d->result_json : "");
        }
    }
    return AUTHCERT_OK;
}

static authcert_status enqueue(const struct tool_opts *o, authcert_registry *reg,
                               const char *command, int64_t *id, uint64_t *n)
{
    time_t now = time(NULL);
    authcert_status rc;

    if (o->push_all)
        return authcert_registry_enqueue_all(reg, command, o->push_args, now, id, n);
    rc = authcert_registry_enqueue_list(reg, (const char *const *)o->agents, o->nagents,
                                        command, o->push_args, now, id);
    *n = o->nagents;
    return rc;
}

int cmd_push(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *command = tool_pos_last(o, 0);
    authcert_registry *reg = NULL;
    struct tally t = { .o = o };
    int64_t id = 0;
    uint64_t n = 0;
    time_t deadline;

    if (o->push_all == (o->nagents > 0)) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "name the agents with --agent ID, or --all");
        goto out;
    }
    /* A statement is made by -c, never pushed (authcert/handoff.h). */
    if (strcmp(command, AUTHCERT_HANDOFF_COMMAND) == 0) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "%s is not a command: hand-off statements are "
                           "signed by authcert -c", command);
        goto out;
    }
    if (o->push_args != NULL) {
        json_t *a = json_loads(o->push_args, JSON_REJECT_DUPLICATES, NULL);
        bool object = json_is_object(a);
        json_decref(a);
        if (!object) {
            rc = authcert_fail(AUTHCERT_E_USAGE, "--args must be a JSON object");
            goto out;
        }
    }
    TRY(tool_registry_open(o, &reg));
    TRY(enqueue(o, reg, command, &id, &n));
    /* With --json, stdout carries only JSON lines. */
    if (!o->json)
        tool_say(o, "queued command %lld (%s) for %llu agent%s", (long long)id, command,
                 (unsigned long long)n, n == 1 ? "" : "s");
    if (!o->wait) {
        rc = AUTHCERT_OK;
        goto out;
    }
    /* authcertd delivers; we watch the registry until every delivery is final. */
    deadline = time(NULL) + o->timeout;
    for (;;) {
        t = (struct tally){ .o = o };
        TRY(authcert_registry_results(reg, id, count_delivery, &t));
        if (t.queued == 0 || time(NULL) >= deadline)
            break;
        usleep(200 * 1000);
    }
    t = (struct tally){ .o = o, .print = true };
    TRY(authcert_registry_results(reg, id, count_delivery, &t));
    if (t.queued > 0 || t.failed > 0) {
        rc = authcert_fail(AUTHCERT_E_IO,
                           "%zu of %zu agents ran it; %zu failed, %zu not delivered in %d s",
                           t.ok, t.total, t.failed, t.queued, o->timeout);
        goto out;
    }
    rc = AUTHCERT_OK;
out:
    authcert_registry_close(reg);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
