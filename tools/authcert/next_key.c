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
#include <unistd.h>

#include <openssl/crypto.h>

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
    return AUTHCERT_OK;
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
    /* The copy first: at every instant the store or PATH holds it. */
    TRY(export_to(path, pem, len));
    TRY(authcert_store_next_key_exported(s));
    rc = authcert_store_commit(s);
    if (rc != AUTHCERT_OK) {
        (void)unlink(path);
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
    TRY(authcert_store_stage_next_key(s, k));
    TRY(authcert_store_commit(s));
    tool_say(o, "the sealed next key (%.16s...) is back in the store; %s may be deleted",
             want, path);
out:
    free(pem);
    authcert_next_key_free(k);
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
