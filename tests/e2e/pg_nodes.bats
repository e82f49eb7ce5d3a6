#!/usr/bin/env bats
# Two authcertd nodes sharing one PostgreSQL registry, as a fleet outgrowing
# one machine runs them: each node has its own certificate store, the
# operator installs the same certificates on both with -b / -r; agents check
# in at either node; a push through the shared queue reaches each agent
# exactly once; a replacement made on one node and restored on the other
# rolls every agent over. Also --migrate-registry both ways.
# Needs the CTest fixture "pg" (AUTHCERT_TEST_PG_URI_FILE), or starts its own.
bats_require_minimum_version 1.5.0

setup_file() {
    : "${AUTHCERT_BIN:?}" "${AUTHCERT_SRC:?}"
    export PG_STATE=
    if [ -z "${AUTHCERT_TEST_PG_URI_FILE:-}" ] || [ ! -s "$AUTHCERT_TEST_PG_URI_FILE" ]; then
        PG_STATE=$(mktemp -d "${AUTHCERT_TEST_TMP:-/tmp}/pg-own.XXXXXX")
        "$AUTHCERT_SRC/tests/lib/pg-cluster.sh" start "$PG_STATE"
        export AUTHCERT_TEST_PG_URI_FILE=$PG_STATE/uri
    fi
}

teardown_file() {
    if [ -n "${PG_STATE:-}" ]; then
        "$AUTHCERT_SRC/tests/lib/pg-cluster.sh" stop "$PG_STATE"
        rm -rf "$PG_STATE"
    fi
}

setup() {
    BIN=$AUTHCERT_BIN
    mkdir -p "${AUTHCERT_TEST_TMP:-/tmp}"
    T=$(mktemp -d "${AUTHCERT_TEST_TMP:-/tmp}/pgnodes.XXXXXX")
    BASE=$(cat "$AUTHCERT_TEST_PG_URI_FILE")
    DB=pgnodes_$$_${BATS_TEST_NUMBER}
    psql "$BASE" -qc "CREATE DATABASE $DB TEMPLATE template0"
    REG="$BASE&dbname=$DB"
    export AUTHCERT_REGISTRY=$REG
    (umask 077 && printf '%s\n' 'correct horse battery staple 42' > "$T/password")
    PW=(--password-file "$T/password")
    cat > "$T/handler" <<'SH'
#!/bin/sh
cat > "$AUTHCERT_HANDLER_LOG.$AUTHCERT_AGENT_ID.$$"
echo done
SH
    chmod +x "$T/handler"
    export AUTHCERT_HANDLER_LOG=$T/handled
}

teardown() {
    local p
    for p in "$T"/*.pid "$T"/agents/*/pid; do
        [ -s "$p" ] && kill -TERM "$(cat "$p")" 2>/dev/null || true
    done
    sleep 0.3
    for p in "$T"/*.pid "$T"/agents/*/pid; do
        [ -s "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null || true
    done
    if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
        tail -n 15 "$T"/node*.log >&3 2>/dev/null || true
    fi
    psql "$BASE" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
    rm -rf "$T"
}

wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

ac() { "$BIN/authcert" "$@"; }
curl() { command curl --cacert "$T/ca.pem" "$@"; }

# node N: start authcertd N on store T/storeN, the shared registry.
node() {
    local n=$1
    shift
    rm -f "$T/node$n.port"
    # Each node serves HTTPS with a TLS key of its own; the agents pin their
    # node's, and curl trusts both certificates ($T/ca.pem).
    if [ ! -s "$T/store$n/tls/server.crt" ]; then
        ac -q --store "$T/store$n" --tls-cert new --dns localhost --ip 127.0.0.1
        cat "$T/store$n/tls/server.crt" >>"$T/ca.pem"
    fi
    eval "PIN$n=$(ac --store "$T/store$n" --tls-cert pins | awk '$2 == "current" { print $1 }')"
    "$BIN/authcertd" --store "$T/store$n" --registry "$REG" --listen 127.0.0.1:0 \
        --port-file "$T/node$n.port" --node-id "node-$n" --interval 1 "$@" \
        2>>"$T/node$n.log" &
    echo $! > "$T/node$n.pid"
    wait_for 10 test -s "$T/node$n.port"
    eval "URL$n=https://127.0.0.1:$(cat "$T/node$n.port")"
    wait_for 10 curl -sf -o /dev/null "https://127.0.0.1:$(cat "$T/node$n.port")/healthz"
    # One token for every agent of the test, at either node (one registry,
    # and the stores share their server secret: -r carries it).
    [ -s "$T/token.json" ] || ac -q --store "$T/store$n" --registry "$REG" --enroll-token new \
        "$T/token.json" --uses 100
}

# agent NAME N: an agent checking in at node N, given node N's agent file.
agent() {
    local name=$1 n=$2 dir=$T/agents/$1 url pin
    mkdir -p "$dir"
    ac -q --store "$T/store$n" -e "$dir"
    url=URL$n pin=PIN$n
    "$BIN/authcert-agent" --server "${!url}" --server-pin "${!pin}" --state-dir "$dir" \
        --enroll-token-file "$T/token.json" \
        --listen 127.0.0.1:0 \
        --interval 1 --handler "$T/handler" 2>>"$dir/agent.log" &
    echo $! > "$dir/pid"
    wait_for 10 test -s "$dir/agent-id"
}

agent_thumb() {
    openssl x509 -inform DER -in "$T/agents/$1/authcert-server.der" -noout \
        -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

current() { # the current thumbprint of store N
    ac --store "$T/store$1" --status --json | jq -r .current
}

all_on() { # THUMBPRINT NAMES...: each agent holds it, and the registry says current
    local tp=$1 a
    shift
    for a in "$@"; do
        [ "$(agent_thumb "$a")" = "$tp" ] || return 1
    done
    [ "$(ac --store "$T/store1" --agents --json | jq '[.[] | select(.state == "current")] | length')" -eq $# ]
}

# Node 1 makes the certificate; node 2 gets the same by backup and restore.
two_stores() {
    AUTHCERT_STORE=$T/store1 ac -q -c "${PW[@]}"
    ac -q --store "$T/store1" -b "${PW[@]}" "$T/backup.zip"
    ac -q --store "$T/store2" -r "${PW[@]}" "$T/backup.zip"
    [ "$(current 1)" = "$(current 2)" ]
}

@test "two nodes, one registry: agents at either node, a push delivered exactly once, a replacement rolled over everywhere" {
    two_stores
    node 1
    node 2
    agent a1 1; agent a2 1; agent a3 2; agent a4 2
    old=$(current 1)
    wait_for 20 all_on "$old" a1 a2 a3 a4
    # Both nodes wrote to the one registry.
    [ "$(psql "$REG" -tAc 'SELECT count(*) FROM agents')" -eq 4 ]

    # A push through the shared queue: each agent's handler runs once.
    run --separate-stderr ac --store "$T/store1" --push collect --all --wait --timeout 30
    [ "$status" -eq 0 ]
    sleep 2 # a second delivery, if any node made one, would land meanwhile
    [ "$(ls "$T"/handled.* | wc -l)" -eq 4 ]
    [ "$(ls "$T"/handled.* | sed 's/.*handled\.//; s/\.[0-9]*$//' | sort -u | wc -l)" -eq 4 ]
    [ "$(psql "$REG" -tAc "SELECT count(*) FROM deliveries WHERE state = 'delivered'")" -eq 4 ]

    # A replacement on node 1, installed on node 2 by restore, as the
    # original manual describes for several servers; no restart.
    ac -q --store "$T/store1" -c "${PW[@]}"
    new=$(current 1)
    [ "$new" != "$old" ]
    ac -q --store "$T/store1" -b "${PW[@]}" "$T/backup2.zip"
    ac -q --store "$T/store2" -r "${PW[@]}" "$T/backup2.zip"
    [ "$(current 2)" = "$new" ]
    wait_for 30 all_on "$new" a1 a2 a3 a4

    # After the roll-over a push still goes to each agent exactly once.
    rm -f "$T"/handled.*
    run --separate-stderr ac --store "$T/store2" --push collect --all --wait --timeout 30
    [ "$status" -eq 0 ]
    sleep 2
    [ "$(ls "$T"/handled.* | wc -l)" -eq 4 ]
}

@test "a node whose certificate differs from the others' says so in its log, /metrics and --status" {
    two_stores
    node 1
    node 2
    agree() { curl -s "$URL1/metrics" | grep -qx 'authcert_nodes 2'; }
    wait_for 20 agree
    curl -s "$URL1/metrics" | grep -qx 'authcert_node_certificate_mismatch 0'
    # Node 2 gets a certificate of its own: the operator forgot -b / -r.
    AUTHCERT_STORE=$T/store2 ac -q -c "${PW[@]}"
    differ() {
        curl -s "$URL1/metrics" | grep -qx 'authcert_node_certificate_mismatch 1' &&
            curl -s "$URL2/metrics" | grep -qx 'authcert_node_certificate_mismatch 1'
    }
    wait_for 30 differ
    grep -q "WARNING: node node-2 serves with certificate $(current 2)" "$T/node1.log"
    grep -q "WARNING: node node-1 serves with certificate $(current 1)" "$T/node2.log"
    run --separate-stderr ac --store "$T/store1" --registry "$REG" --status
    [[ "$output" == *"WARNING: node node-2 serves with another certificate"* ]]
    run --separate-stderr ac --store "$T/store1" --registry "$REG" --status --json
    [ "$(jq -r '.nodes | length' <<< "$output")" -eq 2 ]
    [ "$(jq -r '[.nodes[] | select(.same_certificate == false)] | length' <<< "$output")" -eq 1 ]
    # The repair: the same certificate on both; the warning ends.
    ac -q --store "$T/store1" -b "${PW[@]}" "$T/backup2.zip"
    ac -q --store "$T/store2" -r "${PW[@]}" "$T/backup2.zip"
    again() { curl -s "$URL2/metrics" | grep -qx 'authcert_node_certificate_mismatch 0'; }
    # store2's current is now store1's: restore makes the backup's current current.
    [ "$(current 1)" = "$(current 2)" ]
    wait_for 30 again
    grep -q "serve with certificate $(current 1) again" "$T/node2.log"
}

@test "a node that dies mid-delivery leaves its commands to the other" {
    two_stores
    node 1
    agent a1 1
    wait_for 20 all_on "$(current 1)" a1
    # Node 1 leased the delivery and died (SIGKILL) before it delivered: its
    # lease, as it left it in the registry, runs for 8 more seconds.
    kill -KILL "$(cat "$T/node1.pid")"
    rm -f "$T/node1.pid"
    ac -q --store "$T/store1" --push collect --agent "$(cat "$T/agents/a1/agent-id")"
    lease_end=$(($(date +%s) + 8))
    psql "$REG" -qc "UPDATE deliveries SET attempts = 1, lease_token = 42,
        lease_until = $lease_end WHERE state = 'queued'"
    node 2
    # not while the lease runs (however long node 2 took to start)
    while [ "$(date +%s)" -lt $((lease_end - 1)) ]; do
        [ -z "$(ls "$T"/handled.* 2>/dev/null)" ]
        sleep 0.2
    done
    done_once() { [ "$(psql "$REG" -tAc "SELECT count(*) FROM deliveries WHERE state = 'delivered'")" -eq 1 ]; }
    wait_for 30 done_once
    sleep 1.5
    [ "$(ls "$T"/handled.* | wc -l)" -eq 1 ]
}

@test "--migrate-registry copies agents and queued commands to PostgreSQL and back, counts checked" {
    AUTHCERT_STORE=$T/store1 ac -q -c "${PW[@]}"
    tp=$(current 1)
    "$BIN/fakefleet" "$T/reg.db" agent 2000 "$tp" 500 -
    ac -q --registry "$T/reg.db" --push restart --all
    ac -q --registry "$T/reg.db" --push run --agent agent-1 --agent agent-2 --args '{"x":"tab\there"}'

    run --separate-stderr ac --migrate-registry "$T/reg.db" "$REG"
    [ "$status" -eq 0 ]
    [[ "$output" == "copied 2500 agents, 2 queued commands (2502 deliveries), 0 enrollment tokens, 0 pending enrollments; counts verified" ]]
    # Read back with tools nobody here wrote: the rows are the same.
    q="SELECT id, agent_id, hostname, port, 'tp:' || thumbprint, first_seen, last_seen FROM agents ORDER BY id"
    diff <(sqlite3 -csv "$T/reg.db" "$q") <(psql "$REG" -tA --csv -c "$q")
    q="SELECT id, command_id, agent, attempts, next_attempt_at FROM deliveries ORDER BY id"
    diff <(sqlite3 -csv "$T/reg.db" "$q") <(psql "$REG" -tA --csv -c "$q")
    [ "$(psql "$REG" -tAc "SELECT args FROM commands WHERE command = 'run'")" = '{"x":"tab\there"}' ]
    # The copy is a working registry: -l and --agents stream from it.
    [ "$(ac --store "$T/store1" --registry "$REG" -l - | wc -l)" -eq 501 ]
    [ "$(ac --store "$T/store1" --registry "$REG" --agents --json | jq length)" -eq 2500 ]
    # New commands do not collide with the copied ids.
    ac -q --registry "$REG" --push ping --agent agent-3

    # Into a registry that is not empty: refused, nothing changed.
    run --separate-stderr ac --migrate-registry "$T/reg.db" "$REG"
    [ "$status" -eq 10 ]
    [[ "$stderr" == *"already has agents or commands (nothing was changed)" ]]
    [ "$(psql "$REG" -tAc 'SELECT count(*) FROM agents')" -eq 2500 ]

    # And back to SQLite.
    run --separate-stderr ac --migrate-registry "$REG" "sqlite:$T/back.db"
    [ "$status" -eq 0 ]
    [[ "$output" == "copied 2500 agents, 3 queued commands (2503 deliveries), 0 enrollment tokens, 0 pending enrollments; counts verified" ]]
    [ "$(ac --store "$T/store1" --registry "$T/back.db" -l - | wc -l)" -eq 501 ]
}

@test "a check-in replayed to the second node is refused there; the agent's own next one is served by either" {
    two_stores
    node 1
    node 2
    sim="$BIN/agentsim"
    "$sim" enroll "$URL1" "$T/ca.pem" "$T/sim.json" sim-a "$(jq -r .token "$T/token.json")" >/dev/null
    body="{\"agent_id\":\"sim-a\",\"hostname\":\"h\",\"port\":0,\"thumbprint\":\"$(current 1)\"}"
    c=$(date +%s%6N)
    authz="$("$sim" sign "$T/sim.json" POST /v2/checkin "$c" "$body")"
    post() { # URL: the captured request, as is
        curl -s --cacert "$T/ca.pem" -o "$T/answer" -w '%{http_code}' -X POST "$1/v2/checkin" \
            -H 'Content-Type: application/json' -H "Authorization: $authz" -d "$body"
    }
    [ "$(post "$URL1")" = 200 ]
    # once node 1's writer has put the counter in the registry every node sees it
    stored() { [ "$(psql "$REG" -tAc "SELECT mac_counter >= $c FROM agents WHERE agent_id = 'sim-a'")" = t ]; }
    wait_for 10 stored
    [ "$(post "$URL2")" = 401 ]
    grep -q '"code":"replay"' "$T/answer"
    [ "$(post "$URL1")" = 401 ]
    # control: the agent's next check-in, to the other node, is served
    out="$("$sim" post "$URL2" "$T/ca.pem" "$T/sim.json" /v2/checkin "$body")"
    [[ "$out" == "200 "* ]]
}
