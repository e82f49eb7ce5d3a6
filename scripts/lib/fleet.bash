# A fleet on loopback: one authcertd and any number of authcert-agents, each
# on a random free port, all under one state folder. Sourced by scripts/demo
# and tests/e2e/fleet.bats so that both drive the system the same way.
#
# Needs: BIN (the folder with authcert, authcertd, authcert-agent) and
# FLEET (an empty folder). Sets: URL (the server, https://), FLEET_CA and
# FLEET_PIN (its certificate and key pin), AUTHCERT_STORE and
# AUTHCERT_REGISTRY (so `authcert` finds both), PW (password options).

fleet_init() {
    export AUTHCERT_STORE=$FLEET/store
    # The embedded SQLite file, or a shared one (FLEET_REGISTRY: a
    # postgresql:// URI) as several nodes would use.
    export AUTHCERT_REGISTRY=${FLEET_REGISTRY:-$FLEET/registry.db}
    mkdir -p "$FLEET/agents"
    # The password never goes on a command line: anyone can read argv in ps.
    (umask 077 && printf '%s\n' "${FLEET_PASSWORD:-correct horse battery staple 42}" \
        > "$FLEET/password")
    PW=(--password-file "$FLEET/password")
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# fleet_tls: the TLS certificate authcertd serves (made once, in the store,
# for 127.0.0.1 and localhost) and its pin, which agents are given.
fleet_tls() {
    [ -s "$AUTHCERT_STORE/tls/server.crt" ] ||
        "$BIN/authcert" -q --tls-cert new --dns localhost --ip 127.0.0.1 || return 1
    FLEET_CA=$AUTHCERT_STORE/tls/server.crt
    FLEET_PIN=$("$BIN/authcert" --tls-cert pins | awk '$2 == "current" { print $1 }')
}

# fleet_server [authcertd options...]: start authcertd (HTTPS), wait until it answers.
fleet_server() {
    rm -f "$FLEET/server.port"
    fleet_tls || { echo "no TLS certificate for authcertd" >&2; return 1; }
    "$BIN/authcertd" --store "$AUTHCERT_STORE" --registry "$AUTHCERT_REGISTRY" \
        --listen 127.0.0.1:0 --port-file "$FLEET/server.port" --server-id fleet-server \
        "$@" 2>>"$FLEET/authcertd.log" &
    echo $! > "$FLEET/authcertd.pid"
    wait_for 10 test -s "$FLEET/server.port" || { echo "authcertd did not start" >&2; return 1; }
    URL=https://127.0.0.1:$(cat "$FLEET/server.port")
    wait_for 10 curl -sf --cacert "$FLEET_CA" -o /dev/null "$URL/healthz"
    # The one file an agent needs to enroll: the server's URL, its pins and
    # a token (many uses: every agent of this fleet).
    "$BIN/authcert" -q --enroll-token new "$FLEET/token.json" --uses 10000 --expires 7d \
        --server "$URL"
}

# fleet_agent NAME [authcert-agent options...]: start an agent whose state
# folder is agents/NAME (give it a certificate file first: fleet_give_cert).
fleet_agent() {
    local name=$1 dir=$FLEET/agents/$1
    shift
    mkdir -p "$dir"
    rm -f "$dir/listen-port"
    "$BIN/authcert-agent" --server "$URL" --enroll-token-file "$FLEET/token.json" \
        --state-dir "$dir" --listen 127.0.0.1:0 \
        --interval "${FLEET_INTERVAL:-1}" "$@" 2>>"$dir/agent.log" &
    echo $! > "$dir/pid"
    wait_for 10 test -s "$dir/listen-port" || { echo "agent $name did not start" >&2; return 1; }
    wait_for 10 test -s "$dir/agent-id"
}

# fleet_give_cert NAME [authcert options]: the agent certificate file of the
# current certificate, copied into the agent's folder as an operator would.
fleet_give_cert() {
    local name=$1
    shift
    mkdir -p "$FLEET/agents/$name"
    "$BIN/authcert" -q "$@" -e "$FLEET/agents/$name"
}

fleet_agent_id() { cat "$FLEET/agents/$1/agent-id"; }

# The thumbprint of the certificate an agent holds, read with openssl.
fleet_agent_thumb() {
    openssl x509 -inform DER -in "$FLEET/agents/$1/authcert-server.der" -noout \
        -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

fleet_current() {
    "$BIN/authcert" --status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["current"])'
}

fleet_stop() { # NAME | server
    local pidfile
    if [ "$1" = server ]; then pidfile=$FLEET/authcertd.pid; else pidfile=$FLEET/agents/$1/pid; fi
    [ -s "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    wait_for 10 bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# Stop every process this fleet started (safe to call twice).
fleet_stop_all() {
    local d
    for d in "$FLEET"/agents/*/; do
        [ -d "$d" ] && fleet_stop "$(basename "$d")"
    done
    fleet_stop server
}

# The registry's view of an agent: current, expired or mismatched.
fleet_registry_state() {
    "$BIN/authcert" --agents --json | python3 -c '
import json, sys
want = sys.argv[1]
print(next((a["state"] for a in json.load(sys.stdin) if a["agent_id"] == want), "absent"))' \
        "$(fleet_agent_id "$1")"
}

# True when every named agent holds the current certificate, by its own file
# (read with openssl) and in the registry (its last check-in said so).
fleet_all_current() {
    local cur a
    cur=$(fleet_current)
    for a in "$@"; do
        [ "$(fleet_agent_thumb "$a")" = "$cur" ] || return 1
        [ "$(fleet_registry_state "$a")" = current ] || return 1
    done
}
