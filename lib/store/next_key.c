/*
 * The store's side of pre-rotation: where the current certificate's
 * committed successor is (the index's "next_key" member) and its sealed
 * file, STORE/keys/next-H.pem.
 *
 * The same order as every key file (store_internal.h): the sealed file is
 * written before the index that names it, and removed only after an index
 * that no longer needs it (the key promoted into keys/T.pem, or exported:
 * the caller wrote the copy first). A crash at any instant leaves the
 * successor in the store, at the export path, or in both.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authcert/fsutil.h"
#include "authcert/store.h"
#include "authcert/trusted_path.h"
#include "internal.h"
#include "store/store_internal.h"

static const char *where_names[] = { "none", "sealed", "exported" };

const char *authcert_next_key_where_name(authcert_next_key_where w)
{
    return (unsigned)w < 3 ? where_names[w] : "unknown";
}

int store_next_key_path(const authcert_store *s, char *buf, size_t size, const char *hash)
{
    return (size_t)snprintf(buf, size, "%s/keys/next-%s.pem", s->dir, hash) < size ? 0 : -1;
}

authcert_next_key_where authcert_store_next_key(const authcert_store *s, char hash[65])
{
    if (hash != NULL)
        snprintf(hash, 65, "%s", s->next_where != AUTHCERT_NEXT_KEY_NONE ? s->next_hash : "");
    return s->next_where;
}

static bool hash_valid(const char *h)
{
    return h != NULL && authcert_thumbprint_valid(h); /* the same form: 64 lowercase hex */
}

authcert_status store_next_key_parse(authcert_store *s, const json_t *j)
{
    const char *hash, *where, *type;

    s->next_where = AUTHCERT_NEXT_KEY_NONE;
    s->next_hash[0] = '\0';
    s->next_type[0] = '\0';
    if (j == NULL || json_is_null(j))
        return AUTHCERT_OK;
    hash = json_string_value(json_object_get(j, "commitment"));
    where = json_string_value(json_object_get(j, "where"));
    type = json_string_value(json_object_get(j, "type"));
    if (!hash_valid(hash) || where == NULL || type == NULL || strlen(type) >= sizeof s->next_type)
        return authcert_fail(AUTHCERT_E_CORRUPT, "%s/%s: malformed next_key", s->dir,
                             STORE_INDEX_NAME);
    if (strcmp(where, "sealed") == 0)
        s->next_where = AUTHCERT_NEXT_KEY_SEALED;
    else if (strcmp(where, "exported") == 0)
        s->next_where = AUTHCERT_NEXT_KEY_EXPORTED;
    else
        return authcert_fail(AUTHCERT_E_CORRUPT, "%s/%s: next_key where \"%s\"", s->dir,
                             STORE_INDEX_NAME, where);
    snprintf(s->next_hash, sizeof s->next_hash, "%s", hash);
    snprintf(s->next_type, sizeof s->next_type, "%s", type);
    return AUTHCERT_OK;
}

json_t *store_next_key_json(const authcert_store *s)
{
    if (s->next_where == AUTHCERT_NEXT_KEY_NONE)
        return json_null();
    return json_pack("{s:s, s:s, s:s}", "commitment", s->next_hash,
                     "where", authcert_next_key_where_name(s->next_where), "type", s->next_type);
}

authcert_status authcert_store_stage_next_key(authcert_store *s, const authcert_next_key *k)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_next_key *copy = NULL;
    char *pem = NULL;
    size_t len = 0;

    if (s->lock_fd < 0)
        FAIL(AUTHCERT_E_USAGE, "%s: store opened read-only", s->dir);
    /* A copy of our own, through the file form: the caller keeps k. */
    GUARD(authcert_next_key_to_pem(k, &pem, &len));
    GUARD(authcert_next_key_from_pem(pem, len, &copy));
    authcert_next_key_free(s->next_staged);
    s->next_staged = copy;
    s->next_where = AUTHCERT_NEXT_KEY_SEALED;
    snprintf(s->next_hash, sizeof s->next_hash, "%s", authcert_next_key_hash(k));
    snprintf(s->next_type, sizeof s->next_type, "%s",
             authcert_key_type_name(authcert_next_key_type(k)));
    s->dirty = true;
    rc = AUTHCERT_OK;
out:
    OPENSSL_free(pem);
    return rc;
}

authcert_status authcert_store_next_key_exported(authcert_store *s)
{
    if (s->lock_fd < 0)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: store opened read-only", s->dir);
    if (s->next_where != AUTHCERT_NEXT_KEY_SEALED)
        return authcert_fail(AUTHCERT_E_NOTFOUND, "%s: no sealed next key in the store", s->dir);
    authcert_next_key_free(s->next_staged);
    s->next_staged = NULL;
    s->next_where = AUTHCERT_NEXT_KEY_EXPORTED;
    s->dirty = true;
    return AUTHCERT_OK;
}

void store_next_key_record_exported(authcert_store *s, const char *hash, const char *type)
{
    authcert_next_key_free(s->next_staged);
    s->next_staged = NULL;
    s->next_where = AUTHCERT_NEXT_KEY_EXPORTED;
    snprintf(s->next_hash, sizeof s->next_hash, "%s", hash);
    snprintf(s->next_type, sizeof s->next_type, "%s", type);
    s->dirty = true;
}

authcert_status authcert_store_load_next_key(const authcert_store *s, authcert_next_key **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char path[4096];
    uint8_t *pem = NULL;
    size_t len = 0;

    *out = NULL;
    if (s->next_where != AUTHCERT_NEXT_KEY_SEALED)
        FAIL(AUTHCERT_E_NOTFOUND, "%s: the store holds no sealed next key (%s)", s->dir,
             authcert_next_key_where_name(s->next_where));
    if (s->next_staged != NULL) {
        char *text = NULL;
        size_t n = 0;
        GUARD(authcert_next_key_to_pem(s->next_staged, &text, &n));
        rc = authcert_next_key_from_pem(text, n, out);
        OPENSSL_free(text);
        goto out;
    }
    if (store_next_key_path(s, path, sizeof path, s->next_hash) != 0)
        FAIL(AUTHCERT_E_USAGE, "%s: path too long", s->dir);
    rc = authcert_entry_trusted(path, s->owner, false);
    if (rc == AUTHCERT_OK)
        rc = authcert_read_file(path, AUTHCERT_NEXT_KEY_MAX, &pem, &len);
    if (rc == AUTHCERT_E_NOTFOUND)
        FAIL(AUTHCERT_E_CORRUPT, "%s: the sealed next key %s is missing", s->dir, path);
    GUARD(rc);
    GUARD(authcert_next_key_from_pem((const char *)pem, len, out));
    if (strcmp(authcert_next_key_hash(*out), s->next_hash) != 0) {
        authcert_next_key_free(*out);
        *out = NULL;
        FAIL(AUTHCERT_E_CORRUPT, "%s: holds another key than the commitment", path);
    }
    rc = AUTHCERT_OK;
out:
    free(pem);
    return rc;
}

authcert_status store_next_key_write(authcert_store *s, bool *created)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char path[4096], keys[4096];
    char *pem = NULL;
    size_t len = 0;
    struct stat st;

    *created = false;
    if (s->next_staged == NULL)
        return AUTHCERT_OK;
    if (store_path_in(s, keys, sizeof keys, "keys") != 0
        || store_next_key_path(s, path, sizeof path, authcert_next_key_hash(s->next_staged)) != 0)
        FAIL(AUTHCERT_E_USAGE, "%s: path too long", s->dir);
    if (mkdir(keys, 0700) != 0 && errno != EEXIST)
        FAIL(AUTHCERT_E_IO, "%s: %s", keys, strerror(errno));
    GUARD(authcert_next_key_to_pem(s->next_staged, &pem, &len));
    /* Named by its commitment; a file already there (an interrupted commit,
     * or a re-import) is replaced by one that answers the same commitment. */
    *created = stat(path, &st) != 0;
    GUARD(authcert_write_atomic(path, pem, len, 0600));
    rc = AUTHCERT_OK;
out:
    OPENSSL_free(pem);
    return rc;
}

void store_next_key_unwrite(const authcert_store *s)
{
    char path[4096];

    if (s->next_staged != NULL
        && store_next_key_path(s, path, sizeof path, authcert_next_key_hash(s->next_staged)) == 0)
        (void)unlink(path);
}

void store_next_key_sweep(const authcert_store *s)
{
    char keys[4096], path[4096 + 300];
    DIR *d;
    struct dirent *de;

    if (store_path_in(s, keys, sizeof keys, "keys") != 0 || (d = opendir(keys)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        if (len != 5 + AUTHCERT_SPKI_HASH_LEN + 4 || strncmp(n, "next-", 5) != 0
            || strcmp(n + len - 4, ".pem") != 0)
            continue;
        if (s->next_where == AUTHCERT_NEXT_KEY_SEALED
            && strncmp(n + 5, s->next_hash, AUTHCERT_SPKI_HASH_LEN) == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", keys, n);
        (void)unlink(path);
    }
    closedir(d);
}
