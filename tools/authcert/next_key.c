/*
 * Pre-rotation in the admin tool: the guard that keeps -c, -i and -r from
 * stranding agents that hold a committing certificate, and --next-key
 * export|import, which moves the sealed successor off the machine and back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <limits.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tool.h"

struct stranded {
    const authcert_store *store;
    uint64_t agents;
};

/* Agents on a certificate of ours that commits to a successor: they follow
 * only that successor. */
static authcert_status count_committed(void *ctx, const char *thumbprint, uint64_t agents)
{
    struct stranded *st = ctx;
    const authcert_store_entry *e = thumbprint[0] != '\0'
                                        ? authcert_store_find(st->store, thumbprint) : NULL;
    char hash[AUTHCERT_SPKI_HASH_LEN + 1];
    bool has = false;

    if (e != NULL && e->state != AUTHCERT_STATE_REVOKED
        && authcert_cert_commitment(e->cert, &has, hash) == AUTHCERT_OK && has)
        st->agents += agents;
    return AUTHCERT_OK;
}

authcert_status tool_commitment_guard(const struct tool_opts *o, const authcert_store *s,
                                      const authcert_cert *incoming)
{
    const authcert_store_entry *cur = s != NULL ? authcert_store_current(s) : NULL;
    char want[AUTHCERT_SPKI_HASH_LEN + 1], got[AUTHCERT_SPKI_HASH_LEN + 1];
    struct stranded st = { .store = s };
    authcert_registry *reg = NULL;
    bool has = false;
    authcert_status rc;

    if (cur == NULL || strcmp(cur->thumbprint, authcert_cert_thumbprint(incoming)) == 0)
        return AUTHCERT_OK;
    rc = authcert_cert_commitment(cur->cert, &has, want);
    if (rc != AUTHCERT_OK || !has)
        return rc;
    rc = authcert_spki_sha256(authcert_cert_pubkey(incoming), got);
    if (rc != AUTHCERT_OK)
        return rc;
    if (strcmp(got, want) == 0)
        return AUTHCERT_OK; /* the committed successor itself */
    if (!o->break_commitment)
        return authcert_fail(AUTHCERT_E_POLICY,
                             "the current certificate %.16s... commits to its successor key, and "
                             "agents holding it follow no other: promote it with authcert -c, or "
                             "give --break-commitment (those agents will need the exported "
                             "agent certificate file)", cur->thumbprint);
    if (tool_registry_open(o, &reg) == AUTHCERT_OK
        && authcert_registry_count_by_thumbprint(reg, count_committed, &st) == AUTHCERT_OK)
        tool_warn(o, "--break-commitment: %llu agent%s on a committing certificate cannot "
                  "follow; copy the exported agent certificate file (-e) to %s",
                  (unsigned long long)st.agents, st.agents == 1 ? "" : "s",
                  st.agents == 1 ? "it" : "them");
    else
        tool_warn(o, "--break-commitment: agents on a committing certificate cannot follow; "
                  "copy the exported agent certificate file (-e) to them");
    authcert_registry_close(reg);
    return AUTHCERT_OK;
}

/* The sealed file to PATH: created, never over another file, 0600, synced. */
static authcert_status export_to(const char *path, const char *pem, size_t len)
{
    int fd;
    size_t done = 0;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return authcert_fail(errno == EEXIST ? AUTHCERT_E_USAGE : AUTHCERT_E_IO,
                             "%s: %s", path, errno == EEXIST ? "exists; not overwritten"
                                                              : strerror(errno));
    while (done < len) {
        ssize_t n = write(fd, pem + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (done != len || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        (void)unlink(path);
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", path, strerror(e));
    }
    if (close(fd) != 0) {
        (void)unlink(path);
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", path, strerror(errno));
    }
    /* Its name too must survive a power cut before the store forgets the key. */
    {
        char dir[4096];
        const char *slash = strrchr(path, '/');
        int dfd;
        if (slash == NULL)
            snprintf(dir, sizeof dir, ".");
        else
            snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) {
            int e = errno;
            if (dfd >= 0)
                close(dfd);
            (void)unlink(path);
            return authcert_fail(AUTHCERT_E_IO, "%s: %s", dir, strerror(e));
        }
        close(dfd);
    }
    return AUTHCERT_OK;
}

/* PATH's folder inside the store: the store's own sweep would remove it. */
static authcert_status outside_store(const authcert_store *s, const char *path)
{
    char dir[4096], real_dir[PATH_MAX], real_store[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (realpath(dir, real_dir) == NULL)
        return authcert_fail(errno == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO, "%s: %s",
                             dir, strerror(errno));
    if (realpath(authcert_store_dir(s), real_store) == NULL)
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", authcert_store_dir(s), strerror(errno));
    n = strlen(real_store);
    if (strncmp(real_dir, real_store, n) == 0 && (real_dir[n] == '\0' || real_dir[n] == '/'))
        return authcert_fail(AUTHCERT_E_USAGE, "%s: inside the store; export the next key "
                             "off the machine", path);
    return AUTHCERT_OK;
}

/* After a failed commit: does the index on disk already say exported? */
static bool index_says_exported(const char *dir)
{
    authcert_store *look = NULL;
    bool yes;

    if (authcert_store_open(dir, AUTHCERT_STORE_READ, &look) != AUTHCERT_OK)
        return true; /* unknown: keep the copy */
    yes = authcert_store_next_key(look, NULL) == AUTHCERT_NEXT_KEY_EXPORTED;
    authcert_store_close(look);
    return yes;
}

static authcert_status do_export(const struct tool_opts *o, authcert_store *s, const char *path)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_next_key *k = NULL;
    char *pem = NULL;
    size_t len = 0;

    TRY(authcert_store_load_next_key(s, &k));
    TRY(authcert_next_key_to_pem(k, &pem, &len));
    TRY(tool_check_destination(path));
    TRY(outside_store(s, path));
    /* The copy first: at every instant the store or PATH holds it. */
    TRY(export_to(path, pem, len));
    TRY(authcert_store_next_key_exported(s));
    rc = authcert_store_commit(s);
    if (rc != AUTHCERT_OK) {
        /* Removed only when the store surely still holds the key. */
        char why[512];
        snprintf(why, sizeof why, "%s", authcert_detail());
        if (!index_says_exported(authcert_store_dir(s))) {
            (void)unlink(path);
            rc = authcert_fail(rc, "%s", why);
        } else {
            rc = authcert_fail(rc, "%s (the store recorded the export: keep %s)", why, path);
        }
        goto out;
    }
    tool_say(o, "the sealed next key (%.16s...) is in %s and no longer in the store; "
             "import it before the next authcert -c", authcert_next_key_hash(k), path);
out:
    OPENSSL_free(pem);
    authcert_next_key_free(k);
    return rc;
}

static authcert_status do_import(const struct tool_opts *o, authcert_store *s, const char *path)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const authcert_store_entry *cur = authcert_store_current(s);
    authcert_next_key *k = NULL;
    uint8_t *pem = NULL;
    size_t len = 0;
    char want[AUTHCERT_SPKI_HASH_LEN + 1];
    char *secret = NULL;
    EVP_PKEY *priv = NULL;
    bool has = false;

    if (cur == NULL)
        return authcert_fail(AUTHCERT_E_NOTFOUND, "the store has no current certificate");
    TRY(authcert_cert_commitment(cur->cert, &has, want));
    if (!has) {
        rc = authcert_fail(AUTHCERT_E_POLICY, "the current certificate commits to no "
                           "successor: there is nothing to import");
        goto out;
    }
    TRY(authcert_read_file(path, AUTHCERT_NEXT_KEY_MAX, &pem, &len));
    TRY(authcert_next_key_from_pem((const char *)pem, len, &k));
    if (strcmp(authcert_next_key_hash(k), want) != 0) {
        rc = authcert_fail(AUTHCERT_E_POLICY, "%s: holds key %.16s..., but the current "
                           "certificate commits to %.16s...", path, authcert_next_key_hash(k),
                           want);
        goto out;
    }
    /* The public block alone proves nothing of the sealed one: opened with
     * the recovery secret, it must be that very key, or it would replace
     * the store's with one the next -c cannot use. */
    TRY(tool_recovery_secret(o, false, &secret));
    if (secret == NULL) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "give the recovery secret (--recovery-file or "
                           "--recovery-fd): the file is checked with it before it is taken");
        goto out;
    }
    TRY(authcert_next_key_unseal(k, secret, &priv));
    TRY(authcert_store_stage_next_key(s, k));
    TRY(authcert_store_commit(s));
    tool_say(o, "the sealed next key (%.16s...) is back in the store; %s may be deleted",
             want, path);
out:
    free(pem);
    authcert_next_key_free(k);
    authcert_secret_free(secret);
    EVP_PKEY_free(priv);
    return rc;
}

int cmd_next_key(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store *s = NULL;
    const char *verb = o->pos[0], *path = o->pos[1];

    if (strcmp(verb, "export") != 0 && strcmp(verb, "import") != 0) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "export or import, not %s", verb);
        goto out;
    }
    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_WRITE, &s));
    rc = strcmp(verb, "export") == 0 ? do_export(o, s, path) : do_import(o, s, path);
out:
    authcert_store_close(s);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
