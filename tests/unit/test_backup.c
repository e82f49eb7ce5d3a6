/*
 * Reading backups: every way an archive can be wrong, each in an archive
 * built here with libzip directly and encrypted correctly, so that only the
 * one defect under test is present. (Round trips through real stores and
 * the 7-Zip / bsdtar / openssl interop are in test_backup_store.c.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <zip.h>

#include "testlib.h"

#define PW TESTLIB_PASSWORD
#define THUMB_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define THUMB_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* ---- building archives by hand ------------------------------------------ */

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

/* Not a PKCS#12: the tests that use it must fail before import. */
static const char fake_pfx_a[] = "not a pkcs12 A";
static const char fake_pfx_b[] = "not a pkcs12 B";

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

/* A correct-looking archive: manifest + the given members, one defect at most. */
static void refused_with_members(const zm *extra, size_t nextra, authcert_status want,
                                 const char *needle)
{
    mcert cs[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0}};
    char *man = manifest_for(1, cs, 1);
    zm ms[8] = {{"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL},
                {"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ZIP_EM_AES_256, NULL}};
    uint8_t *zip;
    size_t len;

    for (size_t i = 0; i < nextra; i++)
        ms[2 + i] = extra[i];
    build_zip(ms, 2 + nextra, &zip, &len);
    expect_refused(zip, len, PW, want, needle);
    free(zip);
    free(man);
}

/* ---- reader: archives built by hand --------------------------------------- */

static void test_empty_and_garbage_are_corrupt(void **state)
{
    static const uint8_t garbage[] = "PK\x03\x04 this is not really a zip archive at all";
    char *dir = testlib_tmpdir("backup-empty");
    char path[512];
    authcert_backup *b = NULL;

    (void)state;
    expect_refused((const uint8_t *)"", 0, PW, AUTHCERT_E_CORRUPT, "empty");
    expect_refused(garbage, sizeof garbage, PW, AUTHCERT_E_CORRUPT, "not a ZIP archive");
    snprintf(path, sizeof path, "%s/empty.zip", dir);
    assert_int_equal(testlib_sh(": > '%s'", path), 0);
    assert_status(authcert_backup_read(path, PW, &b), AUTHCERT_E_CORRUPT);
    assert_null(b);
    assert_non_null(strstr(authcert_detail(), "empty.zip"));
    snprintf(path, sizeof path, "%s/missing.zip", dir);
    assert_status(authcert_backup_read(path, PW, &b), AUTHCERT_E_NOTFOUND);
    testlib_rmrf(dir);
    free(dir);
}

static void test_unsafe_member_names_are_corrupt(void **state)
{
    static const char *const bad[] = {
        "../x", "/abs", "certs/../../x", "certs\\" THUMB_B ".pfx", "certs/",
        "certs/" THUMB_B ".pfx/", "CERTS/" THUMB_B ".pfx", "./manifest.json",
        "certs/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB.pfx",
        "certs/" THUMB_B ".pfx.exe", "certs/bbbb.pfx", "notes.txt", "manifest.json.bak",
    };
    char needle[200];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zm extra = {bad[i], fake_pfx_b, sizeof fake_pfx_b, ZIP_EM_AES_256, NULL};
        snprintf(needle, sizeof needle, "unexpected member %s", bad[i]);
        if (strchr(bad[i], '\\') != NULL)
            snprintf(needle, sizeof needle, "unexpected member certs\\x5c");
        refused_with_members(&extra, 1, AUTHCERT_E_CORRUPT, needle);
    }
}

static void test_unprintable_member_name_is_escaped(void **state)
{
    mcert cs[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0}};
    char *man = manifest_for(1, cs, 1);
    zm ms[] = {{"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL},
               {"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ZIP_EM_AES_256, NULL},
               {"certs/XXXXXXevil", fake_pfx_b, sizeof fake_pfx_b, ZIP_EM_AES_256, NULL}};
    uint8_t *zip, *p;
    size_t len;
    int patched = 0;

    (void)state;
    build_zip(ms, 3, &zip, &len);
    /* A terminal escape and a byte that is not UTF-8, in both headers. */
    for (p = zip; (p = memmem(p, len - (size_t)(p - zip), "XXXXXX", 6)) != NULL; p += 6) {
        memcpy(p, "\x1b[2J\xff!", 6);
        patched++;
    }
    assert_int_equal(patched, 2);
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT,
                   "unexpected member certs/\\x1b[2J\\xff!evil");
    assert_null(strchr(authcert_detail(), '\x1b'));
    free(zip);
    free(man);
}

static void test_extra_listed_nowhere_is_corrupt(void **state)
{
    /* Well named and encrypted, but the manifest does not list it. */
    zm extra = {"certs/" THUMB_B ".pfx", fake_pfx_b, sizeof fake_pfx_b, ZIP_EM_AES_256, NULL};

    (void)state;
    refused_with_members(&extra, 1, AUTHCERT_E_CORRUPT, "not in the manifest");
}

static void test_unencrypted_or_weak_members_are_corrupt(void **state)
{
    mcert cs[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0}};
    char *man = manifest_for(1, cs, 1);
    const zip_uint16_t ems[][2] = {{ZIP_EM_NONE, ZIP_EM_AES_256},
                                   {ZIP_EM_AES_256, ZIP_EM_NONE},
                                   {ZIP_EM_AES_128, ZIP_EM_AES_256},
                                   {ZIP_EM_AES_256, ZIP_EM_AES_192},
                                   {ZIP_EM_AES_256, ZIP_EM_TRAD_PKWARE}};

    (void)state;
    for (size_t i = 0; i < sizeof ems / sizeof ems[0]; i++) {
        zm ms[] = {{"manifest.json", man, strlen(man), ems[i][0], NULL},
                   {"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ems[i][1], NULL}};
        uint8_t *zip;
        size_t len;
        build_zip(ms, 2, &zip, &len);
        expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, "is not encrypted with AES-256");
        free(zip);
    }
    free(man);
}

static void test_duplicate_member_is_corrupt(void **state)
{
    mcert cs[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0}};
    char *man = manifest_for(1, cs, 1);
    zm ms[] = {{"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL},
               {"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ZIP_EM_AES_256, NULL},
               {"certs/" THUMB_B ".pfx", fake_pfx_b, sizeof fake_pfx_b, ZIP_EM_AES_256, NULL}};
    uint8_t *zip, *p;
    size_t len;
    int renamed = 0;

    (void)state;
    build_zip(ms, 3, &zip, &len);
    /* libzip will not add a name twice; rename B to A in both of its headers. */
    for (p = zip; (p = memmem(p, len - (size_t)(p - zip), THUMB_B, 64)) != NULL; p += 64) {
        memcpy(p, THUMB_A, 64);
        renamed++;
    }
    assert_int_equal(renamed, 2);
    /* libzip itself refuses this one ("File already exists"); we check too. */
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, NULL);
    free(zip);
    free(man);
}

static void test_wrong_password_on_manifest_is_auth(void **state)
{
    mcert cs[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0}};
    char *man = manifest_for(1, cs, 1);
    zm ms[] = {{"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL},
               {"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ZIP_EM_AES_256, NULL}};
    uint8_t *zip;
    size_t len;
    char wrong[64];

    (void)state;
    build_zip(ms, 2, &zip, &len);
    for (int i = 0; i < 200; i++) {
        snprintf(wrong, sizeof wrong, "%s%d", PW, i);
        expect_refused(zip, len, wrong, AUTHCERT_E_AUTH, "wrong password");
    }
    /* The right password gets as far as the fake PKCS#12. */
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, "certs/" THUMB_A ".pfx");
    expect_refused(zip, len, "", AUTHCERT_E_USAGE, NULL);
    free(zip);
    free(man);
}

static void test_manifest_sha256_mismatch_is_corrupt(void **state)
{
    /* The manifest hashes B's bytes; the member holds A's. */
    mcert cs[] = {{THUMB_A, "current", fake_pfx_b, sizeof fake_pfx_b, 0, 0, 0}};
    char *man = manifest_for(1, cs, 1);
    zm ms[] = {{"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL},
               {"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ZIP_EM_AES_256, NULL}};
    uint8_t *zip;
    size_t len;

    (void)state;
    build_zip(ms, 2, &zip, &len);
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, "SHA-256 does not match the manifest");
    free(zip);
    free(man);
}

/* An archive whose manifest lists cs and which holds the members for cs. */
static void refused_manifest(int format, const mcert *cs, size_t n, authcert_status want,
                             const char *needle)
{
    char *man = manifest_for(format, cs, n);
    zm ms[4] = {{"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL}};
    char names[3][80];
    uint8_t *zip;
    size_t len, k = 1;

    for (size_t i = 0; i < n && i < 3; i++) {
        /* Listed twice: one member only. */
        if (i > 0 && strcmp(cs[i].thumb, cs[0].thumb) == 0)
            continue;
        snprintf(names[i], sizeof names[i], "certs/%s.pfx", cs[i].thumb);
        ms[k++] = (zm){names[i], cs[i].pfx, cs[i].pfxlen, ZIP_EM_AES_256, NULL};
    }
    build_zip(ms, k, &zip, &len);
    expect_refused(zip, len, PW, want, needle);
    free(zip);
    free(man);
}

static void test_manifest_semantics(void **state)
{
    mcert two_current[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0},
                           {THUMB_B, "current", fake_pfx_b, sizeof fake_pfx_b, 0, 0, 0}};
    mcert no_current[] = {{THUMB_A, "expired", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0},
                          {THUMB_B, "revoked", fake_pfx_b, sizeof fake_pfx_b, 0, 0, 0}};
    mcert bad_state[] = {{THUMB_A, "valid", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0}};
    mcert bad_type[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, "dsa1024", 0, 0}};
    mcert bad_date[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0,
                         "2026-02-30T00:00:00Z", 0}};
    mcert twice[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0},
                     {THUMB_A, "expired", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0}};

    (void)state;
    refused_manifest(2, two_current, 1, AUTHCERT_E_CORRUPT, "unsupported backup format 2");
    refused_manifest(1, two_current, 2, AUTHCERT_E_CORRUPT, "2 current certificates");
    refused_manifest(1, no_current, 2, AUTHCERT_E_CORRUPT, "0 current certificates");
    refused_manifest(1, bad_state, 1, AUTHCERT_E_CORRUPT, "unknown state");
    refused_manifest(1, bad_type, 1, AUTHCERT_E_CORRUPT, "unknown key type");
    refused_manifest(1, bad_date, 1, AUTHCERT_E_CORRUPT, "not_before");
    refused_manifest(1, twice, 2, AUTHCERT_E_CORRUPT, "twice");
}

/* Manifests that are not what our writer makes, as raw text. */
static void test_manifest_text_is_strict(void **state)
{
    char hash[65];
    static const char *const texts[] = {
        "not json",
        "[]",
        "{\"format\":\"1\"}",
        "{\"format\":1,\"format\":1,\"created\":\"2026-11-25T12:00:00Z\",\"generator\":\"x\","
        "\"certificates\":[]}",
        "{\"format\":1,\"created\":\"2026-11-25T12:00:00Z\",\"generator\":\"x\","
        "\"certificates\":[]}",
        "{\"format\":1,\"created\":\"yesterday\",\"generator\":\"x\",\"certificates\":[%s]}",
        "{\"format\":1,\"created\":\"2026-11-25T12:00:00Z\",\"generator\":\"x\",\"extra\":1,"
        "\"certificates\":[%s]}",
    };
    char entry[1024], text[2048];

    (void)state;
    sha256_hex(fake_pfx_a, sizeof fake_pfx_a, hash);
    snprintf(entry, sizeof entry,
             "{\"thumbprint\":\"%s\",\"state\":\"current\",\"exportable\":true,"
             "\"added\":\"2026-01-01T00:00:00Z\",\"retired\":null,"
             "\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2029-01-01T00:00:00Z\","
             "\"key_type\":\"p256\",\"member\":\"certs/%s.pfx\",\"sha256\":\"%s\"}",
             THUMB_A, THUMB_A, hash);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        zm ms[2];
        uint8_t *zip;
        size_t len;
        const char *hole = strstr(texts[i], "%s");
        if (hole != NULL)
            snprintf(text, sizeof text, "%.*s%s%s", (int)(hole - texts[i]), texts[i], entry,
                     hole + 2);
        else
            snprintf(text, sizeof text, "%s", texts[i]);
        ms[0] = (zm){"manifest.json", text, strlen(text), ZIP_EM_AES_256, NULL};
        ms[1] = (zm){"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ZIP_EM_AES_256,
                     NULL};
        build_zip(ms, 2, &zip, &len);
        expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, "manifest");
        free(zip);
    }
}

static void test_no_manifest_is_corrupt(void **state)
{
    zm ms[] = {{"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ZIP_EM_AES_256, NULL}};
    uint8_t *zip;
    size_t len;

    (void)state;
    build_zip(ms, 1, &zip, &len);
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, "no manifest.json");
    free(zip);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_garbage_are_corrupt),
        cmocka_unit_test(test_unsafe_member_names_are_corrupt),
        cmocka_unit_test(test_unprintable_member_name_is_escaped),
        cmocka_unit_test(test_extra_listed_nowhere_is_corrupt),
        cmocka_unit_test(test_unencrypted_or_weak_members_are_corrupt),
        cmocka_unit_test(test_duplicate_member_is_corrupt),
        cmocka_unit_test(test_wrong_password_on_manifest_is_auth),
        cmocka_unit_test(test_manifest_sha256_mismatch_is_corrupt),
        cmocka_unit_test(test_manifest_semantics),
        cmocka_unit_test(test_manifest_text_is_strict),
        cmocka_unit_test(test_no_manifest_is_corrupt),
    };
    int rc;

    if (authcert_init() != AUTHCERT_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    authcert_cleanup();
    return rc;
}
