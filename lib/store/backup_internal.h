/*
 * Private to lib/store/backup.c and lib/store/backup_read.c: the verified
 * backup in memory and the pieces both halves need (dates, member names).
 */
#ifndef AUTHCERT_BACKUP_INTERNAL_H
#define AUTHCERT_BACKUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "authcert/backup.h"

#define BACKUP_MANIFEST_NAME "manifest.json"
/* The store's server secret (protocol v2), 32 bytes, encrypted like the rest. */
#define BACKUP_SECRET_NAME "server-secret.bin"
#define BACKUP_MAX_MEMBERS 1000
/* A PKCS#12 of an RSA-4096 key is ~5 KB; the manifest ~400 bytes a cert. */
#define BACKUP_MAX_PFX_SIZE (256u * 1024)
#define BACKUP_MAX_MANIFEST_SIZE (1024u * 1024)
/* "2026-11-25T12:00:00Z" */
#define BACKUP_ISO_LEN 20

struct authcert_backup {
    char *path;                     /* NULL when read from memory */
    size_t count;
    authcert_backup_entry *entries; /* manifest order; exactly one current */
    bool has_secret;                /* the backup carries the server secret */
    unsigned char secret[32];
};

/* t as "YYYY-MM-DDTHH:MM:SSZ" (UTC) into out[BACKUP_ISO_LEN + 1]. */
void backup_iso_time(time_t t, char out[BACKUP_ISO_LEN + 1]);

/* The inverse; only the canonical form is accepted. */
bool backup_parse_iso_time(const char *s, time_t *out);

/* "certs/<thumbprint>.pfx" into out. */
void backup_member_name(const char *thumbprint, char out[80]);

/* The newest authcert-backup-*.zip in dir by the time in its name; caller frees. */
authcert_status backup_newest_in_dir(const char *dir, char **out);

/* ---- the ZIP container (lib/store/backup_zip.c) ---------------------------- */

/* The central directory, as the end-of-central-directory record gives it. */
typedef struct backup_zip_dir {
    uint64_t count, offset, size;
} backup_zip_dir;

/*
 * Before zip_open: the end-of-central-directory record(s) of zip (ZIP64
 * too) announce at most BACKUP_MAX_MEMBERS members and a directory that fits
 * in the file, and there is exactly one. AUTHCERT_E_CORRUPT says which not.
 */
AUTHCERT_MUST_CHECK authcert_status
backup_zip_check_end(const uint8_t *zip, size_t len, backup_zip_dir *dir);

#endif
