/*
 * loadgen checkin resume|full: what an agent's check-in costs when it comes
 * on a connection of its own, as it does every interval (the server closed
 * the idle one long ago): a TLS handshake, resumed from the session ticket
 * of the last one (resume) or full (full), then one check-in, each on a new
 * libcurl connection closed after it (CURLOPT_FORBID_REUSE), as the agent
 * makes them. In resume mode each easy handle keeps the session of its last
 * connection, as an agent's one handle does, after one uncounted check-in
 * each; in full mode none is kept. Whether each handshake was resumed is
 * asked of OpenSSL (SSL_session_reused) while the connection is up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "checkin.h"

struct cxfer {
    CURL *easy;
    struct curl_slist *hdrs;
    struct run *r;
    char body[CHECKIN_BODY_MAX];
    size_t agent;
    double t0;
    bool looked;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct cxfer *x = ud;
    const struct curl_tlssessioninfo *ti = NULL;

    (void)p;
    if (!x->looked) {
        x->looked = true;
        if (curl_easy_getinfo(x->easy, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK && ti != NULL &&
            ti->backend == CURLSSLBACKEND_OPENSSL && ti->internals != NULL) {
            if (SSL_session_reused(ti->internals))
                x->r->resumed++;
            else
                x->r->full++;
        }
    }
    return size * n;
}

static void start(CURLM *m, struct run *r, struct cxfer *x, size_t k, const char *url)
{
    char authz[AUTHZ_MAX];
    size_t len;

    x->agent = checkin_next(r, x->body, &len, authz);
    if (x->easy == NULL) {
        x->easy = curl_easy_init();
        x->r = r;
        curl_easy_setopt(x->easy, CURLOPT_URL, url);
        curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
        /* Each handle keeps the session of its last connection, as an agent's does. */
        curl_easy_setopt(x->easy, CURLOPT_SSL_SESSIONID_CACHE, r->mode == RESUME ? 1L : 0L);
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
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

void run_reconnect(struct run *r)
{
    char url[512];
    size_t inflight = 0;
    struct cxfer *xs;
    CURLM *m;

    url_of(r->base, "/v2/checkin", url, sizeof url);
    if ((xs = calloc(r->conns, sizeof *xs)) == NULL || (m = curl_multi_init()) == NULL)
        die("out of memory");
    if (r->mode == RESUME) {
        /* One check-in on each handle first, not counted, so that each begins
         * with a session to resume, as an agent has one from its last check-in. */
        for (size_t k = 0; k < r->conns; k++)
            start(m, r, &xs[k], k, url);
        for (int running = 1; running > 0;) {
            curl_multi_perform(m, &running);
            curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        for (size_t k = 0; k < r->conns; k++) {
            curl_multi_remove_handle(m, xs[k].easy);
            checkin_done(r, xs[k].agent, xs[k].t0, 0, NULL);
        }
        r->resumed = r->full = 0;
    }
    r->counting = true;
    r->t0 = now_s();
    for (size_t k = 0; k < r->conns; k++, inflight++)
        start(m, r, &xs[k], k, url);
    while (inflight > 0) {
        int running, left;
        CURLMsg *msg;

        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct cxfer *x = NULL;
            long status = 0;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(m, msg->easy_handle);
            checkin_done(r, x->agent, x->t0, msg->data.result == CURLE_OK ? status : 0,
                         curl_easy_strerror(msg->data.result));
            if (now_s() - r->t0 < r->secs)
                start(m, r, x, (size_t)(x - xs), url);
            else
                inflight--;
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    r->t = now_s() - r->t0;
    for (size_t k = 0; k < r->conns; k++) {
        curl_easy_cleanup(xs[k].easy);
        curl_slist_free_all(xs[k].hdrs);
    }
    curl_multi_cleanup(m);
    free(xs);
}
