/* Atomic file writes and bounded whole-file reads. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <openssl/crypto.h>

#include "authcert/fsutil.h"
#include "internal.h"

static authcert_status io_fail(const char *what, const char *path, int err)
{
    return authcert_fail(err == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO,
                         "%s: %s: %s", path, what, strerror(err));
}

/* The directory part of path, in a buffer of the caller's. */
static void dir_of(const char *path, char *buf, size_t size)
{
    char tmp[4096];

    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(buf, size, "%s", dirname(tmp));
}

authcert_status authcert_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return io_fail("open directory", dir, errno);
    if (fsync(fd) != 0 && errno != EINVAL) {
        int err = errno;
        close(fd);
        return io_fail("fsync directory", dir, err);
    }
    close(fd);
    return AUTHCERT_OK;
}

static authcert_status write_all(int fd, const void *data, size_t len,
                                 const char *path)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_fail("write", path, errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return AUTHCERT_OK;
}

/*
 * Create a fresh temporary file beside path (tmp gets its name, dir the
 * directory) with exactly mode. Returns the descriptor or -1 with a detail.
 */
static int open_temp(const char *path, mode_t mode, char tmp[4096], char dir[4096],
                     authcert_status *rc)
{
    unsigned char rnd[6];
    int fd;

    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        *rc = authcert_fail_ossl(AUTHCERT_E_CRYPTO, "random temporary name");
        return -1;
    }
    if ((size_t)snprintf(tmp, 4096, "%s.%02x%02x%02x%02x%02x%02x.tmp", path,
                         rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5])
        >= 4096) {
        *rc = authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", path);
        return -1;
    }
    dir_of(path, dir, 4096);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        int err = errno;
        *rc = err == ENOENT ? authcert_fail(AUTHCERT_E_IO, "%s: no such directory", dir)
                            : io_fail("create", path, err);
        return -1;
    }
    /* open() honours the umask; the mode asked for is the mode wanted. */
    if (fchmod(fd, mode) != 0) {
        *rc = authcert_fail(AUTHCERT_E_IO, "%s: chmod: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    return fd;
}

/* fsync, close and rename tmp over path, fsync dir. Always closes fd. */
static authcert_status finish_temp(int fd, const char *tmp, const char *path,
                                   const char *dir)
{
    if (fsync(fd) != 0) {
        int err = errno;
        close(fd);
        return authcert_fail(AUTHCERT_E_IO, "%s: fsync: %s", path, strerror(err));
    }
    if (close(fd) != 0)
        return authcert_fail(AUTHCERT_E_IO, "%s: close: %s", path, strerror(errno));
    if (rename(tmp, path) != 0)
        return authcert_fail(AUTHCERT_E_IO, "%s: rename: %s", path, strerror(errno));
    return authcert_fsync_dir(dir);
}

authcert_status authcert_write_atomic(const char *path, const void *data,
                                      size_t len, mode_t mode)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char tmp[4096], dir[4096];
    int fd;

    fd = open_temp(path, mode, tmp, dir, &rc);
    if (fd < 0)
        return rc;
    rc = write_all(fd, data, len, path);
    if (rc != AUTHCERT_OK) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    rc = finish_temp(fd, tmp, path, dir);
    if (rc != AUTHCERT_OK)
        unlink(tmp); /* harmless after a successful rename: tmp is gone */
    return rc;
}

struct authcert_atomic_file {
    FILE *stream;
    char tmp[4096], dir[4096], *path;
};

authcert_status authcert_atomic_open(const char *path, mode_t mode,
                                     authcert_atomic_file **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_atomic_file *f = NULL;
    int fd = -1;

    *out = NULL;
    GUARD_ALLOC(f = calloc(1, sizeof *f));
    GUARD_ALLOC(f->path = strdup(path));
    fd = open_temp(path, mode, f->tmp, f->dir, &rc);
    if (fd < 0)
        goto out;
    f->stream = fdopen(fd, "w");
    if (f->stream == NULL) {
        close(fd);
        unlink(f->tmp);
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    }
    *out = f;
    f = NULL;
    rc = AUTHCERT_OK;
out:
    if (f != NULL)
        free(f->path);
    free(f);
    return rc;
}

FILE *authcert_atomic_stream(authcert_atomic_file *f)
{
    return f->stream;
}

authcert_status authcert_atomic_commit(authcert_atomic_file *f)
{
    authcert_status rc;
    int fd;

    if (fflush(f->stream) != 0 || ferror(f->stream)) {
        rc = authcert_fail(AUTHCERT_E_IO, "%s: write: %s", f->path, strerror(errno));
        authcert_atomic_abort(f);
        return rc;
    }
    /* finish_temp closes the descriptor; the FILE is then only freed. */
    fd = dup(fileno(f->stream));
    fclose(f->stream);
    f->stream = NULL;
    if (fd < 0) {
        rc = authcert_fail(AUTHCERT_E_IO, "%s: %s", f->path, strerror(errno));
    } else {
        rc = finish_temp(fd, f->tmp, f->path, f->dir);
    }
    if (rc != AUTHCERT_OK)
        unlink(f->tmp);
    free(f->path);
    free(f);
    return rc;
}

void authcert_atomic_abort(authcert_atomic_file *f)
{
    if (f == NULL)
        return;
    if (f->stream != NULL)
        fclose(f->stream);
    unlink(f->tmp);
    free(f->path);
    free(f);
}

/* Read up to size bytes of fd into buf; *got what came (a file that shrank
 * under us gives what is there). */
static authcert_status read_up_to(int fd, const char *path, uint8_t *buf, size_t size,
                                  size_t *got)
{
    *got = 0;
    while (*got < size) {
        ssize_t n = read(fd, buf + *got, size - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return authcert_fail(AUTHCERT_E_IO, "%s: read: %s", path, strerror(errno));
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return AUTHCERT_OK;
}

authcert_status authcert_read_file(const char *path, size_t max_len,
                                   uint8_t **data, size_t *len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd;

    *data = NULL;
    *len = 0;
    /*
     * O_NONBLOCK: opening a FIFO for reading would wait for a writer, and
     * another user's FIFO named like the expected file could hold us there
     * for ever. It changes nothing for the regular file we then insist on.
     */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return io_fail("open", path, errno);
    if (fstat(fd, &st) != 0)
        FAIL(AUTHCERT_E_IO, "%s: stat: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        FAIL(AUTHCERT_E_USAGE, "%s: is a directory", path);
    if (!S_ISREG(st.st_mode))
        FAIL(AUTHCERT_E_USAGE, "%s: not a regular file", path);
    if ((uint64_t)st.st_size > max_len)
        FAIL(AUTHCERT_E_CORRUPT, "%s: larger than %zu bytes", path, max_len);
    GUARD_ALLOC(buf = malloc((size_t)st.st_size + 1));
    GUARD(read_up_to(fd, path, buf, (size_t)st.st_size, &got));
    buf[got] = '\0'; /* convenience for text readers; not counted in len */
    *data = buf;
    *len = got;
    buf = NULL;
    rc = AUTHCERT_OK;
out:
    free(buf);
    close(fd);
    return rc;
}

int authcert_is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * (authcert/fsutil.h) A private file: not a link (O_NOFOLLOW), a regular
 * file (a FIFO would hang us: O_NONBLOCK, then fstat), the caller's or
 * root's, and no access for group or others. The detail says what to fix.
 */
authcert_status authcert_read_private(const char *path, size_t max_len, uint8_t **data,
                                      size_t *len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    *data = NULL;
    *len = 0;
    if (fd < 0) {
        if (errno == ENOENT)
            return authcert_fail(AUTHCERT_E_NOTFOUND, "%s: no such key file", path);
        if (errno == ELOOP)
            return authcert_fail(AUTHCERT_E_PERM, "%s: a symbolic link: refused for a private file",
                                 path);
        if (errno == EACCES)
            return authcert_fail(AUTHCERT_E_PERM, "%s: %s", path, strerror(errno));
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0)
        FAIL(AUTHCERT_E_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        FAIL(AUTHCERT_E_PERM, "%s: not a regular file: refused for a private file", path);
    if (st.st_uid != 0 && st.st_uid != geteuid())
        FAIL(AUTHCERT_E_PERM, "%s: owned by uid %u, not by uid %u or root: refused for a private file",
             path, (unsigned)st.st_uid, (unsigned)geteuid());
    if ((st.st_mode & 077) != 0)
        FAIL(AUTHCERT_E_PERM, "%s: mode %04o lets group or others at a private file "
             "(chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
    if ((uint64_t)st.st_size > max_len)
        FAIL(AUTHCERT_E_CORRUPT, "%s: larger than %zu bytes", path, max_len);
    GUARD_ALLOC(buf = OPENSSL_zalloc((size_t)st.st_size + 1));
    GUARD(read_up_to(fd, path, buf, (size_t)st.st_size, &got));
    *data = buf;
    *len = got;
    buf = NULL;
    rc = AUTHCERT_OK;
out:
    OPENSSL_clear_free(buf, buf != NULL ? (size_t)st.st_size + 1 : 0);
    close(fd);
    return rc;
}

