/*
 * PostgreSQL: the server nodes that share this registry, each with the
 * certificate it serves with. Made on first use (IF NOT EXISTS), so a
 * registry made before it needs no migration.
 */
#include <stdlib.h>
#include <string.h>

#include "registry/pg.h"

/*
 * Two nodes creating it at once would race in PostgreSQL's catalogue
 * (IF NOT EXISTS is not atomic there): serialise them on an advisory lock.
 */
#define NODES_TABLE                                                          \
    "BEGIN; SELECT pg_advisory_xact_lock(7365001); "                         \
    "CREATE TABLE IF NOT EXISTS nodes (node_id TEXT PRIMARY KEY, "           \
    "thumbprint TEXT NOT NULL, last_seen BIGINT NOT NULL); COMMIT"

authcert_status pg_node_report(void *impl, const char *node_id, const char *thumbprint,
                               time_t now)
{
    pg *p = impl;
    pg_int t;
    const char *params[3] = { node_id, thumbprint, pg_i64(t, (long long)now) };
    authcert_status rc = pg_cmd(p, NODES_TABLE);

    if (rc != AUTHCERT_OK)
        return rc;
    return pg_run(p, "INSERT INTO nodes(node_id, thumbprint, last_seen) VALUES ($1, $2, $3) "
                     "ON CONFLICT (node_id) DO UPDATE SET thumbprint = EXCLUDED.thumbprint, "
                     "last_seen = EXCLUDED.last_seen", 3, params, NULL);
}

authcert_status pg_foreach_node(void *impl, time_t since, authcert_node_cb cb, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    pg *p = impl;
    pg_int t;
    const char *params[1] = { pg_i64(t, (long long)since) };
    PGresult *res = NULL;

    GUARD(pg_cmd(p, NODES_TABLE));
    /* A handful of rows: one result, no cursor needed. */
    GUARD(pg_run(p, "SELECT node_id, thumbprint, last_seen FROM nodes WHERE last_seen >= $1 "
                    "ORDER BY node_id", 1, params, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        authcert_node n = {
            .node_id = PQgetvalue(res, i, 0),
            .thumbprint = PQgetvalue(res, i, 1),
            .last_seen = (time_t)pg_get_i64(res, i, 2),
        };
        GUARD(cb(ctx, &n));
    }
    rc = AUTHCERT_OK;
out:
    PQclear(res);
    return rc;
}
