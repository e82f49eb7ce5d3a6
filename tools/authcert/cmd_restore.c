/*
 * authcert -r / -re [PASSWORD] PATH: every certificate from a backup back
 * into the store (a reinstalled server). The whole archive is read and
 * verified before the store is even opened, so a wrong password or a
 * damaged archive changes nothing. With -re the keys are marked not
 * exportable: a later -b refuses to take them out of this store.
 */
#include <openssl/crypto.h>

#include "tool.h"

/*
 * The backup's current certificate becomes current here: it must pass the
 * certificate policy, checked before the store is opened. (The others come
 * back as expired or revoked, signing only roll-overs.)
 */
static authcert_status check_backup_current(const authcert_backup *b)
{
    for (size_t i = 0; i < authcert_backup_count(b); i++) {
        const authcert_backup_entry *e = authcert_backup_entry_at(b, i);
        if (e->state != AUTHCERT_STATE_CURRENT)
            continue;
        if (tool_cert_policy(e->cert, true,
                             "a restore would make it current; to keep its keys for roll-overs, "
                             "import its .pfx with -i --as-expired") != AUTHCERT_OK)
            return authcert_fail(AUTHCERT_E_POLICY, "%s: %s", authcert_backup_path(b),
                                 authcert_detail());
    }
    return AUTHCERT_OK;
}

static int restore(const struct tool_opts *o, bool exportable)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_backup *b = NULL;
    authcert_store *s = NULL;
    const authcert_store_entry *cur;
    char *pw = NULL;
    size_t n;
    unsigned char before[AUTHCERT_STORE_SECRET_LEN], after[AUTHCERT_STORE_SECRET_LEN];
    bool had = false;

    TRY(tool_password(o, o->npos == 2 ? o->pos[0] : NULL, false, &pw));
    TRY(authcert_backup_read(tool_pos_last(o, 0), pw, &b));
    TRY(check_backup_current(b));
    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_CREATE | AUTHCERT_STORE_WRITE, &s));
    had = authcert_store_server_secret(s, before) == AUTHCERT_OK;
    TRY(authcert_backup_restore(s, b, pw, exportable));
    TRY(authcert_store_commit(s));
    if (had && authcert_store_server_secret(s, after) == AUTHCERT_OK &&
        CRYPTO_memcmp(before, after, sizeof before) != 0)
        tool_warn(o, "the server secret is now the backup's: agents that enrolled with this "
                  "store before must enroll again (their MAC keys came from the old one)");

    n = authcert_backup_count(b);
    cur = authcert_store_current(s);
    tool_say(o, "restored %zu certificate%s from %s%s", n, n == 1 ? "" : "s",
             authcert_backup_path(b), exportable ? "" : " (keys not exportable)");
    if (cur != NULL)
        tool_say(o, "current certificate: %s", cur->thumbprint);
    rc = AUTHCERT_OK;
out:
    if (s != NULL)
        authcert_store_close(s);
    if (b != NULL)
        authcert_backup_free(b);
    authcert_secret_free(pw);
    OPENSSL_cleanse(before, sizeof before);
    OPENSSL_cleanse(after, sizeof after);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}

int cmd_restore(const struct tool_opts *o)
{
    return restore(o, true);
}

int cmd_restore_noexp(const struct tool_opts *o)
{
    return restore(o, false);
}
