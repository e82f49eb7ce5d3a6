/*
 * The certificate store: a directory, an index replaced atomically, and
 * key files that are written once and never changed or deleted.
 *
 *   STORE/            0700, owned by root or the administrator
 *   STORE/lock        flock(2) target of the one writer
 *   STORE/store.json  the index (format, generation, password hash, entries)
 *   STORE/keys/T.pem  certificate and PKCS#8 key of thumbprint T, 0600
 *   STORE/backups/    the automatic backups written before a replacement
 *
 * Why this shape: a replacement must be one atomic step, and no step may
 * lose a key. Key files are named by content, so writing them first is
 * harmless; the rename of the index is the commit point. A crash before it
 * leaves the old index (and perhaps an unreferenced key file, never a lost
 * one); a crash after it leaves the new state complete.
 *
 * This file opens and reads the store: what every process does (authcertd
 * reads it and follows a replacement with authcert_store_refresh; the tool
 * opens it to look or before it changes anything). Changing it, the edits
 * in memory and the commit, is in commit.c: only a writer, under the lock,
 * reaches that code. store_internal.h holds what both sides share.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "authcert/fsutil.h"
#include "authcert/password.h"
#include "authcert/store.h"
#include "authcert/trusted_path.h"
#include "internal.h"
#include "store/store_internal.h"

#define INDEX_MAX (4u * 1024 * 1024)
#define KEYFILE_MAX (64u * 1024)

static const char *state_names[] = { "current", "expired", "revoked" };

const char *authcert_state_name(authcert_state s)
{
    if ((unsigned)s < sizeof state_names / sizeof *state_names)
        return state_names[s];
    return "unknown";
}

static int parse_state(const char *name, authcert_state *out)
{
    for (size_t i = 0; i < sizeof state_names / sizeof *state_names; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (authcert_state)i;
            return 0;
        }
    }
    return -1;
}

const char *authcert_store_default_dir(void)
{
    const char *env = getenv("AUTHCERT_STORE");

    return env != NULL && *env != '\0' ? env : AUTHCERT_STORE_DEFAULT_DIR;
}

static void entries_free(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        authcert_cert_free(e[i].pub.cert);
        free(e[i].pub.handoff);
    }
    free(e);
}

int store_path_in(const authcert_store *s, char *buf, size_t size, const char *name)
{
    return (size_t)snprintf(buf, size, "%s/%s", s->dir, name) < size ? 0 : -1;
}

int store_keyfile_path(const authcert_store *s, char *buf, size_t size,
                       const char *thumbprint)
{
    return (size_t)snprintf(buf, size, "%s/keys/%s.pem", s->dir, thumbprint) < size
               ? 0 : -1;
}

/* Room for one more entry. */
authcert_status store_grow(authcert_store *s)
{
    struct entry *n;
    size_t cap;

    if (s->count < s->cap)
        return AUTHCERT_OK;
    cap = s->cap ? s->cap * 2 : 8;
    n = realloc(s->entries, cap * sizeof *n);
    if (n == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    s->entries = n;
    s->cap = cap;
    return AUTHCERT_OK;
}

struct entry *store_find(authcert_store *s, const char *thumbprint)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->entries[i].pub.thumbprint, thumbprint) == 0)
            return &s->entries[i];
    return NULL;
}

/* Current first, then most recently retired, then most recently added. */
static int entry_order(const void *a, const void *b)
{
    const authcert_store_entry *x = &((const struct entry *)a)->pub;
    const authcert_store_entry *y = &((const struct entry *)b)->pub;

    if ((x->state == AUTHCERT_STATE_CURRENT) != (y->state == AUTHCERT_STATE_CURRENT))
        return x->state == AUTHCERT_STATE_CURRENT ? -1 : 1;
    if (x->retired != y->retired)
        return x->retired > y->retired ? -1 : 1;
    if (x->added != y->added)
        return x->added > y->added ? -1 : 1;
    return strcmp(x->thumbprint, y->thumbprint);
}

void store_sort(authcert_store *s)
{
    if (s->count < 2)
        return; /* qsort(NULL, 0, ...) is undefined */
    qsort(s->entries, s->count, sizeof *s->entries, entry_order);
}

/* Load keys/T.pem and check that it really holds thumbprint T. */
authcert_status store_load_keyfile(const authcert_store *s, const char *thumbprint,
                                   authcert_cert **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char path[4096];
    uint8_t *pem = NULL;
    size_t len = 0;

    if (store_keyfile_path(s, path, sizeof path, thumbprint) != 0)
        FAIL(AUTHCERT_E_USAGE, "%s: path too long", s->dir);
    /* Not a link to a key elsewhere, not another user's: the folders above
     * were checked at open, so nobody can swap it after this. */
    rc = authcert_entry_trusted(path, s->owner, false);
    if (rc == AUTHCERT_OK)
        rc = authcert_read_file(path, KEYFILE_MAX, &pem, &len);
    if (rc == AUTHCERT_E_NOTFOUND)
        FAIL(AUTHCERT_E_CORRUPT, "%s: key file of %s is missing", s->dir, thumbprint);
    GUARD(rc);
    /* Certificate and key share the file; each PEM reader finds its block. */
    rc = authcert_cert_from_pem((const char *)pem, len, (const char *)pem, len, out);
    if (rc != AUTHCERT_OK)
        FAIL(AUTHCERT_E_CORRUPT, "%s: damaged key file (%s)", path, authcert_detail());
    if (strcmp(authcert_cert_thumbprint(*out), thumbprint) != 0) {
        authcert_cert_free(*out);
        *out = NULL;
        FAIL(AUTHCERT_E_CORRUPT, "%s: holds another certificate", path);
    }
    rc = AUTHCERT_OK;
out:
    OPENSSL_clear_free(pem, len);
    return rc;
}

static authcert_status index_fail(const authcert_store *s, const char *why)
{
    return authcert_fail(AUTHCERT_E_CORRUPT, "%s/%s: %s", s->dir, STORE_INDEX_NAME, why);
}

static authcert_status parse_entry(authcert_store *s, json_t *je)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *thumb = json_string_value(json_object_get(je, "thumbprint"));
    const char *state = json_string_value(json_object_get(je, "state"));
    json_t *exportable = json_object_get(je, "exportable");
    json_t *added = json_object_get(je, "added");
    json_t *retired = json_object_get(je, "retired");
    struct entry *e;

    if (thumb == NULL || !authcert_thumbprint_valid(thumb) || state == NULL
        || !json_is_boolean(exportable) || !json_is_integer(added)
        || !json_is_integer(retired))
        return index_fail(s, "malformed certificate entry");
    if (store_find(s, thumb) != NULL)
        return index_fail(s, "certificate listed twice");
    GUARD(store_grow(s));
    e = &s->entries[s->count];
    memset(e, 0, sizeof *e);
    snprintf(e->pub.thumbprint, sizeof e->pub.thumbprint, "%s", thumb);
    if (parse_state(state, &e->pub.state) != 0)
        return index_fail(s, "unknown certificate state");
    e->pub.exportable = json_is_true(exportable);
    {
        json_t *h = json_object_get(je, "handoff");
        if (h != NULL && (!json_is_string(h) || json_string_length(h) > 64 * 1024))
            return index_fail(s, "malformed hand-off statement");
        if (h != NULL)
            GUARD_ALLOC(e->pub.handoff = strdup(json_string_value(h)));
    }
    e->pub.added = (time_t)json_integer_value(added);
    e->pub.retired = (time_t)json_integer_value(retired);
    e->on_disk = true;
    rc = store_load_keyfile(s, thumb, &e->pub.cert);
    if (rc != AUTHCERT_OK) {
        free(e->pub.handoff); /* the entry is not counted: nobody else frees it */
        e->pub.handoff = NULL;
        goto out;
    }
    s->count++;
    rc = AUTHCERT_OK;
out:
    return rc;
}

/* Read store.json into s (which must be empty). A missing index is an empty store. */
static authcert_status load_index(authcert_store *s)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char path[4096];
    uint8_t *data = NULL;
    size_t len = 0, i, currents = 0;
    json_t *root = NULL, *certs, *je, *pw, *gen;
    json_error_t jerr;
    int fd = -1;

    if (store_path_in(s, path, sizeof path, STORE_INDEX_NAME) != 0)
        FAIL(AUTHCERT_E_USAGE, "%s: path too long", s->dir);
    /* Remember which index we read, by its inode, for refresh. Not through a
     * symbolic link, and not a FIFO another user put there. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ELOOP)
        FAIL(AUTHCERT_E_PERM, "%s: a symbolic link, refused in a store (replace it with the "
             "file itself)", path);
    if (fd < 0 && errno == ENOENT) {
        s->index_seen = false;
        rc = AUTHCERT_OK;
        goto out;
    }
    if (fd < 0)
        FAIL(AUTHCERT_E_IO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &s->index_st) != 0)
        FAIL(AUTHCERT_E_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(s->index_st.st_mode))
        FAIL(AUTHCERT_E_PERM, "%s: not a regular file, refused", path);
    if (s->index_st.st_uid != 0 && s->index_st.st_uid != s->owner)
        FAIL(AUTHCERT_E_PERM, "%s: owned by uid %u, neither root nor the store's owner (uid "
             "%u): refused", path, (unsigned)s->index_st.st_uid, (unsigned)s->owner);
    if (s->index_st.st_mode & (S_IWGRP | S_IWOTH))
        FAIL(AUTHCERT_E_PERM, "%s: writable by group or others: refused (chmod go-w %s)", path,
             path);
    s->index_seen = true;
    {
        char fdpath[64];
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
        rc = authcert_read_file(fdpath, INDEX_MAX, &data, &len);
        if (rc == AUTHCERT_E_NOTFOUND) /* no /proc: read by name */
            rc = authcert_read_file(path, INDEX_MAX, &data, &len);
        GUARD(rc);
    }
    root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root))
        FAIL(AUTHCERT_E_CORRUPT, "%s: damaged index (not valid JSON)", path);
    if (json_integer_value(json_object_get(root, "format")) != STORE_FORMAT)
        FAIL(AUTHCERT_E_CORRUPT, "%s: unsupported store format", path);
    gen = json_object_get(root, "generation");
    if (!json_is_integer(gen) || json_integer_value(gen) < 0)
        GUARD(index_fail(s, "malformed generation"));
    s->generation = (unsigned long long)json_integer_value(gen);
    pw = json_object_get(root, "password");
    if (pw != NULL && !json_is_null(pw)) {
        if (!json_is_string(pw))
            GUARD(index_fail(s, "malformed password hash"));
        GUARD_ALLOC(s->password_hash = strdup(json_string_value(pw)));
    }
    GUARD(store_next_key_parse(s, json_object_get(root, "next_key")));
    certs = json_object_get(root, "certificates");
    if (!json_is_array(certs))
        GUARD(index_fail(s, "no certificate list"));
    json_array_foreach(certs, i, je) {
        if (!json_is_object(je))
            GUARD(index_fail(s, "malformed certificate entry"));
        GUARD(parse_entry(s, je));
    }
    for (i = 0; i < s->count; i++)
        currents += s->entries[i].pub.state == AUTHCERT_STATE_CURRENT;
    if (currents > 1)
        GUARD(index_fail(s, "more than one current certificate"));
    store_sort(s);
    rc = AUTHCERT_OK;
out:
    if (fd >= 0)
        close(fd);
    json_decref(root);
    free(data);
    return rc;
}

/*
 * The caller cannot even reach dir: a folder on the way does not let it
 * through (a store under /root, or in a 0700 folder, run by another user).
 * That is the same refusal as a store the caller does not own, "not
 * permitted", not an I/O error, and the detail names the folder in the way
 * (the first prefix of the path the caller may not search), which is what
 * there is to fix.
 */
static authcert_status unreachable(const char *dir)
{
    char prefix[4096];
    size_t n = strlen(dir);

    if (n >= sizeof prefix)
        n = sizeof prefix - 1;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && dir[i] != '/')
            continue;
        memcpy(prefix, dir, i);
        prefix[i] = '\0';
        if (faccessat(AT_FDCWD, prefix, X_OK, AT_EACCESS) != 0 && errno == EACCES)
            break;
    }
    if (n == 0 || faccessat(AT_FDCWD, prefix, X_OK, AT_EACCESS) == 0)
        snprintf(prefix, sizeof prefix, "%s", dir);
    return authcert_fail(AUTHCERT_E_PERM,
                         "%s: not permitted: %s does not let uid %u through (only root or "
                         "the store's owner may manage this store)",
                         dir, prefix, (unsigned)geteuid());
}

/*
 * The store folder, every folder above it and its own folders are root's or
 * the store owner's and nobody else can write them (authcert/trusted_path.h):
 * else another user could swap store.json or keys/ for their own, and the
 * daemon would sign update-keys moving the fleet to their certificate.
 */
static authcert_status trusted(const char *dir, uid_t owner)
{
    static const char *const subdirs[] = { "keys", "backups", "tls" };
    authcert_status rc = authcert_path_trusted(dir, owner);

    if (rc != AUTHCERT_OK)
        return authcert_fail(rc, "store %s: not safe: %s", dir, authcert_detail());
    for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]) >= sizeof path)
            return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", dir);
        rc = authcert_entry_trusted(path, owner, true);
        if (rc == AUTHCERT_E_NOTFOUND)
            continue;
        if (rc != AUTHCERT_OK)
            return authcert_fail(rc, "store %s: not safe: %s", dir, authcert_detail());
    }
    return AUTHCERT_OK;
}

/* Root may manage any store; anyone else only one they own. */
static authcert_status check_admin(const char *dir, const struct stat *st)
{
    uid_t me = geteuid();

    if (me == 0 || st->st_uid == me)
        return AUTHCERT_OK;
    return authcert_fail(AUTHCERT_E_PERM,
                         "%s: only root or the store's owner (uid %u) may manage this store",
                         dir, (unsigned)st->st_uid);
}

static authcert_status take_lock(authcert_store *s)
{
    char path[4096];

    if (store_path_in(s, path, sizeof path, "lock") != 0)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (s->lock_fd < 0)
        return authcert_fail(errno == EACCES ? AUTHCERT_E_PERM : AUTHCERT_E_IO,
                             "%s: %s", path, strerror(errno));
    /* Non-blocking: a second administrator is told at once, not left hanging. */
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        close(s->lock_fd);
        s->lock_fd = -1;
        if (err == EWOULDBLOCK)
            return authcert_fail(AUTHCERT_E_BUSY,
                                 "%s: store busy: another authcert is changing it; try again",
                                 s->dir);
        return authcert_fail(AUTHCERT_E_IO, "%s: lock: %s", path, strerror(err));
    }
    return AUTHCERT_OK;
}

/* NAME.<12 hex>.tmp: a temporary of authcert_write_atomic / authcert_atomic_open. */
static bool is_temporary(const char *name)
{
    size_t n = strlen(name);

    if (n < 18 || strcmp(name + n - 4, ".tmp") != 0 || name[n - 17] != '.')
        return false;
    for (size_t i = n - 16; i < n - 4; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return true;
}

/*
 * A writer killed between creating a temporary and renaming it (SIGKILL, a
 * power cut) leaves the temporary behind: never part of the state, but it
 * may hold part of a private key or of the password hash. The next writer
 * (it holds the lock, so no other one is writing) removes them. Best effort:
 * a temporary that cannot be removed harms nothing.
 */
static void sweep_temporaries(const authcert_store *s)
{
    static const char *const subdirs[] = { ".", "keys", "backups" };

    for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
        char path[4096];
        DIR *d;
        struct dirent *de;

        if (store_path_in(s, path, sizeof path, subdirs[i]) != 0 || (d = opendir(path)) == NULL)
            continue;
        while ((de = readdir(d)) != NULL)
            if (is_temporary(de->d_name))
                (void)unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
}

/*
 * A writer killed after writing a new key file and before renaming the
 * index (SIGKILL, a power cut) leaves a key the index does not name: never
 * part of the state, and a private key in the clear (a successor about to
 * be promoted, for one). The next writer, once it has read the index under
 * the lock, removes key files the index does not name, and sealed
 * successors it no longer needs (store_next_key_sweep).
 */
static void sweep_orphans(const authcert_store *s)
{
    char path[4096];
    DIR *d;
    struct dirent *de;

    if (store_path_in(s, path, sizeof path, "keys") != 0 || (d = opendir(path)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char tp[AUTHCERT_THUMBPRINT_LEN + 1];
        size_t n = strlen(de->d_name);
        bool named = false;

        if (n != AUTHCERT_THUMBPRINT_LEN + 4 || strcmp(de->d_name + n - 4, ".pem") != 0)
            continue;
        memcpy(tp, de->d_name, AUTHCERT_THUMBPRINT_LEN);
        tp[AUTHCERT_THUMBPRINT_LEN] = '\0';
        if (!authcert_thumbprint_valid(tp))
            continue;
        for (size_t i = 0; i < s->count && !named; i++)
            named = strcmp(s->entries[i].pub.thumbprint, tp) == 0;
        if (!named)
            (void)unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
    store_next_key_sweep(s);
}

authcert_status authcert_store_open(const char *dir, int flags, authcert_store **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store *s = NULL;
    struct stat st;

    *out = NULL;
    authcert_clear_detail();
    if (dir == NULL || *dir == '\0')
        return authcert_fail(AUTHCERT_E_USAGE, "no store directory given");
    if (flags & AUTHCERT_STORE_CREATE)
        flags |= AUTHCERT_STORE_WRITE;

    if (stat(dir, &st) != 0) {
        if (errno == EACCES)
            return unreachable(dir);
        if (errno != ENOENT)
            return authcert_fail(AUTHCERT_E_IO, "%s: %s", dir, strerror(errno));
        if (!(flags & AUTHCERT_STORE_CREATE))
            return authcert_fail(AUTHCERT_E_NOTFOUND,
                                 "%s: no certificate store here (create one with authcert -c)",
                                 dir);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return authcert_fail(errno == EACCES ? AUTHCERT_E_PERM : AUTHCERT_E_IO,
                                 "%s: cannot create store: %s", dir, strerror(errno));
        if (stat(dir, &st) != 0)
            return authcert_fail(AUTHCERT_E_IO, "%s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return authcert_fail(AUTHCERT_E_USAGE, "%s: not a directory", dir);
    rc = check_admin(dir, &st);
    if (rc != AUTHCERT_OK)
        return rc;
    rc = trusted(dir, st.st_uid);
    if (rc != AUTHCERT_OK)
        return rc;

    GUARD_ALLOC(s = calloc(1, sizeof *s));
    s->lock_fd = -1;
    s->owner = st.st_uid;
    GUARD_ALLOC(s->dir = strdup(dir));
    if (flags & AUTHCERT_STORE_WRITE) {
        GUARD(take_lock(s));
        sweep_temporaries(s);
    }
    GUARD(load_index(s));
    if (flags & AUTHCERT_STORE_WRITE)
        sweep_orphans(s);
    if (!s->index_seen && !(flags & AUTHCERT_STORE_WRITE))
        FAIL(AUTHCERT_E_NOTFOUND,
             "%s: no certificate store here (create one with authcert -c)", dir);
    *out = s;
    s = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_store_close(s);
    return rc;
}

void authcert_store_close(authcert_store *s)
{
    if (s == NULL)
        return;
    entries_free(s->entries, s->count);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    authcert_secret_free(s->password_hash);
    authcert_next_key_free(s->next_staged);
    free(s->dir);
    free(s);
}

const char *authcert_store_dir(const authcert_store *s)
{
    return s->dir;
}

size_t authcert_store_count(const authcert_store *s)
{
    return s->count;
}

const authcert_store_entry *authcert_store_entry_at(const authcert_store *s, size_t i)
{
    return i < s->count ? &s->entries[i].pub : NULL;
}

const authcert_store_entry *authcert_store_current(const authcert_store *s)
{
    /* Sorted: the current one, if any, is first. */
    if (s->count > 0 && s->entries[0].pub.state == AUTHCERT_STATE_CURRENT)
        return &s->entries[0].pub;
    return NULL;
}

const authcert_store_entry *authcert_store_find(const authcert_store *s,
                                                const char *thumbprint)
{
    struct entry *e = thumbprint != NULL ? store_find((authcert_store *)s, thumbprint) : NULL;

    return e != NULL ? &e->pub : NULL;
}

unsigned long long authcert_store_generation(const authcert_store *s)
{
    return s->generation;
}

authcert_status authcert_store_refresh(authcert_store *s, bool *changed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store fresh;
    char path[4096];
    struct stat st;

    if (changed != NULL)
        *changed = false;
    if (s->lock_fd >= 0)
        return AUTHCERT_OK; /* the writer is the only one who changes it */
    if (store_path_in(s, path, sizeof path, STORE_INDEX_NAME) != 0)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", s->dir);
    if (stat(path, &st) != 0)
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", path, strerror(errno));
    /* Every commit renames a new file into place: a new inode. */
    if (s->index_seen && st.st_ino == s->index_st.st_ino && st.st_dev == s->index_st.st_dev
        && st.st_mtim.tv_sec == s->index_st.st_mtim.tv_sec
        && st.st_mtim.tv_nsec == s->index_st.st_mtim.tv_nsec
        && st.st_size == s->index_st.st_size)
        return AUTHCERT_OK;

    memset(&fresh, 0, sizeof fresh);
    fresh.dir = s->dir;
    fresh.lock_fd = -1;
    rc = load_index(&fresh);
    if (rc != AUTHCERT_OK) {
        /* Keep serving the state we had; the caller logs the detail. */
        entries_free(fresh.entries, fresh.count);
        authcert_secret_free(fresh.password_hash);
        return rc;
    }
    entries_free(s->entries, s->count);
    authcert_secret_free(s->password_hash);
    s->entries = fresh.entries;
    s->count = fresh.count;
    s->cap = fresh.cap;
    s->password_hash = fresh.password_hash;
    s->generation = fresh.generation;
    s->next_where = fresh.next_where;
    memcpy(s->next_hash, fresh.next_hash, sizeof s->next_hash);
    memcpy(s->next_type, fresh.next_type, sizeof s->next_type);
    s->index_st = fresh.index_st;
    s->index_seen = fresh.index_seen;
    if (changed != NULL)
        *changed = true;
    return AUTHCERT_OK;
}

bool authcert_store_has_password(const authcert_store *s)
{
    return s->password_hash != NULL;
}

authcert_status authcert_store_check_password(const authcert_store *s,
                                              const char *password)
{
    authcert_status rc;

    if (s->password_hash == NULL)
        return authcert_fail(AUTHCERT_E_NOTFOUND, "%s: the store has no backup password",
                             s->dir);
    rc = authcert_password_verify(password, s->password_hash);
    if (rc == AUTHCERT_E_AUTH)
        return authcert_fail(rc, "%s: wrong backup password", s->dir);
    return rc;
}
