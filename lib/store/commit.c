/*
 * Changing the store: the writer's edits in memory (a new current
 * certificate, one added beside it, a revocation, the backup password) and
 * the one commit that makes them real.
 *
 * Why a file of its own: this is the only code that changes the store's
 * state (store.c takes the lock and sweeps a killed writer's temporaries,
 * nothing more), and only a store opened for writing, under the lock, gets
 * past require_writer. Every edit stays in memory until
 * authcert_store_commit, which writes the new key files and then renames
 * the new index into place, the one atomic step (store.c's header says why
 * in that order). Opening and reading the store, what every process does,
 * is in store.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "authcert/fsutil.h"
#include "authcert/password.h"
#include "authcert/store.h"
#include "internal.h"
#include "store/store_internal.h"

static authcert_status require_writer(const authcert_store *s)
{
    if (s->lock_fd < 0)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: store opened read-only", s->dir);
    return AUTHCERT_OK;
}

authcert_status authcert_store_set_password(authcert_store *s, const char *password)
{
    authcert_status rc = require_writer(s);
    char *hash = NULL;

    if (rc != AUTHCERT_OK)
        return rc;
    rc = authcert_password_hash(password, &hash);
    if (rc != AUTHCERT_OK)
        return rc;
    authcert_secret_free(s->password_hash);
    s->password_hash = hash;
    s->dirty = true;
    return AUTHCERT_OK;
}

static authcert_status check_insertable(const authcert_cert *cert)
{
    if (cert == NULL || !authcert_cert_has_key(cert))
        return authcert_fail(AUTHCERT_E_USAGE, "a certificate without its private key "
                                               "cannot be stored");
    return AUTHCERT_OK;
}

/* Append a new entry for cert (a reference is taken). */
static authcert_status append(authcert_store *s, authcert_cert *cert, authcert_state state,
                              bool exportable, time_t now, struct entry **out)
{
    authcert_status rc = store_grow(s);
    struct entry *e;

    if (rc != AUTHCERT_OK)
        return rc;
    e = &s->entries[s->count++];
    memset(e, 0, sizeof *e);
    snprintf(e->pub.thumbprint, sizeof e->pub.thumbprint, "%s",
             authcert_cert_thumbprint(cert));
    e->pub.state = state;
    e->pub.exportable = exportable;
    e->pub.added = now;
    e->pub.retired = state == AUTHCERT_STATE_CURRENT ? 0 : now;
    e->pub.cert = authcert_cert_ref(cert);
    e->on_disk = false;
    *out = e;
    return AUTHCERT_OK;
}

authcert_status authcert_store_make_current(authcert_store *s, authcert_cert *cert,
                                            bool exportable, authcert_state old_state)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    time_t now = time(NULL);
    struct entry *e, *cur = NULL;

    GUARD(require_writer(s));
    GUARD(check_insertable(cert));
    if (old_state != AUTHCERT_STATE_EXPIRED && old_state != AUTHCERT_STATE_REVOKED)
        FAIL(AUTHCERT_E_USAGE, "the previous certificate must become expired or revoked");
    e = store_find(s, authcert_cert_thumbprint(cert));
    if (e != NULL && e->pub.state == AUTHCERT_STATE_REVOKED)
        FAIL(AUTHCERT_E_POLICY, "certificate %s was revoked; it can never be current again",
             e->pub.thumbprint);
    for (size_t i = 0; i < s->count; i++)
        if (s->entries[i].pub.state == AUTHCERT_STATE_CURRENT)
            cur = &s->entries[i];
    if (cur != NULL && cur == e) {
        cur->pub.exportable = exportable;
        s->dirty = true;
        rc = AUTHCERT_OK;
        goto out;
    }
    if (cur != NULL) {
        cur->pub.state = old_state;
        cur->pub.retired = now;
    }
    /* The new current certificate's successor, if it commits to one, is
     * staged by the caller (authcert_store_stage_next_key). */
    s->next_where = AUTHCERT_NEXT_KEY_NONE;
    s->next_hash[0] = '\0';
    authcert_next_key_free(s->next_staged);
    s->next_staged = NULL;
    if (e != NULL) {
        e->pub.state = AUTHCERT_STATE_CURRENT;
        e->pub.retired = 0;
        e->pub.exportable = exportable;
    } else {
        GUARD(append(s, cert, AUTHCERT_STATE_CURRENT, exportable, now, &e));
    }
    store_sort(s);
    s->dirty = true;
    rc = AUTHCERT_OK;
out:
    return rc;
}

authcert_status authcert_store_add(authcert_store *s, authcert_cert *cert,
                                   authcert_state state, bool exportable)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    struct entry *e;

    GUARD(require_writer(s));
    GUARD(check_insertable(cert));
    if (state != AUTHCERT_STATE_EXPIRED && state != AUTHCERT_STATE_REVOKED)
        FAIL(AUTHCERT_E_USAGE, "a certificate added beside the current one must be "
                               "expired or revoked");
    e = store_find(s, authcert_cert_thumbprint(cert));
    if (e == NULL) {
        GUARD(append(s, cert, state, exportable, time(NULL), &e));
    } else {
        /* Only ever stricter: a revoked key is never made usable again, and
         * the current one is replaced only by make_current or revoked by -c
         * --compromised. */
        if (e->pub.state == AUTHCERT_STATE_EXPIRED && state == AUTHCERT_STATE_REVOKED)
            e->pub.state = AUTHCERT_STATE_REVOKED;
        e->pub.exportable = exportable;
    }
    store_sort(s);
    s->dirty = true;
    rc = AUTHCERT_OK;
out:
    return rc;
}

authcert_status authcert_store_revoke(authcert_store *s, const char *thumbprint)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    struct entry *e;

    GUARD(require_writer(s));
    e = thumbprint != NULL ? store_find(s, thumbprint) : NULL;
    if (e == NULL)
        FAIL(AUTHCERT_E_NOTFOUND, "no certificate %s in the store",
             thumbprint != NULL ? thumbprint : "(none)");
    if (e->pub.state == AUTHCERT_STATE_CURRENT)
        FAIL(AUTHCERT_E_POLICY, "the current certificate cannot be revoked in place; "
                                "replace it with authcert -c --compromised");
    if (e->pub.state != AUTHCERT_STATE_REVOKED) {
        e->pub.state = AUTHCERT_STATE_REVOKED;
        if (e->pub.retired == 0)
            e->pub.retired = time(NULL);
        s->dirty = true;
        store_sort(s);
    }
    rc = AUTHCERT_OK;
out:
    return rc;
}

authcert_status authcert_store_set_handoff(authcert_store *s, const char *thumbprint,
                                          const char *jws)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    struct entry *e;
    char *copy = NULL;

    GUARD(require_writer(s));
    e = thumbprint != NULL ? store_find(s, thumbprint) : NULL;
    if (e == NULL)
        FAIL(AUTHCERT_E_NOTFOUND, "no certificate %s in the store",
             thumbprint != NULL ? thumbprint : "(none)");
    if (jws == NULL || *jws == '\0')
        FAIL(AUTHCERT_E_USAGE, "an empty hand-off statement");
    GUARD_ALLOC(copy = strdup(jws));
    free(e->pub.handoff);
    e->pub.handoff = copy;
    s->dirty = true;
    rc = AUTHCERT_OK;
out:
    return rc;
}

/* keys/T.pem for an entry that has none yet: certificate then key, 0600. */
static authcert_status write_keyfile(authcert_store *s, struct entry *e)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char path[4096], keys[4096];
    char *cert_pem = NULL, *key_pem = NULL, *both = NULL;
    size_t cert_len = 0, key_len = 0, both_len = 0;
    struct stat st;

    if (store_path_in(s, keys, sizeof keys, "keys") != 0
        || store_keyfile_path(s, path, sizeof path, e->pub.thumbprint) != 0)
        FAIL(AUTHCERT_E_USAGE, "%s: path too long", s->dir);
    if (mkdir(keys, 0700) != 0 && errno != EEXIST)
        FAIL(AUTHCERT_E_IO, "%s: %s", keys, strerror(errno));
    /* Content-addressed: a file already there holds this very certificate
     * (left by an interrupted commit); store_load_keyfile would have caught
     * one that did not. Never overwrite a key. */
    if (stat(path, &st) == 0) {
        authcert_cert *check = NULL;
        rc = store_load_keyfile(s, e->pub.thumbprint, &check);
        authcert_cert_free(check);
        if (rc == AUTHCERT_OK) {
            e->on_disk = true;
            goto out;
        }
        FAIL(AUTHCERT_E_CORRUPT, "%s: exists and is damaged; move it away to continue", path);
    }
    GUARD(authcert_cert_to_pem(e->pub.cert, &cert_pem, &cert_len));
    GUARD(authcert_cert_key_to_pem(e->pub.cert, &key_pem, &key_len));
    both_len = cert_len + key_len;
    GUARD_ALLOC(both = OPENSSL_malloc(both_len));
    memcpy(both, cert_pem, cert_len);
    memcpy(both + cert_len, key_pem, key_len);
    GUARD(authcert_write_atomic(path, both, both_len, 0600));
    e->on_disk = true;
    rc = AUTHCERT_OK;
out:
    OPENSSL_clear_free(cert_pem, cert_len);
    OPENSSL_clear_free(key_pem, key_len);
    OPENSSL_clear_free(both, both_len);
    return rc;
}

static authcert_status build_index(const authcert_store *s, unsigned long long generation,
                                   char **text)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_t *root = NULL, *certs = NULL;

    GUARD_ALLOC(root = json_object());
    GUARD_ALLOC(certs = json_array());
    for (size_t i = 0; i < s->count; i++) {
        const authcert_store_entry *e = &s->entries[i].pub;
        json_t *je = json_pack("{s:s, s:s, s:b, s:I, s:I}",
                               "thumbprint", e->thumbprint,
                               "state", authcert_state_name(e->state),
                               "exportable", e->exportable,
                               "added", (json_int_t)e->added,
                               "retired", (json_int_t)e->retired);
        GUARD_ALLOC(je);
        if (e->handoff != NULL
            && json_object_set_new(je, "handoff", json_string(e->handoff)) != 0) {
            json_decref(je);
            FAIL(AUTHCERT_E_NOMEM, "out of memory");
        }
        if (json_array_append_new(certs, je) != 0)
            FAIL(AUTHCERT_E_NOMEM, "out of memory");
    }
    if (json_object_set_new(root, "format", json_integer(STORE_FORMAT)) != 0
        || json_object_set_new(root, "generation", json_integer((json_int_t)generation)) != 0
        || json_object_set_new(root, "password", s->password_hash != NULL
                                                     ? json_string(s->password_hash)
                                                     : json_null()) != 0
        || json_object_set_new(root, "next_key", store_next_key_json(s)) != 0
        || json_object_set(root, "certificates", certs) != 0)
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    GUARD_ALLOC(*text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS));
    rc = AUTHCERT_OK;
out:
    json_decref(certs);
    json_decref(root);
    return rc;
}

authcert_status authcert_store_commit(authcert_store *s)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char path[4096];
    char *text = NULL;
    struct stat st;
    bool committed = false, next_created = false;

    GUARD(require_writer(s));
    if (!s->dirty) {
        rc = AUTHCERT_OK;
        goto out;
    }
    /* Every store that has changed once holds a server secret (protocol v2):
     * before the index, so that a committed store is never without one. */
    if (s->secret_staged) {
        GUARD(authcert_store_set_secret(s, s->staged_secret));
        OPENSSL_cleanse(s->staged_secret, sizeof s->staged_secret);
        s->secret_staged = false;
    } else {
        bool made = false;
        GUARD(authcert_store_ensure_secret(s, &made));
    }
    /* Keys first: the index must never name a key that is not on disk. */
    for (size_t i = 0; i < s->count; i++)
        if (!s->entries[i].on_disk) {
            s->entries[i].written_now = true;
            GUARD(write_keyfile(s, &s->entries[i]));
        }
    GUARD(store_next_key_write(s, &next_created));
    GUARD(build_index(s, s->generation + 1, &text));
    if (store_path_in(s, path, sizeof path, STORE_INDEX_NAME) != 0)
        FAIL(AUTHCERT_E_USAGE, "%s: path too long", s->dir);
    GUARD(authcert_write_atomic(path, text, strlen(text), 0600));
    /* The commit point has passed. */
    committed = true;
    s->generation++;
    s->dirty = false;
    if (stat(path, &st) == 0) {
        s->index_st = st;
        s->index_seen = true;
    }
    rc = AUTHCERT_OK;
out:
    /* A failed commit (a full disk) leaves the store exactly as it was: the
     * key files it wrote are named by no index on disk, so they go again.
     * Not when the new index was renamed into place and only a later step
     * failed (the directory's fsync): then it names them. */
    if (!committed) {
        char ip[4096];
        struct stat now;
        if (store_path_in(s, ip, sizeof ip, STORE_INDEX_NAME) != 0
            || (stat(ip, &now) == 0
                && (!s->index_seen || now.st_ino != s->index_st.st_ino
                    || now.st_dev != s->index_st.st_dev)))
            committed = true; /* or unknown: keep every key file */
    }
    for (size_t i = 0; i < s->count; i++) {
        if (s->entries[i].written_now && !committed && s->entries[i].on_disk) {
            char kp[4096];
            if (store_keyfile_path(s, kp, sizeof kp, s->entries[i].pub.thumbprint) == 0)
                (void)unlink(kp);
            s->entries[i].on_disk = false;
        }
        s->entries[i].written_now = false;
    }
    if (committed) {
        /* Named by the index now, or no longer needed: promoted into a key
         * file, or exported (the copy was written before this commit). */
        authcert_next_key_free(s->next_staged);
        s->next_staged = NULL;
        store_next_key_sweep(s);
    } else if (next_created) {
        store_next_key_unwrite(s);
    }
    /* The index holds the password hash: wipe our copy of it. */
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text); /* jansson's allocator is malloc */
    }
    return rc;
}
