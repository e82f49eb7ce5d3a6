/*
 * The server secret in the certificate store (authcert/store.h): the root of
 * every agent's MAC key (authcert/auth.h). Beside the index rather than in
 * it: it belongs to no generation, is never rotated by -c, and authcertd
 * reads it once at start without parsing the index.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "authcert/fsutil.h"
#include "authcert/store.h"
#include "internal.h"
#include "store/store_internal.h"

#define SECRET_FILE "server-secret"

static authcert_status secret_path(const authcert_store *s, char *out, size_t size)
{
    if ((size_t)snprintf(out, size, "%s/" SECRET_FILE, s->dir) >= size)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", s->dir);
    return AUTHCERT_OK;
}

authcert_status authcert_store_server_secret(const authcert_store *s,
                                             unsigned char out[AUTHCERT_STORE_SECRET_LEN])
{
    char path[4096];
    struct stat st;
    ssize_t n;
    int fd;
    authcert_status rc = secret_path(s, path, sizeof path);

    if (rc != AUTHCERT_OK)
        return rc;
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return authcert_fail(AUTHCERT_E_NOTFOUND,
                                 "%s: no server secret (a store made before protocol v2: "
                                 "authcert --server-secret init makes one)", s->dir);
        return authcert_fail(errno == ELOOP || errno == EACCES ? AUTHCERT_E_PERM : AUTHCERT_E_IO,
                             "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return authcert_fail(AUTHCERT_E_PERM, "%s: not a regular file", path);
    }
    if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 077) != 0) {
        close(fd);
        return authcert_fail(AUTHCERT_E_PERM, "%s: owned by uid %u, mode %04o: the server "
                             "secret must be the store owner's or root's, 0600", path,
                             (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
    }
    n = read(fd, out, AUTHCERT_STORE_SECRET_LEN);
    if (n == AUTHCERT_STORE_SECRET_LEN) {
        unsigned char more;
        if (read(fd, &more, 1) != 0)
            n = -1;
    }
    close(fd);
    if (n != AUTHCERT_STORE_SECRET_LEN) {
        OPENSSL_cleanse(out, AUTHCERT_STORE_SECRET_LEN);
        return authcert_fail(AUTHCERT_E_CORRUPT, "%s: not %d bytes", path,
                             AUTHCERT_STORE_SECRET_LEN);
    }
    return AUTHCERT_OK;
}

authcert_status authcert_store_set_secret(authcert_store *s,
                                          const unsigned char secret[AUTHCERT_STORE_SECRET_LEN])
{
    char path[4096];
    authcert_status rc;

    if (s->lock_fd < 0)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: opened read-only", s->dir);
    if ((rc = secret_path(s, path, sizeof path)) != AUTHCERT_OK)
        return rc;
    return authcert_write_atomic(path, secret, AUTHCERT_STORE_SECRET_LEN, 0600);
}

authcert_status authcert_store_ensure_secret(authcert_store *s, bool *created)
{
    unsigned char secret[AUTHCERT_STORE_SECRET_LEN];
    authcert_status rc;

    *created = false;
    rc = authcert_store_server_secret(s, secret);
    if (rc != AUTHCERT_E_NOTFOUND) {
        OPENSSL_cleanse(secret, sizeof secret);
        return rc;
    }
    if (RAND_priv_bytes(secret, sizeof secret) != 1)
        return authcert_fail_ossl(AUTHCERT_E_CRYPTO, "server secret: random");
    rc = authcert_store_set_secret(s, secret);
    OPENSSL_cleanse(secret, sizeof secret);
    *created = rc == AUTHCERT_OK;
    return rc;
}

void store_stage_secret(authcert_store *s, const unsigned char secret[32])
{
    memcpy(s->staged_secret, secret, 32);
    s->secret_staged = true;
    s->dirty = true;
}
