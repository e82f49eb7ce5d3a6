/*
 * authcert --tls-cert new|renew|prepare|pins: the TLS certificate authcertd
 * serves by default, in STORE/tls/ (server.crt, server.key; authcertd(8)).
 *
 *   new      a key and a self-signed certificate for the names given
 *            (--dns NAME, --ip ADDRESS, repeated; default: this host's name),
 *            the key being the one `prepare` made when there is one
 *   renew    a new certificate for the same key: the pin stays, so agents
 *            that pin it are not affected (names: the current ones unless
 *            given)
 *   prepare  make the next key now and print its pin, so that agents can be
 *            given both pins before `new` switches to it
 *   pins     the pins of the key in use and of the prepared one
 *
 * A pin is the SHA-256 of the key's SubjectPublicKeyInfo (authcert/tls.h):
 * what authcert-agent --server-pin takes. The store's lock is held, so two
 * administrators do not make two keys at once. Order of the writes for
 * `new`: the key is on disk (tls/next.key) before the certificate that
 * names it is written, and becomes server.key last; a crash in between is
 * mended by running `new` again, which finds next.key and uses it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "authcert/tls.h"
#include "tool.h"

#define TLS_DAYS_DEFAULT 730

struct tls_paths {
    char dir[4096], crt[4200], key[4200], next[4200];
};

static authcert_status paths_of(const char *store, struct tls_paths *p)
{
    if ((size_t)snprintf(p->dir, sizeof p->dir, "%s/tls", store) >= sizeof p->dir)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", store);
    snprintf(p->crt, sizeof p->crt, "%s/server.crt", p->dir);
    snprintf(p->key, sizeof p->key, "%s/server.key", p->dir);
    snprintf(p->next, sizeof p->next, "%s/next.key", p->dir);
    return AUTHCERT_OK;
}

static authcert_status make_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return authcert_fail(errno == EACCES ? AUTHCERT_E_PERM : AUTHCERT_E_IO, "%s: %s", dir,
                             strerror(errno));
    if (!authcert_is_dir(dir))
        return authcert_fail(AUTHCERT_E_IO, "%s: not a directory", dir);
    return AUTHCERT_OK;
}

/* A certificate for key with the names, written to p->crt. */
static authcert_status write_cert(const struct tool_opts *o, const struct tls_paths *p,
                                  EVP_PKEY *key, const char *const *dns, const char *const *ips,
                                  char pin[AUTHCERT_PIN_LEN + 1], time_t *until)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert_params cp = { .days = o->days != 0 ? o->days : TLS_DAYS_DEFAULT,
                                .subject = o->subject != NULL ? o->subject
                                                              : "CN=authcertd",
                                .tls = true, .dns_names = dns, .ip_addresses = ips };
    authcert_cert *c = NULL;
    authcert_cert_info info;
    char *pem = NULL;
    size_t len = 0;

    TRY(authcert_cert_generate_for(&cp, key, &c));
    TRY(authcert_cert_to_pem(c, &pem, &len));
    TRY(authcert_write_atomic(p->crt, pem, len, 0644));
    TRY(authcert_key_pin(key, pin));
    authcert_cert_get_info(c, &info);
    *until = info.not_after;
    rc = AUTHCERT_OK;
out:
    free(pem);
    authcert_cert_free(c);
    return rc;
}

static void say_names(const struct tool_opts *o, const char *const *dns, const char *const *ips)
{
    char line[2048] = "";
    size_t n = 0;

    for (size_t i = 0; dns != NULL && dns[i] != NULL && n < sizeof line; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%sDNS:%s", n ? ", " : "", dns[i]);
    for (size_t i = 0; ips != NULL && ips[i] != NULL && n < sizeof line; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%sIP:%s", n ? ", " : "", ips[i]);
    tool_say(o, "names: %s", n > 0 ? line : "(none)");
}

static authcert_status op_new(const struct tool_opts *o, const struct tls_paths *p)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_key_type type = o->key_type != AUTHCERT_KEY_UNKNOWN ? o->key_type : AUTHCERT_KEY_P256;
    EVP_PKEY *key = NULL;
    bool created = false;
    char host[256], pin[AUTHCERT_PIN_LEN + 1], when[32];
    const char *dflt[2] = { host, NULL };
    const char *const *dns = (const char *const *)o->dns_names;
    time_t until = 0;

    if (o->ndns == 0 && o->nips == 0) {
        if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
            return authcert_fail(AUTHCERT_E_USAGE, "no --dns or --ip, and no host name to use");
        host[sizeof host - 1] = '\0';
        dns = dflt;
    }
    if (access(p->key, F_OK) == 0 && access(p->next, F_OK) != 0)
        tool_warn(o, "a new TLS key: agents that pin only the old one (--server-pin) will "
                  "refuse this server until given the new pin (authcert --tls-cert prepare "
                  "first avoids this)");
    /* The prepared key, or a new one: on disk before the certificate names it. */
    TRY(authcert_key_file_load_or_create(p->next, type, &key, &created));
    TRY(write_cert(o, p, key, dns, (const char *const *)o->ip_addresses, pin, &until));
    if (rename(p->next, p->key) != 0) {
        rc = authcert_fail(AUTHCERT_E_IO, "%s: %s", p->key, strerror(errno));
        goto out;
    }
    tool_iso8601(until, when, sizeof when);
    tool_say(o, "TLS certificate %s and key %s (%s key), valid until %s", p->crt, p->key,
             created ? "a new" : "the prepared", when);
    say_names(o, dns, (const char *const *)o->ip_addresses);
    tool_say(o, "pin: %s", pin);
    rc = AUTHCERT_OK;
out:
    EVP_PKEY_free(key);
    return rc;
}

static authcert_status op_renew(const struct tool_opts *o, const struct tls_paths *p)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_PKEY *key = NULL;
    uint8_t *cur = NULL;
    size_t len = 0;
    char **dns = NULL, **ips = NULL, pin[AUTHCERT_PIN_LEN + 1], when[32];
    time_t until = 0;
    bool given = o->ndns > 0 || o->nips > 0;

    TRY(authcert_key_file_load(p->key, &key));
    if (!given) {
        TRY(authcert_read_file(p->crt, 1024 * 1024, &cur, &len));
        TRY(authcert_cert_alt_names(cur, len, &dns, &ips));
    }
    TRY(write_cert(o, p, key, given ? (const char *const *)o->dns_names : (const char *const *)dns,
                   given ? (const char *const *)o->ip_addresses : (const char *const *)ips, pin,
                   &until));
    tool_iso8601(until, when, sizeof when);
    tool_say(o, "TLS certificate %s renewed for the same key, valid until %s", p->crt, when);
    say_names(o, given ? (const char *const *)o->dns_names : (const char *const *)dns,
              given ? (const char *const *)o->ip_addresses : (const char *const *)ips);
    tool_say(o, "pin: %s (unchanged)", pin);
    rc = AUTHCERT_OK;
out:
    authcert_names_free(dns);
    authcert_names_free(ips);
    free(cur);
    EVP_PKEY_free(key);
    return rc;
}

static authcert_status op_prepare(const struct tool_opts *o, const struct tls_paths *p)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_key_type type = o->key_type != AUTHCERT_KEY_UNKNOWN ? o->key_type : AUTHCERT_KEY_P256;
    EVP_PKEY *key = NULL;
    bool created = false;
    char pin[AUTHCERT_PIN_LEN + 1];

    TRY(authcert_key_file_load_or_create(p->next, type, &key, &created));
    TRY(authcert_key_pin(key, pin));
    tool_say(o, "%s TLS key %s: give agents this pin beside the current one, then run "
             "authcert --tls-cert new", created ? "next" : "already prepared:", p->next);
    tool_say(o, "pin: %s", pin);
    rc = AUTHCERT_OK;
out:
    EVP_PKEY_free(key);
    return rc;
}

static authcert_status op_pins(const struct tool_opts *o, const struct tls_paths *p)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_PKEY *key = NULL;
    char pin[AUTHCERT_PIN_LEN + 1];

    (void)o; /* printed even with -q: it is what was asked for */
    TRY(authcert_key_file_load(p->key, &key));
    TRY(authcert_key_pin(key, pin));
    printf("%s current\n", pin);
    EVP_PKEY_free(key);
    key = NULL;
    rc = authcert_key_file_load(p->next, &key);
    if (rc == AUTHCERT_E_NOTFOUND) {
        rc = AUTHCERT_OK;
        goto out;
    }
    TRY(rc);
    TRY(authcert_key_pin(key, pin));
    printf("%s next\n", pin);
out:
    EVP_PKEY_free(key);
    return rc;
}

int cmd_tls(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store *s = NULL;
    struct tls_paths p;
    const char *op = o->pos[0];
    bool reads = strcmp(op, "pins") == 0;

    if (strcmp(op, "new") != 0 && strcmp(op, "renew") != 0 && strcmp(op, "prepare") != 0 &&
        !reads) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "%s: not new, renew, prepare or pins", op);
        goto out;
    }
    if (o->key_type != AUTHCERT_KEY_UNKNOWN && o->key_type != AUTHCERT_KEY_P256 &&
        o->key_type != AUTHCERT_KEY_ED25519) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "--key-type: a TLS key is p256 or ed25519");
        goto out;
    }
    /* The lock (and the check that we may manage this store) for every change. */
    TRY(authcert_store_open(o->store_dir, reads ? AUTHCERT_STORE_READ : AUTHCERT_STORE_WRITE, &s));
    TRY(paths_of(o->store_dir, &p));
    if (!reads)
        TRY(make_dir(p.dir));
    if (strcmp(op, "new") == 0)
        TRY(op_new(o, &p));
    else if (strcmp(op, "renew") == 0)
        TRY(op_renew(o, &p));
    else if (strcmp(op, "prepare") == 0)
        TRY(op_prepare(o, &p));
    else
        TRY(op_pins(o, &p));
    rc = AUTHCERT_OK;
out:
    if (s != NULL)
        authcert_store_close(s);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
