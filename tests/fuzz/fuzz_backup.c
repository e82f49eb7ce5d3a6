/* authcert -r / -re: a backup archive from anywhere (ZIP + manifest + PFX). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "authcert/authcert.h"

/* The corpus archives are encrypted with this password (corpus/README.md). */
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
    authcert_backup *b = NULL;

    if (authcert_backup_read_mem(data, size, FUZZ_PASSWORD, &b) == AUTHCERT_OK) {
        size_t currents = 0;
        /* What the reader promises: every entry has its key, one is current. */
        for (size_t i = 0; i < authcert_backup_count(b); i++) {
            const authcert_backup_entry *e = authcert_backup_entry_at(b, i);
            if (!authcert_cert_has_key(e->cert))
                __builtin_trap();
            currents += e->state == AUTHCERT_STATE_CURRENT;
        }
        if (currents != 1)
            __builtin_trap();
        authcert_backup_free(b);
    }
    return 0;
}
