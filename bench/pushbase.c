/*
 * pushbase — the broadcast push's baseline: COUNT POSTs of a BYTES-long
 * body with libcurl's multi interface, CONCURRENCY at once (authcertd's
 * --push-concurrency), each to its own loopback address
 * 127.1.(i/200).(i%200+1):PORT as the daemon's pushes go to one agent each
 * (so no connection is reused, as in the daemon), against `loadgen bare`.
 *
 *   pushbase PORT COUNT CONCURRENCY BYTES [PIN]
 *
 * With PIN: HTTPS as authcertd pushes (server/push.c): pinned to that key
 * (no CA, no name), TLS 1.2 or 1.3 with AUTHCERT_TLS_OPENSSL_CIPHERS, TLS
 * sessions shared across the transfers (each goes to another address, so
 * none resumes: a full handshake each, as a broadcast to a fleet costs).
 *
 * Prints "requests N seconds S rate R"; exits 1 if any answer is not 200.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "authcert/tls.h"

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct slot {
    CURL *easy;
    char url[64];
};

static const char *pin;
static CURLSH *share;

static void start(CURLM *m, struct slot *s, size_t i, unsigned port, const char *body,
                  size_t len, struct curl_slist *hdrs)
{
    if (s->easy == NULL)
        s->easy = curl_easy_init();
    else
        curl_easy_reset(s->easy);
    /* the daemon makes one per push: same cost here */
    snprintf(s->url, sizeof s->url, "%s://127.1.%zu.%zu:%u/v1/command",
             pin != NULL ? "https" : "http", i / 200, i % 200 + 1, port);
    curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
    if (pin != NULL) {
        curl_easy_setopt(s->easy, CURLOPT_PINNEDPUBLICKEY, pin);
        curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(s->easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        curl_easy_setopt(s->easy, CURLOPT_SSL_CIPHER_LIST, AUTHCERT_TLS_OPENSSL_CIPHERS);
        curl_easy_setopt(s->easy, CURLOPT_SHARE, share);
    }
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT, 10L);
    curl_multi_add_handle(m, s->easy);
}

int main(int argc, char **argv)
{
    unsigned port;
    size_t count, conc, len, next = 0, done = 0, bad = 0;
    struct slot *slots;
    struct curl_slist *hdrs = NULL;
    char *body;
    CURLM *m;
    double t0, t;

    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: pushbase PORT COUNT CONCURRENCY BYTES [PIN]\n");
        return 2;
    }
    port = (unsigned)atoi(argv[1]);
    count = strtoull(argv[2], NULL, 10);
    conc = strtoull(argv[3], NULL, 10);
    len = strtoull(argv[4], NULL, 10);
    if (count > 50000 || conc == 0 || (body = malloc(len + 1)) == NULL)
        return 2;
    memset(body, 'A', len);
    body[len] = '\0';
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (argc == 6) {
        pin = argv[5];
        share = curl_share_init();
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/jwt");
    hdrs = curl_slist_append(hdrs, "Expect:");
    slots = calloc(conc, sizeof *slots);
    m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conc);
    t0 = now_s();
    for (size_t i = 0; i < conc && next < count; i++, next++)
        start(m, &slots[i], next, port, body, len, hdrs);
    while (done < count) {
        int running, left;
        CURLMsg *msg;

        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct slot *s = NULL;
            long status = 0;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(m, msg->easy_handle);
            if (msg->data.result != CURLE_OK || status != 200)
                bad++;
            done++;
            if (next < count)
                start(m, s, next++, port, body, len, hdrs);
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    t = now_s() - t0;
    printf("requests %zu seconds %.3f rate %.1f\n", count, t, count / t);
    return bad == 0 ? 0 : 1;
}
