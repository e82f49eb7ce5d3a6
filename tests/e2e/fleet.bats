#!/usr/bin/env bats
# The whole system as an operator runs it: a real authcertd and real
# authcert-agents on loopback (random ports), driven with the admin tool.
# The fleet helpers are scripts/lib/fleet.bash, shared with `make demo`.
bats_require_minimum_version 1.5.0

setup() {
    : "${AUTHCERT_BIN:?}" "${AUTHCERT_SRC:?}"
    BIN=$AUTHCERT_BIN
    mkdir -p "${AUTHCERT_TEST_TMP:-/tmp}"
    FLEET=$(mktemp -d "${AUTHCERT_TEST_TMP:-/tmp}/fleet.XXXXXX")
    # The same tests on PostgreSQL (CTest's e2e/fleet_pg): a fresh database each.
    if [ -n "${AUTHCERT_FLEET_ON_PG:-}" ]; then
        PG_BASE=$(cat "$AUTHCERT_TEST_PG_URI_FILE")
        PG_DB=fleet_$$_${BATS_TEST_NUMBER}
        psql "$PG_BASE" -qc "CREATE DATABASE $PG_DB TEMPLATE template0"
        export FLEET_REGISTRY="$PG_BASE&dbname=$PG_DB"
    fi
    . "$AUTHCERT_SRC/scripts/lib/fleet.bash"
    fleet_init
    # The handler: records what it was asked to run, answers with the args.
    cat > "$FLEET/handler" <<'SH'
#!/bin/sh
# The agent names itself in AUTHCERT_AGENT_ID; the claims come on stdin.
cat > "$AUTHCERT_HANDLER_LOG.$AUTHCERT_AGENT_ID.$$"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["cmd"], json.dumps(c.get("args")))' \
    "$AUTHCERT_HANDLER_LOG.$AUTHCERT_AGENT_ID.$$"
SH
    chmod +x "$FLEET/handler"
    export AUTHCERT_HANDLER_LOG=$FLEET/handled
    "$BIN/authcert" -q -c "${PW[@]}"
}

teardown() {
    fleet_stop_all
    [ -z "${PG_DB:-}" ] || psql "$PG_BASE" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" || true
    if [ -n "${BATS_TEST_COMPLETED:-}" ]; then rm -rf "$FLEET"; else
        tail -n 20 "$FLEET"/authcertd.log "$FLEET"/agents/*/agent.log >&3 2>/dev/null || true
        rm -rf "$FLEET"
    fi
}

authcert() { "$BIN/authcert" "$@"; }

start_agents() { # NAMES...
    local a
    for a in "$@"; do
        fleet_give_cert "$a"
        fleet_agent "$a" --handler "$FLEET/handler"
    done
    wait_for 20 fleet_all_current "$@"
}

@test "every agent obeys a signed push; the handler gets the verified claims" {
    fleet_server --interval 1
    start_agents a1 a2 a3
    run --separate-stderr authcert --push ping --all --wait --timeout 20
    [ "$status" -eq 0 ]
    [ "$(grep -c ' ok .*"pong"' <<< "$output")" -eq 3 ]
    run --separate-stderr authcert --push restart --agent "$(fleet_agent_id a2)" \
        --args '{"service":"web"}' --wait --timeout 20 --json
    [ "$status" -eq 0 ]
    [ "$(jq -r .outcome <<< "$output")" = ok ]
    [ "$(jq -r .result.output <<< "$output")" = 'restart {"service": "web"}' ]
    # Only a2's handler ran, once, with the signed claims.
    [ "$(cat "$FLEET"/handled.* | jq -r .aud)" = "$(fleet_agent_id a2)" ]
    [ "$(ls "$FLEET"/handled.* | wc -l)" -eq 1 ]
    # Having signed and verified, neither daemon has OpenSSL's legacy
    # provider (RC2, MD4, DES) mapped: only the admin tool's PFX import needs it.
    for p in $(cat "$FLEET/authcertd.pid" "$FLEET"/agents/a*/pid); do
        grep -q 'libcrypto' "/proc/$p/maps"
        ! grep -q 'ossl-modules/legacy' "/proc/$p/maps"
    done
}

@test "a rotation while an agent is offline: every agent ends on the current certificate" {
    fleet_server --interval 1
    start_agents a1 a2 a3
    old=$(fleet_current)
    fleet_stop a3
    authcert -q -c "${PW[@]}"
    new=$(fleet_current)
    [ "$old" != "$new" ]
    wait_for 20 fleet_all_current a1 a2
    [ "$(fleet_agent_thumb a3)" = "$old" ]
    [ "$(fleet_registry_state a3)" = expired ]
    # -l names it as expired: the server will roll it over by itself.
    run --separate-stderr authcert -l -
    [ "${#lines[@]}" -eq 2 ]
    [[ "${lines[1]}" == "$(fleet_agent_id a3),"*",$old,expired,$new"$'\r' ]]
    fleet_agent a3 --handler "$FLEET/handler"
    wait_for 20 fleet_all_current a1 a2 a3
    run --separate-stderr authcert -l -
    [ "${#lines[@]}" -eq 1 ]
    # The rolled-over agent obeys the new key.
    run --separate-stderr authcert --push ping --agent "$(fleet_agent_id a3)" --wait --timeout 20
    [ "$status" -eq 0 ]
}

@test "an agent three replacements behind is brought to the current certificate in one step" {
    fleet_server --interval 1
    start_agents a1
    fleet_stop a1
    for _ in 1 2 3; do authcert -q -c "${PW[@]}"; done
    # Once the server has seen the last one (it looks about once a second).
    seen() { grep -q "certificate replaced: current $(fleet_current)" "$FLEET/authcertd.log"; }
    wait_for 10 seen
    fleet_agent a1 --handler "$FLEET/handler"
    wait_for 20 fleet_all_current a1
    [ "$(grep -c 'installed in' "$FLEET/agents/a1/agent.log")" -eq 1 ]
    grep -q 'a hand-off chain of 3 links' "$FLEET/agents/a1/agent.log"
}

# Push TOKEN straight to agent NAME's listener (as anyone on the network
# could); the answer's body in $FLEET/body, the HTTP code on stdout.
push_to_listener() { # NAME TOKEN
    local dir=$FLEET/agents/$1 pin
    pin="sha256//$(openssl pkey -in "$dir/agent.key" -pubout -outform DER |
        openssl dgst -sha256 -binary | base64)"
    curl -sk --pinnedpubkey "$pin" -o "$FLEET/body" -w '%{http_code}' \
        -H 'Content-Type: application/jwt' --data-binary "$2" \
        "https://127.0.0.1:$(cat "$dir/listen-port")/v1/command"
}

@test "pre-rotation: agents follow the committed key one replacement after another, an offline one included" {
    # Pre-rotation lives in the store, the tool and the agent, not the registry:
    # the SQLite run covers it, and the 12-minute budget keeps it off fleet_pg.
    [ -z "${AUTHCERT_FLEET_ON_PG:-}" ] || skip "covered by the SQLite run"
    (umask 077 && printf '%s\n' 'orbit lantern quietly 7 rivers' > "$FLEET/rs")
    authcert -q -c "${PW[@]}" --recovery-file "$FLEET/rs"
    fleet_server --interval 1
    start_agents a1 a2
    fleet_stop a2
    seen() { grep -q "certificate replaced: current $(fleet_current)" "$FLEET/authcertd.log"; }
    for _ in 1 2; do
        authcert -q -c "${PW[@]}" --recovery-file "$FLEET/rs"
        wait_for 10 seen
        wait_for 20 fleet_all_current a1
    done
    # a2 holds a certificate two replacements back, which commits to the
    # middle one's key: the store's hand-off statements take it through the
    # middle one in one check-in, each link verified with the key before it.
    fleet_agent a2 --handler "$FLEET/handler"
    wait_for 30 fleet_all_current a1 a2
    [ "$(grep -c 'installed in' "$FLEET/agents/a2/agent.log")" -eq 1 ]
    grep -q 'a hand-off chain of 2 links' "$FLEET/agents/a2/agent.log"
    run --separate-stderr authcert -l -
    [ "${#lines[@]}" -eq 1 ]
    run --separate-stderr authcert --push ping --agent "$(fleet_agent_id a2)" --wait --timeout 20
    [ "$status" -eq 0 ]
}

@test "pre-rotation: a thief of the current key moves no agent to a certificate of its own" {
    # Pre-rotation lives in the store, the tool and the agent, not the registry:
    # the SQLite run covers it, and the 12-minute budget keeps it off fleet_pg.
    [ -z "${AUTHCERT_FLEET_ON_PG:-}" ] || skip "covered by the SQLite run"
    (umask 077 && printf '%s\n' 'orbit lantern quietly 7 rivers' > "$FLEET/rs")
    authcert -q -c "${PW[@]}" --recovery-file "$FLEET/rs"
    fleet_server --interval 1
    start_agents a1
    cur=$(fleet_current)
    held="$FLEET/agents/a1/authcert-server.der"
    cp "$held" "$FLEET/before.der"
    stolen="$AUTHCERT_STORE/keys/$cur.pem"   # the current key, as a thief copies it
    id=$(fleet_agent_id a1)
    # 1. Its own certificate (valid, same key type: passes every other rule).
    python3 "$AUTHCERT_SRC/tests/tools/mkcert.py" "$FLEET/thief"
    tok=$("$BIN/mktoken" --cert-pem "$stolen" --iss fleet-server --aud "$id" --cmd update-key \
        --update-cert "$FLEET/thief.der")
    [ "$(push_to_listener a1 "$tok")" = 200 ]
    grep -q '"status": *"failed"' "$FLEET/body"
    grep -q 'not the successor the trusted certificate commits to' "$FLEET/body"
    cmp "$held" "$FLEET/before.der"
    # 2. A certificate carrying the successor's public key (public in the
    #    sealed file) that commits to the thief's key, signed by the thief:
    #    made with openssl, not with our code.
    h=$(authcert --status --json | jq -r .next_key.commitment)
    openssl pkey -pubin -in "$AUTHCERT_STORE/keys/next-$h.pem" -out "$FLEET/succ.pub"
    th=$(openssl pkey -in "$FLEET/thief.pem" -pubout -outform DER | sha256sum | cut -d' ' -f1)
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "2.25.43928483603551435612044611491830138667=DER:0420$th" > "$FLEET/ext"
    openssl req -new -key "$FLEET/thief.pem" -subj /CN=forged -out "$FLEET/f.csr"
    openssl x509 -req -in "$FLEET/f.csr" -signkey "$FLEET/thief.pem" -force_pubkey "$FLEET/succ.pub" \
        -days 30 -extfile "$FLEET/ext" -outform DER -out "$FLEET/forged.der"
    # openssl made what we meant: the successor's key inside, the thief's commitment.
    openssl x509 -inform DER -in "$FLEET/forged.der" -noout -pubkey | openssl pkey -pubin -outform DER |
        sha256sum | grep -q "^$h "
    tok=$("$BIN/mktoken" --cert-pem "$stolen" --iss fleet-server --aud "$id" --cmd update-key \
        --update-cert "$FLEET/forged.der")
    [ "$(push_to_listener a1 "$tok")" = 200 ]
    grep -q '"status": *"failed"' "$FLEET/body"
    grep -q 'carries the committed key but is not signed by it' "$FLEET/body"
    cmp "$held" "$FLEET/before.der"
    # Control: the operator's next -c moves the agent to the real successor.
    authcert -q -c "${PW[@]}" --recovery-file "$FLEET/rs"
    wait_for 20 fleet_all_current a1
}

@test "pre-rotation: a leaked key hands its agents, online and offline, to the committed successor with no repair" {
    # Pre-rotation lives in the store, the tool and the agent, not the registry:
    # the SQLite run covers it, and the 12-minute budget keeps it off fleet_pg.
    [ -z "${AUTHCERT_FLEET_ON_PG:-}" ] || skip "covered by the SQLite run"
    (umask 077 && printf '%s\n' 'orbit lantern quietly 7 rivers' > "$FLEET/rs")
    authcert -q -c "${PW[@]}" --recovery-file "$FLEET/rs"
    fleet_server --interval 1
    start_agents a1 a2
    leaked=$(fleet_current)
    cp "$AUTHCERT_STORE/keys/$leaked.pem" "$FLEET/stolen.pem"   # what the thief holds
    fleet_stop a2
    run --separate-stderr authcert -c --compromised "${PW[@]}" --recovery-file "$FLEET/rs"
    [ "$status" -eq 0 ]
    [[ "$output" == *"signed one hand-off to the committed successor"* ]]
    new=$(fleet_current)
    [ "$(authcert --status --json | jq -r --arg t "$leaked" '.certificates[] | select(.thumbprint == $t) | .state')" = revoked ]
    # Online and offline alike end on the successor, nobody copying a file.
    wait_for 20 fleet_all_current a1
    fleet_agent a2 --handler "$FLEET/handler"
    wait_for 20 fleet_all_current a1 a2
    grep -q 'a hand-off chain of 1 link' "$FLEET/agents/a2/agent.log"
    run --separate-stderr authcert -l -
    [ "${#lines[@]}" -eq 1 ]
    # The leaked key signed nothing but that one statement...
    [ "$(grep -c "refusing to sign with revoked" "$FLEET/authcertd.log" || true)" -eq 0 ]
    # ...and the agents now refuse what the thief signs with it.
    tok=$("$BIN/mktoken" --cert-pem "$FLEET/stolen.pem" --iss fleet-server \
        --aud "$(fleet_agent_id a1)" --cmd ping)
    [ "$(push_to_listener a1 "$tok")" = 401 ]
    # Control: the operator's own push is obeyed.
    run --separate-stderr authcert --push ping --agent "$(fleet_agent_id a1)" --wait --timeout 20
    [ "$status" -eq 0 ]
}

@test "a leaked key: agents on the revoked certificate are mismatched until repaired by hand" {
    fleet_server --interval 1
    start_agents a1 a2
    leaked=$(fleet_current)
    authcert -q -c --compromised "${PW[@]}"
    new=$(fleet_current)
    both_revoked() {
        [ "$(authcert -l - | grep -c ",$leaked,revoked,$new")" -eq 2 ]
    }
    wait_for 20 both_revoked
    # Nothing is ever signed with the leaked key: no update-key reaches them,
    # and a push to them is not delivered; their handlers never run.
    sleep 2
    [ "$(fleet_agent_thumb a1)" = "$leaked" ]
    [ "$(fleet_registry_state a1)" = mismatched ]
    run --separate-stderr authcert --push ping --agent "$(fleet_agent_id a1)" --wait --timeout 3
    [ "$status" -ne 0 ]
    [ -z "$(ls "$FLEET"/handled.* 2>/dev/null)" ]
    grep -q 'mismatched' "$FLEET/authcertd.log"
    # The repair the original manual describes: copy the exported file over.
    fleet_give_cert a1
    wait_for 20 fleet_all_current a1
    [ "$(authcert -l - | grep -c ",$leaked,revoked,")" -eq 1 ]
}

@test "an agent with another server's certificate is listed as unknown and obeys nothing" {
    fleet_server --interval 1
    start_agents a1
    authcert -q -c --store "$FLEET/foreign" "${PW[@]}"
    fleet_give_cert intruder --store "$FLEET/foreign"
    fleet_agent intruder --handler "$FLEET/handler"
    id=$(fleet_agent_id intruder)
    mismatched() { [ "$(fleet_registry_state intruder)" = mismatched ]; }
    wait_for 20 mismatched
    run --separate-stderr authcert -l "$FLEET/list.csv"
    [ "$status" -eq 0 ]
    grep -q "^$id,.*,unknown,$(fleet_current)"$'\r'"\$" "$FLEET/list.csv"
    run --separate-stderr authcert --push ping --agent "$id" --wait --timeout 3
    [ "$status" -ne 0 ]
    [ -z "$(ls "$FLEET"/handled.* 2>/dev/null)" ]
    # It keeps the certificate it had: nothing was offered to replace it.
    [ "$(fleet_agent_thumb intruder)" != "$(fleet_current)" ]
}

@test "commands queued while authcertd is down are delivered when it is back" {
    fleet_server --interval 1
    start_agents a1 a2
    fleet_stop server
    run --separate-stderr authcert --push inventory --all --args '{"n":1}'
    [ "$status" -eq 0 ]
    fleet_server --interval 1
    delivered() {
        [ "$(ls "$FLEET"/handled.* 2>/dev/null | wc -l)" -eq 2 ]
    }
    wait_for 20 delivered
    sleep 2 # and only once each
    [ "$(ls "$FLEET"/handled.* | wc -l)" -eq 2 ]
    # Both agents ran it: one broadcast token (aud "*"), signed once.
    ls "$FLEET"/handled.* | grep -q "$(fleet_agent_id a1)"
    ls "$FLEET"/handled.* | grep -q "$(fleet_agent_id a2)"
    [ "$(cat "$FLEET"/handled.* | jq -r .aud | sort -u)" = "*" ]
}

@test "an independent JOSE library verifies a captured command with only the agent certificate file" {
    command -v node >/dev/null || skip "node is not installed"
    prefix=${AUTHCERT_TEST_TMP:-/tmp}/jose-npm
    if [ ! -f "$prefix/node_modules/jose/package.json" ]; then
        mkdir -p "$prefix"
        npm install --prefix "$prefix" jose@5 --no-audit --no-fund >/dev/null 2>&1 ||
            { npm ping >/dev/null 2>&1 && false; } || skip "npm cannot reach its registry"
    fi
    fleet_server --interval 60
    # Act as an agent by hand (tests/tools/agentsim: enrolled, signed requests):
    # check in, get a command queued, check in again.
    agent=11111111-2222-4333-8444-555555555555
    body="{\"agent_id\":\"$agent\",\"hostname\":\"h\",\"port\":0,\"version\":\"x\",\"thumbprint\":\"$(fleet_current)\"}"
    "$BIN/agentsim" enroll "$URL" "$FLEET_CA" "$FLEET/sim.json" "$agent" \
        "$(jq -r .token "$FLEET/token.json")" >/dev/null
    "$BIN/agentsim" post "$URL" "$FLEET_CA" "$FLEET/sim.json" /v2/checkin "$body" >/dev/null
    registered() { authcert --agents --json | jq -e --arg a "$agent" 'any(.[]; .agent_id == $a)' >/dev/null; }
    wait_for 10 registered
    authcert -q --push reboot --agent "$agent" --args '{"delay":5}'
    # It has no listener, so the command comes with its next check-in, as it
    # would for a real agent (the push thread never leases it meanwhile).
    token=$("$BIN/agentsim" post "$URL" "$FLEET_CA" "$FLEET/sim.json" /v2/checkin "$body" |
                cut -d' ' -f2- | jq -r '.commands[0]')
    [ -n "$token" ] && [ "$token" != null ]
    authcert -e "$FLEET/agent.der"
    openssl x509 -inform DER -in "$FLEET/agent.der" -out "$FLEET/agent.pem"
    run env JOSE_PREFIX="$prefix" node "$AUTHCERT_SRC/tests/interop/jose_tool.cjs" \
        verify "$FLEET/agent.pem" ES256 "$agent" "$token"
    [ "$status" -eq 0 ]
    [[ "$output" == *'"cmd":"reboot"'* ]]
    [[ "$output" == *'"iss":"fleet-server"'* ]]
    # jose also refuses it for another agent.
    run env JOSE_PREFIX="$prefix" node "$AUTHCERT_SRC/tests/interop/jose_tool.cjs" \
        verify "$FLEET/agent.pem" ES256 someone-else "$token"
    [ "$status" -ne 0 ]
}

@test "an agent that never answers a push does not hold up the others" {
    fleet_server --interval 60 --push-timeout 5
    start_agents a1 a2 a3
    # Frozen: its socket still accepts connections, but nothing answers.
    kill -STOP "$(cat "$FLEET/agents/a2/pid")"
    start=$SECONDS
    run --separate-stderr authcert --push ping --agent "$(fleet_agent_id a1)" \
        --agent "$(fleet_agent_id a3)" --wait --timeout 20
    [ "$status" -eq 0 ]
    run --separate-stderr authcert --push ping --all --wait --timeout 4
    [ "$status" -eq 6 ]
    [ "$(grep -c ' ok ' <<< "$output")" -eq 2 ]
    [[ "$output" == *"$(fleet_agent_id a2)"*"not delivered"* ]]
    [ $((SECONDS - start)) -lt 15 ]
    kill -CONT "$(cat "$FLEET/agents/a2/pid")"
}
