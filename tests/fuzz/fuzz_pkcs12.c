/* authcert -i: a PKCS#12/PFX file from anywhere, modern or legacy. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "authcert/authcert.h"

/* The corpus files are encrypted with this password (see corpus/README). */
#define FUZZ_PASSWORD "fuzz-corpus-password"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (authcert_init() != AUTHCERT_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    authcert_cert *c = NULL;

    if (authcert_pkcs12_import(data, size, FUZZ_PASSWORD, &c) == AUTHCERT_OK) {
        if (!authcert_cert_has_key(c))
            __builtin_trap(); /* import promises a key */
        authcert_cert_free(c);
    }
    return 0;
}
