/* The bodies agents send (protocol.h): check-in and result, every refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/protocol.h"
#include "testlib.h"

#define TP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PIN "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs="

static authcert_status checkin(const char *body, authcert_agent_message **m)
{
    return authcert_checkin_parse(body, strlen(body), "192.0.2.9", m);
}

static void test_a_full_check_in(void **state)
{
    authcert_agent_message *m = NULL;
    const char *body =
        "{\"agent_id\":\"5f0c\",\"hostname\":\"web-17\",\"port\":7701,\"version\":\"0.1.0\","
        "\"thumbprint\":\"" TP "\",\"future\":[1,2],\"key_pin\":\"" PIN "\","
        "\"results\":[{\"delivery\":42,\"status\":\"ok\",\"exit\":0,\"output\":\"done\"},"
        "{\"delivery\":7,\"status\":\"failed\"}]}";

    (void)state;
    assert_ok(checkin(body, &m));
    assert_string_equal(m->report.agent_id, "5f0c");
    assert_string_equal(m->report.hostname, "web-17");
    assert_string_equal(m->report.address, "192.0.2.9");
    assert_int_equal(m->report.port, 7701);
    assert_string_equal(m->report.version, "0.1.0");
    assert_string_equal(m->report.thumbprint, TP);
    assert_string_equal(m->report.key_pin, PIN);
    assert_int_equal(m->nresults, 2);
    assert_int_equal(m->results[0].did, 42);
    assert_true(m->results[0].ok);
    assert_string_equal(m->results[0].result_json,
                        "{\"status\":\"ok\",\"exit\":0,\"output\":\"done\"}");
    assert_int_equal(m->results[1].did, 7);
    assert_false(m->results[1].ok);
    assert_string_equal(m->results[1].result_json, "{\"status\":\"failed\"}");
    authcert_agent_message_free(m);

    /* The smallest: no version, no results, no certificate yet. */
    assert_ok(checkin("{\"agent_id\":\"a\",\"hostname\":\"\",\"port\":0,\"thumbprint\":\"\"}",
                      &m));
    assert_null(m->report.version);
    assert_null(m->report.key_pin); /* an agent without a key of its own */
    assert_int_equal(m->nresults, 0);
    assert_int_equal(m->report.port, 0);
    authcert_agent_message_free(m);
}

static void test_bad_check_ins_are_refused(void **state)
{
    static const struct { const char *body; authcert_status want; const char *detail; } bad[] = {
        { "", AUTHCERT_E_CORRUPT, "not a JSON object" },
        { "{\"agent_id\":", AUTHCERT_E_CORRUPT, "not a JSON object" },
        { "[1]", AUTHCERT_E_CORRUPT, "another JSON value" },
        { "{\"agent_id\":\"a\",\"agent_id\":\"b\",\"hostname\":\"h\",\"port\":1,"
          "\"thumbprint\":\"\"}", AUTHCERT_E_CORRUPT, "duplicate" },
        { "{\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\"}", AUTHCERT_E_USAGE, "agent_id" },
        { "{\"agent_id\":1,\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\"}",
          AUTHCERT_E_USAGE, "agent_id" },
        { "{\"agent_id\":\"a b\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\"}",
          AUTHCERT_E_USAGE, "agent id" },
        { "{\"agent_id\":\"a\\u0000b\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\"}",
          AUTHCERT_E_CORRUPT, "NUL" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\\u0007\",\"port\":1,\"thumbprint\":\"\"}",
          AUTHCERT_E_USAGE, "hostname" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":70000,\"thumbprint\":\"\"}",
          AUTHCERT_E_USAGE, "port" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":\"1\",\"thumbprint\":\"\"}",
          AUTHCERT_E_USAGE, "port" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":-1,\"thumbprint\":\"\"}",
          AUTHCERT_E_USAGE, "port" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"XYZ\"}",
          AUTHCERT_E_USAGE, "thumbprint" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1}", AUTHCERT_E_USAGE, "thumbprint" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"version\":7}", AUTHCERT_E_USAGE, "version" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"results\":{}}", AUTHCERT_E_USAGE, "results" },
        /* key_pin: a string, and a well-formed pin (or ""). */
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"key_pin\":7}", AUTHCERT_E_USAGE, "key_pin" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"key_pin\":null}", AUTHCERT_E_USAGE, "key_pin" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"key_pin\":\"" PIN "A\"}", AUTHCERT_E_USAGE, "key_pin" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"key_pin\":\"sha256//" TP "\"}", AUTHCERT_E_USAGE, "key_pin" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"key_pin\":\"sha256//ypeBEsobvcr6wjGzmiPcTaeG7_gUfE5yuYB3ha-uSLs=\"}",
          AUTHCERT_E_USAGE, "key_pin" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"key_pin\":\"ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=\"}",
          AUTHCERT_E_USAGE, "key_pin" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"results\":[{\"delivery\":0,\"status\":\"ok\"}]}", AUTHCERT_E_USAGE, "results[0]" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"results\":[{\"delivery\":1,\"status\":\"ok\"},{\"delivery\":2,\"status\":\"meh\"}]}",
          AUTHCERT_E_USAGE, "results[1]" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"results\":[{\"delivery\":1,\"status\":\"ok\",\"exit\":\"0\"}]}",
          AUTHCERT_E_USAGE, "exit" },
        { "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\","
          "\"results\":[7]}", AUTHCERT_E_USAGE, "results[0]" },
    };
    authcert_agent_message *m = (void *)1;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        authcert_status st = checkin(bad[i].body, &m);
        if (st != bad[i].want || strstr(authcert_detail(), bad[i].detail) == NULL)
            fail_msg("case %zu: status %d detail \"%s\"", i, st, authcert_detail());
        assert_null(m);
    }
}

/* key_pin: optional; "" is none; a long one is refused, not cut. */
static void test_key_pin_member(void **state)
{
    authcert_agent_message *m = NULL;
    char body[4096];
    char pin[2001];

    (void)state;
    assert_ok(checkin("{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,"
                      "\"thumbprint\":\"\",\"key_pin\":\"\"}", &m));
    assert_string_equal(m->report.key_pin, "");
    authcert_agent_message_free(m);
    m = NULL;
    memcpy(pin, PIN, strlen(PIN));
    memset(pin + strlen(PIN), 'A', sizeof pin - 1 - strlen(PIN));
    pin[sizeof pin - 1] = '\0';
    snprintf(body, sizeof body, "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,"
             "\"thumbprint\":\"\",\"key_pin\":\"%s\"}", pin);
    assert_status(checkin(body, &m), AUTHCERT_E_USAGE);
    assert_non_null(strstr(authcert_detail(), "key_pin"));
    assert_null(m);
}

static void test_size_caps(void **state)
{
    authcert_agent_message *m = NULL;
    size_t n = AUTHCERT_CHECKIN_BODY_MAX + 1;
    char *big = malloc(n + 1), *many = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    memset(big, ' ', n);
    big[n] = '\0';
    assert_status(authcert_checkin_parse(big, n, "x", &m), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "larger than"));
    free(big);

    /* 65 results are one too many. */
    f = open_memstream(&many, &len);
    fputs("{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"\",\"results\":[", f);
    for (int i = 1; i <= 65; i++)
        fprintf(f, "%s{\"delivery\":%d,\"status\":\"ok\"}", i > 1 ? "," : "", i);
    fputs("]}", f);
    fclose(f);
    assert_status(authcert_checkin_parse(many, len, "x", &m), AUTHCERT_E_USAGE);
    assert_non_null(strstr(authcert_detail(), "at most 64"));
    free(many);
}

static authcert_status result(const char *body, authcert_agent_message **m)
{
    return authcert_result_parse(body, strlen(body), m);
}

static void test_result_bodies(void **state)
{
    authcert_agent_message *m = NULL;
    const char *ok = "{\"agent_id\":\"a-1\",\"delivery\":9,\"status\":\"ok\",\"exit\":0,"
                     "\"output\":\"x\",\"jti\":\"j\"}";

    (void)state;
    assert_ok(authcert_result_parse(ok, strlen(ok), &m));
    assert_string_equal(m->report.agent_id, "a-1");
    assert_int_equal(m->nresults, 1);
    assert_int_equal(m->results[0].did, 9);
    assert_string_equal(m->results[0].result_json, "{\"status\":\"ok\",\"exit\":0,\"output\":\"x\"}");
    authcert_agent_message_free(m);
    m = NULL;
    assert_status(result("{\"delivery\":9,\"status\":\"ok\"}", &m),
                  AUTHCERT_E_USAGE);
    assert_status(result("{\"agent_id\":\"\",\"delivery\":9,\"status\":\"ok\"}", &m),
                  AUTHCERT_E_USAGE);
    assert_status(result("{\"agent_id\":\"a\",\"delivery\":-9,\"status\":\"ok\"}", &m),
                  AUTHCERT_E_USAGE);
    assert_status(authcert_result_parse("nope", 4, &m), AUTHCERT_E_CORRUPT);
    assert_status(authcert_result_parse(NULL, 0, &m), AUTHCERT_E_USAGE);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_full_check_in),
        cmocka_unit_test(test_bad_check_ins_are_refused),
        cmocka_unit_test(test_key_pin_member),
        cmocka_unit_test(test_size_caps),
        cmocka_unit_test(test_result_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
