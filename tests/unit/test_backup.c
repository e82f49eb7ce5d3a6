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
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <zip.h>

#include "testlib.h"
#include "testlib_pfx.h"
#include "backup_zip.h"

#define THUMB_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define THUMB_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Not a PKCS#12: the tests that use it must fail before import. */
static const char fake_pfx_a[] = "not a pkcs12 A";
static const char fake_pfx_b[] = "not a pkcs12 B";

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

/*
 * A golden archive (tests/data/backup-verifier-collision.zip, made with
 * libzip: manifest + a fake PKCS#12, password PW) and a wrong password found
 * by search that passes WinZip AES's 16-bit verifier on the manifest: libzip
 * opens the member and decrypts garbage. Only reading to the end (the HMAC)
 * stops it; stopping at the declared size would parse garbage as JSON.
 */
static void test_wrong_password_past_the_16_bit_verifier_is_auth(void **state)
{
    char path[1024];
    const char *src_dir;
    uint8_t *zip = NULL;
    size_t len = 0;
    zip_t *za;
    zip_error_t zerr;
    zip_source_t *src;
    zip_file_t *zf;

    (void)state;
    src_dir = getenv("AUTHCERT_SRC");
    assert_non_null(src_dir);
    snprintf(path, sizeof path, "%s/tests/data/backup-verifier-collision.zip", src_dir);
    assert_ok(authcert_read_file(path, 1 << 20, &zip, &len));

    /* The premise: libzip lets this wrong password open the manifest. */
    zip_error_init(&zerr);
    src = zip_source_buffer_create(zip, len, 0, &zerr);
    za = zip_open_from_source(src, ZIP_RDONLY, &zerr);
    assert_non_null(za);
    zf = zip_fopen_index_encrypted(za, 0, 0, "wrong password 60698");
    assert_non_null(zf);
    zip_fclose(zf);
    zip_discard(za);
    zip_error_fini(&zerr);

    expect_refused(zip, len, "wrong password 60698", AUTHCERT_E_AUTH, "wrong password");
    /* And the right one gets to the (fake) PKCS#12. */
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, ".pfx");
    free(zip);
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

/* ---- the end of the central directory, before libzip (issue 14) -------- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A copy of zip with the 22-byte EOCD at its end given to edit. */
static uint8_t *with_eocd(const uint8_t *zip, size_t len, uint8_t **eocd)
{
    uint8_t *c = malloc(len);

    memcpy(c, zip, len);
    *eocd = c + len - 22;
    assert_memory_equal(*eocd, "PK\5\6", 4);
    return c;
}

static void test_end_of_directory_checked_first(void **state)
{
    mcert cs[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0}};
    char *man = manifest_for(1, cs, 1);
    zm ms[] = {{"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL},
               {"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ZIP_EM_AES_256, NULL}};
    uint8_t *zip, *c, *e, *two;
    size_t len;
    /* Nothing but a ZIP64 end record announcing 750,000 members, its locator and the EOCD. */
    uint8_t only[56 + 20 + 22] = {0};

    (void)state;
    memcpy(only, "PK\6\6", 4);
    put_le(only + 4, 44, 8);
    put_le(only + 24, 750000, 8);
    put_le(only + 32, 750000, 8);
    put_le(only + 40, 750000 * 46ULL, 8);
    memcpy(only + 56, "PK\6\7", 4);
    put_le(only + 56 + 16, 1, 4);
    memcpy(only + 76, "PK\5\6", 4);
    put_le(only + 76 + 8, 0xffff, 2);
    put_le(only + 76 + 10, 0xffff, 2);
    put_le(only + 76 + 12, 0xffffffff, 4);
    put_le(only + 76 + 16, 0xffffffff, 4);
    expect_refused(only, sizeof only, PW, AUTHCERT_E_CORRUPT,
                   "announces 750000 members (at most 1000): refused before reading");

    build_zip(ms, 2, &zip, &len);
    /* 65,535 members in the plain EOCD. */
    c = with_eocd(zip, len, &e);
    put_le(e + 8, 0xffff, 2);
    put_le(e + 10, 0xffff, 2);
    expect_refused(c, len, PW, AUTHCERT_E_CORRUPT, "announces 65535 members");
    free(c);
    /* A directory past the end of the file, or bigger than it. */
    c = with_eocd(zip, len, &e);
    put_le(e + 16, len, 4);
    expect_refused(c, len, PW, AUTHCERT_E_CORRUPT, "central directory does not fit");
    put_le(e + 16, 0, 4);
    put_le(e + 12, 0xfffffff0, 4);
    expect_refused(c, len, PW, AUTHCERT_E_CORRUPT, "central directory does not fit");
    free(c);
    /* A ZIP64 locator that points nowhere. */
    c = with_eocd(zip, len, &e);
    memcpy(e - 20, "PK\6\7", 4);
    put_le(e - 12, len, 8);
    expect_refused(c, len, PW, AUTHCERT_E_CORRUPT, "damaged ZIP64 end of central directory");
    free(c);
    /* Two of them: which would libzip pick? */
    two = malloc(len + 22);
    memcpy(two, zip, len);
    memcpy(two + len, zip + len - 22, 22);
    expect_refused(two, len + 22, PW, AUTHCERT_E_CORRUPT, "more than one end of central");
    /* None: truncated. */
    expect_refused(zip, len - 1, PW, AUTHCERT_E_CORRUPT, "no end of central directory");
    /* The control: untouched, it gets as far as the fake PKCS#12. */
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, "certs/" THUMB_A ".pfx");
    free(two);
    free(zip);
    free(man);
}

/* 7-Zip adds the folder as an entry of its own: empty, it is passed over. */
static void test_empty_certs_folder_is_ignored(void **state)
{
    mcert cs[] = {{THUMB_A, "current", fake_pfx_a, sizeof fake_pfx_a, 0, 0, 0}};
    char *man = manifest_for(1, cs, 1);
    zm ms[] = {{"certs/", "", 0, ZIP_EM_NONE, NULL},
               {"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL},
               {"certs/" THUMB_A ".pfx", fake_pfx_a, sizeof fake_pfx_a, ZIP_EM_AES_256, NULL}};
    uint8_t *zip;
    size_t len;

    (void)state;
    build_zip(ms, 3, &zip, &len);
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, "certs/" THUMB_A ".pfx"); /* got that far */
    free(zip);
    free(man);
}

/* ---- the PKCS#12 members' iteration counts (issue 14) ------------------- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A real certificate's PKCS#12 and what the manifest says of it. */
typedef struct real {
    authcert_cert *cert;
    uint8_t *pfx;
    size_t len;
    char nb[32], na[32];
} real;

static void real_new(real *r)
{
    authcert_cert_params p = {.type = AUTHCERT_KEY_P256};
    authcert_cert_info info;
    struct tm tm;

    assert_ok(authcert_cert_generate(&p, &r->cert));
    assert_ok(authcert_pkcs12_export(r->cert, PW, &r->pfx, &r->len));
    authcert_cert_get_info(r->cert, &info);
    strftime(r->nb, sizeof r->nb, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&info.not_before, &tm));
    strftime(r->na, sizeof r->na, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&info.not_after, &tm));
}

static void real_free(real *r)
{
    authcert_cert_free(r->cert);
    OPENSSL_free(r->pfx);
}

/* A backup of a's and b's PKCS#12 (a current), read with a deadline of a second. */
static void refused_quickly(const real *a, const uint8_t *bpfx, size_t blen, const real *b,
                            const char *needle)
{
    mcert cs[] = {{authcert_cert_thumbprint(a->cert), "current", a->pfx, a->len, 0, a->nb, a->na},
                  {authcert_cert_thumbprint(b->cert), "expired", bpfx, blen, 0, b->nb, b->na}};
    char *man = manifest_for(1, cs, 2);
    char na[80], nb[80];
    zm ms[3];
    uint8_t *zip;
    size_t len;
    double t0;

    snprintf(na, sizeof na, "certs/%s.pfx", cs[0].thumb);
    snprintf(nb, sizeof nb, "certs/%s.pfx", cs[1].thumb);
    ms[0] = (zm){"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL};
    ms[1] = (zm){na, a->pfx, a->len, ZIP_EM_AES_256, NULL};
    ms[2] = (zm){nb, bpfx, blen, ZIP_EM_AES_256, NULL};
    build_zip(ms, 3, &zip, &len);
    t0 = now_s();
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, needle);
    assert_true(now_s() - t0 < 1.0);
    free(zip);
    free(man);
}

/*
 * A member asking 2^31-1 iterations (MAC, encrypted safe or key) is refused
 * before any derivation; and the members share one budget: after a normal
 * one, a member asking the cap in each of its three derivations (30,000,000
 * in all, what -i of it alone would allow) is over it, refused before its
 * first derivation.
 */
static void test_pkcs12_members_capped(void **state)
{
    static const testlib_pfx_field fields[] = {TESTLIB_PFX_MAC, TESTLIB_PFX_SAFE,
                                               TESTLIB_PFX_KEY};
    real a, b;
    uint8_t *p, *q;
    size_t plen = 0, qlen = 0;

    (void)state;
    real_new(&a);
    real_new(&b);
    for (size_t f = 0; f < 3; f++) {
        assert_non_null(p = testlib_pfx_set_iter(b.pfx, b.len, fields[f], INT32_MAX, PW, &plen));
        refused_quickly(&a, p, plen, &b, "asks for 2147483647 iterations");
        OPENSSL_free(p);
    }
    assert_non_null(p = testlib_pfx_set_iter(b.pfx, b.len, TESTLIB_PFX_SAFE,
                                             AUTHCERT_PKCS12_MAX_ITER, PW, &plen));
    assert_non_null(q = testlib_pfx_set_iter(p, plen, TESTLIB_PFX_KEY, AUTHCERT_PKCS12_MAX_ITER,
                                             PW, &qlen));
    OPENSSL_free(p);
    assert_non_null(p = testlib_pfx_set_iter(q, qlen, TESTLIB_PFX_MAC, AUTHCERT_PKCS12_MAX_ITER,
                                             PW, &plen));
    refused_quickly(&a, p, plen, &b, "iterations together");
    OPENSSL_free(p);
    OPENSSL_free(q);
    real_free(&a);
    real_free(&b);
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
        cmocka_unit_test(test_wrong_password_past_the_16_bit_verifier_is_auth),
        cmocka_unit_test(test_manifest_sha256_mismatch_is_corrupt),
        cmocka_unit_test(test_manifest_semantics),
        cmocka_unit_test(test_manifest_text_is_strict),
        cmocka_unit_test(test_no_manifest_is_corrupt),
        cmocka_unit_test(test_end_of_directory_checked_first),
        cmocka_unit_test(test_empty_certs_folder_is_ignored),
        cmocka_unit_test(test_pkcs12_members_capped),
    };
    int rc;

    if (authcert_init() != AUTHCERT_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    authcert_cleanup();
    return rc;
}
