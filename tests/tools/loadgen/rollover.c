/*
 * loadgen rollover: agents on an expired certificate check in, verify and
 * install their update-key or walk the hand-off chain the answer carries,
 * and check in again on the current one.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"


/*
 * Install the certificate of a verified update-key. Every agent gets the
 * same certificate: the first goes through authcert_agent_apply_update_key
 * (the real agent code: parse, thumbprint check, swap), and the certificate
 * it installed is kept with the base64url text it came from; an agent whose
 * update-key carries exactly that text (and thumbprint) gets a trust on the
 * kept certificate object instead of parsing the same bytes again. A
 * generator cost, not the agent's: one real agent parses one certificate
 * per roll-over, while 100,000 parses (~OpenSSL's decoder, rwlocks) made
 * up much of this process's CPU and the 100,000 copies ~300 MiB.
 */
static char *g_new_b64, g_new_tp[65];
static authcert_cert *g_new_cert;
static pthread_mutex_t g_new_lock = PTHREAD_MUTEX_INITIALIZER; /* the rollover threads' */

static void install_update_key(struct agent *a, const json_t *claims, char tp[65])
{
    const json_t *args = json_object_get(claims, "args");
    const char *b64 = json_string_value(json_object_get(args, "certificate"));
    const char *want = json_string_value(json_object_get(args, "thumbprint"));
    const char *cmd = json_string_value(json_object_get(claims, "cmd"));
    authcert_agent_trust_opts o = { .replay_capacity = REPLAY_CAP, .leeway = 60 };
    authcert_cert *kept;

    pthread_mutex_lock(&g_new_lock);
    kept = g_new_cert != NULL && b64 != NULL && want != NULL && strcmp(b64, g_new_b64) == 0 &&
           strcmp(want, g_new_tp) == 0 && cmd != NULL && strcmp(cmd, "update-key") == 0
               ? g_new_cert : NULL;
    pthread_mutex_unlock(&g_new_lock);
    if (kept != NULL) {
        authcert_agent_trust_free(a->trust);
        if (authcert_agent_trust_new(kept, &o, &a->trust) != AUTHCERT_OK)
            die("trust for %s", a->id);
        authcert_agent_trust_thumbprint(a->trust, tp);
        return;
    }
    if (authcert_agent_apply_update_key(a->trust, claims, tp) != AUTHCERT_OK)
        die("update-key for %s not applied", a->id);
    pthread_mutex_lock(&g_new_lock);
    if (g_new_cert == NULL && b64 != NULL) {
        g_new_cert = authcert_agent_trust_cert(a->trust);
        if ((g_new_b64 = strdup(b64)) == NULL)
            die("out of memory");
        snprintf(g_new_tp, sizeof g_new_tp, "%s", tp);
    }
    pthread_mutex_unlock(&g_new_lock);
}

/*
 * The same for a hand-off chain (authcert/handoff.h): the first agent walks
 * it with the real agent code, every link verified; an agent given exactly
 * the same chain text gets a trust on the certificate that walk ended on.
 */
static char *g_chain_text;

static void install_chain(struct agent *a, const json_t *chain, const char *current, char tp[65])
{
    authcert_agent_trust_opts o = { .replay_capacity = REPLAY_CAP, .leeway = 60 };
    char *text = json_dumps(chain, JSON_COMPACT);
    authcert_cert *kept;

    if (text == NULL)
        die("out of memory");
    pthread_mutex_lock(&g_new_lock);
    kept = g_chain_text != NULL && strcmp(text, g_chain_text) == 0 ? g_new_cert : NULL;
    pthread_mutex_unlock(&g_new_lock);
    if (kept != NULL) {
        authcert_agent_trust_free(a->trust);
        if (authcert_agent_trust_new(kept, &o, &a->trust) != AUTHCERT_OK)
            die("trust for %s", a->id);
        authcert_agent_trust_thumbprint(a->trust, tp);
        free(text);
        return;
    }
    if (authcert_agent_apply_handoff(a->trust, chain, current, tp) != AUTHCERT_OK)
        die("hand-off chain for %s refused: %s", a->id, authcert_detail());
    pthread_mutex_lock(&g_new_lock);
    if (g_chain_text == NULL) {
        if (g_new_cert == NULL)
            g_new_cert = authcert_agent_trust_cert(a->trust);
        g_chain_text = text;
        text = NULL;
    }
    pthread_mutex_unlock(&g_new_lock);
    free(text);
}

static void rollover_step(struct agent *a, json_t *ans)
{
    const char *state = json_string_value(json_object_get(ans, "state"));
    json_t *cmds = json_object_get(ans, "commands");
    const char *tok;
    json_t *claims = NULL;
    authcert_agent_verdict v;
    char tp[65];

    if (a->step == 1) {
        if (state == NULL || strcmp(state, "current") != 0)
            die("second check-in of %s is not current", a->id);
        a->step = 2;
        return;
    }
    if (state != NULL && strcmp(state, "expired") == 0 && json_object_get(ans, "handoff") != NULL) {
        const char *cur = json_string_value(json_object_get(ans, "current_thumbprint"));
        install_chain(a, json_object_get(ans, "handoff"), cur, tp);
        if (cur == NULL || strcmp(tp, cur) != 0)
            die("%s did not end on the current thumbprint", a->id);
        a->step = 1;
        return;
    }
    if (state == NULL || strcmp(state, "expired") != 0 || json_array_size(cmds) < 1)
        die("first check-in of %s: not expired with update-key or hand-off", a->id);
    tok = json_string_value(json_array_get(cmds, 0));
    if (tok == NULL ||
        authcert_agent_verify(a->trust, a->id, tok, strlen(tok), 0, &claims, &v) != AUTHCERT_OK)
        die("update-key for %s refused", a->id);
    install_update_key(a, claims, tp);
    json_decref(claims);
    if (strcmp(tp, json_string_value(json_object_get(ans, "current_thumbprint"))) != 0)
        die("%s did not end on the current thumbprint", a->id);
    a->step = 1;
}

/* One rollover thread: agents [first, first + count) over its own connections. */
struct roll_part {
    pthread_t thread;
    const char *url;
    struct agent *a;
    size_t first, count, conns;
    size_t conn0; /* its first connection's number (conn_source) */
};

static void *rollover_part(void *arg)
{
    struct roll_part *r = arg;
    size_t next = r->first, end = r->first + r->count, done = 0;
    struct xfer *xs = calloc(r->conns, sizeof *xs);
    CURLM *m = curl_multi_init();

    if (xs == NULL || m == NULL)
        die("out of memory");
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)r->conns);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)r->conns);
    for (size_t i = 0; i < r->conns && next < end; i++) {
        xs[i].agent = next++;
        checkin_start(m, &xs[i], r->url, &r->a[xs[i].agent], 0, NULL, r->conn0 + i);
    }
    while (done < r->count) {
        int running, left;
        CURLMsg *msg;

        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct xfer *x;
            json_t *ans;
            if (msg->msg != CURLMSG_DONE)
                continue;
            ans = checkin_answer(m, msg, &x);
            rollover_step(&r->a[x->agent], ans);
            json_decref(ans);
            if (r->a[x->agent].step == 2) {
                done++;
                if (next >= end)
                    continue;
                x->agent = next++;
            }
            checkin_start(m, x, r->url, &r->a[x->agent], 0, NULL, r->conn0 + (size_t)(x - xs));
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (size_t i = 0; i < r->conns; i++)
        xfer_clear(&xs[i]);
    curl_multi_cleanup(m);
    free(xs);
    return NULL;
}

/*
 * THREADS threads (default 1), each with its own multi handle, CONNS / THREADS
 * connections and a contiguous share of the agents: one thread of real ES256
 * verification and JSON was a whole CPU, so the run measured the generator's
 * thread rather than the machine.
 */
int rollover(int argc, char **argv)
{
    char url[512];
    size_t count, conns, threads = 1, first = 0;
    struct agent *a;
    struct roll_part *parts;
    double t0, t;

    if (argc != 7 && argc != 8)
        return 2;
    url_of(argv[2], "/v2/checkin", url, sizeof url);
    count = strtoull(argv[5], NULL, 10);
    conns = strtoull(argv[6], NULL, 10);
    if (argc == 8)
        threads = strtoull(argv[7], NULL, 10);
    if (threads < 1 || threads > 64 || conns < threads)
        return 2;
    a = make_agents(load_cert(argv[3]), argv[4], count);
    if ((parts = calloc(threads, sizeof *parts)) == NULL)
        die("out of memory");
    t0 = now_s();
    for (size_t i = 0; i < threads; i++) {
        parts[i] = (struct roll_part){ .url = url, .a = a, .first = first,
                                       .count = count / threads + (i < count % threads),
                                       .conns = conns / threads,
                                       .conn0 = i * (conns / threads) };
        first += parts[i].count;
        if (pthread_create(&parts[i].thread, NULL, rollover_part, &parts[i]) != 0)
            die("cannot start a thread");
    }
    for (size_t i = 0; i < threads; i++)
        pthread_join(parts[i].thread, NULL);
    t = now_s() - t0;
    printf("agents %zu seconds %.3f rate %.1f\n", count, t, count / t);
    free(parts);
    return 0;
}

