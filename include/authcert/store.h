/*
 * authcert/store.h — the server's certificate store.
 *
 * A directory (mode 0700) that holds every certificate the server ever had,
 * current, expired and revoked, with its private key and an exportable flag,
 * plus the backup password's hash. Local only; never shared over a network.
 *
 * On disk: keys/<thumbprint>.pem (certificate and key, 0600, written once
 * and never changed or deleted) and store.json, the index, replaced
 * atomically. A change writes its new key files first, then renames the new
 * index into place: a crash at any instant leaves the old or the new state.
 *
 * Changes are made on an open, writable store in memory and become real only
 * with authcert_store_commit. One writer at a time: opening for writing
 * takes an exclusive lock and fails at once with AUTHCERT_E_BUSY when
 * another process holds it.
 */
#ifndef AUTHCERT_STORE_H
#define AUTHCERT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "authcert/cert.h"
#include "authcert/error.h"
#include "authcert/next_key.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_STORE_DEFAULT_DIR "/var/lib/authcert"

typedef struct authcert_store authcert_store;

typedef enum authcert_state {
    AUTHCERT_STATE_CURRENT = 0, /* signs for agents that hold it; deployed to all */
    AUTHCERT_STATE_EXPIRED,     /* retired: signs only the key update that rolls an agent over */
    AUTHCERT_STATE_REVOKED,     /* leaked: never signs again; its agents are mismatched */
} authcert_state;

typedef struct authcert_store_entry {
    char thumbprint[AUTHCERT_THUMBPRINT_LEN + 1];
    authcert_state state;
    bool exportable;       /* false: -b refuses to write its private key */
    time_t added;          /* when this store first held it */
    time_t retired;        /* when it stopped being current; 0 if never */
    authcert_cert *cert;   /* with its key; owned by the store */
    /* The hand-off statement this certificate's key signed for its
     * successor (authcert/handoff.h), or NULL. Owned by the store. */
    char *handoff;
} authcert_store_entry;

enum {
    AUTHCERT_STORE_READ   = 0,
    AUTHCERT_STORE_WRITE  = 1 << 0, /* take the writer's lock */
    AUTHCERT_STORE_CREATE = 1 << 1, /* make the directory if missing (implies WRITE) */
};

const char *authcert_state_name(authcert_state s); /* "current", "expired", "revoked" */

/*
 * Open the store in dir. Errors: AUTHCERT_E_NOTFOUND (no store there and no
 * CREATE), AUTHCERT_E_BUSY (another writer), AUTHCERT_E_PERM (the caller is
 * neither root nor the owner of the directory), AUTHCERT_E_CORRUPT (the
 * index or a key file is damaged), AUTHCERT_E_IO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_open(const char *dir, int flags, authcert_store **out);

/* Drops the lock and uncommitted changes, wipes keys from memory. */
void authcert_store_close(authcert_store *s);

const char *authcert_store_dir(const authcert_store *s);

/* Entries: current first, then the others newest first. Owned by the store. */
size_t authcert_store_count(const authcert_store *s);
const authcert_store_entry *authcert_store_entry_at(const authcert_store *s, size_t i);
const authcert_store_entry *authcert_store_current(const authcert_store *s); /* NULL: none */
const authcert_store_entry *authcert_store_find(const authcert_store *s, const char *thumbprint);

/* Increases with every commit; the daemon uses it to notice a replacement. */
unsigned long long authcert_store_generation(const authcert_store *s);

/*
 * Re-read the index if another process committed since (cheap when not:
 * one stat). *changed (may be NULL) says whether it did. Read-only stores.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_refresh(authcert_store *s, bool *changed);

/* The backup password. */
bool authcert_store_has_password(const authcert_store *s);
/* AUTHCERT_E_AUTH when wrong, AUTHCERT_E_NOTFOUND when the store has none. */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_check_password(const authcert_store *s, const char *password);
/* Hash and keep (not written before commit). */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_set_password(authcert_store *s, const char *password);

/*
 * Make cert (with key; the store takes a reference) the current one. The
 * previous current becomes old_state (EXPIRED, or REVOKED for a leaked key).
 * If cert is already in the store its entry is reused: a revoked one is
 * refused with AUTHCERT_E_POLICY.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_make_current(authcert_store *s, authcert_cert *cert,
                            bool exportable, authcert_state old_state);

/*
 * Add cert in the given non-current state (an imported old certificate, so
 * that agents holding it are recognised). Already present: its state is only
 * ever made stricter (expired -> revoked), never relaxed.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_add(authcert_store *s, authcert_cert *cert, authcert_state state,
                   bool exportable);

/*
 * Keep jws, the hand-off statement thumbprint's key signed for its
 * successor (authcert/handoff.h); written with the next commit, kept from
 * then on (a later statement for the same certificate replaces it).
 * Errors: AUTHCERT_E_NOTFOUND (no such certificate), AUTHCERT_E_USAGE.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_set_handoff(authcert_store *s, const char *thumbprint, const char *jws);

/* Mark an entry revoked (a leaked key); the current one cannot be. */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_revoke(authcert_store *s, const char *thumbprint);

/*
 * Write the changes made since open: new key files, then the index, in one
 * atomic step. Nothing to write is fine. Errors: AUTHCERT_E_IO (the store is
 * as before).
 */
AUTHCERT_MUST_CHECK authcert_status authcert_store_commit(authcert_store *s);

/*
 * Pre-rotation (authcert/next_key.h): where the successor key the current
 * certificate commits to is. SEALED: STORE/keys/next-H.pem, under the
 * recovery secret. EXPORTED: moved off the machine by `authcert --next-key
 * export`; the index keeps the record. NONE: the current certificate
 * commits to nothing (made without a recovery secret, imported), or there
 * is no current certificate. make_current resets it to NONE; the caller
 * that makes a committing certificate current stages its sealed successor.
 */
typedef enum authcert_next_key_where {
    AUTHCERT_NEXT_KEY_NONE = 0,
    AUTHCERT_NEXT_KEY_SEALED,
    AUTHCERT_NEXT_KEY_EXPORTED,
} authcert_next_key_where;

const char *authcert_next_key_where_name(authcert_next_key_where w); /* "none", "sealed", "exported" */

/* Where the committed successor is; hash (may be NULL) gets its SPKI SHA-256 ("" for NONE). */
authcert_next_key_where authcert_store_next_key(const authcert_store *s, char hash[65]);

/*
 * Stage k as the sealed successor (a copy is kept): the next commit writes
 * STORE/keys/next-H.pem (0600) before the index, and records it as SEALED.
 * Used after make_current of a certificate committing to k, and by
 * --next-key import. Errors: AUTHCERT_E_USAGE (read-only store).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_stage_next_key(authcert_store *s, const authcert_next_key *k);

/* The sealed successor from its file. Errors: AUTHCERT_E_NOTFOUND (not SEALED), _CORRUPT. */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_load_next_key(const authcert_store *s, authcert_next_key **out);

/*
 * Record the successor as exported: the next commit writes the record, then
 * removes the sealed file. The caller has written the copy (and synced it)
 * first, so at every instant one of the two exists.
 */
AUTHCERT_MUST_CHECK authcert_status authcert_store_next_key_exported(authcert_store *s);

/*
 * The server secret (protocol v2): 32 random bytes in STORE/server-secret
 * (0600), from which every agent's MAC key and the enrollment nonces are
 * derived (authcert/auth.h), so that every node serving the same store (-b
 * on one, -r on the others) authenticates the same agents, and a registry
 * alone authenticates nobody. Read: AUTHCERT_E_NOTFOUND when the store has
 * none yet (a store made before protocol v2: any writer makes it);
 * AUTHCERT_E_PERM when the file is a link, another user's, or readable by
 * others; AUTHCERT_E_CORRUPT when it is not 32 bytes. The caller wipes out.
 */
#define AUTHCERT_STORE_SECRET_LEN 32
AUTHCERT_MUST_CHECK authcert_status
authcert_store_server_secret(const authcert_store *s, unsigned char out[AUTHCERT_STORE_SECRET_LEN]);

/*
 * A writable store: make the server secret if the store has none
 * (*created says so), or replace it with given (a restore carries the
 * backup's; NULL to make one). Written atomically, 0600, at once (not at
 * commit: the secret is not part of a generation).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_store_ensure_secret(authcert_store *s, bool *created);
AUTHCERT_MUST_CHECK authcert_status
authcert_store_set_secret(authcert_store *s, const unsigned char secret[AUTHCERT_STORE_SECRET_LEN]);

/*
 * The store directory's default: $AUTHCERT_STORE, else
 * AUTHCERT_STORE_DEFAULT_DIR.
 */
const char *authcert_store_default_dir(void);

#ifdef __cplusplus
}
#endif
#endif
