#!/usr/bin/env bats
# authcert-agent's check-ins against a stand-in server (fake_authcertd.py):
# the check-in body, commands of the answer verified like pushed ones, the
# "expired" roll-over (update-key first, the rest signed with the retired
# key), results reported, "mismatched". The real authcertd is tested with the
# agent by the end-to-end suite.

setup() {
    : "${AUTHCERT_BIN:?}" "${AUTHCERT_SRC:?}" "${AUTHCERT_TEST_TMP:?}"
    mkdir -p "$AUTHCERT_TEST_TMP"
    D="$(mktemp -d "$AUTHCERT_TEST_TMP/agent-checkin.XXXXXX")"
    MK="$AUTHCERT_BIN/mktoken" AG="$AUTHCERT_BIN/authcert-agent"
    S="$D/state"
    mkdir -p "$S"
    "$MK" --gen-store-pem "$D/old.pem" --export-der "$S/authcert-server.der" >"$D/old.thumb"
    "$MK" --gen-store-pem "$D/new.pem" --export-der "$D/new.der" >"$D/new.thumb"
    echo test-agent-1 >"$S/agent-id"
    printf '#!/bin/sh\ncat >"%s/ran.$1"\necho "ran $1"\n' "$D" >"$D/handler.sh"
    chmod +x "$D/handler.sh"
    # The stand-in speaks TLS with a key of its own (openssl), which the
    # agent is told to pin.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=fake-authcertd -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$D/tls.key" -out "$D/tls.crt" 2>/dev/null
    PIN="sha256//$(openssl x509 -in "$D/tls.crt" -pubkey -noout | openssl pkey -pubin -outform DER |
        openssl dgst -sha256 -binary | base64)"
    python3 "$AUTHCERT_SRC/tests/e2e/fake_authcertd.py" "$D" "$D/tls.crt" "$D/tls.key" &
    echo $! >"$D/fake.pid"
    for _ in $(seq 100); do [ -s "$D/port" ] && break; sleep 0.05; done
    SERVER="https://127.0.0.1:$(cat "$D/port")"
}

# The agent, told to trust the stand-in's key (exec: `AG ... &` is the agent's pid).
AG() { exec "$AG" --server-pin "$PIN" "$@"; }

teardown() {
    for p in "$D"/*.pid; do kill "$(cat "$p")" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$D"
}

# requests PATH: the bodies sent to PATH, one a line (the stand-in checked
# each one's MAC itself: "mac-ok", "mac-bad", or "-" when it had none).
requests() { grep "^$1 " "$D/requests.log" | cut -d' ' -f3-; }
macs() { grep "^$1 " "$D/requests.log" | cut -d' ' -f2 | sort -u; }

pyjson() { python3 -c "import json, sys; $1" ; }

@test "--once: the check-in body, then the roll-over: update-key first, the rest with the old key" {
    {
        "$MK" --cert-pem "$D/old.pem" --aud test-agent-1 --cmd update-key --update-cert "$D/new.der" --did 1
        "$MK" --cert-pem "$D/old.pem" --aud test-agent-1 --cmd deploy --did 2
        "$MK" --cert-pem "$D/old.pem" --aud someone-else --cmd deploy --did 3
        "$MK" --cert-pem "$D/new.pem" --aud test-agent-1 --cmd restart --did 4
    } >"$D/queue"
    echo expired >"$D/answer-state"
    run AG --once --server "$SERVER" --state-dir "$S" --handler "$D/handler.sh"
    echo "$output"
    [ "$status" -eq 0 ]
    requests /v2/checkin | pyjson '
b = json.loads(sys.stdin.readline())
assert b["agent_id"] == "test-agent-1" and b["port"] == 0 and b["version"]
assert b["key_pin"].startswith("sha256//") and len(b["key_pin"]) == 52, b
assert b["thumbprint"] == open("'"$D/old.thumb"'").read().strip(), b
assert b["hostname"]'
    # The certificate file is the new one.
    fp="$(openssl x509 -inform DER -in "$S/authcert-server.der" -noout -fingerprint -sha256 |
          sed 's/.*=//; s/://g' | tr A-F a-f)"
    [ "$fp" = "$(cat "$D/new.thumb")" ]
    # deploy (old key) and restart (new key, verified after the update) ran; someone-else's did not.
    [ -e "$D/ran.deploy" ] && [ -e "$D/ran.restart" ]
    [[ "$output" == *"refused command 2"*"403 forbidden"*"audience"* ]]
    # Results went to /v2/result with their delivery ids.
    requests /v2/result | pyjson '
r = [json.loads(l) for l in sys.stdin]
got = {x["delivery"]: x for x in r}
assert sorted(got) == [1, 2, 4], got
assert all(x["agent_id"] == "test-agent-1" and x["status"] == "ok" for x in r), r
assert got[2]["output"] == "ran deploy\n"'
}

@test "enrollment then signed requests: the stand-in verifies the proof and every MAC with its own code" {
    run AG --once --server "$SERVER" --state-dir "$S"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(macs /v2/enroll/nonce)" = - ]
    [ "$(macs /v2/enroll)" = - ]
    [ "$(macs /v2/checkin)" = mac-ok ]
    [ "$(stat -c %a "$S/agent.mac")" = 600 ]
    grep -q '"server_id":"authcert-test"' "$S/agent.mac"
    [[ "$output" == *"enrolled with authcert-test as test-agent-1"* ]]
    # a second run does not enroll again, and its counter is higher
    run AG --once --server "$SERVER" --state-dir "$S"
    [ "$status" -eq 0 ]
    [ "$(grep -c '^/v2/enroll ' "$D/requests.log")" = 1 ]
    [ "$(macs /v2/checkin)" = mac-ok ]
    # a refused enrollment (a clone, say) is one line and a non-zero exit
    rm "$S/agent.mac"
    printf '409\n{"error":"agent id test-agent-1 is bound to another key","code":"clone"}\n' \
        >"$D/enroll-answer"
    run AG --once --server "$SERVER" --state-dir "$S"
    [ "$status" -ne 0 ]
    [[ "$output" == *"enrollment refused (clone)"*"bound to another key"* ]]
}

@test "the loop reports results with the next check-in, and the new thumbprint" {
    "$MK" --cert-pem "$D/old.pem" --aud test-agent-1 --cmd update-key --update-cert "$D/new.der" --did 7 >"$D/queue"
    AG --server "$SERVER" --state-dir "$S" --interval 1 2>"$D/agent.log" &
    echo $! >"$D/agent.pid"
    for _ in $(seq 100); do
        [ "$(requests /v2/checkin | wc -l)" -ge 2 ] && break
        sleep 0.1
    done
    kill "$(cat "$D/agent.pid")"
    cat "$D/agent.log"
    requests /v2/checkin | sed -n 2p | pyjson '
b = json.loads(sys.stdin.readline())
assert b["thumbprint"] == open("'"$D/new.thumb"'").read().strip(), b
assert [r["delivery"] for r in b["results"]] == [7], b
assert b["results"][0]["status"] == "ok"'
}

@test "mismatched: --once exits 10 and says how to repair" {
    echo mismatched >"$D/answer-state"
    run AG --once --server "$SERVER" --state-dir "$S"
    echo "$output"
    [ "$status" -eq 10 ]
    [[ "$output" == *"does not accept our certificate"*"authcert -e"* ]]
}

@test "a command of the answer that is not a valid token is refused, nothing run" {
    printf '%s\n' 'garbage.token.here' >"$D/queue"
    run AG --once --server "$SERVER" --state-dir "$S" --handler "$D/handler.sh"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"refused command 0"*"401 unauthenticated"* ]]
    ! ls "$D"/ran.* 2>/dev/null
}

@test "a server that is down: the failure is logged, the agent keeps running" {
    kill "$(cat "$D/fake.pid")"; rm -f "$D/fake.pid" "$D/port"
    wait 2>/dev/null || true
    AG --server "$SERVER" --state-dir "$S" --interval 1 2>"$D/agent.log" &
    echo $! >"$D/agent.pid"
    # the first check-in is at once (seconds under valgrind: AUTHCERT_TEST_SLOWER)
    for _ in $(seq $((30 * ${AUTHCERT_TEST_SLOWER:-1}))); do
        grep -q "check-in failed (1 in a row)" "$D/agent.log" && break
        sleep 0.1
    done
    grep -q "check-in failed (1 in a row)" "$D/agent.log"
    kill "$(cat "$D/agent.pid")"
}
