/*
 * authcert/backup.h — backups of the certificate store.
 *
 * One ZIP archive, every member encrypted with WinZip AES-256 (AE-2), so
 * 7-Zip and libarchive open it with the password:
 *
 *   manifest.json            format, creation time, and per certificate: its
 *                            thumbprint, state, exportable flag, dates, member
 *                            name and the SHA-256 of that member
 *   certs/<thumbprint>.pfx   PKCS#12 of certificate and key, same password
 *
 * Reading verifies everything before anything is handed back: the password,
 * that the members are exactly the ones the manifest names (no "../x", no
 * "/abs", nothing extra), every hash, every PKCS#12, every key against its
 * certificate, and exactly one current certificate.
 */
#ifndef AUTHCERT_BACKUP_H
#define AUTHCERT_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "authcert/cert.h"
#include "authcert/error.h"
#include "authcert/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_BACKUP_FORMAT 1
#define AUTHCERT_BACKUP_MAX_SIZE (64u * 1024 * 1024)

enum {
    /* Leave out certificates whose key is not exportable instead of refusing. */
    AUTHCERT_BACKUP_SKIP_UNEXPORTABLE = 1 << 0,
};

/*
 * Back up every certificate in s to path, encrypted with password. path is a
 * file name or an existing directory; in a directory the file is named
 * authcert-backup-YYYYMMDDTHHMMSSZ.zip (UTC). The file is written atomically,
 * mode 0600. *written (may be NULL) gets the path written; caller frees.
 * Errors: AUTHCERT_E_POLICY (a key is not exportable and no SKIP flag),
 * AUTHCERT_E_NOTFOUND (store empty), AUTHCERT_E_IO, AUTHCERT_E_CRYPTO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_backup_write(const authcert_store *s, const char *password,
                      const char *path, unsigned flags, char **written);

typedef struct authcert_backup authcert_backup;

typedef struct authcert_backup_entry {
    char thumbprint[AUTHCERT_THUMBPRINT_LEN + 1];
    authcert_state state;
    bool exportable;
    time_t added;
    time_t retired;
    authcert_cert *cert; /* with key; owned by the backup */
    char *handoff;       /* its key's hand-off statement (authcert/handoff.h), or NULL */
} authcert_backup_entry;

/*
 * Read and verify the backup at path (a file, or a directory: its newest
 * authcert-backup-*.zip). Caller owns *out. Errors: AUTHCERT_E_AUTH (wrong
 * password), AUTHCERT_E_CORRUPT (truncated, damaged, unexpected or unsafe
 * member names, manifest hash mismatch, key not matching certificate),
 * AUTHCERT_E_NOTFOUND, AUTHCERT_E_IO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_backup_read(const char *path, const char *password, authcert_backup **out);

/* Same, from bytes in memory (the fuzz target's entry point). */
AUTHCERT_MUST_CHECK authcert_status
authcert_backup_read_mem(const uint8_t *data, size_t len, const char *password,
                         authcert_backup **out);

void authcert_backup_free(authcert_backup *b);
size_t authcert_backup_count(const authcert_backup *b);
const authcert_backup_entry *authcert_backup_entry_at(const authcert_backup *b, size_t i);
/* The path actually read (a directory resolves to its newest backup). */
const char *authcert_backup_path(const authcert_backup *b);

/*
 * Apply a verified backup to a writable store (not committed yet): every
 * certificate in it is added with exportable as given (-r true, -re false);
 * the backup's current becomes current; a current certificate not in the
 * backup becomes expired; no key is ever removed and no revoked certificate
 * is made usable again (AUTHCERT_E_POLICY if the backup's current one is
 * revoked here). The store's backup password is set to password when it has
 * none.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_backup_restore(authcert_store *s, const authcert_backup *b,
                        const char *password, bool exportable);

#ifdef __cplusplus
}
#endif
#endif
