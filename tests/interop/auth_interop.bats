#!/usr/bin/env bats
# Protocol v2's agent authentication against an implementation nobody here
# wrote: Node.js's crypto derives the MAC key (HKDF), recomputes request
# MACs and verifies enrollment proofs from the documented inputs alone
# (tests/interop/auth_tool.cjs); our side is the library, through
# tests/tools/agentsim. Each acceptance has its forgery beside it.

setup() {
    : "${AUTHCERT_BIN:?}" "${AUTHCERT_SRC:?}" "${AUTHCERT_TEST_TMP:?}"
    command -v node >/dev/null || { echo "node is not installed" >&2; return 1; }
    mkdir -p "$AUTHCERT_TEST_TMP"
    T="$(mktemp -d "$AUTHCERT_TEST_TMP/auth-interop.XXXXXX")"
    SIM="$AUTHCERT_BIN/agentsim"
    NODE=(node "$AUTHCERT_SRC/tests/interop/auth_tool.cjs")
}

teardown() { rm -rf "$T"; }

@test "the agent MAC key: our HKDF and Node's agree, for several ids and epochs" {
    secret=$(openssl rand -hex 32)
    for id in agent-1 5f0c2a1e-aaaa-4000-8000-000000000001 'x!~'; do
        for epoch in 1 2 4294967297; do
            [ "$("$SIM" derive "$secret" "$id" "$epoch")" = "$("${NODE[@]}" derive "$secret" "$id" "$epoch")" ]
        done
    done
    # the documented worked example
    [ "$("${NODE[@]}" derive 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f agent-1 1)" = \
      643ed5aa197757e1bc6fb26aa7d76423699e8b81c006cf787b71a4bd14aae1aa ]
}

@test "a request MAC: Node recomputes ours from the documented text; another body does not match" {
    key=$(openssl rand -hex 32)
    printf '{"agent_id":"agent-1","epoch":3,"mac_key":"%s","server_id":"mgmt-1","counter":0}' \
        "$(printf '%s' "$key" | xxd -r -p | base64 | tr '+/' '-_' | tr -d '=')" >"$T/state.json"
    body='{"agent_id":"agent-1","hostname":"h","port":0,"thumbprint":""}'
    authz="$("$SIM" sign "$T/state.json" POST /v2/checkin 1764700000000123 "$body")"
    mac="${authz##*mac=\"}"; mac="${mac%\"}"
    [ "$mac" = "$("${NODE[@]}" mac "$key" POST /v2/checkin agent-1 3 mgmt-1 1764700000000123 "$body")" ]
    [ "$mac" != "$("${NODE[@]}" mac "$key" POST /v2/checkin agent-1 3 mgmt-1 1764700000000123 "$body ")" ]
    [ "$mac" != "$("${NODE[@]}" mac "$key" POST /v2/result agent-1 3 mgmt-1 1764700000000123 "$body")" ]
    [[ "$authz" == 'AUTHCERT-V2 agent="agent-1", epoch=3, counter=1764700000000123, mac="'* ]]
}

@test "an enrollment proof (P-256): Node verifies it from the documented text; a changed field is refused" {
    proof="$("$SIM" proof "$T/agent.key" agent-7 mgmt-1 nonce-abc AbCdEfGhIjKl.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ)"
    run "${NODE[@]}" proof "$proof" mgmt-1 nonce-abc agent-7 AbCdEfGhIjKl.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ
    [ "$status" -eq 0 ]
    # the pin is the one openssl computes from the key file
    pin="sha256//$(openssl pkey -in "$T/agent.key" -pubout -outform DER | openssl dgst -sha256 -binary | base64)"
    [ "$(jq -r .pin <<<"$proof")" = "$pin" ]
    run "${NODE[@]}" proof "$proof" mgmt-2 nonce-abc agent-7 AbCdEfGhIjKl.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ
    [ "$status" -eq 1 ]
    run "${NODE[@]}" proof "$proof" mgmt-1 nonce-abd agent-7 AbCdEfGhIjKl.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ
    [ "$status" -eq 1 ]
    run "${NODE[@]}" proof "$proof" mgmt-1 nonce-abc agent-8 AbCdEfGhIjKl.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ
    [ "$status" -eq 1 ]
    run "${NODE[@]}" proof "$proof" mgmt-1 nonce-abc agent-7 -
    [ "$status" -eq 1 ]
    # without a token: 64 zeros in its place
    proof="$("$SIM" proof "$T/agent.key" agent-7 mgmt-1 nonce-abc -)"
    run "${NODE[@]}" proof "$proof" mgmt-1 nonce-abc agent-7 -
    [ "$status" -eq 0 ]
}
