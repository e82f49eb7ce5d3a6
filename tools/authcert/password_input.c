/*
 * Where a password comes from. argv is visible to every user of the machine
 * (ps, /proc/PID/cmdline), so the tool also takes it from a file, a file
 * descriptor, a no-echo prompt on the terminal, or standard input (signify's
 * kdf() and wg(8) do the same). Every buffer that held it is wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tool.h"

#define LINE_CAP (AUTHCERT_PASSWORD_MAX_LEN + 2)

/*
 * The first line of fd into buf (no newline, no trailing CR). Reads one byte
 * at a time so that nothing past the line is taken from a shared stdin.
 */
static authcert_status read_line(int fd, const char *what, char *buf, size_t cap, bool empty_ok)
{
    size_t n = 0;

    for (;;) {
        char ch;
        ssize_t got = read(fd, &ch, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            if (errno == EBADF)
                return authcert_fail(AUTHCERT_E_USAGE, "%s: not an open file descriptor", what);
            return authcert_fail(AUTHCERT_E_IO, "%s: read: %s", what, strerror(errno));
        }
        if (got == 0 || ch == '\n')
            break;
        if (ch == '\0') { /* C strings would cut the password there, silently */
            OPENSSL_cleanse(buf, cap);
            return authcert_fail(AUTHCERT_E_USAGE, "%s: a NUL byte in the password", what);
        }
        if (n + 1 >= cap) {
            OPENSSL_cleanse(buf, cap);
            return authcert_fail(AUTHCERT_E_USAGE, "%s: password longer than %d characters",
                                 what, AUTHCERT_PASSWORD_MAX_LEN);
        }
        buf[n++] = ch;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (n == 0 && !empty_ok)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: no password given", what);
    return AUTHCERT_OK;
}

/*
 * A password file another user owns or can write is one they chose: the
 * store would be encrypted, or opened, with their password. Root's or ours,
 * and writable by neither group nor others (a pipe of ours, such as
 * --password-file <(pass show x), is fine).
 */
static authcert_status password_file_trusted(int fd, const char *path)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return authcert_fail(AUTHCERT_E_USAGE, "%s: a folder, not a password file", path);
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return authcert_fail(AUTHCERT_E_PERM, "%s: owned by uid %u, neither root nor you (uid "
                             "%u): refused as a password file", path, (unsigned)st.st_uid,
                             (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return authcert_fail(AUTHCERT_E_PERM, "%s: writable by group or others: refused as a "
                             "password file (chmod go-w %s)", path, path);
    return AUTHCERT_OK;
}

/* The terminal's settings while echo is off, to put back on a signal. */
static int tty_fd = -1;
static struct termios tty_saved;
static volatile sig_atomic_t tty_echo_off;

static void restore_tty(int sig)
{
    if (tty_echo_off)
        tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

static authcert_status prompt(const char *text, char *buf, size_t cap, bool empty_ok)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    struct sigaction sa = { .sa_handler = restore_tty }, old[4];
    struct termios quiet;
    authcert_status rc;

    if (tcgetattr(tty_fd, &tty_saved) != 0)
        return authcert_fail(AUTHCERT_E_IO, "/dev/tty: %s", strerror(errno));
    quiet = tty_saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    for (size_t i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, &old[i]);
    if (write(tty_fd, text, strlen(text)) < 0 || tcsetattr(tty_fd, TCSAFLUSH, &quiet) != 0) {
        rc = authcert_fail(AUTHCERT_E_IO, "/dev/tty: %s", strerror(errno));
    } else {
        tty_echo_off = 1;
        rc = read_line(tty_fd, "terminal", buf, cap, empty_ok);
        tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
        tty_echo_off = 0;
    }
    for (size_t i = 0; i < 4; i++)
        sigaction(sigs[i], &old[i], NULL);
    return rc;
}

static authcert_status from_terminal(const struct tool_opts *o, const char *noun, bool confirm,
                                     bool empty_ok, char *buf, size_t cap)
{
    authcert_status rc;
    char again[LINE_CAP], text[128];

    buf[0] = '\0';

    tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (tty_fd < 0)
        return authcert_fail(AUTHCERT_E_IO, "/dev/tty: %s", strerror(errno));
    snprintf(text, sizeof text, "authcert %s: %s%s%s: ", o->mode->name,
             confirm ? "new " : "", noun, empty_ok ? " (empty for none)" : "");
    rc = prompt(text, buf, cap, empty_ok);
    if (rc == AUTHCERT_OK && confirm && buf[0] != '\0') {
        snprintf(text, sizeof text, "authcert %s: the new %s again: ", o->mode->name, noun);
        rc = prompt(text, again, sizeof again, false);
        if (rc == AUTHCERT_OK && strcmp(buf, again) != 0)
            rc = authcert_fail(AUTHCERT_E_USAGE, "the two entries differ");
        OPENSSL_cleanse(again, sizeof again);
    }
    close(tty_fd);
    tty_fd = -1;
    return rc;
}

authcert_status tool_password(const struct tool_opts *o, const char *argv_pw,
                              bool confirm, char **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char buf[LINE_CAP] = "", what[64];
    int fd = -1;

    *out = NULL;
    if (argv_pw != NULL) {
        if (o->password_file != NULL || o->password_fd >= 0)
            return authcert_fail(AUTHCERT_E_USAGE,
                                 "a password on the command line and another from "
                                 "--password-file/--password-fd: give one");
        if (argv_pw[0] == '\0')
            return authcert_fail(AUTHCERT_E_USAGE, "empty password");
        if (strlen(argv_pw) > AUTHCERT_PASSWORD_MAX_LEN)
            return authcert_fail(AUTHCERT_E_USAGE, "password longer than %d characters",
                                 AUTHCERT_PASSWORD_MAX_LEN);
        *out = authcert_secret_dup(argv_pw);
        return *out != NULL ? AUTHCERT_OK : authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }

    if (o->password_file != NULL) {
        /* O_NONBLOCK: another user's FIFO does not hold us at open; the
         * checks first, then reads block as usual (a pipe of ours may be slow) */
        fd = open(o->password_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            rc = authcert_fail(errno == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO,
                               "%s: %s", o->password_file, strerror(errno));
            goto out;
        }
        if ((rc = password_file_trusted(fd, o->password_file)) == AUTHCERT_OK) {
            (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            rc = read_line(fd, o->password_file, buf, sizeof buf, false);
        }
    } else if (o->password_fd >= 0) {
        snprintf(what, sizeof what, "--password-fd %d", o->password_fd);
        rc = read_line(o->password_fd, what, buf, sizeof buf, false);
    } else if (isatty(STDIN_FILENO)) {
        rc = from_terminal(o, "password", confirm, false, buf, sizeof buf);
    } else {
        rc = read_line(STDIN_FILENO, "standard input", buf, sizeof buf, false);
    }
    if (rc != AUTHCERT_OK)
        goto out;
    *out = authcert_secret_dup(buf);
    if (*out == NULL)
        rc = authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
out:
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

authcert_status tool_recovery_secret(const struct tool_opts *o, bool confirm, char **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char buf[LINE_CAP] = "", what[64];
    int fd = -1;

    *out = NULL;
    if (o->recovery_file != NULL) {
        fd = open(o->recovery_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            rc = authcert_fail(errno == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO,
                               "%s: %s", o->recovery_file, strerror(errno));
            goto out;
        }
        if ((rc = password_file_trusted(fd, o->recovery_file)) == AUTHCERT_OK) {
            (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            rc = read_line(fd, o->recovery_file, buf, sizeof buf, false);
        }
    } else if (o->recovery_fd >= 0) {
        snprintf(what, sizeof what, "--recovery-fd %d", o->recovery_fd);
        rc = read_line(o->recovery_fd, what, buf, sizeof buf, false);
    } else if (isatty(STDIN_FILENO)) {
        /* A new one may be declined at the prompt: no commitment. */
        rc = from_terminal(o, "recovery secret", confirm, confirm, buf, sizeof buf);
    } else {
        return AUTHCERT_OK; /* none: standard input may carry the password */
    }
    if (rc != AUTHCERT_OK || buf[0] == '\0') /* declined at the prompt */
        goto out;
    *out = authcert_secret_dup(buf);
    if (*out == NULL)
        rc = authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
out:
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}
