/*
 * Private: a verifier prepared for one trusted certificate, for callers that
 * verify many tokens against the same certificate (the agent's trust).
 *
 * What authcert_jws_verify_why does per token, less two costs that do not
 * depend on the token: the digest-verify context (EVP_DigestVerifyInit_ex
 * fetches the digest and sets up the key each time) is set up once and
 * copied per token, and a header whose encoded bytes equal the one our own
 * signer writes for this certificate (authcert_jws_signer_new) is not
 * decoded and parsed again: it says alg, typ and x5t#S256 exactly as
 * check_header requires. Any other header is parsed and checked as before.
 * The result is the same as authcert_jws_verify_why's for every token.
 *
 * Reference counted; the verifier holds a reference to its certificate.
 * Verifying with one verifier from several threads at once is safe: the
 * prepared context is only read (copied).
 */
#ifndef AUTHCERT_JWS_VERIFIER_H
#define AUTHCERT_JWS_VERIFIER_H

#include "authcert/jws.h"

typedef struct authcert_jws_verifier authcert_jws_verifier;

/* Errors: AUTHCERT_E_USAGE (no JWS alg for the key), NOMEM, INTERNAL. */
authcert_status authcert_jws_verifier_new(authcert_cert *trusted, authcert_jws_verifier **out);
authcert_jws_verifier *authcert_jws_verifier_ref(authcert_jws_verifier *v);
void authcert_jws_verifier_free(authcert_jws_verifier *v);
/* The certificate it verifies for (the verifier's reference). */
const authcert_cert *authcert_jws_verifier_cert(const authcert_jws_verifier *v);
/* authcert_jws_verify_why with v's certificate. */
authcert_status authcert_jws_verifier_verify_why(authcert_jws_verifier *v, const char *token,
                                                 size_t len, const authcert_jws_expect *expect,
                                                 json_t **claims, authcert_jws_refusal *why);

#endif
