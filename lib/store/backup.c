/*
 * Backups: writing the encrypted archive, finding the newest one in a
 * directory, and applying a verified backup to a store. Reading and
 * verifying an archive is in backup_read.c.
 *
 * The archive is built in memory (libzip over a buffer source) and written
 * with one authcert_write_atomic, so a reader never sees half a backup and
 * a refusal (a key that is not exportable) leaves nothing on disk.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zip.h>

#include "authcert/authcert.h"
#include "internal.h"
#include "store/backup_internal.h"
#include "store/store_internal.h"

#define BACKUP_PREFIX "authcert-backup-"
/* "YYYYMMDDTHHMMSSZ" */
#define BACKUP_STAMP_LEN 16

void backup_iso_time(time_t t, char out[BACKUP_ISO_LEN + 1])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, BACKUP_ISO_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) != BACKUP_ISO_LEN)
        snprintf(out, BACKUP_ISO_LEN + 1, "1970-01-01T00:00:00Z");
}

bool backup_parse_iso_time(const char *s, time_t *out)
{
    struct tm tm;
    char again[BACKUP_ISO_LEN + 1];
    const char *end;

    memset(&tm, 0, sizeof tm);
    if (strlen(s) != BACKUP_ISO_LEN ||
        (end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL || *end != '\0')
        return false;
    *out = timegm(&tm);
    /* timegm normalises "02-30"; only a date that prints back the same is real. */
    backup_iso_time(*out, again);
    return strcmp(again, s) == 0;
}

void backup_member_name(const char *thumbprint, char out[80])
{
    snprintf(out, 80, "certs/%s.pfx", thumbprint);
}

/* ---- writing ---------------------------------------------------------- */

/* Lowercase hex of a SHA-256 digest. */
static authcert_status sha256_hex(const uint8_t *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof md)
        return authcert_fail_ossl(AUTHCERT_E_CRYPTO, "SHA-256");
    for (size_t i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return AUTHCERT_OK;
}

static authcert_status json_set(json_t *obj, const char *key, json_t *val)
{
    /* json_object_set_new takes val even when it fails. */
    if (val == NULL || json_object_set_new(obj, key, val) != 0)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory (manifest)");
    return AUTHCERT_OK;
}

static json_t *json_iso(time_t t)
{
    char iso[BACKUP_ISO_LEN + 1];

    backup_iso_time(t, iso);
    return json_string(iso);
}

/* One manifest entry for e, whose PKCS#12 member has the given hash. */
static authcert_status manifest_entry(json_t *certs, const authcert_store_entry *e,
                                      const char *member, const char *hash)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert_info info;
    json_t *o = json_object();

    GUARD_ALLOC(o);
    authcert_cert_get_info(e->cert, &info);
    GUARD(json_set(o, "thumbprint", json_string(e->thumbprint)));
    GUARD(json_set(o, "state", json_string(authcert_state_name(e->state))));
    GUARD(json_set(o, "exportable", json_boolean(e->exportable)));
    GUARD(json_set(o, "added", json_iso(e->added)));
    GUARD(json_set(o, "retired", e->retired != 0 ? json_iso(e->retired) : json_null()));
    GUARD(json_set(o, "not_before", json_iso(info.not_before)));
    GUARD(json_set(o, "not_after", json_iso(info.not_after)));
    GUARD(json_set(o, "key_type", json_string(authcert_key_type_name(info.type))));
    GUARD(json_set(o, "member", json_string(member)));
    GUARD(json_set(o, "sha256", json_string(hash)));
    if (e->handoff != NULL)
        GUARD(json_set(o, "handoff", json_string(e->handoff)));
    if (json_array_append(certs, o) != 0)
        FAIL(AUTHCERT_E_NOMEM, "out of memory (manifest)");
    rc = AUTHCERT_OK;
out:
    json_decref(o);
    return rc;
}

/*
 * Add data as an AES-256 member. libzip reads the buffer at zip_close, so
 * the caller keeps it alive until then.
 */
static authcert_status zip_add_member(zip_t *za, const char *name, const void *data,
                                      size_t len, const char *password, time_t now)
{
    zip_source_t *src = zip_source_buffer(za, data, len, 0);
    zip_int64_t idx;

    if (src == NULL)
        return authcert_fail(AUTHCERT_E_INTERNAL, "zip %s: %s", name,
                             zip_strerror(za));
    idx = zip_file_add(za, name, src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
        zip_source_free(src);
        return authcert_fail(AUTHCERT_E_INTERNAL, "zip %s: %s", name, zip_strerror(za));
    }
    /* PKCS#12 is already ciphertext: deflate would only cost time. */
    if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0 ||
        zip_file_set_encryption(za, (zip_uint64_t)idx, ZIP_EM_AES_256, password) != 0 ||
        zip_file_set_mtime(za, (zip_uint64_t)idx, now, 0) != 0)
        return authcert_fail(AUTHCERT_E_INTERNAL, "zip %s: %s", name, zip_strerror(za));
    return AUTHCERT_OK;
}

/* The finished archive out of libzip's buffer source, into our own buffer. */
static authcert_status zip_buffer_out(zip_source_t *src, uint8_t **out, size_t *outlen)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    zip_stat_t st;
    uint8_t *buf = NULL;
    size_t got = 0;
    bool opened = false;

    if (zip_source_open(src) != 0)
        FAIL(AUTHCERT_E_INTERNAL, "zip: reopen archive buffer");
    opened = true;
    zip_stat_init(&st);
    if (zip_source_stat(src, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
        st.size == 0 || st.size > AUTHCERT_BACKUP_MAX_SIZE)
        FAIL(AUTHCERT_E_INTERNAL, "zip: archive size unknown or too large");
    GUARD_ALLOC(buf = malloc((size_t)st.size));
    while (got < st.size) {
        zip_int64_t n = zip_source_read(src, buf + got, st.size - got);
        if (n <= 0)
            FAIL(AUTHCERT_E_INTERNAL, "zip: read archive buffer");
        got += (size_t)n;
    }
    *out = buf;
    *outlen = got;
    buf = NULL;
    rc = AUTHCERT_OK;
out:
    if (opened)
        zip_source_close(src);
    OPENSSL_clear_free(buf, got);
    return rc;
}

/*
 * Which entries go in: all, or with SKIP_UNEXPORTABLE only the exportable
 * ones. The backup must hold the current certificate or it could not be
 * restored, so leaving that one out is a refusal too.
 */
static authcert_status choose_entries(const authcert_store *s, unsigned flags,
                                      const authcert_store_entry ***out, size_t *n)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    size_t count = authcert_store_count(s);
    const authcert_store_entry **pick = NULL;
    const authcert_store_entry *cur = authcert_store_current(s);
    size_t k = 0;

    if (count == 0)
        FAIL(AUTHCERT_E_NOTFOUND, "the store holds no certificate; nothing was written");
    if (cur == NULL)
        FAIL(AUTHCERT_E_NOTFOUND, "the store has no current certificate; nothing was written");
    GUARD_ALLOC(pick = calloc(count, sizeof *pick));
    for (size_t i = 0; i < count; i++) {
        const authcert_store_entry *e = authcert_store_entry_at(s, i);
        if (!e->exportable) {
            if (!(flags & AUTHCERT_BACKUP_SKIP_UNEXPORTABLE))
                FAIL(AUTHCERT_E_POLICY,
                     "key %s is not exportable (restored with -re); nothing was written",
                     e->thumbprint);
            if (e == cur || strcmp(e->thumbprint, cur->thumbprint) == 0)
                FAIL(AUTHCERT_E_POLICY,
                     "the current key %s is not exportable (restored with -re); "
                     "nothing was written", e->thumbprint);
            continue;
        }
        pick[k++] = e;
    }
    *out = pick;
    *n = k;
    pick = NULL;
    rc = AUTHCERT_OK;
out:
    free(pick);
    return rc;
}

/* The archive's bytes: every chosen entry as PKCS#12 plus the manifest. */
/* What the store has of the current certificate's successor (pre-rotation). */
struct next_record {
    authcert_next_key_where where;
    char hash[65];
    const char *type;
    char *pem; /* SEALED: the sealed file's text */
    size_t len;
};

static authcert_status build_archive(const authcert_store_entry **ents, size_t n,
                                     const unsigned char *secret,
                                     const struct next_record *next, const char *password,
                                     time_t now, uint8_t **out, size_t *outlen)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    zip_error_t zerr;
    zip_source_t *src = NULL;
    zip_t *za = NULL;
    uint8_t **pfx = NULL;
    size_t *pfxlen = NULL;
    json_t *root = NULL, *certs = NULL;
    char *manifest = NULL;
    char gen[64];

    zip_error_init(&zerr);
    /* calloc(0) may return NULL: an empty backup is not out of memory. */
    GUARD_ALLOC(pfx = calloc(n ? n : 1, sizeof *pfx));
    GUARD_ALLOC(pfxlen = calloc(n ? n : 1, sizeof *pfxlen));
    GUARD_ALLOC(root = json_object());
    GUARD_ALLOC(certs = json_array());
    GUARD(json_set(root, "certificates", json_incref(certs)));
    GUARD(json_set(root, "format", json_integer(AUTHCERT_BACKUP_FORMAT)));
    GUARD(json_set(root, "created", json_iso(now)));
    snprintf(gen, sizeof gen, "authcert %s", authcert_version());
    GUARD(json_set(root, "generator", json_string(gen)));

    GUARD_ALLOC(src = zip_source_buffer_create(NULL, 0, 0, &zerr));
    za = zip_open_from_source(src, ZIP_TRUNCATE, &zerr);
    if (za == NULL)
        FAIL(AUTHCERT_E_INTERNAL, "zip: %s", zip_error_strerror(&zerr));
    /* Keep the buffer alive past zip_close, which is when it gets written. */
    zip_source_keep(src);

    for (size_t i = 0; i < n; i++) {
        char member[80], hash[65];
        backup_member_name(ents[i]->thumbprint, member);
        GUARD(authcert_pkcs12_export(ents[i]->cert, password, &pfx[i], &pfxlen[i]));
        GUARD(sha256_hex(pfx[i], pfxlen[i], hash));
        GUARD(manifest_entry(certs, ents[i], member, hash));
        GUARD(zip_add_member(za, member, pfx[i], pfxlen[i], password, now));
    }
    if (secret != NULL) {
        char hash[65];
        GUARD(sha256_hex(secret, 32, hash));
        GUARD(json_set(root, "server_secret", json_pack("{s:s, s:s}", "member",
                                                        BACKUP_SECRET_NAME, "sha256", hash)));
        GUARD(zip_add_member(za, BACKUP_SECRET_NAME, secret, 32, password, now));
    }
    if (next->where == AUTHCERT_NEXT_KEY_SEALED) {
        char hash[65];
        GUARD(sha256_hex((const uint8_t *)next->pem, next->len, hash));
        GUARD(json_set(root, "next_key", json_pack("{s:s, s:s, s:s, s:s, s:s}",
                                                   "commitment", next->hash, "where", "sealed",
                                                   "type", next->type, "member",
                                                   BACKUP_NEXT_KEY_NAME, "sha256", hash)));
        GUARD(zip_add_member(za, BACKUP_NEXT_KEY_NAME, next->pem, next->len, password, now));
    } else if (next->where == AUTHCERT_NEXT_KEY_EXPORTED) {
        GUARD(json_set(root, "next_key", json_pack("{s:s, s:s, s:s}", "commitment", next->hash,
                                                   "where", "exported", "type", next->type)));
    }
    GUARD_ALLOC(manifest = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2)));
    GUARD(zip_add_member(za, BACKUP_MANIFEST_NAME, manifest, strlen(manifest),
                         password, now));
    if (zip_close(za) != 0)
        FAIL(AUTHCERT_E_INTERNAL, "zip: %s", zip_strerror(za));
    za = NULL;
    GUARD(zip_buffer_out(src, out, outlen));
    rc = AUTHCERT_OK;
out:
    if (za != NULL)
        zip_discard(za);
    if (src != NULL)
        zip_source_free(src);
    for (size_t i = 0; pfx != NULL && i < n; i++)
        OPENSSL_clear_free(pfx[i], pfxlen[i]);
    free(pfx);
    free(pfxlen);
    if (manifest != NULL)
        free(manifest);
    json_decref(certs);
    json_decref(root);
    zip_error_fini(&zerr);
    return rc;
}

/*
 * The file to write: path itself, or in a directory a dated name that does
 * not exist yet (-2, -3, ... when two backups share a second). The check
 * and the rename are not one step; two writers racing in the same directory
 * in the same second is not a case the admin tool's one-writer lock allows.
 */
static authcert_status output_path(const char *path, time_t now, char **out)
{
    char stamp[BACKUP_STAMP_LEN + 1];
    struct tm tm;
    struct stat st;
    char *p = NULL;

    if (!authcert_is_dir(path)) {
        if ((p = strdup(path)) == NULL)
            return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
        *out = p;
        return AUTHCERT_OK;
    }
    if (gmtime_r(&now, &tm) == NULL ||
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) != BACKUP_STAMP_LEN)
        return authcert_fail(AUTHCERT_E_INTERNAL, "cannot format the time");
    for (int k = 1; k < 1000; k++) {
        int r = k == 1 ? asprintf(&p, "%s/" BACKUP_PREFIX "%s.zip", path, stamp)
                       : asprintf(&p, "%s/" BACKUP_PREFIX "%s-%d.zip", path, stamp, k);
        if (r < 0)
            return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
        if (lstat(p, &st) != 0 && errno == ENOENT) {
            *out = p;
            return AUTHCERT_OK;
        }
        free(p);
        p = NULL;
    }
    return authcert_fail(AUTHCERT_E_IO, "%s: too many backups named %s", path, stamp);
}

authcert_status authcert_backup_write(const authcert_store *s, const char *password,
                                      const char *path, unsigned flags, char **written)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const authcert_store_entry **ents = NULL;
    size_t n = 0, ziplen = 0;
    uint8_t *zipbuf = NULL;
    char *target = NULL;
    time_t now = time(NULL);
    unsigned char secret[32];
    struct next_record next = { .where = AUTHCERT_NEXT_KEY_NONE };
    authcert_next_key *nk = NULL;

    if (written != NULL)
        *written = NULL;
    if (s == NULL || path == NULL || *path == '\0')
        FAIL(AUTHCERT_E_USAGE, "backup: no store or no path");
    if (password == NULL || *password == '\0')
        FAIL(AUTHCERT_E_USAGE, "backup: a password is required");
    GUARD(choose_entries(s, flags, &ents, &n));
    /* The server secret goes along (every node restored from it authenticates
     * the same agents); a store made before protocol v2 has none. */
    rc = authcert_store_server_secret(s, secret);
    if (rc != AUTHCERT_OK && rc != AUTHCERT_E_NOTFOUND)
        goto out;
    {
        /* The successor goes along as the store has it (sealed: it opens
         * with the recovery secret only), so that a restore keeps the
         * commitment whole. */
        bool have_secret = rc == AUTHCERT_OK;
        next.where = authcert_store_next_key(s, next.hash);
        next.type = s->next_type;
        if (next.where == AUTHCERT_NEXT_KEY_SEALED) {
            GUARD(authcert_store_load_next_key(s, &nk));
            GUARD(authcert_next_key_to_pem(nk, &next.pem, &next.len));
        }
        GUARD(build_archive(ents, n, have_secret ? secret : NULL, &next, password, now,
                            &zipbuf, &ziplen));
    }
    GUARD(output_path(path, now, &target));
    GUARD(authcert_write_atomic(target, zipbuf, ziplen, 0600));
    if (written != NULL) {
        *written = target;
        target = NULL;
    }
    rc = AUTHCERT_OK;
out:
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_free(next.pem);
    authcert_next_key_free(nk);
    free(ents);
    OPENSSL_clear_free(zipbuf, ziplen);
    free(target);
    return rc;
}

/* ---- finding the newest backup in a directory -------------------------- */

/*
 * authcert-backup-YYYYMMDDTHHMMSSZ.zip or ...Z-N.zip. Returns the sequence
 * number (1 for none) and copies the stamp, or 0 when name is not one.
 */
static int parse_backup_name(const char *name, char stamp[BACKUP_STAMP_LEN + 1])
{
    const char *p = name;
    size_t plen = strlen(BACKUP_PREFIX);
    int seq = 1;

    if (strncmp(p, BACKUP_PREFIX, plen) != 0)
        return 0;
    p += plen;
    for (int i = 0; i < BACKUP_STAMP_LEN; i++) {
        bool ok = i == 8 ? p[i] == 'T' : i == 15 ? p[i] == 'Z'
                                                 : (p[i] >= '0' && p[i] <= '9');
        if (!ok)
            return 0;
    }
    memcpy(stamp, p, BACKUP_STAMP_LEN);
    stamp[BACKUP_STAMP_LEN] = '\0';
    p += BACKUP_STAMP_LEN;
    if (*p == '-') {
        char *end;
        long v;
        p++;
        if (*p < '1' || *p > '9')
            return 0;
        errno = 0;
        v = strtol(p, &end, 10);
        if (errno != 0 || v < 2 || v > 100000)
            return 0;
        seq = (int)v;
        p = end;
    }
    return strcmp(p, ".zip") == 0 ? seq : 0;
}

/* The newest backup in dir by the time in its name (not mtime: copies keep names). */
authcert_status backup_newest_in_dir(const char *dir, char **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    DIR *d = opendir(dir);
    struct dirent *de;
    char best[256] = "", best_stamp[BACKUP_STAMP_LEN + 1] = "";
    int best_seq = 0;

    if (d == NULL)
        FAIL(errno == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO, "%s: %s", dir,
             strerror(errno));
    while ((de = readdir(d)) != NULL) {
        char stamp[BACKUP_STAMP_LEN + 1];
        int seq = parse_backup_name(de->d_name, stamp);
        int cmp;
        struct stat st;
        if (seq == 0 || strlen(de->d_name) >= sizeof best)
            continue;
        /* Only a regular file (or a link to one) is a backup: a FIFO, a
         * device or a folder named like the newest is passed over. */
        if (fstatat(dirfd(d), de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;
        cmp = strcmp(stamp, best_stamp);
        if (best_seq == 0 || cmp > 0 || (cmp == 0 && seq > best_seq)) {
            snprintf(best, sizeof best, "%s", de->d_name);
            memcpy(best_stamp, stamp, sizeof best_stamp);
            best_seq = seq;
        }
    }
    if (best_seq == 0)
        FAIL(AUTHCERT_E_NOTFOUND, "%s: no authcert-backup-*.zip in this directory", dir);
    if (asprintf(out, "%s/%s", dir, best) < 0)
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    rc = AUTHCERT_OK;
out:
    if (d != NULL)
        closedir(d);
    return rc;
}

/* ---- the verified backup ----------------------------------------------- */

void authcert_backup_free(authcert_backup *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->count; i++) {
        authcert_cert_free(b->entries[i].cert);
        free(b->entries[i].handoff);
    }
    free(b->entries);
    free(b->path);
    OPENSSL_cleanse(b->secret, sizeof b->secret);
    authcert_next_key_free(b->next);
    free(b);
}

size_t authcert_backup_count(const authcert_backup *b)
{
    return b != NULL ? b->count : 0;
}

const authcert_backup_entry *authcert_backup_entry_at(const authcert_backup *b, size_t i)
{
    return b != NULL && i < b->count ? &b->entries[i] : NULL;
}

const char *authcert_backup_path(const authcert_backup *b)
{
    return b != NULL ? b->path : NULL;
}

/* ---- restore ------------------------------------------------------------ */

authcert_status authcert_backup_restore(authcert_store *s, const authcert_backup *b,
                                        const char *password, bool exportable)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const authcert_backup_entry *cur = NULL;
    const authcert_store_entry *here;

    if (s == NULL || b == NULL || password == NULL || *password == '\0')
        FAIL(AUTHCERT_E_USAGE, "restore: no store, backup or password");
    for (size_t i = 0; i < b->count; i++)
        if (b->entries[i].state == AUTHCERT_STATE_CURRENT)
            cur = &b->entries[i];
    if (cur == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "restore: the backup has no current certificate");

    /* Refuse before changing anything, so a refusal leaves the store as it was. */
    here = authcert_store_find(s, cur->thumbprint);
    if (here != NULL && here->state == AUTHCERT_STATE_REVOKED)
        FAIL(AUTHCERT_E_POLICY,
             "certificate %s is revoked in this store; it cannot become current again",
             cur->thumbprint);

    /*
     * The backup's current first: the store's current (if another) becomes
     * expired; if it is the same one, only its exportable flag is set. Then
     * the others, whose state add() only ever makes stricter, so a
     * certificate revoked on either side ends revoked.
     */
    GUARD(authcert_store_make_current(s, cur->cert, exportable, AUTHCERT_STATE_EXPIRED));
    for (size_t i = 0; i < b->count; i++) {
        const authcert_backup_entry *e = &b->entries[i];
        if (e == cur)
            continue;
        GUARD(authcert_store_add(s, e->cert, e->state, exportable));
    }
    /* The hand-off statements go along: with them, agents on a restored
     * node's older certificates walk to the current one. */
    for (size_t i = 0; i < b->count; i++)
        if (b->entries[i].handoff != NULL)
            GUARD(authcert_store_set_handoff(s, b->entries[i].thumbprint, b->entries[i].handoff));
    if (!authcert_store_has_password(s))
        GUARD(authcert_store_set_password(s, password));
    /* The backup's server secret replaces this store's at commit: nodes
     * restored from one backup authenticate the same agents. */
    if (b->has_secret)
        store_stage_secret(s, b->secret);
    /* The backup's record of the current certificate's successor. */
    {
        char want[65] = "", have[65];
        bool has = false;
        authcert_next_key_where held = authcert_store_next_key(s, have);
        /* Never a step down: a sealed key already in the store is kept (the backup's may be
         * older, or made by whoever knows the backup password), an exported
         * record is only ever filled in by the sealed key itself. */
        if (authcert_cert_commitment(cur->cert, &has, want) == AUTHCERT_OK && has
            && strcmp(b->next_hash, want) == 0) {
            if (strcmp(have, want) != 0)
                held = AUTHCERT_NEXT_KEY_NONE; /* a record of another commitment */
            if (b->next_where == AUTHCERT_NEXT_KEY_SEALED && held != AUTHCERT_NEXT_KEY_SEALED)
                GUARD(authcert_store_stage_next_key(s, b->next));
            else if (b->next_where == AUTHCERT_NEXT_KEY_EXPORTED && held == AUTHCERT_NEXT_KEY_NONE)
                store_next_key_record_exported(s, b->next_hash, b->next_type);
        }
        authcert_clear_detail();
    }
    rc = AUTHCERT_OK;
out:
    return rc;
}
