/*
 * authcert/replay.h — the agent's memory of the signed commands it accepted,
 * so that a captured token cannot be played again (DESIGN.md section 5).
 */
#ifndef AUTHCERT_REPLAY_H
#define AUTHCERT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_REPLAY_DEFAULT_CAPACITY 4096

typedef struct authcert_replay_cache authcert_replay_cache;

/*
 * The jti values of the tokens accepted, each kept until its exp + leeway
 * has passed (after that the token is refused as expired anyway), at most
 * capacity of them (0: AUTHCERT_REPLAY_DEFAULT_CAPACITY). When full, entries
 * past their time are dropped first; if all are still live, the new token is
 * refused with AUTHCERT_E_BUSY rather than an entry forgotten, because a
 * forgotten jti could be replayed. A sender that floods an agent with valid
 * signed tokens is the server itself; the fix is shorter ttls or a bigger cache.
 * Safe to use from several threads. Caller frees with authcert_replay_cache_free.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_replay_cache_new(size_t capacity, int64_t leeway, authcert_replay_cache **out);
void authcert_replay_cache_free(authcert_replay_cache *c);

/*
 * AUTHCERT_OK and jti remembered until exp + leeway when it was not seen;
 * AUTHCERT_E_AUTH "replayed" when it was; AUTHCERT_E_BUSY when full (above);
 * AUTHCERT_E_USAGE for an empty or too long jti.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_replay_check_and_add(authcert_replay_cache *c, const char *jti,
                              int64_t exp, int64_t now);

/*
 * Keep the cache in a file as well, so that a restarted agent still refuses
 * a token it accepted before (path: STATE_DIR/seen-tokens, 0600): the live
 * entries of an existing file are loaded (and the file rewritten with those
 * only), then every entry added is appended and flushed to disk before
 * check_and_add returns AUTHCERT_OK; if it cannot be written, the token is
 * refused (AUTHCERT_E_IO) rather than run unremembered. The file holds
 * SHA-256 hashes of jti values and times, nothing secret.
 * Errors: AUTHCERT_E_CORRUPT (not such a file), AUTHCERT_E_PERM
 * (authcert_read_private's rules), AUTHCERT_E_IO.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_replay_cache_persist(authcert_replay_cache *c, const char *path, int64_t now);

/* Entries held (live or not yet swept). */
size_t authcert_replay_cache_count(authcert_replay_cache *c);

#ifdef __cplusplus
}
#endif
#endif
