/* The error type: messages, details, and the OpenSSL reason in the detail. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/err.h>

#include "testlib.h"

static void test_every_status_has_a_message(void **state)
{
    (void)state;
    for (int st = AUTHCERT_OK; st <= AUTHCERT_E_NOMEM; st++)
        assert_string_not_equal(authcert_strerror((authcert_status)st), "unknown error");
    assert_string_equal(authcert_strerror((authcert_status)99), "unknown error");
}

static void test_fail_keeps_detail_and_returns_status(void **state)
{
    (void)state;
    assert_int_equal(authcert_fail(AUTHCERT_E_BUSY, "store %s held by pid %d", "/x", 42),
                     AUTHCERT_E_BUSY);
    assert_string_equal(authcert_detail(), "store /x held by pid 42");
    authcert_clear_detail();
    assert_string_equal(authcert_detail(), "");
}

static void test_fail_ossl_appends_reason_and_clears_queue(void **state)
{
    (void)state;
    /* Provoke a real OpenSSL error: an unknown cipher name. */
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "no-such-cipher", NULL);
    assert_null(c);
    assert_int_not_equal(ERR_peek_error(), 0);
    authcert_fail_ossl(AUTHCERT_E_CRYPTO, "fetch");
    assert_true(strncmp(authcert_detail(), "fetch: ", 7) == 0);
    assert_int_equal(ERR_peek_error(), 0);
}

/*
 * A new detail may quote the one before it ("key file (%s)" with
 * authcert_detail()): the argument is the buffer being written, so it must
 * be read before it is overwritten (store.c's damaged key file did this).
 */
static void test_fail_may_quote_the_previous_detail(void **state)
{
    (void)state;
    authcert_fail(AUTHCERT_E_CORRUPT, "no PEM certificate block");
    assert_int_equal(authcert_fail(AUTHCERT_E_CORRUPT, "%s: damaged key file (%s)",
                                   "/s/keys/ab.pem", authcert_detail()),
                     AUTHCERT_E_CORRUPT);
    assert_string_equal(authcert_detail(),
                        "/s/keys/ab.pem: damaged key file (no PEM certificate block)");
    authcert_fail(AUTHCERT_E_CRYPTO, "decrypt");
    authcert_fail_ossl(AUTHCERT_E_CRYPTO, "%s, then %s", "load", authcert_detail());
    assert_string_equal(authcert_detail(), "load, then decrypt");
    /* Quoting itself at full length still ends in one terminated string. */
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    authcert_fail(AUTHCERT_E_IO, "%s", big);
    authcert_fail(AUTHCERT_E_IO, "again: %s", authcert_detail());
    assert_true(strncmp(authcert_detail(), "again: xxxx", 11) == 0);
    assert_int_equal(strlen(authcert_detail()), 511);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_status_has_a_message),
        cmocka_unit_test(test_fail_keeps_detail_and_returns_status),
        cmocka_unit_test(test_fail_ossl_appends_reason_and_clears_queue),
        cmocka_unit_test(test_fail_may_quote_the_previous_detail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
