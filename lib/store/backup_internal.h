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

#include <zip.h>

#include "authcert/backup.h"
#include "authcert/next_key.h"
#include "authcert/store.h"

#define BACKUP_MANIFEST_NAME "manifest.json"
/* The store's server secret (protocol v2), 32 bytes, encrypted like the rest. */
#define BACKUP_SECRET_NAME "server-secret.bin"
/* Pre-rotation's sealed successor key (authcert/next_key.h), as in the store. */
#define BACKUP_NEXT_KEY_NAME "next-key.pem"
/* The folder of the PKCS#12 members, as an entry of its own (7-Zip adds one). */
#define BACKUP_CERTS_DIR "certs/"
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
    /* Pre-rotation: where the store had the current certificate's successor
     * (NONE, SEALED with next set, or EXPORTED: the record only). */
    authcert_next_key_where next_where;
    char next_hash[65];
    char next_type[16];
    authcert_next_key *next;
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

/* A member of the archive being read, from its central directory entry. */
typedef struct backup_member {
    zip_uint64_t index;
    zip_uint64_t size;
    bool manifest;
    bool secret;                                  /* server-secret.bin */
    bool next_key;                                /* next-key.pem */
    bool folder;                                  /* an empty "certs/" entry: ignored */
    char thumbprint[AUTHCERT_THUMBPRINT_LEN + 1]; /* PKCS#12 members */
    bool listed;                                  /* named by the manifest */
    bool compressed;                              /* not stored */
    bool crc_zero;                                /* a CRC of 0 that libzip checks (AE-2) */
} backup_member;

/* The archive being read: libzip's handle and what a second look needs. */
typedef struct backup_reader {
    zip_t *za;
    const uint8_t *data; /* the archive's bytes */
    size_t len;
    backup_zip_dir dir;
    const char *password;
    const backup_member *members; /* all of them, from the central directory */
    size_t nmembers;
    uint64_t iter_left; /* PKCS#12 iterations the members not read yet may ask for */
    zip_t *fixed;          /* the archive with AE-2 CRCs filled in (backup_zip.c) */
    uint8_t *fixed_data;
} backup_reader;

/*
 * Member m's contents (caller frees *out, *outlen bytes, with
 * OPENSSL_clear_free), authenticated by libzip: the password verifier and
 * the HMAC over all of it, whatever the compression and the CRC field say.
 * name is for the detail. A failure of the manifest's is AUTHCERT_E_AUTH
 * ("wrong password"), of any other AUTHCERT_E_CORRUPT.
 */
AUTHCERT_MUST_CHECK authcert_status
backup_zip_read_member(backup_reader *rd, const backup_member *m, const char *name,
                       uint8_t **out, size_t *outlen);

/* Close rd's archives and free what backup_zip_read_member kept. */
void backup_zip_reader_fini(backup_reader *rd);

#endif
