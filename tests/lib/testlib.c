/* Helpers shared by the unit tests. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

char *testlib_tmpdir(const char *tag)
{
    const char *base = getenv("AUTHCERT_TEST_TMP");
    char *path;

    if (base == NULL || *base == '\0')
        base = "/tmp";
    mkdir(base, 0755);
    if (asprintf(&path, "%s/%s.XXXXXX", base, tag) < 0)
        abort();
    if (mkdtemp(path) == NULL)
        abort();
    return path;
}

void testlib_rmrf(const char *dir)
{
    if (dir != NULL && strstr(dir, ".") != NULL)
        testlib_sh("rm -rf '%s'", dir);
}

int testlib_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}
