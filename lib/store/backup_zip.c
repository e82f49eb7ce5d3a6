/*
 * The ZIP container around a backup, as bytes: the little that is checked
 * before libzip. libzip still does all the reading and all the
 * cryptography; this is fixed-layout record parsing (APPNOTE 4.3.14-16),
 * nothing more.
 *
 * zip_open reads and allocates the whole central directory that the
 * end-of-central-directory record (EOCD, or its ZIP64 form) announces, and
 * only then could the member cap apply: 750,000 empty members cost 6.6 s and
 * 293 MB. So the EOCD is read here first, and an archive announcing more
 * members than a backup may have, or a directory that does not fit in the
 * file, is refused without libzip seeing it. libzip tries every EOCD
 * signature in the last 64 KiB + 22 bytes (the longest comment), so every
 * one that passes for an EOCD is checked, and more than one is refused.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/authcert.h"
#include "internal.h"
#include "store/backup_internal.h"

#define EOCD_LEN 22
#define EOCD64_LOC_LEN 20
#define EOCD64_LEN 56
#define CDENTRY_LEN 46
#define MAX_COMMENT 65535u

static const uint8_t eocd_sig[4] = {'P', 'K', 5, 6};
static const uint8_t eocd64_loc_sig[4] = {'P', 'K', 6, 7};
static const uint8_t eocd64_sig[4] = {'P', 'K', 6, 6};

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
