/*
 * authcert/error.h — the library's one error type.
 *
 * Every fallible function returns an authcert_status. The numeric values are
 * also the admin tool's exit codes (docs/authcert.8), so keep them stable.
 * The library never prints: a failing function may leave a one-line detail
 * (the file, the OpenSSL reason) for the caller in authcert_detail().
 */
#ifndef AUTHCERT_ERROR_H
#define AUTHCERT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum authcert_status {
    AUTHCERT_OK          = 0,
    AUTHCERT_E_INTERNAL  = 1,  /* a bug or an unexpected library failure */
    AUTHCERT_E_USAGE     = 2,  /* the call's arguments are wrong */
    AUTHCERT_E_AUTH      = 3,  /* wrong password, bad signature */
    AUTHCERT_E_WEAK      = 4,  /* password refused as too weak */
    AUTHCERT_E_CORRUPT   = 5,  /* damaged, truncated or invalid input */
    AUTHCERT_E_IO        = 6,  /* a file system or network failure */
    AUTHCERT_E_BUSY      = 7,  /* the store is held by another writer */
    AUTHCERT_E_PERM      = 8,  /* caller is not allowed (not an administrator) */
    AUTHCERT_E_NOTFOUND  = 9,  /* no store, no current certificate, no agent */
    AUTHCERT_E_POLICY    = 10, /* refused by a flag: key not exportable, revoked */
    AUTHCERT_E_CRYPTO    = 11, /* OpenSSL failed where it should not */
    AUTHCERT_E_NOMEM     = 12,
} authcert_status;

#if defined(__GNUC__) || defined(__clang__)
#define AUTHCERT_MUST_CHECK __attribute__((warn_unused_result))
#define AUTHCERT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define AUTHCERT_MUST_CHECK
#define AUTHCERT_PRINTF(f, a)
#endif

/* A short, static description of a status ("wrong password"). */
const char *authcert_strerror(authcert_status st);

/*
 * The detail left by the last failing call on this thread ("backup.zip:
 * member ../x is not allowed"), or "" when there is none. Valid until the
 * next library call on this thread.
 */
const char *authcert_detail(void);

/* Forget the detail (the library does this itself before setting one). */
void authcert_clear_detail(void);

/*
 * Record a detail and return st, for `return authcert_fail(...)` and
 * `rc = authcert_fail(...)`. Also used by the tools and daemons that build on
 * the library so that one message format runs through everything. An
 * argument may be authcert_detail() (a detail quoting the previous one).
 */
authcert_status authcert_fail(authcert_status st, const char *fmt, ...)
    AUTHCERT_PRINTF(2, 3);

/*
 * Like authcert_fail, with the reason OpenSSL left in its error queue
 * appended (": <reason>"); empties the queue.
 */
authcert_status authcert_fail_ossl(authcert_status st, const char *fmt, ...)
    AUTHCERT_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif
#endif
