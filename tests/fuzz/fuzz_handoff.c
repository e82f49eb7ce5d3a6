/*
 * Pre-rotation's and the hand-off chain's parsers of outside input. The
 * first byte picks one:
 *   0  the rest is a check-in answer's "handoff" member (any JSON): walked
 *      from a fixed certificate, and each string of it peeked at;
 *   1  the rest is the DER a link carries: signed here into a well-formed
 *      statement by the held key, so the walk reaches the certificate
 *      parser and the policy (commitment, self-signature) behind the
 *      signature check;
 *   2  the rest is a sealed next-key file (authcert --next-key import).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "authcert/authcert.h"
#include "authcert/base64url.h"
#include "authcert/handoff.h"
#include "authcert/jws.h"

static authcert_cert *held; /* with its key, committing to a fixed successor */

static void init(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *next = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char h[65];
    if (k == NULL || next == NULL || authcert_spki_sha256(next, h) != AUTHCERT_OK)
        abort();
    authcert_cert_params p = {.commit_to = h};
    if (authcert_cert_generate_for(&p, k, &held) != AUTHCERT_OK)
        abort();
    EVP_PKEY_free(k);
    EVP_PKEY_free(next);
}

static void walk(const json_t *chain)
{
    authcert_cert *out = NULL;
    if (authcert_handoff_walk(held, chain, NULL, 0, &out) == AUTHCERT_OK && out == NULL)
        __builtin_trap();
    authcert_cert_free(out);
}

static void carried(const uint8_t *der, size_t len)
{
    char *b64 = NULL, *tok = NULL, tp[65];
    authcert_thumbprint_of(der, len, tp);
    if (authcert_b64url_encode(der, len, &b64) != AUTHCERT_OK)
        return;
    json_t *claims = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:{s:s, s:s, s:s, s:I}}",
                               "iss", AUTHCERT_HANDOFF_ISSUER, "aud", "*", "iat",
                               (json_int_t)1700000000, "exp", (json_int_t)4000000000,
                               "jti", "fuzzfuzzfuzz", "cmd", AUTHCERT_HANDOFF_COMMAND, "args",
                               "from", authcert_cert_thumbprint(held), "certificate", b64,
                               "thumbprint", tp, "gen", (json_int_t)1);
    if (claims != NULL && authcert_jws_sign(held, claims, &tok) == AUTHCERT_OK) {
        json_t *chain = json_pack("[s]", tok);
        walk(chain);
        json_decref(chain);
    }
    json_decref(claims);
    free(tok);
    free(b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (held == NULL)
        init();
    if (size < 1)
        return 0;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        json_t *j = json_loadb((const char *)rest, n, 0, NULL);
        if (j != NULL) {
            walk(j);
            if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v) {
                    char from[65], to[65];
                    uint64_t gen;
                    if (json_is_string(v))
                        (void)authcert_handoff_peek(json_string_value(v), from, to, &gen);
                }
            }
            json_decref(j);
        }
        break;
    }
    case 1:
        carried(rest, n);
        break;
    case 2: {
        authcert_next_key *k = NULL;
        if (authcert_next_key_from_pem((const char *)rest, n, &k) == AUTHCERT_OK) {
            if (strlen(authcert_next_key_hash(k)) != 64)
                __builtin_trap();
            authcert_next_key_free(k);
        }
        break;
    }
    }
    return 0;
}
