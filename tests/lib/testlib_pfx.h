/*
 * Hostile PKCS#12 files for the tests: a normal one with one iteration count
 * rewritten, as an attacker would patch it (making a 2^31-1-iteration file
 * with openssl would take hours). Uses no cmocka, so that the script tests'
 * tool (tests/tools/pfx_iter.c) shares it.
 */
#ifndef AUTHCERT_TESTLIB_PFX_H
#define AUTHCERT_TESTLIB_PFX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

typedef enum testlib_pfx_field {
    TESTLIB_PFX_MAC,  /* MacData.iterations; the MAC is left stale */
    TESTLIB_PFX_SAFE, /* the first encrypted safe's PBE/PBKDF2 count; MAC redone */
    TESTLIB_PFX_KEY,  /* the first encrypted key's PBE/PBKDF2 count; MAC redone */
} testlib_pfx_field;

/*
 * der with field's iteration count set to count; password (of the file) is
 * what the MAC is redone with for SAFE and KEY, at the file's own MAC count
 * and digest. Returns a new buffer (OPENSSL_free) and its length, or NULL.
 */
uint8_t *testlib_pfx_set_iter(const uint8_t *der, size_t len, testlib_pfx_field field,
                              int64_t count, const char *password, size_t *outlen);

/* alg's PBE (PBEPARAM) or PBES2 (PBKDF2PARAM) iteration count set to count; 1 on success. */
int testlib_pbe_set_iter(X509_ALGOR *alg, int64_t count);

#endif
