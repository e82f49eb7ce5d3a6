#!/usr/bin/env bats
# authcert -i: a certificate and key from a PKCS#12/PFX file.
load helpers

pfx() { # OUT [openssl pkcs12 options...]
    local out=$1; shift
    openssl pkcs12 -export -inkey "$T/k.pem" -in "$T/c.pem" -passout pass:"$PASS" -out "$out" "$@"
}

refuse_import() { # CODE ARGS...; took: authcert's wall and CPU seconds
    local code=$1; shift
    local before
    before=$(store_digest)
    run --separate-stderr /usr/bin/time -f '%e %U %S' -o "$T/took" "$AUTHCERT_BIN/authcert" "$@"
    took=$(tail -n 1 "$T/took")
    [ "$status" -eq "$code" ] || { echo "exit $status, want $code: $stderr" >&2; return 1; }
    assert_one_error_line
    assert_nothing_changed_msg
    [ "$(store_digest)" = "$before" ] || { echo "the store changed" >&2; return 1; }
}

@test "-i PASSWORD PFX (modern) becomes current; the previous one expired" {
    make_store
    old=$(current_thumb)
    openssl_cert "$T/k.pem" "$T/c.pem"
    pfx "$T/new.pfx"
    run --separate-stderr authcert -i "$PASS" "$T/new.pfx"
    [ "$status" -eq 0 ]
    want=$(openssl x509 -in "$T/c.pem" -outform DER | sha256sum | cut -c1-64)
    [ "$(current_thumb)" = "$want" ]
    [ "$(state_of "$old")" = expired ]
    [[ "$output" == *"$want"* ]]
}

@test "-i of a legacy PFX (RC2/3DES, as Windows exports) into a fresh store" {
    openssl_cert "$T/k.pem" "$T/c.pem"
    pfx "$T/legacy.pfx" -legacy
    run authcert -i --password-file "$PWF" "$T/legacy.pfx"
    [ "$status" -eq 0 ]
    [ "$(current_thumb)" = "$(openssl x509 -in "$T/c.pem" -outform DER | sha256sum | cut -c1-64)" ]
}

@test "-i of an RSA PFX" {
    openssl req -x509 -newkey rsa:2048 -nodes "${LEAF_EXT[@]}" -keyout "$T/k.pem" -out "$T/c.pem" -days 30 -subj /CN=rsa 2>/dev/null
    pfx "$T/rsa.pfx"
    authcert -q -i --password-file "$PWF" "$T/rsa.pfx"
    [ "$(authcert --status --json | jq -r .certificates[0].key_type)" = rsa2048 ]
}

@test "-i --as-expired adds it as expired; the current one stays" {
    make_store
    cur=$(current_thumb)
    openssl_cert "$T/k.pem" "$T/c.pem"
    pfx "$T/old.pfx"
    authcert -q -i --as-expired --password-file "$PWF" "$T/old.pfx"
    [ "$(current_thumb)" = "$cur" ]
    old=$(openssl x509 -in "$T/c.pem" -outform DER | sha256sum | cut -c1-64)
    [ "$(state_of "$old")" = expired ]
}

@test "-i with a wrong password: 3, nothing changed" {
    make_store
    openssl_cert "$T/k.pem" "$T/c.pem"
    pfx "$T/new.pfx"
    refuse_import 3 -i "$OTHER" "$T/new.pfx"
    pfx "$T/legacy.pfx" -legacy
    refuse_import 3 -i "$OTHER" "$T/legacy.pfx"
}

@test "-i of a PFX without a key: 5, nothing changed" {
    make_store
    openssl_cert "$T/k.pem" "$T/c.pem"
    openssl pkcs12 -export -nokeys -in "$T/c.pem" -passout pass:"$PASS" -out "$T/nokey.pfx"
    refuse_import 5 -i "$PASS" "$T/nokey.pfx"
}

@test "-i of a PFX whose key does not match its certificate: 5, nothing changed" {
    make_store
    openssl_cert "$T/k.pem" "$T/c.pem"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.pem"
    # openssl pkcs12 refuses to pair them itself; -nocerts + -certfile puts
    # the key and an unrelated certificate in one file all the same.
    openssl pkcs12 -export -nocerts -inkey "$T/other.pem" -certfile "$T/c.pem" \
        -passout pass:"$PASS" -out "$T/mismatch.pfx" 2>/dev/null
    openssl pkcs12 -in "$T/mismatch.pfx" -passin pass:"$PASS" -nodes | grep -q 'BEGIN CERTIFICATE'
    refuse_import 5 -i "$PASS" "$T/mismatch.pfx"
}

@test "-i of an empty file, noise, a missing file, and a file over 1 MiB" {
    make_store
    : > "$T/empty.pfx"
    refuse_import 5 -i "$PASS" "$T/empty.pfx"
    head -c 3000 /dev/urandom > "$T/noise.pfx"
    refuse_import 5 -i "$PASS" "$T/noise.pfx"
    refuse_import 9 -i "$PASS" "$T/missing.pfx"
    head -c $((1024 * 1024 + 1)) /dev/zero > "$T/big.pfx"
    refuse_import 5 -i "$PASS" "$T/big.pfx"
}

@test "-i of a revoked certificate as current is refused (10)" {
    openssl_cert "$T/k.pem" "$T/c.pem"
    pfx "$T/leaked.pfx"
    authcert -q -i --password-file "$PWF" "$T/leaked.pfx"
    authcert -q -c --compromised --password-file "$PWF"
    refuse_import 10 -i "$PASS" "$T/leaked.pfx"
}

# The certificate policy (issue 14, item 4). Certificates with any dates and
# extensions come from tests/tools/mkcert.py (python3-cryptography).
policy_pfx() { # NAME [mkcert.py options...]: $T/NAME.pfx
    local name=$1; shift
    python3 "$AUTHCERT_SRC/tests/tools/mkcert.py" "$T/$name" "$@"
    openssl pkcs12 -export -inkey "$T/$name.key" -in "$T/$name.crt" -passout pass:"$PASS" \
        -out "$T/$name.pfx"
}

@test "-i of an expired PFX is refused (10) with one line naming --as-expired; with it, added as expired" {
    make_store
    cur=$(current_thumb)
    policy_pfx expired --days-from -400 --days-to -1
    refuse_import 10 -i "$PASS" "$T/expired.pfx"
    [[ "$stderr" == *"certificate "*": expired on "*": import it with --as-expired (nothing was changed)" ]]
    # Into no store at all: refused the same, and no store is made.
    refuse_import 10 -i --store "$T/none" "$PASS" "$T/expired.pfx"
    [ ! -e "$T/none" ]
    # With --as-expired it is kept to roll agents over, and the current one stays.
    run --separate-stderr authcert -i --as-expired "$PASS" "$T/expired.pfx"
    [ "$status" -eq 0 ]
    old=$(openssl x509 -in "$T/expired.crt" -outform DER | sha256sum | cut -c1-64)
    [ "$(state_of "$old")" = expired ]
    [ "$(current_thumb)" = "$cur" ]
}

@test "-i of a PFX not valid yet (tomorrow) is refused (10), nothing changed" {
    make_store
    policy_pfx future --days-from 1 --days-to 400
    refuse_import 10 -i "$PASS" "$T/future.pfx"
    [[ "$stderr" == *": not valid before "* ]]
}

@test "-i of a CA PFX is refused (10), also --as-expired: keyCertSign only, and openssl req -x509's default" {
    make_store
    policy_pfx ca --kind ca-certsign
    refuse_import 10 -i "$PASS" "$T/ca.pfx"
    [[ "$stderr" == *": a CA certificate"* ]]
    refuse_import 10 -i --as-expired "$PASS" "$T/ca.pfx"
    # `openssl req -x509` without -addext writes basicConstraints CA:TRUE.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/k.pem" -out "$T/c.pem" -days 30 -subj /CN=plain 2>/dev/null
    pfx "$T/plain.pfx"
    refuse_import 10 -i "$PASS" "$T/plain.pfx"
    [[ "$stderr" == *"a CA certificate (basic constraints cA true): make it with CA:FALSE"* ]]
}

@test "-i of a PFX with an unknown critical extension is refused (10), nothing changed" {
    make_store
    policy_pfx crit --kind unknown-critical
    refuse_import 10 -i "$PASS" "$T/crit.pfx"
    [[ "$stderr" == *": unknown critical extension 1.3.6.1.4.1.55555.1 (nothing was changed)" ]]
    refuse_import 10 -i --as-expired "$PASS" "$T/crit.pfx"
}

@test "control: a valid PFX from another implementation becomes current; another key type warns" {
    make_store
    policy_pfx good
    run --separate-stderr authcert -i "$PASS" "$T/good.pfx"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$(current_thumb)" = "$(openssl x509 -in "$T/good.crt" -outform DER | sha256sum | cut -c1-64)" ]
    # Ed25519 after P-256: imported, but the agents will not follow by update-key.
    policy_pfx ed --type ed25519
    run --separate-stderr authcert -i "$PASS" "$T/ed.pfx"
    [ "$status" -eq 0 ]
    [[ "$stderr" == "authcert: import: warning: agents refuse a key update from key type p256 to ed25519: copy the agent certificate file (-e) to each of them" ]]
    [ "$(current_thumb)" = "$(openssl x509 -in "$T/ed.crt" -outform DER | sha256sum | cut -c1-64)" ]
}

# refuse_import, and authcert used less than a second of CPU and ran less
# than five (both x AUTHCERT_TEST_SLOWER): the refusal came before the cost.
# CPU time, because the wall clock of a loaded test machine says little.
refuse_import_quickly() { # CODE ARGS...
    local wall user sys slower=${AUTHCERT_TEST_SLOWER:-1}
    refuse_import "$@"
    read -r wall user sys <<< "$took"
    awk -v w="$wall" -v u="$user" -v y="$sys" -v s="$slower" \
        'BEGIN { exit !(u + y < s && w < 5 * s) }' ||
        { echo "took $wall s, $user s user + $sys s system" >&2; return 1; }
}

@test "-i of a PFX asking 2^31-1 iterations (MAC, encrypted safe or key): 5 in under a second, nothing changed" {
    make_store
    openssl_cert "$T/k.pem" "$T/c.pem"
    pfx "$T/modern.pfx"
    pfx "$T/legacy.pfx" -legacy
    for f in modern legacy; do
        for what in mac safe key; do
            # Patched, as an attacker would: openssl would take hours to write it.
            "$AUTHCERT_BIN/pfx_iter" "$what" 2147483647 "$PASS" "$T/$f.pfx" "$T/$f-$what.pfx"
            refuse_import_quickly 5 -i "$PASS" "$T/$f-$what.pfx"
            [[ "$stderr" == *"asks for 2147483647 iterations (at most 10000000)"* ]]
        done
    done
}

@test "control: PFX files as openssl (-iter 2048, -legacy) and authcert -b write them still import" {
    openssl_cert "$T/k.pem" "$T/c.pem"
    pfx "$T/modern.pfx" -iter 2048
    pfx "$T/legacy.pfx" -legacy
    authcert -q -i --store "$T/s1" --password-file "$PWF" "$T/modern.pfx"
    authcert -q -i --store "$T/s2" --password-file "$PWF" "$T/legacy.pfx"
    want=$(openssl x509 -in "$T/c.pem" -outform DER | sha256sum | cut -c1-64)
    [ "$(current_thumb --store "$T/s1")" = "$want" ]
    [ "$(current_thumb --store "$T/s2")" = "$want" ]
    # A PKCS#12 out of our own backup.
    make_store
    own=$(current_thumb)
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    7z x -o"$T/x" -p"$PASS" "$T/b.zip" >/dev/null
    authcert -q -i --store "$T/s3" --password-file "$PWF" "$T/x/certs/$own.pfx"
    [ "$(current_thumb --store "$T/s3")" = "$own" ]
}

@test "-i of a FIFO (or a device) is refused (2) at once, not waited on" {
    make_store
    mkfifo "$T/x.pfx"
    [ "$(id -u)" -ne 0 ] || chown nobody "$T/x.pfx"   # as another user would leave it
    before=$(store_digest)
    # A hang is the failure: timeout's 124 is not 2.
    run --separate-stderr timeout 10 "$AUTHCERT_BIN/authcert" -i "$PASS" "$T/x.pfx"
    [ "$status" -eq 2 ] || { echo "exit $status: $stderr" >&2; false; }
    assert_one_error_line
    [[ "$stderr" == *"not a regular file"* ]]
    run --separate-stderr timeout 10 "$AUTHCERT_BIN/authcert" -i "$PASS" /dev/zero
    [ "$status" -eq 2 ]
    [ "$(store_digest)" = "$before" ]
}
