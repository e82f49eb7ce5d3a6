/*
 * What authcertd parses of a stranger's enrollment and authentication
 * (protocol v2): the Authorization header, a token "ID.SECRET", an agent's
 * public key (base64url SubjectPublicKeyInfo) with a proof, a nonce. The
 * first byte picks which; the rest is the input. Each parse either refuses
 * or gives what its contract promises; a header that parses formats back to
 * the same text (one spelling).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/auth.h"
#include "authcert/tls.h"

static const uint8_t secret[32] = { 1, 2, 3 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, *text = NULL;
    char pin[53], id[33], sec[AUTHCERT_TOKEN_SECRET_B64_LEN + 1], again[600];
    authcert_auth_header h;

    if (size == 0 || size > 4096)
        return 0;
    if ((s = malloc(size)) == NULL)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 4) {
    case 0:
        if (authcert_auth_header_parse(s, &h) == AUTHCERT_OK) {
            if (authcert_auth_header_format(h.agent_id, h.epoch, h.counter, h.mac, again,
                                            sizeof again) != AUTHCERT_OK ||
                strcmp(again, s) != 0)
                __builtin_trap();
        }
        break;
    case 1:
        if (authcert_token_split(s, id, sec) == AUTHCERT_OK &&
            (strlen(sec) != AUTHCERT_TOKEN_SECRET_B64_LEN || strlen(id) == 0))
            __builtin_trap();
        break;
    case 2: {
        /* "SPKI SIG": a key and a proof of a fixed text */
        char *sp = strchr(s, ' ');
        if (sp != NULL)
            *sp = '\0';
        if (authcert_spki_pin(s, pin) == AUTHCERT_OK && !authcert_pin_valid(pin))
            __builtin_trap();
        if (sp != NULL && authcert_enroll_proof_text("a", "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                                                     "s", "n", NULL, &text) == AUTHCERT_OK)
            (void)authcert_proof_verify(s, text, sp + 1, pin);
        free(text);
        break;
    }
    case 3:
        (void)authcert_nonce_check(secret, s, 1764700000, 300);
        break;
    }
    free(s);
    return 0;
}
