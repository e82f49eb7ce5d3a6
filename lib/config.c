/* `key = value` configuration files for authcertd and authcert-agent. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "authcert/config.h"
#include "internal.h"

static char *trim(char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

authcert_status authcert_config_read(const char *path, authcert_config_cb cb, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char line[AUTHCERT_CONFIG_LINE_MAX + 2], where[4200];
    unsigned lineno = 0;
    FILE *f;

    authcert_clear_detail();
    f = fopen(path, "re");
    if (f == NULL)
        return authcert_fail(errno == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO, "%s: %s",
                             path, strerror(errno));
    while (fgets(line, sizeof line, f) != NULL) {
        size_t len = strlen(line);
        char *s, *eq, *key, *value;

        lineno++;
        snprintf(where, sizeof where, "%s:%u", path, lineno);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f))
            FAIL(AUTHCERT_E_CORRUPT, "%s: line longer than %d bytes", where,
                 AUTHCERT_CONFIG_LINE_MAX);
        s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        eq = strchr(s, '=');
        if (eq == NULL)
            FAIL(AUTHCERT_E_CORRUPT, "%s: want key = value", where);
        *eq = '\0';
        key = trim(s);
        value = trim(eq + 1);
        if (*key == '\0')
            FAIL(AUTHCERT_E_CORRUPT, "%s: want key = value", where);
        GUARD(cb(ctx, key, value, where));
    }
    if (ferror(f))
        FAIL(AUTHCERT_E_IO, "%s: read error", path);
    rc = AUTHCERT_OK;
out:
    fclose(f);
    return rc;
}
