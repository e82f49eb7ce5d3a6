/* The certificate store: states, atomic commits, the lock, refresh, damage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

struct fixture {
    char *dir;   /* the test's temp dir */
    char *store; /* dir/store */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    assert_int_equal(authcert_init(), AUTHCERT_OK);
    f->dir = testlib_tmpdir("store");
    assert_true(asprintf(&f->store, "%s/store", f->dir) > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    testlib_rmrf(f->dir);
    free(f->store);
    free(f->dir);
    free(f);
    authcert_cleanup();
    return 0;
}

static authcert_cert *new_cert(authcert_key_type type)
{
    authcert_cert_params p = { .type = type };
    authcert_cert *c = NULL;

    assert_ok(authcert_cert_generate(&p, &c));
    return c;
}

/* A committed store whose current certificate is returned (caller frees). */
static authcert_cert *make_store(const char *dir)
{
    authcert_store *s = NULL;
    authcert_cert *c = new_cert(AUTHCERT_KEY_P256);

    assert_ok(authcert_store_open(dir, AUTHCERT_STORE_CREATE, &s));
    assert_ok(authcert_store_set_password(s, TESTLIB_PASSWORD));
    assert_ok(authcert_store_make_current(s, c, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_store_commit(s));
    authcert_store_close(s);
    return c;
}

/* Mode of a/b (b may be ""). */
static mode_t mode_of(const char *a, const char *b)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof path, "%s%s", a, b);
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void test_missing_store_is_not_found(void **state)
{
    struct fixture *f = *state;
    authcert_store *s = NULL;

    assert_status(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s),
                  AUTHCERT_E_NOTFOUND);
    assert_null(s);
    /* A writer without CREATE does not make one either. */
    assert_status(authcert_store_open(f->store, AUTHCERT_STORE_WRITE, &s),
                  AUTHCERT_E_NOTFOUND);
    assert_int_not_equal(access(f->store, F_OK), 0);
}

static void test_create_commit_reopen(void **state)
{
    struct fixture *f = *state;
    authcert_store *s = NULL;
    authcert_cert *c = make_store(f->store);
    const authcert_store_entry *cur;

    assert_int_equal(mode_of(f->store, ""), 0700);
    assert_int_equal(mode_of(f->store, "/store.json"), 0600);
    char key[128];
    snprintf(key, sizeof key, "/keys/%s.pem", authcert_cert_thumbprint(c));
    assert_int_equal(mode_of(f->store, key), 0600);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s));
    assert_int_equal(authcert_store_count(s), 1);
    cur = authcert_store_current(s);
    assert_non_null(cur);
    assert_string_equal(cur->thumbprint, authcert_cert_thumbprint(c));
    assert_true(cur->exportable);
    assert_true(authcert_cert_has_key(cur->cert));
    assert_int_equal(authcert_store_generation(s), 1);
    assert_true(authcert_store_has_password(s));
    authcert_store_close(s);
    authcert_cert_free(c);
}

static void test_replace_keeps_old_as_expired_or_revoked(void **state)
{
    struct fixture *f = *state;
    authcert_store *s = NULL;
    authcert_cert *a = make_store(f->store);
    authcert_cert *b = new_cert(AUTHCERT_KEY_ED25519);
    authcert_cert *c = new_cert(AUTHCERT_KEY_RSA2048);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_WRITE, &s));
    assert_ok(authcert_store_make_current(s, b, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_store_commit(s));
    assert_ok(authcert_store_make_current(s, c, true, AUTHCERT_STATE_REVOKED));
    assert_ok(authcert_store_commit(s));
    authcert_store_close(s);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s));
    assert_int_equal(authcert_store_count(s), 3);
    assert_string_equal(authcert_store_current(s)->thumbprint, authcert_cert_thumbprint(c));
    assert_int_equal(authcert_store_find(s, authcert_cert_thumbprint(a))->state,
                     AUTHCERT_STATE_EXPIRED);
    assert_int_equal(authcert_store_find(s, authcert_cert_thumbprint(b))->state,
                     AUTHCERT_STATE_REVOKED);
    assert_true(authcert_store_find(s, authcert_cert_thumbprint(b))->retired > 0);
    /* Every key is still there, with its private key. */
    for (size_t i = 0; i < authcert_store_count(s); i++)
        assert_true(authcert_cert_has_key(authcert_store_entry_at(s, i)->cert));
    assert_int_equal(authcert_store_generation(s), 3);
    authcert_store_close(s);
    authcert_cert_free(a);
    authcert_cert_free(b);
    authcert_cert_free(c);
}

static void test_revoked_never_usable_again(void **state)
{
    struct fixture *f = *state;
    authcert_store *s = NULL;
    authcert_cert *a = make_store(f->store);
    authcert_cert *b = new_cert(AUTHCERT_KEY_P256);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_WRITE, &s));
    assert_ok(authcert_store_make_current(s, b, true, AUTHCERT_STATE_REVOKED));
    assert_status(authcert_store_make_current(s, a, true, AUTHCERT_STATE_EXPIRED),
                  AUTHCERT_E_POLICY);
    /* Adding it again as expired does not relax it. */
    assert_ok(authcert_store_add(s, a, AUTHCERT_STATE_EXPIRED, true));
    assert_int_equal(authcert_store_find(s, authcert_cert_thumbprint(a))->state,
                     AUTHCERT_STATE_REVOKED);
    /* The current one cannot be revoked in place. */
    assert_status(authcert_store_revoke(s, authcert_cert_thumbprint(b)), AUTHCERT_E_POLICY);
    assert_status(authcert_store_revoke(s, "00"), AUTHCERT_E_NOTFOUND);
    authcert_store_close(s);
    authcert_cert_free(a);
    authcert_cert_free(b);
}

static void test_add_expired_and_revoke(void **state)
{
    struct fixture *f = *state;
    authcert_store *s = NULL;
    authcert_cert *a = make_store(f->store);
    authcert_cert *old = new_cert(AUTHCERT_KEY_P256);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_WRITE, &s));
    assert_status(authcert_store_add(s, old, AUTHCERT_STATE_CURRENT, true), AUTHCERT_E_USAGE);
    assert_ok(authcert_store_add(s, old, AUTHCERT_STATE_EXPIRED, false));
    assert_ok(authcert_store_commit(s));
    assert_string_equal(authcert_store_current(s)->thumbprint, authcert_cert_thumbprint(a));
    assert_ok(authcert_store_revoke(s, authcert_cert_thumbprint(old)));
    assert_ok(authcert_store_commit(s));
    authcert_store_close(s);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s));
    const authcert_store_entry *e = authcert_store_find(s, authcert_cert_thumbprint(old));
    assert_non_null(e);
    assert_int_equal(e->state, AUTHCERT_STATE_REVOKED);
    assert_false(e->exportable);
    authcert_store_close(s);
    authcert_cert_free(a);
    authcert_cert_free(old);
}

static void test_uncommitted_changes_are_dropped(void **state)
{
    struct fixture *f = *state;
    authcert_store *s = NULL;
    authcert_cert *a = make_store(f->store);
    authcert_cert *b = new_cert(AUTHCERT_KEY_P256);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_WRITE, &s));
    assert_ok(authcert_store_make_current(s, b, true, AUTHCERT_STATE_EXPIRED));
    authcert_store_close(s); /* no commit */

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s));
    assert_int_equal(authcert_store_count(s), 1);
    assert_string_equal(authcert_store_current(s)->thumbprint, authcert_cert_thumbprint(a));
    authcert_store_close(s);
    authcert_cert_free(a);
    authcert_cert_free(b);
}

static void test_second_writer_is_busy_at_once(void **state)
{
    struct fixture *f = *state;
    authcert_store *w1 = NULL, *w2 = NULL, *r = NULL;
    authcert_cert *a = make_store(f->store);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_WRITE, &w1));
    assert_status(authcert_store_open(f->store, AUTHCERT_STORE_WRITE, &w2), AUTHCERT_E_BUSY);
    assert_null(w2);
    assert_non_null(strstr(authcert_detail(), "busy"));
    /* Readers are not held up by a writer. */
    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_READ, &r));
    authcert_store_close(r);
    authcert_store_close(w1);
    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_WRITE, &w2));
    authcert_store_close(w2);
    authcert_cert_free(a);
}

static void test_read_only_handle_refuses_changes(void **state)
{
    struct fixture *f = *state;
    authcert_store *s = NULL;
    authcert_cert *a = make_store(f->store);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s));
    assert_status(authcert_store_make_current(s, a, true, AUTHCERT_STATE_EXPIRED),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_store_commit(s), AUTHCERT_E_USAGE);
    authcert_store_close(s);
    authcert_cert_free(a);
}

static void test_password(void **state)
{
    struct fixture *f = *state;
    authcert_store *s = NULL;

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_CREATE, &s));
    assert_false(authcert_store_has_password(s));
    assert_status(authcert_store_check_password(s, TESTLIB_PASSWORD), AUTHCERT_E_NOTFOUND);
    assert_ok(authcert_store_set_password(s, TESTLIB_PASSWORD));
    assert_ok(authcert_store_commit(s));
    authcert_store_close(s);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s));
    assert_ok(authcert_store_check_password(s, TESTLIB_PASSWORD));
    assert_status(authcert_store_check_password(s, TESTLIB_PASSWORD "x"), AUTHCERT_E_AUTH);
    assert_status(authcert_store_check_password(s, ""), AUTHCERT_E_AUTH);
    authcert_store_close(s);
    /* The password itself is nowhere in the store. */
    assert_int_not_equal(testlib_sh("grep -rqF '%s' '%s'", TESTLIB_PASSWORD, f->store), 0);
}

static void test_refresh_sees_a_replacement(void **state)
{
    struct fixture *f = *state;
    authcert_store *reader = NULL, *w = NULL;
    authcert_cert *a = make_store(f->store);
    authcert_cert *b = new_cert(AUTHCERT_KEY_P256);
    bool changed = true;

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_READ, &reader));
    assert_ok(authcert_store_refresh(reader, &changed));
    assert_false(changed);

    assert_ok(authcert_store_open(f->store, AUTHCERT_STORE_WRITE, &w));
    assert_ok(authcert_store_make_current(w, b, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_store_commit(w));
    authcert_store_close(w);

    assert_ok(authcert_store_refresh(reader, &changed));
    assert_true(changed);
    assert_string_equal(authcert_store_current(reader)->thumbprint,
                        authcert_cert_thumbprint(b));
    assert_int_equal(authcert_store_find(reader, authcert_cert_thumbprint(a))->state,
                     AUTHCERT_STATE_EXPIRED);
    assert_int_equal(authcert_store_generation(reader), 2);
    authcert_store_close(reader);
    authcert_cert_free(a);
    authcert_cert_free(b);
}

static void test_damage_is_reported(void **state)
{
    struct fixture *f = *state;
    authcert_store *s = NULL;
    authcert_cert *a = make_store(f->store);
    const char *t = authcert_cert_thumbprint(a);

    /* A key file that holds another certificate. */
    assert_int_equal(testlib_sh("cd '%s' && sed -i 's/A/B/' keys/%s.pem", f->store, t), 0);
    assert_status(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s), AUTHCERT_E_CORRUPT);

    /* A missing key file. */
    assert_int_equal(testlib_sh("rm '%s/keys/%s.pem'", f->store, t), 0);
    assert_status(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "missing"));

    /* A damaged index, and one with a duplicated key (the last would win). */
    assert_int_equal(testlib_sh("echo '{\"format\":1,' > '%s/store.json'", f->store), 0);
    assert_status(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s), AUTHCERT_E_CORRUPT);
    assert_int_equal(testlib_sh("echo '{\"format\":1,\"format\":1,\"generation\":1,"
                                "\"certificates\":[]}' > '%s/store.json'", f->store), 0);
    assert_status(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s), AUTHCERT_E_CORRUPT);
    assert_int_equal(testlib_sh("echo '{\"format\":2,\"generation\":1,"
                                "\"certificates\":[]}' > '%s/store.json'", f->store), 0);
    assert_status(authcert_store_open(f->store, AUTHCERT_STORE_READ, &s), AUTHCERT_E_CORRUPT);
    assert_null(s);
    authcert_cert_free(a);
}

/*
 * Run authcert_store_open(dir) as nobody, in a child so that the test keeps
 * its root; the child's exit status is the status it got.
 */
static authcert_status open_as_nobody(const char *dir, authcert_cert *inherited)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child owns a copy of the parent's heap: it frees what it
         * inherited, or memcheck counts it (dead here, so no longer in
         * any register or stack slot at -O2) as a definite leak. */
        authcert_store *s = NULL;
        authcert_status st = AUTHCERT_E_INTERNAL;
        authcert_cert_free(inherited);
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        st = authcert_store_open(dir, AUTHCERT_STORE_READ, &s);
        if (st != AUTHCERT_OK) /* the detail, for the parent to check */
            fprintf(stderr, "%s\n", authcert_detail());
        authcert_store_close(s);
        _exit(st);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return (authcert_status)WEXITSTATUS(status);
}

/*
 * A folder nobody can reach whatever the checkout's place: the build tree
 * may sit in /root or a mktemp -d (0700), which nobody cannot pass. /tmp
 * is world-searchable on every Linux; the folder is the test's own.
 */
static char *reachable_dir(void)
{
    char *d = strdup("/tmp/authcert-test-store.XXXXXX");

    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    assert_int_equal(chmod(d, 0755), 0);
    return d;
}

static void test_not_an_administrator(void **state)
{
    struct fixture *f = *state;
    char *dir, *store;
    authcert_cert *a;

    (void)f;
    if (geteuid() != 0)
        skip();
    dir = reachable_dir();
    assert_true(asprintf(&store, "%s/store", dir) > 0);
    a = make_store(store);
    assert_int_equal(chmod(store, 0755), 0); /* nobody may even read the folder */
    assert_int_equal(open_as_nobody(store, a), AUTHCERT_E_PERM);
    authcert_cert_free(a);
    testlib_rmrf(dir);
    free(store);
    free(dir);
}

/*
 * A store nobody cannot even reach (a 0700 folder above it) is "not
 * permitted" too, not an I/O error, and the detail names the folder that
 * stops the caller, so that the message says what to fix.
 */
static void test_unreachable_store_is_not_permitted(void **state)
{
    struct fixture *f = *state;
    char *dir, *walled, *store;
    authcert_cert *a;
    int pipefd[2], saved;
    char detail[1024] = "";
    ssize_t n;

    (void)f;
    if (geteuid() != 0)
        skip();
    dir = reachable_dir();
    assert_true(asprintf(&walled, "%s/walled", dir) > 0);
    assert_true(asprintf(&store, "%s/walled/store", dir) > 0);
    assert_int_equal(mkdir(walled, 0700), 0);
    a = make_store(store);
    assert_int_equal(chmod(store, 0755), 0);
    /* The child's detail line comes back through a pipe on its stderr. */
    assert_int_equal(pipe(pipefd), 0);
    saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(pipefd[1], 2), 2);
    close(pipefd[1]);
    assert_int_equal(open_as_nobody(store, a), AUTHCERT_E_PERM);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    n = read(pipefd[0], detail, sizeof detail - 1);
    close(pipefd[0]);
    assert_true(n > 0);
    detail[n] = '\0';
    if (strstr(detail, walled) == NULL)
        fail_msg("the detail should name %s: %s", walled, detail);
    /* Root still reaches it: the refusal is about the caller, not the store. */
    {
        authcert_store *s = NULL;
        assert_ok(authcert_store_open(store, AUTHCERT_STORE_READ, &s));
        authcert_store_close(s);
    }
    authcert_cert_free(a);
    testlib_rmrf(dir);
    free(store);
    free(walled);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_store_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_commit_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_keeps_old_as_expired_or_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_never_usable_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_expired_and_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommitted_changes_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_writer_is_busy_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_handle_refuses_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_sees_a_replacement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_an_administrator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_store_is_not_permitted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
