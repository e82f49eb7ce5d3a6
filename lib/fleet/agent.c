/*
 * The agent's trust: the certificate it holds, its replay cache, the
 * verification of pushed and checked-in commands, and the key update.
 *
 * Two locks: `lock` guards the certificate pointer and the file identity
 * and is held only to copy or swap them; `write_lock` serialises the slow
 * changes (key update, reload) so that two of them never interleave their
 * file write and their swap.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/rand.h>

#include "authcert/agent.h"
#include "authcert/handoff.h"
#include "authcert/base64url.h"
#include "authcert/cert_policy.h"
#include "authcert/fsutil.h"
#include "authcert/jws.h"
#include "authcert/replay.h"
#include "internal.h"
#include "jws/verifier.h"

typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    bool known;
} file_id;

struct authcert_agent_trust {
    pthread_mutex_t lock;
    pthread_mutex_t write_lock;
    authcert_cert *cert;           /* guarded by lock */
    /* Prepared for cert on its first token; dropped when cert changes. */
    authcert_jws_verifier *ver;    /* guarded by lock */
    file_id loaded;                /* guarded by lock */
    char *path;                    /* NULL: memory only */
    char *issuer;
    int64_t max_lifetime;
    int64_t leeway;
    bool refuse_broadcast;
    authcert_replay_cache *replay;
};

int authcert_agent_verdict_http(authcert_agent_verdict v)
{
    switch (v) {
    case AUTHCERT_AGENT_ACCEPTED: return 200;
    case AUTHCERT_AGENT_UNAUTHENTICATED: return 401;
    case AUTHCERT_AGENT_FORBIDDEN: return 403;
    case AUTHCERT_AGENT_UNAVAILABLE: return 503;
    }
    return 500;
}

const char *authcert_agent_verdict_name(authcert_agent_verdict v)
{
    switch (v) {
    case AUTHCERT_AGENT_ACCEPTED: return "accepted";
    case AUTHCERT_AGENT_UNAUTHENTICATED: return "unauthenticated";
    case AUTHCERT_AGENT_FORBIDDEN: return "forbidden";
    case AUTHCERT_AGENT_UNAVAILABLE: return "unavailable";
    }
    return "?";
}

static void stat_id(const struct stat *st, file_id *id)
{
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime = st->st_mtim;
    id->known = true;
}

static bool same_id(const file_id *a, const file_id *b)
{
    return a->known && b->known && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/*
 * Read and parse the file, with the identity of what was read: fstat on the
 * descriptor read from, so a rename between stat and read cannot pair one
 * file's identity with another's content.
 */
static authcert_status load_file(const char *path, authcert_cert **out, file_id *id)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    uint8_t *der = NULL;
    size_t len = 0;
    struct stat st;
    FILE *f = NULL;

    *out = NULL;
    memset(id, 0, sizeof *id);
    f = fopen(path, "rbe");
    if (f == NULL) {
        if (errno == ENOENT)
            FAIL(AUTHCERT_E_NOTFOUND, "%s: no agent certificate file", path);
        FAIL(AUTHCERT_E_IO, "%s: %s", path, strerror(errno));
    }
    if (fstat(fileno(f), &st) != 0)
        FAIL(AUTHCERT_E_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        FAIL(AUTHCERT_E_CORRUPT, "%s: not a regular file", path);
    if ((size_t)st.st_size > AUTHCERT_AGENT_CERT_MAX)
        FAIL(AUTHCERT_E_CORRUPT, "%s: %lld bytes is too large for a certificate", path,
             (long long)st.st_size);
    GUARD_ALLOC(der = malloc((size_t)st.st_size + 1));
    len = fread(der, 1, (size_t)st.st_size + 1, f);
    if (ferror(f))
        FAIL(AUTHCERT_E_IO, "%s: read failed", path);
    if (len != (size_t)st.st_size)
        FAIL(AUTHCERT_E_IO, "%s: changed while being read", path);
    rc = authcert_cert_from_der(der, len, out);
    if (rc != AUTHCERT_OK) {
        char inner[256];
        snprintf(inner, sizeof inner, "%s", authcert_detail());
        FAIL(rc, "%s: not an agent certificate file (DER): %s", path, inner);
    }
    stat_id(&st, id);
    rc = AUTHCERT_OK;
out:
    if (f != NULL)
        fclose(f);
    free(der);
    return rc;
}

/* A trust without its certificate; NULL on failure, with *st saying why. */
static authcert_agent_trust *trust_alloc(const authcert_agent_trust_opts *opts,
                                         authcert_status *st)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_agent_trust *t = NULL, *ret = NULL;
    authcert_agent_trust_opts none = {0};

    if (opts == NULL)
        opts = &none;
    if (opts->leeway < 0 || opts->leeway > AUTHCERT_JWS_MAX_LEEWAY)
        FAIL(AUTHCERT_E_USAGE, "agent: leeway %lld s not in 0..%d", (long long)opts->leeway,
             AUTHCERT_JWS_MAX_LEEWAY);
    GUARD_ALLOC(t = calloc(1, sizeof *t));
    t->leeway = opts->leeway;
    t->max_lifetime = opts->max_lifetime;
    t->refuse_broadcast = opts->refuse_broadcast;
    if (opts->issuer != NULL)
        GUARD_ALLOC(t->issuer = strdup(opts->issuer));
    GUARD(authcert_replay_cache_new(opts->replay_capacity, opts->leeway, &t->replay));
    if (opts->replay_file != NULL)
        GUARD(authcert_replay_cache_persist(t->replay, opts->replay_file, (int64_t)time(NULL)));
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        FAIL(AUTHCERT_E_INTERNAL, "agent: mutex");
    if (pthread_mutex_init(&t->write_lock, NULL) != 0) {
        pthread_mutex_destroy(&t->lock);
        FAIL(AUTHCERT_E_INTERNAL, "agent: mutex");
    }
    ret = t;
    t = NULL;
    rc = AUTHCERT_OK;
out:
    if (t != NULL) {
        authcert_replay_cache_free(t->replay);
        free(t->issuer);
        free(t);
    }
    *st = rc;
    return ret;
}

authcert_status authcert_agent_trust_open(const char *cert_path,
                                          const authcert_agent_trust_opts *opts,
                                          authcert_agent_trust **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_agent_trust *t = NULL;
    authcert_cert *c = NULL;
    file_id id;

    *out = NULL;
    if (cert_path == NULL || cert_path[0] == '\0')
        FAIL(AUTHCERT_E_USAGE, "agent: no certificate file named");
    if ((t = trust_alloc(opts, &rc)) == NULL)
        goto out;
    GUARD_ALLOC(t->path = strdup(cert_path));
    GUARD(load_file(cert_path, &c, &id));
    t->cert = c;
    c = NULL;
    t->loaded = id;
    *out = t;
    t = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_cert_free(c);
    authcert_agent_trust_free(t);
    return rc;
}

authcert_status authcert_agent_trust_new(authcert_cert *cert, const authcert_agent_trust_opts *opts,
                                         authcert_agent_trust **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;

    *out = NULL;
    if (cert == NULL)
        FAIL(AUTHCERT_E_USAGE, "agent: no certificate");
    if ((*out = trust_alloc(opts, &rc)) == NULL)
        goto out;
    (*out)->cert = authcert_cert_ref(cert);
    rc = AUTHCERT_OK;
out:
    return rc;
}

void authcert_agent_trust_free(authcert_agent_trust *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->write_lock);
    authcert_jws_verifier_free(t->ver);
    authcert_cert_free(t->cert);
    authcert_replay_cache_free(t->replay);
    free(t->path);
    free(t->issuer);
    free(t);
}

authcert_cert *authcert_agent_trust_cert(authcert_agent_trust *t)
{
    pthread_mutex_lock(&t->lock);
    authcert_cert *c = authcert_cert_ref(t->cert);
    pthread_mutex_unlock(&t->lock);
    return c;
}

void authcert_agent_trust_thumbprint(authcert_agent_trust *t, char out[65])
{
    pthread_mutex_lock(&t->lock);
    snprintf(out, 65, "%s", authcert_cert_thumbprint(t->cert));
    pthread_mutex_unlock(&t->lock);
}

/* Swap in c (taking the caller's reference) with the identity of its file. */
static void swap_cert(authcert_agent_trust *t, authcert_cert *c, const file_id *id)
{
    pthread_mutex_lock(&t->lock);
    authcert_cert *old = t->cert;
    authcert_jws_verifier *old_ver = t->ver;
    t->cert = c;
    t->ver = NULL;
    if (id != NULL)
        t->loaded = *id;
    pthread_mutex_unlock(&t->lock);
    authcert_jws_verifier_free(old_ver);
    authcert_cert_free(old);
}

authcert_status authcert_agent_trust_reload(authcert_agent_trust *t, bool *changed)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert *c = NULL;
    struct stat st;
    file_id now_id = {0}, loaded_id, read_id;
    char before[65];

    if (changed != NULL)
        *changed = false;
    if (t->path == NULL)
        return AUTHCERT_OK;
    pthread_mutex_lock(&t->write_lock);
    if (stat(t->path, &st) != 0) {
        if (errno == ENOENT)
            FAIL(AUTHCERT_E_NOTFOUND, "%s: no agent certificate file (still trusting %s)",
                 t->path, "the one loaded");
        FAIL(AUTHCERT_E_IO, "%s: %s", t->path, strerror(errno));
    }
    stat_id(&st, &now_id);
    pthread_mutex_lock(&t->lock);
    loaded_id = t->loaded;
    pthread_mutex_unlock(&t->lock);
    if (same_id(&now_id, &loaded_id)) {
        rc = AUTHCERT_OK;
        goto out;
    }
    GUARD(load_file(t->path, &c, &read_id));
    authcert_agent_trust_thumbprint(t, before);
    if (changed != NULL)
        *changed = strcmp(before, authcert_cert_thumbprint(c)) != 0;
    swap_cert(t, c, &read_id);
    c = NULL;
    rc = AUTHCERT_OK;
out:
    pthread_mutex_unlock(&t->write_lock);
    authcert_cert_free(c);
    return rc;
}

/* ---- verification -------------------------------------------------------- */

/*
 * Trusts made from one certificate object (authcert_agent_trust_new with the
 * same cert: a process simulating many agents) share its verifier: the last
 * one made is kept here with its reference, and a reference to its
 * certificate, so the pointer compared cannot be a freed and reused one.
 */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static authcert_jws_verifier *last_ver;

static authcert_jws_verifier *shared_verifier(authcert_cert *cert)
{
    authcert_jws_verifier *v = NULL, *old = NULL;

    pthread_mutex_lock(&last_lock);
    if (last_ver != NULL && authcert_jws_verifier_cert(last_ver) == cert) {
        v = authcert_jws_verifier_ref(last_ver);
    } else if (authcert_jws_verifier_new(cert, &v) == AUTHCERT_OK) {
        old = last_ver;
        last_ver = authcert_jws_verifier_ref(v);
    } else {
        v = NULL;
    }
    pthread_mutex_unlock(&last_lock);
    authcert_jws_verifier_free(old);
    return v;
}

authcert_status authcert_agent_verify(authcert_agent_trust *t, const char *agent_id,
                                      const char *token, size_t len, int64_t now,
                                      json_t **claims, authcert_agent_verdict *verdict)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert *c = NULL;
    authcert_jws_verifier *v = NULL;
    char *issuer = NULL;
    bool nomem;

    *claims = NULL;
    *verdict = AUTHCERT_AGENT_UNAVAILABLE;
    if (agent_id == NULL || !authcert_agent_id_valid(agent_id))
        FAIL(AUTHCERT_E_USAGE, "agent: invalid agent id");
    if (token == NULL || len == 0) {
        *verdict = AUTHCERT_AGENT_UNAUTHENTICATED;
        FAIL(AUTHCERT_E_CORRUPT, "jws: empty token");
    }
    /*
     * The verifier for the current certificate, prepared on the first token
     * (a trust that never verifies costs nothing): its context is copied per
     * token rather than set up again (lib/jws/verifier.h).
     */
    pthread_mutex_lock(&t->lock);
    if (t->ver == NULL)
        t->ver = shared_verifier(t->cert); /* NULL: the plain path reports what is wrong */
    v = authcert_jws_verifier_ref(t->ver);
    if (v == NULL)
        c = authcert_cert_ref(t->cert);
    /* The issuer may be set while we verify (authcert_agent_trust_set_issuer). */
    issuer = t->issuer != NULL ? strdup(t->issuer) : NULL;
    nomem = t->issuer != NULL && issuer == NULL;
    pthread_mutex_unlock(&t->lock);
    if (nomem)
        FAIL(AUTHCERT_E_NOMEM, "out of memory");
    authcert_jws_expect ex = {
        .audience = agent_id,
        .allow_broadcast = !t->refuse_broadcast,
        .issuer = issuer,
        .now = now,
        .leeway = t->leeway,
        .max_lifetime = t->max_lifetime,
        .replay = t->replay,
    };
    authcert_jws_refusal why;
    rc = v != NULL ? authcert_jws_verifier_verify_why(v, token, len, &ex, claims, &why)
                   : authcert_jws_verify_why(c, token, len, &ex, claims, &why);
    switch (why) {
    case AUTHCERT_JWS_ACCEPTED:
        *verdict = AUTHCERT_AGENT_ACCEPTED;
        break;
    case AUTHCERT_JWS_UNPROVEN: /* anyone may have sent it */
        *verdict = rc == AUTHCERT_E_AUTH || rc == AUTHCERT_E_CORRUPT
                       ? AUTHCERT_AGENT_UNAUTHENTICATED
                       : AUTHCERT_AGENT_UNAVAILABLE;
        break;
    case AUTHCERT_JWS_REFUSED:  /* our server signed it, but not for here or now */
        /* ...unless what it signed is malformed: that is 401 (protocol.md). */
        *verdict = rc == AUTHCERT_E_CORRUPT ? AUTHCERT_AGENT_UNAUTHENTICATED
                                            : AUTHCERT_AGENT_FORBIDDEN;
        break;
    case AUTHCERT_JWS_REPLAYED:
        *verdict = AUTHCERT_AGENT_FORBIDDEN;
        break;
    case AUTHCERT_JWS_NO_ROOM:
        *verdict = AUTHCERT_AGENT_UNAVAILABLE;
        break;
    }
out:
    free(issuer);
    authcert_jws_verifier_free(v);
    authcert_cert_free(c);
    return rc;
}

authcert_status authcert_agent_trust_set_issuer(authcert_agent_trust *t, const char *issuer)
{
    char *copy = issuer != NULL ? strdup(issuer) : NULL;

    if (issuer != NULL && copy == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    pthread_mutex_lock(&t->lock);
    free(t->issuer);
    t->issuer = copy;
    pthread_mutex_unlock(&t->lock);
    return AUTHCERT_OK;
}

/* ---- key update ---------------------------------------------------------- */

authcert_status authcert_agent_apply_update_key(authcert_agent_trust *t, const json_t *claims,
                                                char new_thumbprint[65])
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert *c = NULL, *trusted = NULL;
    authcert_cert_policy policy = {0};
    uint8_t *der = NULL;
    size_t derlen = 0;
    bool locked = false;
    file_id id = {0};
    struct stat st;
    char current[65];

    const json_t *cmd = json_object_get(claims, "cmd");
    if (!json_is_string(cmd) || strcmp(json_string_value(cmd), "update-key") != 0)
        FAIL(AUTHCERT_E_CORRUPT, "update-key: the command is not update-key");
    const json_t *args = json_object_get(claims, "args");
    if (!json_is_object(args))
        FAIL(AUTHCERT_E_CORRUPT, "update-key: no args object");
    const json_t *jcert = json_object_get(args, "certificate");
    const json_t *jthumb = json_object_get(args, "thumbprint");
    if (!json_is_string(jcert) || !json_is_string(jthumb))
        FAIL(AUTHCERT_E_CORRUPT, "update-key: args.certificate and args.thumbprint must be strings");
    if (!authcert_thumbprint_valid(json_string_value(jthumb)))
        FAIL(AUTHCERT_E_CORRUPT, "update-key: args.thumbprint is not 64 lowercase hex characters");
    if (json_string_length(jcert) > 4 * AUTHCERT_AGENT_CERT_MAX / 3 + 4)
        FAIL(AUTHCERT_E_CORRUPT, "update-key: certificate too large");
    rc = authcert_b64url_decode(json_string_value(jcert), json_string_length(jcert), &der, &derlen);
    if (rc != AUTHCERT_OK)
        FAIL(AUTHCERT_E_CORRUPT, "update-key: args.certificate is not base64url");
    rc = authcert_cert_from_der(der, derlen, &c);
    if (rc != AUTHCERT_OK) {
        char inner[256];
        snprintf(inner, sizeof inner, "%s", authcert_detail());
        FAIL(AUTHCERT_E_CORRUPT, "update-key: args.certificate: %s", inner);
    }
    if (strcmp(authcert_cert_thumbprint(c), json_string_value(jthumb)) != 0)
        FAIL(AUTHCERT_E_AUTH, "update-key: the certificate's thumbprint is %s, not %s",
             authcert_cert_thumbprint(c), json_string_value(jthumb));

    pthread_mutex_lock(&t->write_lock);
    locked = true;
    authcert_agent_trust_thumbprint(t, current);
    if (strcmp(current, authcert_cert_thumbprint(c)) != 0) {
        /* What becomes current must pass the policy, against the key we trust. */
        trusted = authcert_agent_trust_cert(t);
        policy.trusted = trusted;
        rc = authcert_cert_check_policy(c, &policy, NULL);
        if (rc != AUTHCERT_OK)
            FAIL(rc, "update-key: %s", authcert_detail());
        if (t->path != NULL) {
            GUARD(authcert_write_atomic(t->path, der, derlen, 0644));
            /* The identity of what we wrote, so that reload does not read it back. */
            if (stat(t->path, &st) == 0)
                stat_id(&st, &id);
        }
        swap_cert(t, c, t->path != NULL ? &id : NULL);
        c = NULL;
    }
    if (new_thumbprint != NULL)
        authcert_agent_trust_thumbprint(t, new_thumbprint);
    rc = AUTHCERT_OK;
out:
    if (locked)
        pthread_mutex_unlock(&t->write_lock);
    authcert_cert_free(trusted);
    authcert_cert_free(c);
    free(der);
    return rc;
}

authcert_status authcert_agent_apply_handoff(authcert_agent_trust *t, const json_t *chain,
                                             const char *want_last, char new_thumbprint[65])
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert *held = NULL, *last = NULL;
    const uint8_t *der;
    size_t derlen = 0;
    bool locked = false;
    file_id id = {0};
    struct stat st;

    pthread_mutex_lock(&t->write_lock);
    locked = true;
    held = authcert_agent_trust_cert(t);
    GUARD(authcert_handoff_walk(held, chain, want_last, 0, &last));
    der = authcert_cert_der(last, &derlen);
    if (t->path != NULL) {
        GUARD(authcert_write_atomic(t->path, der, derlen, 0644));
        if (stat(t->path, &st) == 0)
            stat_id(&st, &id);
    }
    swap_cert(t, last, t->path != NULL ? &id : NULL);
    last = NULL;
    if (new_thumbprint != NULL)
        authcert_agent_trust_thumbprint(t, new_thumbprint);
    rc = AUTHCERT_OK;
out:
    if (locked)
        pthread_mutex_unlock(&t->write_lock);
    authcert_cert_free(held);
    authcert_cert_free(last);
    return rc;
}

/* ---- agent ids ----------------------------------------------------------- */

bool authcert_agent_id_valid(const char *id)
{
    size_t n = 0;
    if (id == NULL)
        return false;
    for (; id[n] != '\0'; n++)
        if (n >= 128 || id[n] < 0x21 || id[n] > 0x7e)
            return false;
    return n > 0 && strcmp(id, AUTHCERT_JWS_BROADCAST) != 0;
}

authcert_status authcert_agent_id_generate(char out[37])
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    uint8_t b[16];

    GUARD_OSSL(RAND_bytes(b, sizeof b), "agent id: random");
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 (RFC 4122) */
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    rc = AUTHCERT_OK;
out:
    return rc;
}
