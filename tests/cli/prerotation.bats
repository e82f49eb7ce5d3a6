#!/usr/bin/env bats
# Pre-rotation: -c commits to a successor key sealed with a recovery secret,
# the next -c promotes exactly that key, and nothing else becomes current
# while a commitment stands (docs/operations.md, "Pre-rotation").
load helpers

RS='orbit lantern quietly 7 rivers'
OID=2.25.43928483603551435612044611491830138667


rs_file() { # the recovery secret in a 0600 file
    (umask 077 && printf '%s\n' "$RS" > "$T/rs")
}

commits_to() { # [THUMBPRINT]: the commitment of a certificate (default: current)
    local t=${1:-$(current_thumb)}
    authcert --status --json | jq -r --arg t "$t" '.certificates[] | select(.thumbprint == $t) | .commits_to'
}

cert_pem() { # THUMBPRINT: its certificate, PEM, from the store
    sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$AUTHCERT_STORE/keys/$1.pem"
}

spki_of_cert() { # THUMBPRINT: SHA-256 of its SubjectPublicKeyInfo, by openssl
    cert_pem "$1" | openssl x509 -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1
}

refuse() { # CODE ARGS...: one line, the documented code, the store as it was
    local code=$1; shift
    local before
    before=$(store_digest)
    EXTRA_SECRET=$RS run --separate-stderr "$AUTHCERT_BIN/authcert" "$@"
    [ "$status" -eq "$code" ] || { echo "exit $status, want $code: $stderr" >&2; return 1; }
    EXTRA_SECRET=$RS assert_one_error_line
    assert_nothing_changed_msg
    [ "$(store_digest)" = "$before" ] || { echo "the store changed" >&2; return 1; }
}

@test "-c with a recovery secret: the certificate commits to a sealed successor that openssl opens with the secret only" {
    rs_file
    run --separate-stderr authcert -c --password-file "$PWF" --recovery-file "$T/rs"
    [ "$status" -eq 0 ]
    [[ "$output" == *"commits to a successor key"* ]]
    [ -z "$stderr" ]
    t=$(current_thumb)
    h=$(commits_to)
    [[ "$h" =~ ^[0-9a-f]{64}$ ]]
    [ "$(authcert --status --json | jq -r .next_key.where)" = sealed ]
    [ "$(authcert --status --json | jq -r .next_key.commitment)" = "$h" ]
    f="$AUTHCERT_STORE/keys/next-$h.pem"
    [ "$(stat -c %a "$f")" = 600 ]
    ! grep -q 'BEGIN PRIVATE KEY' "$f"
    # openssl reads the certificate and shows the extension, non-critical, as unknown.
    cert_pem "$t" > "$T/c.pem"
    openssl x509 -in "$T/c.pem" -noout -text > "$T/text"
    grep -q "$OID: *\$" "$T/text"
    ! grep -q "$OID: critical" "$T/text"
    # openssl opens the sealed key with the recovery secret; its SPKI is the commitment.
    openssl pkey -in "$f" -passin file:"$T/rs" -pubout -outform DER | sha256sum | grep -q "^$h "
    # Neither the store password nor no secret opens it.
    ! openssl pkey -in "$f" -passin file:"$PWF" -noout 2>/dev/null
    ! openssl pkey -in "$f" -passin pass: -noout 2>/dev/null
    # The public block, without any secret, names the commitment too.
    openssl pkey -pubin -in "$f" -outform DER | sha256sum | grep -q "^$h "
}

@test "the next -c promotes exactly the committed key and commits to a fresh one" {
    rs_file
    make_store --recovery-file "$T/rs"
    old=$(current_thumb)
    h=$(commits_to)
    run --separate-stderr authcert -c --password-file "$PWF" --recovery-file "$T/rs"
    [ "$status" -eq 0 ]
    [[ "$output" == *"committed successor key became current"* ]]
    new=$(current_thumb)
    [ "$new" != "$old" ]
    [ "$(spki_of_cert "$new")" = "$h" ]
    h2=$(commits_to)
    [[ "$h2" =~ ^[0-9a-f]{64}$ ]] && [ "$h2" != "$h" ]
    [ "$(commits_to "$old")" = "$h" ]
    [ "$(state_of "$old")" = expired ]
    # The promoted key's sealed file is gone; the fresh one is there.
    [ ! -e "$AUTHCERT_STORE/keys/next-$h.pem" ]
    [ -f "$AUTHCERT_STORE/keys/next-$h2.pem" ]
    [ "$(ls "$AUTHCERT_STORE/keys" | grep -c '^next-')" = 1 ]
    # And again: a chain of promotions.
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
    [ "$(spki_of_cert "$(current_thumb)")" = "$h2" ]
}

@test "--key-type on a first commitment chooses both keys; later, a successor of another family is refused" {
    rs_file
    make_store --recovery-file "$T/rs" --key-type ed25519
    [ "$(authcert --status --json | jq -r .certificates[0].key_type)" = ed25519 ]
    grep -q '"type": "ed25519"' "$AUTHCERT_STORE/store.json"
    f=$(ls "$AUTHCERT_STORE"/keys/next-*.pem)
    openssl pkey -pubin -in "$f" -noout -text | grep -qi ed25519
    # Agents on an Ed25519 certificate refuse a key update to P-256: a P-256
    # successor would strand them for good, so it is refused now.
    refuse 10 -c --password-file "$PWF" --recovery-file "$T/rs" --key-type p256
    [[ "$stderr" == *"p256 successor for a ed25519 key"* ]]
    # RSA may grow, never shrink.
    export AUTHCERT_STORE="$T/rsa"
    make_store --recovery-file "$T/rs" --key-type rsa2048
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs" --key-type rsa3072
    refuse 10 -c --password-file "$PWF" --recovery-file "$T/rs" --key-type rsa2048
}

@test "while a commitment stands, -c without the secret, with a wrong one, or with the password as secret changes nothing" {
    rs_file
    make_store --recovery-file "$T/rs"
    refuse 2 -c --password-file "$PWF" </dev/null
    [[ "$stderr" == *"sealed with the recovery secret"* ]]
    (umask 077 && printf '%s\n' "$OTHER" > "$T/wrong")
    refuse 3 -c --password-file "$PWF" --recovery-file "$T/wrong"
    [[ "$stderr" == *"recovery secret does not open"* ]]
    # Control: the right secret.
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
}

@test "the recovery secret must not be the store password" {
    run --separate-stderr authcert -c --password-file "$PWF" --recovery-file "$PWF"
    [ "$status" -eq 2 ]
    assert_one_error_line
    [[ "$stderr" == *"must not be the store password"* ]]
    [ ! -e "$AUTHCERT_STORE" ]
}

@test "a weak recovery secret on the first -c leaves no store; a readable secret file is refused" {
    (umask 077 && printf 'password1\n' > "$T/weak")
    run --separate-stderr authcert -c --password-file "$PWF" --recovery-file "$T/weak"
    [ "$status" -eq 4 ]
    [[ "$stderr" == "authcert: create: recovery secret: "* ]]
    [ ! -e "$AUTHCERT_STORE" ]
    rs_file
    chmod 0666 "$T/rs"
    run --separate-stderr authcert -c --password-file "$PWF" --recovery-file "$T/rs"
    [ "$status" -eq 8 ]
    [ ! -e "$AUTHCERT_STORE" ]
}

@test "without a recovery secret -c says it commits to nothing, as before" {
    run --separate-stderr authcert -c --password-file "$PWF" </dev/null
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [[ "$output" == *"commits to no successor key"* ]]
    [ "$(commits_to)" = null ]
    [ "$(authcert --status --json | jq -r .next_key)" = null ]
    # A later -c may begin a commitment.
    rs_file
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
    [[ "$(commits_to)" =~ ^[0-9a-f]{64}$ ]]
}

@test "--next-key export moves the sealed key off the store; -c waits for its import; a foreign file is refused" {
    rs_file
    make_store --recovery-file "$T/rs"
    h=$(commits_to)
    # Never over an existing file.
    touch "$T/there.pem"
    refuse 2 --next-key export "$T/there.pem"
    [ ! -s "$T/there.pem" ]
    # Not into the store itself, where its sweep would remove it.
    refuse 2 --next-key export "$AUTHCERT_STORE/keys/next-0000000000000000000000000000000000000000000000000000000000000000.pem"
    run --separate-stderr authcert --next-key export "$T/next.pem"
    [ "$status" -eq 0 ]
    [ "$(stat -c %a "$T/next.pem")" = 600 ]
    [ ! -e "$AUTHCERT_STORE/keys/next-$h.pem" ]
    [ "$(authcert --status --json | jq -r .next_key.where)" = exported ]
    authcert --status | grep -q 'next key: *exported'
    refuse 9 --next-key export "$T/again.pem"
    refuse 9 -c --password-file "$PWF" --recovery-file "$T/rs"
    [[ "$stderr" == *"--next-key import"* ]]
    # Another store's sealed key answers another commitment.
    mkdir "$T/o"
    AUTHCERT_STORE="$T/o/s" authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
    refuse 10 --next-key import "$T/o/s/keys/$(ls "$T/o/s/keys" | grep '^next-')"
    head -c 100 "$T/next.pem" > "$T/cut.pem"
    refuse 5 --next-key import "$T/cut.pem"
    # Without the recovery secret the file cannot be checked: refused.
    refuse 2 --next-key import "$T/next.pem" </dev/null
    # Our public block over another key's sealed block (same secret): refused.
    sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p' "$T/next.pem" > "$T/mixed.pem"
    sed -n '/BEGIN ENCRYPTED/,/END ENCRYPTED/p' "$T"/o/s/keys/next-*.pem >> "$T/mixed.pem"
    refuse 5 --next-key import "$T/mixed.pem" --recovery-file "$T/rs"
    # Control: its own file comes back, and -c promotes it.
    authcert -q --next-key import "$T/next.pem" --recovery-file "$T/rs"
    [ "$(authcert --status --json | jq -r .next_key.where)" = sealed ]
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
    [ "$(spki_of_cert "$(current_thumb)")" = "$h" ]
}

@test "-i and -r of another certificate are refused while a commitment stands, and allowed with --break-commitment" {
    rs_file
    # A backup of another store, and a PFX of another key.
    mkdir "$T/o"
    AUTHCERT_STORE="$T/o/s" authcert -q -c --password-file "$PWF"
    AUTHCERT_STORE="$T/o/s" authcert -q -b --password-file "$PWF" "$T/o/other.zip"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=x -days 30 \
        -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
        -keyout "$T/k.pem" -out "$T/c.pem" 2>/dev/null
    openssl pkcs12 -export -inkey "$T/k.pem" -in "$T/c.pem" -passout pass:"$PASS" -out "$T/x.pfx"
    make_store --recovery-file "$T/rs"
    refuse 10 -i --password-file "$PWF" "$T/x.pfx"
    [[ "$stderr" == *"--break-commitment"* ]]
    refuse 10 -r --password-file "$PWF" "$T/o/other.zip"
    # As expired it does not replace the current one: allowed.
    authcert -q -i --password-file "$PWF" --as-expired "$T/x.pfx"
    # Broken on purpose: allowed, with a warning that agents cannot follow.
    run --separate-stderr authcert -i --password-file "$PWF" --break-commitment "$T/x.pfx"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"cannot follow"* ]]
    [ "$(commits_to)" = null ]
    [ "$(authcert --status --json | jq -r .next_key)" = null ]
    [ "$(ls "$AUTHCERT_STORE/keys" | grep -c '^next-' || true)" = 0 ]
}

@test "-c --break-commitment replaces a committing certificate with a fresh key, and says so" {
    rs_file
    make_store --recovery-file "$T/rs"
    h=$(commits_to)
    run --separate-stderr authcert -c --password-file "$PWF" --break-commitment </dev/null
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"cannot follow"* ]]
    [ "$(spki_of_cert "$(current_thumb)")" != "$h" ]
}

@test "-b carries the sealed successor (still sealed) and -r restores it: the restored store promotes it" {
    rs_file
    make_store --recovery-file "$T/rs"
    h=$(commits_to)
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    # Another tool sees the member; inside the archive it is still sealed.
    bsdtar -tf "$T/b.zip" | grep -qx next-key.pem
    mkdir "$T/x"
    bsdtar -xf "$T/b.zip" --passphrase "$PASS" -C "$T/x" next-key.pem
    ! grep -q 'BEGIN PRIVATE KEY' "$T/x/next-key.pem"
    openssl pkey -in "$T/x/next-key.pem" -passin file:"$T/rs" -pubout -outform DER | sha256sum | grep -q "^$h "
    # Restored on another machine: the commitment is whole, -c promotes.
    export AUTHCERT_STORE="$T/restored"
    authcert -q -r --password-file "$PWF" "$T/b.zip"
    [ "$(authcert --status --json | jq -r .next_key.where)" = sealed ]
    [ "$(authcert --status --json | jq -r .next_key.commitment)" = "$h" ]
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
    [ "$(spki_of_cert "$(current_thumb)")" = "$h" ]
}

@test "-b of a store whose successor was exported records that; -r restores the record" {
    rs_file
    make_store --recovery-file "$T/rs"
    authcert -q --next-key export "$T/next.pem"
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    ! bsdtar -tf "$T/b.zip" | grep -q next-key.pem
    export AUTHCERT_STORE="$T/restored"
    authcert -q -r --password-file "$PWF" "$T/b.zip"
    [ "$(authcert --status --json | jq -r .next_key.where)" = exported ]
    authcert -q --next-key import "$T/next.pem" --recovery-file "$T/rs"
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
}

@test "a restore never takes a step down: the sealed key stays when the backup says exported" {
    rs_file
    make_store --recovery-file "$T/rs"
    h=$(commits_to)
    authcert -q --next-key export "$T/next.pem"
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    authcert -q --next-key import "$T/next.pem" --recovery-file "$T/rs"
    rm "$T/next.pem"   # as the tool says it may be
    authcert -q -r --password-file "$PWF" "$T/b.zip"
    [ "$(authcert --status --json | jq -r .next_key.where)" = sealed ]
    [ -f "$AUTHCERT_STORE/keys/next-$h.pem" ]
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
    [ "$(spki_of_cert "$(current_thumb)")" = "$h" ]
}

@test "key files the index does not name (a writer killed before its commit) are removed by the next writer" {
    rs_file
    make_store --recovery-file "$T/rs"
    h=$(commits_to)
    o=$(printf 'a%.0s' $(seq 64))
    cp "$AUTHCERT_STORE/keys/$(current_thumb).pem" "$AUTHCERT_STORE/keys/$o.pem"
    cp "$AUTHCERT_STORE/keys/next-$h.pem" "$AUTHCERT_STORE/keys/next-$o.pem"
    # A reader leaves them; the next writer removes them, and only them.
    authcert --status >/dev/null
    [ -f "$AUTHCERT_STORE/keys/$o.pem" ]
    authcert -q --next-key export "$T/next.pem"
    authcert -q --next-key import "$T/next.pem" --recovery-file "$T/rs"
    [ ! -e "$AUTHCERT_STORE/keys/$o.pem" ] && [ ! -e "$AUTHCERT_STORE/keys/next-$o.pem" ]
    [ -f "$AUTHCERT_STORE/keys/next-$h.pem" ] && [ -f "$AUTHCERT_STORE/keys/$(current_thumb).pem" ]
}

@test "a backup whose next-key member was swapped or left out of the manifest is refused, the store unchanged" {
    rs_file
    make_store --recovery-file "$T/rs"
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    mkdir "$T/x"
    bsdtar -xf "$T/b.zip" --passphrase "$PASS" -C "$T/x"
    # Another store's sealed key in its place, the manifest as it was.
    AUTHCERT_STORE="$T/o" authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
    cp "$T"/o/keys/next-*.pem "$T/x/next-key.pem"
    (cd "$T/x" && 7z a -tzip -mem=AES256 -p"$PASS" "$T/swapped.zip" manifest.json server-secret.bin certs next-key.pem >/dev/null)
    refuse 5 -r --password-file "$PWF" "$T/swapped.zip"
    [[ "$stderr" == *"next-key.pem"* ]]
    # The member without its manifest entry.
    jq 'del(.next_key)' "$T/x/manifest.json" > "$T/x/m" && mv "$T/x/m" "$T/x/manifest.json"
    (cd "$T/x" && 7z a -tzip -mem=AES256 -p"$PASS" "$T/unlisted.zip" manifest.json server-secret.bin certs next-key.pem >/dev/null)
    refuse 5 -r --password-file "$PWF" "$T/unlisted.zip"
    [[ "$stderr" == *"next-key.pem"* ]]
}

@test "each -c has the outgoing key sign a hand-off statement; -b/-r carry them; a leaked key signs one only to its committed successor" {
    rs_file
    make_store --recovery-file "$T/rs"
    first=$(current_thumb)
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
    second=$(current_thumb)
    [ "$(authcert --status --json | jq -r --arg t "$first" '.certificates[] | select(.thumbprint == $t) | .handoff')" = true ]
    [ "$(authcert --status --json | jq -r --arg t "$second" '.certificates[] | select(.thumbprint == $t) | .handoff')" = false ]
    authcert --status | grep -q 'hand-off: *signed for its successor'
    # The statement names the two certificates (jose.bats verifies the chain).
    jws=$(jq -r --arg t "$first" '.certificates[] | select(.thumbprint == $t) | .handoff' "$AUTHCERT_STORE/store.json")
    payload=$(python3 -c 'import base64,sys; p=sys.argv[1].split(".")[1]; print(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)).decode())' "$jws")
    [[ "$payload" == *"\"from\":\"$first\""* ]] && [[ "$payload" == *"\"thumbprint\":\"$second\""* ]]
    # Through a backup to another store.
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    AUTHCERT_STORE="$T/r" authcert -q -r --password-file "$PWF" "$T/b.zip"
    [ "$(jq -r --arg t "$first" '.certificates[] | select(.thumbprint == $t) | .handoff' "$T/r/store.json")" = "$jws" ]
    # A leaked key with a commitment signs its one hand-off, to the committed successor.
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs" --compromised
    third=$(current_thumb)
    [ "$(state_of "$second")" = revoked ]
    jws=$(jq -r --arg t "$second" '.certificates[] | select(.thumbprint == $t) | .handoff' "$AUTHCERT_STORE/store.json")
    payload=$(python3 -c 'import base64,sys; p=sys.argv[1].split(".")[1]; print(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)).decode())' "$jws")
    [[ "$payload" == *"\"thumbprint\":\"$third\""* ]]
    # Without a commitment, a leaked key signs nothing (the original tool's way).
    export AUTHCERT_STORE="$T/plain"
    make_store </dev/null
    old=$(current_thumb)
    authcert -q -c --password-file "$PWF" --compromised </dev/null
    [ "$(authcert --status --json | jq -r --arg t "$old" '.certificates[] | select(.thumbprint == $t) | .handoff')" = false ]
}

@test "after a restore into a fresh store the next statement's generation is past every restored one" {
    rs_file
    make_store --recovery-file "$T/rs"
    for _ in 1 2; do authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"; done
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    export AUTHCERT_STORE="$T/restored"
    authcert -q -r --password-file "$PWF" "$T/b.zip"
    authcert -q -c --password-file "$PWF" --recovery-file "$T/rs"
    # Every statement's gen, in the order the chain goes: strictly increasing.
    python3 - "$AUTHCERT_STORE/store.json" <<'PY'
import base64, json, sys
s = json.load(open(sys.argv[1]))
links = {}
for c in s["certificates"]:
    if c.get("handoff"):
        p = c["handoff"].split(".")[1]
        a = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["args"]
        links[a["from"]] = a
froms = set(links)
tos = {a["thumbprint"] for a in links.values()}
(start,) = froms - tos
gens = []
while start in links:
    gens.append(links[start]["gen"])
    start = links[start]["thumbprint"]
assert len(gens) == 3 and gens == sorted(gens) and len(set(gens)) == 3, gens
PY
}

@test "a hand-off statement is never pushed as a command" {
    run --separate-stderr authcert --push hand-off --all
    [ "$status" -eq 2 ]
    assert_one_error_line
    [[ "$stderr" == *"hand-off is not a command"* ]]
}
