/*
 * pfx_iter mac|safe|key COUNT PASSWORD IN OUT
 *
 * IN (a PKCS#12) with one iteration count rewritten to COUNT, into OUT: the
 * hostile files of tests/cli/import.bats and backup_restore.bats
 * (tests/lib/testlib_pfx.h says which count and what happens to the MAC).
 * Exit status 0, or 1 with a message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "testlib_pfx.h"

int main(int argc, char **argv)
{
    static uint8_t in[1 << 20];
    testlib_pfx_field field;
    uint8_t *out;
    size_t len, outlen = 0;
    FILE *f;

    if (argc != 6) {
        fprintf(stderr, "usage: pfx_iter mac|safe|key COUNT PASSWORD IN OUT\n");
        return 1;
    }
    if (strcmp(argv[1], "mac") == 0)
        field = TESTLIB_PFX_MAC;
    else if (strcmp(argv[1], "safe") == 0)
        field = TESTLIB_PFX_SAFE;
    else if (strcmp(argv[1], "key") == 0)
        field = TESTLIB_PFX_KEY;
    else {
        fprintf(stderr, "pfx_iter: %s: not mac, safe or key\n", argv[1]);
        return 1;
    }
    if ((f = fopen(argv[4], "rb")) == NULL) {
        fprintf(stderr, "pfx_iter: %s: %s\n", argv[4], strerror(errno));
        return 1;
    }
    len = fread(in, 1, sizeof in, f);
    fclose(f);
    out = testlib_pfx_set_iter(in, len, field, strtoll(argv[2], NULL, 10), argv[3], &outlen);
    if (out == NULL) {
        fprintf(stderr, "pfx_iter: %s: no %s count to rewrite\n", argv[4], argv[1]);
        return 1;
    }
    if ((f = fopen(argv[5], "wb")) == NULL || fwrite(out, 1, outlen, f) != outlen ||
        fclose(f) != 0) {
        fprintf(stderr, "pfx_iter: %s: cannot write\n", argv[5]);
        return 1;
    }
    OPENSSL_free(out);
    return 0;
}
