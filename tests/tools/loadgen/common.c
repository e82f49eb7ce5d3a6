/*
 * What loadgen's modes share: the options, addresses, request MACs, the
 * simulated agents with a certificate, and the keep-alive check-in.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loadgen.h"

const char *g_cacert;
char *g_cert_pem, *g_key_pem;
char g_pin[AUTHCERT_PIN_LEN + 1];
bool g_tickets;
long g_refuse = -1;
bool g_have_secret;
uint8_t g_secret[AUTHCERT_SECRET_LEN];
const char *g_server_id;
uint64_t g_epoch = 1;
size_t g_first;

double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "loadgen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (%s)\n", authcert_detail());
    exit(1);
}

authcert_cert *load_cert(const char *path)
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
char *read_file(const char *path, size_t *len)
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
void client_tls(CURL *easy)
{
    if (g_cacert == NULL)
        return;
    curl_easy_setopt(easy, CURLOPT_CAINFO, g_cacert);
    curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(easy, CURLOPT_SSL_CIPHER_LIST, AUTHCERT_TLS_OPENSSL_CIPHERS);
}

void url_of(const char *base, const char *path, char *out, size_t size)
{
    if ((size_t)snprintf(out, size, "%s%s", base, path) >= size)
        die("URL too long: %s", base);
}

void agent_addr(size_t i, char out[32])
{
    snprintf(out, 32, "127.1.%zu.%zu", i / 200, i % 200 + 1);
}

void conn_source(size_t k, char out[32])
{
    snprintf(out, 32, "127.2.%zu.%zu", (k / 250) % 256, k % 250 + 1);
}

void bind_source(CURL *easy, size_t k)
{
    char src[32], iface[48];

    conn_source(k, src);
    snprintf(iface, sizeof iface, "host!%s", src);
    curl_easy_setopt(easy, CURLOPT_INTERFACE, iface);
}

uint64_t next_counter(void)
{
    static _Atomic uint64_t last;
    struct timespec ts;
    uint64_t now, prev = atomic_load(&last), next;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
    do
        next = now > prev ? now : prev + 1;
    while (!atomic_compare_exchange_weak(&last, &prev, next));
    return next;
}

void mac_key(const char *id, uint8_t key[AUTHCERT_MAC_KEY_LEN])
{
    if (!g_have_secret)
        die("signed requests need --store and --server-id");
    if (authcert_agent_mac_key(g_secret, id, g_epoch, key) != AUTHCERT_OK)
        die("MAC key of %s", id);
}

void authorization(const char *id, const uint8_t key[AUTHCERT_MAC_KEY_LEN], const char *path,
                   const char *body, size_t len, char out[AUTHZ_MAX])
{
    char mac[AUTHCERT_MAC_B64_LEN + 1];
    uint64_t counter = next_counter();
    const size_t pre = sizeof "Authorization: " - 1;

    memcpy(out, "Authorization: ", pre);
    if (authcert_request_mac(key, &(authcert_request_auth){
                                      .method = "POST", .path = path, .agent_id = id,
                                      .epoch = g_epoch, .server_id = g_server_id,
                                      .counter = counter, .body = body, .body_len = len },
                             mac) != AUTHCERT_OK ||
        authcert_auth_header_format(id, g_epoch, counter, mac, out + pre, AUTHZ_MAX - pre) !=
            AUTHCERT_OK)
        die("MAC of %s", id);
}

struct agent *make_agents(authcert_cert *cert, const char *prefix, size_t count)
{
    struct agent *a = calloc(count, sizeof *a);
    authcert_agent_trust_opts o = { .replay_capacity = REPLAY_CAP, .leeway = 60 };

    if (a == NULL)
        die("out of memory");
    for (size_t i = 0; i < count; i++) {
        snprintf(a[i].id, sizeof a[i].id, "%s-%zu", prefix, i);
        if (authcert_agent_trust_new(cert, &o, &a[i].trust) != AUTHCERT_OK)
            die("trust for %s", a[i].id);
        mac_key(a[i].id, a[i].key);
    }
    return a;
}

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

void checkin_start(CURLM *m, struct xfer *x, const char *url, const struct agent *a,
                   unsigned port, const char *source, size_t k)
{
    char tp[65], iface[48], authz[AUTHZ_MAX];
    size_t len;

    authcert_agent_trust_thumbprint(a->trust, tp);
    len = (size_t)snprintf(x->body, sizeof x->body,
                           "{\"agent_id\":\"%s\",\"hostname\":\"sim-%s\",\"port\":%u,"
                           "\"version\":\"loadgen\",\"handoff\":true,\"thumbprint\":\"%s\"%s%s%s}",
                           a->id, a->id, port, tp,
                           g_pin[0] != '\0' ? ",\"key_pin\":\"" : "", g_pin,
                           g_pin[0] != '\0' ? "\"" : "");
    if (x->easy == NULL) {
        x->easy = curl_easy_init();
        curl_easy_setopt(x->easy, CURLOPT_URL, url);
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
        curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, 60L);
        client_tls(x->easy);
        if (source == NULL)
            bind_source(x->easy, k);
    }
    if (source != NULL) {
        snprintf(iface, sizeof iface, "host!%s", source);
        curl_easy_setopt(x->easy, CURLOPT_INTERFACE, iface);
        curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
    }
    authorization(a->id, a->key, "/v2/checkin", x->body, len, authz);
    curl_slist_free_all(x->hdrs);
    x->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    x->hdrs = curl_slist_append(x->hdrs, authz);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    x->alen = 0;
    curl_multi_add_handle(m, x->easy);
}

json_t *checkin_answer(CURLM *m, CURLMsg *msg, struct xfer **xout)
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
        die("check-in answered %ld %s", status, x->ans != NULL ? x->ans : "?");
    if ((j = json_loadb(x->ans, x->alen, JSON_REJECT_DUPLICATES, NULL)) == NULL)
        die("check-in answer is not JSON: %s", x->ans);
    *xout = x;
    return j;
}

void xfer_clear(struct xfer *x)
{
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    free(x->ans);
    memset(x, 0, sizeof *x);
}
