/*
 * The server's check-in decision (server.h): current, expired (roll-over),
 * revoked and unknown certificates, broadcasts, and a replacement seen
 * through refresh. Tokens are checked with authcert_jws_verify against the
 * certificate an agent would hold (DER only, no key).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/authcert.h"
#include "authcert/base64url.h"
#include "authcert/jws.h"
#include "authcert/server.h"
#include "authcert/store.h"
#include "authcert/handoff.h"
#include "testlib.h"

#define AGENT "5f0c2a1e-0000-4000-8000-000000000001"
#define NOW 1900000000

/*
 * The store every test starts from, oldest first:
 *   a expired, b expired, c revoked (leaked while current), d current.
 */
struct fixture {
    char *dir;
    authcert_cert *a, *b, *c, *d; /* with keys */
    authcert_store *store;        /* read-only, as the daemon opens it */
    authcert_server *srv;
};

/* The check-in answer as an agent reads it: strict JSON, no duplicate keys. */
static json_t *answer_of(const authcert_server *srv, const authcert_server_batch *b)
{
    char *text = NULL;
    json_t *j;
    json_error_t err;

    assert_ok(authcert_server_answer(srv, b, &text));
    j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        fail_msg("answer is not JSON (%s): %s", err.text, text);
    free(text);
    return j;
}

static authcert_cert *new_cert(void)
{
    authcert_cert_params p = { .type = AUTHCERT_KEY_P256 };
    authcert_cert *c = NULL;

    assert_ok(authcert_cert_generate(&p, &c));
    return c;
}

static void replace(const char *dir, authcert_cert *c, authcert_state old_state)
{
    authcert_store *w = NULL;

    assert_ok(authcert_store_open(dir, AUTHCERT_STORE_CREATE, &w));
    assert_ok(authcert_store_make_current(w, c, true, old_state));
    assert_ok(authcert_store_commit(w));
    authcert_store_close(w);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    authcert_server_options o = { .server_id = "test-server" };

    assert_int_equal(authcert_init(), AUTHCERT_OK);
    f->dir = testlib_tmpdir("server_core");
    f->a = new_cert();
    f->b = new_cert();
    f->c = new_cert();
    f->d = new_cert();
    replace(f->dir, f->a, AUTHCERT_STATE_EXPIRED);
    replace(f->dir, f->b, AUTHCERT_STATE_EXPIRED);
    replace(f->dir, f->c, AUTHCERT_STATE_EXPIRED);
    replace(f->dir, f->d, AUTHCERT_STATE_REVOKED);
    assert_ok(authcert_store_open(f->dir, AUTHCERT_STORE_READ, &f->store));
    assert_ok(authcert_server_new(f->store, &o, &f->srv));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    authcert_server_free(f->srv);
    authcert_store_close(f->store);
    authcert_cert_free(f->a);
    authcert_cert_free(f->b);
    authcert_cert_free(f->c);
    authcert_cert_free(f->d);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    authcert_cleanup();
    return 0;
}

/* What the agent holds: the certificate alone, from its DER. */
static authcert_cert *agent_copy(const authcert_cert *c)
{
    size_t len = 0;
    const uint8_t *der = authcert_cert_der(c, &len);
    authcert_cert *out = NULL;

    assert_ok(authcert_cert_from_der(der, len, &out));
    assert_false(authcert_cert_has_key(out));
    return out;
}

/* Verify as the agent would; returns the claims (caller decrefs). */
static json_t *verify_at(const authcert_cert *held, const char *aud, const char *token,
                         int64_t now)
{
    authcert_cert *c = agent_copy(held);
    authcert_jws_expect e = { .audience = aud, .allow_broadcast = true,
                              .issuer = "test-server", .now = now, .leeway = 5 };
    json_t *claims = NULL;

    assert_ok(authcert_jws_verify(c, token, strlen(token), &e, &claims));
    authcert_cert_free(c);
    return claims;
}

static json_t *verify_as(const authcert_cert *held, const char *aud, const char *token)
{
    return verify_at(held, aud, token, NOW + 1);
}

static void assert_refused_by(const authcert_cert *held, const char *token)
{
    authcert_cert *c = agent_copy(held);
    authcert_jws_expect e = { .audience = AGENT, .allow_broadcast = true, .now = NOW + 1 };
    json_t *claims = NULL;

    assert_status(authcert_jws_verify(c, token, strlen(token), &e, &claims), AUTHCERT_E_AUTH);
    assert_null(claims);
    authcert_cert_free(c);
}

static const authcert_server_command two_cmds[] = {
    { .delivery_id = 41, .command_id = 7, .command = "ping" },
    { .delivery_id = 42, .command_id = 8, .command = "run", .args_json = "{\"n\":1}" },
};

static void test_current_agent_gets_commands_signed_by_current_key(void **state)
{
    struct fixture *f = *state;
    authcert_server_batch *b = NULL;
    json_t *cl;

    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->d),
                                       two_cmds, 2, NOW, &b));
    assert_int_equal(b->state, AUTHCERT_AGENT_CURRENT);
    assert_false(b->update_key);
    assert_string_equal(b->current_thumbprint, authcert_cert_thumbprint(f->d));
    assert_int_equal(b->ntokens, 2);
    assert_int_equal(b->signatures, 2);

    cl = verify_as(f->d, AGENT, b->tokens[0]);
    assert_string_equal(json_string_value(json_object_get(cl, "cmd")), "ping");
    assert_string_equal(json_string_value(json_object_get(cl, "aud")), AGENT);
    assert_int_equal(json_integer_value(json_object_get(cl, "did")), 41);
    assert_int_equal(json_integer_value(json_object_get(cl, "exp")), NOW + 300);
    assert_null(json_object_get(cl, "args"));
    json_decref(cl);
    cl = verify_as(f->d, AGENT, b->tokens[1]);
    assert_string_equal(json_string_value(json_object_get(cl, "cmd")), "run");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(cl, "args"), "n")), 1);
    assert_int_equal(json_integer_value(json_object_get(cl, "did")), 42);
    json_decref(cl);
    assert_int_equal(b->dids[0], 41);
    assert_int_equal(b->dids[1], 42);
    /* Not verifiable with any other certificate the server has. */
    assert_refused_by(f->b, b->tokens[0]);
    authcert_server_batch_free(b);
}

/* Check an update-key token: signed by held, carrying d. */
static void assert_update_key(struct fixture *f, const authcert_cert *held, const char *token)
{
    json_t *cl = verify_as(held, AGENT, token), *args;
    uint8_t *der = NULL;
    size_t len = 0, dlen = 0;
    const uint8_t *want = authcert_cert_der(f->d, &dlen);
    const char *b64;

    assert_string_equal(json_string_value(json_object_get(cl, "cmd")), "update-key");
    assert_string_equal(json_string_value(json_object_get(cl, "aud")), AGENT);
    /* The claims the server splices together hold every other claim too. */
    assert_non_null(json_string_value(json_object_get(cl, "iss")));
    assert_non_null(json_string_value(json_object_get(cl, "jti")));
    assert_int_equal(json_integer_value(json_object_get(cl, "exp")) -
                     json_integer_value(json_object_get(cl, "iat")), AUTHCERT_SERVER_TOKEN_TTL_DEFAULT);
    args = json_object_get(cl, "args");
    assert_int_equal(json_object_size(args), 2);
    assert_string_equal(json_string_value(json_object_get(args, "thumbprint")),
                        authcert_cert_thumbprint(f->d));
    b64 = json_string_value(json_object_get(args, "certificate"));
    assert_non_null(b64);
    assert_ok(authcert_b64url_decode(b64, strlen(b64), &der, &len));
    assert_int_equal(len, dlen);
    assert_memory_equal(der, want, len);
    free(der);
    json_decref(cl);
    assert_refused_by(f->d, token); /* the agent cannot verify d's key yet */
}

static void test_expired_agent_gets_update_key_signed_by_its_old_key(void **state)
{
    struct fixture *f = *state;
    authcert_server_batch *b = NULL;
    json_t *cl;

    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->b),
                                       two_cmds, 2, NOW, &b));
    assert_int_equal(b->state, AUTHCERT_AGENT_EXPIRED);
    assert_int_equal(b->reason, AUTHCERT_MISMATCH_EXPIRED);
    assert_true(b->update_key);
    assert_int_equal(b->ntokens, 3);
    assert_int_equal(b->signatures, 3);
    assert_int_equal(b->dids[0], -1);
    assert_update_key(f, f->b, b->tokens[0]);
    /* The queued commands follow, signed with the key the agent can check. */
    cl = verify_as(f->b, AGENT, b->tokens[1]);
    assert_string_equal(json_string_value(json_object_get(cl, "cmd")), "ping");
    json_decref(cl);
    cl = verify_as(f->b, AGENT, b->tokens[2]);
    assert_string_equal(json_string_value(json_object_get(cl, "cmd")), "run");
    json_decref(cl);
    authcert_server_batch_free(b);
}

static void test_several_replacements_behind_is_one_step_to_current(void **state)
{
    struct fixture *f = *state;
    authcert_server_batch *b = NULL;

    /* a was replaced by b, b by c, c by d: the update carries d directly. */
    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->a),
                                       NULL, 0, NOW, &b));
    assert_int_equal(b->state, AUTHCERT_AGENT_EXPIRED);
    assert_int_equal(b->ntokens, 1);
    assert_update_key(f, f->a, b->tokens[0]);
    authcert_server_batch_free(b);
}

/* A store of x (expired) and y (current), x's statement as given (NULL: x's own). */
static authcert_server *chain_server(const char *dir, authcert_cert *x, authcert_cert *y,
                                     const char *statement, authcert_store **st)
{
    authcert_store *w = NULL;
    authcert_server *srv = NULL;
    authcert_server_options o = { .server_id = "test-server" };
    char *own = NULL;

    replace(dir, x, AUTHCERT_STATE_EXPIRED);
    replace(dir, y, AUTHCERT_STATE_EXPIRED);
    if (statement == NULL)
        assert_ok(authcert_handoff_sign(x, y, 2, 0, &own));
    assert_ok(authcert_store_open(dir, AUTHCERT_STORE_WRITE, &w));
    assert_ok(authcert_store_set_handoff(w, authcert_cert_thumbprint(x),
                                         statement != NULL ? statement : own));
    assert_ok(authcert_store_commit(w));
    authcert_store_close(w);
    free(own);
    assert_ok(authcert_store_open(dir, AUTHCERT_STORE_READ, st));
    assert_ok(authcert_server_new(*st, &o, &srv));
    return srv;
}

static void test_checkin_gets_the_chain_that_verifies(void **state)
{
    struct fixture *f = *state;
    authcert_cert *x = new_cert(), *y = new_cert(), *z = new_cert();
    char *d1 = NULL, *d2 = NULL, *forged = NULL;
    authcert_store *st = NULL;
    authcert_server_batch *b = NULL;
    authcert_server *srv;

    (void)f;
    d1 = testlib_tmpdir("server_chain");
    srv = chain_server(d1, x, y, NULL, &st);
    /* A check-in of an agent that walks chains: the chain, nothing signed. */
    assert_ok(authcert_server_sign_checkin(srv, AGENT, authcert_cert_thumbprint(x), NULL, 0,
                                           NOW, &b));
    assert_int_equal(b->state, AUTHCERT_AGENT_EXPIRED);
    assert_non_null(b->handoff);
    assert_int_equal(b->ntokens, 0);
    assert_int_equal(b->signatures, 0);
    json_t *ans = answer_of(srv, b);
    assert_int_equal(json_array_size(json_object_get(ans, "handoff")), 1);
    authcert_cert *end = NULL;
    assert_ok(authcert_handoff_walk(x, json_object_get(ans, "handoff"),
                                    authcert_cert_thumbprint(y), 0, &end));
    authcert_cert_free(end);
    json_decref(ans);
    authcert_server_batch_free(b);
    /* One that does not (sign_for: a push, an older agent): the update-key. */
    assert_ok(authcert_server_sign_for(srv, AGENT, authcert_cert_thumbprint(x), NULL, 0, NOW,
                                       &b));
    assert_null(b->handoff);
    assert_int_equal(b->ntokens, 1);
    authcert_server_batch_free(b);
    authcert_server_free(srv);
    authcert_store_close(st);

    /* A statement planted in the store (signed by another key): not sent,
     * the agent gets the signed update-key instead of a chain it would refuse. */
    d2 = testlib_tmpdir("server_chain_bad");
    assert_ok(authcert_handoff_sign(z, y, 2, 0, &forged));
    srv = chain_server(d2, x, y, forged, &st);
    assert_ok(authcert_server_sign_checkin(srv, AGENT, authcert_cert_thumbprint(x), NULL, 0,
                                           NOW, &b));
    assert_null(b->handoff);
    assert_int_equal(b->ntokens, 1);
    authcert_server_batch_free(b);
    authcert_server_free(srv);
    authcert_store_close(st);

    free(forged);
    testlib_rmrf(d1);
    testlib_rmrf(d2);
    free(d1);
    free(d2);
    authcert_cert_free(x);
    authcert_cert_free(y);
    authcert_cert_free(z);
}

static void test_revoked_is_mismatched_and_nothing_is_signed(void **state)
{
    struct fixture *f = *state;
    authcert_server_batch *b = NULL;
    authcert_server_command bc = { .delivery_id = 1, .command_id = 9, .broadcast = true,
                                   .command = "ping" };
    authcert_mismatch_reason why = AUTHCERT_MISMATCH_EXPIRED;
    json_t *ans = NULL;

    assert_int_equal(authcert_server_classify(f->srv, authcert_cert_thumbprint(f->c), &why),
                     AUTHCERT_AGENT_MISMATCHED);
    assert_int_equal(why, AUTHCERT_MISMATCH_REVOKED);
    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->c),
                                       two_cmds, 2, NOW, &b));
    assert_int_equal(b->state, AUTHCERT_AGENT_MISMATCHED);
    assert_int_equal(b->reason, AUTHCERT_MISMATCH_REVOKED);
    assert_int_equal(b->ntokens, 0);
    assert_int_equal(b->signatures, 0);
    assert_false(b->update_key);
    ans = answer_of(f->srv, b);
    assert_string_equal(json_string_value(json_object_get(ans, "state")), "mismatched");
    assert_string_equal(json_string_value(json_object_get(ans, "reason")), "revoked");
    assert_int_equal(json_array_size(json_object_get(ans, "commands")), 0);
    json_decref(ans);
    authcert_server_batch_free(b);
    /* A broadcast is not signed for it either. */
    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->c),
                                       &bc, 1, NOW, &b));
    assert_int_equal(b->ntokens, 0);
    assert_int_equal(authcert_server_cached_tokens(f->srv), 0);
    authcert_server_batch_free(b);
}

static void test_unknown_or_missing_thumbprint_is_mismatched(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = { "0000000000000000000000000000000000000000000000000000000000000000",
                          "", NULL, "not hex", "ABCDEF" };
    authcert_server_batch *b = NULL;
    json_t *ans = NULL;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        authcert_mismatch_reason why = AUTHCERT_MISMATCH_EXPIRED;
        assert_int_equal(authcert_server_classify(f->srv, bad[i], &why),
                         AUTHCERT_AGENT_MISMATCHED);
        assert_int_equal(why, AUTHCERT_MISMATCH_UNKNOWN);
        assert_ok(authcert_server_sign_for(f->srv, AGENT, bad[i], two_cmds, 2, NOW, &b));
        assert_int_equal(b->state, AUTHCERT_AGENT_MISMATCHED);
        assert_int_equal(b->ntokens, 0);
        assert_int_equal(b->signatures, 0);
        authcert_server_batch_free(b);
    }
    assert_ok(authcert_server_sign_for(f->srv, AGENT, NULL, NULL, 0, NOW, &b));
    ans = answer_of(f->srv, b);
    assert_string_equal(json_string_value(json_object_get(ans, "reason")), "unknown");
    assert_string_equal(json_string_value(json_object_get(ans, "current_thumbprint")),
                        authcert_cert_thumbprint(f->d));
    json_decref(ans);
    authcert_server_batch_free(b);
}

static void test_broadcast_is_signed_once_per_certificate(void **state)
{
    struct fixture *f = *state;
    authcert_server_command bc = { .delivery_id = 100, .command_id = 9, .broadcast = true,
                                   .command = "ping" };
    authcert_server_batch *b1 = NULL, *b2 = NULL, *b3 = NULL;
    json_t *cl;

    bc.delivery_id = 100;
    assert_ok(authcert_server_sign_for(f->srv, "agent-1", authcert_cert_thumbprint(f->d),
                                       &bc, 1, NOW, &b1));
    bc.delivery_id = 101;
    assert_ok(authcert_server_sign_for(f->srv, "agent-2", authcert_cert_thumbprint(f->d),
                                       &bc, 1, NOW + 2, &b2));
    bc.delivery_id = 102;
    assert_ok(authcert_server_sign_for(f->srv, "agent-3", authcert_cert_thumbprint(f->b),
                                       &bc, 1, NOW + 2, &b3));
    assert_int_equal(b1->signatures, 1);
    assert_int_equal(b2->signatures, 0); /* from the cache */
    assert_string_equal(b1->tokens[0], b2->tokens[0]);
    assert_int_equal(b2->dids[0], 101); /* results still map to each delivery */
    /* agent-3 is on b: update-key (its own) plus the broadcast signed with b. */
    assert_int_equal(b3->ntokens, 2);
    assert_int_equal(b3->signatures, 2);
    assert_string_not_equal(b3->tokens[1], b1->tokens[0]);
    assert_int_equal(authcert_server_cached_tokens(f->srv), 2);

    cl = verify_as(f->d, "agent-2", b2->tokens[0]);
    assert_string_equal(json_string_value(json_object_get(cl, "aud")), "*");
    assert_int_equal(json_integer_value(json_object_get(cl, "did")), 9);
    json_decref(cl);
    cl = verify_as(f->b, "agent-3", b3->tokens[1]);
    assert_string_equal(json_string_value(json_object_get(cl, "aud")), "*");
    json_decref(cl);
    authcert_server_batch_free(b1);
    authcert_server_batch_free(b2);
    authcert_server_batch_free(b3);

    /* Past half its life a cached token is not handed out: a fresh one is made. */
    assert_ok(authcert_server_sign_for(f->srv, "agent-4", authcert_cert_thumbprint(f->d),
                                       &bc, 1, NOW + 151, &b1));
    assert_int_equal(b1->signatures, 1);
    cl = verify_at(f->d, "agent-4", b1->tokens[0], NOW + 152);
    assert_int_equal(json_integer_value(json_object_get(cl, "iat")), NOW + 151);
    json_decref(cl);
    authcert_server_batch_free(b1);
}

/* Threads that miss the cache together still make one signature. */
static pthread_barrier_t start_line;

struct racer {
    struct fixture *f;
    char agent[32];
    unsigned signatures;
    authcert_status rc;
    char *token;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    authcert_server_command bc = { .delivery_id = 500, .command_id = 77, .broadcast = true,
                                   .command = "ping" };
    authcert_server_batch *b = NULL;

    pthread_barrier_wait(&start_line); /* all miss the cache together */
    r->rc = authcert_server_sign_for(r->f->srv, r->agent, authcert_cert_thumbprint(r->f->d),
                                     &bc, 1, NOW, &b);
    if (r->rc == AUTHCERT_OK) {
        r->signatures = b->signatures;
        r->token = strdup(b->tokens[0]);
    }
    authcert_server_batch_free(b);
    return NULL;
}

static void test_broadcast_is_signed_once_by_racing_threads(void **state)
{
    struct fixture *f = *state;
    struct racer r[8];
    pthread_t t[8];
    unsigned total = 0;

    assert_int_equal(pthread_barrier_init(&start_line, NULL, 8), 0);
    for (int i = 0; i < 8; i++) {
        r[i] = (struct racer){ .f = f };
        snprintf(r[i].agent, sizeof r[i].agent, "agent-%d", i);
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_ok(r[i].rc);
        total += r[i].signatures;
    }
    pthread_barrier_destroy(&start_line);
    assert_int_equal(total, 1);
    for (int i = 0; i < 8; i++)
        assert_string_equal(r[i].token, r[0].token);
    for (int i = 0; i < 8; i++)
        free(r[i].token);
    assert_int_equal(authcert_server_cached_tokens(f->srv), 1);
}

/* A queued update-key is the roll-over for an expired agent, nothing for a current one. */
static void test_queued_update_key_becomes_the_roll_over(void **state)
{
    struct fixture *f = *state;
    const authcert_server_command cmds[] = {
        { .delivery_id = 61, .command_id = 60, .command = "update-key" },
        { .delivery_id = 63, .command_id = 62, .command = "ping" },
    };
    authcert_server_command bcast = { .delivery_id = 71, .command_id = 70, .broadcast = true,
                                      .command = "update-key" };
    authcert_server_batch *b = NULL;
    json_t *cl;

    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->b), cmds, 2,
                                       NOW, &b));
    assert_int_equal(b->state, AUTHCERT_AGENT_EXPIRED);
    assert_true(b->update_key);
    assert_int_equal(b->ntokens, 2); /* one update-key, not two */
    assert_int_equal(b->signatures, 2);
    assert_update_key(f, f->b, b->tokens[0]);
    assert_int_equal(b->dids[0], 61);
    cl = verify_as(f->b, AGENT, b->tokens[0]);
    assert_int_equal(json_integer_value(json_object_get(cl, "did")), 61);
    json_decref(cl);
    cl = verify_as(f->b, AGENT, b->tokens[1]);
    assert_string_equal(json_string_value(json_object_get(cl, "cmd")), "ping");
    json_decref(cl);
    assert_int_equal(b->dids[1], 63);
    authcert_server_batch_free(b);

    /* Already current: nothing to sign for it, the ping still goes. */
    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->d), cmds, 2,
                                       NOW, &b));
    assert_int_equal(b->state, AUTHCERT_AGENT_CURRENT);
    assert_false(b->update_key);
    assert_int_equal(b->ntokens, 1);
    assert_int_equal(b->dids[0], 63);
    authcert_server_batch_free(b);

    /* A broadcast update-key carries its command id, like any broadcast. */
    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->a), &bcast, 1,
                                       NOW, &b));
    assert_int_equal(b->ntokens, 1);
    assert_int_equal(b->dids[0], 71);
    cl = verify_as(f->a, AGENT, b->tokens[0]);
    assert_int_equal(json_integer_value(json_object_get(cl, "did")), 70);
    assert_string_equal(json_string_value(json_object_get(cl, "aud")), AGENT);
    json_decref(cl);
    authcert_server_batch_free(b);
    assert_int_equal(authcert_server_cached_tokens(f->srv), 0);
}

static void test_answer_has_the_protocol_fields(void **state)
{
    struct fixture *f = *state;
    authcert_server_batch *b = NULL;
    json_t *ans = NULL;

    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->a),
                                       two_cmds, 1, NOW, &b));
    ans = answer_of(f->srv, b);
    assert_string_equal(json_string_value(json_object_get(ans, "state")), "expired");
    assert_null(json_object_get(ans, "reason"));
    assert_int_equal(json_integer_value(json_object_get(ans, "interval")), 60);
    assert_int_equal(json_array_size(json_object_get(ans, "commands")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(ans, "commands"), 0)),
                        b->tokens[0]);
    assert_string_equal(json_string_value(json_array_get(json_object_get(ans, "commands"), 1)),
                        b->tokens[1]);
    assert_string_equal(json_string_value(json_object_get(ans, "current_thumbprint")),
                        authcert_cert_thumbprint(f->d));
    assert_int_equal(json_object_size(ans), 4);
    json_decref(ans);

    /* A token is never escaped into the answer: one that is not compact JWS
     * (a bug of ours) fails the answer instead. */
    {
        char *text = (char *)"unchanged";
        b->tokens[1][3] = '"';
        assert_status(authcert_server_answer(f->srv, b, &text), AUTHCERT_E_INTERNAL);
        assert_null(text);
    }
    authcert_server_batch_free(b);
}

static void test_bad_arguments_are_refused(void **state)
{
    struct fixture *f = *state;
    authcert_server_command bad = { .delivery_id = 1, .command = "run", .args_json = "[1]" };
    authcert_server_command dup = { .delivery_id = 1, .command = "run",
                                    .args_json = "{\"a\":1,\"a\":2}" };
    authcert_server_command noname = { .delivery_id = 1, .command = "" };
    authcert_server_batch *b = NULL;
    const char *tp = authcert_cert_thumbprint(f->d);

    assert_status(authcert_server_sign_for(f->srv, AGENT, tp, &bad, 1, NOW, &b),
                  AUTHCERT_E_USAGE);
    assert_null(b);
    assert_status(authcert_server_sign_for(f->srv, AGENT, tp, &dup, 1, NOW, &b),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_server_sign_for(f->srv, AGENT, tp, &noname, 1, NOW, &b),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_server_sign_for(f->srv, "", tp, NULL, 0, NOW, &b), AUTHCERT_E_USAGE);
    assert_status(authcert_server_sign_for(f->srv, AGENT, tp, NULL, 1, NOW, &b),
                  AUTHCERT_E_USAGE);
}

static void test_replacement_is_seen_through_refresh(void **state)
{
    struct fixture *f = *state;
    authcert_cert *e = new_cert();
    authcert_server_batch *b = NULL;
    authcert_store *w = NULL;
    char cur[AUTHCERT_THUMBPRINT_LEN + 1];
    bool changed = true;
    unsigned long long gen = authcert_server_generation(f->srv);

    assert_ok(authcert_server_refresh(f->srv, &changed));
    assert_false(changed);
    replace(f->dir, e, AUTHCERT_STATE_EXPIRED);
    assert_ok(authcert_server_refresh(f->srv, &changed));
    assert_true(changed);
    assert_true(authcert_server_generation(f->srv) > gen);
    authcert_server_current(f->srv, cur, NULL);
    assert_string_equal(cur, authcert_cert_thumbprint(e));
    assert_int_equal(authcert_server_classify(f->srv, authcert_cert_thumbprint(f->d), NULL),
                     AUTHCERT_AGENT_EXPIRED);
    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->d),
                                       NULL, 0, NOW, &b));
    assert_int_equal(b->ntokens, 1);
    authcert_server_batch_free(b);

    /* maybe_refresh looks at most once a second. */
    assert_ok(authcert_store_open(f->dir, AUTHCERT_STORE_WRITE, &w));
    assert_ok(authcert_store_revoke(w, authcert_cert_thumbprint(f->d)));
    assert_ok(authcert_store_commit(w));
    authcert_store_close(w);
    assert_ok(authcert_server_maybe_refresh(f->srv, NOW, &changed));
    assert_true(changed);
    assert_ok(authcert_server_maybe_refresh(f->srv, NOW, &changed));
    assert_false(changed);
    /* d is now revoked: its agents get nothing, not even the update. */
    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->d),
                                       two_cmds, 2, NOW, &b));
    assert_int_equal(b->state, AUTHCERT_AGENT_MISMATCHED);
    assert_int_equal(b->reason, AUTHCERT_MISMATCH_REVOKED);
    assert_int_equal(b->ntokens, 0);
    authcert_server_batch_free(b);
    authcert_cert_free(e);
}

static void test_revoked_after_broadcast_cached_gets_nothing(void **state)
{
    struct fixture *f = *state;
    authcert_server_command bc = { .delivery_id = 5, .command_id = 3, .broadcast = true,
                                   .command = "ping" };
    authcert_server_batch *b = NULL;
    authcert_store *w = NULL;
    bool changed = false;

    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->a),
                                       &bc, 1, NOW, &b));
    assert_int_equal(b->ntokens, 2);
    authcert_server_batch_free(b);
    assert_ok(authcert_store_open(f->dir, AUTHCERT_STORE_WRITE, &w));
    assert_ok(authcert_store_revoke(w, authcert_cert_thumbprint(f->a)));
    assert_ok(authcert_store_commit(w));
    authcert_store_close(w);
    assert_ok(authcert_server_refresh(f->srv, &changed));
    assert_true(changed);
    /* The token signed with a is still cached, and must not be handed out. */
    assert_ok(authcert_server_sign_for(f->srv, AGENT, authcert_cert_thumbprint(f->a),
                                       &bc, 1, NOW, &b));
    assert_int_equal(b->state, AUTHCERT_AGENT_MISMATCHED);
    assert_int_equal(b->ntokens, 0);
    authcert_server_batch_free(b);
}

static void test_server_needs_a_current_certificate(void **state)
{
    struct fixture *f = *state;
    char *empty = testlib_tmpdir("server_core_empty");
    authcert_store *w = NULL;
    authcert_server *srv = (authcert_server *)f; /* must be reset to NULL */
    authcert_server_options bad_ttl = { .token_ttl = -1 };

    assert_ok(authcert_store_open(empty, AUTHCERT_STORE_CREATE, &w));
    assert_status(authcert_server_new(w, NULL, &srv), AUTHCERT_E_NOTFOUND);
    assert_null(srv);
    authcert_store_close(w);
    assert_status(authcert_server_new(f->store, &bad_ttl, &srv), AUTHCERT_E_USAGE);
    assert_null(srv);
    testlib_rmrf(empty);
    free(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_current_agent_gets_commands_signed_by_current_key,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_agent_gets_update_key_signed_by_its_old_key,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkin_gets_the_chain_that_verifies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_several_replacements_behind_is_one_step_to_current,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_is_mismatched_and_nothing_is_signed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_or_missing_thumbprint_is_mismatched,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast_is_signed_once_per_certificate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast_is_signed_once_by_racing_threads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queued_update_key_becomes_the_roll_over, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_answer_has_the_protocol_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replacement_is_seen_through_refresh,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_after_broadcast_cached_gets_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_needs_a_current_certificate,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
