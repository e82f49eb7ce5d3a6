#!/usr/bin/env bats
# authcertd over real HTTP on 127.0.0.1 (random port): endpoints, check-in
# states, the registry file, refusals, a replacement without restart, pushes
# to a fake agent, and a clean stop. Stores are made with the store API
# (build/bin/mkstore); tokens are checked with build/bin/jws_helper. The
# registry is SQLite, or PostgreSQL in CTest's e2e/server_http_pg
# (registry.bash).

load registry

setup() {
    BIN="${AUTHCERT_BIN:?}"
    mkdir -p "${AUTHCERT_TEST_TMP:-/tmp}"
    T="$(mktemp -d "${AUTHCERT_TEST_TMP:-/tmp}/server_http.XXXXXX")"
    reg_setup "$T"
    OLD="$("$BIN/mkstore" "$T/store" new p256)"
    CUR="$("$BIN/mkstore" "$T/store" new p256)"
    "$BIN/mkstore" "$T/store" der "$OLD" "$T/old.der"
    "$BIN/mkstore" "$T/store" der "$CUR" "$T/cur.der"
    AGENT=5f0c2a1e-aaaa-4000-8000-000000000001
    # authcertd's TLS certificate, in the store (curl trusts it: $CA).
    "$BIN/authcert" --store "$T/store" -q --tls-cert new --dns localhost --ip 127.0.0.1
    CA="$T/store/tls/server.crt"
    mkdir -p "$T/sim" "$T/fake"
}

# enroll ID: the simulated agent ID (tests/tools/agentsim.c: its own key,
# the real enrollment proof and MACs) enrolled with a token, once.
enroll() {
    [ -s "$T/sim/$1.json" ] && return 0
    if [ -z "${TOKEN:-}" ]; then
        TOKEN="$("$BIN/authcert" --store "$T/store" --registry "$REG" --enroll-token new \
            --uses 1000 --server "$URL" | jq -r .token)"
    fi
    "$BIN/agentsim" enroll "$URL" "$CA" "$T/sim/$1.json" "$1" "$TOKEN" >"$T/sim/$1.enroll" ||
        { cat "$T/sim/$1.enroll" >&2; return 1; }
}

# post ID PATH BODY: a signed POST as agent ID; prints the answer's body
# (the status in $T/code).
post() {
    local out
    enroll "$1" || return 1
    out="$("$BIN/agentsim" post "$URL" "$CA" "$T/sim/$1.json" "$2" "$3")"
    echo "${out%% *}" >"$T/code"
    printf '%s\n' "${out#* }"
}

# fake_key PREFIX VAR: a P-256 key and self-signed certificate (openssl) in
# PREFIX.key and PREFIX.crt; VAR gets the key's pin.
fake_key() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=fake-agent -keyout "$1.key" -out "$1.crt" 2>/dev/null
    printf -v "$2" 'sha256//%s' "$(openssl x509 -in "$1.crt" -pubkey -noout |
        openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64)"
}

curl() { command curl --cacert "$CA" "$@"; }

teardown() {
    if [ -n "${PID:-}" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID"; fi
    if [ -n "${FAKE:-}" ] && kill -0 "$FAKE" 2>/dev/null; then kill -KILL "$FAKE"; fi
    for p in ${AGENTS:-}; do kill -0 "$p" 2>/dev/null && kill -KILL "$p"; done
    reg_teardown
    [ -n "${KEEP:-}" ] && cp "$T/log" /tmp/last.log; rm -rf "$T"
}

start() {
    "$BIN/authcertd" --store "$T/store" --registry "$REG" --listen 127.0.0.1:0 \
        --port-file "$T/port" --server-id test-server "$@" 2>"$T/log" &
    PID=$!
    for _ in $(seq $((100 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ -s "$T/port" ] && break; sleep 0.05; done
    PORT="$(cat "$T/port")"
    URL="https://127.0.0.1:$PORT"
}

checkin() { # THUMBPRINT [RESULTS_JSON]: a signed check-in as $AGENT
    post "$AGENT" /v2/checkin \
        "{\"agent_id\":\"$AGENT\",\"hostname\":\"web-17\",\"port\":${APORT:-0},\"version\":\"0.1.0\",\"thumbprint\":\"$1\"${2:+,\"results\":$2}}"
}

code() { # METHOD PATH [curl args...]
    local m="$1" p="$2"; shift 2
    curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$URL$p" "$@"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# fakes ID...: a push listener (fake_listeners.py) for each agent ID, on a
# free port each ($FPORTS, in the same order), serving TLS with the agent's
# own key (so authcertd's pin matches) and MACing its answers with the
# agent's MAC key; FAKE_WRONG_KEY=1: with another key instead.
fakes() {
    local id p mk
    FPORTS=""
    for id in "$@"; do
        enroll "$id"
        p="$(free_port)"
        FPORTS="$FPORTS $p"
        if [ -n "${FAKE_WRONG_KEY:-}" ]; then
            fake_key "$T/fake/$p" _
        else
            cp "$T/sim/$id.json.key" "$T/fake/$p.key"
            openssl req -new -x509 -key "$T/fake/$p.key" -subj /CN=fake-agent -days 2 \
                -out "$T/fake/$p.crt" 2>/dev/null
        fi
        mk="$("$BIN/agentsim" mackey "$T/sim/$id.json")"
        echo "$id ${mk#* } ${mk%% *} test-server" >"$T/fake/$p.mac"
    done
    python3 "$AUTHCERT_SRC/tests/e2e/fake_listeners.py" "$T/fake" $FPORTS &
    FAKE=$!
    for p in $FPORTS; do wait_port "$p"; done
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s, stretched).
wait_port() {
    for _ in $(seq $((200 * ${AUTHCERT_TEST_SLOWER:-1}))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# registered [AGENT_ID]: until the writer's batch has recorded a check-in of
# the agent (enrollment made its row with agentsim's hostname).
registered() {
    wait_for 5 "SELECT count(*) FROM agents WHERE agent_id = '${1:-$AGENT}' AND hostname <> 'agentsim'" 1
}

checkin_as() { # AGENT_ID PORT THUMBPRINT [RESULTS_JSON]
    post "$1" /v2/checkin \
        "{\"agent_id\":\"$1\",\"hostname\":\"h\",\"port\":$2,\"thumbprint\":\"$3\"${4:+,\"results\":$4}}"
}

q() { reg_q "$1"; }

# verify_es256 CERT.der TOKEN: check an ES256 JWS with the openssl tool (any
# audience, "*" too) and print its claims
verify_es256() {
    openssl x509 -inform DER -in "$1" -pubkey -noout >"$T/pub.pem"
    python3 - "$2" "$T" <<'PY' || return 1
import base64, json, sys
tok, d = sys.argv[1], sys.argv[2]
b = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
h, p, s = tok.split(".")
assert json.loads(b(h))["alg"] == "ES256"
sig = b(s); r, t = sig[:32].lstrip(b"\0"), sig[32:].lstrip(b"\0")
enc = lambda x: b"\x02" + bytes([len(x) + (x[0] >= 0x80)]) + (b"\0" if x[0] >= 0x80 else b"") + x
body = enc(r) + enc(t)
open(d + "/sig.der", "wb").write(b"\x30" + bytes([len(body)]) + body)
open(d + "/signed", "w").write(h + "." + p)
open(d + "/claims", "wb").write(b(p))
PY
    openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.der" "$T/signed" >/dev/null &&
        cat "$T/claims"
}

# wait_for SECONDS SQL WANT
wait_for() {
    for _ in $(seq $(( $1 * 10 ))); do [ "$(q "$2")" = "$3" ] && return 0; sleep 0.1; done
    echo "waited $1 s for [$2] = [$3], got [$(q "$2")]" >&2
    return 1
}

jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

@test "healthz answers ok, metrics are Prometheus text" {
    start
    run curl -s "$URL/healthz"
    [ "$output" = "ok" ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'# TYPE authcert_agents gauge'* ]]
    [[ "$output" == *'authcert_agents{state="current"} 0'* ]]
    [[ "$output" == *'authcert_checkins_total 0'* ]]
    [[ "$output" == *'authcert_pushes_total{result="ok"} 0'* ]]
    [[ "$output" == *'authcert_refusals_total{reason="bad_json"} 0'* ]]
    echo "$output" | grep -Eq '^authcert_current_certificate_expiry_seconds [0-9]{8,9}$'
    # every sample line is NAME{labels} VALUE
    ! echo "$output" | grep -v '^#' | grep -Evq '^[a-z_]+(\{[a-z_]+="[a-z0-9_]+"\})? -?[0-9]+$'
}

@test "a new agent on the current certificate is recorded in the registry" {
    start
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'd["state"]')" = current ]
    [ "$(echo "$output" | jget 'd["current_thumbprint"]')" = "$CUR" ]
    [ "$(echo "$output" | jget 'd["interval"]')" = 60 ]
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 0 ]
    registered # the writer's batch
    run q "SELECT agent_id, hostname, address, port, thumbprint, version FROM agents"
    [ "$output" = "$AGENT|web-17|127.0.0.1|0|$CUR|0.1.0" ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_agents{state="current"} 1'* ]]
    [[ "$output" == *'authcert_checkins_total 1'* ]]
}

@test "an agent on an expired certificate gets update-key signed with the old key" {
    start --interval 30
    run checkin "$OLD"
    [ "$(echo "$output" | jget 'd["state"]')" = expired ]
    [ "$(echo "$output" | jget 'd["interval"]')" = 30 ]
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 1 ]
    tok="$(echo "$output" | jget 'd["commands"][0]')"
    run "$BIN/jws_helper" verify "$T/old.der" "$AGENT" "$tok"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jget 'd["cmd"]')" = update-key ]
    [ "$(echo "$output" | jget 'd["iss"]')" = test-server ]
    [ "$(echo "$output" | jget 'd["args"]["thumbprint"]')" = "$CUR" ]
    # the certificate it carries is byte for byte the current one
    echo "$output" | jget 'd["args"]["certificate"]' | python3 -c '
import base64,sys; s=sys.stdin.read().strip(); sys.stdout.buffer.write(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))' >"$T/got.der"
    cmp "$T/got.der" "$T/cur.der"
    openssl x509 -inform DER -in "$T/got.der" -noout
    # and the current certificate cannot verify it
    run "$BIN/jws_helper" verify "$T/cur.der" "$AGENT" "$tok"
    [ "$status" -ne 0 ]
}

@test "revoked and unknown certificates are mismatched and nothing is signed" {
    LEAKED="$CUR"
    CUR="$("$BIN/mkstore" "$T/store" leak p256)"
    start
    "$BIN/regenqueue" "$REG" "$AGENT" ping 2>/dev/null || true # not registered yet
    run checkin "$LEAKED"
    [ "$(echo "$output" | jget 'd["state"]')" = mismatched ]
    [ "$(echo "$output" | jget 'd["reason"]')" = revoked ]
    [ "$(echo "$output" | jget 'd["current_thumbprint"]')" = "$CUR" ]
    registered
    "$BIN/regenqueue" "$REG" "$AGENT" ping
    run checkin "$LEAKED"
    [ "$(echo "$output" | jget 'd["reason"]')" = revoked ]
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 0 ]
    run checkin 0000000000000000000000000000000000000000000000000000000000000000
    [ "$(echo "$output" | jget 'd["reason"]')" = unknown ]
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 0 ]
    run checkin ""
    [ "$(echo "$output" | jget 'd["reason"]')" = unknown ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_signatures_total 0'* ]]
    [[ "$output" == *'authcert_agents{state="mismatched"} 1'* ]]
}

@test "queued commands come with the check-in, results are recorded once" {
    start
    checkin "$CUR" >/dev/null
    registered
    cid="$("$BIN/regenqueue" "$REG" "$AGENT" run '{"script":"x"}')"
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 1 ]
    run "$BIN/jws_helper" verify "$T/cur.der" "$AGENT" "$(echo "$output" | jget 'd["commands"][0]')"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jget 'd["cmd"]')" = run ]
    [ "$(echo "$output" | jget 'd["args"]["script"]')" = x ]
    did="$(echo "$output" | jget 'd["did"]')"
    # nobody closes it without being the agent: no credential (401), or
    # another enrolled agent (not its delivery: not recorded)
    [ "$(code POST /v2/result -H 'Content-Type: application/json' \
        -d "{\"agent_id\":\"$AGENT\",\"delivery\":$did,\"status\":\"ok\"}")" = 401 ]
    run post other /v2/result "{\"agent_id\":\"other\",\"delivery\":$did,\"status\":\"ok\"}"
    [ "$(echo "$output" | jget 'd["recorded"]')" = False ]
    [ "$(q "SELECT state FROM deliveries WHERE command_id = $cid")" = queued ]
    run checkin "$CUR" "[{\"delivery\":$did,\"status\":\"ok\",\"exit\":0,\"output\":\"done\"}]"
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 0 ]
    run q "SELECT state, result FROM deliveries WHERE command_id = $cid"
    [ "$output" = 'delivered|{"status":"ok","exit":0,"output":"done"}' ]
}

@test "malformed, oversized, duplicate-key bodies; wrong method, type, path; protocol v1" {
    start
    # signed by an enrolled agent, so that what refuses them is the parser
    bad() { post "$AGENT" /v2/checkin "$1" >"$T/body"; cat "$T/code"; }
    [ "$(bad '{"agent_id":')" = 400 ]
    grep -q '"error"' "$T/body"
    [ "$(bad '[1]')" = 400 ]
    [ "$(bad "{\"agent_id\":\"a\",\"agent_id\":\"b\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"$CUR\"}")" = 400 ]
    grep -q duplicate "$T/body"
    [ "$(bad "{\"agent_id\":\"a b\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"$CUR\"}")" = 400 ]
    [ "$(bad "{\"agent_id\":\"$AGENT\",\"hostname\":\"h\",\"port\":70000,\"thumbprint\":\"$CUR\"}")" = 400 ]
    [ "$(bad "{\"agent_id\":\"$AGENT\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"XYZ\"}")" = 400 ]
    # another agent's check-in under our credential
    [ "$(bad "{\"agent_id\":\"someone-else\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"$CUR\"}")" = 401 ]
    head -c 17000 /dev/zero | tr '\0' ' ' >"$T/big"
    # with a length, refused before the body is read: asked first (Expect), the
    # client gets the 413 instead of the go-ahead (without, a reset may overtake it)
    [ "$(code POST /v2/checkin -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
        --expect100-timeout 30 --data-binary @"$T/big")" = 413 ]
    [ "$(code POST /v2/checkin -H 'Content-Type: application/json' \
        -H 'Transfer-Encoding: chunked' --data-binary @"$T/big")" = 413 ]
    [ "$(code POST /v2/checkin -H 'Content-Type: text/plain' -d '{}')" = 415 ]
    [ "$(code GET /v2/checkin)" = 405 ]
    [ "$(code POST /healthz)" = 405 ]
    [ "$(code GET /nowhere)" = 404 ]
    # an agent of protocol v1 is told what to do
    [ "$(code POST /v1/checkin -H 'Content-Type: application/json' -d '{}')" = 410 ]
    grep -q '"code":"protocol_v1"' "$T/body"
    grep -q 'enroll' "$T/body"
    # a good check-in after them: once it is in, none of those went in before it
    AGENT=after-the-refusals checkin "$CUR" >/dev/null
    registered after-the-refusals
    [ "$(q "SELECT hostname FROM agents WHERE agent_id = '$AGENT'")" = agentsim ] # as enrolled
    [ "$(q "SELECT count(*) FROM agents WHERE agent_id NOT IN ('$AGENT', 'after-the-refusals')")" = 0 ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_refusals_total{reason="too_large"} 2'* ]]
    [[ "$output" == *'authcert_refusals_total{reason="bad_json"} 3'* ]]
    [[ "$output" == *'authcert_refusals_total{reason="protocol_v1"} 1'* ]]
}

@test "a replacement is seen without a restart" {
    start
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'd["state"]')" = current ]
    NEW="$("$BIN/mkstore" "$T/store" new p256)"
    # the store is looked at at most once a second
    for _ in $(seq $((40 * ${AUTHCERT_TEST_SLOWER:-1}))); do
        run checkin "$CUR"
        [ "$(echo "$output" | jget 'd["state"]')" = expired ] && break
        sleep 0.1
    done
    [ "$(echo "$output" | jget 'd["state"]')" = expired ]
    [ "$(echo "$output" | jget 'd["current_thumbprint"]')" = "$NEW" ]
    grep -q "certificate replaced: current $NEW" "$T/log"
}

@test "commands are pushed to the agent's listener, update-key first when expired" {
    start
    # The fake agent listens before its check-in tells the daemon (which
    # rolls over expired agents as soon as it knows them).
    fakes "$AGENT"
    APORT="${FPORTS# }"
    checkin "$OLD" >/dev/null # registered, on the old certificate
    registered
    cid="$("$BIN/regenqueue" "$REG" "$AGENT" ping)"
    for _ in $(seq 60); do
        [ "$(q "SELECT state FROM deliveries WHERE command_id = $cid")" = delivered ] && break
        sleep 0.1
    done
    run q "SELECT state, result FROM deliveries WHERE command_id = $cid"
    [ "$output" = 'delivered|{"status":"ok","exit":0,"output":"pong"}' ]
    [ "$(wc -l <"$T/fake/$APORT.log")" -eq 2 ]
    first="$(sed -n 1p "$T/fake/$APORT.log")"; second="$(sed -n 2p "$T/fake/$APORT.log")"
    [[ "$first" == "application/jwt "* ]]
    run "$BIN/jws_helper" verify "$T/old.der" "$AGENT" "${first#application/jwt }"
    [ "$(echo "$output" | jget 'd["cmd"]')" = update-key ]
    # the agent said ok to update-key: it holds the current certificate now,
    # so the command is signed with the current key and the registry knows
    run "$BIN/jws_helper" verify "$T/cur.der" "$AGENT" "${second#application/jwt }"
    [ "$(echo "$output" | jget 'd["cmd"]')" = ping ]
    [ "$(q "SELECT thumbprint FROM agents")" = "$CUR" ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_pushes_total{result="ok"} 1'* ]]
}

@test "an agent that does not answer is retried later, the delivery stays queued" {
    APORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    start --push-timeout 1
    checkin "$CUR" >/dev/null
    registered
    cid="$("$BIN/regenqueue" "$REG" "$AGENT" ping)"
    for _ in $(seq 40); do
        [ "$(q "SELECT attempts FROM deliveries WHERE command_id = $cid")" = 1 ] &&
            [ "$(q "SELECT lease_until FROM deliveries WHERE command_id = $cid")" = 0 ] && break
        sleep 0.1
    done
    run q "SELECT state, attempts, lease_until, CAST(next_attempt_at > $REG_NOW AS INTEGER) FROM deliveries WHERE command_id = $cid"
    [ "$output" = "queued|1|0|1" ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_pushes_total{result="retry"} 1'* ]]
}

@test "SIGTERM stops it cleanly with exit 0; bad options and stores exit non-zero" {
    start
    checkin "$CUR" >/dev/null
    kill -TERM "$PID"
    wait "$PID"
    grep -q "SIGTERM: stopping" "$T/log"
    grep -q "stopped" "$T/log"
    # the last check-in was flushed to the registry before the exit
    [ "$(q "SELECT count(*) FROM agents")" = 1 ]
    run "$BIN/authcertd" --store "$T/store" --registry "$REG"
    [ "$status" -eq 2 ]
    run "$BIN/authcertd" --store "$T/none" --registry "$REG" --listen 127.0.0.1:0
    [ "$status" -eq 1 ]
    [[ "$output" == *"store $T/none"* ]]
    printf 'threads = 0\n' >"$T/conf"
    run "$BIN/authcertd" --config "$T/conf" --store "$T/store" --registry "$REG" --listen 127.0.0.1:0
    [ "$status" -eq 2 ]
    [[ "$output" == *"conf:1: threads must be a number"* ]]
}

@test "a command offered at check-in is not pushed, and its result closes it" {
    start --push-timeout 1
    # No listener yet (port 0): the command can only go out with a check-in
    # (the push thread never leases it: the registry marks it check-in only).
    APORT=0
    checkin "$CUR" >/dev/null
    registered
    cid="$("$BIN/regenqueue" "$REG" "$AGENT" ping)"
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 1 ]
    tok="$(echo "$output" | jget 'd["commands"][0]')"
    did="$("$BIN/jws_helper" verify "$T/cur.der" "$AGENT" "$tok" | jget 'd["did"]')"
    # leased to the check-in: the listener comes up and is not pushed to
    fakes "$AGENT" # a push would reach it (its key, its MAC): the check below can fail
    APORT="${FPORTS# }"
    checkin "$CUR" >/dev/null # now the registry knows the listener
    sleep 3
    [ ! -s "$T/fake/$APORT.log" ]
    [ "$(q "SELECT state, CAST(lease_until > $REG_NOW AS INTEGER) FROM deliveries WHERE command_id = $cid")" = "queued|1" ]
    # a check-in inside the lease is not offered it a second time
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 0 ]
    run checkin "$CUR" "[{\"delivery\":$did,\"status\":\"ok\",\"exit\":0,\"output\":\"pong\"}]"
    [ "$(q "SELECT state, result FROM deliveries WHERE command_id = $cid")" = 'delivered|{"status":"ok","exit":0,"output":"pong"}' ]
    sleep 1.5
    [ ! -s "$T/fake/$APORT.log" ]
}

@test "a push in flight is not offered at check-in" {
    start --push-timeout 3
    fakes "$AGENT"
    APORT="${FPORTS# }"
    touch "$T/fake/stall"
    checkin "$CUR" >/dev/null
    registered
    cid="$("$BIN/regenqueue" "$REG" "$AGENT" ping)"
    for _ in $(seq 50); do [ -s "$T/fake/$APORT.log" ] && break; sleep 0.1; done
    grep -q '^held application/jwt ' "$T/fake/$APORT.log"
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 0 ]
    [ "$(q "SELECT attempts FROM deliveries WHERE command_id = $cid")" = 1 ]
    # once the push has failed (timeout), the check-in takes it at once
    rm "$T/fake/stall"
    wait_for 10 "SELECT lease_until FROM deliveries WHERE command_id = $cid" 0
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 1 ]
    [ "$(q "SELECT attempts FROM deliveries WHERE command_id = $cid")" = 2 ]
}

@test "a daemon killed mid-delivery loses nothing: delivered later, exactly once" {
    start --push-timeout 1
    fakes "$AGENT"
    APORT="${FPORTS# }"
    touch "$T/fake/stall"
    checkin "$CUR" >/dev/null
    registered
    cid="$("$BIN/regenqueue" "$REG" "$AGENT" ping)"
    for _ in $(seq 50); do [ -s "$T/fake/$APORT.log" ] && break; sleep 0.1; done
    grep -q '^held ' "$T/fake/$APORT.log"
    kill -KILL "$PID"; wait "$PID" 2>/dev/null || true
    [ "$(q "SELECT state, attempts, CAST(lease_until > 0 AS INTEGER) FROM deliveries WHERE command_id = $cid")" = "queued|1|1" ]
    rm "$T/fake/stall"
    rm -f "$T/port"
    start --push-timeout 1
    wait_for 20 "SELECT state FROM deliveries WHERE command_id = $cid" delivered
    sleep 2
    [ "$(wc -l <"$T/fake/answered")" -eq 1 ]
    [ "$(grep -c '^application/jwt ' "$T/fake/$APORT.log")" -eq 1 ]
    [ "$(q "SELECT attempts, result FROM deliveries WHERE command_id = $cid")" = '2|{"status":"ok","exit":0,"output":"pong"}' ]
}

@test "a broadcast is signed once per certificate for every agent" {
    start
    fakes agent-1 agent-2 agent-3 agent-4 agent-5
    i=0
    for p in $FPORTS; do i=$((i+1)); checkin_as "agent-$i" "$p" "$CUR" >/dev/null; done
    checkin_as "agent-quiet" 0 "$CUR" >/dev/null # no listener: gets it at check-in
    wait_for 5 "SELECT count(*) FROM agents WHERE hostname = 'h'" 6
    "$BIN/authcert" --registry "$REG" --store "$T/store" --push restart --all -q
    cid="$(q "SELECT max(id) FROM commands")"
    [ "$(q "SELECT broadcast FROM commands WHERE id = $cid")" = 1 ]
    wait_for 10 "SELECT count(*) FROM deliveries WHERE command_id = $cid AND state = 'delivered'" 5
    run checkin_as agent-quiet 0 "$CUR"
    tok="$(echo "$output" | jget 'd["commands"][0]')"
    # every agent got the very same token: aud "*", did the command id
    for p in $FPORTS; do [ "$(sed 's/^application\/jwt //' "$T/fake/$p.log")" = "$tok" ]; done
    ! verify_es256 "$T/old.der" "$tok" # the check can fail
    run verify_es256 "$T/cur.der" "$tok"
    [ "$(echo "$output" | jget 'd["aud"]')" = '*' ]
    [ "$(echo "$output" | jget 'd["did"]')" = "$cid" ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_signatures_total 1'* ]]
    # its result is matched on (agent, command id); another agent cannot close it
    run post agent-nobody /v2/result "{\"agent_id\":\"agent-nobody\",\"delivery\":$cid,\"status\":\"ok\"}"
    [ "$(echo "$output" | jget 'd["recorded"]')" = False ]
    run checkin_as agent-quiet 0 "$CUR" "[{\"delivery\":$cid,\"status\":\"ok\",\"exit\":0}]"
    [ "$(q "SELECT count(*) FROM deliveries WHERE command_id = $cid AND state = 'delivered'")" = 6 ]
}

@test "after authcert -c, agents with a listener are rolled over at once, not at their next check-in" {
    echo "correct horse battery staple 42" >"$T/pw"
    ST="$T/admin-store"
    "$BIN/authcert" -c --store "$ST" --password-file "$T/pw" -q
    "$BIN/authcert" -e "$T/first.der" --store "$ST" -q
    "$BIN/authcert" --store "$ST" -q --tls-cert new --ip 127.0.0.1
    CA="$ST/tls/server.crt"
    SPIN="$("$BIN/authcert" --store "$ST" --tls-cert pins | awk '$2 == "current" { print $1 }')"
    "$BIN/authcertd" --store "$ST" --registry "$REG" --listen 127.0.0.1:0 \
        --port-file "$T/port" --server-id test-server --interval 3600 --push-rate 2 2>"$T/log" &
    PID=$!
    for _ in $(seq $((100 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ -s "$T/port" ] && break; sleep 0.05; done
    URL="https://127.0.0.1:$(cat "$T/port")"
    "$BIN/authcert" --store "$ST" --registry "$REG" -q --enroll-token new "$T/token.json" \
        --uses 3 --server "$URL"
    AGENTS=""
    for i in 1 2 3; do
        mkdir -p "$T/a$i"
        cp "$T/first.der" "$T/a$i/authcert-server.der"
        "$BIN/authcert-agent" --enroll-token-file "$T/token.json" --state-dir "$T/a$i" \
            --listen 127.0.0.1:0 2>"$T/a$i.log" &
        AGENTS="$AGENTS $!"
    done
    wait_for 10 "SELECT count(*) FROM agents WHERE port != 0" 3
    old="$(q "SELECT DISTINCT thumbprint FROM agents")"
    "$BIN/authcert" -c --store "$ST" --password-file "$T/pw" -q
    "$BIN/authcert" -e "$T/second.der" --store "$ST" -q
    new="$(openssl x509 -inform DER -in "$T/second.der" -outform DER | sha256sum | cut -c1-64)"
    [ "$new" != "$old" ]
    # well inside the 3600 s interval the agents told
    wait_for 15 "SELECT count(*) FROM agents WHERE thumbprint = '$new'" 3
    for i in 1 2 3; do cmp "$T/a$i/authcert-server.der" "$T/second.der"; done
    grep -q "roll-over: update-key queued for 3 agent(s) on expired $old" "$T/log"
    [ "$(q "SELECT count(*) FROM deliveries d JOIN commands c ON c.id = d.command_id WHERE c.command = 'update-key' AND d.state = 'delivered'")" = 3 ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_agents{state="current"} 3'* ]]
    [[ "$output" == *'authcert_rollover_queued_total 3'* ]]
    # idempotent: a SIGHUP (the store looked at again) or a restart queue no second one
    kill -HUP "$PID"; sleep 1
    [ "$(q "SELECT count(*) FROM deliveries d JOIN commands c ON c.id = d.command_id WHERE c.command = 'update-key'")" = 3 ]
}

@test "a listener that answers with another key than the agent enrolled gets nothing; the check-in takes the command" {
    start
    FAKE_WRONG_KEY=1 fakes "$AGENT" # it answers with a key of its own
    APORT="${FPORTS# }"
    checkin "$CUR" >/dev/null
    registered
    [ "$(q "SELECT key_pin FROM agents")" = "$("$BIN/agentsim" pin "$T/sim/$AGENT.json")" ]
    cid="$("$BIN/regenqueue" "$REG" "$AGENT" ping)"
    wait_for 10 "SELECT CAST(next_attempt_at > $REG_NOW + 86400 AS INTEGER) FROM deliveries WHERE command_id = $cid" 1
    [ ! -s "$T/fake/$APORT.log" ] # not one byte of the command reached it
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_pushes_total{result="wrong_key"} 1'* ]]
    [[ "$output" == *'authcert_pushes_total{result="ok"} 0'* ]]
    # a second command: not pushed either, and not logged a second time
    cid2="$("$BIN/regenqueue" "$REG" "$AGENT" ping)"
    wait_for 10 "SELECT CAST(next_attempt_at > $REG_NOW + 86400 AS INTEGER) FROM deliveries WHERE command_id = $cid2" 1
    [ "$(grep -c "answered with another key" "$T/log")" = 1 ]
    # the agent's own check-in (TLS to authcertd, its MAC) takes both
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 2 ]
    [ ! -s "$T/fake/$APORT.log" ]
}

@test "a listener with the agent's key but answers without the agent's MAC: not recorded" {
    start --push-timeout 1
    fakes "$AGENT"
    APORT="${FPORTS# }"
    rm "$T/fake/$APORT.mac" # it answers, with the right TLS key, but cannot sign
    checkin "$CUR" >/dev/null
    registered
    cid="$("$BIN/regenqueue" "$REG" "$AGENT" ping)"
    for _ in $(seq 50); do [ -s "$T/fake/answered" ] && break; sleep 0.1; done
    wait_for 10 "SELECT CAST(lease_until = 0 AND attempts >= 1 AS INTEGER) FROM deliveries WHERE command_id = $cid" 1
    [ "$(q "SELECT state FROM deliveries WHERE command_id = $cid")" = queued ]
    grep -q "carries no valid Authcert-Mac" "$T/log"
}

@test "an agent without an enrolled key is never pushed to: its commands wait" {
    start
    fakes "$AGENT"
    APORT="${FPORTS# }"
    # a row of protocol v1 (no key bound), with a listener
    q "INSERT INTO agents (agent_id, hostname, address, port, thumbprint, version, first_seen, last_seen) VALUES ('v1-agent', 'old', '127.0.0.1', $APORT, '$CUR', '0.1.0', 1, 1)"
    cid="$("$BIN/regenqueue" "$REG" v1-agent ping)"
    wait_for 10 "SELECT CAST(next_attempt_at > $REG_NOW + 86400 AS INTEGER) FROM deliveries WHERE command_id = $cid" 1
    [ ! -s "$T/fake/$APORT.log" ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_pushes_total{result="no_key"} 1'* ]]
}
