/* The daemons' `key = value` files: what is read, what is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/config.h"
#include "testlib.h"

struct seen {
    char text[1024];
    const char *stop_at; /* key whose callback refuses */
};

static authcert_status collect(void *ctx, const char *key, const char *value, const char *where)
{
    struct seen *s = ctx;
    size_t n = strlen(s->text);

    if (s->stop_at != NULL && strcmp(key, s->stop_at) == 0)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: %s refused", where, key);
    snprintf(s->text + n, sizeof s->text - n, "[%s=%s]", key, value);
    return AUTHCERT_OK;
}

static char *write_file(const char *dir, const char *text)
{
    char *path;

    assert_true(asprintf(&path, "%s/conf", dir) > 0);
    assert_ok(authcert_write_atomic(path, text, strlen(text), 0600));
    return path;
}

static void test_reads_settings_in_order(void **state)
{
    char *dir = testlib_tmpdir("config");
    char *path = write_file(dir, "# a comment\n\n  listen = 127.0.0.1:7700  \r\n"
                                 "store=/var/lib/authcert\ninterval =\t30\nempty =\n"
                                 "url = http://x/?a=b\n");
    struct seen s = { .text = "" };

    (void)state;
    assert_ok(authcert_config_read(path, collect, &s));
    assert_string_equal(s.text, "[listen=127.0.0.1:7700][store=/var/lib/authcert]"
                                "[interval=30][empty=][url=http://x/?a=b]");
    testlib_rmrf(dir);
    free(path);
    free(dir);
}

static void test_refusals_name_the_line(void **state)
{
    char *dir = testlib_tmpdir("config");
    char *path = write_file(dir, "a = 1\nthis line has no equals sign\n");
    struct seen s = { .text = "" };
    char *longline = malloc(AUTHCERT_CONFIG_LINE_MAX + 10);

    (void)state;
    assert_status(authcert_config_read(path, collect, &s), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "conf:2: want key = value"));
    free(path);

    path = write_file(dir, "= value\n");
    assert_status(authcert_config_read(path, collect, &s), AUTHCERT_E_CORRUPT);
    free(path);

    /* The callback's refusal comes back as it was, with its line. */
    path = write_file(dir, "a = 1\nb = 2\nc = 3\n");
    s = (struct seen){ .text = "", .stop_at = "b" };
    assert_status(authcert_config_read(path, collect, &s), AUTHCERT_E_USAGE);
    assert_non_null(strstr(authcert_detail(), "conf:2: b refused"));
    assert_string_equal(s.text, "[a=1]");
    free(path);

    memset(longline, 'x', AUTHCERT_CONFIG_LINE_MAX + 5);
    memcpy(longline, "k = ", 4);
    longline[AUTHCERT_CONFIG_LINE_MAX + 5] = '\0';
    path = write_file(dir, longline);
    assert_status(authcert_config_read(path, collect, &s), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "longer than"));
    free(path);

    assert_status(authcert_config_read("/nonexistent/conf", collect, &s), AUTHCERT_E_NOTFOUND);
    free(longline);
    testlib_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_settings_in_order),
        cmocka_unit_test(test_refusals_name_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
