/*
 * Check-in: POST /v1/checkin to the server (docs/protocol.md), verify the
 * commands of the answer exactly as a pushed one is verified, run them, and
 * report their results with the next check-in.
 *
 * One libcurl easy handle for the life of the agent, so the connection is
 * kept alive between check-ins; connect and total timeouts so that a server
 * that does not answer cannot stop the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "daemon.h"

#define CONNECT_TIMEOUT 10L
#define TOTAL_TIMEOUT 60L

struct agent_checkin {
    agent *a;
    CURL *curl;
    char *base;     /* the server's URL without a trailing '/' */
    char *pins;     /* --server-pin list for libcurl: "sha256//A;sha256//B" */
    char *buf;      /* the answer */
    size_t len;
    bool overflow;
};

static char *join_url(const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    char *u = malloc(n + strlen(path) + 1);
    if (u != NULL) {
        memcpy(u, base, n);
        strcpy(u + n, path);
    }
    return u;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    agent_checkin *c = userdata;
    size_t n = size * nmemb;
    if (c->len + n > AGENT_ANSWER_MAX) {
        c->overflow = true;
        return 0; /* makes curl fail the transfer */
    }
    char *nb = realloc(c->buf, c->len + n + 1);
    if (nb == NULL)
        return 0;
    memcpy(nb + c->len, ptr, n);
    c->buf = nb;
    c->len += n;
    c->buf[c->len] = '\0';
    return n;
}

/*
 * The server's TLS: TLS 1.2 or 1.3 with forward-secret AEAD suites, and
 * trust from --ca-file or the system's store, or only the --server-pin
 * list (then the pin is the whole trust: a self-signed certificate with
 * the pinned key, under any name, is the server). With a CA and pins both
 * must hold. libcurl keeps the TLS session of the one easy handle, so a
 * reconnection resumes it.
 */
static void tls_client_setup(agent_checkin *c)
{
    agent *a = c->a;

    curl_easy_setopt(c->curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(c->curl, CURLOPT_SSL_CIPHER_LIST, AUTHCERT_TLS_OPENSSL_CIPHERS);
    if (a->cfg.ca_file != NULL)
        curl_easy_setopt(c->curl, CURLOPT_CAINFO, a->cfg.ca_file);
    if (a->cfg.npins > 0) {
        curl_easy_setopt(c->curl, CURLOPT_PINNEDPUBLICKEY, c->pins);
        if (a->cfg.ca_file == NULL) {
            curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
        }
    }
}

/*
 * After a TLS refusal: what the server presented, for the one line that
 * says what was expected and what was seen. A second connection that
 * trusts anything and sends nothing (CONNECT_ONLY), only to read the
 * certificate; what it learns is never used for anything else.
 */
static void seen_key(const agent_checkin *c, const char *url, char *out, size_t size)
{
    CURL *h = curl_easy_init();
    struct curl_certinfo *ci = NULL;
    char pin[AUTHCERT_PIN_LEN + 1];

    snprintf(out, size, "a key it could not read");
    if (h == NULL)
        return;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    (void)c;
    if (curl_easy_perform(h) == CURLE_OK &&
        curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) == CURLE_OK && ci != NULL &&
        ci->num_of_certs > 0) {
        for (const struct curl_slist *l = ci->certinfo[0]; l != NULL; l = l->next)
            if (strncmp(l->data, "Cert:", 5) == 0 &&
                authcert_cert_pin(l->data + 5, strlen(l->data + 5), pin) == AUTHCERT_OK) {
                snprintf(out, size, "%s", pin);
                break;
            }
    }
    curl_easy_cleanup(h);
}

authcert_status agent_checkin_new(agent *a, agent_checkin **out)
{
    agent_checkin *c = calloc(1, sizeof *c);
    *out = NULL;
    if (c == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    c->a = a;
    c->base = join_url(a->cfg.server, "");
    if (a->cfg.npins > 0) {
        size_t n = 0;
        if ((c->pins = malloc(a->cfg.npins * (AUTHCERT_PIN_LEN + 1) + 1)) == NULL) {
            agent_checkin_free(c);
            return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < a->cfg.npins; i++)
            n += (size_t)sprintf(c->pins + n, "%s%s", i > 0 ? ";" : "", a->cfg.pins[i]);
    }
    c->curl = curl_easy_init();
    if (c->base == NULL || c->curl == NULL) {
        agent_checkin_free(c);
        return authcert_fail(AUTHCERT_E_NOMEM, "cannot set up libcurl");
    }
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, TOTAL_TIMEOUT);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, AGENT_NAME "/" AUTHCERT_VERSION);
    /* Its bodies are a few KiB: libcurl's least upload buffer, not its 64 KiB default. */
    curl_easy_setopt(c->curl, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    if (!a->cfg.insecure_http)
        tls_client_setup(c);
    *out = c;
    return AUTHCERT_OK;
}

void agent_checkin_free(agent_checkin *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->pins);
    free(c->buf);
    free(c);
}

const char *agent_checkin_answer(const agent_checkin *c, size_t *len)
{
    *len = c->len;
    return c->buf != NULL ? c->buf : "";
}

authcert_status agent_post(agent_checkin *c, const char *path, const char *body, bool authorized,
                           long *http)
{
    return agent_post_counter(c, path, body, authorized, 0, http);
}

authcert_status agent_post_counter(agent_checkin *c, const char *path, const char *body,
                                   bool authorized, uint64_t counter, long *http)
{
    char err[CURL_ERROR_SIZE] = "", authz[512], url[4096];
    struct curl_slist *hdrs = NULL, *h2;
    authcert_status rc;
    CURLcode cc;

    free(c->buf);
    c->buf = NULL;
    c->len = 0;
    c->overflow = false;
    *http = 0;
    if ((size_t)snprintf(url, sizeof url, "%s%s", c->base, path) >= sizeof url)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: URL too long", c->base);
    if ((hdrs = curl_slist_append(NULL, "Content-Type: application/json")) == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    if (authorized) {
        char line[600];
        rc = agent_creds_authorize(c->a, "POST", path, body, strlen(body), counter, authz,
                                   sizeof authz);
        if (rc != AUTHCERT_OK) {
            curl_slist_free_all(hdrs);
            return rc;
        }
        snprintf(line, sizeof line, "Authorization: %s", authz);
        if ((h2 = curl_slist_append(hdrs, line)) == NULL) {
            curl_slist_free_all(hdrs);
            return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
        }
        hdrs = h2;
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, err);
    cc = curl_easy_perform(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (c->overflow)
        return authcert_fail(AUTHCERT_E_CORRUPT, "%s: answer larger than %zu bytes", url,
                             AGENT_ANSWER_MAX);
    if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH || cc == CURLE_PEER_FAILED_VERIFICATION) {
        char seen[AUTHCERT_PIN_LEN + 64];
        seen_key(c, url, seen, sizeof seen);
        if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
            return authcert_fail(AUTHCERT_E_CRYPTO,
                                 "%s: refused: the server's key is %s, not %s%s (--server-pin)",
                                 url, seen, c->a->cfg.npins > 1 ? "one of " : "", c->pins);
        return authcert_fail(AUTHCERT_E_CRYPTO,
                             "%s: refused: its certificate (key %s) is not trusted by %s: %s",
                             url, seen, c->a->cfg.ca_file != NULL ? c->a->cfg.ca_file
                                                                  : "the system's CA store",
                             err[0] ? err : curl_easy_strerror(cc));
    }
    if (cc != CURLE_OK)
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", url, err[0] ? err : curl_easy_strerror(cc));
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, http);
    return AUTHCERT_OK;
}

/*
 * A signed request whose answer must be 200. A 401 with code "enroll" (the
 * server no longer knows our key, or our key epoch is old) forgets our
 * credential, so the next round enrolls again.
 */
static authcert_status post(agent_checkin *c, const char *path, const char *body, long *http)
{
    authcert_status rc = agent_post(c, path, body, true, http);
    json_t *j;
    const char *why, *code;

    if (rc != AUTHCERT_OK || *http == 200)
        return rc;
    j = json_loadb(c->buf ? c->buf : "", c->len, JSON_REJECT_DUPLICATES, NULL);
    why = json_string_value(json_object_get(j, "error"));
    code = json_string_value(json_object_get(j, "code"));
    if (*http == 401 && code != NULL && strcmp(code, "enroll") == 0) {
        agent_creds_clear(c->a);
        rc = authcert_fail(AUTHCERT_E_AUTH, "%s%s: the server no longer knows our key (%.200s): "
                           "enrolling again", c->base, path, why ? why : "");
    } else {
        rc = authcert_fail(*http == 401 ? AUTHCERT_E_AUTH : AUTHCERT_E_IO, "%s%s: HTTP %ld%s%.200s",
                           c->base, path, *http, why ? ": " : "", why ? why : "");
    }
    json_decref(j);
    return rc;
}

/*
 * The check-in body with as many pending results as fit the server's cap;
 * *taken says how many of them went in (the oldest first).
 */
static char *checkin_body(agent_checkin *c, size_t *taken)
{
    agent *a = c->a;
    char thumb[65];
    authcert_agent_trust_thumbprint(a->trust, thumb);
    json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:b}", "agent_id", a->id, "hostname",
                          a->hostname, "port", (int)a->port, "version", authcert_version(),
                          "thumbprint", thumb, "key_pin", a->key_pin, "handoff", 1);
    char *text = NULL;
    *taken = 0;
    if (j == NULL)
        return NULL;
    pthread_mutex_lock(&a->pending_lock);
    size_t n = json_array_size(a->pending);
    if (n > 0) {
        json_t *arr = json_array();
        json_object_set_new(j, "results", arr);
        for (size_t i = 0; i < n; i++) {
            json_array_append(arr, json_array_get(a->pending, i));
            char *t = json_dumps(j, JSON_COMPACT);
            size_t tl = t != NULL ? strlen(t) : SIZE_MAX;
            free(t);
            if (tl > AGENT_CHECKIN_MAX - 256) {
                json_array_remove(arr, json_array_size(arr) - 1);
                if (i == 0) {
                    /* One result too large alone: send it with its output cut. */
                    json_t *r = json_deep_copy(json_array_get(a->pending, 0));
                    const char *o = json_string_value(json_object_get(r, "output"));
                    size_t ol = o ? strlen(o) : 0;
                    json_object_set_new(r, "output",
                                        agent_json_text(o ? o : "", ol, AGENT_CHECKIN_MAX / 4));
                    json_array_append_new(arr, r);
                    *taken = 1;
                }
                break;
            }
            *taken = i + 1;
        }
    }
    pthread_mutex_unlock(&a->pending_lock);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

static void pending_drop(agent *a, size_t n)
{
    pthread_mutex_lock(&a->pending_lock);
    for (size_t i = 0; i < n && json_array_size(a->pending) > 0; i++)
        json_array_remove(a->pending, 0);
    pthread_mutex_unlock(&a->pending_lock);
}

static void pending_add(agent *a, json_t *res)
{
    pthread_mutex_lock(&a->pending_lock);
    if (json_array_size(a->pending) >= AGENT_PENDING_MAX) {
        agent_log(LOG_WARN, "more than %d results waiting for the server: oldest dropped",
                  AGENT_PENDING_MAX);
        json_array_remove(a->pending, 0);
    }
    json_array_append_new(a->pending, res);
    pthread_mutex_unlock(&a->pending_lock);
}

/*
 * Verify every command first, then run them: in an "expired" answer the
 * update-key comes first and the others are signed with the same retired
 * key, which would no longer verify once update-key has replaced it.
 * Commands that did not verify are tried again after a key change, for a
 * server that signs them with the new key.
 */
static void run_commands(agent_checkin *c, const json_t *commands)
{
    agent *a = c->a;
    size_t n = json_array_size(commands);
    json_t **verified = calloc(n + 1, sizeof *verified);
    bool *retry = calloc(n + 1, sizeof *retry);
    char **why = calloc(n + 1, sizeof *why);
    char before[65], after[65], origin[64];

    if (verified == NULL || retry == NULL || why == NULL)
        goto out;
    authcert_agent_trust_thumbprint(a->trust, before);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if (pass == 1 && !retry[i])
                continue;
            const char *tok = json_string_value(json_array_get(commands, i));
            authcert_agent_verdict v = AUTHCERT_AGENT_UNAUTHENTICATED;
            authcert_status st = tok == NULL
                                     ? authcert_fail(AUTHCERT_E_CORRUPT, "not a string")
                                     : authcert_agent_verify(a->trust, a->id, tok, strlen(tok), 0,
                                                             &verified[i], &v);
            retry[i] = false;
            if (st != AUTHCERT_OK) {
                retry[i] = pass == 0 && v == AUTHCERT_AGENT_UNAUTHENTICATED;
                if (retry[i])
                    why[i] = strdup(authcert_detail());
                else
                    agent_log(LOG_WARN, "refused command %zu from check-in at %s: %d %s: %s",
                              i, a->cfg.server, authcert_agent_verdict_http(v),
                              authcert_agent_verdict_name(v), authcert_detail());
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (verified[i] == NULL)
                continue;
            const json_t *did = json_object_get(verified[i], "did");
            snprintf(origin, sizeof origin, "check-in command %zu", i);
            agent_log(LOG_INFO, "accepted %s: cmd %.64s", origin,
                      json_string_value(json_object_get(verified[i], "cmd")));
            json_t *res = agent_run_command(a, verified[i], origin);
            if (res != NULL && json_is_integer(did)) {
                json_object_set_new(res, "delivery", json_integer(json_integer_value(did)));
                pending_add(a, res);
            } else {
                if (res != NULL)
                    agent_log(LOG_WARN, "%s has no delivery id: result not reported", origin);
                json_decref(res);
            }
            json_decref(verified[i]);
            verified[i] = NULL;
        }
        authcert_agent_trust_thumbprint(a->trust, after);
        if (strcmp(before, after) == 0)
            break;
    }
    for (size_t i = 0; i < n; i++)
        if (retry[i])
            agent_log(LOG_WARN, "refused command %zu from check-in at %s: 401 unauthenticated: %s",
                      i, a->cfg.server, why[i] != NULL ? why[i] : "");
out:
    if (verified != NULL)
        for (size_t i = 0; i < n; i++)
            json_decref(verified[i]);
    if (why != NULL)
        for (size_t i = 0; i < n; i++)
            free(why[i]);
    free(why);
    free(verified);
    free(retry);
}

/* The check-in answer's hand-off chain, walked and installed; refusals logged. */
static void apply_handoff(agent *a, const json_t *chain, const char *current)
{
    char tp[65];

    if (authcert_agent_apply_handoff(a->trust, chain, current, tp) != AUTHCERT_OK) {
        agent_log(LOG_ERROR, "hand-off refused: %s (the certificate file is unchanged)",
                  authcert_detail());
        return;
    }
    agent_log(LOG_INFO, "certificate %s installed in %s (a hand-off chain of %zu link%s)", tp,
              a->cfg.cert, json_array_size(chain), json_array_size(chain) == 1 ? "" : "s");
}

authcert_status agent_checkin_run(agent_checkin *c, int *interval)
{
    agent *a = c->a;
    authcert_status rc = AUTHCERT_E_INTERNAL;
    size_t taken = 0;
    long http = 0;
    json_t *ans = NULL;
    json_error_t jerr;
    bool changed = false;

    *interval = 0;
    /* An operator may have copied a new agent certificate file in place. */
    if (authcert_agent_trust_reload(a->trust, &changed) != AUTHCERT_OK)
        agent_log(LOG_WARN, "%s (keeping the certificate loaded)", authcert_detail());
    else if (changed)
        agent_log(LOG_INFO, "%s changed on disk: now trusting it", a->cfg.cert);

    /* Not enrolled yet (or the server forgot us): enroll first. */
    if (!a->creds.have && (rc = agent_enroll(a, c)) != AUTHCERT_OK)
        return rc;
    char *body = checkin_body(c, &taken);
    if (body == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    rc = post(c, "/v2/checkin", body, &http);
    free(body);
    if (rc != AUTHCERT_OK)
        return rc;
    pending_drop(a, taken);

    ans = json_loadb(c->buf != NULL ? c->buf : "", c->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(ans)) {
        json_decref(ans);
        return authcert_fail(AUTHCERT_E_CORRUPT, "%s: answer is not a JSON object: %s",
                             c->base, jerr.text);
    }
    const char *state = json_string_value(json_object_get(ans, "state"));
    const json_t *iv = json_object_get(ans, "interval");
    if (json_is_integer(iv) && json_integer_value(iv) >= 1 && json_integer_value(iv) <= 86400)
        *interval = (int)json_integer_value(iv);
    const json_t *cmds = json_object_get(ans, "commands");
    if (state == NULL) {
        rc = authcert_fail(AUTHCERT_E_CORRUPT, "%s: answer has no state", c->base);
    } else if (strcmp(state, "mismatched") == 0) {
        const char *why = json_string_value(json_object_get(ans, "reason"));
        rc = authcert_fail(AUTHCERT_E_POLICY,
                           "the server does not accept our certificate (%s): copy its exported "
                           "agent certificate file (authcert -e) to %s",
                           why ? why : "mismatched", a->cfg.cert);
    } else {
        agent_log(LOG_DEBUG, "check-in: state %s, %zu command(s)", state, json_array_size(cmds));
        if (strcmp(state, "expired") == 0)
            agent_log(LOG_INFO, "server says our certificate is retired: expecting update-key");
        if (cmds != NULL && !json_is_array(cmds))
            rc = authcert_fail(AUTHCERT_E_CORRUPT, "%s: commands is not an array",
                               c->base);
        else {
            run_commands(c, cmds);
            rc = AUTHCERT_OK;
            /* After the commands (signed with the key we hold now): the
             * hand-off chain to the current certificate, every link
             * verified with the key held at that point. */
            const json_t *chain = json_object_get(ans, "handoff");
            const char *cur = json_string_value(json_object_get(ans, "current_thumbprint"));
            if (chain != NULL && strcmp(state, "expired") == 0 && cur == NULL)
                agent_log(LOG_ERROR, "hand-off refused: the answer names no current "
                          "certificate (the certificate file is unchanged)");
            else if (chain != NULL && strcmp(state, "expired") == 0)
                apply_handoff(a, chain, cur);
        }
    }
    json_decref(ans);
    return rc;
}

authcert_status agent_checkin_flush_results(agent_checkin *c)
{
    agent *a = c->a;
    authcert_status rc = AUTHCERT_OK;
    long http = 0;

    for (;;) {
        pthread_mutex_lock(&a->pending_lock);
        json_t *r = json_array_size(a->pending) > 0 ? json_deep_copy(json_array_get(a->pending, 0))
                                                    : NULL;
        pthread_mutex_unlock(&a->pending_lock);
        if (r == NULL)
            break;
        json_object_set_new(r, "agent_id", json_string(a->id));
        char *body = json_dumps(r, JSON_COMPACT);
        if (body != NULL && strlen(body) > AGENT_RESULT_MAX) {
            const char *o = json_string_value(json_object_get(r, "output"));
            json_object_set_new(r, "output", agent_json_text(o, strlen(o), AGENT_RESULT_MAX / 8));
            free(body);
            body = json_dumps(r, JSON_COMPACT);
        }
        json_decref(r);
        if (body == NULL)
            return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
        rc = post(c, "/v2/result", body, &http);
        free(body);
        if (rc != AUTHCERT_OK)
            return rc;
        pending_drop(a, 1);
    }
    return rc;
}
