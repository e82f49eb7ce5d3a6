/*
 * Helpers for test_cert.c and test_pkcs12.c: the golden vectors in
 * tests/data (made by tests/data/mkdata.sh) and files for the openssl CLI.
 * Include after testlib.h.
 */
#ifndef AUTHCERT_TEST_CERTDATA_H
#define AUTHCERT_TEST_CERTDATA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tests/data/<name>, found from this header's own path (CMake passes absolute paths). */
static inline char *data_path(const char *name)
{
    const char *here = __FILE__;
    const char *slash = strrchr(here, '/');
    char *path;
    int dirlen = slash != NULL ? (int)(slash - here) : 1;

    if (asprintf(&path, "%.*s/../data/%s", dirlen, slash != NULL ? here : ".", name) < 0)
        abort();
    return path;
}

/* A whole file, NUL-terminated beyond *len; NULL when unreadable. Caller frees. */
static inline uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (f == NULL)
        return NULL;
    do {
        if (n + 4096 + 1 > cap) {
            cap = (n + 4096 + 1) * 2;
            buf = realloc(buf, cap);
            if (buf == NULL)
                abort();
        }
        got = fread(buf + n, 1, 4096, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static inline uint8_t *slurp_data(const char *name, size_t *len)
{
    char *path = data_path(name);
    uint8_t *buf = slurp(path, len);

    if (buf == NULL)
        fail_msg("cannot read test vector %s", path);
    free(path);
    return buf;
}

static inline void spill(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

#endif
