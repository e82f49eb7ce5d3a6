/* Registry locations on either backend (testlib_registry.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "testlib_registry.h"

/* AUTHCERT_TEST_PG_URI, else the first line of AUTHCERT_TEST_PG_URI_FILE. */
static const char *pg_uri(void)
{
    static char buf[1024];
    const char *u = getenv("AUTHCERT_TEST_PG_URI"), *file;
    FILE *fp;

    if (u != NULL && *u != '\0')
        return u;
    if (buf[0] != '\0')
        return buf;
    if ((file = getenv("AUTHCERT_TEST_PG_URI_FILE")) == NULL || *file == '\0')
        return NULL;
    if ((fp = fopen(file, "r")) == NULL || fgets(buf, sizeof buf, fp) == NULL) {
        fprintf(stderr, "testlib: %s: no cluster URI (is the pg fixture running?)\n", file);
        abort();
    }
    fclose(fp);
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

bool testlib_pg(void)
{
    return pg_uri() != NULL;
}

static int exec_on(const char *uri, const char *sql)
{
    PGconn *c = PQconnectdb(uri);
    PGresult *r;
    int ok;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "testlib: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "testlib: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

char *testlib_registry_new(const char *dir)
{
    static unsigned seq;
    char sql[128], *uri = NULL;

    if (!testlib_pg()) {
        if (asprintf(&uri, "%s/registry.db", dir) < 0)
            abort();
        return uri;
    }
    snprintf(sql, sizeof sql, "CREATE DATABASE authcert_t%ld_%u TEMPLATE template0",
             (long)getpid(), ++seq);
    if (exec_on(pg_uri(), sql) != 0)
        abort();
    if (asprintf(&uri, "%s&dbname=authcert_t%ld_%u", pg_uri(),
                 (long)getpid(), seq) < 0)
        abort();
    return uri;
}

void testlib_registry_drop(const char *uri)
{
    const char *db;
    char sql[160];

    if (uri == NULL || !testlib_pg() || (db = strstr(uri, "&dbname=")) == NULL)
        return;
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db + 8);
    (void)exec_on(pg_uri(), sql);
}

int testlib_registry_sql(const char *uri, const char *sql)
{
    sqlite3 *db = NULL;
    int r;

    if (strncmp(uri, "postgresql://", 13) == 0)
        return exec_on(uri, sql);
    if (sqlite3_open(uri, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    r = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return r == SQLITE_OK ? 0 : -1;
}
