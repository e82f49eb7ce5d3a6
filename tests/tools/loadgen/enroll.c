/*
 * loadgen enroll: agents enroll as authcert-agent does (docs/protocol.md,
 * "Enrollment"): a nonce, then the proof of possession of a key of their
 * own over their id, the key's pin, the server id, the nonce and the
 * token's hash. Two requests an agent, on CONNS keep-alive connections,
 * connection k from its own source address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "authcert/base64url.h"
#include "loadgen.h"

struct enrollee {
    char id[48];
    EVP_PKEY *key;
    char pin[AUTHCERT_PIN_LEN + 1];
    char *spki;
};

struct exfer {
    CURL *easy;
    struct curl_slist *hdrs;
    size_t agent;
    int step; /* 0: the nonce asked, 1: the enrollment sent */
    char *body;
    char *ans;
    size_t alen;
};

static char g_token[128], g_token_hash[65];

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct exfer *x = ud;
    char *q;

    if (x->alen + size * n > BODY_MAX || (q = realloc(x->ans, x->alen + size * n + 1)) == NULL)
        return 0;
    x->ans = q;
    memcpy(x->ans + x->alen, p, size * n);
    x->alen += size * n;
    x->ans[x->alen] = '\0';
    return size * n;
}

static void post(CURLM *m, struct exfer *x, const char *url, char *body, size_t k)
{
    if (x->easy == NULL) {
        x->easy = curl_easy_init();
        x->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        x->hdrs = curl_slist_append(x->hdrs, "Expect:");
        curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
        curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, 60L);
        client_tls(x->easy);
        bind_source(x->easy, k);
    }
    free(x->body);
    x->body = body;
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
    x->alen = 0;
    curl_multi_add_handle(m, x->easy);
}

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);

    if (d == NULL)
        die("out of memory");
    return d;
}

/* The enrollment request of agent e with the nonce answer ans. Caller frees. */
static char *enroll_body(const struct enrollee *e, json_t *ans)
{
    const char *nonce = json_string_value(json_object_get(ans, "nonce"));
    const char *sid = json_string_value(json_object_get(ans, "server_id"));
    char *text = NULL, *sig = NULL, *body;
    json_t *req;

    if (nonce == NULL || sid == NULL)
        die("the nonce answer has no nonce or server_id");
    if (authcert_enroll_proof_text(e->id, e->pin, sid, nonce, g_token_hash, &text) !=
            AUTHCERT_OK ||
        authcert_proof_sign(e->key, text, &sig) != AUTHCERT_OK)
        die("proof of %s", e->id);
    req = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "agent_id", e->id, "hostname",
                    e->id, "port", 0, "version", "loadgen", "key", e->spki, "nonce", nonce,
                    "token", g_token, "proof", sig);
    if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL)
        die("out of memory");
    json_decref(req);
    free(text);
    free(sig);
    return body;
}

/* The enrollment's answer: enrolled, and (with --store) the MAC key authcertd derives. */
static void check_enrolled(const struct enrollee *e, json_t *ans)
{
    const char *state = json_string_value(json_object_get(ans, "state"));
    const char *mk = json_string_value(json_object_get(ans, "mac_key"));
    json_int_t epoch = json_integer_value(json_object_get(ans, "epoch"));
    uint8_t *raw = NULL, want[AUTHCERT_MAC_KEY_LEN];
    size_t len = 0;

    if (state == NULL || strcmp(state, "enrolled") != 0 || mk == NULL || epoch < 1)
        die("%s: not enrolled", e->id);
    if (!g_have_secret)
        return;
    if (authcert_b64url_decode(mk, strlen(mk), &raw, &len) != AUTHCERT_OK || len != sizeof want)
        die("%s: a MAC key of %zu bytes", e->id, len);
    if (authcert_agent_mac_key(g_secret, e->id, (uint64_t)epoch, want) != AUTHCERT_OK ||
        CRYPTO_memcmp(raw, want, sizeof want) != 0)
        die("%s: its MAC key is not the one derived from the server secret", e->id);
    OPENSSL_clear_free(raw, len);
    OPENSSL_cleanse(want, sizeof want);
}

/* loadgen enroll URL PREFIX COUNT TOKEN CONNS */
int enroll(int argc, char **argv)
{
    char nonce_url[512], enroll_url[512], tid[33], sec[AUTHCERT_TOKEN_SECRET_B64_LEN + 1];
    size_t count, conns, next = 0, done = 0;
    struct enrollee *es;
    struct exfer *xs;
    double t0, t;
    CURLM *m;

    if (argc != 7)
        return 2;
    url_of(argv[2], "/v2/enroll/nonce", nonce_url, sizeof nonce_url);
    url_of(argv[2], "/v2/enroll", enroll_url, sizeof enroll_url);
    count = strtoull(argv[4], NULL, 10);
    conns = strtoull(argv[6], NULL, 10);
    if (count == 0 || conns == 0 || strlen(argv[5]) >= sizeof g_token ||
        authcert_token_split(argv[5], tid, sec) != AUTHCERT_OK)
        return 2;
    snprintf(g_token, sizeof g_token, "%s", argv[5]);
    authcert_token_hash(sec, g_token_hash);
    OPENSSL_cleanse(sec, sizeof sec);
    /* A key of its own for every agent, before the clock starts. */
    if ((es = calloc(count, sizeof *es)) == NULL || (xs = calloc(conns, sizeof *xs)) == NULL ||
        (m = curl_multi_init()) == NULL)
        die("out of memory");
    for (size_t i = 0; i < count; i++) {
        snprintf(es[i].id, sizeof es[i].id, "%s-%zu", argv[3], i);
        if ((es[i].key = EVP_EC_gen("P-256")) == NULL ||
            authcert_key_pin(es[i].key, es[i].pin) != AUTHCERT_OK ||
            authcert_key_spki(es[i].key, &es[i].spki) != AUTHCERT_OK)
            die("key of %s", es[i].id);
    }
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conns);
    t0 = now_s();
    for (size_t k = 0; k < conns && next < count; k++) {
        xs[k].agent = next++;
        post(m, &xs[k], nonce_url, dup_or_die("{}"), k);
    }
    while (done < count) {
        int running, left;
        CURLMsg *msg;

        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct exfer *x = NULL;
            long status = 0;
            json_t *ans;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(m, msg->easy_handle);
            if (msg->data.result != CURLE_OK)
                die("enroll: %s", curl_easy_strerror(msg->data.result));
            if (status != 200)
                die("%s of %s answered %ld %s", x->step == 0 ? "the nonce" : "the enrollment",
                    es[x->agent].id, status, x->ans != NULL ? x->ans : "");
            if ((ans = json_loadb(x->ans, x->alen, 0, NULL)) == NULL)
                die("enroll: the answer is not JSON: %s", x->ans);
            if (x->step == 0) {
                x->step = 1;
                post(m, x, enroll_url, enroll_body(&es[x->agent], ans), (size_t)(x - xs));
            } else {
                check_enrolled(&es[x->agent], ans);
                done++;
                if (next < count) {
                    x->agent = next++;
                    x->step = 0;
                    post(m, x, nonce_url, dup_or_die("{}"), (size_t)(x - xs));
                }
            }
            json_decref(ans);
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    t = now_s() - t0;
    printf("agents %zu seconds %.3f rate %.1f\n", count, t, count / t);
    for (size_t k = 0; k < conns; k++) {
        if (xs[k].easy != NULL)
            curl_easy_cleanup(xs[k].easy);
        curl_slist_free_all(xs[k].hdrs);
        free(xs[k].body);
        free(xs[k].ans);
    }
    for (size_t i = 0; i < count; i++) {
        EVP_PKEY_free(es[i].key);
        free(es[i].spki);
    }
    curl_multi_cleanup(m);
    free(es);
    free(xs);
    return 0;
}
