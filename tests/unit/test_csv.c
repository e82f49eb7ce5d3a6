/* The CSV writer and the mismatch list, checked byte for byte and by
 * Python's csv module (a parser nobody here wrote). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "authcert/csv.h"
#include "authcert/mismatch.h"
#include "authcert/registry.h"
#include "testlib.h"

#define TP_CUR "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define TP_OLD "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define TP_REV "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define NOON 1795608000 /* 2026-11-25T12:00:00Z */

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = testlib_tmpdir("csv");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testlib_rmrf(dir);
    free(dir);
    return 0;
}

static char *path_in(const char *name)
{
    char *p;

    if (asprintf(&p, "%s/%s", dir, name) < 0)
        abort();
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Parse csv_path with Python's csv module; the rows as a JSON array of arrays. */
static json_t *python_parse(const char *csv_path)
{
    char *json_path = path_in("parsed.json");
    json_error_t err;
    json_t *rows;

    assert_int_equal(testlib_sh("python3 -c 'import csv,json,sys\n"
                                "with open(sys.argv[1], newline=\"\") as f:\n"
                                "    rows = list(csv.reader(f, strict=True))\n"
                                "json.dump(rows, open(sys.argv[2], \"w\"))' '%s' '%s'",
                                csv_path, json_path), 0);
    rows = json_load_file(json_path, 0, &err);
    assert_non_null(rows);
    free(json_path);
    return rows;
}

static const char *const tricky[][4] = {
    { "plain", "a,b", "say \"hi\"", "" },
    { "line\nbreak", "cr\rhere", "crlf\r\nend", "\"" },
    { " spaced ", "tab\there", "caf\xc3\xa9", "=1+1" },
};

static void write_tricky(authcert_csv *w)
{
    for (size_t r = 0; r < 3; r++) {
        for (size_t c = 0; c < 4; c++)
            assert_ok(authcert_csv_field_str(w, tricky[r][c]));
        assert_ok(authcert_csv_end_row(w));
    }
}

static void test_quoting_exact_bytes(void **state)
{
    (void)state;
    char *p = path_in("tricky.csv");
    FILE *f = fopen(p, "wb");
    authcert_csv *w = NULL;
    size_t len;
    char *got;
    const char want[] =
        "plain,\"a,b\",\"say \"\"hi\"\"\",\r\n"
        "\"line\nbreak\",\"cr\rhere\",\"crlf\r\nend\",\"\"\"\"\r\n"
        " spaced ,tab\there,caf\xc3\xa9,=1+1\r\n";

    assert_ok(authcert_csv_new_file(f, 0, &w));
    write_tricky(w);
    assert_int_equal(authcert_csv_rows(w), 3);
    assert_ok(authcert_csv_finish(w));
    fclose(f);
    got = slurp(p, &len);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(got, want, len);

    /* Python reads back exactly the fields written. */
    json_t *rows = python_parse(p);
    assert_int_equal(json_array_size(rows), 3);
    for (size_t r = 0; r < 3; r++)
        for (size_t c = 0; c < 4; c++)
            assert_string_equal(json_string_value(json_array_get(json_array_get(rows, r), c)),
                                tricky[r][c]);
    json_decref(rows);
    free(got);
    free(p);
}

static void test_fd_writer_and_formula_flag(void **state)
{
    (void)state;
    char *p = path_in("fd.csv");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    authcert_csv *w = NULL;
    size_t len;
    char *got;
    const char want[] = "'=SUM(A1),'+1,'-2,'@x,'\tt,ok-=,\"'=\"\"q\"\",\"\r\n";

    assert_true(fd >= 0);
    assert_ok(authcert_csv_new_fd(fd, AUTHCERT_CSV_NEUTRALIZE_FORMULAS, &w));
    const char *fields[] = { "=SUM(A1)", "+1", "-2", "@x", "\tt", "ok-=", "=\"q\"," };
    for (size_t i = 0; i < 7; i++)
        assert_ok(authcert_csv_field_str(w, fields[i]));
    assert_ok(authcert_csv_end_row(w));
    assert_ok(authcert_csv_finish(w));
    close(fd);
    got = slurp(p, &len);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(got, want, len);
    free(got);
    free(p);

    assert_status(authcert_csv_new_fd(-1, 0, &w), AUTHCERT_E_USAGE);
    assert_status(authcert_csv_new_file(stdout, 1 << 7, &w), AUTHCERT_E_USAGE);
}

static void test_write_failure_is_io(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    int fd = open("/dev/full", O_WRONLY);
    authcert_csv *w = NULL;
    char big[1000];

    assert_non_null(f);
    assert_true(fd >= 0);
    assert_ok(authcert_csv_new_file(f, 0, &w));
    write_tricky(w);
    assert_status(authcert_csv_finish(w), AUTHCERT_E_IO);
    fclose(f);

    /* Through an fd the buffer fills and the failure sticks. */
    memset(big, 'x', sizeof big);
    assert_ok(authcert_csv_new_fd(fd, 0, &w));
    authcert_status st = AUTHCERT_OK;
    for (int i = 0; i < 200 && st == AUTHCERT_OK; i++)
        st = authcert_csv_field(w, big, sizeof big);
    assert_int_equal(st, AUTHCERT_E_IO);
    assert_status(authcert_csv_end_row(w), AUTHCERT_E_IO);
    authcert_csv_free(w);
    close(fd);
}

typedef struct classifier {
    int calls;
} classifier;

static authcert_mismatch_reason classify(void *ctx, const char *tp)
{
    classifier *c = ctx;

    c->calls++;
    if (strcmp(tp, TP_OLD) == 0)
        return AUTHCERT_MISMATCH_EXPIRED;
    if (strcmp(tp, TP_REV) == 0)
        return AUTHCERT_MISMATCH_REVOKED;
    return AUTHCERT_MISMATCH_UNKNOWN;
}

static authcert_registry *small_registry(void)
{
    char *db = path_in("small.db");
    authcert_registry *reg = NULL;
    authcert_agent_report r[] = {
        { "a-current", "fine", "10.0.0.1", 7443, TP_CUR, "1", NULL, 0, false },
        { "a-expired", "web,01 \"prod\"", "10.0.0.2", 7443, TP_OLD, "1", NULL, 0, false },
        { "a-revoked", "=HYPERLINK(\"http://x\")", "2001:db8::7", 7443, TP_REV, "1", NULL, 0, false },
        { "a-none", "", "10.0.0.4", 7443, NULL, "1", NULL, 0, false },
        { "a-expired-2", "db", "10.0.0.5", 7443, TP_OLD, "1", NULL, 0, false },
    };

    assert_ok(authcert_registry_open(db, &reg));
    assert_ok(authcert_registry_checkin_batch(reg, r, 5, NOON));
    free(db);
    return reg;
}

static void test_mismatch_list_exact_bytes(void **state)
{
    (void)state;
    authcert_registry *reg = small_registry();
    char *p = path_in("mismatch.csv");
    FILE *f = fopen(p, "wb");
    classifier c = { 0 };
    size_t rows = 0, len;
    char *got;
    const char want[] =
        "agent_id,hostname,address,last_seen,reported_thumbprint,reason,current_thumbprint\r\n"
        "a-expired,\"web,01 \"\"prod\"\"\",10.0.0.2,2026-11-25T12:00:00Z," TP_OLD ",expired,"
        TP_CUR "\r\n"
        "a-revoked,\"'=HYPERLINK(\"\"http://x\"\")\",2001:db8::7,2026-11-25T12:00:00Z,"
        TP_REV ",revoked," TP_CUR "\r\n"
        "a-none,,10.0.0.4,2026-11-25T12:00:00Z,,unknown," TP_CUR "\r\n"
        "a-expired-2,db,10.0.0.5,2026-11-25T12:00:00Z," TP_OLD ",expired," TP_CUR "\r\n";

    assert_ok(authcert_mismatch_list_write(reg, TP_CUR, classify, &c, f, &rows));
    fclose(f);
    assert_int_equal(rows, 4);
    assert_int_equal(c.calls, 3); /* once per distinct thumbprint */
    got = slurp(p, &len);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(got, want, len);

    json_t *parsed = python_parse(p);
    assert_int_equal(json_array_size(parsed), 5);
    assert_string_equal(json_string_value(json_array_get(json_array_get(parsed, 1), 1)),
                        "web,01 \"prod\"");
    assert_string_equal(json_string_value(json_array_get(json_array_get(parsed, 3), 4)), "");
    json_decref(parsed);
    free(got);

    /* No current certificate: everyone is listed, current column empty. */
    f = fopen(p, "wb");
    assert_ok(authcert_mismatch_list_write(reg, NULL, NULL, NULL, f, &rows));
    fclose(f);
    assert_int_equal(rows, 5);

    /* A full disk is an I/O error, not a short list passed off as whole. */
    f = fopen("/dev/full", "w");
    rows = 77;
    assert_status(authcert_mismatch_list_write(reg, TP_CUR, classify, &c, f, &rows),
                  AUTHCERT_E_IO);
    assert_int_equal(rows, 0);
    fclose(f);
    authcert_registry_close(reg);
    free(p);
}

static void test_mismatch_list_100k(void **state)
{
    (void)state;
    enum { N = 100000, BATCH = 500 };
    char *db = path_in("big.db"), *p = path_in("big.csv");
    authcert_registry *reg = NULL;
    authcert_agent_report r[BATCH];
    char ids[BATCH][48];
    classifier c = { 0 };
    size_t rows = 0;
    FILE *f;

    assert_ok(authcert_registry_open(db, &reg));
    for (size_t b = 0; b < N / BATCH; b++) {
        for (size_t i = 0; i < BATCH; i++) {
            size_t k = b * BATCH + i;
            snprintf(ids[i], sizeof ids[i], "%08zx-0000-4000-8000-%012zx",
                     (k * 2654435761u) & 0xffffffffu, k);
            r[i] = (authcert_agent_report){ ids[i], "host", "10.1.2.3", 7443,
                                            k % 4 == 0 ? TP_CUR : k % 4 == 1 ? TP_REV : TP_OLD,
                                            "1", NULL, 0, false };
        }
        assert_ok(authcert_registry_checkin_batch(reg, r, BATCH, NOON + (time_t)b));
    }
    f = fopen(p, "wb");
    assert_ok(authcert_mismatch_list_write(reg, TP_CUR, classify, &c, f, &rows));
    fclose(f);
    assert_int_equal(rows, N - N / 4);
    assert_int_equal(c.calls, 2);
    assert_int_equal(testlib_sh("python3 -c 'import csv,sys\n"
                                "rows = list(csv.reader(open(sys.argv[1], newline=\"\")))\n"
                                "assert len(rows) == %d, len(rows)\n"
                                "assert all(len(x) == 7 for x in rows)\n"
                                "assert sum(x[5] == \"revoked\" for x in rows) == %d' '%s'",
                                N - N / 4 + 1, N / 4, p), 0);
    authcert_registry_close(reg);
    free(db);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoting_exact_bytes),
        cmocka_unit_test(test_fd_writer_and_formula_flag),
        cmocka_unit_test(test_write_failure_is_io),
        cmocka_unit_test(test_mismatch_list_exact_bytes),
        cmocka_unit_test(test_mismatch_list_100k),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
