/*
 * authcert-agent — holds the agent certificate file, checks in with
 * authcertd, verifies and runs the commands it is sent (authcert-agent(8)).
 *
 * Threads: libmicrohttpd's two listener threads, and this one, which runs
 * the check-in loop and waits for signals with sigtimedwait (SIGTERM,
 * SIGINT stop; SIGHUP re-reads the certificate file). Those signals are
 * blocked before any thread starts, so no handler runs at an awkward time.
 *
 * Exit status: 0; 2 usage; otherwise the authcert_status of the failure
 * (5 corrupt certificate or id file, 6 I/O or network, 9 no certificate
 * file, 10 the server says our certificate is mismatched).
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "daemon.h"

static int fail(authcert_status st, const char *what)
{
    agent_log(LOG_ERROR, "%s: %s", what, authcert_detail()[0] ? authcert_detail()
                                                              : authcert_strerror(st));
    return (int)st;
}

/* seconds * (0.8 .. 1.2), so that a fleet started together spreads out. */
static int jitter(int seconds)
{
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)time(NULL);
    double f = 0.8 + 0.4 * ((double)r / (double)UINT32_MAX);
    int s = (int)((double)seconds * f + 0.5);
    return s < 1 ? 1 : s;
}

/* Failures back off: interval/4, doubling, capped at interval*4. */
static int backoff(int interval, int failures)
{
    long d = interval / 4 > 0 ? interval / 4 : 1;
    for (int i = 1; i < failures && d < (long)interval * 4; i++)
        d *= 2;
    if (d > (long)interval * 4)
        d = (long)interval * 4;
    return (int)d;
}

/* Wait up to seconds for a signal. Returns the signal, or 0 on timeout. */
static int wait_signal(const sigset_t *set, int seconds)
{
    struct timespec ts = {.tv_sec = seconds, .tv_nsec = 0};
    for (;;) {
        int s = sigtimedwait(set, NULL, &ts);
        if (s > 0)
            return s;
        if (errno == EAGAIN)
            return 0;
        /* EINTR: another signal (SIGCHLD...) interrupted us: wait again. */
    }
}

static void reload(agent *a)
{
    bool changed = false;
    if (authcert_agent_trust_reload(a->trust, &changed) != AUTHCERT_OK)
        agent_log(LOG_WARN, "%s (keeping the certificate loaded)", authcert_detail());
    else
        agent_log(LOG_INFO, "SIGHUP: %s %s", a->cfg.cert, changed ? "reloaded" : "unchanged");
}

static int run_once(agent *a, agent_checkin *ci)
{
    int iv = 0;
    authcert_status st = agent_checkin_run(ci, &iv);
    if (st != AUTHCERT_OK)
        return fail(st, "check-in failed");
    if ((st = agent_checkin_flush_results(ci)) != AUTHCERT_OK)
        return fail(st, "sending results failed");
    agent_log(LOG_INFO, "check-in done");
    (void)a;
    return 0;
}

static void run_loop(agent *a, agent_checkin *ci, const sigset_t *set)
{
    int failures = 0;
    for (;;) {
        int delay;
        if (ci != NULL) {
            int iv = 0;
            authcert_status st = agent_checkin_run(ci, &iv);
            int interval = iv > 0 ? iv : a->cfg.interval;
            if (st == AUTHCERT_OK || st == AUTHCERT_E_POLICY) {
                if (st == AUTHCERT_E_POLICY)
                    agent_log(LOG_ERROR, "%s", authcert_detail());
                if (failures > 0)
                    agent_log(LOG_INFO, "check-in works again after %d failure(s)", failures);
                failures = 0;
                pthread_mutex_lock(&a->pending_lock);
                bool waiting = json_array_size(a->pending) > 0;
                pthread_mutex_unlock(&a->pending_lock);
                /* Results are reported soon, not an interval later. */
                delay = waiting ? 1 : jitter(interval);
            } else {
                failures++;
                delay = jitter(backoff(interval, failures));
                agent_log(failures == 1 ? LOG_WARN : LOG_DEBUG,
                          "check-in failed (%d in a row), next try in %d s: %s", failures, delay,
                          authcert_detail());
            }
        } else {
            delay = 3600;
        }
        int sig = wait_signal(set, delay);
        if (sig == SIGTERM || sig == SIGINT) {
            agent_log(LOG_INFO, "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return;
        }
        if (sig == SIGHUP)
            reload(a);
    }
}

int main(int argc, char **argv)
{
    agent a;
    agent_checkin *ci = NULL;
    sigset_t set;
    authcert_status st;
    int ret = 0;

    memset(&a, 0, sizeof a);
    /*
     * One malloc arena for all threads: they allocate little and seldom (a
     * check-in, a push), and each further arena kept 100-160 KiB of its own
     * resident for a few KiB in use (bench/README.md, agent memory).
     */
    mallopt(M_ARENA_MAX, 1);
    /* First: its key and MAC key stay out of cores (authcert/authcert.h). */
    if (authcert_no_core_dumps() != AUTHCERT_OK) {
        fprintf(stderr, "authcert-agent: %s\n", authcert_detail());
        return 1;
    }
    ret = agent_config_parse(&a.cfg, argc, argv);
    if (ret != 0) {
        agent_config_free(&a.cfg);
        return ret;
    }
    agent_log_set_level(a.cfg.log_level);

    /* Before any thread: they all inherit this mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((st = authcert_init_with(0)) != AUTHCERT_OK) {
        ret = fail(st, "init");
        goto out_cfg;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ret = fail(AUTHCERT_E_INTERNAL, "libcurl");
        goto out_lib;
    }
    pthread_mutex_init(&a.pending_lock, NULL);
    pthread_mutex_init(&a.creds_lock, NULL);
    a.pending = json_array();
    if ((st = agent_identity_load(&a)) != AUTHCERT_OK) {
        ret = fail(st, "state");
        goto out;
    }
    if ((st = agent_state_check(&a)) != AUTHCERT_OK) {
        ret = fail(st, "state");
        goto out;
    }
    if ((st = agent_key_load(&a)) != AUTHCERT_OK) {
        ret = fail(st, "agent key");
        goto out;
    }
    if ((st = agent_creds_load(&a)) != AUTHCERT_OK) {
        ret = fail(st, "credential");
        goto out;
    }
    if (a.cfg.insecure_http)
        agent_log(LOG_WARN, "--insecure-http: check-ins and results cross the network in "
                  "clear, and any machine on the way can answer as the server");
    char seen[4096], done[4096];
    snprintf(seen, sizeof seen, "%s/seen-tokens", a.cfg.state_dir);
    snprintf(done, sizeof done, "%s/done", a.cfg.state_dir);
    /* Once enrolled, only tokens of our server's id; the replay memory survives restarts. */
    authcert_agent_trust_opts topts = {.leeway = a.cfg.leeway,
                                       .max_lifetime = a.cfg.max_token_lifetime,
                                       .issuer = a.creds.have ? a.creds.server_id : NULL,
                                       .replay_file = seen};
    if ((st = agent_done_persist(done)) != AUTHCERT_OK) {
        ret = fail(st, "state");
        goto out;
    }
    if ((st = authcert_agent_trust_open(a.cfg.cert, &topts, &a.trust)) != AUTHCERT_OK) {
        ret = fail(st, st == AUTHCERT_E_NOTFOUND
                           ? "no agent certificate file: copy the one `authcert -e` exports"
                           : "agent certificate file");
        goto out;
    }
    char thumb[65];
    authcert_agent_trust_thumbprint(a.trust, thumb);
    agent_log(LOG_INFO, "agent %s trusts certificate %s (%s)", a.id, thumb, a.cfg.cert);

    if (a.cfg.server != NULL && (st = agent_checkin_new(&a, &ci)) != AUTHCERT_OK) {
        ret = fail(st, "check-in");
        goto out;
    }
    if (a.cfg.rotate_key) {
        ret = (st = agent_rotate_key(&a, ci)) == AUTHCERT_OK ? 0 : fail(st, "--rotate-key");
        goto out;
    }
    if (a.cfg.once) {
        ret = run_once(&a, ci);
        goto out;
    }
    if (a.cfg.listen != NULL && (st = agent_listener_start(&a)) != AUTHCERT_OK) {
        ret = fail(st, "listener");
        goto out;
    }
    run_loop(&a, ci, &set);
out:
    agent_listener_stop(&a);
    agent_checkin_free(ci);
    authcert_agent_trust_free(a.trust);
    EVP_PKEY_free(a.key);
    free(a.listen_cert_pem);
    json_decref(a.pending);
    agent_done_clear();
    pthread_mutex_destroy(&a.pending_lock);
    pthread_mutex_destroy(&a.creds_lock);
    OPENSSL_cleanse(&a.creds, sizeof a.creds);
    curl_global_cleanup();
out_lib:
    authcert_cleanup();
out_cfg:
    agent_config_free(&a.cfg);
    return ret;
}
