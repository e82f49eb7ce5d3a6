/*
 * Helpers shared by the unit tests (cmocka). Include after cmocka's own
 * headers: <stdarg.h> <stddef.h> <stdint.h> <setjmp.h> <cmocka.h>.
 */
#ifndef AUTHCERT_TESTLIB_H
#define AUTHCERT_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "authcert/authcert.h"

/* A fresh empty directory under $AUTHCERT_TEST_TMP (or /tmp); caller frees. */
char *testlib_tmpdir(const char *tag);

/* rm -rf of a directory made by testlib_tmpdir. */
void testlib_rmrf(const char *dir);

/* Fail the test with the status and the library's detail unless rc is OK. */
#define assert_ok(expr)                                                     \
    do {                                                                    \
        authcert_status rc_ = (expr);                                       \
        if (rc_ != AUTHCERT_OK)                                             \
            fail_msg("%s: %s (%s)", #expr, authcert_strerror(rc_),          \
                     authcert_detail());                                    \
    } while (0)

/* Assert a specific failing status. */
#define assert_status(expr, want)                                           \
    do {                                                                    \
        authcert_status rc_ = (expr);                                       \
        if (rc_ != (want))                                                  \
            fail_msg("%s: got %s (%s), want %s", #expr,                     \
                     authcert_strerror(rc_), authcert_detail(),             \
                     authcert_strerror(want));                              \
    } while (0)

/* Run a shell command (for interop with openssl, 7z); returns its exit status. */
int testlib_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A strong password that passes the strength check, for tests. */
#define TESTLIB_PASSWORD "correct horse battery staple 42"

#endif
