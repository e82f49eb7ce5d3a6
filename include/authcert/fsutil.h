/*
 * authcert/fsutil.h — writing files so that nobody sees half of one.
 *
 * Every file the system writes (store index, key files, agent certificate
 * files, backups, CSV lists) goes through authcert_write_atomic: a temporary
 * name in the same directory created O_EXCL|O_NOFOLLOW, write, fsync, rename
 * over the target, fsync the directory. A crash leaves the old file or the
 * new one, never a mix; at worst a stray ".tmp" that readers ignore.
 */
#ifndef AUTHCERT_FSUTIL_H
#define AUTHCERT_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Write len bytes to path atomically with the given mode (0600 for anything
 * secret). Errors: AUTHCERT_E_IO (detail names the path and errno's reason;
 * a full disk is ENOSPC and leaves no temporary file behind).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Read a whole private file (a key, a credential): it must be a regular file
 * (not a link, not a FIFO: it is opened O_NOFOLLOW|O_NONBLOCK), owned by
 * the caller or root, with no access for group or others, at most max_len
 * bytes. Caller frees *data with OPENSSL_clear_free(*data, *len).
 * Errors: AUTHCERT_E_NOTFOUND, AUTHCERT_E_PERM (the detail names the fix),
 * AUTHCERT_E_CORRUPT (too large), AUTHCERT_E_IO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_read_private(const char *path, size_t max_len, uint8_t **data, size_t *len);

/*
 * Read a whole regular file (at most max_len bytes, else AUTHCERT_E_CORRUPT).
 * It is opened O_NONBLOCK and must be a regular file: a FIFO or a device is
 * AUTHCERT_E_USAGE, never waited on.
 * Caller frees *data (with OPENSSL_clear_free when it is secret).
 * Errors: AUTHCERT_E_NOTFOUND when missing, AUTHCERT_E_USAGE, AUTHCERT_E_IO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_read_file(const char *path, size_t max_len, uint8_t **data, size_t *len);

/*
 * The streaming form, for output too large to hold (a CSV of a million
 * agents): authcert_atomic_open gives a FILE* on a temporary name beside
 * path; authcert_atomic_commit flushes, fsyncs and renames it over path;
 * authcert_atomic_abort removes it. Exactly one of the two ends the handle.
 * Errors as authcert_write_atomic.
 */
typedef struct authcert_atomic_file authcert_atomic_file;
AUTHCERT_MUST_CHECK authcert_status
authcert_atomic_open(const char *path, mode_t mode, authcert_atomic_file **out);
FILE *authcert_atomic_stream(authcert_atomic_file *f);
AUTHCERT_MUST_CHECK authcert_status authcert_atomic_commit(authcert_atomic_file *f);
void authcert_atomic_abort(authcert_atomic_file *f);

/* fsync a directory so that a rename or create inside it is durable. */
AUTHCERT_MUST_CHECK authcert_status authcert_fsync_dir(const char *dir);

/* True when path names an existing directory. */
int authcert_is_dir(const char *path);

#ifdef __cplusplus
}
#endif
#endif
