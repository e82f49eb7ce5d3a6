#!/usr/bin/env bats
# Agents prove who they are (protocol v2, docs/protocol.md "Agent identity").
# The attacks of issue 13, each run against a real authcertd on loopback with
# nothing but what an attacker on the network has (agent ids, which travel
# and sit in world-readable files), each refused with the registry left as
# it was; beside each, the control that the real agent is served. Simulated
# agents are tests/tools/agentsim (the library's own proof and MAC); real
# agents are authcert-agent. The registry is SQLite, or PostgreSQL in
# CTest's e2e/identity_pg (registry.bash).

load harden
load registry

setup() {
    harden_setup identity
    reg_setup "$T"
    ac --store "$T/store" -q -c --password-file "$PWF"
    CUR="$(store_current "$T/store")"
}

teardown() {
    harden_teardown
    reg_teardown
}

sim() { "$BIN/agentsim" "$@"; }
q() { reg_q "$1"; }
# The agents table as one line: what must not change under an attack.
agents_digest() {
    q "SELECT agent_id, hostname, address, port, thumbprint, key_pin, key_epoch, mac_counter FROM agents ORDER BY agent_id" | sha256sum
}
# A check-in body of agent ID on thumbprint T (listener port P, default 0).
body() { echo "{\"agent_id\":\"$1\",\"hostname\":\"h-$1\",\"port\":${3:-0},\"version\":\"0.2.0\",\"thumbprint\":\"$2\"}"; }
# raw METHOD PATH BODY [AUTHORIZATION]: curl as an attacker; status in $T/code, body printed
raw() {
    command curl -s --cacert "$CA" -o "$T/raw" -w '%{http_code}' -X POST "$URL$1" \
        -H 'Content-Type: application/json' ${3:+-H "Authorization: $3"} -d "$2" >"$T/code"
    cat "$T/raw"
}
# wait_listening STATE_DIR: until the agent there has written its port
wait_listening() {
    for _ in $(seq $((100 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ -s "$1/listen-port" ] && return 0; sleep 0.05; done
    echo "no listen-port in $1" >&2
    return 1
}
wait_sql() { # SECONDS SQL WANT
    for _ in $(seq $(( $1 * 10 * ${AUTHCERT_TEST_SLOWER:-1} ))); do [ "$(q "$2")" = "$3" ] && return 0; sleep 0.1; done
    echo "waited for [$2] = [$3], got [$(q "$2")]" >&2
    return 1
}

@test "a forged check-in as an enrolled agent (its id, the current thumbprint, the attacker's port) changes nothing" {
    start_authcertd "$T/store" "$REG" "$T/d.log"
    checkin_once agent-a "$CUR" >/dev/null # the real agent-a
    wait_sql 5 "SELECT hostname FROM agents WHERE agent_id = 'agent-a'" h-agent-a
    before="$(agents_digest)"
    # no credential, a made-up one, another agent's MAC over this body
    raw /v2/checkin "$(body agent-a "$CUR" 6666)" >/dev/null
    [ "$(cat "$T/code")" = 401 ]
    raw /v2/checkin "$(body agent-a "$CUR" 6666)" \
        'AUTHCERT-V2 agent="agent-a", epoch=1, counter=1764700000000000, mac="GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU"' >/dev/null
    [ "$(cat "$T/code")" = 401 ]
    checkin_once agent-b "$CUR" >/dev/null
    authz="$(sim sign "$T/sim/agent-b.json" POST /v2/checkin "$(date +%s%6N)" "$(body agent-a "$CUR" 6666)")"
    authz="${authz/agent=\"agent-b\"/agent=\"agent-a\"}"
    raw /v2/checkin "$(body agent-a "$CUR" 6666)" "$authz" >/dev/null
    [ "$(cat "$T/code")" = 401 ]
    sleep 0.3 # anything written would be in the writer's next batch
    [ "$(q "SELECT port FROM agents WHERE agent_id = 'agent-a'")" = 0 ]
    [ "$(q "SELECT count(*) FROM agents WHERE agent_id = 'agent-a' AND port = 6666")" = 0 ]
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_refusals_total{reason="unauthenticated"} 3'* ]]
    # control: the real agent-a, signed, is served
    checkin_once agent-a "$CUR" >/dev/null
}

@test "a forged result for a guessed delivery id is refused; only the agent the delivery was leased to settles it" {
    start_authcertd "$T/store" "$REG" "$T/d.log" --interval 5
    checkin_once agent-a "$CUR" >/dev/null
    checkin_once agent-b "$CUR" >/dev/null
    wait_sql 5 "SELECT count(*) FROM agents WHERE hostname LIKE 'h-%'" 2
    ac --registry "$REG" --store "$T/store" -q --push deploy --agent agent-a
    # not leased yet: even agent-a's own result is not taken
    did="$(q "SELECT max(id) FROM deliveries")"
    out="$(sim post "$URL" "$CA" "$T/sim/agent-a.json" /v2/result "{\"agent_id\":\"agent-a\",\"delivery\":$did,\"status\":\"ok\"}")"
    [[ "$out" == *'"recorded":false'* ]]
    out="$(checkin_once agent-a "$CUR")" # leased to agent-a by its check-in
    [[ "$out" == *'"commands":["'* ]]
    # the attacker: no credential; another enrolled agent; a replayed counter
    raw /v2/result "{\"agent_id\":\"agent-a\",\"delivery\":$did,\"status\":\"ok\",\"output\":\"forged\"}" >/dev/null
    [ "$(cat "$T/code")" = 401 ]
    out="$(sim post "$URL" "$CA" "$T/sim/agent-b.json" /v2/result "{\"agent_id\":\"agent-b\",\"delivery\":$did,\"status\":\"ok\",\"output\":\"forged\"}")"
    [[ "$out" == *'"recorded":false'* ]]
    [ "$(q "SELECT state FROM deliveries WHERE id = $did")" = queued ]
    # control: agent-a's own result closes it
    out="$(sim post "$URL" "$CA" "$T/sim/agent-a.json" /v2/result "{\"agent_id\":\"agent-a\",\"delivery\":$did,\"status\":\"ok\",\"output\":\"real\"}")"
    [[ "$out" == 200* ]] && [[ "$out" == *'"recorded":true'* ]]
    [ "$(q "SELECT result FROM deliveries WHERE id = $did")" = '{"status":"ok","output":"real"}' ]
}

@test "a replayed check-in is refused (same node, and after the counter is in the registry)" {
    start_authcertd "$T/store" "$REG" "$T/d.log"
    checkin_once agent-a "$CUR" >/dev/null
    b="$(body agent-a "$CUR")"
    c="$(( $(date +%s%6N) + 1000 ))"
    authz="$(sim sign "$T/sim/agent-a.json" POST /v2/checkin "$c" "$b")"
    raw /v2/checkin "$b" "$authz" >/dev/null
    [ "$(cat "$T/code")" = 200 ]
    raw /v2/checkin "$b" "$authz" >"$T/again"
    [ "$(cat "$T/code")" = 401 ]
    grep -q '"code":"replay"' "$T/again"
    # after the writer's batch the registry holds the counter
    wait_sql 5 "SELECT CAST(mac_counter >= $c AS INTEGER) FROM agents WHERE agent_id = 'agent-a'" 1
    raw /v2/checkin "$b" "$authz" >/dev/null
    [ "$(cat "$T/code")" = 401 ]
    # a request older than five minutes, though never seen: refused too
    old="$(( $(date +%s%6N) - 600000000 ))"
    raw /v2/checkin "$b" "$(sim sign "$T/sim/agent-a.json" POST /v2/checkin "$old" "$b")" >"$T/old"
    [ "$(cat "$T/code")" = 401 ]
    grep -q '"code":"clock"' "$T/old"
}

@test "a check-in with a wrong thumbprint without the agent's key cannot put it on the repair list" {
    start_authcertd "$T/store" "$REG" "$T/d.log"
    checkin_once agent-a "$CUR" >/dev/null
    wait_sql 5 "SELECT thumbprint FROM agents WHERE agent_id = 'agent-a'" "$CUR"
    raw /v2/checkin "$(body agent-a 0000000000000000000000000000000000000000000000000000000000000000)" >/dev/null
    [ "$(cat "$T/code")" = 401 ]
    sleep 0.3
    [ "$(q "SELECT thumbprint FROM agents WHERE agent_id = 'agent-a'")" = "$CUR" ]
    [ "$(ac --registry "$REG" --store "$T/store" -l - | wc -l)" = 1 ] # the header only
}

@test "the agent id * and malformed ids never enroll" {
    start_authcertd "$T/store" "$REG" "$T/d.log"
    run sim enroll "$URL" "$CA" "$T/star.json" '*' "$TOKEN"
    [ "$status" -ne 0 ]
    [[ "$output" == 400* ]]
    [ "$(q "SELECT count(*) FROM agents")" = 0 ]
    # and the token was not used up by it
    [ "$(ac --registry "$REG" --store "$T/store" --enroll-token list --json | jq '.[0].uses')" = 0 ]
}

@test "a flood of new ids from one source is bounded: 429 with Retry-After, nothing registered" {
    start_authcertd "$T/store" "$REG" "$T/d.log" --enroll-rate 10
    n429=0
    t0=$SECONDS
    for i in $(seq 25); do
        out="$(sim enroll "$URL" "$CA" "$T/f$i.json" "flood-$i" - || true)"
        case "$out" in 429*) n429=$((n429 + 1)) ;; esac
    done
    # a burst of 10, then one more every 6 s (however slow this machine is)
    allowed=$((10 + (SECONDS - t0) / 6 + 1))
    echo "# $n429 of 25 refused with 429 in $((SECONDS - t0)) s (at most $allowed let through)" >&3
    [ $((25 - n429)) -le "$allowed" ]
    [ "$n429" -ge 1 ]
    [ "$(q "SELECT count(*) FROM agents")" = 0 ]
    # the 429's own headers (the bucket refills, 10 a minute: ask until one
    # is refused, each request spending from it)
    for i in $(seq 15); do
        code="$(command curl -s --cacert "$CA" -D "$T/headers" -o /dev/null -w '%{http_code}' \
            -X POST "$URL/v2/enroll" -H 'Content-Type: application/json' -d '{}')"
        [ "$code" = 429 ] && break
    done
    [ "$code" = 429 ]
    grep -qi '^retry-after: [0-9]' "$T/headers"
    run curl -s "$URL/metrics"
    [[ "$output" == *'authcert_refusals_total{reason="rate"}'* ]]
}

@test "enrollment by token: uses counted, a used-up, expired or revoked token refused, nothing changed" {
    start_authcertd "$T/store" "$REG" "$T/d.log"
    two="$(ac --registry "$REG" --store "$T/store" --enroll-token new --uses 2 | jq -r .token)"
    sim enroll "$URL" "$CA" "$T/1.json" tok-1 "$two" >/dev/null
    sim enroll "$URL" "$CA" "$T/2.json" tok-2 "$two" >/dev/null
    run sim enroll "$URL" "$CA" "$T/3.json" tok-3 "$two"
    [ "$status" -ne 0 ] && [[ "$output" == 403*"used up"* ]]
    # a secret that is not the token's: the same answer as an unknown token
    run sim enroll "$URL" "$CA" "$T/4.json" tok-4 "${two%.*}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    [ "$status" -ne 0 ] && [[ "$output" == 401*"unknown enrollment token"* ]]
    short="$(ac --registry "$REG" --store "$T/store" --enroll-token new --expires 1s | jq -r .token)"
    sleep 2
    run sim enroll "$URL" "$CA" "$T/5.json" tok-5 "$short"
    [ "$status" -ne 0 ] && [[ "$output" == 403*expired* ]]
    rev="$(ac --registry "$REG" --store "$T/store" --enroll-token new | jq -r .token)"
    ac --registry "$REG" --store "$T/store" -q --enroll-token revoke "${rev%%.*}"
    run sim enroll "$URL" "$CA" "$T/6.json" tok-6 "$rev"
    [ "$status" -ne 0 ] && [[ "$output" == 403*revoked* ]]
    # ids made by earlier builds could begin with '-': `--` ends the flags so revoke takes one
    old="$(ac --registry "$REG" --store "$T/store" --enroll-token new | jq -r .token)"
    q "UPDATE enroll_tokens SET id = '-' || id WHERE id = '${old%%.*}'" >/dev/null
    run ac --registry "$REG" --store "$T/store" -q --enroll-token revoke "-${old%%.*}"
    [ "$status" -eq 2 ]
    ac --registry "$REG" --store "$T/store" -q --enroll-token revoke -- "-${old%%.*}"
    run sim enroll "$URL" "$CA" "$T/7.json" tok-7 "-$old"
    [ "$status" -ne 0 ] && [[ "$output" == 403*revoked* ]]
    [ "$(q "SELECT count(*) FROM agents")" = 2 ]
    run ac --registry "$REG" --store "$T/store" --enroll-token list
    [[ "$output" == *"used up"*"2 used"* ]] || [[ "$output" == *"2 used"*"used up"* ]]
    [[ "$output" == *revoked* ]]
    # the registry holds no secret of any token
    ! q "SELECT * FROM enroll_tokens" | grep -q -- "${two#*.}"
}

@test "an id bound to a key is never re-bound: a clone is refused and shown; --forget lets a reinstalled agent enroll" {
    start_authcertd "$T/store" "$REG" "$T/d.log"
    sim enroll "$URL" "$CA" "$T/a.json" agent-a "$TOKEN" >/dev/null
    epoch1="$(q "SELECT key_epoch FROM agents WHERE agent_id = 'agent-a'")"
    pin1="$(sim pin "$T/a.json")"
    # a second machine with the same id and its own key
    run sim enroll "$URL" "$CA" "$T/clone.json" agent-a "$TOKEN"
    [ "$status" -ne 0 ] && [[ "$output" == 409*clone* ]]
    [ "$(q "SELECT key_pin FROM agents WHERE agent_id = 'agent-a'")" = "$pin1" ]
    [ "$(q "SELECT clone_pin FROM agents WHERE agent_id = 'agent-a'")" != "" ]
    grep -q "CLONE: agent id agent-a" "$T/d.log"
    ac --registry "$REG" --store "$T/store" --agents --json | jq -e '.[] | select(.agent_id == "agent-a") | .clone_pin != null and .clone_pin != ""'
    # the original is still served; the clone's MACs are not accepted
    out="$(sim post "$URL" "$CA" "$T/a.json" /v2/checkin "$(body agent-a "$CUR")")"
    [[ "$out" == 200* ]]
    # the same key again: its credential again (an agent that lost agent.mac)
    sim enroll "$URL" "$CA" "$T/a.json" agent-a "$TOKEN" >/dev/null
    [ "$(q "SELECT key_epoch FROM agents WHERE agent_id = 'agent-a'")" = "$epoch1" ]
    # reinstalled: --forget, then the new key enrolls with a token made for the id
    ac --registry "$REG" --store "$T/store" -q --forget agent-a
    for_a="$(ac --registry "$REG" --store "$T/store" --enroll-token new --agent agent-a | jq -r .token)"
    sim enroll "$URL" "$CA" "$T/clone.json" agent-a "$for_a" >/dev/null
    [ "$(q "SELECT key_pin FROM agents WHERE agent_id = 'agent-a'")" = "$(sim pin "$T/clone.json")" ]
    [ "$(q "SELECT key_epoch FROM agents WHERE agent_id = 'agent-a'")" -gt "$epoch1" ]
    # the old credential (its epoch) is dead
    out="$(sim post "$URL" "$CA" "$T/a.json" /v2/checkin "$(body agent-a "$CUR")" || true)"
    [[ "$out" == 401*'"code":"enroll"'* ]]
}

@test "an id known before enrollment enrolls only with a token made for it, or by approval" {
    start_authcertd "$T/store" "$REG" "$T/d.log"
    q "INSERT INTO agents (agent_id, hostname, address, port, thumbprint, version, first_seen, last_seen) VALUES ('old-agent', 'old', '10.0.0.9', 0, '$CUR', '0.1.0', 1, 1)"
    run sim enroll "$URL" "$CA" "$T/o.json" old-agent "$TOKEN"
    [ "$status" -ne 0 ] && [[ "$output" == 403*'"code":"known"'* ]]
    for_it="$(ac --registry "$REG" --store "$T/store" --enroll-token new --agent old-agent | jq -r .token)"
    # a token for one id does not enroll another
    run sim enroll "$URL" "$CA" "$T/x.json" someone-else "$for_it"
    [ "$status" -ne 0 ] && [[ "$output" == 403*"another agent"* ]]
    sim enroll "$URL" "$CA" "$T/o.json" old-agent "$for_it" >/dev/null
}

@test "approve mode: a request waits, pending, listed with its key's pin, until authcert --approve" {
    start_authcertd "$T/store" "$REG" "$T/d.log" --enroll approve
    run sim enroll "$URL" "$CA" "$T/p.json" pend-1 -
    [[ "$output" == 202*pending* ]]
    pin="$(sim pin "$T/p.json" 2>/dev/null || echo "sha256//$(openssl pkey -in "$T/p.json.key" -pubout -outform DER | openssl dgst -sha256 -binary | base64)")"
    run ac --registry "$REG" --store "$T/store" --enrollments
    [[ "$output" == *pend-1*"$pin"* ]]
    [ "$(q "SELECT count(*) FROM agents WHERE agent_id = 'pend-1' AND key_spki <> ''")" = 0 ]
    ac --registry "$REG" --store "$T/store" -q --approve pend-1
    sim enroll "$URL" "$CA" "$T/p.json" pend-1 - >/dev/null
    [ "$(q "SELECT key_pin FROM agents WHERE agent_id = 'pend-1'")" = "$pin" ]
    run ac --registry "$REG" --store "$T/store" --enrollments --json
    [ "$(jq length <<<"$output")" = 0 ]
    # a real agent waits the same way
    mkdir -p "$T/real"
    ac --store "$T/store" -q -e "$T/real"
    run "$BIN/authcert-agent" --once --state-dir "$T/real" --server "$URL" --server-pin "$PIN"
    [ "$status" -ne 0 ]
    [[ "$output" == *"pending"*"authcert --approve $(cat "$T/real/agent-id")"* ]]
}

@test "open mode: trust on first use, warned at every start; known ids still need a token" {
    start_authcertd "$T/store" "$REG" "$T/d.log" --enroll open
    grep -q "WARNING: --enroll open" "$T/d.log"
    sim enroll "$URL" "$CA" "$T/o.json" open-1 - >/dev/null
    run sim enroll "$URL" "$CA" "$T/o2.json" open-1 -
    [[ "$output" == 409* ]]
}

@test "a real agent: enrolls with its token file, rotates its key, and a token captured before a restart is refused after it" {
    start_authcertd "$T/store" "$REG" "$T/d.log"
    ac --store "$T/store" -q -e "$T/agent.der"
    mkdir -p "$T/a"
    cp "$T/agent.der" "$T/a/authcert-server.der"
    printf '#!/bin/sh\ncat >/dev/null\necho ran >>"%s"\n' "$T/ran" >"$T/h.sh"
    chmod 755 "$T/h.sh"
    run "$BIN/authcert-agent" --once --state-dir "$T/a" --enroll-token-file "$T/token.json"
    [ "$status" -eq 0 ]
    id="$(cat "$T/a/agent-id")"
    pin1="$(agent_pin "$T/a")"
    [ "$(q "SELECT key_pin FROM agents WHERE agent_id = '$id'")" = "$pin1" ]
    # rotation: signed by the current key, proved by both
    run "$BIN/authcert-agent" --rotate-key --state-dir "$T/a" --server "$URL" --server-pin "$PIN"
    [ "$status" -eq 0 ]
    pin2="$(agent_pin "$T/a")"
    [ "$pin2" != "$pin1" ]
    [ "$(q "SELECT key_pin FROM agents WHERE agent_id = '$id'")" = "$pin2" ]
    [ "$(q "SELECT key_epoch FROM agents WHERE agent_id = '$id'")" = 2 ]
    run "$BIN/authcert-agent" --once --state-dir "$T/a" --server "$URL" --server-pin "$PIN"
    [ "$status" -eq 0 ]
    # a command token accepted by a listener, then the agent restarted: the same token is refused
    "$BIN/authcert-agent" --state-dir "$T/a" --listen 127.0.0.1:0 --handler "$T/h.sh" 2>"$T/al.log" &
    APID=$!
    PIDS+=("$APID")
    wait_listening "$T/a"
    tok="$("$BIN/mktoken" --cert-pem "$T/store/keys/$CUR.pem" --aud "$id" --cmd deploy \
        --iss "$(jq -r .server_id "$T/a/agent.mac")")"
    push() { command curl -s -k --pinnedpubkey "$pin2" -o /dev/null -w '%{http_code}' \
        -H 'Content-Type: application/jwt' --data-binary "$tok" "https://127.0.0.1:$(cat "$T/a/listen-port")/v1/command"; }
    [ "$(push)" = 200 ]
    kill "$APID"; wait "$APID" 2>/dev/null || true
    rm -f "$T/a/listen-port"
    "$BIN/authcert-agent" --state-dir "$T/a" --listen 127.0.0.1:0 --handler "$T/h.sh" 2>>"$T/al.log" &
    PIDS+=("$!")
    wait_listening "$T/a"
    [ "$(push)" = 403 ]
    [ "$(wc -l <"$T/ran")" = 1 ]
    grep -q "replayed" "$T/al.log"
}

@test "the agent refuses a state folder, certificate file or handler that another user can write" {
    mkdir -p "$T/s"
    "$BIN/mktoken" --gen-store-pem "$T/k.pem" --export-der "$T/s/authcert-server.der" >/dev/null
    printf '#!/bin/sh\necho x\n' >"$T/h.sh"
    chmod 755 "$T/h.sh"
    # control: all ours, not writable by others: it starts
    chmod 700 "$T/s"
    run timeout 2 "$BIN/authcert-agent" --state-dir "$T/s" --listen 127.0.0.1:0 --handler "$T/h.sh"
    [ "$status" -eq 124 ] # still running when timeout stopped it
    chmod 777 "$T/s"
    run "$BIN/authcert-agent" --state-dir "$T/s" --listen 127.0.0.1:0
    [ "$status" -eq 8 ]
    [[ "$output" == *"state folder $T/s is writable by everyone"* ]]
    chmod 700 "$T/s"
    chmod 666 "$T/s/authcert-server.der"
    run "$BIN/authcert-agent" --state-dir "$T/s" --listen 127.0.0.1:0
    [ "$status" -eq 8 ]
    [[ "$output" == *"certificate file"*"writable by everyone"* ]]
    chmod 644 "$T/s/authcert-server.der"
    chmod 775 "$T/h.sh"
    run "$BIN/authcert-agent" --state-dir "$T/s" --listen 127.0.0.1:0 --handler "$T/h.sh"
    [ "$status" -eq 8 ]
    [[ "$output" == *"handler $T/h.sh is writable by its group"* ]]
    if [ "$(id -u)" -eq 0 ]; then
        chmod 755 "$T/h.sh"
        chown nobody "$T/h.sh"
        run "$BIN/authcert-agent" --state-dir "$T/s" --listen 127.0.0.1:0 --handler "$T/h.sh"
        [ "$status" -eq 8 ]
        [[ "$output" == *"belongs to uid"* ]]
    fi
}
