/*
 * Log lines on stderr ("authcert-agent: warn: ..."): systemd's journal or
 * the service manager adds the time. One write per line so that lines of
 * the listener threads and the check-in loop do not interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon.h"

static const char *const names[] = {"error", "warn", "info", "debug"};
static int log_level = LOG_INFO;

void agent_log_set_level(int level)
{
    log_level = level;
}

int agent_log_level_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return LOG_WARN;
    return -1;
}

void agent_log(int level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    if (level > log_level)
        return;
    int n = snprintf(line, sizeof line, AGENT_NAME ": %s: ", names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    /* Nothing from outside may start a new line in the log. */
    size_t len = strlen(line);
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
