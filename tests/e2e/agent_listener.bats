#!/usr/bin/env bats
# A real authcert-agent on loopback, pushed to with curl: what it runs, what
# it refuses (with which status, with the handler NOT run, and the reason in
# its log), and the key update through the listener.
# Tokens come from tests/tools/mktoken.c; the server's certificate and key
# from `mktoken --gen-store-pem` (the store's key file form).

setup_file() {
    : "${AUTHCERT_BIN:?}" "${AUTHCERT_TEST_TMP:?}"
    mkdir -p "$AUTHCERT_TEST_TMP"
    export D="$(mktemp -d "$AUTHCERT_TEST_TMP/agent-e2e.XXXXXX")"
    export MK="$AUTHCERT_BIN/mktoken" AG="$AUTHCERT_BIN/authcert-agent"
    export S="$D/state" LOG="$D/agent.log" MARKER="$D/marker"
    mkdir -p "$S"
    "$MK" --gen-store-pem "$D/server.pem" --export-der "$S/authcert-server.der" >"$D/server.thumb"
    "$MK" --gen-store-pem "$D/other.pem" --export-der "$D/other.der" >/dev/null
    cat >"$D/handler.sh" <<EOF
#!/bin/sh
cat >"$MARKER"
echo "handled \$1 for \$AUTHCERT_AGENT_ID"
[ "\$1" != fail ] || exit 3
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

# The listener is HTTPS with a self-signed certificate of the agent's key:
# curl trusts exactly that key (its pin, computed with openssl).
curl() { command curl -k ${APIN:+--pinnedpubkey "$APIN"} "$@"; }
pin_of() { # STATE_DIR
    echo "sha256//$(openssl pkey -in "$1/agent.key" -pubout -outform DER |
        openssl dgst -sha256 -binary | base64)"
}

setup() {
    URL="https://127.0.0.1:$(cat "$S/listen-port")/v1/command"
    APIN="$(pin_of "$S")"
    ID="$(cat "$S/agent-id")"
    rm -f "$MARKER"
    LOG_BEFORE=$(wc -l <"$LOG")
}

# push TOKEN [curl args...]: the status code on stdout, the body in $D/body
push() {
    local tok="$1"; shift
    curl -s -o "$D/body" -w '%{http_code}' -H 'Content-Type: application/jwt' \
        --data-binary "$tok" "$@" "$URL"
}

# log lines written since the test started
new_log() { tail -n "+$((LOG_BEFORE + 1))" "$LOG"; }

# refused STATUS REASON_REGEX TOKEN: refused, handler not run, reason logged
refused() {
    local want="$1" why="$2" tok="$3" code
    code="$(push "$tok")"
    echo "status $code, body $(cat "$D/body")"
    [ "$code" = "$want" ]
    [ ! -e "$MARKER" ]
    sleep 0.1
    new_log
    new_log | grep -E "refused push from 127\.0\.0\.1:[0-9]+: $want .*$why"
}

# jget FILE KEY[.KEY...]: one value of a JSON file (python3, which the tests already need)
jget() {
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(v)' "$1" "$2"
}

tok() { "$MK" --cert-pem "$D/server.pem" "$@"; }

our_x5t() {
    openssl dgst -sha256 -binary "$S/authcert-server.der" | openssl base64 -A | tr '+/' '-_' | tr -d '='
}

@test "the agent made a UUID v4 id and reports its port" {
    grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "$S/agent-id"
    [ "$(cat "$S/listen-port")" -gt 0 ]
}

@test "a valid token runs the handler with the verified claims" {
    t="$(tok --aud "$ID" --cmd deploy --args '{"version":"1.2.3"}' --did 42)"
    [ "$(push "$t")" = 200 ]
    cat "$D/body"
    [ "$(jget "$D/body" status)" = ok ]
    [ "$(jget "$D/body" exit)" = 0 ]
    [ "$(jget "$D/body" agent_id)" = "$ID" ]
    [ "$(jget "$D/body" output)" = "handled deploy for $ID" ]
    [ "$(jget "$MARKER" args.version)" = 1.2.3 ]
    [ "$(jget "$MARKER" did)" = 42 ]
    [ "$(jget "$MARKER" aud)" = "$ID" ]
    [ "$(jget "$D/body" jti)" = "$(jget "$MARKER" jti)" ]
}

@test "a delivery sent again (new jti, same delivery id) is answered, not run again" {
    t1="$(tok --aud "$ID" --cmd deploy --args '{"version":"2"}' --did 77)"
    [ "$(push "$t1")" = 200 ]
    first="$(jget "$D/body" output)"
    rm -f "$MARKER"
    # The server lost our answer and signed the same delivery again.
    t2="$(tok --aud "$ID" --cmd deploy --args '{"version":"2"}' --did 77)"
    [ "$(push "$t2")" = 200 ]
    [ "$(jget "$D/body" status)" = ok ]
    [ "$(jget "$D/body" output)" = "$first" ]
    [ ! -e "$MARKER" ]
    new_log | grep -q 'delivery 77 already carried out'
    # Another command under the same id (another server's registry) runs.
    t3="$(tok --aud "$ID" --cmd deploy --args '{"version":"3"}' --did 77)"
    [ "$(push "$t3")" = 200 ]
    [ "$(jget "$MARKER" args.version)" = 3 ]
}

@test "a handler that exits non-zero is status failed with its exit code" {
    [ "$(push "$(tok --aud "$ID" --cmd fail)")" = 200 ]
    [ "$(jget "$D/body" status)" = failed ]
    [ "$(jget "$D/body" exit)" = 3 ]
}

@test "ping answers pong without the handler; a broadcast is accepted" {
    [ "$(push "$(tok --aud "$ID" --cmd ping)")" = 200 ]
    [ "$(jget "$D/body" output)" = pong ]
    [ ! -e "$MARKER" ]
    [ "$(push "$(tok --aud '*' --cmd ping)")" = 200 ]
}

@test "keep-alive: two pushes on one connection" {
    t1="$(tok --aud "$ID" --cmd ping)" t2="$(tok --aud "$ID" --cmd ping)"
    curl -sv -H 'Content-Type: application/jwt' --data-binary "$t1" "$URL" \
        --next -k --pinnedpubkey "$APIN" -H 'Content-Type: application/jwt' \
        --data-binary "$t2" "$URL" 2>"$D/curl.err"
    grep -qi 're-using existing connection' "$D/curl.err"
    ! grep -qi 'connection: close' "$D/curl.err"
}

@test "replayed: the same token twice, the second is 403 and not run" {
    t="$(tok --aud "$ID" --cmd deploy)"
    [ "$(push "$t")" = 200 ]
    [ -e "$MARKER" ]
    rm -f "$MARKER"
    refused 403 "replayed" "$t"
}

@test "another agent's token is 403" {
    refused 403 "audience" "$(tok --aud someone-else --cmd deploy)"
}

@test "an expired token is 403" {
    refused 403 "expired" "$(tok --aud "$ID" --cmd deploy --iat-offset -1000 --ttl 300)"
}

@test "a token issued in the future is 403" {
    refused 403 "future" "$(tok --aud "$ID" --cmd deploy --iat-offset 600)"
}

@test "unsigned (signature stripped) is 401" {
    t="$(tok --aud "$ID" --cmd deploy)"
    refused 401 "signature" "${t%.*}."
}

@test "alg none is 401" {
    refused 401 "alg none refused" "$(tok --aud "$ID" --cmd deploy --alg-override none)"
}

@test "alg swapped (EdDSA, HS256 in the header of an ES256 key) is 401" {
    refused 401 "alg EdDSA refused" "$(tok --aud "$ID" --cmd deploy --alg-override EdDSA)"
    refused 401 "alg HS256 refused" "$(tok --aud "$ID" --cmd deploy --alg-override HS256)"
}

@test "forged: another key, with its own x5t and with ours" {
    refused 401 "another certificate" \
        "$("$MK" --cert-pem "$D/other.pem" --aud "$ID" --cmd deploy)"
    hdr="{\"alg\":\"ES256\",\"typ\":\"JWT\",\"x5t#S256\":\"$(our_x5t)\"}"
    refused 401 "bad signature" \
        "$("$MK" --cert-pem "$D/other.pem" --aud "$ID" --cmd deploy --header-json "$hdr")"
}

@test "a signature flipped in one character is 401" {
    t="$(tok --aud "$ID" --cmd deploy)"
    last="${t: -3:1}"; [ "$last" = A ] && new=B || new=A
    refused 401 "signature" "${t:0:${#t}-3}$new${t: -2}"
}

@test "malformed: bad base64url, not JSON, duplicate alg, two parts, empty" {
    refused 401 "base64url|invalid|character" 'ey$$.eyJ.abc'
    refused 401 "not valid JSON" "$(tok --aud "$ID" --cmd deploy --header-json '{nope')"
    refused 401 "not valid JSON|duplicate" \
        "$(tok --aud "$ID" --cmd deploy --header-json '{"alg":"ES256","alg":"none"}')"
    refused 401 "parts" "abc.def"
    refused 401 "empty" ""
    refused 401 "not valid JSON" "$(tok --raw-claims '{"aud":')"
}

@test "oversized: 70 KiB is 413, with a length and chunked" {
    head -c 71680 /dev/zero | tr '\0' a >"$D/big"
    # With a length, the answer comes before the body is read. A client that
    # asks first (Expect: 100-continue, RFC 9110 10.1.1) gets the 413 instead
    # of the go-ahead and sends nothing more.
    code="$(curl -s -o "$D/body" -w '%{http_code}' -H 'Content-Type: application/jwt' \
        -H 'Expect: 100-continue' --expect100-timeout 30 --data-binary @"$D/big" "$URL")"
    [ "$code" = 413 ]
    # One that sends the body regardless reads the 413, or, when the agent's
    # close of the unread body overtakes it, a reset (curl 55 or 56); never
    # a run, and the agent says 413.
    run curl -s -o "$D/body" -w '%{http_code}' -H 'Content-Type: application/jwt' \
        --data-binary @"$D/big" "$URL"
    [ "$output" = 413 ] || [ "$status" = 55 ] || [ "$status" = 56 ]
    [ "$(new_log | grep -c "413 too large")" = 2 ]
    code="$(curl -s -o "$D/body" -w '%{http_code}' -H 'Content-Type: application/jwt' \
        -H 'Transfer-Encoding: chunked' --data-binary @"$D/big" "$URL")"
    [ "$code" = 413 ]
    [ ! -e "$MARKER" ]
    new_log | grep -q "413 too large"
}

@test "wrong content type is 415, GET is 405, another path is 404" {
    t="$(tok --aud "$ID" --cmd deploy)"
    code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$t" "$URL")"
    [ "$code" = 415 ]
    code="$(curl -s -o /dev/null -w '%{http_code}' --data-binary "$t" "$URL")"
    [ "$code" = 415 ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL")" = 405 ]
    code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/jwt' \
        --data-binary "$t" "${URL%/v1/command}/v1/other")"
    [ "$code" = 404 ]
    [ ! -e "$MARKER" ]
    new_log | grep -q "415 unsupported media type"
    new_log | grep -q "405 method not allowed: GET"
    # The token was never verified, so it is still good.
    [ "$(push "$t")" = 200 ]
}

@test "update-key with a wrong thumbprint fails and keeps the file byte for byte" {
    cp "$S/authcert-server.der" "$D/before.der"
    "$MK" --gen-store-pem "$D/new.pem" --export-der "$D/new.der" >/dev/null
    t="$(tok --aud "$ID" --cmd update-key --update-cert "$D/new.der" \
        --update-thumbprint "$(cat "$D/server.thumb")")"
    [ "$(push "$t")" = 200 ]
    [ "$(jget "$D/body" status)" = failed ]
    cmp "$S/authcert-server.der" "$D/before.der"
    [ "$(push "$(tok --aud "$ID" --cmd ping)")" = 200 ]
}

@test "update-key through the listener replaces the certificate file and the trust" {
    "$MK" --gen-store-pem "$D/new2.pem" --export-der "$D/new2.der" >"$D/new2.thumb"
    t="$(tok --aud "$ID" --cmd update-key --update-cert "$D/new2.der")"
    [ "$(push "$t")" = 200 ]
    cat "$D/body"
    [ "$(jget "$D/body" status)" = ok ]
    fp="$(openssl x509 -inform DER -in "$S/authcert-server.der" -noout -fingerprint -sha256 |
          sed 's/.*=//; s/://g' | tr A-F a-f)"
    [ "$fp" = "$(cat "$D/new2.thumb")" ]
    [ "$(stat -c %a "$S/authcert-server.der")" = 644 ]
    # The old key is no longer trusted; the new one is.
    refused 401 "another certificate" "$(tok --aud "$ID" --cmd ping)"
    [ "$(push "$("$MK" --cert-pem "$D/new2.pem" --aud "$ID" --cmd ping)")" = 200 ]
}

@test "--once against no server fails with a clear message and a non-zero exit" {
    run "$AG" --once --server https://127.0.0.1:1 --state-dir "$S"
    echo "$output"
    [ "$status" -eq 6 ]
    [[ "$output" == *"check-in failed"*"127.0.0.1:1/v2/"* ]]
}

@test "usage and set-up errors: exit 2, or 9 for a missing certificate file" {
    run "$AG" --state-dir "$S"
    [ "$status" -eq 2 ]
    [[ "$output" == *"nothing to do"* ]]
    run "$AG" --listen 127.0.0.1:0
    [ "$status" -eq 2 ]
    run "$AG" --state-dir "$S" --listen 127.0.0.1:0 --interval 0
    [ "$status" -eq 2 ]
    printf 'state-dir = %s\nbogus = 1\n' "$S" >"$D/bad.conf"
    run "$AG" --config "$D/bad.conf" --listen 127.0.0.1:0
    [ "$status" -eq 2 ]
    [[ "$output" == *"bad.conf:2: unknown setting bogus"* ]]
    mkdir -p "$D/empty"
    run "$AG" --state-dir "$D/empty" --listen 127.0.0.1:0
    [ "$status" -eq 9 ]
    [[ "$output" == *"no agent certificate file"*"authcert -e"* ]]
}

# (Under valgrind: the refusal path once freed the certificate twice.)
@test "a certificate file with a key type we do not support (P-384): exit 5, says which" {
    mkdir -p "$D/p384"
    cp "$AUTHCERT_SRC/tests/data/p384.der" "$D/p384/authcert-server.der"
    for mode in "--once --server https://127.0.0.1:9" "--listen 127.0.0.1:0"; do
        # shellcheck disable=SC2086
        run "$AG" --state-dir "$D/p384" $mode
        [ "$status" -eq 5 ]
        [[ "$output" == *"authcert-server.der: not an agent certificate file"*"unsupported key type (EC, 384 bits)"* ]]
    done
}

@test "a config file sets what flags set; a handler past its timeout is killed; SIGTERM stops" {
    S2="$D/state2"; mkdir -p "$S2"
    cp "$S/authcert-server.der" "$S2/"
    printf '#!/bin/sh\nsleep 30\n' >"$D/slow.sh"; chmod +x "$D/slow.sh"
    cat >"$D/agent.conf" <<EOF
# comments and blank lines are fine

state-dir = $S2
listen = 127.0.0.1:0
handler = $D/slow.sh
handler-timeout = 1
log-level = debug
EOF
    "$AG" --config "$D/agent.conf" 2>"$D/agent2.log" &
    pid=$!
    for _ in $(seq $((100 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ -s "$S2/listen-port" ] && break; sleep 0.05; done
    id2="$(cat "$S2/agent-id")"
    [ "$id2" != "$ID" ]
    URL="https://127.0.0.1:$(cat "$S2/listen-port")/v1/command"
    APIN="$(pin_of "$S2")"
    start=$(date +%s)
    [ "$(push "$("$MK" --cert-pem "$D/new2.pem" --aud "$id2" --cmd slow)")" = 200 ]
    [ $(( $(date +%s) - start )) -le 5 ]
    [ "$(jget "$D/body" status)" = failed ]
    [ "$(jget "$D/body" exit)" = 137 ]
    grep -q "killed after 1 s" "$D/agent2.log"
    kill -TERM "$pid"
    wait "$pid"
    grep -q "SIGTERM: stopping" "$D/agent2.log"
}

@test "with the admin tool's store: authcert -e feeds the agent, its key files sign, a rotation rolls over" {
    "$AUTHCERT_BIN/authcert" --help >/dev/null 2>&1 || skip "the admin tool is not built"
    echo "correct horse battery staple 42" >"$D/pw"
    ST="$D/store" S3="$D/state3"
    mkdir -p "$S3"
    "$AUTHCERT_BIN/authcert" -c --store "$ST" --password-file "$D/pw"
    "$AUTHCERT_BIN/authcert" -e "$S3" --store "$ST"
    [ -s "$S3/authcert-server.der" ]
    old="$(ls "$ST/keys" | sed 's/\.pem$//')"
    "$AG" --state-dir "$S3" --listen 127.0.0.1:0 2>"$D/agent3.log" &
    pid=$!
    for _ in $(seq $((100 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ -s "$S3/listen-port" ] && break; sleep 0.05; done
    URL="https://127.0.0.1:$(cat "$S3/listen-port")/v1/command"
    APIN="$(pin_of "$S3")"
    id3="$(cat "$S3/agent-id")"
    [ "$(push "$("$MK" --cert-pem "$ST/keys/$old.pem" --aud "$id3" --cmd ping)")" = 200 ]
    # Rotation: the new current certificate goes to the agent in an update-key signed with the old key.
    "$AUTHCERT_BIN/authcert" -c --store "$ST" --password-file "$D/pw"
    "$AUTHCERT_BIN/authcert" -e "$D/new-current.der" --store "$ST"
    new="$(ls "$ST/keys" | sed 's/\.pem$//' | grep -v "$old")"
    t="$("$MK" --cert-pem "$ST/keys/$old.pem" --aud "$id3" --cmd update-key --update-cert "$D/new-current.der")"
    [ "$(push "$t")" = 200 ]
    [ "$(jget "$D/body" status)" = ok ]
    cmp "$S3/authcert-server.der" "$D/new-current.der"
    [ "$(push "$("$MK" --cert-pem "$ST/keys/$new.pem" --aud "$id3" --cmd ping)")" = 200 ]
    [ "$(push "$("$MK" --cert-pem "$ST/keys/$old.pem" --aud "$id3" --cmd ping)")" = 401 ]
    kill "$pid"
    wait "$pid"
}
