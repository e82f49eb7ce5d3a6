#!/usr/bin/env bats
# The certificate policy at the agent (issue 14, item 4): an update-key
# signed by the server's real key, pushed through the real listener, that
# carries a certificate the agent must not install: expired, not yet valid,
# with an unknown critical extension, a CA with keyCertSign only, another
# key type. Each is answered "failed" with exit 10 (refused by policy) and
# the reason, the agent certificate file stays byte for byte, a token of
# the old key still runs, and a token of the refused certificate's key runs
# nothing. The control at the end: a valid certificate of the same type is
# installed.
# Certificates come from tests/tools/mkcert.py (python3-cryptography, any
# dates and extensions), tokens from tests/tools/mktoken.

setup_file() {
    : "${AUTHCERT_BIN:?}" "${AUTHCERT_TEST_TMP:?}" "${AUTHCERT_SRC:?}"
    mkdir -p "$AUTHCERT_TEST_TMP"
    export D="$(mktemp -d "$AUTHCERT_TEST_TMP/update-policy.XXXXXX")"
    export MK="$AUTHCERT_BIN/mktoken" AG="$AUTHCERT_BIN/authcert-agent"
    export MKCERT="$AUTHCERT_SRC/tests/tools/mkcert.py"
    export S="$D/state" LOG="$D/agent.log" MARKER="$D/marker"
    mkdir -p "$S"
    # The server's current certificate (P-256, as authcert -c makes it).
    "$MK" --gen-store-pem "$D/server.pem" --export-der "$S/authcert-server.der" >"$D/server.thumb"
    cp "$S/authcert-server.der" "$D/trusted.der"
    cat >"$D/handler.sh" <<EOF
#!/bin/sh
cat >"$MARKER"
echo "handled \$1"
EOF
    chmod +x "$D/handler.sh"
    "$AG" --state-dir "$S" --listen 127.0.0.1:0 --handler "$D/handler.sh" --leeway 5 \
        --interval 5 2>"$LOG" &
    echo $! >"$D/agent.pid"
    for _ in $(seq $((100 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ -s "$S/listen-port" ] && break; sleep 0.05; done
    [ -s "$S/listen-port" ]
}

teardown_file() {
    if [ -f "$D/agent.pid" ]; then
        kill "$(cat "$D/agent.pid")" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
    rm -rf "$D"
}

curl() { command curl -k ${APIN:+--pinnedpubkey "$APIN"} "$@"; }

setup() {
    URL="https://127.0.0.1:$(cat "$S/listen-port")/v1/command"
    APIN="sha256//$(openssl pkey -in "$S/agent.key" -pubout -outform DER |
        openssl dgst -sha256 -binary | base64)"
    ID="$(cat "$S/agent-id")"
    rm -f "$MARKER"
    LOG_BEFORE=$(wc -l <"$LOG")
}

# push TOKEN: the status code on stdout, the body in $D/body
push() {
    curl -s -o "$D/body" -w '%{http_code}' -H 'Content-Type: application/jwt' \
        --data-binary "$1" "$URL"
}

new_log() { tail -n "+$((LOG_BEFORE + 1))" "$LOG"; }

jget() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# The server (its current key) signs an update-key carrying NAME.der.
update_key() { # NAME
    "$MK" --cert-pem "$D/server.pem" --aud "$ID" --cmd update-key --update-cert "$D/$1.der"
}

# refused_update NAME REASON_REGEX: the whole attack and what must hold after it.
refused_update() {
    local name=$1 why=$2
    [ "$(push "$(update_key "$name")")" = 200 ]
    cat "$D/body"; echo
    [ "$(jget "$D/body" status)" = failed ]
    [ "$(jget "$D/body" exit)" = 10 ]
    jget "$D/body" output | grep -E "update-key refused: update-key: certificate [0-9a-f]{64}: $why"
    # The agent certificate file is the one it had, byte for byte.
    cmp "$S/authcert-server.der" "$D/trusted.der"
    sleep 0.1
    new_log | grep -E "update-key refused: .*$why.*\(the certificate file is unchanged\)"
    # A token of the old key still runs...
    [ "$(push "$("$MK" --cert-pem "$D/server.pem" --aud "$ID" --cmd deploy)")" = 200 ]
    [ "$(jget "$D/body" status)" = ok ]
    [ -e "$MARKER" ]
    rm -f "$MARKER"
    # ...and one signed only by the refused certificate's key runs nothing.
    [ "$(push "$("$MK" --cert-pem "$D/$name.pem" --aud "$ID" --cmd deploy)")" = 401 ]
    [ ! -e "$MARKER" ]
}

@test "update-key carrying an expired certificate is refused, nothing changes" {
    python3 "$MKCERT" "$D/expired" --days-from -400 --days-to -1
    refused_update expired "expired on "
}

@test "update-key carrying a certificate not valid for another day is refused" {
    python3 "$MKCERT" "$D/future" --days-from 1 --days-to 400
    refused_update future "not valid before "
}

@test "update-key carrying an unknown critical extension is refused" {
    python3 "$MKCERT" "$D/crit" --kind unknown-critical
    refused_update crit "unknown critical extension 1\.3\.6\.1\.4\.1\.55555\.1"
}

@test "update-key carrying a CA certificate with keyCertSign only is refused" {
    python3 "$MKCERT" "$D/ca" --kind ca-certsign
    refused_update ca "a CA certificate"
}

@test "update-key changing the key type (P-256 to Ed25519, to RSA) is refused" {
    python3 "$MKCERT" "$D/ed" --type ed25519
    refused_update ed "its key is ed25519 and the trusted one p256"
    python3 "$MKCERT" "$D/rsa" --type rsa2048
    refused_update rsa "its key is rsa2048 and the trusted one p256"
}

@test "control: a valid P-256 certificate from another implementation is installed" {
    python3 "$MKCERT" "$D/good"
    [ "$(push "$(update_key good)")" = 200 ]
    cat "$D/body"; echo
    [ "$(jget "$D/body" status)" = ok ]
    cmp "$S/authcert-server.der" "$D/good.der"
    # Now the new key runs commands and the old one does not.
    [ "$(push "$("$MK" --cert-pem "$D/good.pem" --aud "$ID" --cmd deploy)")" = 200 ]
    [ -e "$MARKER" ]
    [ "$(push "$("$MK" --cert-pem "$D/server.pem" --aud "$ID" --cmd ping)")" = 401 ]
}
