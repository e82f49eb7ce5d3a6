/* Atomic writes: the mode asked for, no half file, no stray temporary. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testlib.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;

    assert_ok(authcert_read_file(path, 1 << 20, &data, &len));
    return (char *)data;
}

static void test_write_atomic_mode_and_replace(void **state)
{
    char *dir = testlib_tmpdir("fsutil"), path[4096];
    struct stat st;
    char *got;

    (void)state;
    snprintf(path, sizeof path, "%s/f", dir);
    umask(0077); /* the mode asked for wins over the umask */
    assert_ok(authcert_write_atomic(path, "one", 3, 0644));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_ok(authcert_write_atomic(path, "two!", 4, 0600));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    got = slurp(path);
    assert_string_equal(got, "two!");
    free(got);
    assert_int_equal(count_entries(dir), 1); /* no temporary left */
    testlib_rmrf(dir);
    free(dir);
}

static void test_missing_or_unusable_directory(void **state)
{
    char *dir = testlib_tmpdir("fsutil"), path[4096];

    (void)state;
    snprintf(path, sizeof path, "%s/no/such/f", dir);
    assert_status(authcert_write_atomic(path, "x", 1, 0600), AUTHCERT_E_IO);
    assert_non_null(strstr(authcert_detail(), "no such directory"));
    /* A path whose parent is a file. */
    snprintf(path, sizeof path, "%s/file", dir);
    assert_ok(authcert_write_atomic(path, "x", 1, 0600));
    snprintf(path, sizeof path, "%s/file/f", dir);
    assert_status(authcert_write_atomic(path, "x", 1, 0600), AUTHCERT_E_IO);
    assert_int_equal(count_entries(dir), 1);
    testlib_rmrf(dir);
    free(dir);
}

static void test_stream_commit_and_abort(void **state)
{
    char *dir = testlib_tmpdir("fsutil"), path[4096];
    authcert_atomic_file *f = NULL;
    char *got;

    (void)state;
    snprintf(path, sizeof path, "%s/list.csv", dir);
    assert_ok(authcert_write_atomic(path, "old\n", 4, 0644));

    /* Until commit a reader sees the old file whole. */
    assert_ok(authcert_atomic_open(path, 0644, &f));
    for (int i = 0; i < 100000; i++)
        fprintf(authcert_atomic_stream(f), "row %d\n", i);
    got = slurp(path);
    assert_string_equal(got, "old\n");
    free(got);
    assert_ok(authcert_atomic_commit(f));
    got = slurp(path);
    assert_true(strncmp(got, "row 0\nrow 1\n", 12) == 0);
    assert_non_null(strstr(got, "row 99999\n"));
    free(got);

    /* Abort leaves the previous file and no temporary. */
    assert_ok(authcert_atomic_open(path, 0644, &f));
    fputs("half", authcert_atomic_stream(f));
    authcert_atomic_abort(f);
    got = slurp(path);
    assert_true(strncmp(got, "row 0\n", 6) == 0);
    free(got);
    assert_int_equal(count_entries(dir), 1);
    testlib_rmrf(dir);
    free(dir);
}

static void test_read_file_limits(void **state)
{
    char *dir = testlib_tmpdir("fsutil"), path[4096];
    uint8_t *data = NULL;
    size_t len = 0;

    (void)state;
    snprintf(path, sizeof path, "%s/big", dir);
    assert_ok(authcert_write_atomic(path, "0123456789", 10, 0600));
    assert_status(authcert_read_file(path, 9, &data, &len), AUTHCERT_E_CORRUPT);
    assert_null(data);
    assert_status(authcert_read_file(dir, 100, &data, &len), AUTHCERT_E_USAGE);
    snprintf(path, sizeof path, "%s/none", dir);
    assert_status(authcert_read_file(path, 100, &data, &len), AUTHCERT_E_NOTFOUND);
    testlib_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic_mode_and_replace),
        cmocka_unit_test(test_missing_or_unusable_directory),
        cmocka_unit_test(test_stream_commit_and_abort),
        cmocka_unit_test(test_read_file_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
