/*
 * Private to lib/store/store.c (opening and reading the store) and
 * lib/store/commit.c (changing it): the store in memory and the pieces both
 * sides need (its files' names, finding and ordering entries, reading a key
 * file back).
 */
#ifndef AUTHCERT_STORE_INTERNAL_H
#define AUTHCERT_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "authcert/store.h"

#define STORE_FORMAT 1
#define STORE_INDEX_NAME "store.json"

struct entry {
    authcert_store_entry pub;
    bool on_disk; /* its key file exists; false for entries added since open */
    bool written_now; /* its key file is being written by this commit */
};

struct authcert_store {
    char *dir;
    int lock_fd;               /* -1 when opened read-only */
    struct entry *entries;
    size_t count, cap;
    char *password_hash;       /* scrypt encoding, NULL when none */
    bool secret_staged;        /* commit writes staged_secret (a restore's) */
    unsigned char staged_secret[32];
    unsigned long long generation;
    bool dirty;
    struct stat index_st;      /* what refresh compares against */
    bool index_seen;
    uid_t owner;               /* the store folder's: its files are root's or its */
};

/* STORE/name into buf; -1 when it does not fit. */
int store_path_in(const authcert_store *s, char *buf, size_t size, const char *name);

/* STORE/keys/T.pem into buf; -1 when it does not fit. */
int store_keyfile_path(const authcert_store *s, char *buf, size_t size,
                       const char *thumbprint);

/* Room for one more entry. */
authcert_status store_grow(authcert_store *s);

/* The entry of thumbprint, or NULL. */
struct entry *store_find(authcert_store *s, const char *thumbprint);

/* Current first, then most recently retired, then most recently added. */
void store_sort(authcert_store *s);

/* Load keys/T.pem and check that it really holds thumbprint T; caller frees *out. */
authcert_status store_load_keyfile(const authcert_store *s, const char *thumbprint,
                                   authcert_cert **out);

/* A restore's server secret, written by the next commit (lib/store/secret.c). */
void store_stage_secret(authcert_store *s, const unsigned char secret[32]);

#endif
