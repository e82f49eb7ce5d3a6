/*
 * Registry locations for tests that run on both backends: SQLite by
 * default, PostgreSQL when AUTHCERT_TEST_PG_URI is set, or
 * AUTHCERT_TEST_PG_URI_FILE names a file holding it (CTest's
 * unit/test_registry_pg does, with a cluster from tests/lib/pg-cluster.sh).
 */
#ifndef AUTHCERT_TESTLIB_REGISTRY_H
#define AUTHCERT_TESTLIB_REGISTRY_H

#include <stdbool.h>

/* True when the tests run against PostgreSQL. */
bool testlib_pg(void);

/*
 * A fresh, empty registry location: DIR/registry.db on SQLite; on
 * PostgreSQL a new database (made here) and its URI. Caller frees it and
 * calls testlib_registry_drop when done.
 */
char *testlib_registry_new(const char *dir);

/* Drop the PostgreSQL database behind uri (nothing for SQLite). */
void testlib_registry_drop(const char *uri);

/*
 * Run one SQL statement on the registry behind uri as its owner (test set-up
 * only: planting a foreign table, a newer version). Returns 0 on success.
 */
int testlib_registry_sql(const char *uri, const char *sql);

#endif
