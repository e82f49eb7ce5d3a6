/*
 * Reading a backup: every check before anything is handed back.
 *
 * Order matters. Member names and encryption are checked from the central
 * directory before a byte is decrypted; then the manifest; then each PKCS#12
 * against the manifest's hash and thumbprint. A half-verified backup is
 * never returned.
 *
 * Wrong password or damage? WinZip AES has a 16-bit password verifier (a
 * wrong password gets past it once in 65536) and an HMAC over the
 * ciphertext. libzip reports the verifier as ZIP_ER_WRONGPASSWD at open and
 * the HMAC as ZIP_ER_CRC when the member is read to its end; a wrong key that
 * slips past the verifier decrypts to garbage, which also fails inflate.
 * Neither can tell a wrong password from a damaged member. So: when the
 * manifest member (read first) fails to decrypt and authenticate, we say
 * "wrong password" (AUTHCERT_E_AUTH) — by far the common cause; once the
 * manifest has authenticated, the password is right and any later failure
 * is damage (AUTHCERT_E_CORRUPT).
 *
 * Each member is read by backup_zip_read_member (backup_zip.c), which also
 * gets libzip 1.7 to authenticate what it alone would not: compressed
 * members, and the WinZip AE-2 members 7-Zip writes.
 *
 * Costs are capped before they are paid: the end of the central directory
 * (backup_zip.c) before zip_open, and the key derivations of all PKCS#12
 * members against one budget for the whole backup (pkcs12_import_budget).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zip.h>

#include "authcert/authcert.h"
#include "internal.h"
#include "store/backup_internal.h"
#include "store/pkcs12_internal.h"

typedef struct mentry {
    char thumbprint[AUTHCERT_THUMBPRINT_LEN + 1];
    authcert_state state;
    bool exportable;
    time_t added, retired, not_before, not_after;
    authcert_key_type type;
    unsigned char sha256[32];
    const backup_member *m;
    char *handoff; /* a copy: the manifest's JSON is freed before it is used */
} mentry;

static void mentries_free(mentry *es, size_t n)
{
    for (size_t i = 0; es != NULL && i < n; i++)
        free(es[i].handoff);
    free(es);
}

/* name with anything unprintable as \xNN, for a detail line. */
static void escape_name(const char *name, char *out, size_t size)
{
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)name; *p && o + 5 < size; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", *p);
    }
    if (*name != '\0' && o + 5 >= size && o + 4 < size)
        o += (size_t)snprintf(out + o, size - o, "...");
    out[o] = '\0';
}

static bool is_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/*
 * "manifest.json", "server-secret.bin", "next-key.pem", "certs/<64 lowercase hex>.pfx", or
 * the folder "certs/" itself, nothing else. Being
 * this narrow makes "../x", "/abs", "certs/../../x", backslashes and
 * directories all fail the same way.
 */
static bool classify_name(const char *name, backup_member *m)
{
    static const char pre[] = "certs/", suf[] = ".pfx";
    size_t len = strlen(name);

    if (strcmp(name, BACKUP_MANIFEST_NAME) == 0) {
        m->manifest = true;
        return true;
    }
    if (strcmp(name, BACKUP_SECRET_NAME) == 0) {
        m->secret = true;
        return true;
    }
    if (strcmp(name, BACKUP_NEXT_KEY_NAME) == 0) {
        m->next_key = true;
        return true;
    }
    if (strcmp(name, BACKUP_CERTS_DIR) == 0) {
        m->folder = true; /* as 7-Zip adds it; allowed only empty (check_members) */
        return true;
    }
    if (len != strlen(pre) + AUTHCERT_THUMBPRINT_LEN + strlen(suf) ||
        strncmp(name, pre, strlen(pre)) != 0 ||
        strcmp(name + len - strlen(suf), suf) != 0 ||
        !is_lower_hex(name + strlen(pre), AUTHCERT_THUMBPRINT_LEN))
        return false;
    memcpy(m->thumbprint, name + strlen(pre), AUTHCERT_THUMBPRINT_LEN);
    m->thumbprint[AUTHCERT_THUMBPRINT_LEN] = '\0';
    return true;
}

/* Every member's name, encryption and size, from the central directory. */
static authcert_status check_members(zip_t *za, backup_member **out, size_t *n,
                                     zip_uint64_t *manifest_at)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    zip_int64_t count = zip_get_num_entries(za, 0);
    backup_member *ms = NULL;
    zip_uint64_t total = 0;
    bool have_manifest = false;
    char esc[160];

    if (count <= 0)
        FAIL(AUTHCERT_E_CORRUPT, "the archive has no members");
    if (count > BACKUP_MAX_MEMBERS)
        FAIL(AUTHCERT_E_CORRUPT, "the archive has %lld members (at most %d)",
             (long long)count, BACKUP_MAX_MEMBERS);
    GUARD_ALLOC(ms = calloc((size_t)count, sizeof *ms));
    for (zip_uint64_t i = 0; i < (zip_uint64_t)count; i++) {
        /* The bytes as stored and as libzip decodes them must agree. */
        const char *raw = zip_get_name(za, i, ZIP_FL_ENC_RAW);
        const char *dec = zip_get_name(za, i, 0);
        backup_member *m = &ms[i];
        zip_stat_t st;

        if (raw == NULL || dec == NULL)
            FAIL(AUTHCERT_E_CORRUPT, "member %llu has no name", (unsigned long long)i);
        escape_name(raw, esc, sizeof esc);
        if (strcmp(raw, dec) != 0 || !classify_name(raw, m))
            FAIL(AUTHCERT_E_CORRUPT, "unexpected member %s", esc);
        for (zip_uint64_t j = 0; j < i; j++)
            if (ms[j].manifest == m->manifest && ms[j].secret == m->secret &&
                ms[j].next_key == m->next_key &&
                ms[j].folder == m->folder && strcmp(ms[j].thumbprint, m->thumbprint) == 0)
                FAIL(AUTHCERT_E_CORRUPT, "unexpected member %s (twice)", esc);
        zip_stat_init(&st);
        if (zip_stat_index(za, i, 0, &st) != 0)
            FAIL(AUTHCERT_E_CORRUPT, "member %s: %s", esc, zip_strerror(za));
        m->index = i;
        if (m->folder) {
            /* Nothing in it to swap: encrypted or not, it is never read. */
            if (!(st.valid & ZIP_STAT_SIZE) || st.size != 0)
                FAIL(AUTHCERT_E_CORRUPT, "unexpected member %s", esc);
            continue;
        }
        /* An unencrypted member could be swapped in by anyone. */
        if (!(st.valid & ZIP_STAT_ENCRYPTION_METHOD) ||
            st.encryption_method != ZIP_EM_AES_256)
            FAIL(AUTHCERT_E_CORRUPT, "member %s is not encrypted with AES-256", esc);
        if (!(st.valid & ZIP_STAT_SIZE) ||
            st.size > (m->manifest ? BACKUP_MAX_MANIFEST_SIZE : m->secret ? 32
                       : m->next_key ? AUTHCERT_NEXT_KEY_MAX : BACKUP_MAX_PFX_SIZE))
            FAIL(AUTHCERT_E_CORRUPT, "member %s is too large", esc);
        total += st.size;
        if (total > AUTHCERT_BACKUP_MAX_SIZE)
            FAIL(AUTHCERT_E_CORRUPT, "the archive's members are too large together");
        m->size = st.size;
        m->compressed = (st.valid & ZIP_STAT_COMP_METHOD) && st.comp_method != ZIP_CM_STORE;
        m->crc_zero = (st.valid & ZIP_STAT_CRC) && st.crc == 0 && st.size > 0;
        if (m->manifest) {
            have_manifest = true;
            *manifest_at = i;
        }
    }
    if (!have_manifest)
        FAIL(AUTHCERT_E_CORRUPT, "the archive has no " BACKUP_MANIFEST_NAME);
    *out = ms;
    *n = (size_t)count;
    ms = NULL;
    rc = AUTHCERT_OK;
out:
    free(ms);
    return rc;
}

/* ---- the manifest -------------------------------------------------------- */

/* Only the keys we know: a later format bumps "format" instead. */
static authcert_status only_keys(json_t *obj, const char *const *keys, const char *where)
{
    const char *k;
    json_t *v;
    char esc[80];

    json_object_foreach(obj, k, v) {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(k, keys[i]) == 0;
        if (!known) {
            escape_name(k, esc, sizeof esc);
            return authcert_fail(AUTHCERT_E_CORRUPT, "manifest: unexpected key %s in %s",
                                 esc, where);
        }
    }
    return AUTHCERT_OK;
}

static authcert_status get_str(json_t *obj, const char *key, const char *where,
                               const char **out)
{
    json_t *v = json_object_get(obj, key);

    *out = ""; /* never NULL, even for a caller that goes on after a failure */
    if (!json_is_string(v))
        return authcert_fail(AUTHCERT_E_CORRUPT, "manifest: %s: %s is missing or not a string",
                             where, key);
    *out = json_string_value(v);
    return AUTHCERT_OK;
}

static authcert_status get_time(json_t *obj, const char *key, const char *where,
                                bool nullable, time_t *out)
{
    const char *s = NULL;

    *out = 0;
    if (nullable && json_is_null(json_object_get(obj, key)))
        return AUTHCERT_OK;
    if (get_str(obj, key, where, &s) != AUTHCERT_OK || !backup_parse_iso_time(s, out))
        return authcert_fail(AUTHCERT_E_CORRUPT,
                             "manifest: %s: %s is not a time like 2026-11-25T12:00:00Z",
                             where, key);
    return AUTHCERT_OK;
}

static bool parse_state(const char *s, authcert_state *out)
{
    static const authcert_state all[] = {AUTHCERT_STATE_CURRENT, AUTHCERT_STATE_EXPIRED,
                                         AUTHCERT_STATE_REVOKED};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, authcert_state_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

/* One digit of a string is_lower_hex has accepted. */
static unsigned hexval(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

static const char *const entry_keys[] = {
    "thumbprint", "state", "exportable", "added", "retired", "not_before",
    "not_after", "key_type", "member", "sha256", "handoff", NULL};

/* One "certificates" element, matched to its member. */
static authcert_status parse_entry(json_t *o, size_t i, backup_member *ms, size_t nm,
                                   mentry *e)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *thumb = NULL, *state = NULL, *ktype = NULL, *mname = NULL, *hash = NULL;
    char where[32], want[80];
    json_t *exp;

    snprintf(where, sizeof where, "certificate %zu", i + 1);
    if (!json_is_object(o))
        FAIL(AUTHCERT_E_CORRUPT, "manifest: %s is not an object", where);
    GUARD(only_keys(o, entry_keys, where));
    GUARD(get_str(o, "thumbprint", where, &thumb));
    if (strlen(thumb) != AUTHCERT_THUMBPRINT_LEN || !is_lower_hex(thumb, strlen(thumb)))
        FAIL(AUTHCERT_E_CORRUPT, "manifest: %s: thumbprint is not 64 lowercase hex", where);
    memcpy(e->thumbprint, thumb, AUTHCERT_THUMBPRINT_LEN + 1);
    GUARD(get_str(o, "state", where, &state));
    if (!parse_state(state, &e->state))
        FAIL(AUTHCERT_E_CORRUPT, "manifest: %s: unknown state", where);
    exp = json_object_get(o, "exportable");
    if (!json_is_boolean(exp))
        FAIL(AUTHCERT_E_CORRUPT, "manifest: %s: exportable is not true or false", where);
    e->exportable = json_is_true(exp);
    GUARD(get_time(o, "added", where, false, &e->added));
    GUARD(get_time(o, "retired", where, true, &e->retired));
    GUARD(get_time(o, "not_before", where, false, &e->not_before));
    GUARD(get_time(o, "not_after", where, false, &e->not_after));
    GUARD(get_str(o, "key_type", where, &ktype));
    if ((e->type = authcert_key_type_parse(ktype)) == AUTHCERT_KEY_UNKNOWN)
        FAIL(AUTHCERT_E_CORRUPT, "manifest: %s: unknown key type", where);
    GUARD(get_str(o, "sha256", where, &hash));
    {
        json_t *h = json_object_get(o, "handoff");
        if (h != NULL && (!json_is_string(h) || json_string_length(h) == 0
                          || json_string_length(h) > 64 * 1024))
            FAIL(AUTHCERT_E_CORRUPT, "manifest: %s: malformed hand-off statement", where);
        if (h != NULL)
            GUARD_ALLOC(e->handoff = strdup(json_string_value(h)));
    }
    if (strlen(hash) != 64 || !is_lower_hex(hash, 64))
        FAIL(AUTHCERT_E_CORRUPT, "manifest: %s: sha256 is not 64 lowercase hex", where);
    for (size_t k = 0; k < 32; k++)
        e->sha256[k] = (unsigned char)(hexval(hash[2 * k]) << 4 | hexval(hash[2 * k + 1]));
    GUARD(get_str(o, "member", where, &mname));
    backup_member_name(e->thumbprint, want);
    if (strcmp(mname, want) != 0)
        FAIL(AUTHCERT_E_CORRUPT, "manifest: %s: member is not %s", where, want);
    for (size_t k = 0; k < nm && e->m == NULL; k++)
        if (!ms[k].manifest && strcmp(ms[k].thumbprint, e->thumbprint) == 0)
            e->m = &ms[k];
    if (e->m == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "manifest lists %s, which the archive does not hold", want);
    if (e->m->listed)
        FAIL(AUTHCERT_E_CORRUPT, "manifest lists %s twice", want);
    ms[e->m - ms].listed = true;
    rc = AUTHCERT_OK;
out:
    return rc;
}

static const char *const top_keys[] = {"format", "created", "generator", "certificates",
                                       "server_secret", "next_key", NULL};

/* What the manifest says of the successor key (pre-rotation). */
struct mnext {
    authcert_next_key_where where;
    char hash[65];
    char type[16];
    unsigned char sha256[32]; /* of the member, when sealed */
};

/* "next_key": listed with its member exactly when sealed. */
static authcert_status parse_next(json_t *root, backup_member *ms, size_t nm, struct mnext *nx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_t *j = json_object_get(root, "next_key");
    const backup_member *m = NULL;
    const char *hash, *where, *type, *mem = NULL, *sha = NULL;

    for (size_t k = 0; k < nm; k++)
        if (ms[k].next_key)
            m = &ms[k];
    nx->where = AUTHCERT_NEXT_KEY_NONE;
    if (j == NULL) {
        if (m != NULL)
            FAIL(AUTHCERT_E_CORRUPT, "unexpected member %s (not in the manifest)",
                 BACKUP_NEXT_KEY_NAME);
        rc = AUTHCERT_OK;
        goto out;
    }
    if (!json_is_object(j))
        FAIL(AUTHCERT_E_CORRUPT, "manifest: next_key is not an object");
    GUARD(get_str(j, "commitment", "next_key", &hash));
    GUARD(get_str(j, "where", "next_key", &where));
    GUARD(get_str(j, "type", "next_key", &type));
    if (strlen(hash) != 64 || !is_lower_hex(hash, 64) || strlen(type) >= sizeof nx->type)
        FAIL(AUTHCERT_E_CORRUPT, "manifest: next_key is malformed");
    if (strcmp(where, "sealed") == 0) {
        static const char *const keys[] = { "commitment", "where", "type", "member", "sha256", NULL };
        GUARD(only_keys(j, keys, "next_key"));
        GUARD(get_str(j, "member", "next_key", &mem));
        GUARD(get_str(j, "sha256", "next_key", &sha));
        if (m == NULL || strcmp(mem, BACKUP_NEXT_KEY_NAME) != 0 || strlen(sha) != 64
            || !is_lower_hex(sha, 64))
            FAIL(AUTHCERT_E_CORRUPT, "manifest: next_key and its member %s disagree",
                 BACKUP_NEXT_KEY_NAME);
        for (size_t i = 0; i < 32; i++)
            nx->sha256[i] = (unsigned char)(hexval(sha[2 * i]) << 4 | hexval(sha[2 * i + 1]));
        nx->where = AUTHCERT_NEXT_KEY_SEALED;
        ms[m - ms].listed = true;
    } else if (strcmp(where, "exported") == 0) {
        static const char *const keys[] = { "commitment", "where", "type", NULL };
        GUARD(only_keys(j, keys, "next_key"));
        if (m != NULL)
            FAIL(AUTHCERT_E_CORRUPT, "manifest: next_key exported, yet member %s is there",
                 BACKUP_NEXT_KEY_NAME);
        nx->where = AUTHCERT_NEXT_KEY_EXPORTED;
    } else {
        FAIL(AUTHCERT_E_CORRUPT, "manifest: next_key where is neither sealed nor exported");
    }
    snprintf(nx->hash, sizeof nx->hash, "%s", hash);
    snprintf(nx->type, sizeof nx->type, "%s", type);
    rc = AUTHCERT_OK;
out:
    return rc;
}

/* The manifest, strictly: *out has one element per listed certificate. */
static authcert_status parse_manifest(const uint8_t *text, size_t len, backup_member *ms,
                                      size_t nm, mentry **out, size_t *n,
                                      unsigned char secret_sha256[32], struct mnext *nx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *fmt, *certs;
    mentry *es = NULL;
    size_t ne = 0, currents = 0;
    const char *gen;
    time_t created;

    if (root == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "manifest: line %d: %s", jerr.line, jerr.text);
    if (!json_is_object(root))
        FAIL(AUTHCERT_E_CORRUPT, "manifest: not a JSON object");
    /* The version first: a newer format may differ in everything else. */
    fmt = json_object_get(root, "format");
    if (!json_is_integer(fmt))
        FAIL(AUTHCERT_E_CORRUPT, "manifest: format is missing or not a number");
    if (json_integer_value(fmt) != AUTHCERT_BACKUP_FORMAT)
        FAIL(AUTHCERT_E_CORRUPT, "unsupported backup format %lld",
             (long long)json_integer_value(fmt));
    GUARD(only_keys(root, top_keys, "the manifest"));
    GUARD(get_time(root, "created", "the manifest", false, &created));
    GUARD(get_str(root, "generator", "the manifest", &gen));
    certs = json_object_get(root, "certificates");
    if (!json_is_array(certs) || json_array_size(certs) == 0)
        FAIL(AUTHCERT_E_CORRUPT, "manifest: certificates is missing, empty or not a list");
    ne = json_array_size(certs);
    if (ne > BACKUP_MAX_MEMBERS)
        FAIL(AUTHCERT_E_CORRUPT, "manifest: too many certificates");
    GUARD_ALLOC(es = calloc(ne, sizeof *es));
    for (size_t i = 0; i < ne; i++) {
        GUARD(parse_entry(json_array_get(certs, i), i, ms, nm, &es[i]));
        if (es[i].state == AUTHCERT_STATE_CURRENT)
            currents++;
    }
    /* The server secret: listed with its hash exactly when its member is there. */
    {
        json_t *sec = json_object_get(root, "server_secret");
        const backup_member *sm = NULL;
        const char *hash = NULL, *mem = NULL;
        for (size_t k = 0; k < nm; k++)
            if (ms[k].secret)
                sm = &ms[k];
        if ((sec != NULL) != (sm != NULL))
            FAIL(AUTHCERT_E_CORRUPT, "manifest: server_secret and its member %s disagree",
                 BACKUP_SECRET_NAME);
        if (sec != NULL) {
            static const char *const sk[] = { "member", "sha256", NULL };
            if (!json_is_object(sec))
                FAIL(AUTHCERT_E_CORRUPT, "manifest: server_secret is not an object");
            GUARD(only_keys(sec, sk, "server_secret"));
            GUARD(get_str(sec, "member", "server_secret", &mem));
            GUARD(get_str(sec, "sha256", "server_secret", &hash));
            if (strcmp(mem, BACKUP_SECRET_NAME) != 0 || strlen(hash) != 64 ||
                !is_lower_hex(hash, 64))
                FAIL(AUTHCERT_E_CORRUPT, "manifest: server_secret is malformed");
            for (size_t i = 0; i < 32; i++)
                secret_sha256[i] = (unsigned char)(hexval(hash[2 * i]) << 4 | hexval(hash[2 * i + 1]));
            ms[sm - ms].listed = true;
        }
    }
    GUARD(parse_next(root, ms, nm, nx));
    for (size_t k = 0; k < nm; k++)
        if (!ms[k].manifest && !ms[k].folder && !ms[k].listed)
            FAIL(AUTHCERT_E_CORRUPT, "unexpected member %s (not in the manifest)",
                 ms[k].secret ? BACKUP_SECRET_NAME
                 : ms[k].next_key ? BACKUP_NEXT_KEY_NAME : ms[k].thumbprint);
    if (currents != 1)
        FAIL(AUTHCERT_E_CORRUPT, "manifest: %zu current certificates (must be exactly one)",
             currents);
    *out = es;
    *n = ne;
    es = NULL;
    rc = AUTHCERT_OK;
out:
    mentries_free(es, ne);
    json_decref(root);
    return rc;
}

/* ---- the members' contents ------------------------------------------------ */

/* The PKCS#12 of e: hash, import, and the certificate the manifest promised. */
static authcert_status load_entry(backup_reader *rd, const mentry *e, authcert_backup_entry *be)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    uint8_t *der = NULL;
    size_t len = 0;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char name[80], why[256];
    authcert_cert *cert = NULL;
    authcert_cert_info info;

    backup_member_name(e->thumbprint, name);
    GUARD(backup_zip_read_member(rd, e->m, name, &der, &len));
    GUARD_OSSL(EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL), "SHA-256");
    if (CRYPTO_memcmp(md, e->sha256, sizeof md) != 0)
        FAIL(AUTHCERT_E_CORRUPT, "member %s: SHA-256 does not match the manifest", name);
    rc = pkcs12_import_budget(der, len, rd->password, &rd->iter_left, &cert);
    if (rc != AUTHCERT_OK) {
        /* The archive opened with this password, so its PKCS#12 should too. */
        snprintf(why, sizeof why, "%s", authcert_detail());
        FAIL(AUTHCERT_E_CORRUPT, "member %s: %s", name,
             rc == AUTHCERT_E_AUTH ? "PKCS#12 does not open with the backup's password" : why);
    }
    if (strcmp(authcert_cert_thumbprint(cert), e->thumbprint) != 0)
        FAIL(AUTHCERT_E_CORRUPT, "member %s holds certificate %s, not the one its name says",
             name, authcert_cert_thumbprint(cert));
    authcert_cert_get_info(cert, &info);
    if (!authcert_cert_has_key(cert) || info.type != e->type ||
        info.not_before != e->not_before || info.not_after != e->not_after)
        FAIL(AUTHCERT_E_CORRUPT, "member %s: key type or dates differ from the manifest",
             name);
    memcpy(be->thumbprint, e->thumbprint, sizeof be->thumbprint);
    be->state = e->state;
    be->exportable = e->exportable;
    be->added = e->added;
    be->retired = e->retired;
    be->cert = cert;
    cert = NULL;
    if (e->handoff != NULL)
        GUARD_ALLOC(be->handoff = strdup(e->handoff));
    rc = AUTHCERT_OK;
out:
    authcert_cert_free(cert);
    OPENSSL_clear_free(der, len);
    return rc;
}

/* path: the file it came from, copied into the backup; NULL when from memory. */
static authcert_status read_archive(const uint8_t *data, size_t len, const char *password,
                                    const char *path, authcert_backup **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    zip_error_t zerr;
    zip_source_t *src = NULL;
    backup_reader rd = { .data = data, .len = len, .password = password,
                  .iter_left = AUTHCERT_PKCS12_MAX_TOTAL_ITER };
    backup_member *ms = NULL;
    mentry *es = NULL;
    size_t nm = 0, ne = 0, mlen = 0;
    zip_uint64_t mi = 0;
    uint8_t *mtext = NULL;
    authcert_backup *b = NULL;
    unsigned char secret_sha256[32] = { 0 };
    struct mnext nx = { .where = AUTHCERT_NEXT_KEY_NONE };

    zip_error_init(&zerr);
    if (password == NULL || *password == '\0')
        FAIL(AUTHCERT_E_USAGE, "a password is required");
    if (len == 0)
        FAIL(AUTHCERT_E_CORRUPT, "empty file: not a ZIP archive");
    if (len > AUTHCERT_BACKUP_MAX_SIZE)
        FAIL(AUTHCERT_E_CORRUPT, "larger than %u bytes: not a backup",
             AUTHCERT_BACKUP_MAX_SIZE);
    /* What the directory announces, before libzip reads (and allocates) it. */
    GUARD(backup_zip_check_end(data, len, &rd.dir));
    GUARD_ALLOC(src = zip_source_buffer_create(data, len, 0, &zerr));
    rd.za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (rd.za == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "not a ZIP archive or damaged: %s",
             zip_error_strerror(&zerr));
    src = NULL; /* rd.za owns it now */
    GUARD(check_members(rd.za, &ms, &nm, &mi));
    if (ms == NULL) /* check_members fails rather than return no members */
        FAIL(AUTHCERT_E_INTERNAL, "backup: no member list");
    rd.members = ms;
    rd.nmembers = nm;
    if (zip_set_default_password(rd.za, password) != 0)
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    GUARD(backup_zip_read_member(&rd, &ms[mi], BACKUP_MANIFEST_NAME, &mtext, &mlen));
    GUARD(parse_manifest(mtext, mlen, ms, nm, &es, &ne, secret_sha256, &nx));

    GUARD_ALLOC(b = calloc(1, sizeof *b));
    if (path != NULL)
        GUARD_ALLOC(b->path = strdup(path));
    GUARD_ALLOC(b->entries = calloc(ne, sizeof *b->entries));
    for (size_t i = 0; i < ne; i++) {
        GUARD(load_entry(&rd, &es[i], &b->entries[i]));
        b->count++;
    }
    for (size_t k = 0; k < nm; k++) {
        uint8_t *raw = NULL;
        size_t rlen = 0;
        unsigned char md[32];
        if (!ms[k].secret)
            continue;
        GUARD(backup_zip_read_member(&rd, &ms[k], BACKUP_SECRET_NAME, &raw, &rlen));
        if (rlen != 32 || EVP_Digest(raw, rlen, md, NULL, EVP_sha256(), NULL) != 1 ||
            CRYPTO_memcmp(md, secret_sha256, 32) != 0) {
            OPENSSL_clear_free(raw, rlen);
            FAIL(AUTHCERT_E_CORRUPT, "member %s: SHA-256 does not match the manifest",
                 BACKUP_SECRET_NAME);
        }
        memcpy(b->secret, raw, 32);
        b->has_secret = true;
        OPENSSL_clear_free(raw, rlen);
    }
    for (size_t k = 0; k < nm; k++) {
        uint8_t *raw = NULL;
        size_t rlen = 0;
        unsigned char md[32];
        if (!ms[k].next_key)
            continue;
        GUARD(backup_zip_read_member(&rd, &ms[k], BACKUP_NEXT_KEY_NAME, &raw, &rlen));
        rc = rlen > 0 && EVP_Digest(raw, rlen, md, NULL, EVP_sha256(), NULL) == 1
                     && CRYPTO_memcmp(md, nx.sha256, 32) == 0
                 ? authcert_next_key_from_pem((const char *)raw, rlen, &b->next)
                 : authcert_fail(AUTHCERT_E_CORRUPT, "member %s: SHA-256 does not match "
                                 "the manifest", BACKUP_NEXT_KEY_NAME);
        OPENSSL_clear_free(raw, rlen);
        GUARD(rc);
        if (strcmp(authcert_next_key_hash(b->next), nx.hash) != 0)
            FAIL(AUTHCERT_E_CORRUPT, "member %s: not the key of the manifest's commitment",
                 BACKUP_NEXT_KEY_NAME);
    }
    b->next_where = nx.where;
    memcpy(b->next_hash, nx.hash, sizeof b->next_hash);
    memcpy(b->next_type, nx.type, sizeof b->next_type);
    *out = b;
    b = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_backup_free(b);
    backup_zip_reader_fini(&rd);
    if (src != NULL)
        zip_source_free(src);
    OPENSSL_clear_free(mtext, mlen);
    mentries_free(es, ne);
    free(ms);
    zip_error_fini(&zerr);
    return rc;
}

authcert_status authcert_backup_read_mem(const uint8_t *data, size_t len,
                                         const char *password, authcert_backup **out)
{
    if (out == NULL || (data == NULL && len != 0))
        return authcert_fail(AUTHCERT_E_USAGE, "backup: no data or no output");
    *out = NULL;
    return read_archive(data, len, password, NULL, out);
}

authcert_status authcert_backup_read(const char *path, const char *password,
                                     authcert_backup **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char *file = NULL, why[400];
    uint8_t *data = NULL;
    size_t len = 0;

    if (out == NULL || path == NULL)
        FAIL(AUTHCERT_E_USAGE, "backup: no path or no output");
    *out = NULL;
    if (authcert_is_dir(path))
        GUARD(backup_newest_in_dir(path, &file));
    else
        GUARD_ALLOC(file = strdup(path));
    GUARD(authcert_read_file(file, AUTHCERT_BACKUP_MAX_SIZE, &data, &len));
    rc = read_archive(data, len, password, file, out);
    if (rc != AUTHCERT_OK) {
        /* Name the file: with a directory, the user did not name it. */
        snprintf(why, sizeof why, "%s", authcert_detail());
        FAIL(rc, "%s: %s", file, why);
    }
    rc = AUTHCERT_OK;
out:
    free(file);
    OPENSSL_clear_free(data, len);
    return rc;
}
