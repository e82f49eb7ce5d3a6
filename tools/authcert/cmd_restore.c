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
 * back as expired or revoked, signing only roll-overs.) All but its dates:
 * a restore is how keys come back, and the fleet holds that certificate
 * whatever its age; one past its end is restored, *stale says so, and the
 * operator is told to make a new one (agents then roll over to it).
 */
static authcert_status check_backup_current(const authcert_backup *b, bool *stale)
{
    *stale = false;
    for (size_t i = 0; i < authcert_backup_count(b); i++) {
        const authcert_backup_entry *e = authcert_backup_entry_at(b, i);
        authcert_cert_policy dated = { .any_dates = false };
        authcert_cert_refusal why = AUTHCERT_CERT_ACCEPTABLE;

        if (e->state != AUTHCERT_STATE_CURRENT)
            continue;
        if (tool_cert_policy(e->cert, false, NULL) != AUTHCERT_OK)
            return authcert_fail(AUTHCERT_E_POLICY, "%s: %s", authcert_backup_path(b),
                                 authcert_detail());
        if (authcert_cert_check_policy(e->cert, &dated, &why) != AUTHCERT_OK) {
            *stale = why == AUTHCERT_CERT_EXPIRED || why == AUTHCERT_CERT_NOT_YET_VALID;
            authcert_clear_detail();
        }
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
    bool had = false, stale = false;

    TRY(tool_password(o, o->npos == 2 ? o->pos[0] : NULL, false, &pw));
    TRY(authcert_backup_read(tool_pos_last(o, 0), pw, &b));
    TRY(check_backup_current(b, &stale));
    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_CREATE | AUTHCERT_STORE_WRITE, &s));
    for (size_t i = 0; i < authcert_backup_count(b); i++)
        if (authcert_backup_entry_at(b, i)->state == AUTHCERT_STATE_CURRENT)
            TRY(tool_commitment_guard(o, s, authcert_backup_entry_at(b, i)->cert));
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
    if (stale)
        tool_warn(o, "the restored current certificate is outside its validity dates: make "
                  "a new one with -c (agents that hold this one are rolled over to it)");
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
