/*
 * Private to the library: the guard macros every lib/ file uses.
 *
 * The exit-path pattern (OpenSSH sshkey.c): a function starts with
 * `authcert_status rc = AUTHCERT_E_INTERNAL;` and every pointer NULL, chains
 * its steps with these guards, sets `rc = AUTHCERT_OK` at the end, and frees
 * and wipes everything under `out:`.
 */
#ifndef AUTHCERT_INTERNAL_H
#define AUTHCERT_INTERNAL_H

#include "authcert/error.h"

/* Run a step that returns authcert_status; leave on failure. */
#define GUARD(expr)                                                         \
    do {                                                                    \
        rc = (expr);                                                        \
        if (rc != AUTHCERT_OK)                                              \
            goto out;                                                       \
    } while (0)

/* OpenSSL's "1 means success", with its reason kept as the detail. */
#define GUARD_OSSL(expr, ...)                                               \
    do {                                                                    \
        if ((expr) != 1) {                                                  \
            rc = authcert_fail_ossl(AUTHCERT_E_CRYPTO, __VA_ARGS__);        \
            goto out;                                                       \
        }                                                                   \
    } while (0)

/* An OpenSSL constructor that returns NULL on failure. */
#define GUARD_OSSL_PTR(ptr, ...)                                            \
    do {                                                                    \
        if ((ptr) == NULL) {                                                \
            rc = authcert_fail_ossl(AUTHCERT_E_CRYPTO, __VA_ARGS__);        \
            goto out;                                                       \
        }                                                                   \
    } while (0)

/* malloc and friends. */
#define GUARD_ALLOC(ptr)                                                    \
    do {                                                                    \
        if ((ptr) == NULL) {                                                \
            rc = authcert_fail(AUTHCERT_E_NOMEM, "out of memory");          \
            goto out;                                                       \
        }                                                                   \
    } while (0)

/* Leave with a status and a detail. */
#define FAIL(st, ...)                                                       \
    do {                                                                    \
        rc = authcert_fail((st), __VA_ARGS__);                              \
        goto out;                                                           \
    } while (0)

/* Leave with a status and a detail, OpenSSL's reason appended. */
#define FAIL_OSSL(st, ...)                                                  \
    do {                                                                    \
        rc = authcert_fail_ossl((st), __VA_ARGS__);                         \
        goto out;                                                           \
    } while (0)

#endif
