/* Password strength, the scrypt hash format, verification, and secret copies. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "testlib.h"

/*
 * Made with tools nobody here wrote, so that the format and parameters can
 * never drift from what stores already hold:
 *   openssl kdf -keylen 32 -kdfopt 'pass:correct horse battery staple 42' \
 *     -kdfopt hexsalt:000102030405060708090a0b0c0d0e0f -kdfopt n:32768 \
 *     -kdfopt r:8 -kdfopt p:1 SCRYPT | tr -d ':\n' | xxd -r -p | base64
 * (Python's hashlib.scrypt gives the same.)
 */
#define GOLDEN_SALT "AAECAwQFBgcICQoLDA0ODw=="
#define GOLDEN_HASH "PaDuErRxk1KsgAe7tnCvJxDGqpft4oGXGzYyaJCfXKY="
#define GOLDEN "scrypt$15$8$1$" GOLDEN_SALT "$" GOLDEN_HASH

/* Refused as weak; the detail names the threshold but never the password. */
static void expect_weak(const char *pw, const char *reason)
{
    double bits = -1;
    authcert_status rc = authcert_password_check_strength(pw, &bits);

    if (rc != AUTHCERT_E_WEAK)
        fail_msg("\"%s\": got %s, want weak", pw, authcert_strerror(rc));
    assert_true(bits >= 0 && bits < AUTHCERT_PASSWORD_MIN_BITS);
    if (pw[0] != '\0')
        assert_null(strstr(authcert_detail(), pw));
    assert_null(strchr(authcert_detail(), '\n'));
    if (reason != NULL && strstr(authcert_detail(), reason) == NULL)
        fail_msg("\"%s\": detail \"%s\" lacks \"%s\"", pw, authcert_detail(), reason);
}

static void test_weak_passwords_refused(void **state)
{
    (void)state;
    /* The original manual's example of a strong password. */
    expect_weak("strongpassword", "at least 60 needed");
    expect_weak("password123", "at least 60 needed");
    expect_weak("Tr0ub4dor&3", "at least 60 needed");
    expect_weak("aaaaaaaaaaaaaaaaaaaa", "at least 60 needed");
    expect_weak("qwertyuiopasdfgh", "at least 60 needed");
    expect_weak("Summer2024", NULL);
    expect_weak("", "at least 60 bits needed");
}

static void test_detail_names_estimate_and_reason(void **state)
{
    double bits;

    (void)state;
    assert_status(authcert_password_check_strength("strongpassword", &bits),
                  AUTHCERT_E_WEAK);
    char want[128];
    snprintf(want, sizeof want, "password too weak: estimated %d bits, at least 60 needed",
             (int)bits);
    assert_true(strncmp(authcert_detail(), want, strlen(want)) == 0);

    expect_weak("strongpassword", "dictionary words");
    expect_weak("Tr0ub4dor&3", "dictionary words");
    expect_weak("aaaaaaaaaaaaaaaaaaaa", "repeated");
    expect_weak("abcdefghijklmnopqrst", "common sequence");
    expect_weak("asdfghjkl;", "keyboard pattern");
    expect_weak("bnmhjkuio", "keyboard pattern");
    expect_weak("1984-12-31", "date or year");
    expect_weak("kQ8vN3xL", "too short");
    expect_weak("Xy7", "too short");
}

/* Scores 61 bits without the product's own words, 19 with them. */
static void test_product_words_count_as_dictionary(void **state)
{
    (void)state;
    expect_weak("authcert-backup-password", "dictionary words");
    expect_weak("authcert fleet backup restore", "dictionary words");
}

static void test_strong_passwords_accepted(void **state)
{
    const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789!#%&()*+,-./:;<=>?@[]^_{|}~";
    double bits = 0;

    (void)state;
    assert_ok(authcert_password_check_strength(TESTLIB_PASSWORD, &bits));
    assert_true(bits >= AUTHCERT_PASSWORD_MIN_BITS);
    assert_ok(authcert_password_check_strength("correct horse battery staple", NULL));
    /* Non-ASCII text is fine when it is valid UTF-8. */
    assert_ok(authcert_password_check_strength("ночь улица фонарь аптека 1912", NULL));

    /*
     * Random 20-character passwords, as a password manager makes them.
     * (At 16 characters zxcvbn finds a "word" in about 1 of 10,000 and
     * scores it under 60 bits: measured over 20,000, lowest 55.8. At 20 the
     * lowest of 20,000 was 77.7, so this cannot flake.)
     */
    for (int i = 0; i < 50; i++) {
        unsigned char rnd[20];
        char pw[21];

        assert_int_equal(RAND_bytes(rnd, sizeof rnd), 1);
        for (size_t k = 0; k < sizeof rnd; k++)
            pw[k] = set[rnd[k] % (sizeof set - 1)];
        pw[20] = '\0';
        if (authcert_password_check_strength(pw, &bits) != AUTHCERT_OK)
            fail_msg("random \"%s\" refused: %s", pw, authcert_detail());
    }
}

static void test_length_bounds(void **state)
{
    char *pw = malloc(2001);
    double bits = -1;

    (void)state;
    assert_non_null(pw);
    /* A strong 1024-byte password is the longest accepted... */
    for (int i = 0; i < 2000; i++)
        pw[i] = "correct horse battery staple 42 "[i % 32];
    pw[AUTHCERT_PASSWORD_MAX_LEN] = '\0';
    assert_ok(authcert_password_check_strength(pw, NULL));
    /* ...one byte more, or 2000, is refused without being estimated. */
    pw[AUTHCERT_PASSWORD_MAX_LEN] = 'x';
    pw[AUTHCERT_PASSWORD_MAX_LEN + 1] = '\0';
    assert_status(authcert_password_check_strength(pw, &bits), AUTHCERT_E_WEAK);
    assert_string_equal(authcert_detail(), "password refused: longer than 1024 bytes");
    assert_true(bits == 0.0);
    pw[2000] = '\0';
    assert_status(authcert_password_check_strength(pw, NULL), AUTHCERT_E_WEAK);
    free(pw);
}

static void test_control_characters_and_bad_utf8_refused(void **state)
{
    static const char *const ctl[] = {
        "correct horse\nbattery staple 42",   /* a file's newline left in */
        "correct horse battery staple 42\r",
        "correct horse\tbattery staple 42",
        "correct horse battery\x7f staple 42",  /* DEL */
        "correct horse \xc2\x85 battery staple 42", /* C1 NEL */
    };
    static const char *const bad[] = {
        "correct horse battery staple \xff",
        "correct horse battery staple \xc0\xaf",       /* overlong '/' */
        "correct horse battery staple \xe0\x80\xaf",
        "correct horse battery staple \xf0\x80\x80\xaf",
        "correct horse battery staple \xe2\x82",       /* truncated */
        "correct horse battery staple \xed\xa0\x80",   /* surrogate */
        "correct horse battery staple \xf4\x90\x80\x80", /* past U+10FFFF */
        "correct horse battery staple \x80",           /* lone continuation */
    };

    (void)state;
    for (size_t i = 0; i < sizeof ctl / sizeof *ctl; i++) {
        assert_status(authcert_password_check_strength(ctl[i], NULL), AUTHCERT_E_WEAK);
        assert_non_null(strstr(authcert_detail(), "control character"));
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_status(authcert_password_check_strength(bad[i], NULL), AUTHCERT_E_WEAK);
        assert_string_equal(authcert_detail(), "password refused: it is not valid UTF-8 text");
    }
    assert_status(authcert_password_check_strength(NULL, NULL), AUTHCERT_E_USAGE);
}

/* ------------------------------------------------------------------ hashes */

static void test_hash_format(void **state)
{
    char *enc = NULL;
    unsigned char raw[64];

    (void)state;
    assert_ok(authcert_password_hash(TESTLIB_PASSWORD, &enc));
    assert_true(strncmp(enc, "scrypt$15$8$1$", 14) == 0);
    assert_null(strstr(enc, TESTLIB_PASSWORD));
    /* salt: 24 base64 characters -> 16 bytes; hash: 44 -> 32. */
    const char *salt = enc + 14, *dollar = strchr(salt, '$');
    assert_non_null(dollar);
    assert_int_equal(dollar - salt, 24);
    assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)salt, 24), 18);
    assert_int_equal(strlen(dollar + 1), 44);
    assert_null(strchr(dollar + 1, '$'));
    assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)dollar + 1, 44), 33);
    free(enc);
}

/* The hash is the one OpenSSL's own command computes from the same salt. */
static void test_hash_matches_openssl_kdf(void **state)
{
    char *enc = NULL, salt[25], hash[45];

    (void)state;
    assert_ok(authcert_password_hash(TESTLIB_PASSWORD, &enc));
    assert_int_equal(sscanf(enc, "scrypt$15$8$1$%24[^$]$%44s", salt, hash), 2);
    assert_int_equal(testlib_sh(
        "s=$(echo '%s' | base64 -d | od -An -tx1 | tr -d ' \\n'); "
        "want=$(echo '%s' | base64 -d | od -An -tx1 | tr -d ' \\n'); "
        "got=$(openssl kdf -keylen 32 -kdfopt 'pass:%s' -kdfopt hexsalt:$s "
        "-kdfopt n:32768 -kdfopt r:8 -kdfopt p:1 SCRYPT | tr -d ':\\n' | tr A-F a-f); "
        "test -n \"$got\" && test \"$got\" = \"$want\"",
        salt, hash, TESTLIB_PASSWORD), 0);
    free(enc);
}

static void test_golden_vector_verifies(void **state)
{
    (void)state;
    assert_ok(authcert_password_verify(TESTLIB_PASSWORD, GOLDEN));
    assert_status(authcert_password_verify("correct horse battery staple 43", GOLDEN),
                  AUTHCERT_E_AUTH);
}

static void test_round_trip_and_wrong_passwords(void **state)
{
    char *enc = NULL;
    const char *pw = TESTLIB_PASSWORD;
    char near[64];

    (void)state;
    assert_ok(authcert_password_hash(pw, &enc));
    assert_ok(authcert_password_verify(pw, enc));
    assert_status(authcert_password_verify("wrong", enc), AUTHCERT_E_AUTH);
    assert_string_equal(authcert_detail(), "wrong password");
    assert_status(authcert_password_verify("", enc), AUTHCERT_E_AUTH);

    /* Every byte counts: differing only in the last one, a prefix, or one more. */
    snprintf(near, sizeof near, "%s", pw);
    near[strlen(near) - 1] ^= 1;
    assert_status(authcert_password_verify(near, enc), AUTHCERT_E_AUTH);
    snprintf(near, sizeof near, "%.*s", (int)strlen(pw) - 1, pw);
    assert_status(authcert_password_verify(near, enc), AUTHCERT_E_AUTH);
    snprintf(near, sizeof near, "%s ", pw);
    assert_status(authcert_password_verify(near, enc), AUTHCERT_E_AUTH);
    free(enc);

    /* Hashing does not judge strength: an empty password still round-trips. */
    assert_ok(authcert_password_hash("", &enc));
    assert_ok(authcert_password_verify("", enc));
    assert_status(authcert_password_verify("x", enc), AUTHCERT_E_AUTH);
    free(enc);
}

static void test_same_password_different_salts(void **state)
{
    char *a = NULL, *b = NULL;

    (void)state;
    assert_ok(authcert_password_hash(TESTLIB_PASSWORD, &a));
    assert_ok(authcert_password_hash(TESTLIB_PASSWORD, &b));
    assert_string_not_equal(a, b);
    assert_true(strncmp(a, b, 14 + 24) != 0); /* the salts themselves differ */
    assert_ok(authcert_password_verify(TESTLIB_PASSWORD, a));
    assert_ok(authcert_password_verify(TESTLIB_PASSWORD, b));
    free(a);
    free(b);
}

static void expect_verify(const char *enc, authcert_status want)
{
    authcert_status rc = authcert_password_verify(TESTLIB_PASSWORD, enc);

    if (rc != want)
        fail_msg("\"%s\": got %s (%s), want %s", enc, authcert_strerror(rc),
                 authcert_detail(), authcert_strerror(want));
}

/* A copy of GOLDEN with the character at i replaced by c. */
static const char *golden_with(size_t i, char c)
{
    static char buf[sizeof GOLDEN];

    memcpy(buf, GOLDEN, sizeof GOLDEN);
    buf[i] = c;
    return buf;
}

static void test_tampered_encodings(void **state)
{
    const size_t hash_at = strlen(GOLDEN) - 44, salt_at = 14;
    char buf[256];

    (void)state;
    /* Well-formed but different: the wrong hash, salt or cost -> AUTH. */
    expect_verify(golden_with(hash_at + 10, GOLDEN[hash_at + 10] == 'A' ? 'B' : 'A'),
                  AUTHCERT_E_AUTH);
    expect_verify(golden_with(hash_at, GOLDEN[hash_at] == 'A' ? 'B' : 'A'), AUTHCERT_E_AUTH);
    expect_verify(golden_with(salt_at + 3, 'Z'), AUTHCERT_E_AUTH);
    expect_verify("scrypt$14$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_AUTH);
    expect_verify("scrypt$15$4$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_AUTH);
    expect_verify("scrypt$15$8$2$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_AUTH);
    /* Only the last hash byte differs ("Y" -> "U" keeps the spare bits 0). */
    expect_verify(golden_with(strlen(GOLDEN) - 2, 'U'), AUTHCERT_E_AUTH);

    /* Malformed -> CORRUPT. */
    expect_verify("", AUTHCERT_E_CORRUPT);
    expect_verify("scrypt", AUTHCERT_E_CORRUPT);
    snprintf(buf, sizeof buf, "%.*s", (int)strlen(GOLDEN) - 1, GOLDEN);   /* truncated */
    expect_verify(buf, AUTHCERT_E_CORRUPT);
    snprintf(buf, sizeof buf, "%.*s", (int)hash_at, GOLDEN);              /* no hash */
    expect_verify(buf, AUTHCERT_E_CORRUPT);
    snprintf(buf, sizeof buf, "%.*s", (int)hash_at - 1, GOLDEN);          /* 5 fields */
    expect_verify(buf, AUTHCERT_E_CORRUPT);
    expect_verify(GOLDEN "$", AUTHCERT_E_CORRUPT);                        /* 7 fields */
    expect_verify(GOLDEN "$x", AUTHCERT_E_CORRUPT);
    expect_verify(GOLDEN "A", AUTHCERT_E_CORRUPT);
    expect_verify(GOLDEN "\n", AUTHCERT_E_CORRUPT);
    expect_verify("bcrypt$15$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("SCRYPT$15$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$15$8$1$$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    /* Parameters outside the bounds, or not plain decimals. */
    expect_verify("scrypt$40$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$9$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$21$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$15$0$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$15$33$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$15$8$0$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$15$8$17$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$015$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$+15$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$ 15$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$32768$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    /* Within each bound but together gigabytes or minutes of work. */
    expect_verify("scrypt$20$32$16$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$20$8$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    assert_non_null(strstr(authcert_detail(), "too costly"));
    expect_verify("scrypt$18$16$1$" GOLDEN_SALT "$" GOLDEN_HASH, AUTHCERT_E_CORRUPT); /* 512 MiB */
    /* Salt or hash of the wrong size, bad characters, non-canonical base64. */
    expect_verify("scrypt$15$8$1$AAECAwQFBgcICQoLDA0O$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify("scrypt$15$8$1$AAECAwQFBgcICQoLDA0ODxA=$" GOLDEN_HASH, AUTHCERT_E_CORRUPT);
    expect_verify(golden_with(hash_at + 10, '*'), AUTHCERT_E_CORRUPT);
    expect_verify(golden_with(hash_at + 10, ' '), AUTHCERT_E_CORRUPT);
    expect_verify(golden_with(salt_at, ' '), AUTHCERT_E_CORRUPT);
    expect_verify(golden_with(strlen(GOLDEN) - 1, 'A'), AUTHCERT_E_CORRUPT); /* no '=' */
    /* The last character before '=' carries 2 spare bits: "Y" -> "Z" sets one. */
    expect_verify(golden_with(strlen(GOLDEN) - 2, 'Z'), AUTHCERT_E_CORRUPT);
}

static void test_bad_arguments(void **state)
{
    char *enc = (char *)"untouched";
    char *big = malloc(AUTHCERT_PASSWORD_MAX_LEN + 2);

    (void)state;
    assert_non_null(big);
    memset(big, 'x', AUTHCERT_PASSWORD_MAX_LEN + 1);
    big[AUTHCERT_PASSWORD_MAX_LEN + 1] = '\0';
    assert_status(authcert_password_hash(NULL, &enc), AUTHCERT_E_USAGE);
    assert_status(authcert_password_hash(TESTLIB_PASSWORD, NULL), AUTHCERT_E_USAGE);
    assert_status(authcert_password_hash(big, &enc), AUTHCERT_E_USAGE);
    assert_null(enc);
    assert_status(authcert_password_verify(NULL, GOLDEN), AUTHCERT_E_USAGE);
    assert_status(authcert_password_verify(TESTLIB_PASSWORD, NULL), AUTHCERT_E_USAGE);
    assert_status(authcert_password_verify(big, GOLDEN), AUTHCERT_E_AUTH);
    free(big);
}

/* ----------------------------------------------------------------- secrets */

static void test_secret_dup_and_free(void **state)
{
    char *copy;

    (void)state;
    copy = authcert_secret_dup(TESTLIB_PASSWORD);
    assert_non_null(copy);
    assert_ptr_not_equal(copy, TESTLIB_PASSWORD);
    assert_string_equal(copy, TESTLIB_PASSWORD);
    authcert_secret_free(copy);
    copy = authcert_secret_dup("");
    assert_non_null(copy);
    assert_string_equal(copy, "");
    authcert_secret_free(copy);
    assert_null(authcert_secret_dup(NULL));
    authcert_secret_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weak_passwords_refused),
        cmocka_unit_test(test_detail_names_estimate_and_reason),
        cmocka_unit_test(test_product_words_count_as_dictionary),
        cmocka_unit_test(test_strong_passwords_accepted),
        cmocka_unit_test(test_length_bounds),
        cmocka_unit_test(test_control_characters_and_bad_utf8_refused),
        cmocka_unit_test(test_hash_format),
        cmocka_unit_test(test_hash_matches_openssl_kdf),
        cmocka_unit_test(test_golden_vector_verifies),
        cmocka_unit_test(test_round_trip_and_wrong_passwords),
        cmocka_unit_test(test_same_password_different_salts),
        cmocka_unit_test(test_tampered_encodings),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_secret_dup_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
