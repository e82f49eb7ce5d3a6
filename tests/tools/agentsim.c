/*
 * agentsim — an enrolled agent as the shell sees it, for the e2e suites
 * that talk to authcertd directly (protocol v2: docs/protocol.md). It keeps
 * its state in one JSON file (its id, key, MAC key, epoch, server id and
 * counter) and uses the library's own enrollment proof and request MAC, so
 * the suites exercise the real ones.
 *
 *   agentsim enroll URL CA STATE ID [TOKEN|-] [p256|ed25519]
 *        make a key (STATE.key), enroll ID (with TOKEN, or none: "-");
 *        prints "CODE BODY"; exit 0 when enrolled
 *   agentsim post URL CA STATE PATH BODY [COUNTER]
 *        a signed POST (the next counter, or COUNTER); prints "CODE BODY"
 *   agentsim sign STATE METHOD PATH COUNTER BODY
 *        print the Authorization value (to replay with curl)
 *   agentsim derive SECRET_HEX ID EPOCH   the MAC key (hex) the library derives
 *   agentsim proof KEYFILE ID SERVER NONCE TOKEN|-
 *        print {"key", "pin", "text", "proof"}: an enrollment proof of the
 *        key in KEYFILE (made, P-256, when missing)
 *   agentsim pin STATE        print the key's pin
 *   agentsim mackey STATE     print the MAC key (hex) and the epoch
 *
 * CA: the server's certificate file (curl's --cacert), or "-" for none.
 * AGENTSIM_TIMEOUT: seconds for each request (default 20).
 * A test tool: it prints and exits, which the library never does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "authcert/auth.h"
#include "authcert/authcert.h"
#include "authcert/base64url.h"
#include "authcert/fsutil.h"
#include "authcert/tls.h"

struct buf {
    char *data;
    size_t len;
};

static void die(const char *what)
{
    fprintf(stderr, "agentsim: %s: %s\n", what, authcert_detail());
    exit(2);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    char *nb = realloc(b->data, b->len + size * n + 1);

    if (nb == NULL)
        return 0;
    memcpy(nb + b->len, p, size * n);
    b->data = nb;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* POST body to URL PATH; *ans gets the answer (caller frees ans->data); returns the code. */
static long post(const char *url, const char *ca, const char *path, const char *body,
                 const char *authz, struct buf *ans)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char full[4096], line[700];
    long code = 0;

    ans->data = NULL;
    ans->len = 0;
    snprintf(full, sizeof full, "%s%s", url, path);
    if (authz != NULL) {
        snprintf(line, sizeof line, "Authorization: %s", authz);
        h = curl_slist_append(h, line);
    }
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ans);
    const char *tmo = getenv("AGENTSIM_TIMEOUT");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, tmo != NULL ? atol(tmo) : 20L);
    if (strcmp(ca, "-") != 0)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static long post_print(const char *url, const char *ca, const char *path, const char *body,
                       const char *authz)
{
    struct buf b;
    long code = post(url, ca, path, body, authz, &b);

    printf("%ld %s\n", code, b.data != NULL ? b.data : "");
    free(b.data);
    return code;
}

static json_t *load_state(const char *path)
{
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);

    if (j == NULL) {
        fprintf(stderr, "agentsim: %s: not a state file\n", path);
        exit(2);
    }
    return j;
}

static void save_state(const char *path, json_t *j)
{
    char *t = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);

    if (t == NULL || authcert_write_atomic(path, t, strlen(t), 0600) != AUTHCERT_OK)
        die("save state");
    free(t);
}

static void mac_key_of(json_t *st, uint8_t key[32])
{
    const char *mk = json_string_value(json_object_get(st, "mac_key"));
    uint8_t *raw = NULL;
    size_t len = 0;

    if (mk == NULL || authcert_b64url_decode(mk, strlen(mk), &raw, &len) != AUTHCERT_OK ||
        len != 32) {
        fprintf(stderr, "agentsim: not enrolled\n");
        exit(2);
    }
    memcpy(key, raw, 32);
    free(raw);
}

static void authorize(json_t *st, const char *method, const char *path, uint64_t counter,
                      const char *body, char *out, size_t size)
{
    uint8_t key[32];
    char mac[AUTHCERT_MAC_B64_LEN + 1];
    const char *id = json_string_value(json_object_get(st, "agent_id"));
    uint64_t epoch = (uint64_t)json_integer_value(json_object_get(st, "epoch"));

    mac_key_of(st, key);
    if (authcert_request_mac(key, &(authcert_request_auth){
                                      .method = method, .path = path, .agent_id = id,
                                      .epoch = epoch,
                                      .server_id = json_string_value(json_object_get(st, "server_id")),
                                      .counter = counter, .body = body,
                                      .body_len = strlen(body) },
                             mac) != AUTHCERT_OK ||
        authcert_auth_header_format(id, epoch, counter, mac, out, size) != AUTHCERT_OK)
        die("MAC");
}

static uint64_t next_counter(json_t *st)
{
    struct timespec ts;
    uint64_t now, last = (uint64_t)json_integer_value(json_object_get(st, "counter"));

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
    return now > last ? now : last + 1;
}

static int enroll(char **argv, int argc)
{
    const char *url = argv[2], *ca = argv[3], *state = argv[4], *id = argv[5];
    const char *token = argc > 6 && strcmp(argv[6], "-") != 0 ? argv[6] : NULL;
    const char *type = argc > 7 ? argv[7] : "p256";
    char keyfile[4096], pin[53], tid[33], sec[AUTHCERT_TOKEN_SECRET_B64_LEN + 1], hash[65];
    char *spki = NULL, *text = NULL, *sig = NULL, *body;
    EVP_PKEY *k = NULL;
    bool created;
    json_t *ans, *req, *st;
    struct buf b = { NULL, 0 };
    long code;

    snprintf(keyfile, sizeof keyfile, "%s.key", state);
    if (authcert_key_file_load_or_create(keyfile, authcert_key_type_parse(type), &k, &created) !=
        AUTHCERT_OK)
        die(keyfile);
    if (authcert_key_pin(k, pin) != AUTHCERT_OK || authcert_key_spki(k, &spki) != AUTHCERT_OK)
        die("key");
    code = post(url, ca, "/v2/enroll/nonce", "{}", NULL, &b);
    ans = code == 200 ? json_loads(b.data, 0, NULL) : NULL;
    free(b.data);
    if (ans == NULL) {
        printf("%ld no nonce\n", code);
        free(spki);
        EVP_PKEY_free(k);
        return 1;
    }
    if (token != NULL) {
        if (authcert_token_split(token, tid, sec) != AUTHCERT_OK)
            die("token");
        authcert_token_hash(sec, hash);
    }
    const char *nonce = json_string_value(json_object_get(ans, "nonce"));
    const char *sid = json_string_value(json_object_get(ans, "server_id"));
    if (authcert_enroll_proof_text(id, pin, sid, nonce, token != NULL ? hash : NULL, &text) !=
            AUTHCERT_OK ||
        authcert_proof_sign(k, text, &sig) != AUTHCERT_OK)
        die("proof");
    req = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s}", "agent_id", id, "hostname",
                    "agentsim", "port", 0, "version", "agentsim", "key", spki, "nonce", nonce,
                    "proof", sig);
    if (token != NULL)
        json_object_set_new(req, "token", json_string(token));
    body = json_dumps(req, JSON_COMPACT);
    code = post(url, ca, "/v2/enroll", body, NULL, &b);
    printf("%ld %s\n", code, b.data != NULL ? b.data : "");
    json_decref(ans);
    ans = code == 200 ? json_loads(b.data, 0, NULL) : NULL;
    if (ans != NULL) {
        st = json_pack("{s:s, s:s, s:O, s:O, s:O, s:i}", "agent_id", id, "key_pin", pin,
                       "epoch", json_object_get(ans, "epoch"), "mac_key",
                       json_object_get(ans, "mac_key"), "server_id",
                       json_object_get(ans, "server_id"), "counter", 0);
        save_state(state, st);
        json_decref(st);
    }
    json_decref(ans);
    json_decref(req);
    free(body);
    free(b.data);
    free(spki);
    free(text);
    free(sig);
    EVP_PKEY_free(k);
    return code == 200 ? 0 : 1;
}

int main(int argc, char **argv)
{
    json_t *st;
    char authz[600];
    int ret = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: see tests/tools/agentsim.c\n");
        return 2;
    }
    if (authcert_init_with(0) != AUTHCERT_OK || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 2;
    if (strcmp(argv[1], "enroll") == 0 && argc >= 6) {
        ret = enroll(argv, argc);
    } else if (strcmp(argv[1], "post") == 0 && argc >= 7) {
        st = load_state(argv[4]);
        uint64_t counter = argc > 7 ? strtoull(argv[7], NULL, 10) : next_counter(st);
        if (argc <= 7) {
            json_object_set_new(st, "counter", json_integer((json_int_t)counter));
            save_state(argv[4], st);
        }
        authorize(st, "POST", argv[5], counter, argv[6], authz, sizeof authz);
        ret = post_print(argv[2], argv[3], argv[5], argv[6], authz) == 200 ? 0 : 1;
        json_decref(st);
    } else if (strcmp(argv[1], "sign") == 0 && argc >= 7) {
        st = load_state(argv[2]);
        authorize(st, argv[3], argv[4], strtoull(argv[5], NULL, 10), argv[6], authz,
                  sizeof authz);
        printf("%s\n", authz);
        json_decref(st);
    } else if (strcmp(argv[1], "derive") == 0 && argc >= 5) {
        uint8_t sec[32], key[32];
        for (int i = 0; i < 32; i++)
            if (sscanf(argv[2] + 2 * i, "%2hhx", &sec[i]) != 1)
                return 2;
        if (authcert_agent_mac_key(sec, argv[3], strtoull(argv[4], NULL, 10), key) != AUTHCERT_OK)
            die("derive");
        for (int i = 0; i < 32; i++)
            printf("%02x", key[i]);
        printf("\n");
    } else if (strcmp(argv[1], "proof") == 0 && argc >= 7) {
        EVP_PKEY *k = NULL;
        bool created;
        char pin[53], tid[33], sec[AUTHCERT_TOKEN_SECRET_B64_LEN + 1], hash[65];
        char *spki = NULL, *text = NULL, *sig = NULL;
        const char *token = strcmp(argv[6], "-") != 0 ? argv[6] : NULL;
        if (authcert_key_file_load_or_create(argv[2], AUTHCERT_KEY_P256, &k, &created) !=
                AUTHCERT_OK ||
            authcert_key_pin(k, pin) != AUTHCERT_OK || authcert_key_spki(k, &spki) != AUTHCERT_OK)
            die("key");
        if (token != NULL) {
            if (authcert_token_split(token, tid, sec) != AUTHCERT_OK)
                die("token");
            authcert_token_hash(sec, hash);
        }
        if (authcert_enroll_proof_text(argv[3], pin, argv[4], argv[5], token ? hash : NULL,
                                       &text) != AUTHCERT_OK ||
            authcert_proof_sign(k, text, &sig) != AUTHCERT_OK)
            die("proof");
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "key", spki, "pin", pin, "text", text,
                              "proof", sig);
        char *t = json_dumps(o, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
        json_decref(o);
        free(spki);
        free(text);
        free(sig);
        EVP_PKEY_free(k);
    } else if (strcmp(argv[1], "pin") == 0) {
        st = load_state(argv[2]);
        printf("%s\n", json_string_value(json_object_get(st, "key_pin")));
        json_decref(st);
    } else if (strcmp(argv[1], "mackey") == 0) {
        uint8_t key[32];
        st = load_state(argv[2]);
        mac_key_of(st, key);
        for (int i = 0; i < 32; i++)
            printf("%02x", key[i]);
        printf(" %" PRIu64 "\n", (uint64_t)json_integer_value(json_object_get(st, "epoch")));
        json_decref(st);
    } else {
        fprintf(stderr, "usage: see tests/tools/agentsim.c\n");
        ret = 2;
    }
    curl_global_cleanup();
    authcert_cleanup();
    return ret;
}
