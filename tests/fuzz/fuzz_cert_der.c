/* The agent certificate file: DER from disk or from an update-key command. */
#include <stddef.h>
#include <stdint.h>

#include "authcert/authcert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    authcert_cert *c = NULL;

    if (authcert_cert_from_der(data, size, &c) == AUTHCERT_OK) {
        authcert_cert_info info;
        size_t len = 0;
        /* Whatever parses must hold up to everything we do with it. */
        authcert_cert_get_info(c, &info);
        (void)authcert_cert_der(c, &len);
        if (len != size)
            __builtin_trap(); /* the thumbprint must be of the file's own bytes */
        /* The certificate policy an update-key applies, against itself as the
         * trusted one: a refusal always names its rule. */
        authcert_cert_policy p = {.trusted = c};
        authcert_cert_refusal why = AUTHCERT_CERT_ACCEPTABLE;
        if (authcert_cert_check_policy(c, &p, &why) != AUTHCERT_OK
            && why == AUTHCERT_CERT_ACCEPTABLE)
            __builtin_trap();
        authcert_cert_free(c);
    }
    return 0;
}
