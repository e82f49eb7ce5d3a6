/*
 * Logging: one line per event on stderr, UTC timestamp, never a secret.
 * The bottom of the daemon: every part may log, and this file calls none.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "daemon.h"

void dlog(const char *fmt, ...)
{
    char line[1024], stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One write per line so that lines of two threads never interleave. */
    fprintf(stderr, "%s.%03ldZ authcertd: %s\n", stamp, ts.tv_nsec / 1000000L, line);
}
