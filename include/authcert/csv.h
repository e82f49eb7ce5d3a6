/*
 * authcert/csv.h — a streaming CSV writer (RFC 4180).
 *
 * Fields that contain a comma, a double quote, CR or LF are quoted and their
 * quotes doubled; every record ends with CRLF, the header too. Output goes
 * through a fixed buffer: memory does not grow with the number of rows.
 *
 * Spreadsheet formula injection: RFC 4180 knows nothing of it, but a CSV
 * file is usually opened in a spreadsheet, and a cell that starts with
 * = + - @ (or TAB/CR) is run there as a formula. With
 * AUTHCERT_CSV_NEUTRALIZE_FORMULAS such a field gets a leading single quote
 * (the OWASP advice), which spreadsheets show and never evaluate; the file
 * stays valid RFC 4180 and every other field is byte-exact. The mismatch list
 * turns it on because agents choose their own ids and hostnames.
 */
#ifndef AUTHCERT_CSV_H
#define AUTHCERT_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct authcert_csv authcert_csv;

enum {
    AUTHCERT_CSV_NEUTRALIZE_FORMULAS = 1 << 0,
};

/*
 * A writer to an open FILE* or file descriptor; the caller keeps owning
 * (and closes) f or fd. Caller owns *out: end with authcert_csv_finish
 * (flushes) or, to abandon, authcert_csv_free.
 */
AUTHCERT_MUST_CHECK authcert_status authcert_csv_new_file(FILE *f, int flags,
                                                          authcert_csv **out);
AUTHCERT_MUST_CHECK authcert_status authcert_csv_new_fd(int fd, int flags,
                                                        authcert_csv **out);

/*
 * Append one field of len bytes (any bytes; NUL included) to the current
 * record. Errors: AUTHCERT_E_IO when a write failed (this or an earlier
 * one: a writer that failed keeps failing).
 */
AUTHCERT_MUST_CHECK authcert_status authcert_csv_field(authcert_csv *w, const char *s,
                                                       size_t len);
/* The same for a NUL-terminated string; NULL is an empty field. */
AUTHCERT_MUST_CHECK authcert_status authcert_csv_field_str(authcert_csv *w, const char *s);

/* End the current record (CRLF). */
AUTHCERT_MUST_CHECK authcert_status authcert_csv_end_row(authcert_csv *w);

/* Records ended so far. */
uint64_t authcert_csv_rows(const authcert_csv *w);

/* Write out what is buffered (and fflush a FILE*). Errors: AUTHCERT_E_IO. */
AUTHCERT_MUST_CHECK authcert_status authcert_csv_flush(authcert_csv *w);

/* Flush and free; the status says whether everything was written. */
AUTHCERT_MUST_CHECK authcert_status authcert_csv_finish(authcert_csv *w);

/* Free without flushing; NULL is fine. */
void authcert_csv_free(authcert_csv *w);

#ifdef __cplusplus
}
#endif
#endif
