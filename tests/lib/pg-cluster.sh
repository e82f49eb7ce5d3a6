#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (Debian package `postgresql`).
#
#   pg-cluster.sh start [STATE]   start one (idempotent: a running one is kept)
#   pg-cluster.sh env   [STATE]   print `export AUTHCERT_TEST_PG_URI=...` for eval
#
# start also writes the URI to STATE/uri (CTest points the tests at it with
# AUTHCERT_TEST_PG_URI_FILE, since the port is only known once it runs).
#   pg-cluster.sh stop  [STATE]   stop it and remove its files (idempotent)
#
# STATE (default $AUTHCERT_TEST_TMP/pg-cluster, else /tmp/authcert-pg-state)
# only records where the cluster lives. The cluster itself is in a fresh
# /tmp/authcert-pg.XXXXXX owned by the postgres user (the server refuses to
# run as root, and it must be able to reach its directory: a build tree
# under a 0700 home might not be), listening on a unix socket in that
# directory only (listen_addresses=''), so no TCP port is opened; the port
# still names the socket and is picked free all the same.
#
# Tuned for tests, not for data: fsync, full_page_writes and synchronous
# commit are off. Run as root (runuser -u postgres) or as any user who can
# run initdb.
set -euo pipefail

cmd=${1:-}
state=${2:-${AUTHCERT_TEST_TMP:+$AUTHCERT_TEST_TMP/pg-cluster}}
state=${state:-/tmp/authcert-pg-state}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || {
    echo "pg-cluster: no PostgreSQL server found (Debian: apt-get install postgresql)" >&2
    exit 2
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [ -f "$state/dir" ] || return 1
    local dir
    dir=$(cat "$state/dir")
    [ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

uri() {
    local dir port
    dir=$(cat "$state/dir")
    port=$(cat "$state/port")
    printf 'postgresql:///postgres?host=%s&port=%s&user=postgres\n' "$dir" "$port"
}

stop() {
    [ -f "$state/dir" ] || return 0
    local dir
    dir=$(cat "$state/dir")
    case $dir in /tmp/authcert-pg.*) ;; *) echo "pg-cluster: odd state $dir" >&2; exit 2 ;; esac
    if [ -d "$dir/data" ]; then
        as_pg "$bindir/pg_ctl" stop -D "$dir/data" -m immediate -w >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    rm -f "$state/dir" "$state/port" "$state/uri"
}

start() {
    if running; then
        return 0
    fi
    stop # a stale record (a crash, a reboot) is cleared first
    mkdir -p "$state"
    local dir port
    dir=$(mktemp -d /tmp/authcert-pg.XXXXXX)
    chmod 0755 "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    port=$(free_port)
    echo "$dir" >"$state/dir"
    echo "$port" >"$state/port"
    if ! as_pg "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C \
            --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        stop
        exit 1
    fi
    if ! as_pg "$bindir/pg_ctl" start -D "$dir/data" -w -t 30 -l "$dir/server.log" \
            -o "-k $dir -p $port -c listen_addresses='' -c fsync=off \
                -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
            >/dev/null; then
        cat "$dir/server.log" >&2 || true
        stop
        exit 1
    fi
    uri >"$state/uri"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    env)
        running || { echo "pg-cluster: not running (start it first)" >&2; exit 1; }
        printf 'export AUTHCERT_TEST_PG_URI=%q\n' "$(uri)"
        ;;
    *) echo "usage: pg-cluster.sh start|stop|env [STATE_DIR]" >&2; exit 2 ;;
esac
