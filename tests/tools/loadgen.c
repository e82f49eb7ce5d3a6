/*
 * loadgen — many simulated agents in one process, for bench/run. Every
 * token is checked with the real agent code (authcert_agent_verify and
 * authcert_agent_apply_update_key), one trust per simulated agent made with
 * authcert_agent_trust_new, all sharing one certificate object, with a
 * replay capacity of REPLAY_CAP tokens each (about 100 bytes an entry).
 *
 *   loadgen rollover URL OLD_CERT_DER PREFIX COUNT CONNS [THREADS]
 *       Agents PREFIX-0..COUNT-1 hold the certificate in OLD_CERT_DER (an
 *       expired one of the server). Each checks in with its thumbprint,
 *       must get state "expired" and an update-key command, verifies it,
 *       installs the certificate it carries, and checks in again, which must
 *       answer "current". CONNS keep-alive connections over THREADS threads
 *       (default 1). Prints "agents N seconds S rate R".
 *
 *   loadgen push URL CERT_DER PREFIX COUNT CONNS PORT TIMEOUT -- CMD [ARG]...
 *       Listens on PORT of every loopback address (SO_BINDTODEVICE lo when
 *       allowed). Agent i is reached at 127.1.(i/200).(i%200+1):PORT: its
 *       check-in comes from that address, so the daemon records it, and the
 *       push's destination address names the agent (authcertd's push carries
 *       no agent id outside the token). Registers the COUNT agents with one
 *       check-in each, runs CMD (the operator's `authcert --push ... --all`),
 *       and waits until every agent has received and verified its command.
 *       Prints "agents N seconds S rate R bytes B" (S from CMD's start, B a
 *       token's length).
 *
 *   loadgen reconnect URL PREFIX COUNT THUMBPRINT CONNS SECONDS resume|full [START]
 *       Check-ins for SECONDS, each on a new connection (below), cycling
 *       through agents PREFIX-START.. modulo COUNT that report THUMBPRINT,
 *       CONNS at once. Prints "requests N seconds S rate R resumed K full F
 *       non2xx X errors E" (K, F: the TLS handshakes of each kind). Against
 *       authcertd, or against `bare` as its baseline.
 *
 *   loadgen bare PORT [SECONDS]
 *       A bare libmicrohttpd server (the daemon's threading: internal polling
 *       thread pool of 2, auto poll) answering every request with a fixed
 *       100-byte body: the baseline for the HTTP loads. Listens like push.
 *
 * Addresses: an agent index i < 200*250 maps to 127.1.(i/200).(i%200+1).
 *
 * TLS, as authcertd and its agents speak it (options before the mode):
 *   --cacert FILE      check-ins go to https:// URLs that FILE's certificate
 *                      vouches for (authcertd's STORE/tls/server.crt), TLS 1.2
 *                      or 1.3 with the agent's suites
 *                      (AUTHCERT_TLS_OPENSSL_CIPHERS)
 *   --tls-cert FILE --tls-key FILE
 *                      the listeners (push, bare) serve HTTPS with this
 *                      certificate and key (PEM) and authcertd's GnuTLS
 *                      priorities (AUTHCERT_TLS_GNUTLS_PRIORITIES); the
 *                      simulated agents report the key's pin in their
 *                      check-ins ("key_pin"), as authcert-agent reports the
 *                      key of its listener, so authcertd's pinned pushes
 *                      reach them
 *   --tickets          the listener hands out TLS session tickets, as
 *                      authcertd does (server/tls.c), so clients may resume
 *
 * And for the test of the harness itself (tests/e2e/bench_smoke.bats):
 *   --refuse I         push: simulated agent I refuses every command (403),
 *                      so the run must end with "delivered N-1/N" and fail
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/ssl.h>

#include "authcert/authcert.h"
#include "authcert/tls.h"

#define REPLAY_CAP 8
#define BODY_MAX (64 * 1024)

/* The TLS options (see the top). */
static const char *g_cacert;
static char *g_cert_pem, *g_key_pem;
static char g_pin[AUTHCERT_PIN_LEN + 1];
static bool g_tickets;
static gnutls_datum_t g_ticket_key;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "loadgen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (%s)\n", authcert_detail());
    exit(1);
}

static authcert_cert *load_cert(const char *path)
{
    static uint8_t der[AUTHCERT_AGENT_CERT_MAX];
    FILE *f = fopen(path, "rb");
    size_t n;
    authcert_cert *c = NULL;

    if (f == NULL)
        die("cannot open %s", path);
    n = fread(der, 1, sizeof der, f);
    fclose(f);
    if (authcert_cert_from_der(der, n, &c) != AUTHCERT_OK)
        die("%s is not a certificate", path);
    return c;
}

/* The whole of a small file, NUL-terminated; *len its length. Caller frees. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(BODY_MAX + 1);

    if (f == NULL || buf == NULL)
        die("cannot read %s: %s", path, strerror(errno));
    *len = fread(buf, 1, BODY_MAX, f);
    fclose(f);
    if (*len == 0 || *len == BODY_MAX)
        die("%s: empty or too large", path);
    buf[*len] = '\0';
    return buf;
}

/* The client side of TLS to authcertd, as authcert-agent sets it (agent/checkin.c). */
static void client_tls(CURL *easy)
{
    if (g_cacert == NULL)
        return;
    curl_easy_setopt(easy, CURLOPT_CAINFO, g_cacert);
    curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(easy, CURLOPT_SSL_CIPHER_LIST, AUTHCERT_TLS_OPENSSL_CIPHERS);
}

static void addr_of(size_t i, char out[32])
{
    snprintf(out, 32, "127.1.%zu.%zu", i / 200, i % 200 + 1);
}

/* ---- HTTP client: a pool of keep-alive easy handles ----------------------- */

struct agent {
    authcert_agent_trust *trust;
    char id[48];
    int step; /* rollover: 0 old check-in, 1 new check-in, 2 done */
};

struct xfer {
    CURL *easy;
    struct curl_slist *hdrs;
    size_t agent;
    char body[512];
    char *ans;
    size_t alen;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    char *q;

    if (x->alen + size * n > BODY_MAX || (q = realloc(x->ans, x->alen + size * n + 1)) == NULL)
        return 0;
    x->ans = q;
    memcpy(x->ans + x->alen, p, size * n);
    x->alen += size * n;
    x->ans[x->alen] = '\0';
    return size * n;
}

static void checkin_start(CURLM *m, struct xfer *x, const char *url, const struct agent *a,
                          unsigned port, const char *source)
{
    char tp[65], iface[48];

    authcert_agent_trust_thumbprint(a->trust, tp);
    snprintf(x->body, sizeof x->body,
             "{\"agent_id\":\"%s\",\"hostname\":\"sim-%s\",\"port\":%u,\"version\":\"loadgen\","
             "\"thumbprint\":\"%s\"%s%s%s}", a->id, a->id, port, tp,
             g_pin[0] != '\0' ? ",\"key_pin\":\"" : "", g_pin, g_pin[0] != '\0' ? "\"" : "");
    if (x->easy == NULL) {
        x->easy = curl_easy_init();
        x->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        x->hdrs = curl_slist_append(x->hdrs, "Expect:");
        curl_easy_setopt(x->easy, CURLOPT_URL, url);
        curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
        curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, 60L);
        client_tls(x->easy);
    }
    if (source != NULL) {
        snprintf(iface, sizeof iface, "host!%s", source);
        curl_easy_setopt(x->easy, CURLOPT_INTERFACE, iface);
        curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
    }
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
    x->alen = 0;
    curl_multi_add_handle(m, x->easy);
}

/* The answer of a finished check-in, parsed; dies on anything but 200. */
static json_t *checkin_answer(CURLM *m, CURLMsg *msg, struct xfer **xout)
{
    struct xfer *x = NULL;
    long status = 0;
    json_t *j;

    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(m, msg->easy_handle);
    if (msg->data.result != CURLE_OK)
        die("check-in: %s", curl_easy_strerror(msg->data.result));
    if (status != 200)
        die("check-in answered %s", x->ans != NULL ? x->ans : "?");
    if ((j = json_loadb(x->ans, x->alen, JSON_REJECT_DUPLICATES, NULL)) == NULL)
        die("check-in answer is not JSON: %s", x->ans);
    *xout = x;
    return j;
}

/* URL is the daemon's base URL, as authcert-agent --server takes it. */
static const char *checkin_url(const char *base)
{
    static char url[512];

    snprintf(url, sizeof url, "%s/v1/checkin", base);
    return url;
}

static struct agent *make_agents(authcert_cert *cert, const char *prefix, size_t count)
{
    struct agent *a = calloc(count, sizeof *a);
    authcert_agent_trust_opts o = { .replay_capacity = REPLAY_CAP, .leeway = 60 };

    if (a == NULL)
        die("out of memory");
    for (size_t i = 0; i < count; i++) {
        snprintf(a[i].id, sizeof a[i].id, "%s-%zu", prefix, i);
        if (authcert_agent_trust_new(cert, &o, &a[i].trust) != AUTHCERT_OK)
            die("trust for %s", a[i].id);
    }
    return a;
}

/* ---- rollover ------------------------------------------------------------- */

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
    if (state == NULL || strcmp(state, "expired") != 0 || json_array_size(cmds) < 1)
        die("first check-in of %s: not expired with update-key", a->id);
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
        checkin_start(m, &xs[i], r->url, &r->a[xs[i].agent], 0, NULL);
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
            checkin_start(m, x, r->url, &r->a[x->agent], 0, NULL);
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (size_t i = 0; i < r->conns; i++) {
        if (xs[i].easy != NULL)
            curl_easy_cleanup(xs[i].easy);
        curl_slist_free_all(xs[i].hdrs);
        free(xs[i].ans);
    }
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
static int rollover(int argc, char **argv)
{
    const char *url;
    size_t count, conns, threads = 1, first = 0;
    struct agent *a;
    struct roll_part *parts;
    double t0, t;

    if (argc != 7 && argc != 8)
        return 2;
    url = checkin_url(argv[2]);
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
                                       .conns = conns / threads };
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

/* ---- reconnect: a new connection per check-in ------------------------------ */

/*
 * What an agent's check-in costs when it comes on a connection of its own,
 * as it does every interval (the server closed the idle one long ago):
 * a TLS handshake, resumed from the session ticket of the last one (resume)
 * or full (full), then one check-in. One thread, CONNS transfers at once,
 * each on a new connection closed after it (CURLOPT_FORBID_REUSE). In
 * resume mode each easy handle keeps the session of its last connection,
 * as an agent's one handle does, after one uncounted check-in each; in
 * full mode none is kept. Whether each handshake was resumed is asked of
 * OpenSSL (SSL_session_reused) while the connection is up.
 */
struct rxfer {
    CURL *easy;
    char body[512];
    bool looked;
};

static size_t g_resumed, g_full; /* reconnect: its one thread's */

static size_t rx_data(char *p, size_t size, size_t n, void *ud)
{
    struct rxfer *x = ud;
    const struct curl_tlssessioninfo *ti = NULL;

    (void)p;
    if (!x->looked) {
        x->looked = true;
        if (curl_easy_getinfo(x->easy, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK && ti != NULL &&
            ti->backend == CURLSSLBACKEND_OPENSSL && ti->internals != NULL) {
            if (SSL_session_reused(ti->internals))
                g_resumed++;
            else
                g_full++;
        }
    }
    return size * n;
}

static void rx_start(CURLM *m, struct rxfer *x, const char *url, struct curl_slist *hdrs,
                     bool resume, const char *prefix, size_t i, const char *thumb)
{
    snprintf(x->body, sizeof x->body,
             "{\"agent_id\":\"%s-%zu\",\"hostname\":\"host-%zu\",\"port\":0,"
             "\"version\":\"reconnect\",\"thumbprint\":\"%s\"}", prefix, i, i, thumb);
    if (x->easy == NULL) {
        x->easy = curl_easy_init();
        curl_easy_setopt(x->easy, CURLOPT_URL, url);
        curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
        /* Each handle keeps the session of its last connection, as an agent's does. */
        curl_easy_setopt(x->easy, CURLOPT_SSL_SESSIONID_CACHE, resume ? 1L : 0L);
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, rx_data);
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
        curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, 10L);
        client_tls(x->easy);
    }
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
    x->looked = false;
    curl_multi_add_handle(m, x->easy);
}

/* loadgen reconnect URL PREFIX COUNT THUMBPRINT CONNS SECONDS resume|full [START] */
static int reconnect(int argc, char **argv)
{
    const char *url, *prefix, *thumb;
    size_t count, conns, next, inflight = 0, done = 0, non2xx = 0, errors = 0;
    double secs, t0, t;
    bool resume;
    struct rxfer *xs;
    struct curl_slist *hdrs = NULL;
    CURLM *m;

    if (argc != 9 && argc != 10)
        return 2;
    url = checkin_url(argv[2]);
    prefix = argv[3];
    count = strtoull(argv[4], NULL, 10);
    thumb = argv[5];
    conns = strtoull(argv[6], NULL, 10);
    secs = atof(argv[7]);
    if (strcmp(argv[8], "resume") != 0 && strcmp(argv[8], "full") != 0)
        return 2;
    resume = strcmp(argv[8], "resume") == 0;
    next = argc == 10 ? strtoull(argv[9], NULL, 10) : 0;
    if (count == 0 || conns == 0 || secs <= 0)
        return 2;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if ((xs = calloc(conns, sizeof *xs)) == NULL || (m = curl_multi_init()) == NULL)
        die("out of memory");
    if (resume) {
        /* One check-in on each handle first, not counted, so that each begins
         * with a session to resume, as an agent has one from its last check-in. */
        for (size_t i = 0; i < conns; i++)
            rx_start(m, &xs[i], url, hdrs, resume, prefix, next++ % count, thumb);
        for (int running = 1; running > 0;) {
            curl_multi_perform(m, &running);
            curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        for (size_t i = 0; i < conns; i++)
            curl_multi_remove_handle(m, xs[i].easy);
        g_resumed = g_full = 0;
    }
    t0 = now_s();
    for (size_t i = 0; i < conns; i++, inflight++)
        rx_start(m, &xs[i], url, hdrs, resume, prefix, next++ % count, thumb);
    while (inflight > 0) {
        int running, left;
        CURLMsg *msg;

        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct rxfer *x = NULL;
            long status = 0;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(m, msg->easy_handle);
            if (msg->data.result != CURLE_OK) {
                if (errors++ == 0)
                    fprintf(stderr, "loadgen: reconnect: %s\n",
                            curl_easy_strerror(msg->data.result));
            } else if (status != 200) {
                non2xx++;
            } else {
                done++;
            }
            if (now_s() - t0 < secs)
                rx_start(m, x, url, hdrs, resume, prefix, next++ % count, thumb);
            else
                inflight--;
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    t = now_s() - t0;
    printf("requests %zu seconds %.3f rate %.1f resumed %zu full %zu non2xx %zu errors %zu\n",
           done, t, done / t, g_resumed, g_full, non2xx, errors);
    for (size_t i = 0; i < conns; i++)
        curl_easy_cleanup(xs[i].easy);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    free(xs);
    return 0;
}

/* ---- listener (push, bare) ------------------------------------------------ */

static struct agent *g_agents;
static size_t g_count;
/*
 * What the simulated agents answered, under g_lock: per agent 0 (nothing
 * yet), OUTCOME_VERIFIED (a verified command: the first one counts), or
 * OUTCOME_REFUSED (refused, and none verified). g_last: when the last
 * agent verified its command (0 until all have). One lock for all three,
 * so that the waiting thread never sees every agent counted before g_last
 * is set (it once read 0 there and printed a negative time).
 */
enum { OUTCOME_VERIFIED = 1, OUTCOME_REFUSED = 2 };
static unsigned char *g_outcome;
static size_t g_verified, g_refused;
static double g_last;
static long g_refuse = -1; /* --refuse: this agent refuses every push (a test of the harness) */
static atomic_size_t g_toklen;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_bare_body[101];

struct req {
    char *body;
    size_t len;
    bool too_big;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    MHD_add_response_header(r, "Content-Type", "application/json");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Which simulated agent a connection is for: the loopback address it reached. */
static long agent_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    uint32_t ip;

    if (ci == NULL || getsockname(ci->connect_fd, (struct sockaddr *)&sa, &sl) != 0 ||
        sa.sin_family != AF_INET)
        return -1;
    ip = ntohl(sa.sin_addr.s_addr);
    if ((ip >> 16) != 0x7f01 || (ip & 0xff) == 0)
        return -1;
    return (long)(((ip >> 8) & 0xff) * 200 + (ip & 0xff) - 1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **ctx)
{
    struct req *rq = *ctx;
    bool bare = cls != NULL;
    char answer[512];
    json_t *claims = NULL;
    authcert_agent_verdict v;
    long i;

    (void)version;
    if (rq == NULL) {
        if ((rq = calloc(1, sizeof *rq)) == NULL)
            return MHD_NO;
        *ctx = rq;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (rq->len + *upload_size > BODY_MAX) {
            rq->too_big = true;
        } else {
            char *p = realloc(rq->body, rq->len + *upload_size + 1);
            if (p == NULL)
                return MHD_NO;
            rq->body = p;
            memcpy(rq->body + rq->len, upload, *upload_size);
            rq->len += *upload_size;
            rq->body[rq->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (bare)
        return reply(c, 200, g_bare_body);
    if (strcmp(method, "POST") != 0 || strcmp(url, "/v1/command") != 0)
        return reply(c, 404, "{\"error\":\"not found\"}");
    if (rq->too_big)
        return reply(c, 413, "{\"error\":\"too large\"}");
    if ((i = agent_of(c)) < 0 || (size_t)i >= g_count)
        return reply(c, 404, "{\"error\":\"no such simulated agent\"}");
    if (i == g_refuse || authcert_agent_verify(g_agents[i].trust, g_agents[i].id, rq->body,
                                               rq->len, 0, &claims, &v) != AUTHCERT_OK) {
        if (i == g_refuse)
            v = AUTHCERT_AGENT_FORBIDDEN;
        pthread_mutex_lock(&g_lock);
        if (g_outcome[i] == 0) {
            g_outcome[i] = OUTCOME_REFUSED;
            g_refused++;
        }
        pthread_mutex_unlock(&g_lock);
        fprintf(stderr, "loadgen: %s refused a push: %s\n", g_agents[i].id,
                i == g_refuse ? "told to (--refuse)" : authcert_detail());
        snprintf(answer, sizeof answer, "{\"error\":\"%s\"}", authcert_agent_verdict_name(v));
        return reply(c, (unsigned)authcert_agent_verdict_http(v), answer);
    }
    snprintf(answer, sizeof answer,
             "{\"agent_id\":\"%s\",\"jti\":\"%s\",\"status\":\"ok\",\"exit\":0,\"output\":\"\"}",
             g_agents[i].id, json_string_value(json_object_get(claims, "jti")));
    json_decref(claims);
    atomic_store(&g_toklen, rq->len);
    pthread_mutex_lock(&g_lock);
    if (g_outcome[i] != OUTCOME_VERIFIED) {
        if (g_outcome[i] == OUTCOME_REFUSED)
            g_refused--;
        g_outcome[i] = OUTCOME_VERIFIED;
        if (++g_verified == g_count)
            g_last = now_s();
    }
    pthread_mutex_unlock(&g_lock);
    return reply(c, 200, answer);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode code)
{
    struct req *rq = *ctx;

    (void)cls, (void)c, (void)code;
    if (rq != NULL) {
        free(rq->body);
        free(rq);
    }
    *ctx = NULL;
}

/* Every connection's start: session tickets, as authcertd enables them (server/tls.c). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    const union MHD_ConnectionInfo *ci;

    (void)cls, (void)socket_context;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED ||
        (ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION)) == NULL ||
        ci->tls_session == NULL)
        return;
    (void)gnutls_session_ticket_enable_server((gnutls_session_t)ci->tls_session, &g_ticket_key);
}

static struct MHD_Daemon *listen_all(unsigned port, bool bare)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_ANY) };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC;
    struct MHD_OptionItem tls[5] = { { MHD_OPTION_END, 0, NULL } };
    size_t n = 0;
    struct MHD_Daemon *d;

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Loopback only, where allowed; the benchmark listens for a minute at most. */
    (void)setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0)
        die("cannot listen: %s", strerror(errno));
    if (g_cert_pem != NULL) {
        flags |= MHD_USE_TLS;
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, g_key_pem };
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, g_cert_pem };
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            (void *)AUTHCERT_TLS_GNUTLS_PRIORITIES };
        if (g_tickets) {
            if (gnutls_session_ticket_key_generate(&g_ticket_key) < 0)
                die("cannot make a session ticket key");
            tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
                                                (intptr_t)on_connection, NULL };
        }
    }
    d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, bare ? (void *)1 : NULL,
                         MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                         MHD_OPTION_THREAD_POOL_SIZE, 2u,
                         MHD_OPTION_CONNECTION_LIMIT, 8192u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_ARRAY, tls,
                         MHD_OPTION_END);
    if (d == NULL)
        die("cannot start the listener");
    return d;
}

static int bare(int argc, char **argv)
{
    double secs = argc > 3 ? atof(argv[3]) : 600;

    if (argc < 3)
        return 2;
    memset(g_bare_body, 'x', 100);
    memcpy(g_bare_body, "{\"ok\":\"", 7);
    memcpy(g_bare_body + 98, "\"}", 2);
    listen_all((unsigned)atoi(argv[2]), true);
    printf("ready\n");
    fflush(stdout);
    usleep((useconds_t)(secs * 1e6));
    return 0;
}

static int push(int argc, char **argv)
{
    const char *url;
    size_t count, conns, next = 0, done = 0;
    unsigned port;
    double timeout, t0;
    struct xfer *xs;
    CURLM *m;
    int rc;

    if (argc < 11 || strcmp(argv[9], "--") != 0)
        return 2;
    url = checkin_url(argv[2]);
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
        addr_of(xs[i].agent, src);
        checkin_start(m, &xs[i], url, &g_agents[xs[i].agent], port, src);
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
            addr_of(x->agent, src);
            checkin_start(m, x, url, &g_agents[x->agent], port, src);
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

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    size_t len;
    int rc = 2;

    signal(SIGPIPE, SIG_IGN);
    if (authcert_init() != AUTHCERT_OK || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        die("init");
    /* The TLS options come first; the modes see argv[1] as their name. */
    while (argc >= 2 && strncmp(argv[1], "--", 2) == 0) {
        int used = 2;
        if (strcmp(argv[1], "--cacert") == 0 && argc >= 3)
            g_cacert = argv[2];
        else if (strcmp(argv[1], "--tls-cert") == 0 && argc >= 3)
            cert = argv[2];
        else if (strcmp(argv[1], "--tls-key") == 0 && argc >= 3)
            key = argv[2];
        else if (strcmp(argv[1], "--tickets") == 0)
            g_tickets = true, used = 1;
        else if (strcmp(argv[1], "--refuse") == 0 && argc >= 3)
            g_refuse = atol(argv[2]);
        else
            break;
        argv[used] = argv[0];
        argv += used;
        argc -= used;
    }
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "loadgen: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (cert != NULL) {
        g_cert_pem = read_file(cert, &len);
        if (authcert_cert_pin(g_cert_pem, len, g_pin) != AUTHCERT_OK)
            die("%s: no certificate", cert);
        g_key_pem = read_file(key, &len);
    }
    if (argc >= 2 && strcmp(argv[1], "rollover") == 0)
        rc = rollover(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "push") == 0)
        rc = push(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "bare") == 0)
        rc = bare(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "reconnect") == 0)
        rc = reconnect(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: see the comment at the top of tests/tools/loadgen.c\n");
    return rc;
}
