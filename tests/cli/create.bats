#!/usr/bin/env bats
# authcert -c: create the store, replace the current certificate.
load helpers

@test "-c on a fresh store creates it (0700, keys 0600) with one current certificate" {
    run --separate-stderr authcert -c --password-file "$PWF"
    [ "$status" -eq 0 ]
    [[ "$output" == *"new current certificate: "* ]]
    [ "$(stat -c %a "$AUTHCERT_STORE")" = 700 ]
    [ -f "$AUTHCERT_STORE/store.json" ]
    t=$(current_thumb)
    [[ "$t" =~ ^[0-9a-f]{64}$ ]]
    [[ "$output" == *"$t"* ]]
    [ "$(stat -c %a "$AUTHCERT_STORE/keys/$t.pem")" = 600 ]
    [ "$(authcert --status --json | jq -r '.certificates[0].key_type')" = p256 ]
    [ "$(authcert --status --json | jq '.certificates | length')" = 1 ]
    assert_no_password
}

@test "-c PASSWORD on the command line, as in the seed" {
    run authcert -c "$PASS"
    [ "$status" -eq 0 ]
    [ "$(authcert --status --json | jq -r .certificates[0].state)" = current ]
}

@test "--store DIR and --store=DIR both name the store" {
    authcert -q -c --store "$T/a" --password-file "$PWF"
    authcert -q -c --store="$T/b" --password-file="$PWF"
    [ -f "$T/a/store.json" ] && [ -f "$T/b/store.json" ]
    [ ! -e "$AUTHCERT_STORE" ]
}

@test "a second -c backs up first, then the old certificate becomes expired" {
    make_store
    old=$(current_thumb)
    run --separate-stderr authcert -c --password-file "$PWF"
    [ "$status" -eq 0 ]
    new=$(current_thumb)
    [ "$new" != "$old" ]
    [ "$(state_of "$old")" = expired ]
    [ "$(state_of "$new")" = current ]
    [ "$(authcert --status --json | jq -r --arg t "$old" '.certificates[] | select(.thumbprint==$t) | .retired')" != null ]
    zips=("$AUTHCERT_STORE"/backups/authcert-backup-*.zip)
    [ ${#zips[@]} -eq 1 ] && [ -f "${zips[0]}" ]
    [ "$(stat -c %a "${zips[0]}")" = 600 ]
    [[ "$output" == *"${zips[0]}"* ]]
    # That backup holds the old certificate and restores it as current.
    authcert -q -r --store "$T/again" --password-file "$PWF" "${zips[0]}"
    [ "$(current_thumb --store "$T/again")" = "$old" ]
}

@test "-c --compromised: the replaced certificate is revoked, not expired" {
    make_store
    old=$(current_thumb)
    run authcert -c --compromised --password-file "$PWF"
    [ "$status" -eq 0 ]
    [ "$(state_of "$old")" = revoked ]
}

@test "--key-type: every supported type" {
    for kt in ed25519 p256 rsa2048 rsa3072 rsa4096; do
        authcert -q -c --store "$T/$kt" --key-type "$kt" --password-file "$PWF"
        [ "$(authcert --status --json --store "$T/$kt" | jq -r .certificates[0].key_type)" = "$kt" ]
    done
}

@test "--days and --subject shape the certificate" {
    authcert -q -c --days 400 --subject "CN=fleet server,O=Example" --password-file "$PWF"
    authcert -q -e "$T/c.der"
    run openssl x509 -inform DER -in "$T/c.der" -noout -subject -enddate
    [[ "$output" == *"CN = fleet server"* ]] && [[ "$output" == *"O = Example"* ]]
    days=$(authcert --status --json | jq .days_left)
    [ "$days" -ge 399 ] && [ "$days" -le 400 ]
}

@test "default validity is 3 years" {
    make_store
    days=$(authcert --status --json | jq .days_left)
    [ "$days" -ge 1094 ] && [ "$days" -le 1095 ]
}

@test "-q prints nothing on success" {
    run --separate-stderr authcert -q -c --password-file "$PWF"
    [ "$status" -eq 0 ] && [ -z "$output" ] && [ -z "$stderr" ]
}

@test "a later -c with another password is refused (3), nothing changed" {
    make_store
    before=$(store_digest)
    run --separate-stderr authcert -c "$OTHER"
    [ "$status" -eq 3 ]
    assert_one_error_line
    assert_nothing_changed_msg
    [ "$(store_digest)" = "$before" ]
}

@test "a weak password creates no store (4)" {
    for weak in letmein 'Tr0ub4dor&3' 12345678 aaaaaaaaaaaaaaaa; do
        run --separate-stderr authcert -c "$weak"
        [ "$status" -eq 4 ]
        EXTRA_SECRET=$weak assert_one_error_line
        [ ! -e "$AUTHCERT_STORE" ]
    done
}

@test "bad --key-type, --days, --subject are usage errors (2), nothing changed" {
    make_store
    before=$(store_digest)
    run authcert -c --key-type dsa --password-file "$PWF"
    [ "$status" -eq 2 ]
    run authcert -c --days 0 --password-file "$PWF"
    [ "$status" -eq 2 ]
    run authcert -c --days soon --password-file "$PWF"
    [ "$status" -eq 2 ]
    run --separate-stderr authcert -c --subject "not a DN" --password-file "$PWF"
    [ "$status" -eq 2 ]
    [ "$(store_digest)" = "$before" ]
}

@test "-c keeps the current key type; --key-type another one warns that agents will not follow" {
    make_store --key-type ed25519
    run --separate-stderr authcert -c --password-file "$PWF"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$(authcert --status --json | jq -r .certificates[0].key_type)" = ed25519 ]
    # An explicit change is the operator's: done, with one warning line.
    run --separate-stderr authcert -c --key-type p256 --password-file "$PWF"
    [ "$status" -eq 0 ]
    [ "$stderr" = "authcert: create: warning: agents refuse a key update from key type ed25519 to p256: copy the agent certificate file (-e) to each of them" ]
    [ "$(authcert --status --json | jq -r .certificates[0].key_type)" = p256 ]
    # With --compromised the agents need the exported file anyway: no warning.
    run --separate-stderr authcert -c --compromised --key-type ed25519 --password-file "$PWF"
    [ "$status" -eq 0 ]
    [[ "$stderr" != *"refuse a key update"* ]]
}
