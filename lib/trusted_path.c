/*
 * Trusted paths (authcert/trusted_path.h). Checking every folder from the
 * root down is what makes the later opens by name safe: when no other user
 * can write any folder on the way, none can swap a component between the
 * check and the open.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authcert/trusted_path.h"
#include "internal.h"

static const char *who_writes(const struct stat *st)
{
    return (st->st_mode & S_IWOTH) ? "every user" : "its group";
}

/* One folder or file, already lstat'ed (or stat'ed): may OWNER trust it? */
static authcert_status judge(const char *path, const struct stat *st, uid_t owner, bool above)
{
    if (st->st_uid != 0 && st->st_uid != owner)
        return authcert_fail(AUTHCERT_E_PERM,
                             "%s is owned by uid %u, neither root nor uid %u: that user "
                             "could replace what is in it (move it to a folder of root's or "
                             "uid %u's)", path, (unsigned)st->st_uid, (unsigned)owner,
                             (unsigned)owner);
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) == 0)
        return AUTHCERT_OK;
    /* /tmp: writable by all, but sticky and root's; an entry's owner alone moves it. */
    if (above && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX) && st->st_uid == 0)
        return AUTHCERT_OK;
    return authcert_fail(AUTHCERT_E_PERM,
                         "%s (mode %04o) is writable by %s, who could replace what is "
                         "in it (chmod go-w %s)", path, (unsigned)(st->st_mode & 07777),
                         who_writes(st), path);
}

/* Every folder of the absolute path ABS from / down, then ABS itself. */
static authcert_status walk(const char *abs, uid_t owner, const char *what)
{
    char prefix[PATH_MAX];
    size_t n = strlen(abs);
    struct stat st;

    if (n == 0 || n >= sizeof prefix)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", what);
    for (size_t i = 1; i <= n; i++) {
        if (i < n && abs[i] != '/')
            continue;
        memcpy(prefix, abs, i);
        prefix[i] = '\0';
        if (i == 1)
            prefix[1] = '\0'; /* "/" */
        /* stat, not lstat: a symbolic link on the way is judged by where it
         * leads (its own folder was judged just before) */
        if (stat(i == 1 ? "/" : prefix, &st) != 0)
            return authcert_fail(errno == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO,
                                 "%s: %s: %s", what, prefix, strerror(errno));
        authcert_status rc = judge(i == 1 ? "/" : prefix, &st, owner, i < n);
        if (rc != AUTHCERT_OK)
            return rc;
    }
    return AUTHCERT_OK;
}

authcert_status authcert_path_trusted(const char *path, uid_t owner)
{
    char abs[PATH_MAX], real[PATH_MAX];
    authcert_status rc;

    if (path == NULL || *path == '\0')
        return authcert_fail(AUTHCERT_E_USAGE, "no path to check");
    /* As written (made absolute): the folders a user could swap a link in. */
    if (path[0] == '/') {
        snprintf(abs, sizeof abs, "%s", path);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) == NULL)
            return authcert_fail(AUTHCERT_E_IO, "%s: the current folder: %s", path,
                                 strerror(errno));
        if ((size_t)snprintf(abs, sizeof abs, "%s/%s", cwd, path) >= sizeof abs)
            return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", path);
    }
    if ((rc = walk(abs, owner, path)) != AUTHCERT_OK)
        return rc;
    /* Where it really is. */
    if (realpath(path, real) == NULL)
        return authcert_fail(errno == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO, "%s: %s",
                             path, strerror(errno));
    return strcmp(real, abs) == 0 ? AUTHCERT_OK : walk(real, owner, path);
}

authcert_status authcert_entry_trusted(const char *path, uid_t owner, bool want_dir)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return authcert_fail(errno == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO, "%s: %s",
                             path, strerror(errno));
    if (S_ISLNK(st.st_mode))
        return authcert_fail(AUTHCERT_E_PERM, "%s: a symbolic link, refused in a store "
                             "(replace it with the %s itself)", path,
                             want_dir ? "folder" : "file");
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return authcert_fail(AUTHCERT_E_PERM, "%s: not a %s, refused", path,
                             want_dir ? "folder" : "regular file");
    return judge(path, &st, owner, false);
}
