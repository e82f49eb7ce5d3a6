/*
 * Enrollment (docs/protocol.md, "Enrollment"): once, over the TLS
 * connection the agent verified, bind this agent's key to its id. A fresh
 * nonce from the server, a proof signed with the agent's key over its id,
 * its key's pin, the server's id, the nonce and the hash of the token; the
 * server answers with the agent's MAC key for its key epoch, kept in
 * STATE_DIR/agent.mac. The token file (--enroll-token-file) is only read:
 * the operator removes it, or it runs out of uses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authcert/auth.h"
#include "authcert/base64url.h"
#include "daemon.h"

#define GUARD(expr)                                                         \
    do {                                                                    \
        if ((rc = (expr)) != AUTHCERT_OK)                                   \
            goto out;                                                       \
    } while (0)
#define GUARD_ALLOC(ptr)                                                    \
    do {                                                                    \
        if ((ptr) == NULL) {                                                \
            rc = authcert_fail(AUTHCERT_E_NOMEM, "out of memory");          \
            goto out;                                                       \
        }                                                                   \
    } while (0)

/* The answer's JSON "error" (or the status), for the one line a refusal gets. */
static const char *why_of(json_t *ans, long http, char *buf, size_t size)
{
    const char *e = json_string_value(json_object_get(ans, "error"));

    if (e != NULL)
        return e;
    snprintf(buf, size, "HTTP %ld", http);
    return buf;
}

authcert_status agent_enroll(agent *a, agent_checkin *c)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_t *ans = NULL, *req = NULL;
    char *spki = NULL, *text = NULL, *sig = NULL, *body = NULL;
    char tid[33], secret[AUTHCERT_TOKEN_SECRET_B64_LEN + 1], hash[65], why[64];
    const char *nonce, *server_id, *state, *mk, *answer;
    uint8_t *key = NULL;
    size_t klen = 0, alen = 0;
    long http = 0;

    tid[0] = secret[0] = '\0';
    if (a->cfg.enroll_token != NULL) {
        if ((rc = authcert_token_split(a->cfg.enroll_token, tid, secret)) != AUTHCERT_OK)
            goto out;
        authcert_token_hash(secret, hash);
    }
    /* 1. A nonce, and the server's id (from the server our TLS verified). */
    GUARD(agent_post(c, "/v2/enroll/nonce", "{}", false, &http));
    answer = agent_checkin_answer(c, &alen); /* alen is set here, first */
    ans = json_loadb(answer, alen, JSON_REJECT_DUPLICATES, NULL);
    nonce = json_string_value(json_object_get(ans, "nonce"));
    server_id = json_string_value(json_object_get(ans, "server_id"));
    if (http != 200 || nonce == NULL || server_id == NULL ||
        strlen(server_id) >= sizeof a->creds.server_id) {
        rc = authcert_fail(http == 429 ? AUTHCERT_E_BUSY : AUTHCERT_E_IO,
                           "enrollment: no nonce: %s", why_of(ans, http, why, sizeof why));
        goto out;
    }
    /* 2. The proof. */
    GUARD(authcert_key_spki(a->key, &spki));
    GUARD(authcert_enroll_proof_text(a->id, a->key_pin, server_id, nonce,
                                     a->cfg.enroll_token != NULL ? hash : NULL, &text));
    GUARD(authcert_proof_sign(a->key, text, &sig));
    req = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s}", "agent_id", a->id, "hostname",
                    a->hostname, "port", (int)a->port, "version", authcert_version(), "key", spki,
                    "nonce", nonce, "proof", sig);
    GUARD_ALLOC(req);
    if (a->cfg.enroll_token != NULL)
        json_object_set_new(req, "token", json_string(a->cfg.enroll_token));
    {
        /* the server id, for the credential, before the nonce answer goes */
        char sid[257];
        snprintf(sid, sizeof sid, "%s", server_id);
        json_decref(ans);
        ans = NULL;
        body = json_dumps(req, JSON_COMPACT);
        GUARD_ALLOC(body);
        GUARD(agent_post(c, "/v2/enroll", body, false, &http));
        answer = agent_checkin_answer(c, &alen); /* alen is set here, first */
        ans = json_loadb(answer, alen, JSON_REJECT_DUPLICATES, NULL);
        state = json_string_value(json_object_get(ans, "state"));
        if (http == 202) {
            rc = authcert_fail(AUTHCERT_E_BUSY, "enrollment pending: an operator must run "
                               "authcert --approve %s (our key %s)", a->id, a->key_pin);
            goto out;
        }
        if (http != 200 || state == NULL || strcmp(state, "enrolled") != 0) {
            const char *code = json_string_value(json_object_get(ans, "code"));
            rc = authcert_fail(http == 401 ? AUTHCERT_E_AUTH
                               : http == 429 ? AUTHCERT_E_BUSY
                               : http >= 500 ? AUTHCERT_E_IO : AUTHCERT_E_POLICY,
                               "enrollment refused (%s): %s", code != NULL ? code : "error",
                               why_of(ans, http, why, sizeof why));
            goto out;
        }
        mk = json_string_value(json_object_get(ans, "mac_key"));
        if (!json_is_integer(json_object_get(ans, "epoch")) ||
            json_integer_value(json_object_get(ans, "epoch")) < 1 || mk == NULL ||
            authcert_b64url_decode(mk, strlen(mk), &key, &klen) != AUTHCERT_OK || klen != 32) {
            rc = authcert_fail(AUTHCERT_E_CORRUPT, "enrollment: a malformed answer");
            goto out;
        }
        pthread_mutex_lock(&a->creds_lock);
        memcpy(a->creds.mac_key, key, 32);
        a->creds.epoch = (uint64_t)json_integer_value(json_object_get(ans, "epoch"));
        snprintf(a->creds.server_id, sizeof a->creds.server_id, "%s", sid);
        a->creds.have = true;
        rc = agent_creds_save(a);
        pthread_mutex_unlock(&a->creds_lock);
        if (rc == AUTHCERT_OK) {
            agent_log(LOG_INFO, "enrolled with %s as %s (key %s, epoch %llu)", sid, a->id,
                      a->key_pin, (unsigned long long)a->creds.epoch);
            /* From now on only commands our server issued: its id as "iss". */
            rc = authcert_agent_trust_set_issuer(a->trust, sid);
        }
    }
out:
    if (key != NULL)
        OPENSSL_clear_free(key, klen);
    OPENSSL_cleanse(secret, sizeof secret);
    if (body != NULL)
        OPENSSL_clear_free(body, strlen(body));
    free(spki);
    free(text);
    free(sig);
    json_decref(req);
    json_decref(ans);
    return rc;
}

authcert_status agent_rotate_key(agent *a, agent_checkin *c)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_PKEY *nk = NULL;
    char path[4096], next[4200], pin[53], *spki = NULL, *text = NULL, *po = NULL, *pn = NULL;
    char *body = NULL;
    json_t *req = NULL, *ans = NULL;
    uint8_t *key = NULL;
    size_t klen = 0, alen = 0;
    uint64_t counter;
    long http = 0;
    bool created = false;
    const char *mk, *answer;

    if (!a->creds.have)
        return authcert_fail(AUTHCERT_E_USAGE, "--rotate-key: this agent is not enrolled");
    snprintf(path, sizeof path, "%s/agent.key", a->cfg.state_dir);
    snprintf(next, sizeof next, "%s/agent.key.new", a->cfg.state_dir);
    /* The new key on disk first (a second run after a failure reuses it). */
    GUARD(authcert_key_file_load_or_create(next, a->cfg.key_type, &nk, &created));
    GUARD(authcert_key_pin(nk, pin));
    GUARD(authcert_key_spki(nk, &spki));
    pthread_mutex_lock(&a->creds_lock);
    counter = agent_creds_next_counter(a);
    pthread_mutex_unlock(&a->creds_lock);
    if (counter == 0) {
        rc = authcert_fail(AUTHCERT_E_IO, "cannot save the request counter");
        goto out;
    }
    GUARD(authcert_rotate_proof_text(a->id, a->key_pin, pin, a->creds.server_id, counter, &text));
    GUARD(authcert_proof_sign(a->key, text, &po));
    GUARD(authcert_proof_sign(nk, text, &pn));
    req = json_pack("{s:s, s:s, s:s}", "key", spki, "proof_old", po, "proof_new", pn);
    GUARD_ALLOC(req);
    GUARD_ALLOC(body = json_dumps(req, JSON_COMPACT));
    GUARD(agent_post_counter(c, "/v2/rotate-key", body, true, counter, &http));
    answer = agent_checkin_answer(c, &alen); /* alen is set here, first */
    ans = json_loadb(answer, alen, JSON_REJECT_DUPLICATES, NULL);
    mk = json_string_value(json_object_get(ans, "mac_key"));
    if (http != 200 || mk == NULL || !json_is_integer(json_object_get(ans, "epoch")) ||
        authcert_b64url_decode(mk, strlen(mk), &key, &klen) != AUTHCERT_OK || klen != 32) {
        char why[64];
        rc = authcert_fail(http == 401 ? AUTHCERT_E_AUTH : AUTHCERT_E_POLICY,
                           "key rotation refused: %s", why_of(ans, http, why, sizeof why));
        goto out;
    }
    /* Bound: the new key becomes the agent's key, then the new credential. */
    if (rename(next, path) != 0) {
        rc = authcert_fail(AUTHCERT_E_IO, "%s: %s (the server has bound %s: move %s there)",
                           path, strerror(errno), pin, next);
        goto out;
    }
    pthread_mutex_lock(&a->creds_lock);
    memcpy(a->creds.mac_key, key, 32);
    a->creds.epoch = (uint64_t)json_integer_value(json_object_get(ans, "epoch"));
    rc = agent_creds_save(a);
    pthread_mutex_unlock(&a->creds_lock);
    if (rc == AUTHCERT_OK)
        agent_log(LOG_INFO, "key rotated: %s replaces %s (epoch %llu)", pin, a->key_pin,
                  (unsigned long long)a->creds.epoch);
out:
    if (key != NULL)
        OPENSSL_clear_free(key, klen);
    free(body);
    free(spki);
    free(text);
    free(po);
    free(pn);
    json_decref(req);
    json_decref(ans);
    EVP_PKEY_free(nk);
    return rc;
}
