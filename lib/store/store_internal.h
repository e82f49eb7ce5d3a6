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

#include <jansson.h>

#include "authcert/next_key.h"
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
    /* Pre-rotation (next_key.c): where the current certificate's committed
     * successor is, and a sealed one the next commit writes. */
    authcert_next_key_where next_where;
    char next_hash[AUTHCERT_SPKI_HASH_LEN + 1];
    char next_type[16];
    authcert_next_key *next_staged;
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

/* STORE/keys/next-H.pem, the sealed successor of commitment H; -1 when it does not fit. */
int store_next_key_path(const authcert_store *s, char *buf, size_t size, const char *hash);

/* The index's "next_key" member (NULL or absent: none), into s. */
authcert_status store_next_key_parse(authcert_store *s, const json_t *j);

/* The index's "next_key" member for s (a new reference; json null when none). */
json_t *store_next_key_json(const authcert_store *s);

/* Commit, before the index: write the staged sealed key (0600); *created: it was not there. */
authcert_status store_next_key_write(authcert_store *s, bool *created);

/* A failed commit: remove the sealed file store_next_key_write created. */
void store_next_key_unwrite(const authcert_store *s);

/* A restore: the backup says the successor of commitment hash was exported. */
void store_next_key_record_exported(authcert_store *s, const char *hash, const char *type);

/* Commit, after the index: remove sealed files no longer named (promoted, exported). */
void store_next_key_sweep(const authcert_store *s);

/* A restore's server secret, written by the next commit (lib/store/secret.c). */
void store_stage_secret(authcert_store *s, const unsigned char secret[32]);

#endif
