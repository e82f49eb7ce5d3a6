/*
 * authcertd's TLS (docs/authcertd.8, TLS): the certificate and key it
 * serves, re-read without a restart, and what libmicrohttpd's GnuTLS needs
 * of us for each connection.
 *
 * - The files are read and checked with the library (authcert/tls.h: the
 *   key file 0600 and ours, the key matches, the certificate is valid now),
 *   then given to GnuTLS through a certificate callback rather than once at
 *   start, so that a renewed certificate is served by the next handshake:
 *   SIGHUP, or a change of either file seen by the once-a-second look
 *   (tls_maybe_reload). A set that does not load is logged and the one in
 *   use stays. Sets are never freed while the daemon runs: a handshake in
 *   progress may hold the previous one, and renewals are rare.
 * - Only TLS 1.2 and 1.3 with forward-secret AEAD suites
 *   (AUTHCERT_TLS_GNUTLS_PRIORITIES).
 * - Session resumption: libmicrohttpd does not enable GnuTLS's session
 *   tickets, so each new connection gets them here, before its handshake
 *   (libmicrohttpd tells us of a connection right after GnuTLS set it up).
 *   An agent reconnecting every interval then resumes with one round trip
 *   and no signature, instead of a full handshake.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "authcert/tls.h"
#include "daemon.h"


struct tls_set {
    struct tls_set *older;
    gnutls_pcert_st pcert[16];
    unsigned npcert;
    gnutls_privkey_t key;
    char pin[AUTHCERT_PIN_LEN + 1];
    struct stat cert_st, key_st; /* what the files were when read */
};

/* The callback has no argument of ours: one TLS configuration a process. */
static _Atomic(struct tls_set *) current;
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static gnutls_datum_t ticket_key;
static atomic_ullong sessions_full, sessions_resumed;


static void set_free(struct tls_set *s)
{
    while (s != NULL) {
        struct tls_set *older = s->older;
        for (unsigned i = 0; i < s->npcert; i++)
            gnutls_pcert_deinit(&s->pcert[i]);
        if (s->key != NULL)
            gnutls_privkey_deinit(s->key);
        free(s);
        s = older;
    }
}

/* Read, check and convert the files; *out is a new set. */
static authcert_status load(const daemon_ctx *d, struct tls_set **out)
{
    authcert_tls_files f;
    struct tls_set *s = NULL;
    gnutls_datum_t cert, key;
    authcert_status rc;
    int r;

    *out = NULL;
    if ((rc = authcert_tls_files_load(d->cfg.tls_cert, d->cfg.tls_key, time(NULL), &f)) !=
        AUTHCERT_OK)
        return rc;
    if ((s = calloc(1, sizeof *s)) == NULL) {
        authcert_tls_files_clear(&f);
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    memcpy(s->pin, f.pin, sizeof s->pin);
    /* What the check read is what is served: stat after, compare later. */
    if (stat(d->cfg.tls_cert, &s->cert_st) != 0 || stat(d->cfg.tls_key, &s->key_st) != 0)
        memset(&s->cert_st, 0, sizeof s->cert_st);
    cert = (gnutls_datum_t){ (unsigned char *)f.cert_pem, (unsigned)f.cert_len };
    key = (gnutls_datum_t){ (unsigned char *)f.key_pem, (unsigned)f.key_len };
    s->npcert = sizeof s->pcert / sizeof *s->pcert;
    r = gnutls_pcert_list_import_x509_raw(s->pcert, &s->npcert, &cert, GNUTLS_X509_FMT_PEM, 0);
    if (r < 0) {
        s->npcert = 0;
        rc = authcert_fail(AUTHCERT_E_CORRUPT, "%s: GnuTLS cannot use the chain: %s",
                           d->cfg.tls_cert, gnutls_strerror(r));
    } else if ((r = gnutls_privkey_init(&s->key)) < 0 ||
               (r = gnutls_privkey_import_x509_raw(s->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) <
                   0) {
        rc = authcert_fail(AUTHCERT_E_CORRUPT, "%s: GnuTLS cannot use the key: %s",
                           d->cfg.tls_key, gnutls_strerror(r));
    }
    authcert_tls_files_clear(&f); /* wipes the key's PEM */
    if (rc != AUTHCERT_OK) {
        set_free(s);
        return rc;
    }
    *out = s;
    return AUTHCERT_OK;
}

authcert_status tls_open(daemon_ctx *d)
{
    struct tls_set *s = NULL;
    authcert_status rc;
    int r;

    if ((rc = load(d, &s)) != AUTHCERT_OK)
        return rc;
    if ((r = gnutls_session_ticket_key_generate(&ticket_key)) < 0) {
        set_free(s);
        return authcert_fail(AUTHCERT_E_CRYPTO, "TLS session ticket key: %s", gnutls_strerror(r));
    }
    atomic_store(&current, s);
    dlog("TLS: serving %s (key %s, public key %s)", d->cfg.tls_cert, d->cfg.tls_key, s->pin);
    return AUTHCERT_OK;
}

static bool same_file(const struct stat *a, const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return true; /* gone for a moment (a rename in progress): keep what we have */
    return st.st_ino == a->st_ino && st.st_dev == a->st_dev && st.st_size == a->st_size &&
           st.st_mtim.tv_sec == a->st_mtim.tv_sec && st.st_mtim.tv_nsec == a->st_mtim.tv_nsec;
}

void tls_maybe_reload(daemon_ctx *d, bool force)
{
    struct tls_set *cur, *s = NULL;
    authcert_status rc;

    pthread_mutex_lock(&reload_lock);
    cur = atomic_load(&current);
    if (cur == NULL ||
        (!force && same_file(&cur->cert_st, d->cfg.tls_cert) &&
         same_file(&cur->key_st, d->cfg.tls_key))) {
        pthread_mutex_unlock(&reload_lock);
        return;
    }
    rc = load(d, &s);
    if (rc != AUTHCERT_OK || s == NULL) {
        /* Keep serving the old one; the next look tries again only after
         * another change (the files' state is remembered as seen). */
        stat(d->cfg.tls_cert, &cur->cert_st);
        stat(d->cfg.tls_key, &cur->key_st);
        dlog("TLS: %s; still serving the certificate of %s", authcert_detail(), cur->pin);
    } else {
        s->older = cur;
        atomic_store(&current, s);
        dlog("TLS: %s re-read: now serving public key %s%s", d->cfg.tls_cert, s->pin,
             strcmp(s->pin, cur->pin) == 0 ? " (the same key)" : " (a new key: agents that pin "
                                                                 "the old one no longer connect)");
    }
    pthread_mutex_unlock(&reload_lock);
}

void tls_close(void)
{
    set_free(atomic_exchange(&current, NULL));
    if (ticket_key.data != NULL) {
        gnutls_memset(ticket_key.data, 0, ticket_key.size);
        gnutls_free(ticket_key.data);
        ticket_key.data = NULL;
    }
}

/* gnutls_certificate_retrieve_function2: the set in use now. */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                 const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                 gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key)
{
    struct tls_set *s = atomic_load(&current);

    (void)session; (void)req_ca_rdn; (void)nreqs; (void)pk_algos; (void)pk_algos_length;
    if (s == NULL)
        return -1;
    *pcert = s->pcert;
    *pcert_length = s->npcert;
    *key = s->key;
    return 0;
}

size_t tls_mhd_options(struct MHD_OptionItem *o)
{
    o[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)AUTHCERT_TLS_GNUTLS_PRIORITIES };
    /* libmicrohttpd takes the callback as a pointer (POSIX: a function
     * pointer converts to void * and back). */
    o[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)retrieve };
    return 2;
}

void tls_connection_event(struct MHD_Connection *c, bool started)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t s = ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;

    if (s == NULL)
        return;
    if (started) {
        (void)gnutls_session_ticket_enable_server(s, &ticket_key);
        return;
    }
    /* Ended: count how it began (a connection that never finished its
     * handshake has no version and is not counted). */
    if (gnutls_protocol_get_version(s) == GNUTLS_VERSION_UNKNOWN)
        return;
    if (gnutls_session_is_resumed(s))
        atomic_fetch_add(&sessions_resumed, 1);
    else
        atomic_fetch_add(&sessions_full, 1);
}

void tls_sessions(unsigned long long *full, unsigned long long *resumed)
{
    *full = atomic_load(&sessions_full);
    *resumed = atomic_load(&sessions_resumed);
}
