/*
 * authcert/registry_copy.h — move a registry between backends (SQLite to
 * PostgreSQL when one machine is outgrown, and back): what
 * `authcert --migrate-registry FROM TO` runs.
 */
#ifndef AUTHCERT_REGISTRY_COPY_H
#define AUTHCERT_REGISTRY_COPY_H

#include <stdint.h>

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct authcert_registry_copy_stats {
    uint64_t agents;     /* every agent, ids and first/last seen kept */
    uint64_t commands;   /* the commands that still have queued deliveries */
    uint64_t deliveries; /* the queued deliveries (attempts, leases kept) */
    uint64_t tokens;     /* enrollment tokens, used and revoked ones too */
    uint64_t pending;    /* enrollment requests waiting for an operator */
} authcert_registry_copy_stats;

/*
 * Copy every agent (with its identity: authcert/identity.h), every
 * enrollment token and pending request, and every queued command from the registry at from_uri
 * to the one at to_uri (URIs as for authcert_registry_open; both are
 * created or migrated to the current schema version first). Delivered and
 * failed history stays behind. Ids are kept, so a token an agent holds
 * still names its delivery. The source is read in one snapshot and the
 * destination written in one transaction, whose row counts are checked
 * against what was read before it commits: all or nothing. Streams, so
 * memory does not grow with the fleet. Stop the daemons first: check-ins
 * made to the source meanwhile are not copied. *stats may be NULL.
 * Errors: AUTHCERT_E_POLICY (the destination already has agents or
 * commands: nothing was changed), AUTHCERT_E_CORRUPT (the counts differ
 * after the copy: rolled back), AUTHCERT_E_USAGE (from and to are the same),
 * and those of authcert_registry_open.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_copy(const char *from_uri, const char *to_uri,
                       authcert_registry_copy_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
