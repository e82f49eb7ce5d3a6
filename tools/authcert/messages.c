/*
 * The tool's messages: one line per failure on stderr, naming the mode and
 * the thing, and whether anything changed; information on stdout.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tool.h"

/* Details may quote file names or archive members: keep them on one line. */
static void put_clean(FILE *f, const char *s)
{
    for (; *s != '\0'; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

int tool_fail(const struct tool_opts *o, authcert_status rc)
{
    const char *detail = authcert_detail();

    fprintf(stderr, "authcert: %s: ", o->mode->name);
    /* The library's detail names the file and the reason (for a caller who is
     * not an administrator: "only root or the store's owner (uid N) ..."). */
    put_clean(stderr, detail[0] != '\0' ? detail : authcert_strerror(rc));
    if (o->mode->changes)
        fputs(" (nothing was changed)", stderr);
    fputc('\n', stderr);
    return (int)rc;
}

void tool_warn(const struct tool_opts *o, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "authcert: %s: warning: ", o->mode->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void tool_say(const struct tool_opts *o, const char *fmt, ...)
{
    va_list ap;

    if (o->quiet)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

void tool_iso8601(time_t t, char *buf, size_t size)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "?");
}
