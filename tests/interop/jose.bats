#!/usr/bin/env bats
# Our signed commands against an independent JOSE implementation: panva/jose
# on Node.js verifies our tokens with nothing but the agent certificate file
# (DER, turned into PEM by the openssl tool), and our verifier refuses the
# forgeries jose makes. The C side is tests/tools/jws_helper.c (built as $AUTHCERT_BIN/jws_helper).

setup_file() {
    : "${AUTHCERT_BIN:?}" "${AUTHCERT_SRC:?}" "${AUTHCERT_TEST_TMP:?}"
    export JOSE_PREFIX="$AUTHCERT_TEST_TMP/jose-npm"
    export JOSE_SKIP="$AUTHCERT_TEST_TMP/jose-npm.skip"
    rm -f "$JOSE_SKIP"
    mkdir -p "$JOSE_PREFIX"
    command -v node >/dev/null || { echo "node is not installed" >&2; return 1; }
    if [ ! -f "$JOSE_PREFIX/node_modules/jose/package.json" ]; then
        if ! npm install --prefix "$JOSE_PREFIX" jose@5 --no-audit --no-fund \
                >"$JOSE_PREFIX/npm.log" 2>&1; then
            # Only an unreachable registry is a reason to skip; anything else fails.
            if npm ping >/dev/null 2>&1; then
                cat "$JOSE_PREFIX/npm.log" >&2
                return 1
            fi
            echo "npm cannot reach its registry: jose not installed" >"$JOSE_SKIP"
        fi
    fi
}

need_jose() {
    [ ! -f "$JOSE_SKIP" ] || skip "$(cat "$JOSE_SKIP")"
}

setup() {
    D="$(mktemp -d "$AUTHCERT_TEST_TMP/jose.XXXXXX")"
    H="$AUTHCERT_BIN/jws_helper"
    NODE_TOOL="$AUTHCERT_SRC/tests/interop/jose_tool.cjs"
}

teardown() {
    [ -z "${D:-}" ] || rm -rf "$D"
}

# gen TYPE: cert and key in $D, and the PEM of the agent certificate file.
gen() {
    "$H" gen "$1" "$D/$1.der" "$D/$1.key"
    openssl x509 -inform DER -in "$D/$1.der" -out "$D/$1.pem"
}

jose_verify_ours() { # TYPE ALG
    gen "$1"
    tok="$("$H" sign "$D/$1.key" "$D/$1.der" agent-42 reboot)"
    run node "$NODE_TOOL" verify "$D/$1.pem" "$2" agent-42 "$tok"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" == *'"alg":"'"$2"'"'* ]]
    [[ "$output" == *'"cmd":"reboot"'* ]]
    [[ "$output" == *'"aud":"agent-42"'* ]]
    # x5t#S256 as jose read it is SHA-256 of the DER file, computed by openssl.
    fp="$(openssl dgst -sha256 -binary "$D/$1.der" | basenc --base64url | tr -d '=')"
    [[ "$output" == *'"x5t#S256":"'"$fp"'"'* ]]
    # Another audience: jose refuses it too.
    run node "$NODE_TOOL" verify "$D/$1.pem" "$2" agent-43 "$tok"
    [ "$status" -ne 0 ]
    [[ "$output" == *ERR_JWT_CLAIM_VALIDATION_FAILED* ]]
}

@test "jose verifies our EdDSA token with the agent certificate file" {
    need_jose
    jose_verify_ours ed25519 EdDSA
}

@test "jose verifies our ES256 token with the agent certificate file" {
    need_jose
    jose_verify_ours p256 ES256
}

@test "jose verifies our PS256 token with the agent certificate file" {
    need_jose
    jose_verify_ours rsa2048 PS256
}

@test "jose refuses a token of ours whose payload was altered" {
    need_jose
    gen p256
    tok="$("$H" sign "$D/p256.key" "$D/p256.der" agent-42 reboot)"
    IFS=. read -r h p s <<<"$tok"
    evil="$(printf '%s' "$p" | tr -- '-_' '+/' | base64 -d 2>/dev/null | sed 's/reboot/wipe-disk/' |
            basenc -w0 --base64url | tr -d '=')"
    [ "$evil" != "$p" ]
    run node "$NODE_TOOL" verify "$D/p256.pem" ES256 agent-42 "$h.$evil.$s"
    [ "$status" -ne 0 ]
    [[ "$output" == *ERR_JWS_SIGNATURE_VERIFICATION_FAILED* ]]
    run "$H" verify "$D/p256.der" agent-42 "$h.$evil.$s"
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad signature"* ]]
}

@test "our verifier accepts tokens jose signs with our key" {
    need_jose
    for t in ed25519:EdDSA p256:ES256 rsa2048:PS256; do
        gen "${t%%:*}"
        tok="$(node "$NODE_TOOL" sign "$D/${t%%:*}.key" "$D/${t%%:*}.der" "${t##*:}" agent-42)"
        run "$H" verify "$D/${t%%:*}.der" agent-42 "$tok"
        [ "$status" -eq 0 ] || { echo "${t}: $output"; return 1; }
        [[ "$output" == *'"iss":"node-jose"'* ]]
    done
}

@test "our verifier refuses jose-made forgeries" {
    need_jose
    for t in ed25519:EdDSA p256:ES256 rsa2048:PS256; do
        ty="${t%%:*}" alg="${t##*:}"
        gen "$ty"
        for kind in otherkey:"bad signature" none:"alg none refused" hs256pub:"alg HS256 refused"; do
            tok="$(node "$NODE_TOOL" forge "${kind%%:*}" "$D/$ty.der" "$alg" agent-42)"
            run "$H" verify "$D/$ty.der" agent-42 "$tok"
            [ "$status" -eq 1 ] || { echo "$ty ${kind%%:*}: accepted: $output"; return 1; }
            [[ "$output" == *"${kind#*:}"* ]] || { echo "$ty: $output"; return 1; }
        done
    done
    # RS256 with the genuine RSA key: a valid JOSE token, refused by our PS256-only profile.
    tok="$(node "$NODE_TOOL" sign "$D/rsa2048.key" "$D/rsa2048.der" RS256 agent-42)"
    run "$H" verify "$D/rsa2048.der" agent-42 "$tok"
    [ "$status" -eq 1 ]
    [[ "$output" == *"alg RS256 refused"* ]]
}

@test "our token for another agent is refused by our verifier" {
    gen ed25519
    tok="$("$H" sign "$D/ed25519.key" "$D/ed25519.der" agent-42 reboot)"
    run "$H" verify "$D/ed25519.der" agent-43 "$tok"
    [ "$status" -eq 1 ]
    [[ "$output" == *"is not this agent"* ]]
}

@test "jose walks the store's hand-off chain from the first certificate to the current one" {
    need_jose
    export AUTHCERT_STORE="$D/store"
    (umask 077 && echo 'correct horse battery staple 42' > "$D/pw" && echo 'orbit lantern quietly 7 rivers' > "$D/rs")
    "$AUTHCERT_BIN/authcert" -q -c --password-file "$D/pw" --recovery-file "$D/rs"
    first=$("$AUTHCERT_BIN/authcert" --status --json | jq -r .current)
    openssl x509 -in "$AUTHCERT_STORE/keys/$first.pem" -outform DER -out "$D/first.der"
    for _ in 1 2 3; do
        "$AUTHCERT_BIN/authcert" -q -c --password-file "$D/pw" --recovery-file "$D/rs"
    done
    cur=$("$AUTHCERT_BIN/authcert" --status --json | jq -r .current)
    run node "$NODE_TOOL" chain "$D/first.der" ES256 "$AUTHCERT_STORE/store.json"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 4 ]
    [ "${lines[0]}" = "$first" ]
    [ "${lines[3]}" = "$cur" ]
    # A statement altered in the store (one claim character): jose refuses the walk.
    python3 - "$AUTHCERT_STORE/store.json" "$D/tampered.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for c in s["certificates"]:
    if c.get("handoff"):
        h, p, sig = c["handoff"].split(".")
        p = p[:20] + ("A" if p[20] != "A" else "B") + p[21:]
        c["handoff"] = ".".join([h, p, sig])
json.dump(s, open(sys.argv[2], "w"))
PY
    run node "$NODE_TOOL" chain "$D/first.der" ES256 "$D/tampered.json"
    [ "$status" -ne 0 ]
}
