/*
 * RFC 4180 CSV writer. Speed matters (a million-agent mismatch list): bytes
 * go into one fixed buffer with memcpy, no allocation per field or row.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authcert/csv.h"
#include "internal.h"

#define CSV_BUF 65536

struct authcert_csv {
    FILE *f;
    int fd;
    int flags;
    int in_row;     /* a field was written to the current record */
    authcert_status failed;
    uint64_t rows;
    size_t used;
    char buf[CSV_BUF];
};

static authcert_status csv_new(FILE *f, int fd, int flags, authcert_csv **out)
{
    authcert_csv *w;

    if (out == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "csv: no result pointer");
    *out = NULL;
    if ((f == NULL && fd < 0) || (flags & ~AUTHCERT_CSV_NEUTRALIZE_FORMULAS) != 0)
        return authcert_fail(AUTHCERT_E_USAGE, "csv: no output, or unknown flags");
    w = calloc(1, sizeof *w);
    if (w == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    w->f = f;
    w->fd = fd;
    w->flags = flags;
    *out = w;
    return AUTHCERT_OK;
}

authcert_status authcert_csv_new_file(FILE *f, int flags, authcert_csv **out)
{
    return csv_new(f, -1, flags, out);
}

authcert_status authcert_csv_new_fd(int fd, int flags, authcert_csv **out)
{
    return csv_new(NULL, fd, flags, out);
}

static authcert_status drain(authcert_csv *w)
{
    size_t off = 0;

    if (w->failed != AUTHCERT_OK)
        return w->failed;
    errno = 0;
    if (w->f != NULL) {
        if (w->used > 0 && fwrite(w->buf, 1, w->used, w->f) != w->used)
            off = SIZE_MAX;
    } else {
        while (off < w->used) {
            ssize_t n = write(w->fd, w->buf + off, w->used - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                off = SIZE_MAX;
                break;
            }
            off += (size_t)n;
        }
    }
    w->used = 0;
    if (off == SIZE_MAX)
        w->failed = authcert_fail(AUTHCERT_E_IO, "csv: write: %s",
                                  errno != 0 ? strerror(errno) : "short write");
    return w->failed;
}

static authcert_status put(authcert_csv *w, const char *p, size_t n)
{
    authcert_status rc;

    if (w->failed != AUTHCERT_OK)
        return w->failed;
    while (n > 0) {
        size_t room = CSV_BUF - w->used, k = n < room ? n : room;

        memcpy(w->buf + w->used, p, k);
        w->used += k;
        p += k;
        n -= k;
        if (w->used == CSV_BUF && (rc = drain(w)) != AUTHCERT_OK)
            return rc;
    }
    return AUTHCERT_OK;
}

static authcert_status put1(authcert_csv *w, char c)
{
    if (w->failed != AUTHCERT_OK)
        return w->failed;
    if (w->used == CSV_BUF) {
        authcert_status rc = drain(w);
        if (rc != AUTHCERT_OK)
            return rc;
    }
    w->buf[w->used++] = c;
    return AUTHCERT_OK;
}

authcert_status authcert_csv_field(authcert_csv *w, const char *s, size_t len)
{
    authcert_status rc;
    int quote = 0, formula;
    size_t i, start;

    if (w == NULL || (s == NULL && len > 0))
        return authcert_fail(AUTHCERT_E_USAGE, "csv: missing argument");
    if (w->failed != AUTHCERT_OK)
        return w->failed;
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c == ',' || c == '"' || c == '\r' || c == '\n') {
            quote = 1;
            break;
        }
    }
    formula = (w->flags & AUTHCERT_CSV_NEUTRALIZE_FORMULAS) && len > 0 &&
              memchr("=+-@\t\r", s[0], 6) != NULL;
    if (w->in_row && (rc = put1(w, ',')) != AUTHCERT_OK)
        return rc;
    w->in_row = 1;
    if (quote && (rc = put1(w, '"')) != AUTHCERT_OK)
        return rc;
    if (formula && (rc = put1(w, '\'')) != AUTHCERT_OK)
        return rc;
    if (!quote)
        return put(w, s, len);
    /* Copy runs between quotes, doubling each quote. */
    for (start = 0, i = 0; i < len; i++) {
        if (s[i] != '"')
            continue;
        if ((rc = put(w, s + start, i + 1 - start)) != AUTHCERT_OK)
            return rc;
        start = i;
    }
    if ((rc = put(w, s + start, len - start)) != AUTHCERT_OK)
        return rc;
    return put1(w, '"');
}

authcert_status authcert_csv_field_str(authcert_csv *w, const char *s)
{
    return authcert_csv_field(w, s, s != NULL ? strlen(s) : 0);
}

authcert_status authcert_csv_end_row(authcert_csv *w)
{
    authcert_status rc;

    if (w == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "csv: missing argument");
    if ((rc = put(w, "\r\n", 2)) != AUTHCERT_OK)
        return rc;
    w->in_row = 0;
    w->rows++;
    return AUTHCERT_OK;
}

uint64_t authcert_csv_rows(const authcert_csv *w)
{
    return w != NULL ? w->rows : 0;
}

authcert_status authcert_csv_flush(authcert_csv *w)
{
    authcert_status rc;

    if (w == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "csv: missing argument");
    if ((rc = drain(w)) != AUTHCERT_OK)
        return rc;
    if (w->f != NULL && fflush(w->f) != 0)
        w->failed = authcert_fail(AUTHCERT_E_IO, "csv: write: %s", strerror(errno));
    return w->failed;
}

authcert_status authcert_csv_finish(authcert_csv *w)
{
    authcert_status rc;

    if (w == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "csv: missing argument");
    rc = authcert_csv_flush(w);
    free(w);
    return rc;
}

void authcert_csv_free(authcert_csv *w)
{
    free(w);
}
