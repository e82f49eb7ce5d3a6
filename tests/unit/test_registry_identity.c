/*
 * Agent identity in the registry (authcert/identity.h), on SQLite and, as
 * unit/test_registry_identity_pg, on PostgreSQL: binding a key, clones,
 * tokens (uses, expiry, revocation, one agent), approval, rotation,
 * forgetting, the counter's compare-and-set, and that a refusal changes
 * nothing but what it says it records.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/identity.h"
#include "authcert/registry.h"
#include "authcert/registry_copy.h"
#include "testlib.h"
#include "testlib_registry.h"

#define T0 1780000000
#define PIN_A "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs="
#define PIN_B "sha256//PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0="
#define PIN_C "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define SPKI_A "MCowBQYDK2VwAyEAaaaa"
#define SPKI_B "MCowBQYDK2VwAyEAbbbb"
#define SPKI_C "MCowBQYDK2VwAyEAcccc"
/* sha256("secret-1"), sha256("secret-2") as the tool stores them */
#define HASH_1 "1111111111111111111111111111111111111111111111111111111111111111"
#define HASH_2 "2222222222222222222222222222222222222222222222222222222222222222"

typedef struct fixture {
    char *dir;
    char *path;
    authcert_registry *reg;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    f->dir = testlib_tmpdir("registry_identity");
    f->path = testlib_registry_new(f->dir);
    assert_ok(authcert_registry_open(f->path, &f->reg));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    authcert_registry_close(f->reg);
    testlib_registry_drop(f->path);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

static authcert_enroll_request req(const char *id, const char *pin, const char *spki)
{
    authcert_enroll_request r = { .agent_id = id, .key_pin = pin, .key_spki = spki,
                                  .hostname = "web-1", .address = "192.0.2.7", .port = 7443,
                                  .version = "0.9.0" };
    return r;
}

static authcert_agent_identity *identity(authcert_registry *reg, const char *id)
{
    authcert_agent_identity *out = NULL;

    assert_ok(authcert_registry_get_identity(reg, id, &out));
    return out;
}

static void test_open_binds_a_new_id_and_the_same_key_again(void **state)
{
    fixture *f = *state;
    authcert_enroll_request r = req("agent-1", PIN_A, SPKI_A);
    authcert_agent_identity *id;
    authcert_agent *a = NULL;
    uint64_t epoch = 0;

    assert_status(authcert_registry_get_identity(f->reg, "agent-1", &id), AUTHCERT_E_NOTFOUND);
    assert_ok(authcert_registry_bind_key(f->reg, &r, false, T0, &epoch));
    assert_int_equal(epoch, 1);
    id = identity(f->reg, "agent-1");
    assert_string_equal(id->key_pin, PIN_A);
    assert_string_equal(id->key_spki, SPKI_A);
    assert_int_equal(id->key_epoch, 1);
    assert_int_equal(id->mac_counter, 0);
    assert_int_equal(id->enrolled_at, T0);
    assert_false(id->known_before);
    authcert_agent_identity_free(id);
    /* the agent row is there, with the key's pin: pushes are pinned to it */
    assert_ok(authcert_registry_get_agent(f->reg, "agent-1", &a));
    assert_string_equal(a->key_pin, PIN_A);
    assert_string_equal(a->hostname, "web-1");
    assert_int_equal(a->port, 7443);
    authcert_agent_free(a);

    /* The same key again (the agent lost its MAC key): the same epoch. */
    epoch = 0;
    assert_ok(authcert_registry_bind_key(f->reg, &r, false, T0 + 5, &epoch));
    assert_int_equal(epoch, 1);
}

static void test_another_key_for_a_bound_id_is_a_clone_and_recorded(void **state)
{
    fixture *f = *state;
    authcert_enroll_request r = req("agent-1", PIN_A, SPKI_A);
    authcert_enroll_request clone = req("agent-1", PIN_B, SPKI_B);
    authcert_agent_identity *id;
    uint64_t epoch = 0;

    assert_ok(authcert_registry_bind_key(f->reg, &r, false, T0, &epoch));
    epoch = 99;
    assert_status(authcert_registry_bind_key(f->reg, &clone, true, T0 + 7, &epoch),
                  AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "clone"));
    assert_int_equal(epoch, 99);
    id = identity(f->reg, "agent-1");
    assert_string_equal(id->key_pin, PIN_A); /* still the first key */
    assert_string_equal(id->key_spki, SPKI_A);
    assert_int_equal(id->key_epoch, 1);
    assert_string_equal(id->clone_pin, PIN_B);
    assert_int_equal(id->clone_seen_at, T0 + 7);
    authcert_agent_identity_free(id);
}

static void test_a_known_id_needs_approval_or_its_own_token(void **state)
{
    fixture *f = *state;
    authcert_agent_report old = { .agent_id = "old-1", .hostname = "h", .address = "192.0.2.9",
                                  .port = 7443, .version = "0.1" };
    authcert_enroll_request r = req("old-1", PIN_A, SPKI_A);
    authcert_agent_identity *id;
    uint64_t epoch = 0;

    assert_ok(authcert_registry_checkin(f->reg, &old, T0));
    id = identity(f->reg, "old-1");
    assert_true(id->known_before);
    assert_int_equal(id->key_epoch, 0);
    authcert_agent_identity_free(id);

    assert_status(authcert_registry_bind_key(f->reg, &r, false, T0, &epoch), AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "known"));
    /* a general token does not enroll it either, and keeps its use */
    assert_ok(authcert_registry_token_add(f->reg, "general", HASH_1, 1, 0, NULL, T0));
    assert_status(authcert_registry_enroll_with_token(f->reg, "general", HASH_1, &r, T0, &epoch),
                  AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "known"));
    /* a token made for it does */
    assert_ok(authcert_registry_token_add(f->reg, "for-old", HASH_2, 1, 0, "old-1", T0));
    assert_ok(authcert_registry_enroll_with_token(f->reg, "for-old", HASH_2, &r, T0, &epoch));
    assert_int_equal(epoch, 1);
    id = identity(f->reg, "old-1");
    assert_string_equal(id->key_pin, PIN_A);
    authcert_agent_identity_free(id);
}

struct tokens {
    int n;
    authcert_enroll_token t[4];
    char id[4][40];
};

static authcert_status keep_token(void *ctx, const authcert_enroll_token *t)
{
    struct tokens *k = ctx;

    if (k->n < 4) {
        k->t[k->n] = *t;
        snprintf(k->id[k->n], sizeof k->id[k->n], "%s", t->id);
        k->t[k->n].id = k->id[k->n];
        k->t[k->n].agent_id = NULL;
    }
    k->n++;
    return AUTHCERT_OK;
}

static void test_token_uses_expiry_revocation_and_wrong_secret(void **state)
{
    fixture *f = *state;
    authcert_enroll_request a = req("new-a", PIN_A, SPKI_A);
    authcert_enroll_request b = req("new-b", PIN_B, SPKI_B);
    authcert_enroll_request c = req("new-c", PIN_C, SPKI_C);
    struct tokens k = { 0 };
    uint64_t epoch = 0;

    assert_ok(authcert_registry_token_add(f->reg, "two", HASH_1, 2, T0 + 3600, NULL, T0));
    assert_status(authcert_registry_token_add(f->reg, "two", HASH_2, 1, 0, NULL, T0),
                  AUTHCERT_E_USAGE); /* an id that exists */
    assert_status(authcert_registry_token_add(f->reg, "bad id!", HASH_2, 1, 0, NULL, T0),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_token_add(f->reg, "zero", HASH_2, 0, 0, NULL, T0),
                  AUTHCERT_E_USAGE);

    /* wrong secret and unknown token: the same answer */
    assert_status(authcert_registry_enroll_with_token(f->reg, "two", HASH_2, &a, T0, &epoch),
                  AUTHCERT_E_AUTH);
    assert_status(authcert_registry_enroll_with_token(f->reg, "nope", HASH_1, &a, T0, &epoch),
                  AUTHCERT_E_AUTH);
    assert_status(authcert_registry_get_identity(f->reg, "new-a", &(authcert_agent_identity *){
                                                     NULL }),
                  AUTHCERT_E_NOTFOUND); /* nothing was written */

    assert_ok(authcert_registry_enroll_with_token(f->reg, "two", HASH_1, &a, T0, &epoch));
    assert_ok(authcert_registry_enroll_with_token(f->reg, "two", HASH_1, &b, T0, &epoch));
    assert_status(authcert_registry_enroll_with_token(f->reg, "two", HASH_1, &c, T0, &epoch),
                  AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "used up"));
    assert_status(authcert_registry_get_identity(f->reg, "new-c", &(authcert_agent_identity *){
                                                     NULL }),
                  AUTHCERT_E_NOTFOUND);

    assert_ok(authcert_registry_token_add(f->reg, "soon", HASH_2, 5, T0 + 10, NULL, T0 + 1));
    assert_status(authcert_registry_enroll_with_token(f->reg, "soon", HASH_2, &c, T0 + 10,
                                                      &epoch), AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "expired"));
    assert_ok(authcert_registry_token_add(f->reg, "gone", HASH_2, 5, 0, NULL, T0 + 2));
    assert_ok(authcert_registry_token_revoke(f->reg, "gone"));
    assert_status(authcert_registry_token_revoke(f->reg, "never"), AUTHCERT_E_NOTFOUND);
    assert_status(authcert_registry_enroll_with_token(f->reg, "gone", HASH_2, &c, T0, &epoch),
                  AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "revoked"));
    assert_ok(authcert_registry_token_add(f->reg, "mine", HASH_2, 5, 0, "someone", T0 + 3));
    assert_status(authcert_registry_enroll_with_token(f->reg, "mine", HASH_2, &c, T0, &epoch),
                  AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "another agent"));

    assert_ok(authcert_registry_foreach_token(f->reg, keep_token, &k));
    assert_int_equal(k.n, 4);
    assert_string_equal(k.t[0].id, "two"); /* oldest first */
    assert_int_equal(k.t[0].uses, 2);
    assert_int_equal(k.t[0].uses_left, 0);
    assert_int_equal(k.t[0].last_used_at, T0);
    assert_string_equal(k.t[2].id, "gone");
    assert_true(k.t[2].revoked);
    assert_int_equal(k.t[2].uses, 0);
}

static void test_a_clone_with_a_token_takes_no_use(void **state)
{
    fixture *f = *state;
    authcert_enroll_request r = req("agent-1", PIN_A, SPKI_A);
    authcert_enroll_request clone = req("agent-1", PIN_B, SPKI_B);
    struct tokens k = { 0 };
    uint64_t epoch = 0;

    assert_ok(authcert_registry_token_add(f->reg, "t", HASH_1, 3, 0, NULL, T0));
    assert_ok(authcert_registry_enroll_with_token(f->reg, "t", HASH_1, &r, T0, &epoch));
    assert_status(authcert_registry_enroll_with_token(f->reg, "t", HASH_1, &clone, T0, &epoch),
                  AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), "clone"));
    assert_ok(authcert_registry_foreach_token(f->reg, keep_token, &k));
    assert_int_equal(k.t[0].uses, 1);
    authcert_agent_identity *id = identity(f->reg, "agent-1");
    assert_string_equal(id->clone_pin, PIN_B);
    assert_string_equal(id->key_pin, PIN_A);
    authcert_agent_identity_free(id);
}

static void test_counter_compare_and_set(void **state)
{
    fixture *f = *state;
    authcert_enroll_request r = req("agent-1", PIN_A, SPKI_A);
    authcert_agent_report rep = { .agent_id = "agent-1", .hostname = "web-1",
                                  .address = "192.0.2.7", .port = 7443, .mac_counter = 0 };
    uint64_t epoch = 0, e = 0, c = 0;
    bool advanced = false, bound = false;

    assert_ok(authcert_registry_auth_advance(f->reg, "nobody", 1, 5, &advanced));
    assert_false(advanced);
    assert_ok(authcert_registry_bind_key(f->reg, &r, false, T0, &epoch));
    assert_ok(authcert_registry_auth_advance(f->reg, "agent-1", 1, 5, &advanced));
    assert_true(advanced);
    assert_ok(authcert_registry_auth_advance(f->reg, "agent-1", 1, 5, &advanced));
    assert_false(advanced); /* the same counter twice: a replay */
    assert_ok(authcert_registry_auth_advance(f->reg, "agent-1", 1, 4, &advanced));
    assert_false(advanced);
    assert_ok(authcert_registry_auth_advance(f->reg, "agent-1", 2, 9, &advanced));
    assert_false(advanced); /* another epoch */
    assert_status(authcert_registry_auth_advance(f->reg, "agent-1", 1, UINT64_MAX, &advanced),
                  AUTHCERT_E_USAGE);

    /* The check-in writer raises it, never lowers it. */
    rep.mac_counter = 3;
    assert_ok(authcert_registry_checkin_batch(f->reg, &rep, 1, T0 + 1));
    assert_ok(authcert_registry_auth_state(f->reg, "agent-1", &bound, &e, &c));
    assert_true(bound);
    assert_int_equal(e, 1);
    assert_int_equal(c, 5);
    authcert_agent_report two[2] = { rep, rep };
    two[0].mac_counter = 40;
    two[1].mac_counter = 12;
    assert_ok(authcert_registry_checkin_batch(f->reg, two, 2, T0 + 2));
    assert_ok(authcert_registry_auth_state(f->reg, "agent-1", &bound, &e, &c));
    assert_int_equal(c, 40);
    assert_status(authcert_registry_auth_state(f->reg, "nobody", &bound, &e, &c),
                  AUTHCERT_E_NOTFOUND);
}

static void test_rotate_and_forget_never_bring_an_old_epoch_back(void **state)
{
    fixture *f = *state;
    authcert_enroll_request r = req("agent-1", PIN_A, SPKI_A);
    authcert_enroll_request again = req("agent-1", PIN_C, SPKI_C);
    authcert_agent_identity *id;
    uint64_t epoch = 0;
    bool advanced;

    assert_ok(authcert_registry_bind_key(f->reg, &r, false, T0, &epoch));
    assert_ok(authcert_registry_auth_advance(f->reg, "agent-1", 1, 50, &advanced));
    assert_status(authcert_registry_rotate_key(f->reg, "agent-1", PIN_B, PIN_C, SPKI_C, T0,
                                               &epoch), AUTHCERT_E_POLICY);
    assert_ok(authcert_registry_rotate_key(f->reg, "agent-1", PIN_A, PIN_B, SPKI_B, T0 + 1,
                                           &epoch));
    assert_int_equal(epoch, 2);
    id = identity(f->reg, "agent-1");
    assert_string_equal(id->key_pin, PIN_B);
    assert_int_equal(id->mac_counter, 0); /* a new epoch starts its counter again */
    authcert_agent_identity_free(id);
    assert_status(authcert_registry_rotate_key(f->reg, "ghost", PIN_A, PIN_B, SPKI_B, T0, &epoch),
                  AUTHCERT_E_POLICY);

    assert_ok(authcert_registry_forget(f->reg, "agent-1"));
    assert_status(authcert_registry_forget(f->reg, "ghost"), AUTHCERT_E_NOTFOUND);
    id = identity(f->reg, "agent-1");
    assert_string_equal(id->key_pin, "");
    assert_string_equal(id->key_spki, "");
    assert_int_equal(id->key_epoch, 2);
    authcert_agent_identity_free(id);
    assert_ok(authcert_registry_auth_advance(f->reg, "agent-1", 2, 60, &advanced));
    assert_false(advanced); /* not bound: nothing is accepted */
    /* the reinstalled agent binds its new key with the next epoch */
    assert_ok(authcert_registry_bind_key(f->reg, &again, false, T0 + 2, &epoch));
    assert_int_equal(epoch, 3);
}

struct pendings {
    int n;
    char id[4][40];
    bool approved[4];
};

static authcert_status keep_pending(void *ctx, const authcert_enroll_pending *p)
{
    struct pendings *k = ctx;

    if (k->n < 4) {
        snprintf(k->id[k->n], sizeof k->id[k->n], "%s", p->agent_id);
        k->approved[k->n] = p->approved;
    }
    k->n++;
    return AUTHCERT_OK;
}

static void test_pending_requests_cap_approve_and_bind(void **state)
{
    fixture *f = *state;
    authcert_enroll_request a = req("agent-a", PIN_A, SPKI_A);
    authcert_enroll_request a2 = req("agent-a", PIN_B, SPKI_B);
    authcert_enroll_request b = req("agent-b", PIN_C, SPKI_C);
    struct pendings k = { 0 };
    bool approved = true;
    unsigned n = 0;
    uint64_t epoch = 0;

    assert_ok(authcert_registry_pending_add(f->reg, &a, 2, T0, &approved));
    assert_false(approved);
    assert_ok(authcert_registry_pending_add(f->reg, &a, 2, T0 + 1, &approved)); /* refresh */
    assert_ok(authcert_registry_pending_add(f->reg, &a2, 2, T0 + 2, &approved));
    assert_status(authcert_registry_pending_add(f->reg, &b, 2, T0 + 3, &approved),
                  AUTHCERT_E_BUSY); /* the cap */
    assert_ok(authcert_registry_foreach_pending(f->reg, keep_pending, &k));
    assert_int_equal(k.n, 2);

    assert_status(authcert_registry_pending_approve(f->reg, "agent-b", NULL, &n),
                  AUTHCERT_E_NOTFOUND);
    assert_status(authcert_registry_pending_approve(f->reg, "agent-a", NULL, &n),
                  AUTHCERT_E_USAGE); /* two keys: say which */
    assert_non_null(strstr(authcert_detail(), PIN_A));
    assert_non_null(strstr(authcert_detail(), PIN_B));
    assert_ok(authcert_registry_pending_approve(f->reg, "agent-a", PIN_A, &n));
    assert_int_equal(n, 1);
    assert_ok(authcert_registry_pending_add(f->reg, &a2, 2, T0 + 4, &approved));
    assert_false(approved); /* the other key was not approved */
    assert_ok(authcert_registry_pending_add(f->reg, &a, 2, T0 + 4, &approved));
    assert_true(approved);
    assert_ok(authcert_registry_bind_key(f->reg, &a, true, T0 + 4, &epoch));
    assert_int_equal(epoch, 1);
    k.n = 0;
    assert_ok(authcert_registry_foreach_pending(f->reg, keep_pending, &k));
    assert_int_equal(k.n, 0); /* the bind dropped the id's requests */
}

static void test_bounds_refused(void **state)
{
    fixture *f = *state;
    authcert_enroll_request r = req("*", PIN_A, SPKI_A);
    uint64_t epoch = 0;

    assert_status(authcert_registry_bind_key(f->reg, &r, false, T0, &epoch), AUTHCERT_E_USAGE);
    r = req("agent-1", "sha256//short", SPKI_A);
    assert_status(authcert_registry_bind_key(f->reg, &r, false, T0, &epoch), AUTHCERT_E_USAGE);
    r = req("agent-1", PIN_A, "not base64url!");
    assert_status(authcert_registry_bind_key(f->reg, &r, false, T0, &epoch), AUTHCERT_E_USAGE);
    r = req("agent-1", PIN_A, SPKI_A);
    assert_status(authcert_registry_enroll_with_token(f->reg, "t", "ABCD", &r, T0, &epoch),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_registry_get_identity(f->reg, "agent-1",
                                                 &(authcert_agent_identity *){ NULL }),
                  AUTHCERT_E_NOTFOUND);
}

/* --migrate-registry carries identities, tokens and pending requests. */
static void test_copy_keeps_identities(void **state)
{
    fixture *f = *state;
    authcert_enroll_request r = req("agent-1", PIN_A, SPKI_A);
    authcert_enroll_request p = req("agent-2", PIN_B, SPKI_B);
    authcert_registry *dst = NULL;
    authcert_agent_identity *id;
    struct tokens k = { 0 };
    struct pendings pk = { 0 };
    uint64_t epoch = 0;
    bool advanced, approved;
    char *to;

    assert_ok(authcert_registry_token_add(f->reg, "t", HASH_1, 2, 0, NULL, T0));
    assert_ok(authcert_registry_enroll_with_token(f->reg, "t", HASH_1, &r, T0, &epoch));
    assert_ok(authcert_registry_auth_advance(f->reg, "agent-1", 1, 77, &advanced));
    assert_ok(authcert_registry_pending_add(f->reg, &p, 10, T0, &approved));
    authcert_registry_close(f->reg);
    f->reg = NULL;

    /* from either backend into a SQLite file */
    assert_true(asprintf(&to, "%s/copy.db", f->dir) > 0);
    authcert_registry_copy_stats st = { 0 };
    assert_ok(authcert_registry_copy(f->path, to, &st));
    assert_int_equal(st.agents, 1);
    assert_int_equal(st.tokens, 1);
    assert_int_equal(st.pending, 1);
    assert_ok(authcert_registry_open(to, &dst));
    id = identity(dst, "agent-1");
    assert_string_equal(id->key_pin, PIN_A);
    assert_string_equal(id->key_spki, SPKI_A);
    assert_int_equal(id->key_epoch, 1);
    assert_int_equal(id->mac_counter, 77);
    assert_false(id->known_before);
    authcert_agent_identity_free(id);
    assert_ok(authcert_registry_foreach_token(dst, keep_token, &k));
    assert_int_equal(k.n, 1);
    assert_int_equal(k.t[0].uses, 1);
    assert_ok(authcert_registry_foreach_pending(dst, keep_pending, &pk));
    assert_int_equal(pk.n, 1);
    assert_string_equal(pk.id[0], "agent-2");
    authcert_registry_close(dst);
    assert_ok(authcert_registry_open(f->path, &f->reg));
    free(to);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_open_binds_a_new_id_and_the_same_key_again),
        T(test_another_key_for_a_bound_id_is_a_clone_and_recorded),
        T(test_a_known_id_needs_approval_or_its_own_token),
        T(test_token_uses_expiry_revocation_and_wrong_secret),
        T(test_a_clone_with_a_token_takes_no_use),
        T(test_counter_compare_and_set),
        T(test_rotate_and_forget_never_bring_an_old_epoch_back),
        T(test_pending_requests_cap_approve_and_bind),
        T(test_bounds_refused),
        T(test_copy_keeps_identities),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
