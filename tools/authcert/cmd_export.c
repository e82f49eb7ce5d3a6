/*
 * authcert -e PATH: the agent certificate file of the current certificate,
 * DER-encoded X.509 (public only), for an agent whose copy was lost or
 * damaged. A folder gets the agent's default file name.
 */
#include <stdio.h>
#include <string.h>

#include "tool.h"

/* The name authcert-agent looks for by default (authcert-agent(8)). */
#define AGENT_CERT_FILE "authcert-server.der"

int cmd_export(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store *s = NULL;
    const authcert_store_entry *cur;
    const char *path = o->pos[0];
    const uint8_t *der;
    size_t len;
    char buf[4096];

    TRY(tool_check_destination(path));
    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_READ, &s));
    cur = authcert_store_current(s);
    if (cur == NULL) {
        rc = authcert_fail(AUTHCERT_E_NOTFOUND, "%s: no current certificate (create one with -c)",
                           o->store_dir);
        goto out;
    }
    if (authcert_is_dir(path)) {
        const char *sep = path[strlen(path) - 1] == '/' ? "" : "/";
        if ((size_t)snprintf(buf, sizeof buf, "%s%s%s", path, sep, AGENT_CERT_FILE)
            >= sizeof buf) {
            rc = authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", path);
            goto out;
        }
        path = buf;
    }
    der = authcert_cert_der(cur->cert, &len);
    TRY(authcert_write_atomic(path, der, len, 0644));
    tool_say(o, "agent certificate file of %s written to %s", cur->thumbprint, path);
    rc = AUTHCERT_OK;
out:
    if (s != NULL)
        authcert_store_close(s);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
