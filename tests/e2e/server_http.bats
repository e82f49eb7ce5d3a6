#!/usr/bin/env bats
# authcertd over real HTTP on 127.0.0.1 (random port): endpoints, check-in
# states, the registry file, refusals, a replacement without restart, pushes
# to a fake agent, and a clean stop. Stores are made with the store API
# (build/bin/mkstore); tokens are checked with build/bin/jws_helper.

setup() {
    BIN="${AUTHCERT_BIN:?}"
    mkdir -p "${AUTHCERT_TEST_TMP:-/tmp}"
    T="$(mktemp -d "${AUTHCERT_TEST_TMP:-/tmp}/server_http.XXXXXX")"
    OLD="$("$BIN/mkstore" "$T/store" new p256)"
    CUR="$("$BIN/mkstore" "$T/store" new p256)"
    "$BIN/mkstore" "$T/store" der "$OLD" "$T/old.der"
    "$BIN/mkstore" "$T/store" der "$CUR" "$T/cur.der"
    AGENT=5f0c2a1e-aaaa-4000-8000-000000000001
}

teardown() {
    if [ -n "${PID:-}" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID"; fi
    if [ -n "${FAKE:-}" ] && kill -0 "$FAKE" 2>/dev/null; then kill -KILL "$FAKE"; fi
    [ -n "${KEEP:-}" ] && cp "$T/log" /tmp/last.log; rm -rf "$T"
}

start() {
    "$BIN/authcertd" --store "$T/store" --registry "$T/reg.db" --listen 127.0.0.1:0 \
        --port-file "$T/port" --server-id test-server "$@" 2>"$T/log" &
    PID=$!
    for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
    PORT="$(cat "$T/port")"
    URL="http://127.0.0.1:$PORT"
}

checkin() { # THUMBPRINT [RESULTS_JSON]
    curl -s -H 'Content-Type: application/json' -X POST "$URL/v1/checkin" \
        -d "{\"agent_id\":\"$AGENT\",\"hostname\":\"web-17\",\"port\":${APORT:-0},\"version\":\"0.1.0\",\"thumbprint\":\"$1\"${2:+,\"results\":$2}}"
}

code() { # METHOD PATH [curl args...]
    local m="$1" p="$2"; shift 2
    curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$URL$p" "$@"
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
    ! echo "$output" | grep -v '^#' | grep -Evq '^[a-z_]+(\{[a-z_]+="[a-z_]+"\})? -?[0-9]+$'
}

@test "a new agent on the current certificate is recorded in the registry" {
    start
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'd["state"]')" = current ]
    [ "$(echo "$output" | jget 'd["current_thumbprint"]')" = "$CUR" ]
    [ "$(echo "$output" | jget 'd["interval"]')" = 60 ]
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 0 ]
    sleep 0.3 # the writer's batch
    run sqlite3 "$T/reg.db" "SELECT agent_id, hostname, address, port, thumbprint, version FROM agents"
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
    sleep 0.3
    "$BIN/regenqueue" "$T/reg.db" "$AGENT" ping 2>/dev/null || true # not registered yet
    run checkin "$LEAKED"
    [ "$(echo "$output" | jget 'd["state"]')" = mismatched ]
    [ "$(echo "$output" | jget 'd["reason"]')" = revoked ]
    [ "$(echo "$output" | jget 'd["current_thumbprint"]')" = "$CUR" ]
    sleep 0.3
    "$BIN/regenqueue" "$T/reg.db" "$AGENT" ping
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
    sleep 0.3
    cid="$("$BIN/regenqueue" "$T/reg.db" "$AGENT" run '{"script":"x"}')"
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 1 ]
    run "$BIN/jws_helper" verify "$T/cur.der" "$AGENT" "$(echo "$output" | jget 'd["commands"][0]')"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jget 'd["cmd"]')" = run ]
    [ "$(echo "$output" | jget 'd["args"]["script"]')" = x ]
    did="$(echo "$output" | jget 'd["did"]')"
    # another agent cannot close it
    run curl -s -H 'Content-Type: application/json' -X POST "$URL/v1/result" \
        -d "{\"agent_id\":\"other\",\"delivery\":$did,\"status\":\"ok\"}"
    [ "$(echo "$output" | jget 'd["recorded"]')" = False ]
    run checkin "$CUR" "[{\"delivery\":$did,\"status\":\"ok\",\"exit\":0,\"output\":\"done\"}]"
    [ "$(echo "$output" | jget 'len(d["commands"])')" = 0 ]
    run sqlite3 "$T/reg.db" "SELECT state, result FROM deliveries WHERE command_id = $cid"
    [ "$output" = 'delivered|{"status":"ok","exit":0,"output":"done"}' ]
}

@test "malformed, oversized, duplicate-key bodies; wrong method, type, path" {
    start
    [ "$(code POST /v1/checkin -H 'Content-Type: application/json' -d '{"agent_id":')" = 400 ]
    grep -q '"error"' "$T/body"
    [ "$(code POST /v1/checkin -H 'Content-Type: application/json' -d '[1]')" = 400 ]
    [ "$(code POST /v1/checkin -H 'Content-Type: application/json' \
        -d "{\"agent_id\":\"a\",\"agent_id\":\"b\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"$CUR\"}")" = 400 ]
    grep -q duplicate "$T/body"
    [ "$(code POST /v1/checkin -H 'Content-Type: application/json' \
        -d "{\"agent_id\":\"a b\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"$CUR\"}")" = 400 ]
    [ "$(code POST /v1/checkin -H 'Content-Type: application/json' \
        -d "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":70000,\"thumbprint\":\"$CUR\"}")" = 400 ]
    [ "$(code POST /v1/checkin -H 'Content-Type: application/json' \
        -d "{\"agent_id\":\"a\",\"hostname\":\"h\",\"port\":1,\"thumbprint\":\"XYZ\"}")" = 400 ]
    head -c 17000 /dev/zero | tr '\0' ' ' >"$T/big"
    [ "$(code POST /v1/checkin -H 'Content-Type: application/json' --data-binary @"$T/big")" = 413 ]
    [ "$(code POST /v1/checkin -H 'Content-Type: application/json' \
        -H 'Transfer-Encoding: chunked' --data-binary @"$T/big")" = 413 ]
    [ "$(code POST /v1/checkin -H 'Content-Type: text/plain' -d '{}')" = 415 ]
    [ "$(code GET /v1/checkin)" = 405 ]
    [ "$(code POST /healthz)" = 405 ]
    [ "$(code GET /nowhere)" = 404 ]
    sleep 0.3
    run sqlite3 "$T/reg.db" "SELECT count(*) FROM agents"
    [ "$output" = 0 ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_refusals_total{reason="too_large"} 2'* ]]
    [[ "$output" == *'authcert_refusals_total{reason="bad_json"} 3'* ]]
}

@test "a replacement is seen without a restart" {
    start
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'd["state"]')" = current ]
    NEW="$("$BIN/mkstore" "$T/store" new p256)"
    sleep 1.1 # the store is looked at at most once a second
    run checkin "$CUR"
    [ "$(echo "$output" | jget 'd["state"]')" = expired ]
    [ "$(echo "$output" | jget 'd["current_thumbprint"]')" = "$NEW" ]
    grep -q "certificate replaced: current $NEW" "$T/log"
}

@test "commands are pushed to the agent's listener, update-key first when expired" {
    APORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    python3 - "$APORT" "$T/pushed" <<'PY' &
import http.server, sys
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(out, "a") as f:
            f.write(self.headers["Content-Type"] + " " + body.decode() + "\n")
        ans = b'{"agent_id":"x","jti":"y","status":"ok","exit":0,"output":"pong"}'
        self.send_response(200); self.send_header("Content-Length", str(len(ans))); self.end_headers()
        self.wfile.write(ans)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
    FAKE=$!
    start
    checkin "$OLD" >/dev/null # registered, on the old certificate
    sleep 0.3
    cid="$("$BIN/regenqueue" "$T/reg.db" "$AGENT" ping)"
    for _ in $(seq 60); do
        [ "$(sqlite3 "$T/reg.db" "SELECT state FROM deliveries WHERE command_id = $cid")" = delivered ] && break
        sleep 0.1
    done
    run sqlite3 "$T/reg.db" "SELECT state, result FROM deliveries WHERE command_id = $cid"
    [ "$output" = 'delivered|{"status":"ok","exit":0,"output":"pong"}' ]
    [ "$(wc -l <"$T/pushed")" -eq 2 ]
    first="$(sed -n 1p "$T/pushed")"; second="$(sed -n 2p "$T/pushed")"
    [[ "$first" == "application/jwt "* ]]
    run "$BIN/jws_helper" verify "$T/old.der" "$AGENT" "${first#application/jwt }"
    [ "$(echo "$output" | jget 'd["cmd"]')" = update-key ]
    run "$BIN/jws_helper" verify "$T/old.der" "$AGENT" "${second#application/jwt }"
    [ "$(echo "$output" | jget 'd["cmd"]')" = ping ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_pushes_total{result="ok"} 1'* ]]
}

@test "an agent that does not answer is retried later, the delivery stays queued" {
    APORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    start --push-timeout 1
    checkin "$CUR" >/dev/null
    sleep 0.3
    cid="$("$BIN/regenqueue" "$T/reg.db" "$AGENT" ping)"
    for _ in $(seq 40); do
        [ "$(sqlite3 "$T/reg.db" "SELECT attempts FROM deliveries WHERE command_id = $cid")" = 1 ] &&
            [ "$(sqlite3 "$T/reg.db" "SELECT lease_until FROM deliveries WHERE command_id = $cid")" = 0 ] && break
        sleep 0.1
    done
    run sqlite3 "$T/reg.db" "SELECT state, attempts, lease_until, next_attempt_at > strftime('%s','now') FROM deliveries WHERE command_id = $cid"
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
    [ "$(sqlite3 "$T/reg.db" "SELECT count(*) FROM agents")" = 1 ]
    run "$BIN/authcertd" --store "$T/store" --registry "$T/reg.db"
    [ "$status" -eq 2 ]
    run "$BIN/authcertd" --store "$T/none" --registry "$T/reg.db" --listen 127.0.0.1:0
    [ "$status" -eq 1 ]
    [[ "$output" == *"store $T/none"* ]]
    printf 'threads = 0\n' >"$T/conf"
    run "$BIN/authcertd" --config "$T/conf" --store "$T/store" --registry "$T/reg.db" --listen 127.0.0.1:0
    [ "$status" -eq 2 ]
    [[ "$output" == *"conf:1: threads must be a number"* ]]
}
