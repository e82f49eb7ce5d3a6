/*
 * loadgen checkin: check-ins of many agents, each signed with its MAC key,
 * for a given time, CONNS at once, one thread (as `wrk -t1` was: one core
 * for the load, one for the server on a 2-core machine).
 *
 * keepalive: CONNS connections kept alive, connection k from its own source
 * address. resume, full: what an agent's check-in costs when it comes on a
 * connection of its own, as it does every interval (the server closed the
 * idle one long ago): a TLS handshake, resumed from the session ticket of
 * the last one (resume) or full (full), then one check-in, each on a new
 * connection closed after it (CURLOPT_FORBID_REUSE). In resume mode each
 * easy handle keeps the session of its last connection, as an agent's one
 * handle does, after one uncounted check-in each; in full mode none is
 * kept. Whether each handshake was resumed is asked of OpenSSL
 * (SSL_session_reused) while the connection is up.
 *
 * MAC keys are derived when an agent first checks in (one HKDF; authcertd
 * derives one for every request) and kept; the latency of every check-in
 * is kept for the quantiles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "loadgen.h"

enum mode { KEEPALIVE, RESUME, FULL };

struct cxfer {
    CURL *easy;
    struct curl_slist *hdrs;
    char body[512];
    size_t agent;
    double t0;
    bool looked;
};

struct run {
    const char *url, *prefix, *thumb;
    size_t count;
    enum mode mode;
    uint8_t (*keys)[AUTHCERT_MAC_KEY_LEN];
    unsigned char *have; /* keys[i] derived */
    unsigned char *busy; /* agent i's check-in is in flight */
    size_t next;         /* the next agent, modulo count */
    size_t resumed, full;
    uint32_t *lat; /* microseconds, one per answered check-in */
    size_t nlat, caplat;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct cxfer *x = ud;
    struct run *r;
    const struct curl_tlssessioninfo *ti = NULL;

    (void)p;
    if (!x->looked) {
        x->looked = true;
        curl_easy_getinfo(x->easy, CURLINFO_PRIVATE, (char **)&r);
        if (r->mode != KEEPALIVE &&
            curl_easy_getinfo(x->easy, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK && ti != NULL &&
            ti->backend == CURLSSLBACKEND_OPENSSL && ti->internals != NULL) {
            if (SSL_session_reused(ti->internals))
                r->resumed++;
            else
                r->full++;
        }
    }
    return size * n;
}

/*
 * Start the next agent's check-in on x (connection k). An agent has one
 * check-in in flight at a time, as a real one does: when the cycle comes
 * back to an agent whose last check-in is still on its way (a slow answer
 * while the others went round), its next one could overtake it, and the
 * slow one would then be refused as a replay (its counter below the last
 * one seen). Such an agent is skipped this time round.
 */
static void start(CURLM *m, struct run *r, struct cxfer *x, size_t k)
{
    char id[64], authz[AUTHZ_MAX];
    size_t len, i;

    while (r->busy[r->next % r->count])
        r->next++;
    i = r->next++ % r->count;
    r->busy[i] = 1;
    x->agent = i;

    snprintf(id, sizeof id, "%s-%zu", r->prefix, g_first + i);
    len = (size_t)snprintf(x->body, sizeof x->body,
                           "{\"agent_id\":\"%s\",\"hostname\":\"host-%zu\",\"port\":0,"
                           "\"version\":\"loadgen\",\"thumbprint\":\"%s\"}", id, g_first + i,
                           r->thumb);
    if (!r->have[i]) {
        mac_key(id, r->keys[i]);
        r->have[i] = 1;
    }
    authorization(id, r->keys[i], "/v2/checkin", x->body, len, authz);
    if (x->easy == NULL) {
        x->easy = curl_easy_init();
        curl_easy_setopt(x->easy, CURLOPT_URL, r->url);
        if (r->mode != KEEPALIVE) {
            curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
            curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
        }
        /* Each handle keeps the session of its last connection, as an agent's does. */
        curl_easy_setopt(x->easy, CURLOPT_SSL_SESSIONID_CACHE, r->mode == FULL ? 0L : 1L);
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, r);
        curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, 10L);
        client_tls(x->easy);
        bind_source(x->easy, k);
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    x->hdrs = curl_slist_append(x->hdrs, authz);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    x->looked = false;
    x->t0 = now_s();
    curl_multi_add_handle(m, x->easy);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* The latency at quantile permille/1000 (sorted lat), microseconds. */
static uint32_t quantile(const struct run *r, unsigned permille)
{
    size_t k = (r->nlat * permille + 999) / 1000;

    return r->nlat == 0 ? 0 : r->lat[k > 0 ? k - 1 : 0];
}

/* loadgen checkin URL PREFIX COUNT THUMBPRINT CONNS SECONDS MODE [START [QFILE]] */
int checkin(int argc, char **argv)
{
    char url[512];
    struct run r = { .url = url };
    size_t conns, inflight = 0, non2xx = 0, errors = 0, slot;
    double secs, t0, t;
    struct cxfer *xs;
    const char *qfile = argc > 10 ? argv[10] : NULL;
    CURLM *m;

    if (argc < 9 || argc > 11)
        return 2;
    url_of(argv[2], "/v2/checkin", url, sizeof url);
    r.prefix = argv[3];
    r.count = strtoull(argv[4], NULL, 10);
    r.thumb = argv[5];
    conns = strtoull(argv[6], NULL, 10);
    secs = atof(argv[7]);
    if (strcmp(argv[8], "keepalive") == 0)
        r.mode = KEEPALIVE;
    else if (strcmp(argv[8], "resume") == 0)
        r.mode = RESUME;
    else if (strcmp(argv[8], "full") == 0)
        r.mode = FULL;
    else
        return 2;
    r.next = argc > 9 ? strtoull(argv[9], NULL, 10) : 0;
    if (r.count == 0 || conns == 0 || conns >= r.count || secs <= 0)
        return 2;
    r.caplat = 65536;
    if ((xs = calloc(conns, sizeof *xs)) == NULL || (m = curl_multi_init()) == NULL ||
        (r.keys = calloc(r.count, sizeof *r.keys)) == NULL ||
        (r.have = calloc(r.count, 1)) == NULL || (r.busy = calloc(r.count, 1)) == NULL ||
        (r.lat = malloc(r.caplat * 4)) == NULL)
        die("out of memory");
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conns);
    if (r.mode != FULL) {
        /* One check-in on each handle first, not counted: keep-alive connections
         * are up, and each handle begins with a session to resume, as an agent
         * has one from its last check-in. */
        for (size_t k = 0; k < conns; k++)
            start(m, &r, &xs[k], k);
        for (int running = 1; running > 0;) {
            curl_multi_perform(m, &running);
            curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        for (size_t k = 0; k < conns; k++) {
            curl_multi_remove_handle(m, xs[k].easy);
            r.busy[xs[k].agent] = 0;
        }
        r.resumed = r.full = 0;
    }
    t0 = now_s();
    for (size_t k = 0; k < conns; k++, inflight++)
        start(m, &r, &xs[k], k);
    while (inflight > 0) {
        int running, left;
        CURLMsg *msg;

        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct cxfer *x = NULL;
            long status = 0;
            if (msg->msg != CURLMSG_DONE)
                continue;
            for (slot = 0; slot < conns && xs[slot].easy != msg->easy_handle; slot++)
                ;
            x = &xs[slot];
            r.busy[x->agent] = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(m, msg->easy_handle);
            if (msg->data.result != CURLE_OK) {
                if (errors++ == 0)
                    fprintf(stderr, "loadgen: checkin: %s\n",
                            curl_easy_strerror(msg->data.result));
            } else if (status != 200) {
                if (non2xx++ == 0)
                    fprintf(stderr, "loadgen: checkin: answered %ld\n", status);
            } else {
                if (r.nlat == r.caplat) {
                    uint32_t *p = realloc(r.lat, r.caplat * 2 * 4);
                    if (p == NULL)
                        die("out of memory");
                    r.lat = p;
                    r.caplat *= 2;
                }
                r.lat[r.nlat++] = (uint32_t)((now_s() - x->t0) * 1e6);
            }
            if (now_s() - t0 < secs)
                start(m, &r, x, slot);
            else
                inflight--;
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    t = now_s() - t0;
    qsort(r.lat, r.nlat, sizeof *r.lat, cmp_u32);
    printf("requests %zu seconds %.3f rate %.1f resumed %zu full %zu non2xx %zu errors %zu "
           "p50_ms %.3f p99_ms %.3f\n", r.nlat, t, r.nlat / t, r.resumed, r.full, non2xx,
           errors, quantile(&r, 500) / 1e3, quantile(&r, 990) / 1e3);
    if (qfile != NULL) {
        FILE *f = fopen(qfile, "w");
        if (f == NULL)
            die("cannot write %s", qfile);
        fprintf(f, "requests %zu\n", r.nlat);
        for (unsigned k = 1; k <= 1000; k++)
            fprintf(f, "%u %u\n", k, quantile(&r, k));
        fclose(f);
    }
    for (size_t k = 0; k < conns; k++) {
        curl_easy_cleanup(xs[k].easy);
        curl_slist_free_all(xs[k].hdrs);
    }
    curl_multi_cleanup(m);
    free(xs);
    free(r.keys);
    free(r.have);
    free(r.busy);
    free(r.lat);
    return 0;
}
