/*
 * mkstore — certificate stores for the daemon's tests, through the store API
 * (until they can all be made with `authcert -c`).
 *
 *   mkstore DIR new [TYPE]       a new current certificate (the old one, if
 *                                any, becomes expired); prints its thumbprint
 *   mkstore DIR leak [TYPE]      the same, but the old one becomes revoked
 *   mkstore DIR der THUMB OUT    the agent certificate file (DER) of THUMB
 *
 * A test tool: it prints and exits, which the library never does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcert/authcert.h"
#include "authcert/fsutil.h"
#include "authcert/store.h"

static int die(const char *what, authcert_status st)
{
    fprintf(stderr, "mkstore: %s: %s (%s)\n", what, authcert_strerror(st), authcert_detail());
    return 1;
}

static int replace(const char *dir, const char *type, authcert_state old_state)
{
    authcert_cert_params p = { .type = type != NULL ? authcert_key_type_parse(type)
                                                    : AUTHCERT_KEY_P256 };
    authcert_cert *c = NULL;
    authcert_store *s = NULL;
    authcert_status st;

    if ((st = authcert_cert_generate(&p, &c)) != AUTHCERT_OK)
        return die("generate", st);
    if ((st = authcert_store_open(dir, AUTHCERT_STORE_CREATE, &s)) != AUTHCERT_OK ||
        (st = authcert_store_make_current(s, c, true, old_state)) != AUTHCERT_OK ||
        (st = authcert_store_commit(s)) != AUTHCERT_OK)
        return die(dir, st);
    puts(authcert_cert_thumbprint(c));
    authcert_store_close(s);
    authcert_cert_free(c);
    return 0;
}

static int der(const char *dir, const char *tp, const char *out)
{
    authcert_store *s = NULL;
    const authcert_store_entry *e;
    const uint8_t *d;
    size_t n = 0;
    authcert_status st;

    if ((st = authcert_store_open(dir, AUTHCERT_STORE_READ, &s)) != AUTHCERT_OK)
        return die(dir, st);
    if ((e = authcert_store_find(s, tp)) == NULL) {
        fprintf(stderr, "mkstore: %s: no certificate %s\n", dir, tp);
        return 1;
    }
    d = authcert_cert_der(e->cert, &n);
    if ((st = authcert_write_atomic(out, d, n, 0644)) != AUTHCERT_OK)
        return die(out, st);
    authcert_store_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 2;

    if (authcert_init() != AUTHCERT_OK)
        return die("init", AUTHCERT_E_CRYPTO);
    if ((argc == 3 || argc == 4) && strcmp(argv[2], "new") == 0)
        rc = replace(argv[1], argc == 4 ? argv[3] : NULL, AUTHCERT_STATE_EXPIRED);
    else if ((argc == 3 || argc == 4) && strcmp(argv[2], "leak") == 0)
        rc = replace(argv[1], argc == 4 ? argv[3] : NULL, AUTHCERT_STATE_REVOKED);
    else if (argc == 5 && strcmp(argv[2], "der") == 0)
        rc = der(argv[1], argv[3], argv[4]);
    else
        fprintf(stderr, "usage: mkstore DIR new|leak [TYPE]\n       mkstore DIR der THUMB OUT\n");
    authcert_cleanup();
    return rc;
}
