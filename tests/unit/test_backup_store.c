/*
 * Backups of real stores: round trips, what 7-Zip, bsdtar and the openssl
 * tool make of them, damage (truncation, flipped bytes, wrong passwords),
 * directories, non-exportable keys, and restore's rules for states.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <zip.h>

#include "testlib.h"
#include "backup_zip.h"

typedef struct fixture {
    char *dir;            /* scratch; the store is dir/store */
    authcert_store *s;
    authcert_cert *cur, *exp, *rev; /* p256 current, rsa2048 expired, ed25519 revoked */
} fixture;

static authcert_cert *new_cert(authcert_key_type t)
{
    authcert_cert_params p = {.type = t, .days = 30, .subject = NULL};
    authcert_cert *c = NULL;

    assert_ok(authcert_cert_generate(&p, &c));
    return c;
}

static authcert_store *open_store(const char *dir, const char *name)
{
    char path[512];
    authcert_store *s = NULL;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_ok(authcert_store_open(path, AUTHCERT_STORE_CREATE, &s));
    return s;
}

/* A store with one certificate in each state, of three key types. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    f->dir = testlib_tmpdir("backup");
    f->s = open_store(f->dir, "store");
    f->exp = new_cert(AUTHCERT_KEY_RSA2048);
    f->rev = new_cert(AUTHCERT_KEY_ED25519);
    f->cur = new_cert(AUTHCERT_KEY_P256);
    assert_ok(authcert_store_make_current(f->s, f->exp, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_store_make_current(f->s, f->rev, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_store_make_current(f->s, f->cur, true, AUTHCERT_STATE_REVOKED));
    assert_ok(authcert_store_commit(f->s));
    assert_int_equal(authcert_store_count(f->s), 3);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    authcert_store_close(f->s);
    authcert_cert_free(f->cur);
    authcert_cert_free(f->exp);
    authcert_cert_free(f->rev);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static char *write_backup(fixture *f, const char *name)
{
    char *path, *written = NULL;

    assert_true(asprintf(&path, "%s/%s", f->dir, name) > 0);
    assert_ok(authcert_backup_write(f->s, PW, path, 0, &written));
    assert_string_equal(written, path);
    free(written);
    return path;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *data = NULL;

    assert_ok(authcert_read_file(path, AUTHCERT_BACKUP_MAX_SIZE, &data, len));
    return data;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- round trip and interop ------------------------------------------------ */

static void test_round_trip(void **state)
{
    fixture *f = *state;
    char *path = write_backup(f, "b.zip");
    authcert_backup *b = NULL;
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_ok(authcert_backup_read(path, PW, &b));
    assert_string_equal(authcert_backup_path(b), path);
    assert_int_equal(authcert_backup_count(b), 3);
    for (size_t i = 0; i < authcert_backup_count(b); i++) {
        const authcert_backup_entry *e = authcert_backup_entry_at(b, i);
        const authcert_store_entry *se = authcert_store_find(f->s, e->thumbprint);
        assert_non_null(se);
        assert_int_equal(e->state, se->state);
        assert_int_equal(e->exportable, se->exportable);
        assert_int_equal(e->added, se->added);
        assert_int_equal(e->retired, se->retired);
        assert_string_equal(authcert_cert_thumbprint(e->cert), se->thumbprint);
        assert_int_equal(authcert_cert_key_type(e->cert), authcert_cert_key_type(se->cert));
        assert_true(authcert_cert_has_key(e->cert));
        assert_int_equal(EVP_PKEY_eq(authcert_cert_pkey(e->cert), authcert_cert_pkey(se->cert)),
                         1);
    }
    assert_int_equal(authcert_backup_entry_at(b, 0)->state == AUTHCERT_STATE_CURRENT ||
                         authcert_backup_entry_at(b, 1)->state == AUTHCERT_STATE_CURRENT ||
                         authcert_backup_entry_at(b, 2)->state == AUTHCERT_STATE_CURRENT,
                     1);
    assert_null(authcert_backup_entry_at(b, 3));
    authcert_backup_free(b);
    /* A named file is replaced, not refused. */
    free(write_backup(f, "b.zip"));
    free(path);
}

static void test_interop_7z_bsdtar_openssl(void **state)
{
    fixture *f = *state;
    char *path = write_backup(f, "interop.zip");
    char out[512], man[600];
    json_t *root, *certs, *c;
    json_error_t jerr;
    size_t i;

    assert_int_equal(testlib_sh("7z t -bd -p'%s' '%s' >/dev/null 2>&1", PW, path), 0);
    assert_int_not_equal(testlib_sh("7z t -bd -p'%sx' '%s' >/dev/null 2>&1", PW, path), 0);
    assert_int_not_equal(testlib_sh("7z t -bd '%s' </dev/null >/dev/null 2>&1", path), 0);

    snprintf(out, sizeof out, "%s/x", f->dir);
    assert_int_equal(testlib_sh("mkdir '%s' && bsdtar -xf '%s' --passphrase '%s' -C '%s'",
                                out, path, PW, out), 0);
    snprintf(man, sizeof man, "%s/manifest.json", out);
    root = json_load_file(man, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "format")), 1);
    certs = json_object_get(root, "certificates");
    assert_int_equal(json_array_size(certs), 3);
    json_array_foreach(certs, i, c) {
        const char *thumb = json_string_value(json_object_get(c, "thumbprint"));
        const char *member = json_string_value(json_object_get(c, "member"));
        char pfx[700], hash[65], want[80];
        uint8_t *data;
        size_t len;
        snprintf(want, sizeof want, "certs/%s.pfx", thumb);
        assert_string_equal(member, want);
        snprintf(pfx, sizeof pfx, "%s/%s", out, member);
        data = slurp(pfx, &len);
        sha256_hex(data, len, hash);
        assert_string_equal(hash, json_string_value(json_object_get(c, "sha256")));
        free(data);
        assert_int_equal(testlib_sh("openssl pkcs12 -in '%s' -passin pass:'%s' -noout", pfx,
                                    PW), 0);
        assert_int_not_equal(testlib_sh("openssl pkcs12 -in '%s' -passin pass:wrong -noout "
                                        "2>/dev/null", pfx), 0);
        /* The certificate inside is the one the name says. */
        assert_int_equal(testlib_sh("test \"$(openssl pkcs12 -in '%s' -passin pass:'%s' "
                                    "-nokeys | openssl x509 -outform DER | sha256sum | "
                                    "cut -c1-64)\" = %s", pfx, PW, thumb), 0);
    }
    json_decref(root);
    free(path);
}

/* ---- damage ------------------------------------------------------------------ */

static void test_wrong_passwords_never_pass(void **state)
{
    fixture *f = *state;
    char *path = write_backup(f, "pw.zip");
    char wrong[80];

    /* The AES verifier is 16 bits: only the HMAC stops the odd one. */
    for (int i = 0; i < 30; i++) {
        authcert_backup *b = (authcert_backup *)0x1;
        snprintf(wrong, sizeof wrong, "wrong password %d", i);
        assert_status(authcert_backup_read(path, wrong, &b), AUTHCERT_E_AUTH);
        assert_null(b);
    }
    free(path);
}

static void test_truncated_is_refused(void **state)
{
    fixture *f = *state;
    char *path = write_backup(f, "t.zip");
    size_t len, cuts[64], n = 0;
    uint8_t *data = slurp(path, &len);

    cuts[n++] = 1;
    cuts[n++] = 4;
    cuts[n++] = 30;
    cuts[n++] = len - 1;
    cuts[n++] = len - 22; /* the end-of-central-directory record */
    cuts[n++] = len - 23;
    for (size_t k = 1; k < 40; k++)
        cuts[n++] = len * k / 40;
    for (size_t k = 0; k < n; k++) {
        authcert_backup *b = (authcert_backup *)0x1;
        authcert_status rc = authcert_backup_read_mem(data, cuts[k], PW, &b);
        if (rc != AUTHCERT_E_CORRUPT && rc != AUTHCERT_E_AUTH)
            fail_msg("cut at %zu of %zu: %s", cuts[k], len, authcert_strerror(rc));
        assert_null(b);
    }
    free(data);
    free(path);
}

/* Each local header's data range, walked the way a reader would. */
static size_t member_ranges(const uint8_t *z, size_t len, size_t (*r)[2], size_t max)
{
    size_t off = 0, n = 0;

    while (off + 30 <= len && memcmp(z + off, "PK\x03\x04", 4) == 0 && n < max) {
        size_t csize = z[off + 18] | z[off + 19] << 8 | (size_t)z[off + 20] << 16 |
                       (size_t)z[off + 21] << 24;
        size_t nlen = z[off + 26] | z[off + 27] << 8, xlen = z[off + 28] | z[off + 29] << 8;
        r[n][0] = off + 30 + nlen + xlen;
        r[n][1] = r[n][0] + csize;
        off = r[n++][1];
    }
    return n;
}

static void test_flipped_byte_in_any_member_is_refused(void **state)
{
    fixture *f = *state;
    char *path = write_backup(f, "f.zip");
    size_t len, r[8][2], n;
    uint8_t *data = slurp(path, &len);

    n = member_ranges(data, len, r, 8);
    assert_int_equal(n, 5); /* three PKCS#12, the server secret and the manifest */
    for (size_t m = 0; m < n; m++) {
        size_t size = r[m][1] - r[m][0];
        /* salt, verifier, ciphertext start/middle/end, HMAC */
        size_t at[] = {0, 16, 17, 19, size / 2, size - 11, size - 1};
        for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
            authcert_backup *b = (authcert_backup *)0x1;
            authcert_status rc;
            data[r[m][0] + at[k]] ^= 0x01;
            rc = authcert_backup_read_mem(data, len, PW, &b);
            data[r[m][0] + at[k]] ^= 0x01;
            if (rc != AUTHCERT_E_CORRUPT && rc != AUTHCERT_E_AUTH)
                fail_msg("member %zu byte %zu: %s", m, at[k], authcert_strerror(rc));
            assert_null(b);
        }
    }
    free(data);
    free(path);
}

/* Anywhere in the file: refused, or (a harmless header field) the same backup. */
static void test_flipped_byte_anywhere_never_changes_the_result(void **state)
{
    fixture *f = *state;
    char *path = write_backup(f, "g.zip");
    size_t len;
    uint8_t *data = slurp(path, &len);
    authcert_backup *good = NULL;

    assert_ok(authcert_backup_read_mem(data, len, PW, &good));
    for (size_t at = 3; at < len; at += 53) {
        authcert_backup *b = NULL;
        data[at] ^= 0x20;
        if (authcert_backup_read_mem(data, len, PW, &b) == AUTHCERT_OK) {
            assert_int_equal(authcert_backup_count(b), authcert_backup_count(good));
            for (size_t i = 0; i < authcert_backup_count(b); i++) {
                const authcert_backup_entry *x = authcert_backup_entry_at(b, i);
                const authcert_backup_entry *y = authcert_backup_entry_at(good, i);
                assert_string_equal(x->thumbprint, y->thumbprint);
                assert_int_equal(x->state, y->state);
                assert_int_equal(EVP_PKEY_eq(authcert_cert_pkey(x->cert),
                                             authcert_cert_pkey(y->cert)), 1);
            }
        } else {
            assert_null(b);
        }
        authcert_backup_free(b);
        data[at] ^= 0x20;
    }
    authcert_backup_free(good);
    free(data);
    free(path);
}

static void test_pfx_of_another_certificate_is_corrupt(void **state)
{
    fixture *f = *state;
    uint8_t *pfx = NULL, *zip;
    size_t pfxlen = 0, len;
    char name[80], nb[32], na[32];
    authcert_cert_info info;
    char *man;
    (void)state;

    /* The current certificate's PKCS#12 under the expired one's name. */
    assert_ok(authcert_pkcs12_export(f->cur, PW, &pfx, &pfxlen));
    authcert_cert_get_info(f->cur, &info);
    strftime(nb, sizeof nb, "%Y-%m-%dT%H:%M:%SZ", gmtime(&info.not_before));
    strftime(na, sizeof na, "%Y-%m-%dT%H:%M:%SZ", gmtime(&info.not_after));
    {
        mcert cs[] = {{authcert_cert_thumbprint(f->exp), "current", pfx, pfxlen, "p256", nb, na}};
        man = manifest_for(1, cs, 1);
    }
    snprintf(name, sizeof name, "certs/%s.pfx", authcert_cert_thumbprint(f->exp));
    {
        zm ms[] = {{"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL},
                   {name, pfx, pfxlen, ZIP_EM_AES_256, NULL}};
        build_zip(ms, 2, &zip, &len);
    }
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, "not the one its name says");
    free(zip);
    free(man);

    /* Right name, but a PKCS#12 under another password: not our backup. */
    OPENSSL_free(pfx);
    assert_ok(authcert_pkcs12_export(f->cur, "another password 123", &pfx, &pfxlen));
    {
        mcert cs[] = {{authcert_cert_thumbprint(f->cur), "current", pfx, pfxlen, "p256", nb, na}};
        man = manifest_for(1, cs, 1);
    }
    snprintf(name, sizeof name, "certs/%s.pfx", authcert_cert_thumbprint(f->cur));
    {
        zm ms[] = {{"manifest.json", man, strlen(man), ZIP_EM_AES_256, NULL},
                   {name, pfx, pfxlen, ZIP_EM_AES_256, NULL}};
        build_zip(ms, 2, &zip, &len);
    }
    expect_refused(zip, len, PW, AUTHCERT_E_CORRUPT, "does not open");
    free(zip);
    free(man);
    OPENSSL_free(pfx);
}

/* ---- directories ------------------------------------------------------------------ */

static void test_directory_names_and_newest(void **state)
{
    fixture *f = *state;
    char dir[512], *w1 = NULL, *w2 = NULL, *old;
    authcert_backup *b = NULL;

    snprintf(dir, sizeof dir, "%s/backups", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_status(authcert_backup_read(dir, PW, &b), AUTHCERT_E_NOTFOUND);

    assert_ok(authcert_backup_write(f->s, PW, dir, 0, &w1));
    assert_ok(authcert_backup_write(f->s, PW, dir, 0, &w2));
    /* Never overwritten: the second in the same second gets -2. */
    assert_string_not_equal(w1, w2);
    assert_non_null(strstr(w1, "/authcert-backup-"));
    if (strncmp(w1, w2, strlen(w1) - 4) == 0)
        assert_string_equal(w2 + strlen(w1) - 4, "-2.zip");
    assert_int_equal(count_files(dir), 2);

    assert_ok(authcert_backup_read(dir, PW, &b));
    assert_string_equal(authcert_backup_path(b), w2);
    authcert_backup_free(b);

    /* Older stamps, temporary files and other names do not count. */
    assert_int_equal(testlib_sh("cd '%s' && echo junk > authcert-backup-20200101T000000Z.zip"
                                " && echo junk > authcert-backup-29991231T235959Z.zip.a1b2.tmp"
                                " && echo junk > authcert-backup-latest.zip"
                                " && echo junk > zzz.zip", dir), 0);
    assert_ok(authcert_backup_read(dir, PW, &b));
    assert_string_equal(authcert_backup_path(b), w2);
    authcert_backup_free(b);

    /* A newer stamp wins even when it is damaged: no silent fallback. */
    assert_true(asprintf(&old, "%s/authcert-backup-29990101T000000Z.zip", dir) > 0);
    assert_int_equal(testlib_sh("echo junk > '%s'", old), 0);
    assert_status(authcert_backup_read(dir, PW, &b), AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "authcert-backup-29990101T000000Z.zip"));
    assert_int_equal(testlib_sh("cp '%s' '%s' && cp '%s' '%s/authcert-backup-29990101T000000Z-10.zip'"
                                " && echo junk > '%s/authcert-backup-29990101T000000Z-9.zip'",
                                w1, old, w2, dir, dir), 0);
    assert_ok(authcert_backup_read(dir, PW, &b));
    assert_non_null(strstr(authcert_backup_path(b), "29990101T000000Z-10.zip"));
    authcert_backup_free(b);
    free(old);
    free(w1);
    free(w2);
}

/* ---- what is left out ---------------------------------------------------------- */

static void test_unexportable_refused_or_skipped(void **state)
{
    fixture *f = *state;
    char dir[512], *w = NULL;
    authcert_store *s = open_store(f->dir, "re");
    authcert_cert *other = new_cert(AUTHCERT_KEY_P256);
    authcert_backup *b = NULL;

    snprintf(dir, sizeof dir, "%s/out", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    /* An old key restored with -re, and an exportable current one. */
    assert_ok(authcert_store_make_current(s, f->exp, false, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_store_make_current(s, other, true, AUTHCERT_STATE_EXPIRED));
    assert_status(authcert_backup_write(s, PW, dir, 0, &w), AUTHCERT_E_POLICY);
    assert_null(w);
    assert_non_null(strstr(authcert_detail(), authcert_cert_thumbprint(f->exp)));
    assert_non_null(strstr(authcert_detail(), "not exportable"));
    assert_int_equal(count_files(dir), 0);

    assert_ok(authcert_backup_write(s, PW, dir, AUTHCERT_BACKUP_SKIP_UNEXPORTABLE, &w));
    assert_ok(authcert_backup_read(w, PW, &b));
    assert_int_equal(authcert_backup_count(b), 1);
    assert_string_equal(authcert_backup_entry_at(b, 0)->thumbprint,
                        authcert_cert_thumbprint(other));
    authcert_backup_free(b);
    free(w);
    w = NULL;
    authcert_store_close(s);

    /* The current key not exportable: a backup without it is no backup. */
    s = open_store(f->dir, "re2");
    assert_ok(authcert_store_make_current(s, other, false, AUTHCERT_STATE_EXPIRED));
    assert_status(authcert_backup_write(s, PW, dir, AUTHCERT_BACKUP_SKIP_UNEXPORTABLE, &w),
                  AUTHCERT_E_POLICY);
    assert_int_equal(count_files(dir), 1);
    authcert_store_close(s);

    s = open_store(f->dir, "empty");
    assert_status(authcert_backup_write(s, PW, dir, 0, &w), AUTHCERT_E_NOTFOUND);
    assert_int_equal(count_files(dir), 1);
    authcert_store_close(s);
    authcert_cert_free(other);
}

/* ---- restore -------------------------------------------------------------------- */

static authcert_backup *backup_of(fixture *f)
{
    char *path = write_backup(f, "r.zip");
    authcert_backup *b = NULL;

    assert_ok(authcert_backup_read(path, PW, &b));
    free(path);
    return b;
}

static authcert_state state_in(authcert_store *s, const authcert_cert *c)
{
    const authcert_store_entry *e = authcert_store_find(s, authcert_cert_thumbprint(c));

    assert_non_null(e);
    return e->state;
}

static void test_restore_into_other_store(void **state)
{
    fixture *f = *state;
    authcert_backup *b = backup_of(f);
    authcert_store *s = open_store(f->dir, "other");
    authcert_cert *mine = new_cert(AUTHCERT_KEY_P256);

    assert_ok(authcert_store_make_current(s, mine, true, AUTHCERT_STATE_EXPIRED));
    assert_false(authcert_store_has_password(s));
    assert_ok(authcert_backup_restore(s, b, PW, false));
    assert_int_equal(authcert_store_count(s), 4);
    assert_string_equal(authcert_store_current(s)->thumbprint, authcert_cert_thumbprint(f->cur));
    assert_int_equal(state_in(s, mine), AUTHCERT_STATE_EXPIRED);
    assert_int_equal(state_in(s, f->exp), AUTHCERT_STATE_EXPIRED);
    assert_int_equal(state_in(s, f->rev), AUTHCERT_STATE_REVOKED);
    /* -re: none of the restored keys can be backed up again. */
    assert_false(authcert_store_find(s, authcert_cert_thumbprint(f->cur))->exportable);
    assert_false(authcert_store_find(s, authcert_cert_thumbprint(f->exp))->exportable);
    assert_true(authcert_store_find(s, authcert_cert_thumbprint(mine))->exportable);
    assert_ok(authcert_store_check_password(s, PW));
    assert_ok(authcert_store_commit(s));
    authcert_store_close(s);

    /* -r, into a store whose current is the backup's expired one. */
    s = open_store(f->dir, "other2");
    assert_ok(authcert_store_make_current(s, f->exp, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_store_set_password(s, "an older password 77"));
    assert_ok(authcert_backup_restore(s, b, PW, true));
    assert_string_equal(authcert_store_current(s)->thumbprint, authcert_cert_thumbprint(f->cur));
    assert_int_equal(state_in(s, f->exp), AUTHCERT_STATE_EXPIRED);
    assert_true(authcert_store_find(s, authcert_cert_thumbprint(f->cur))->exportable);
    /* A store that has a password keeps it. */
    assert_ok(authcert_store_check_password(s, "an older password 77"));
    authcert_store_close(s);
    authcert_cert_free(mine);
    authcert_backup_free(b);
}

static void test_restore_never_unrevokes(void **state)
{
    fixture *f = *state;
    authcert_backup *b = backup_of(f);
    authcert_store *s = open_store(f->dir, "rv");
    authcert_cert *mine = new_cert(AUTHCERT_KEY_P256);

    /* The backup's revoked one is merely expired here: it ends revoked. */
    assert_ok(authcert_store_make_current(s, f->rev, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_store_make_current(s, mine, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_backup_restore(s, b, PW, true));
    assert_int_equal(state_in(s, f->rev), AUTHCERT_STATE_REVOKED);
    assert_int_equal(state_in(s, mine), AUTHCERT_STATE_EXPIRED);
    authcert_store_close(s);

    /* The backup's revoked one is current here: replaced, and revoked. */
    s = open_store(f->dir, "rv1");
    assert_ok(authcert_store_make_current(s, f->rev, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_backup_restore(s, b, PW, true));
    assert_string_equal(authcert_store_current(s)->thumbprint, authcert_cert_thumbprint(f->cur));
    assert_int_equal(state_in(s, f->rev), AUTHCERT_STATE_REVOKED);
    authcert_store_close(s);

    /* Restoring into the store it came from changes no state; -re clears exportable. */
    assert_ok(authcert_backup_restore(f->s, b, PW, false));
    assert_int_equal(authcert_store_count(f->s), 3);
    assert_int_equal(state_in(f->s, f->cur), AUTHCERT_STATE_CURRENT);
    assert_int_equal(state_in(f->s, f->exp), AUTHCERT_STATE_EXPIRED);
    assert_int_equal(state_in(f->s, f->rev), AUTHCERT_STATE_REVOKED);
    assert_false(authcert_store_current(f->s)->exportable);

    /* The backup's current one was revoked here: refused, nothing changed. */
    s = open_store(f->dir, "rv2");
    assert_ok(authcert_store_make_current(s, f->cur, true, AUTHCERT_STATE_EXPIRED));
    assert_ok(authcert_store_make_current(s, mine, true, AUTHCERT_STATE_REVOKED));
    assert_status(authcert_backup_restore(s, b, PW, true), AUTHCERT_E_POLICY);
    assert_non_null(strstr(authcert_detail(), authcert_cert_thumbprint(f->cur)));
    assert_int_equal(authcert_store_count(s), 2);
    assert_string_equal(authcert_store_current(s)->thumbprint, authcert_cert_thumbprint(mine));
    assert_int_equal(state_in(s, f->cur), AUTHCERT_STATE_REVOKED);
    assert_false(authcert_store_has_password(s));
    authcert_store_close(s);
    authcert_cert_free(mine);
    authcert_backup_free(b);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_interop_7z_bsdtar_openssl),
        T(test_wrong_passwords_never_pass),
        T(test_truncated_is_refused),
        T(test_flipped_byte_in_any_member_is_refused),
        T(test_flipped_byte_anywhere_never_changes_the_result),
        T(test_pfx_of_another_certificate_is_corrupt),
        T(test_directory_names_and_newest),
        T(test_unexportable_refused_or_skipped),
        T(test_restore_into_other_store),
        T(test_restore_never_unrevokes),
    };
    int rc;

    if (authcert_init() != AUTHCERT_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    authcert_cleanup();
    return rc;
}
