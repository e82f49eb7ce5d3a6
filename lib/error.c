/* The library's status codes and the per-thread detail behind them. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "authcert/error.h"

/* Thread-local so that the daemons' worker threads never see each other's. */
static _Thread_local char detail[512];

const char *authcert_strerror(authcert_status st)
{
    switch (st) {
    case AUTHCERT_OK:         return "success";
    case AUTHCERT_E_INTERNAL: return "internal error";
    case AUTHCERT_E_USAGE:    return "usage error";
    case AUTHCERT_E_AUTH:     return "wrong password or signature";
    case AUTHCERT_E_WEAK:     return "password too weak";
    case AUTHCERT_E_CORRUPT:  return "damaged or invalid input";
    case AUTHCERT_E_IO:       return "input/output error";
    case AUTHCERT_E_BUSY:     return "store busy";
    case AUTHCERT_E_PERM:     return "not permitted";
    case AUTHCERT_E_NOTFOUND: return "not found";
    case AUTHCERT_E_POLICY:   return "refused by policy";
    case AUTHCERT_E_CRYPTO:   return "cryptographic failure";
    case AUTHCERT_E_NOMEM:    return "out of memory";
    }
    return "unknown error";
}

const char *authcert_detail(void)
{
    return detail;
}

void authcert_clear_detail(void)
{
    detail[0] = '\0';
}

/* Formatted aside first: an argument may be authcert_detail() itself (a
 * detail that quotes the one before it), and vsnprintf into the buffer it
 * reads from overwrites the quote before reading it. */
AUTHCERT_PRINTF(1, 0)
static void set_detail(const char *fmt, va_list ap)
{
    char next[sizeof detail];

    vsnprintf(next, sizeof next, fmt, ap);
    memcpy(detail, next, sizeof detail);
}

authcert_status authcert_fail(authcert_status st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_detail(fmt, ap);
    va_end(ap);
    return st;
}

authcert_status authcert_fail_ossl(authcert_status st, const char *fmt, ...)
{
    va_list ap;
    unsigned long e;
    size_t used;

    va_start(ap, fmt);
    set_detail(fmt, ap);
    va_end(ap);

    /* The earliest error is the cause; later ones are the unwinding. */
    e = ERR_peek_error();
    used = strlen(detail);
    if (e != 0 && used + 3 < sizeof detail) {
        const char *reason = ERR_reason_error_string(e);
        snprintf(detail + used, sizeof detail - used, ": %s",
                 reason != NULL ? reason : "OpenSSL error");
    }
    ERR_clear_error();
    return st;
}
