#!/usr/bin/env bats
# The admin tool's files read by tools nobody here wrote: openssl, 7z, bsdtar.
load ../cli/helpers

@test "openssl reads the exported agent certificate file; its SHA-256 is the thumbprint" {
    make_store
    authcert -q -e "$T/agent.der"
    run openssl x509 -inform DER -in "$T/agent.der" -noout -subject -fingerprint -sha256
    [ "$status" -eq 0 ]
    [[ "$output" == *"CN = authcert server authentication"* ]]
    [ "$(der_sha256 "$T/agent.der")" = "$(authcert --status --json | jq -r .current)" ]
    # Self-signed, and its key is for signatures.
    openssl x509 -inform DER -in "$T/agent.der" -noout -text > "$T/text"
    grep -q 'Digital Signature' "$T/text"
    [ "$(openssl x509 -inform DER -in "$T/agent.der" -noout -issuer | sed 's/issuer=//')" = \
      "$(openssl x509 -inform DER -in "$T/agent.der" -noout -subject | sed 's/subject=//')" ]
}

@test "7z and bsdtar open a backup with the password, and not without or with a wrong one" {
    make_store
    make_store
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    7z t -p"$PASS" "$T/b.zip" >/dev/null
    run 7z t -p"$OTHER" "$T/b.zip"
    [ "$status" -ne 0 ]
    run 7z t -p "$T/b.zip" </dev/null
    [ "$status" -ne 0 ]
    # Every member is AES-256 encrypted.
    7z l -slt -p"$PASS" "$T/b.zip" | grep '^Method' | sort -u > "$T/methods"
    [ "$(grep -vc 'AES-256' "$T/methods")" -eq 0 ]
    mkdir "$T/bsd" "$T/bsdbad" "$T/bsdnone"
    bsdtar -xf "$T/b.zip" --passphrase "$PASS" -C "$T/bsd"
    [ -f "$T/bsd/manifest.json" ]
    [ "$(ls "$T"/bsd/certs/*.pfx | wc -l)" -eq 2 ]
    run bsdtar -xf "$T/b.zip" --passphrase "$OTHER" -C "$T/bsdbad"
    [ "$status" -ne 0 ]
    # Without a passphrase bsdtar asks, gets nothing, and gives up.
    run bash -c 'bsdtar -xf "$1" -C "$2" </dev/null 2>/dev/null' _ "$T/b.zip" "$T/bsdnone"
    [ "$status" -ne 0 ]
    # It leaves placeholder files behind, but never the real content.
    for d in bsdbad bsdnone; do
        ! cmp -s "$T/bsd/manifest.json" "$T/$d/manifest.json"
    done
}

@test "openssl reads each PKCS#12 member of a backup with the same password" {
    make_store --key-type ed25519
    make_store --key-type rsa2048
    make_store
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    mkdir "$T/x"
    7z x -p"$PASS" -o"$T/x" "$T/b.zip" >/dev/null
    jq -e '.' "$T/x/manifest.json" >/dev/null
    n=0
    for m in "$T"/x/certs/*.pfx; do
        openssl pkcs12 -in "$m" -passin pass:"$PASS" -noout
        # The member's certificate is the one its name says.
        t=$(openssl pkcs12 -in "$m" -passin pass:"$PASS" -nokeys -clcerts 2>/dev/null |
            openssl x509 -outform DER | sha256sum | cut -c1-64)
        [ "$(basename "$m" .pfx)" = "$t" ]
        run openssl pkcs12 -in "$m" -passin pass:"$OTHER" -noout
        [ "$status" -ne 0 ]
        n=$((n + 1))
    done
    [ "$n" -eq 3 ]
}

@test "PFX files made by openssl (legacy and modern) import and become current" {
    for kind in legacy modern; do
        openssl_cert "$T/$kind.key" "$T/$kind.crt" "$kind"
        extra=(); [ "$kind" = legacy ] && extra=(-legacy)
        openssl pkcs12 -export "${extra[@]}" -inkey "$T/$kind.key" -in "$T/$kind.crt" \
            -passout pass:"$PASS" -out "$T/$kind.pfx"
        authcert -q -i --password-file "$PWF" "$T/$kind.pfx"
        [ "$(current_thumb)" = "$(openssl x509 -in "$T/$kind.crt" -outform DER | sha256sum | cut -c1-64)" ]
    done
    [ "$(authcert --status --json | jq -r '.certificates[1].state')" = expired ]
    # And the imported certificate is exported byte for byte as openssl has it.
    authcert -q -e "$T/agent.der"
    openssl x509 -in "$T/modern.crt" -outform DER -out "$T/modern.der"
    cmp "$T/agent.der" "$T/modern.der"
}

@test "a restore into a fresh store exports a byte-identical agent certificate file" {
    make_store
    make_store --key-type ed25519
    authcert -q -e "$T/before.der"
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    authcert -q -r --store "$T/reinstalled" --password-file "$PWF" "$T/b.zip"
    authcert -q -e --store "$T/reinstalled" "$T/after.der"
    cmp "$T/before.der" "$T/after.der"
    authcert -q -re --store "$T/reinstalled-re" --password-file "$PWF" "$T/b.zip"
    authcert -q -e --store "$T/reinstalled-re" "$T/after-re.der"
    cmp "$T/before.der" "$T/after-re.der"
}
