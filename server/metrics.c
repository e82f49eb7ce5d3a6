/*
 * Counters (relaxed atomics: they are only ever added to and read) and the
 * Prometheus text exposition of GET /metrics. Agents by state are counted
 * at scrape time: one GROUP BY over the registry, each thumbprint
 * classified against the certificate store.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

static atomic_ullong checkins, signatures, rollovers, pushes[PUSH_MAX], refusals[REFUSE_MAX];
static atomic_ullong enrollments[ENROLL_MAX];
static const char *const enroll_names[ENROLL_MAX] = {
    [ENROLL_OK] = "enrolled", [ENROLL_PENDING] = "pending", [ENROLL_CLONE] = "clone",
    [ENROLL_REFUSED] = "refused",
};

static const char *const push_names[PUSH_MAX] = {
    [PUSH_OK] = "ok", [PUSH_FAILED] = "failed", [PUSH_RETRY] = "retry",
    [PUSH_MISMATCHED] = "mismatched", [PUSH_NO_LISTENER] = "no_listener",
    [PUSH_NOT_NEEDED] = "not_needed", [PUSH_NO_KEY] = "no_key", [PUSH_WRONG_KEY] = "wrong_key",
};
static const char *const refusal_names[REFUSE_MAX] = {
    [REFUSE_BAD_JSON] = "bad_json", [REFUSE_BAD_FIELD] = "bad_field",
    [REFUSE_TOO_LARGE] = "too_large", [REFUSE_CONTENT_TYPE] = "content_type",
    [REFUSE_METHOD] = "method", [REFUSE_NOT_FOUND] = "not_found",
    [REFUSE_STORE] = "store", [REFUSE_REGISTRY] = "registry",
    [REFUSE_UNAUTHENTICATED] = "unauthenticated", [REFUSE_RATE] = "rate",
    [REFUSE_ENROLL] = "enrollment", [REFUSE_PROTOCOL_V1] = "protocol_v1",
};

void metric_enroll(enum enroll_result r)
{
    atomic_fetch_add_explicit(&enrollments[r], 1, memory_order_relaxed);
}

void metric_checkin(void)
{
    atomic_fetch_add_explicit(&checkins, 1, memory_order_relaxed);
}

void metric_signatures(unsigned n)
{
    atomic_fetch_add_explicit(&signatures, n, memory_order_relaxed);
}

void metric_push(enum push_result r)
{
    atomic_fetch_add_explicit(&pushes[r], 1, memory_order_relaxed);
}

void metric_rollover(uint64_t queued)
{
    atomic_fetch_add_explicit(&rollovers, queued, memory_order_relaxed);
}

void metric_refusal(enum refusal r)
{
    atomic_fetch_add_explicit(&refusals[r], 1, memory_order_relaxed);
}

struct by_state {
    daemon_ctx *d;
    uint64_t n[3];
};

static authcert_status count_cb(void *ctx, const char *thumbprint, uint64_t agents)
{
    struct by_state *b = ctx;

    b->n[authcert_server_classify(b->d->srv, thumbprint, NULL)] += agents;
    return AUTHCERT_OK;
}

char *metrics_render(daemon_ctx *d)
{
    struct by_state b = { .d = d };
    authcert_registry *reg = NULL;
    char *text = NULL;
    size_t len = 0;
    time_t not_after = 0;
    char cur[AUTHCERT_THUMBPRINT_LEN + 1];
    bool agents_ok;
    FILE *f = open_memstream(&text, &len);

    if (f == NULL)
        return NULL;
    agents_ok = false;
    if (dreg(d, &reg) == AUTHCERT_OK) {
        agents_ok = authcert_registry_count_by_thumbprint(reg, count_cb, &b) == AUTHCERT_OK;
        dreg_done();
    }
    authcert_server_current(d->srv, cur, &not_after);

    fputs("# HELP authcert_agents Registered agents by the state of the certificate they report.\n"
          "# TYPE authcert_agents gauge\n", f);
    if (agents_ok)
        for (int s = 0; s < 3; s++)
            fprintf(f, "authcert_agents{state=\"%s\"} %" PRIu64 "\n",
                    authcert_agent_state_name((authcert_agent_state)s), b.n[s]);
    fprintf(f, "# HELP authcert_checkins_total Check-ins answered.\n"
            "# TYPE authcert_checkins_total counter\n"
            "authcert_checkins_total %llu\n",
            (unsigned long long)atomic_load(&checkins));
    fprintf(f, "# HELP authcert_signatures_total Tokens signed (cached broadcast tokens not counted).\n"
            "# TYPE authcert_signatures_total counter\n"
            "authcert_signatures_total %llu\n",
            (unsigned long long)atomic_load(&signatures));
    fputs("# HELP authcert_pushes_total Commands pushed to agents, by outcome.\n"
          "# TYPE authcert_pushes_total counter\n", f);
    for (int i = 0; i < PUSH_MAX; i++)
        fprintf(f, "authcert_pushes_total{result=\"%s\"} %llu\n", push_names[i],
                (unsigned long long)atomic_load(&pushes[i]));
    fprintf(f, "# HELP authcert_rollover_queued_total update-key commands queued for agents on an expired certificate after a replacement.\n"
            "# TYPE authcert_rollover_queued_total counter\n"
            "authcert_rollover_queued_total %llu\n",
            (unsigned long long)atomic_load(&rollovers));
    fputs("# HELP authcert_refusals_total Requests refused, by reason.\n"
          "# TYPE authcert_refusals_total counter\n", f);
    for (int i = 0; i < REFUSE_MAX; i++)
        fprintf(f, "authcert_refusals_total{reason=\"%s\"} %llu\n", refusal_names[i],
                (unsigned long long)atomic_load(&refusals[i]));
    fprintf(f, "# HELP authcert_current_certificate_expiry_seconds Seconds until the current certificate expires.\n"
            "# TYPE authcert_current_certificate_expiry_seconds gauge\n"
            "authcert_current_certificate_expiry_seconds %lld\n",
            (long long)(not_after - time(NULL)));
    fprintf(f, "# HELP authcert_nodes Server nodes sharing this registry, this one included.\n"
            "# TYPE authcert_nodes gauge\n"
            "authcert_nodes %u\n"
            "# HELP authcert_node_certificate_mismatch 1 when another node serves with another certificate.\n"
            "# TYPE authcert_node_certificate_mismatch gauge\n"
            "authcert_node_certificate_mismatch %d\n",
            nodes_count(), nodes_differing_count() > 0);
    fprintf(f, "# HELP authcert_checkin_backlog Check-ins waiting to be written to the registry.\n"
            "# TYPE authcert_checkin_backlog gauge\n"
            "authcert_checkin_backlog %llu\n",
            (unsigned long long)writer_backlog(d->writer));
    fputs("# HELP authcert_enrollments_total Enrollment requests, by outcome.\n"
          "# TYPE authcert_enrollments_total counter\n", f);
    for (int i = 0; i < ENROLL_MAX; i++)
        fprintf(f, "authcert_enrollments_total{result=\"%s\"} %llu\n", enroll_names[i],
                (unsigned long long)atomic_load(&enrollments[i]));
    fprintf(f, "# HELP authcert_connections_cut_total Connections cut: no complete request "
            "within --header-deadline.\n"
            "# TYPE authcert_connections_cut_total counter\n"
            "authcert_connections_cut_total %llu\n", limits_cut());
    if (!d->cfg.insecure_http) {
        unsigned long long full = 0, resumed = 0;
        tls_sessions(&full, &resumed);
        fprintf(f, "# HELP authcert_tls_handshakes_total TLS connections ended, by how their "
                "handshake went: full, or resumed from a session ticket.\n"
                "# TYPE authcert_tls_handshakes_total counter\n"
                "authcert_tls_handshakes_total{kind=\"full\"} %llu\n"
                "authcert_tls_handshakes_total{kind=\"resumed\"} %llu\n", full, resumed);
    }
    fprintf(f, "# HELP authcert_store_generation The certificate store's generation in use.\n"
            "# TYPE authcert_store_generation gauge\n"
            "authcert_store_generation %llu\n", authcert_server_generation(d->srv));
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
