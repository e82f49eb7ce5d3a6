/*
 * authcert -i [PASSWORD] PATH: a certificate and key from a PKCS#12/PFX
 * file (modern, or legacy RC2/3DES as Windows exports them) into the store,
 * as the current one (the previous becomes expired) or, with --as-expired,
 * as an expired one so that agents still holding it are rolled over.
 */
#include <stdlib.h>

#include <openssl/crypto.h>

#include "tool.h"

/* A PFX holds one key and a short chain; anything bigger is not one. */
#define PFX_MAX_SIZE (1024u * 1024)

int cmd_import(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store *s = NULL;
    authcert_cert *cert = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    char *pw = NULL;
    const char *path = tool_pos_last(o, 0);

    TRY(tool_password(o, o->npos == 2 ? o->pos[0] : NULL, false, &pw));
    TRY(authcert_read_file(path, PFX_MAX_SIZE, &data, &len));
    TRY(authcert_pkcs12_import(data, len, pw, &cert));
    /* The certificate policy, before the store is touched. */
    TRY(tool_cert_policy(cert, !o->as_expired, "import it with --as-expired"));
    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_CREATE | AUTHCERT_STORE_WRITE, &s));
    if (o->as_expired) {
        TRY(authcert_store_add(s, cert, AUTHCERT_STATE_EXPIRED, true));
    } else {
        TRY(tool_commitment_guard(o, s, cert));
        tool_warn_key_change(o, s, cert);
        TRY(authcert_store_make_current(s, cert, true, AUTHCERT_STATE_EXPIRED));
    }
    TRY(authcert_store_commit(s));
    tool_say(o, "imported %s (%s) as %s", authcert_cert_thumbprint(cert),
             authcert_key_type_name(authcert_cert_key_type(cert)),
             o->as_expired ? "expired" : "current");
    rc = AUTHCERT_OK;
out:
    if (s != NULL)
        authcert_store_close(s);
    if (cert != NULL)
        authcert_cert_free(cert);
    OPENSSL_clear_free(data, len);
    authcert_secret_free(pw);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
