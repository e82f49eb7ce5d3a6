/*
 * authcert/password.h — strength, storage and wiping of passwords.
 *
 * A password protects the store's backups, which hold every private key, so
 * it faces offline guessing: it must be strong by a real estimate (zxcvbn),
 * and the store keeps it only as a salted scrypt hash.
 */
#ifndef AUTHCERT_PASSWORD_H
#define AUTHCERT_PASSWORD_H

#include <stddef.h>

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The least zxcvbn entropy estimate accepted, in bits (2^60 guesses: years
 * for an offline attacker against our KDFs). "Tr0ub4dor&3" scores ~47 and is
 * refused; four random words score ~70 and pass.
 */
#define AUTHCERT_PASSWORD_MIN_BITS 60.0
#define AUTHCERT_PASSWORD_MAX_LEN 1024

/*
 * AUTHCERT_OK when password is strong enough; else AUTHCERT_E_WEAK with a
 * detail naming the estimate, the threshold and why ("a dictionary word",
 * "too short"), never the password. An empty password, one longer than
 * AUTHCERT_PASSWORD_MAX_LEN bytes, or one with invalid UTF-8 or a control
 * character (newline, tab...) is also AUTHCERT_E_WEAK: to the user it is the
 * same "choose another password". NULL is AUTHCERT_E_USAGE. *bits (may be
 * NULL) gets the estimate either way (0 when refused before estimating).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_password_check_strength(const char *password, double *bits);

/*
 * A salted scrypt hash of password as one printable string
 * ("scrypt$log2N$r$p$salt_b64$hash_b64", so "scrypt$15$8$1$..."); N=2^15,
 * r=8, p=1, 16-byte salt, 32-byte hash. Caller frees *encoded with free().
 * Does not judge strength; AUTHCERT_E_USAGE past AUTHCERT_PASSWORD_MAX_LEN.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_password_hash(const char *password, char **encoded);

/*
 * AUTHCERT_OK when password matches encoded (compared in constant time),
 * AUTHCERT_E_AUTH when not, AUTHCERT_E_CORRUPT when encoded is malformed or
 * asks for scrypt parameters past sane bounds (log2N 10..20, r 1..32,
 * p 1..16, at most 256 MiB and 16 times the default work).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_password_verify(const char *password, const char *encoded);

/* Wipe and free a NUL-terminated secret (NULL is fine). */
void authcert_secret_free(char *secret);

/* A copy of a secret that the caller wipes with authcert_secret_free. */
char *authcert_secret_dup(const char *secret);

#ifdef __cplusplus
}
#endif
#endif
