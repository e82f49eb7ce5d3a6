/*
 * authcert/cert_policy.h — what a certificate must be to become current.
 *
 * One policy for everything that makes a certificate the one agents trust
 * or the one the server signs with: an update-key at the agent, and -c, -i
 * and -r in the store. A certificate passes when
 *
 *   - it is within its validity: notBefore <= now + AUTHCERT_CERT_LEEWAY
 *     (a server clock a little ahead of ours) and now <= notAfter (no
 *     leeway: an expired certificate stays expired);
 *   - it carries no critical extension outside the known list: basic
 *     constraints, key usage, extended key usage, subject alternative
 *     name. Name constraints, policies and the other CA extensions are not
 *     known (a certificate that needs them is a CA's, refused anyway), nor
 *     a critical key identifier (RFC 5280 forbids it). Extensions OpenSSL
 *     cannot parse (or duplicated ones) are refused too;
 *   - it is not a CA: basic constraints cA absent or false, no keyCertSign
 *     in its key usage, not a version 1 self-signed certificate (OpenSSL
 *     takes those for roots), not a CA by any other rule of X509_check_ca;
 *   - its key usage, when present, includes digitalSignature (what signing
 *     a command is);
 *   - its key is one of the supported types: Ed25519, ECDSA P-256, RSA
 *     2048/3072/4096;
 *   - when a trusted certificate is given (the one an agent holds), its key
 *     is of the same family (Ed25519, EC or RSA) and, for RSA, no shorter:
 *     a key update never switches the algorithm the agent verifies with, nor
 *     weakens it. Another key type reaches an agent only by the operator
 *     copying the exported agent certificate file (authcert -e).
 *   - when the trusted certificate commits to a successor (pre-rotation,
 *     authcert/commitment.h), c's key is exactly that successor and c's
 *     signature verifies with c's own key: so c's own commitment was made
 *     by whoever holds the successor, not by a thief of the trusted key. A
 *     trusted certificate whose commitment is malformed accepts no successor.
 *     (A malformed commitment in c itself is refused as MALFORMED.)
 *
 * Everything here is read with OpenSSL's own parsers (X509_cmp_time,
 * X509_check_ca, X509_get_key_usage, X509_get_extension_flags).
 */
#ifndef AUTHCERT_CERT_POLICY_H
#define AUTHCERT_CERT_POLICY_H

#include <stdbool.h>
#include <time.h>

#include "authcert/cert.h"
#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Seconds a notBefore may lie in the future: clocks of two machines differ. */
#define AUTHCERT_CERT_LEEWAY 300

/* Why a certificate was refused (the first rule it broke, in this order). */
typedef enum authcert_cert_refusal {
    AUTHCERT_CERT_ACCEPTABLE = 0,
    AUTHCERT_CERT_MALFORMED,          /* extensions OpenSSL cannot parse, duplicates */
    AUTHCERT_CERT_KEY_TYPE,           /* not a supported key type and size */
    AUTHCERT_CERT_KEY_CHANGE,         /* another family than the trusted key, or shorter RSA */
    AUTHCERT_CERT_CRITICAL_EXTENSION, /* a critical extension outside the known list */
    AUTHCERT_CERT_CA,                 /* a CA certificate */
    AUTHCERT_CERT_KEY_USAGE,          /* key usage without digitalSignature */
    AUTHCERT_CERT_NOT_YET_VALID,      /* notBefore later than now + leeway */
    AUTHCERT_CERT_EXPIRED,            /* notAfter earlier than now */
    /* Pre-rotation (authcert/commitment.h), checked right after KEY_CHANGE: */
    AUTHCERT_CERT_NOT_COMMITTED,      /* the trusted one commits to another key */
    AUTHCERT_CERT_SELF_SIGNATURE,     /* a committed key's certificate not signed by it */
} authcert_cert_refusal;

typedef struct authcert_cert_policy {
    time_t now;                    /* 0: time(NULL) */
    bool any_dates;                /* validity not checked (-i --as-expired: not current) */
    const authcert_cert *trusted;  /* not NULL: the key must be of its family (update-key) */
} authcert_cert_policy;

/* "expired", "not yet valid", "CA certificate", ... for logs and tests. */
const char *authcert_cert_refusal_name(authcert_cert_refusal r);

/*
 * Check c against the policy above. p may be NULL (now, dates checked, no
 * trusted key). *why (may be NULL) gets the rule that refused it, or
 * AUTHCERT_CERT_ACCEPTABLE. On refusal the detail is one line naming the
 * certificate by thumbprint and the reason ("certificate <hex>: expired on
 * 2026-01-01T00:00:00Z").
 * Errors: AUTHCERT_E_POLICY (refused), AUTHCERT_E_USAGE (c NULL).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_cert_check_policy(const authcert_cert *c, const authcert_cert_policy *p,
                           authcert_cert_refusal *why);

#ifdef __cplusplus
}
#endif
#endif
