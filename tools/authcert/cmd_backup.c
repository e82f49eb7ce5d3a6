/*
 * authcert -b [PASSWORD] PATH: every certificate and key into one
 * AES-256 ZIP archive (backup.h), at PATH or, for a folder, under a dated
 * name in it. The password protects every private key against offline
 * guessing, so it must be strong.
 */
#include <stdlib.h>

#include "tool.h"

int cmd_backup(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store *s = NULL;
    char *pw = NULL, *written = NULL;
    size_t n, left_out = 0;

    TRY(tool_check_destination(tool_pos_last(o, 0)));
    /* The index is replaced atomically, so a reader sees one consistent state. */
    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_READ, &s));
    TRY(tool_password(o, o->npos == 2 ? o->pos[0] : NULL, true, &pw));
    TRY(authcert_password_check_strength(pw, NULL));
    TRY(authcert_backup_write(s, pw, tool_pos_last(o, 0),
                              o->skip_unexportable ? AUTHCERT_BACKUP_SKIP_UNEXPORTABLE : 0,
                              &written));
    n = authcert_store_count(s);
    if (o->skip_unexportable)
        for (size_t i = 0; i < authcert_store_count(s); i++)
            if (!authcert_store_entry_at(s, i)->exportable)
                left_out++;
    if (left_out > 0)
        tool_warn(o, "%zu certificate%s with a key that is not exportable left out",
                  left_out, left_out == 1 ? "" : "s");
    tool_say(o, "backed up %zu certificate%s to %s", n - left_out,
             n - left_out == 1 ? "" : "s", written);
    rc = AUTHCERT_OK;
out:
    if (s != NULL)
        authcert_store_close(s);
    authcert_secret_free(pw);
    free(written);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
