/*
 * loadgen push: the simulated agents register with a signed check-in each
 * from their own loopback address, the operator's push command runs, and
 * the listener (listen.c) verifies every agent's command and answers it
 * with the agent's MAC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

int push(int argc, char **argv)
{
    char url[512];
    size_t count, conns, next = 0, done = 0;
    unsigned port;
    double timeout, t0;
    struct xfer *xs;
    CURLM *m;
    int rc;

    if (argc < 11 || strcmp(argv[9], "--") != 0)
        return 2;
    url_of(argv[2], "/v2/checkin", url, sizeof url);
    count = strtoull(argv[5], NULL, 10);
    conns = strtoull(argv[6], NULL, 10);
    port = (unsigned)atoi(argv[7]);
    timeout = atof(argv[8]);
    if (count > 200 * 250)
        die("at most 50000 agents");
    g_agents = make_agents(load_cert(argv[3]), argv[4], count);
    g_count = count;
    if ((g_outcome = calloc(count, 1)) == NULL)
        die("out of memory");
    listen_all(port, false);

    /* Register: one check-in each, from the agent's own loopback address. */
    xs = calloc(conns, sizeof *xs);
    m = curl_multi_init();
    for (size_t i = 0; i < conns && next < count; i++) {
        char src[32];
        xs[i].agent = next++;
        agent_addr(xs[i].agent, src);
        checkin_start(m, &xs[i], url, &g_agents[xs[i].agent], port, src, 0);
    }
    while (done < count) {
        int running, left;
        CURLMsg *msg;

        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct xfer *x;
            json_t *ans;
            char src[32];
            if (msg->msg != CURLMSG_DONE)
                continue;
            ans = checkin_answer(m, msg, &x);
            if (strcmp(json_string_value(json_object_get(ans, "state")), "current") != 0)
                die("%s is not current", g_agents[x->agent].id);
            json_decref(ans);
            done++;
            if (next >= count)
                continue;
            x->agent = next++;
            agent_addr(x->agent, src);
            checkin_start(m, x, url, &g_agents[x->agent], port, src, 0);
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    usleep(300 * 1000); /* the daemon writes check-ins in batches every few ms */
    fprintf(stderr, "loadgen: %zu agents registered\n", count);

    t0 = now_s();
    if ((rc = system(NULL) ? 0 : 1) == 0) {
        char cmd[4096] = "";
        for (int i = 10; i < argc; i++) {
            strncat(cmd, "'", sizeof cmd - strlen(cmd) - 1);
            strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 1);
            strncat(cmd, "' ", sizeof cmd - strlen(cmd) - 1);
        }
        rc = system(cmd);
    }
    if (rc != 0)
        die("the push command failed");
    /*
     * Until every agent has verified its command, or every agent has
     * answered (some refused: the daemon retries those only after a
     * back-off of 30 s), or the timeout. A run where not every agent was
     * delivered prints no figure: it says how many were, and fails.
     */
    for (;;) {
        size_t verified, refused;
        double last;
        pthread_mutex_lock(&g_lock);
        verified = g_verified, refused = g_refused, last = g_last;
        pthread_mutex_unlock(&g_lock);
        if (verified == count && last >= t0) {
            printf("agents %zu seconds %.3f rate %.1f bytes %zu\n", count, last - t0,
                   count / (last - t0 > 1e-6 ? last - t0 : 1e-6), atomic_load(&g_toklen));
            break;
        }
        if (verified + refused >= count || now_s() - t0 >= timeout) {
            fprintf(stderr, "loadgen: push: delivered %zu/%zu (%zu refused, %zu not reached in "
                    "%.1f s): no figure from this run\n", verified, count, refused,
                    count - verified - refused, now_s() - t0);
            fflush(stderr);
            _exit(1);
        }
        usleep(10 * 1000);
    }
    fflush(stdout);
    _exit(0); /* the listener threads may be mid-answer */
}

