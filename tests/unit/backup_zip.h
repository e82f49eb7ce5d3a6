/*
 * Building backup-shaped archives by hand with libzip, for the backup tests
 * (test_backup.c, test_backup_store.c). Static helpers: include once.
 */
#ifndef BACKUP_ZIP_H
#define BACKUP_ZIP_H

#include <jansson.h>
#include <openssl/evp.h>
#include <zip.h>

#define PW TESTLIB_PASSWORD

typedef struct zm {
    const char *name;
    const void *data;
    size_t len;
    zip_uint16_t em;      /* ZIP_EM_NONE, ZIP_EM_AES_256, ... */
    const char *password; /* NULL: PW */
} zm;

static void build_zip(const zm *ms, size_t n, uint8_t **out, size_t *len)
{
    zip_error_t zerr;
    zip_source_t *src, *s;
    zip_t *za;
    zip_stat_t st;

    zip_error_init(&zerr);
    src = zip_source_buffer_create(NULL, 0, 0, &zerr);
    assert_non_null(src);
    za = zip_open_from_source(src, ZIP_TRUNCATE, &zerr);
    assert_non_null(za);
    zip_source_keep(src);
    for (size_t i = 0; i < n; i++) {
        zip_int64_t idx;
        s = zip_source_buffer(za, ms[i].data, ms[i].len, 0);
        assert_non_null(s);
        idx = zip_file_add(za, ms[i].name, s, ZIP_FL_ENC_UTF_8);
        assert_true(idx >= 0);
        if (ms[i].em != ZIP_EM_NONE)
            assert_int_equal(zip_file_set_encryption(za, (zip_uint64_t)idx, ms[i].em,
                                                     ms[i].password ? ms[i].password : PW),
                             0);
    }
    assert_int_equal(zip_close(za), 0);
    assert_int_equal(zip_source_open(src), 0);
    zip_stat_init(&st);
    assert_int_equal(zip_source_stat(src, &st), 0);
    *out = malloc(st.size);
    assert_int_equal(zip_source_read(src, *out, st.size), (zip_int64_t)st.size);
    *len = st.size;
    zip_source_close(src);
    zip_source_free(src);
    zip_error_fini(&zerr);
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen;

    assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

typedef struct mcert {
    const char *thumb;
    const char *state;
    const void *pfx; /* hashed for the manifest */
    size_t pfxlen;
    const char *key_type;     /* NULL: p256 */
    const char *not_before;   /* NULL: a fixed date */
    const char *not_after;
} mcert;

/* A manifest as our writer makes it, for the given certificates. */
static char *manifest_for(int format, const mcert *cs, size_t n)
{
    json_t *root = json_object(), *arr = json_array();
    char *text;

    json_object_set_new(root, "format", json_integer(format));
    json_object_set_new(root, "created", json_string("2026-11-25T12:00:00Z"));
    json_object_set_new(root, "generator", json_string("test"));
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        char member[80], hash[65];
        snprintf(member, sizeof member, "certs/%s.pfx", cs[i].thumb);
        sha256_hex(cs[i].pfx, cs[i].pfxlen, hash);
        json_object_set_new(o, "thumbprint", json_string(cs[i].thumb));
        json_object_set_new(o, "state", json_string(cs[i].state));
        json_object_set_new(o, "exportable", json_true());
        json_object_set_new(o, "added", json_string("2026-01-01T00:00:00Z"));
        json_object_set_new(o, "retired", json_null());
        json_object_set_new(o, "not_before", json_string(cs[i].not_before ? cs[i].not_before
                                                                       : "2026-01-01T00:00:00Z"));
        json_object_set_new(o, "not_after", json_string(cs[i].not_after ? cs[i].not_after
                                                                     : "2029-01-01T00:00:00Z"));
        json_object_set_new(o, "key_type", json_string(cs[i].key_type ? cs[i].key_type : "p256"));
        json_object_set_new(o, "member", json_string(member));
        json_object_set_new(o, "sha256", json_string(hash));
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "certificates", arr);
    text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
    json_decref(root);
    return text;
}

/* Read bytes that must be refused with want, detail containing needle. */
static void expect_refused(const uint8_t *zip, size_t len, const char *password,
                           authcert_status want, const char *needle)
{
    authcert_backup *b = (authcert_backup *)0x1;

    assert_status(authcert_backup_read_mem(zip, len, password, &b), want);
    assert_null(b);
    if (needle != NULL && strstr(authcert_detail(), needle) == NULL)
        fail_msg("detail \"%s\" lacks \"%s\"", authcert_detail(), needle);
}

#endif
