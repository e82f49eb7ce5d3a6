/*
 * Where -e and -b write (issue 14): a destination that is a symbolic link
 * to a folder must lead to a folder of the caller's or root's. Root asked
 * to write into /tmp/out, which another user made a link to a folder of
 * their own, would write the agent certificate file or the whole backup
 * where that user reads and swaps it.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

authcert_status tool_check_destination(const char *path)
{
    struct stat l, st;
    char bare[4096];
    size_t n = strlen(path);

    /* "link/" names the folder it leads to: judge the link itself */
    if (n >= sizeof bare)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", path);
    memcpy(bare, path, n + 1);
    while (n > 1 && bare[n - 1] == '/')
        bare[--n] = '\0';
    if (lstat(bare, &l) != 0 || !S_ISLNK(l.st_mode))
        return AUTHCERT_OK; /* not a link: the write says what is wrong, if anything */
    if (stat(bare, &st) != 0 || !S_ISDIR(st.st_mode))
        return AUTHCERT_OK; /* a link to a file is replaced, not followed (atomic rename) */
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return authcert_fail(AUTHCERT_E_PERM, "%s: a symbolic link to a folder of uid %u, "
                             "neither root's nor yours: refused as a destination (name the "
                             "folder itself)", path, (unsigned)st.st_uid);
    return AUTHCERT_OK;
}
