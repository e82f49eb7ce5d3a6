/*
 * The ZIP container around a backup, as bytes: the little that is checked
 * before libzip, and beside it. libzip still does all the reading and all
 * the cryptography; this is fixed-layout record parsing (APPNOTE 4.3.12,
 * 4.3.14-16), nothing more.
 *
 * Before: zip_open reads and allocates the whole central directory that the
 * end-of-central-directory record (EOCD, or its ZIP64 form) announces, and
 * only then could the member cap apply: 750,000 empty members cost 6.6 s and
 * 293 MB. So the EOCD is read here first, and an archive announcing more
 * members than a backup may have, or a directory that does not fit in the
 * file, is refused without libzip seeing it. libzip tries every EOCD
 * signature in the last 64 KiB + 22 bytes (the longest comment), so every
 * one that passes for an EOCD is checked, and more than one is refused.
 *
 * Beside: reading a member so that libzip authenticates it. Two things
 * libzip 1.7 does not do for us, found on archives 7-Zip wrote
 * (`7z a -tzip -mem=AES256`, refused as "wrong password" before):
 *
 * - The HMAC of a compressed member: its inflate layer stops at the end of
 *   the deflate stream and never asks the decryption layer for the end of
 *   the data, where the HMAC is checked; a forged HMAC, or a CTR bit flip
 *   with a CRC fixed to match (CRC-32 is linear), went through. So every
 *   compressed member is first read raw (ZIP_FL_COMPRESSED: decrypted, not
 *   inflated, no CRC) to its end, which libzip does authenticate.
 * - WinZip AE-2, which 7-Zip writes, stores 0 as the CRC (the HMAC replaces
 *   it); libzip 1.7 checks that 0 anyway for members of 20 bytes or more, and
 *   says ZIP_ER_CRC, the code an HMAC failure has. A compressed member has
 *   been authenticated by then, so that CRC complaint is taken for what it
 *   is. A stored one has not (its HMAC and CRC are checked in one read), so
 *   it is read again from a copy of the archive whose CRC fields say the CRC
 *   of what it decrypted to: then only the HMAC can fail, and must not. One
 *   copy for all of them, made when the first is read.
 *   libzip still does every decryption and every check; we only keep its
 *   CRC check from hiding the HMAC's verdict.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <zip.h>
#include <zlib.h>

#include "authcert/authcert.h"
#include "internal.h"
#include "store/backup_internal.h"

#define EOCD_LEN 22
#define EOCD64_LOC_LEN 20
#define EOCD64_LEN 56
#define CDENTRY_LEN 46
#define LOCAL_LEN 30
#define MAX_COMMENT 65535u

static const uint8_t eocd_sig[4] = {'P', 'K', 5, 6};
static const uint8_t eocd64_loc_sig[4] = {'P', 'K', 6, 7};
static const uint8_t eocd64_sig[4] = {'P', 'K', 6, 6};
static const uint8_t central_sig[4] = {'P', 'K', 1, 2};
static const uint8_t local_sig[4] = {'P', 'K', 3, 4};

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/*
 * The EOCD candidate at `at`, as libzip would take it: its member count, and
 * where its directory is and must end. false when libzip would pass it over
 * (not one disk, counts that disagree): random bytes that look like a
 * signature.
 */
static bool read_eocd(const uint8_t *zip, size_t at, uint64_t *count, uint64_t *cd_off,
                      uint64_t *cd_size, uint64_t *cd_end, bool *bad64)
{
    const uint8_t *e = zip + at;
    size_t loc;
    uint64_t e64;

    *bad64 = false;
    if (le(e + 4, 4) != 0 || le(e + 8, 2) != le(e + 10, 2))
        return false;
    *count = le(e + 10, 2);
    *cd_size = le(e + 12, 4);
    *cd_off = le(e + 16, 4);
    *cd_end = at;
    if (at < EOCD64_LOC_LEN || memcmp(e - EOCD64_LOC_LEN, eocd64_loc_sig, 4) != 0)
        return true;
    /* ZIP64: the locator just before says where the real counts are. */
    loc = at - EOCD64_LOC_LEN;
    e64 = le(zip + loc + 8, 8);
    if (e64 > loc || loc - e64 < EOCD64_LEN || memcmp(zip + e64, eocd64_sig, 4) != 0 ||
        le(zip + e64 + 24, 8) != le(zip + e64 + 32, 8)) {
        *bad64 = true;
        return true;
    }
    *count = le(zip + e64 + 32, 8);
    *cd_size = le(zip + e64 + 40, 8);
    *cd_off = le(zip + e64 + 48, 8);
    *cd_end = e64;
    return true;
}

authcert_status backup_zip_check_end(const uint8_t *zip, size_t len, backup_zip_dir *dir)
{
    size_t from = len > MAX_COMMENT + EOCD_LEN ? len - (MAX_COMMENT + EOCD_LEN) : 0;
    size_t found = 0;

    if (len < EOCD_LEN)
        return authcert_fail(AUTHCERT_E_CORRUPT, "not a ZIP archive: too short");
    for (size_t at = from; at + EOCD_LEN <= len; at++) {
        uint64_t count, off, size, end;
        bool bad64;

        if (memcmp(zip + at, eocd_sig, 4) != 0 ||
            !read_eocd(zip, at, &count, &off, &size, &end, &bad64))
            continue;
        if (bad64)
            return authcert_fail(AUTHCERT_E_CORRUPT, "damaged ZIP64 end of central directory");
        if (count > BACKUP_MAX_MEMBERS)
            return authcert_fail(AUTHCERT_E_CORRUPT, "the archive announces %llu members "
                                 "(at most %d): refused before reading its directory",
                                 (unsigned long long)count, BACKUP_MAX_MEMBERS);
        if (size > end || off > end - size || count * CDENTRY_LEN > size)
            return authcert_fail(AUTHCERT_E_CORRUPT, "the archive's central directory does "
                                 "not fit its %llu members or the file",
                                 (unsigned long long)count);
        if (++found > 1)
            return authcert_fail(AUTHCERT_E_CORRUPT,
                                 "the archive has more than one end of central directory");
        dir->count = count;
        dir->offset = off;
        dir->size = size;
    }
    if (found == 0)
        return authcert_fail(AUTHCERT_E_CORRUPT,
                             "not a ZIP archive, or truncated: no end of central directory");
    return AUTHCERT_OK;
}

/*
 * The offsets in zip of the CRC-32 fields of member index (whose raw name
 * is name) in its central and its local header; AUTHCERT_E_CORRUPT when the
 * headers are not where, or not what, the directory says.
 */
static authcert_status crc_fields(const uint8_t *zip, size_t len, const backup_zip_dir *dir,
                                  uint64_t index, const char *name, size_t *central,
                                  size_t *local)
{
    uint64_t p = dir->offset, end = dir->offset + dir->size;
    size_t nlen = strlen(name);

    for (uint64_t i = 0; i < dir->count && p + CDENTRY_LEN <= end; i++) {
        const uint8_t *c = zip + p;
        uint64_t n = le(c + 28, 2), lho = le(c + 42, 4);

        if (memcmp(c, central_sig, 4) != 0)
            break;
        if (i == index) {
            /* The entry libzip calls index, by name, in both headers. */
            if (n != nlen || p + CDENTRY_LEN + n > end ||
                memcmp(c + CDENTRY_LEN, name, nlen) != 0 || lho + LOCAL_LEN + n > len ||
                memcmp(zip + lho, local_sig, 4) != 0 || le(zip + lho + 26, 2) != n ||
                memcmp(zip + lho + LOCAL_LEN, name, nlen) != 0)
                break;
            *central = (size_t)p + 16;
            *local = (size_t)lho + 14;
            return AUTHCERT_OK;
        }
        p += CDENTRY_LEN + n + le(c + 30, 2) + le(c + 32, 2);
    }
    return authcert_fail(AUTHCERT_E_CORRUPT, "member %s: its headers are not where the "
                         "central directory says", name);
}

/* ---- reading a member ------------------------------------------------------ */

/* A libzip failure on a member's data; see the file comment for AUTH vs CORRUPT. */
static authcert_status member_fail(int ze, const backup_member *m, const char *name)
{
    bool decrypt = ze == ZIP_ER_WRONGPASSWD || ze == ZIP_ER_NOPASSWD ||
                   ze == ZIP_ER_CRC || ze == ZIP_ER_ZLIB ||
                   ze == ZIP_ER_COMPRESSED_DATA || ze == ZIP_ER_EOF || ze == ZIP_ER_OK;
    zip_error_t e;
    authcert_status st;

    if (m->manifest && decrypt)
        return authcert_fail(AUTHCERT_E_AUTH, "wrong password");
    zip_error_init_with_code(&e, ze);
    st = authcert_fail(AUTHCERT_E_CORRUPT, "member %s does not decrypt: %s", name,
                       ze == ZIP_ER_OK ? "wrong length" : zip_error_strerror(&e));
    zip_error_fini(&e);
    return st;
}

/*
 * The whole member, read past its declared size to the end so that libzip
 * checks the HMAC (of a stored member) and the CRC, and zip_fclose's verdict
 * too. 0, or libzip's error code; *out and *got hold what came out either
 * way (*out, of m->size + 1 bytes, is the caller's to free).
 */
static int read_plain(zip_t *za, const backup_member *m, uint8_t **out, size_t *got)
{
    zip_file_t *zf = zip_fopen_index(za, m->index, 0);
    size_t cap = (size_t)m->size + 1;
    uint8_t *buf;
    int ze;

    *got = 0;
    *out = NULL;
    if (zf == NULL)
        return zip_error_code_zip(zip_get_error(za));
    if ((buf = malloc(cap)) == NULL) {
        zip_fclose(zf);
        return ZIP_ER_MEMORY;
    }
    *out = buf;
    for (;;) {
        zip_int64_t r = zip_fread(zf, buf + *got, cap - *got);
        if (r < 0) {
            ze = zip_error_code_zip(zip_file_get_error(zf));
            zip_fclose(zf);
            return ze != 0 ? ze : ZIP_ER_READ;
        }
        if (r == 0 || (*got += (size_t)r) == cap)
            break;
    }
    return zip_fclose(zf);
}

/*
 * A compressed member's raw data, decrypted but not inflated, read to its
 * end: libzip checks the password verifier at the open and the HMAC over
 * all of it at the end, with no CRC check in the way (see the file comment).
 */
static authcert_status authenticate(zip_t *za, const backup_member *m, const char *name)
{
    zip_file_t *zf = zip_fopen_index(za, m->index, ZIP_FL_COMPRESSED);
    uint8_t buf[16384];
    zip_int64_t r;
    int ze;

    if (zf == NULL)
        return member_fail(zip_error_code_zip(zip_get_error(za)), m, name);
    while ((r = zip_fread(zf, buf, sizeof buf)) > 0)
        continue;
    ze = r < 0 ? zip_error_code_zip(zip_file_get_error(zf)) : 0;
    if (zip_fclose(zf) != 0 && ze == 0)
        ze = ZIP_ER_CRC;
    OPENSSL_cleanse(buf, sizeof buf);
    return ze == 0 ? AUTHCERT_OK : member_fail(ze, m, name);
}

/*
 * The archive again, with the CRC fields of every stored member that says
 * 0 (AE-2) set to the CRC of what it decrypts to, open in rd->fixed: read
 * from there, such a member fails only if its HMAC does. Done once, when
 * the first of them is read. A member that does not decrypt here keeps its
 * 0, and fails when its turn comes, as it would have.
 */
static authcert_status fix_crcs(backup_reader *rd)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    zip_source_t *src = NULL;
    zip_error_t zerr;
    uint8_t *plain = NULL;
    size_t plain_cap = 0;

    zip_error_init(&zerr);
    GUARD_ALLOC(rd->fixed_data = malloc(rd->len));
    memcpy(rd->fixed_data, rd->data, rd->len);
    for (size_t k = 0; k < rd->nmembers; k++) {
        const backup_member *m = &rd->members[k];
        const char *raw = zip_get_name(rd->za, m->index, ZIP_FL_ENC_RAW);
        size_t central = 0, local = 0, got = 0;
        uLong crc;
        int ze;

        if (m->folder || m->compressed || !m->crc_zero || raw == NULL)
            continue;
        ze = read_plain(rd->za, m, &plain, &got);
        plain_cap = (size_t)m->size + 1;
        if ((ze == 0 || ze == ZIP_ER_CRC) && got == m->size) {
            GUARD(crc_fields(rd->data, rd->len, &rd->dir, m->index, raw, &central, &local));
            crc = crc32(0L, plain, (uInt)got);
            /* A local header that defers to a data descriptor (bit 3 of its
             * flags, 8 bytes before its CRC) keeps its 0s, as libzip expects. */
            for (int i = 0; i < 4; i++) {
                rd->fixed_data[central + (size_t)i] = (uint8_t)(crc >> (8 * i));
                if (!(rd->fixed_data[local - 8] & 0x08))
                    rd->fixed_data[local + (size_t)i] = (uint8_t)(crc >> (8 * i));
            }
        }
        if (plain != NULL)
            OPENSSL_clear_free(plain, plain_cap);
        plain = NULL;
    }
    GUARD_ALLOC(src = zip_source_buffer_create(rd->fixed_data, rd->len, 0, &zerr));
    if ((rd->fixed = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &zerr)) == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "not a ZIP archive or damaged: %s", zip_error_strerror(&zerr));
    src = NULL; /* rd->fixed owns it now */
    if (zip_set_default_password(rd->fixed, rd->password) != 0)
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    rc = AUTHCERT_OK;
out:
    if (plain != NULL)
        OPENSSL_clear_free(plain, plain_cap);
    if (src != NULL)
        zip_source_free(src);
    zip_error_fini(&zerr);
    return rc;
}

authcert_status backup_zip_read_member(backup_reader *rd, const backup_member *m,
                                       const char *name, uint8_t **out, size_t *outlen)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    uint8_t *buf = NULL;
    size_t got = 0;
    int ze;

    if (m->compressed)
        GUARD(authenticate(rd->za, m, name));
    ze = read_plain(rd->za, m, &buf, &got);
    if (ze == ZIP_ER_CRC && m->crc_zero && got == m->size) {
        /* AE-2's 0 in place of a CRC: the HMAC is what authenticates. */
        ze = 0;
        if (!m->compressed) {
            OPENSSL_clear_free(buf, (size_t)m->size + 1);
            buf = NULL;
            if (rd->fixed == NULL)
                GUARD(fix_crcs(rd));
            ze = read_plain(rd->fixed, m, &buf, &got);
        }
    }
    if (ze != 0 || got != m->size) {
        rc = member_fail(ze, m, name);
        goto out;
    }
    *out = buf;
    *outlen = got;
    buf = NULL;
    rc = AUTHCERT_OK;
out:
    if (buf != NULL)
        OPENSSL_clear_free(buf, (size_t)m->size + 1);
    return rc;
}

void backup_zip_reader_fini(backup_reader *rd)
{
    if (rd->fixed != NULL)
        zip_discard(rd->fixed); /* frees the source, not fixed_data */
    free(rd->fixed_data);       /* the archive's bytes: ciphertext */
    if (rd->za != NULL)
        zip_discard(rd->za);
    rd->fixed = rd->za = NULL;
    rd->fixed_data = NULL;
}
