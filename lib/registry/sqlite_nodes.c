/*
 * SQLite: the server nodes that share this registry. An embedded registry
 * normally has one node, but the same view keeps --status and the daemon's
 * check honest on both backends. The table is made on first use so that
 * registries made before it need no migration.
 */
#include <sqlite3.h>
#include <string.h>

#include "registry/sqlite.h"

#define NODES_TABLE                                                          \
    "CREATE TABLE IF NOT EXISTS nodes (node_id TEXT PRIMARY KEY NOT NULL, "  \
    "thumbprint TEXT NOT NULL, last_seen INTEGER NOT NULL)"

authcert_status sq_node_report(void *impl, const char *node_id, const char *thumbprint,
                               time_t now)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    int r;

    GUARD(sq_exec(s, NODES_TABLE));
    GUARD(sq_prepare(s, "INSERT INTO nodes(node_id, thumbprint, last_seen) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT(node_id) DO UPDATE SET thumbprint = excluded.thumbprint, "
                        "last_seen = excluded.last_seen", &st));
    sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, thumbprint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
    if ((r = sqlite3_step(st)) != SQLITE_DONE)
        SQL_FAIL(r, "node report");
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

authcert_status sq_foreach_node(void *impl, time_t since, authcert_node_cb cb, void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    int r;

    GUARD(sq_exec(s, NODES_TABLE));
    GUARD(sq_prepare(s, "SELECT node_id, thumbprint, last_seen FROM nodes "
                        "WHERE last_seen >= ?1 ORDER BY node_id", &st));
    sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        authcert_node n = {
            .node_id = (const char *)sqlite3_column_text(st, 0),
            .thumbprint = (const char *)sqlite3_column_text(st, 1),
            .last_seen = (time_t)sqlite3_column_int64(st, 2),
        };
        GUARD(cb(ctx, &n));
    }
    if (r != SQLITE_DONE)
        SQL_FAIL(r, "nodes");
    rc = AUTHCERT_OK;
out:
    sqlite3_finalize(st);
    return rc;
}
