/*
 * Enrollment (docs/protocol.md, "Enrollment"): an agent binds its key to
 * its id once, by signing a proof over its id, its key's pin, this server's
 * id, a nonce from this server and the hash of the token it presents. The
 * server checks the proof with the key the agent sent (the one asymmetric
 * operation an agent ever costs it), then applies --enroll:
 *
 *   token    (default) a token made by authcert --enroll-token new: the
 *            registry binds and takes one use in one transaction
 *   approve  without a token the request waits, pending, until an operator
 *            runs authcert --approve ID (tokens are still accepted)
 *   open     trust on first use (labs), logged as such at every start
 *
 * An id bound to a key is never re-bound by a request: another key is a
 * clone, refused (409) and recorded. An id the registry knew before it was
 * first bound enrolls only by approval or with a token made for that id.
 * On success the answer carries the agent's MAC key for its key epoch, over
 * the TLS connection the agent verified: it never crosses in clear.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "authcert/auth.h"
#include "authcert/base64url.h"
#include "authcert/identity.h"
#include "daemon.h"

#define ENROLL_BODY_MAX (8 * 1024)

void enroll_nonce_handle(daemon_ctx *d, const http_request *rq, http_answer *out)
{
    char nonce[AUTHCERT_NONCE_B64_LEN + 1];
    json_t *o;
    unsigned wait = limits_retry_after(LIMIT_ENROLL, rq->peer);

    if (wait > 0) {
        answer_refusal(out, 429, REFUSE_RATE, "rate", wait,
                       "too many enrollment attempts from %s: try again in %u s", rq->peer, wait);
        return;
    }
    if (authcert_nonce_make(d->secret, time(NULL), nonce) != AUTHCERT_OK) {
        answer_refusal(out, 500, REFUSE_STORE, "internal", 0, "cannot make a nonce");
        return;
    }
    o = json_pack("{s:s, s:s}", "nonce", nonce, "server_id", authcert_server_id(d->srv));
    out->status = 200;
    out->content_type = "application/json";
    out->body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (out->body == NULL)
        answer_refusal(out, 500, REFUSE_STORE, "internal", 0, "out of memory");
    json_decref(o);
}

struct request {
    const char *agent_id, *hostname, *version, *key, *nonce, *token, *proof;
    int port;
};

static bool parse(json_t *j, struct request *r)
{
    json_t *port;

    memset(r, 0, sizeof *r);
    r->agent_id = json_string_value(json_object_get(j, "agent_id"));
    r->hostname = json_string_value(json_object_get(j, "hostname"));
    r->version = json_string_value(json_object_get(j, "version"));
    r->key = json_string_value(json_object_get(j, "key"));
    r->nonce = json_string_value(json_object_get(j, "nonce"));
    r->token = json_string_value(json_object_get(j, "token"));
    r->proof = json_string_value(json_object_get(j, "proof"));
    port = json_object_get(j, "port");
    if (r->agent_id == NULL || r->hostname == NULL || r->key == NULL || r->nonce == NULL ||
        r->proof == NULL || (port != NULL && !json_is_integer(port)) ||
        (json_object_get(j, "token") != NULL && r->token == NULL))
        return false;
    r->port = port != NULL ? (int)json_integer_value(port) : 0;
    return r->port >= 0 && r->port <= 65535;
}

/* 200 with the agent's credential. */
static void enrolled(daemon_ctx *d, const struct request *r, const char *pin, uint64_t epoch,
                     const char *how, http_answer *out)
{
    unsigned char key[32];
    char mac_key[AUTHCERT_B64URL_BUFSIZE(32)];
    json_t *o;

    if (auth_agent_key(d, r->agent_id, epoch, key) != AUTHCERT_OK) {
        answer_refusal(out, 500, REFUSE_STORE, "internal", 0, "cannot derive the key");
        return;
    }
    authcert_b64url_encode_to(key, sizeof key, mac_key);
    OPENSSL_cleanse(key, sizeof key);
    o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:i}", "state", "enrolled", "agent_id", r->agent_id,
                  "epoch", (json_int_t)epoch, "mac_key", mac_key, "server_id",
                  authcert_server_id(d->srv), "interval", (int)d->cfg.interval);
    OPENSSL_cleanse(mac_key, sizeof mac_key);
    out->status = 200;
    out->content_type = "application/json";
    out->body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    /* the JSON text holds the key too: jansson's buffers are not ours to wipe,
     * but the answer's body is freed by http.c right after it is sent */
    json_decref(o);
    if (out->body == NULL) {
        answer_refusal(out, 500, REFUSE_STORE, "internal", 0, "out of memory");
        return;
    }
    metric_enroll(ENROLL_OK);
    dlog("enrolled agent %s (key %s, epoch %llu, %s)", r->agent_id, pin,
         (unsigned long long)epoch, how);
}

/* A registry refusal of an enrollment, as the protocol answers it. */
static void refused(const http_request *rq, const struct request *r, const char *pin,
                    authcert_status rc, http_answer *out)
{
    const char *why = authcert_detail();

    if (rc == AUTHCERT_E_AUTH) {
        limits_spend(LIMIT_AUTH_FAIL, rq->peer);
        metric_enroll(ENROLL_REFUSED);
        dlog("enrollment of %s from %s refused: unknown token or wrong secret", r->agent_id,
             rq->peer);
        answer_refusal(out, 401, REFUSE_ENROLL, "token", 0, "unknown enrollment token, or not "
                       "its secret");
    } else if (rc == AUTHCERT_E_POLICY && strstr(why, "clone") != NULL) {
        metric_enroll(ENROLL_CLONE);
        dlog("CLONE: agent id %s, bound to another key, presented key %s from %s: refused "
             "(authcert --forget %s if the agent was reinstalled)", r->agent_id, pin, rq->peer,
             r->agent_id);
        answer_refusal(out, 409, REFUSE_ENROLL, "clone", 0,
                       "agent id %s is bound to another key: a reinstalled agent needs "
                       "authcert --forget %s on the server, or a new id", r->agent_id,
                       r->agent_id);
    } else if (rc == AUTHCERT_E_POLICY) {
        metric_enroll(ENROLL_REFUSED);
        dlog("enrollment of %s from %s refused: %s", r->agent_id, rq->peer, why);
        answer_refusal(out, 403, REFUSE_ENROLL, strstr(why, "known") != NULL ? "known" : "policy",
                       0, "%s", why);
    } else if (rc == AUTHCERT_E_BUSY) {
        metric_enroll(ENROLL_REFUSED);
        answer_refusal(out, 429, REFUSE_RATE, "pending_full", 60,
                       "too many enrollment requests pending approval");
    } else if (rc == AUTHCERT_E_USAGE) {
        metric_enroll(ENROLL_REFUSED);
        answer_refusal(out, 400, REFUSE_BAD_FIELD, "bad_request", 0, "%s", why);
    } else {
        dlog("enrollment of %s: registry: %s (%s)", r->agent_id, authcert_strerror(rc), why);
        answer_refusal(out, 503, REFUSE_REGISTRY, "unavailable", 5, "registry unavailable");
    }
}

void enroll_handle(daemon_ctx *d, const http_request *rq, http_answer *out)
{
    json_t *j = NULL;
    json_error_t jerr;
    struct request r;
    char tid[33], secret[AUTHCERT_TOKEN_SECRET_B64_LEN + 1], hash[65], pin[53];
    char *text = NULL;
    authcert_registry *reg = NULL;
    uint64_t epoch = 0;
    authcert_status rc;
    unsigned wait = limits_retry_after(LIMIT_ENROLL, rq->peer);
    bool approved = false;

    tid[0] = secret[0] = hash[0] = '\0';
    if (wait > 0) {
        answer_refusal(out, 429, REFUSE_RATE, "rate", wait,
                       "too many enrollment attempts from %s: try again in %u s", rq->peer, wait);
        return;
    }
    limits_spend(LIMIT_ENROLL, rq->peer);
    if (rq->len > ENROLL_BODY_MAX ||
        (j = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
        !json_is_object(j) || !parse(j, &r)) {
        answer_refusal(out, 400, REFUSE_BAD_JSON, "bad_request", 0,
                       "an enrollment is {agent_id, hostname, port, version, key, nonce, "
                       "[token], proof}");
        goto out;
    }
    if (strcmp(r.agent_id, "*") == 0) {
        answer_refusal(out, 400, REFUSE_BAD_FIELD, "bad_request", 0, "\"*\" is not an agent id");
        goto out;
    }
    if (authcert_nonce_check(d->secret, r.nonce, time(NULL), AUTHCERT_NONCE_MAX_AGE) !=
        AUTHCERT_OK) {
        answer_refusal(out, 401, REFUSE_ENROLL, "nonce", 0, "%s", authcert_detail());
        goto out;
    }
    if (r.token != NULL) {
        if (authcert_token_split(r.token, tid, secret) != AUTHCERT_OK) {
            answer_refusal(out, 400, REFUSE_BAD_FIELD, "token", 0, "%s", authcert_detail());
            goto out;
        }
        authcert_token_hash(secret, hash);
    }
    if (authcert_spki_pin(r.key, pin) != AUTHCERT_OK) {
        answer_refusal(out, 400, REFUSE_ENROLL, "key", 0, "%s", authcert_detail());
        goto out;
    }
    if (authcert_enroll_proof_text(r.agent_id, pin, authcert_server_id(d->srv), r.nonce,
                                   r.token != NULL ? hash : NULL, &text) != AUTHCERT_OK ||
        authcert_proof_verify(r.key, text, r.proof, pin) != AUTHCERT_OK) {
        limits_spend(LIMIT_AUTH_FAIL, rq->peer);
        metric_enroll(ENROLL_REFUSED);
        dlog("enrollment of %s from %s refused: %s", r.agent_id, rq->peer, authcert_detail());
        answer_refusal(out, 401, REFUSE_ENROLL, "proof", 0,
                       "the proof does not verify with the key sent");
        goto out;
    }
    if ((rc = dreg(d, &reg)) != AUTHCERT_OK) {
        answer_refusal(out, 503, REFUSE_REGISTRY, "unavailable", 5, "registry unavailable");
        goto out;
    }
    authcert_enroll_request er = { .agent_id = r.agent_id, .key_pin = pin, .key_spki = r.key,
                                   .hostname = r.hostname, .address = rq->peer,
                                   .port = (uint16_t)r.port,
                                   .version = r.version != NULL ? r.version : "" };
    if (r.token != NULL) {
        rc = authcert_registry_enroll_with_token(reg, tid, hash, &er, time(NULL), &epoch);
        if (rc == AUTHCERT_OK)
            enrolled(d, &r, pin, epoch, "with a token", out);
        else
            refused(rq, &r, pin, rc, out);
    } else if (d->enroll_mode == ENROLL_OPEN) {
        rc = authcert_registry_bind_key(reg, &er, false, time(NULL), &epoch);
        if (rc == AUTHCERT_OK)
            enrolled(d, &r, pin, epoch, "trusted on first use: --enroll open", out);
        else
            refused(rq, &r, pin, rc, out);
    } else if (d->enroll_mode == ENROLL_APPROVE) {
        rc = authcert_registry_pending_add(reg, &er, (unsigned)d->cfg.enroll_pending_max,
                                           time(NULL), &approved);
        if (rc == AUTHCERT_OK && approved) {
            rc = authcert_registry_bind_key(reg, &er, true, time(NULL), &epoch);
            if (rc == AUTHCERT_OK)
                enrolled(d, &r, pin, epoch, "approved by an operator", out);
            else
                refused(rq, &r, pin, rc, out);
        } else if (rc == AUTHCERT_OK) {
            json_t *o = json_pack("{s:s, s:s, s:s}", "state", "pending", "key_pin", pin,
                                  "error", "waiting for an operator: authcert --approve");
            metric_enroll(ENROLL_PENDING);
            dlog("enrollment of %s (key %s) from %s pending approval (authcert --approve %s)",
                 r.agent_id, pin, rq->peer, r.agent_id);
            out->status = 202;
            out->content_type = "application/json";
            out->body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
            json_decref(o);
        } else {
            refused(rq, &r, pin, rc, out);
        }
    } else {
        metric_enroll(ENROLL_REFUSED);
        answer_refusal(out, 401, REFUSE_ENROLL, "token", 0,
                       "this server enrolls agents with a token (authcert --enroll-token new)");
    }
    dreg_done();
out:
    OPENSSL_cleanse(secret, sizeof secret);
    free(text);
    json_decref(j);
}

/*
 * POST /v2/rotate-key (authenticated, strict): an enrolled agent replaces
 * its key. Both keys sign the rotation text (the old one: it is the agent;
 * the new one: the agent holds it), which names the request's counter, so a
 * rotation cannot be replayed. The registry binds the new key with the next
 * key epoch; the answer carries the MAC key of that epoch.
 */
void rotate_handle(daemon_ctx *d, const http_request *rq, http_answer *out)
{
    authed who;
    json_t *j = NULL;
    authcert_registry *reg = NULL;
    authcert_agent_identity *id = NULL;
    const char *key, *proof_old, *proof_new;
    char new_pin[53], seen[53], *text = NULL;
    uint64_t epoch = 0;
    authcert_status rc;

    if (!auth_request(d, rq, true, &who, out))
        return;
    j = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    key = json_string_value(json_object_get(j, "key"));
    proof_old = json_string_value(json_object_get(j, "proof_old"));
    proof_new = json_string_value(json_object_get(j, "proof_new"));
    if (key == NULL || proof_old == NULL || proof_new == NULL ||
        authcert_spki_pin(key, new_pin) != AUTHCERT_OK) {
        answer_refusal(out, 400, REFUSE_BAD_FIELD, "bad_request", 0,
                       "a rotation is {key, proof_old, proof_new}");
        goto out;
    }
    if ((rc = dreg(d, &reg)) != AUTHCERT_OK) {
        answer_refusal(out, 503, REFUSE_REGISTRY, "unavailable", 5, "registry unavailable");
        goto out;
    }
    rc = authcert_registry_get_identity(reg, who.agent_id, &id);
    if (rc != AUTHCERT_OK || id->key_spki[0] == '\0' ||
        authcert_rotate_proof_text(who.agent_id, id->key_pin, new_pin,
                                   authcert_server_id(d->srv), who.counter, &text) !=
            AUTHCERT_OK ||
        authcert_proof_verify(id->key_spki, text, proof_old, seen) != AUTHCERT_OK ||
        authcert_proof_verify(key, text, proof_new, seen) != AUTHCERT_OK) {
        dreg_done();
        metric_enroll(ENROLL_REFUSED);
        dlog("key rotation of %s from %s refused: the proofs do not verify", who.agent_id,
             rq->peer);
        answer_refusal(out, 401, REFUSE_ENROLL, "proof",
                       0, "the rotation proofs do not verify with the old and the new key");
        goto out;
    }
    rc = authcert_registry_rotate_key(reg, who.agent_id, id->key_pin, new_pin, key, time(NULL),
                                      &epoch);
    dreg_done();
    if (rc != AUTHCERT_OK) {
        answer_refusal(out, rc == AUTHCERT_E_POLICY ? 409 : 503, REFUSE_ENROLL, "policy", 0,
                       "%s", authcert_detail());
        goto out;
    }
    struct request r = { .agent_id = who.agent_id };
    enrolled(d, &r, new_pin, epoch, "its key rotated", out);
out:
    free(text);
    authcert_agent_identity_free(id);
    json_decref(j);
}
