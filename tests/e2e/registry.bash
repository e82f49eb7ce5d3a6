# The registry of an e2e suite that runs on both backends (`load registry`):
# SQLite by default; PostgreSQL when AUTHCERT_TEST_PG_URI is set, or
# AUTHCERT_TEST_PG_URI_FILE names a file holding it (CTest's e2e/*_pg, on the
# "pg" fixture's cluster), as tests/lib/testlib_registry.c decides for the
# unit tests. Each test gets its own registry, so tests never see each other.
#
#   reg_setup DIR    REG: DIR/reg.db, or the URI of a new database made here
#                    (what authcertd and authcert take as --registry)
#   reg_teardown     drop that database (SQLite: the caller removes DIR)
#   reg_q SQL        one statement; rows a line, columns joined by |, NULL
#                    empty (sqlite3's output and psql -tA's alike)
#   reg_intact       prints ok when the registry is consistent
#   reg_pg           true on PostgreSQL
#   REG_NOW          SQL for the current Unix time in seconds, as an integer
#
# SQL passed to reg_q is written for both: no PRAGMA, no ::casts, booleans
# as CAST(x AS INTEGER) (psql would print t/f), the time as $REG_NOW.

reg_pg_base() {
    if [ -n "${AUTHCERT_TEST_PG_URI:-}" ]; then
        printf '%s\n' "$AUTHCERT_TEST_PG_URI"
    elif [ -n "${AUTHCERT_TEST_PG_URI_FILE:-}" ]; then
        head -n 1 "$AUTHCERT_TEST_PG_URI_FILE" ||
            { echo "registry.bash: no cluster URI (is the pg fixture running?)" >&2; return 1; }
    fi
}

reg_pg() { [ -n "${REG_PG_DB:-}" ]; }

reg_setup() { # DIR
    local base name
    REG_PG_DB=
    base="$(reg_pg_base)" || return 1
    if [ -z "$base" ]; then
        REG="$1/reg.db"
        REG_NOW="CAST(strftime('%s', 'now') AS INTEGER)"
        return 0
    fi
    name="$(basename "${BATS_TEST_FILENAME:-e2e}" .bats | tr -c 'a-z0-9_\n' _)"
    REG_PG_BASE="$base"
    REG_PG_DB="e2e_${name}_$$_${BATS_TEST_NUMBER:-0}"
    psql "$REG_PG_BASE" -Xq -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $REG_PG_DB TEMPLATE template0" >/dev/null || return 1
    REG="$REG_PG_BASE&dbname=$REG_PG_DB"
    REG_NOW="CAST(extract(epoch FROM now()) AS BIGINT)"
}

reg_teardown() {
    reg_pg || return 0
    psql "$REG_PG_BASE" -Xq -c "DROP DATABASE IF EXISTS $REG_PG_DB WITH (FORCE)" \
        >/dev/null 2>&1 || true
}

reg_q() { # SQL
    if reg_pg; then
        psql "$REG" -XqtA -v ON_ERROR_STOP=1 -c "$1"
    else
        sqlite3 "$REG" "$1"
    fi
}

# What a crash must never leave, on either backend: a delivery whose command
# or agent is gone, a settled delivery still leased. SQLite also checks its
# file (PRAGMA integrity_check); a PostgreSQL server's own pages are its
# business, not ours (a killed client cannot tear them).
reg_intact() {
    local q="SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM deliveries d
        LEFT JOIN commands c ON c.id = d.command_id LEFT JOIN agents a ON a.id = d.agent
        WHERE c.id IS NULL OR a.id IS NULL)
        AND NOT EXISTS (SELECT 1 FROM deliveries WHERE state <> 'queued'
        AND (lease_until <> 0 OR lease_token IS NOT NULL))
        THEN 'ok' ELSE 'inconsistent' END"
    if ! reg_pg; then
        local file
        file="$(sqlite3 "$REG" 'PRAGMA integrity_check')" || return 1
        [ "$file" = ok ] || { echo "$file"; return 0; }
    fi
    reg_q "$q"
}
