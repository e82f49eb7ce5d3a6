/* base64url: the RFC 4648 and RFC 7515 vectors, and the strict decoder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/base64url.h"
#include "testlib.h"

static char *b64(const void *p, size_t n)
{
    char *s = NULL;
    assert_ok(authcert_b64url_encode(p, n, &s));
    return s;
}

static char *b64s(const char *s)
{
    return b64(s, strlen(s));
}

static void test_b64url_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *s = b64s(plain[i]);
        assert_string_equal(s, enc[i]);
        assert_int_equal(authcert_b64url_encoded_len(strlen(plain[i])), strlen(enc[i]));
        uint8_t *d = NULL;
        size_t n = 99;
        assert_ok(authcert_b64url_decode(enc[i], strlen(enc[i]), &d, &n));
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(d, plain[i], n);
        free(d);
        free(s);
    }
    /* The two characters that differ from base64: 0xfb 0xff -> "-_8". */
    static const uint8_t urlbytes[] = {0xfb, 0xff};
    char *s = b64(urlbytes, 2);
    assert_string_equal(s, "-_8");
    free(s);
}

static void test_b64url_rfc7515_example(void **state)
{
    (void)state;
    /* RFC 7515 A.1.1: the JWS Protected Header, CRLF included. */
    const char *hdr = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
    char *s = b64s(hdr);
    assert_string_equal(s, "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9");
    free(s);
    const char *pay = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
    s = b64s(pay);
    assert_string_equal(s, "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
                           "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ");
    free(s);
}

static void test_b64url_decoder_is_strict(void **state)
{
    (void)state;
    static const char *bad[] = {
        "Zg==",     /* padding */
        "Zm9v\n",   /* whitespace */
        " Zm9v",
        "Zm 9v",
        "Zm9+",     /* base64, not base64url */
        "Zm9/",
        "Z",        /* impossible length */
        "Zm9vY",
        "Zh",       /* non-zero trailing bits */
        "Zm9",
        "Zm9vYh",
        "Zm9v!",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t *d = (uint8_t *)0x1;
        size_t n = 99;
        authcert_status st = authcert_b64url_decode(bad[i], strlen(bad[i]), &d, &n);
        if (st != AUTHCERT_E_CORRUPT)
            fail_msg("\"%s\" decoded (%d)", bad[i], st);
        assert_null(d);
        assert_int_equal(n, 0);
    }
    /* An embedded NUL is an invalid character too. */
    uint8_t *d = NULL;
    size_t n = 0;
    assert_status(authcert_b64url_decode("Zm\0v", 4, &d, &n), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "0x00 at 2"));
}

static void test_b64url_round_trip_all_lengths(void **state)
{
    (void)state;
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof buf; len++) {
        char *s = b64(buf, len);
        assert_int_equal(strlen(s), authcert_b64url_encoded_len(len));
        assert_null(strpbrk(s, "+/="));
        uint8_t *d = NULL;
        size_t n = 0;
        assert_ok(authcert_b64url_decode(s, strlen(s), &d, &n));
        assert_int_equal(n, len);
        assert_memory_equal(d, buf, len);
        free(d);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_rfc4648_vectors),
        cmocka_unit_test(test_b64url_rfc7515_example),
        cmocka_unit_test(test_b64url_decoder_is_strict),
        cmocka_unit_test(test_b64url_round_trip_all_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
