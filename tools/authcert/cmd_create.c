/*
 * authcert -c [PASSWORD]: a new certificate replaces the current one.
 *
 * The store is backed up first (to <store>/backups, with PASSWORD), so a
 * replacement never loses a key; then the new certificate becomes current
 * and the old one expired (or revoked with --compromised) in one commit.
 * The first -c creates the store and sets its backup password; every later
 * -c must give that same password.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authcert/handoff.h"
#include "tool.h"

/* The automatic backup before a replacement; *path is NULL when skipped. */
static authcert_status auto_backup(const struct tool_opts *o, authcert_store *s,
                                   const char *pw, char **path)
{
    const authcert_store_entry *cur = authcert_store_current(s);
    size_t left_out = 0;
    char dir[4096];
    authcert_status rc;

    *path = NULL;
    if ((size_t)snprintf(dir, sizeof dir, "%s/backups", authcert_store_dir(s)) >= sizeof dir)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", authcert_store_dir(s));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", dir, strerror(errno));
    for (size_t i = 0; i < authcert_store_count(s); i++)
        if (!authcert_store_entry_at(s, i)->exportable)
            left_out++;

    rc = authcert_backup_write(s, pw, dir, AUTHCERT_BACKUP_SKIP_UNEXPORTABLE, path);
    if (rc == AUTHCERT_E_POLICY || (rc == AUTHCERT_E_NOTFOUND && !cur->exportable)) {
        /* Restored with -re on purpose: its key must not leave the store. */
        tool_warn(o, "the current key is not exportable: no automatic backup");
        return AUTHCERT_OK;
    }
    if (rc == AUTHCERT_OK && left_out > 0)
        tool_warn(o, "%zu certificate%s with a key that is not exportable left out of "
                  "the backup", left_out, left_out == 1 ? "" : "s");
    return rc;
}

/*
 * Pre-rotation: the key of the new certificate and the successor it commits
 * to. A current certificate with a commitment is succeeded by exactly the
 * committed key, unsealed with the recovery secret (--break-commitment: a
 * fresh key, and a warning of the agents that cannot follow). With a
 * recovery secret, the new certificate commits to a fresh successor sealed
 * under it; without one (none given, not on a terminal), to none.
 */
struct succession {
    char *secret;                /* the recovery secret, or NULL */
    EVP_PKEY *promoted;          /* the committed key, unsealed */
    authcert_next_key *next;     /* the fresh successor, sealed */
};

/*
 * The new statement's generation: past the store's, and past every
 * statement it keeps (a store restored from a backup starts its own count
 * again, while the statements it restored keep theirs).
 */
static uint64_t next_gen(const authcert_store *s)
{
    uint64_t gen = authcert_store_generation(s) + 1;

    for (size_t i = 0; i < authcert_store_count(s); i++) {
        const authcert_store_entry *e = authcert_store_entry_at(s, i);
        char from[65], to[65];
        uint64_t g = 0;
        if (e->handoff != NULL && authcert_handoff_peek(e->handoff, from, to, &g) == AUTHCERT_OK
            && g >= gen)
            gen = g + 1;
    }
    authcert_clear_detail();
    return gen;
}

/* Does the store's current certificate commit to a successor? */
static bool committing_now(const authcert_store *s)
{
    char hash[AUTHCERT_SPKI_HASH_LEN + 1];
    bool has = false;

    return authcert_store_current(s) != NULL
           && authcert_cert_commitment(authcert_store_current(s)->cert, &has, hash) == AUTHCERT_OK
           && has;
}

/* A key of type next may follow one of type cur at the agents (cert_policy.h). */
static bool successor_followable(authcert_key_type cur, authcert_key_type next)
{
    static const authcert_key_type rsa[] = { AUTHCERT_KEY_RSA2048, AUTHCERT_KEY_RSA3072,
                                             AUTHCERT_KEY_RSA4096 };
    int ci = -1, ni = -1;

    for (int i = 0; i < 3; i++) {
        if (rsa[i] == cur)
            ci = i;
        if (rsa[i] == next)
            ni = i;
    }
    if (ci >= 0 || ni >= 0)
        return ci >= 0 && ni >= ci;
    return cur == next;
}

static authcert_status plan_succession(const struct tool_opts *o, authcert_store *s,
                                       const char *pw, authcert_cert_params *params,
                                       struct succession *sc)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const authcert_store_entry *cur = s != NULL ? authcert_store_current(s) : NULL;
    char hash[AUTHCERT_SPKI_HASH_LEN + 1];
    authcert_next_key *sealed = NULL;
    authcert_key_type next_type, cur_type;
    bool committing = false;

    if (cur != NULL)
        TRY(authcert_cert_commitment(cur->cert, &committing, hash));
    if (committing && !o->break_commitment) {
        switch (authcert_store_next_key(s, NULL)) {
        case AUTHCERT_NEXT_KEY_EXPORTED:
            rc = authcert_fail(AUTHCERT_E_NOTFOUND, "the current certificate's successor key "
                               "was exported: bring it back with authcert --next-key import "
                               "FILE (or give --break-commitment)");
            goto out;
        case AUTHCERT_NEXT_KEY_NONE:
            rc = authcert_fail(AUTHCERT_E_NOTFOUND, "the store does not hold the successor key "
                               "the current certificate commits to (give --break-commitment)");
            goto out;
        case AUTHCERT_NEXT_KEY_SEALED:
            break;
        }
        TRY(tool_recovery_secret(o, false, &sc->secret));
        if (sc->secret == NULL) {
            rc = authcert_fail(AUTHCERT_E_USAGE, "the current certificate commits to a "
                               "successor key sealed with the recovery secret: give it "
                               "(--recovery-file or --recovery-fd)");
            goto out;
        }
        TRY(authcert_store_load_next_key(s, &sealed));
        TRY(authcert_next_key_unseal(sealed, sc->secret, &sc->promoted));
    } else {
        TRY(tool_recovery_secret(o, true, &sc->secret));
        if (sc->secret != NULL) {
            rc = authcert_password_check_strength(sc->secret, NULL);
            if (rc != AUTHCERT_OK) {
                char why[256];
                snprintf(why, sizeof why, "%s", authcert_detail());
                rc = authcert_fail(rc, "recovery secret: %s", why);
                goto out;
            }
        }
    }
    if (sc->secret != NULL && strlen(sc->secret) == strlen(pw)
        && CRYPTO_memcmp(sc->secret, pw, strlen(pw)) == 0) {
        rc = authcert_fail(AUTHCERT_E_USAGE, "the recovery secret must not be the store "
                           "password: whoever has the store and its password would have both");
        goto out;
    }
    if (sc->secret != NULL) {
        /* --key-type chooses the fresh successor's type; else it keeps the
         * type of the key it succeeds. */
        next_type = o->key_type != AUTHCERT_KEY_UNKNOWN ? o->key_type
                    : sc->promoted != NULL ? authcert_key_type_of(sc->promoted)
                    : params->type != AUTHCERT_KEY_UNKNOWN ? params->type : AUTHCERT_KEY_DEFAULT;
        /* Agents follow a key update only within the key's family (RSA no
         * shorter): a successor they would refuse strands them for good,
         * as the commitment then forbids every other key. */
        cur_type = sc->promoted != NULL ? authcert_key_type_of(sc->promoted)
                   : params->type != AUTHCERT_KEY_UNKNOWN ? params->type : AUTHCERT_KEY_DEFAULT;
        if (!successor_followable(cur_type, next_type)) {
            rc = authcert_fail(AUTHCERT_E_POLICY, "a %s successor for a %s key: agents refuse "
                               "a key update to another key type, and the commitment would "
                               "allow no other (give a --key-type of the same family)",
                               authcert_key_type_name(next_type),
                               authcert_key_type_name(cur_type));
            goto out;
        }
        TRY(authcert_next_key_generate(next_type, sc->secret, &sc->next));
        params->commit_to = authcert_next_key_hash(sc->next);
    }
    rc = AUTHCERT_OK;
out:
    authcert_next_key_free(sealed);
    return rc;
}

int cmd_create(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert_params params = { .type = o->key_type, .days = o->days, .subject = o->subject };
    authcert_store *s = NULL;
    authcert_cert *cert = NULL;
    char *pw = NULL, *backup = NULL;
    bool fresh = false, replaced = false, new_pw;
    authcert_cert_info info;
    char until[32], outgoing[AUTHCERT_THUMBPRINT_LEN + 1] = "";
    char *statement = NULL;
    struct succession sc = {0};

    /* Open before asking: a refusal (busy, not permitted) needs no password. */
    rc = authcert_store_open(o->store_dir, AUTHCERT_STORE_WRITE, &s);
    if (rc == AUTHCERT_E_NOTFOUND)
        fresh = true;
    else if (rc != AUTHCERT_OK)
        goto out;
    new_pw = fresh || !authcert_store_has_password(s);
    TRY(tool_password(o, o->npos > 0 ? o->pos[0] : NULL, new_pw, &pw));
    /* A weak password on a fresh store must not leave an empty store behind. */
    if (new_pw)
        TRY(authcert_password_check_strength(pw, NULL));
    else
        TRY(authcert_store_check_password(s, pw));
    /* The agents follow a key update only to a key of the type they hold:
     * without --key-type, a replacement keeps the current one's. */
    if (params.type == AUTHCERT_KEY_UNKNOWN && s != NULL && authcert_store_current(s) != NULL)
        params.type = authcert_cert_key_type(authcert_store_current(s)->cert);
    TRY(plan_succession(o, s, pw, &params, &sc));
    /* Before the store is created, so that a bad --subject leaves none. */
    if (sc.promoted != NULL)
        TRY(authcert_cert_generate_for(&params, sc.promoted, &cert));
    else
        TRY(authcert_cert_generate(&params, &cert));
    TRY(tool_commitment_guard(o, s, cert));
    /* Ours passes the certificate policy; checked all the same. */
    TRY(tool_cert_policy(cert, true, NULL));
    if (fresh) {
        TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_CREATE | AUTHCERT_STORE_WRITE, &s));
        /* Another -c may have made it meanwhile, with its own password. */
        if (authcert_store_has_password(s))
            TRY(authcert_store_check_password(s, pw));
    }
    if (!authcert_store_has_password(s))
        TRY(authcert_store_set_password(s, pw));
    replaced = authcert_store_current(s) != NULL;
    if (replaced)
        TRY(auto_backup(o, s, pw, &backup));
    if (!o->compromised) /* revoked: its agents need the exported file anyway */
        tool_warn_key_change(o, s, cert);
    /* The hand-off statement (authcert/handoff.h): the outgoing key signs
     * once for its successor, so that agents on it need no retired key
     * later. A leaked key only when it commits to the successor being
     * promoted (its one statement, which moves its agents nowhere else);
     * never for a successor its agents would refuse (a commitment broken
     * on purpose). */
    if (replaced && authcert_cert_has_key(authcert_store_current(s)->cert)
        && (sc.promoted != NULL || (!o->compromised && !committing_now(s)))) {
        snprintf(outgoing, sizeof outgoing, "%s", authcert_store_current(s)->thumbprint);
        TRY(authcert_handoff_sign(authcert_store_current(s)->cert, cert, next_gen(s), 0,
                                  &statement));
    }
    TRY(authcert_store_make_current(s, cert, true,
                                    o->compromised ? AUTHCERT_STATE_REVOKED
                                                   : AUTHCERT_STATE_EXPIRED));
    if (statement != NULL)
        TRY(authcert_store_set_handoff(s, outgoing, statement));
    if (sc.next != NULL)
        TRY(authcert_store_stage_next_key(s, sc.next));
    TRY(authcert_store_commit(s));

    authcert_cert_get_info(cert, &info);
    tool_iso8601(info.not_after, until, sizeof until);
    if (fresh)
        tool_say(o, "created the store %s", o->store_dir);
    if (backup != NULL)
        tool_say(o, "backup of the previous certificates: %s", backup);
    tool_say(o, "new current certificate: %s (%s, valid until %s)",
             authcert_cert_thumbprint(cert), authcert_key_type_name(info.type), until);
    if (sc.promoted != NULL)
        tool_say(o, "the committed successor key became current: agents holding the previous "
                 "certificate follow it");
    if (sc.next != NULL)
        tool_say(o, "it commits to a successor key (%.16s...), sealed with the recovery secret",
                 authcert_next_key_hash(sc.next));
    else
        /* Not a warning: the seed's scripted -c PASSWORD stays quiet under -q. */
        tool_say(o, "it commits to no successor key (no recovery secret given: see "
                 "--recovery-file and \"Pre-rotation\" in docs/operations.md)");
    if (o->compromised && replaced && statement != NULL)
        tool_say(o, "the previous certificate is revoked; it signed one hand-off to the "
                 "committed successor, which its agents follow at their next check-in "
                 "(until then they still obey its key: authcert -l lists them)");
    else if (o->compromised && replaced)
        tool_say(o, "the previous certificate is revoked: export the new agent "
                 "certificate file (-e) to its agents");
    rc = AUTHCERT_OK;
out:
    if (cert != NULL)
        authcert_cert_free(cert);
    if (s != NULL)
        authcert_store_close(s);
    authcert_secret_free(pw);
    authcert_secret_free(sc.secret);
    EVP_PKEY_free(sc.promoted);
    authcert_next_key_free(sc.next);
    free(statement);
    free(backup);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
