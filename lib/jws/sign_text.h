/*
 * Private: signing claims that are already JSON text.
 *
 * authcert_jws_signer_sign serializes a claims object with jansson, which
 * escapes a string one character at a time; an update-key's claims carry
 * the whole current certificate (~600 characters of base64url), and that
 * dump was a tenth of authcertd's instructions per rolled-over agent. The
 * server builds those claims once per certificate as text (fleet/server.c)
 * and signs them here.
 *
 * claims_json must be one JSON object in UTF-8, as json_dumps writes it:
 * only its braces are checked here, the rest is the caller's promise (the
 * library's own callers build it from jansson's output).
 */
#ifndef AUTHCERT_JWS_SIGN_TEXT_H
#define AUTHCERT_JWS_SIGN_TEXT_H

#include <stddef.h>

#include "authcert/jws.h"

/* Errors as authcert_jws_signer_sign's. */
authcert_status authcert_jws_signer_sign_text(authcert_jws_signer *s, const char *claims_json,
                                              size_t len, char **token);

#endif
