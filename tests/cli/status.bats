#!/usr/bin/env bats
# authcert --status [--json]: what the store holds, never private material.
load helpers

iso='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

@test "--status lists every certificate with its state, dates and a hidden key" {
    make_store
    make_store --compromised
    make_store
    run --separate-stderr authcert --status
    [ "$status" -eq 0 ] && [ -z "$stderr" ]
    [ "$(grep -c '^certificate [0-9a-f]\{64\}$' <<<"$output")" -eq 3 ]
    [[ "$output" == *"current: $(current_thumb), expires in "* ]]
    grep -q 'state: *current' <<<"$output"
    grep -q 'state: *expired' <<<"$output"
    grep -q 'state: *revoked' <<<"$output"
    grep -q 'private key: (hidden)' <<<"$output"
    ! grep -q WARNING <<<"$output"
}

@test "--status --json: the fields, ISO 8601 UTC dates, and no key material" {
    make_store
    make_store
    run --separate-stderr authcert --status --json
    [ "$status" -eq 0 ] && [ -z "$stderr" ]
    jq -e . <<<"$output" >/dev/null
    [ "$(jq -r .store <<<"$output")" = "$AUTHCERT_STORE" ]
    [ "$(jq -r '.certificates[0].state' <<<"$output")" = current ]
    [ "$(jq -r '.certificates[0].thumbprint' <<<"$output")" = "$(jq -r .current <<<"$output")" ]
    [ "$(jq -r .warning <<<"$output")" = null ]
    for f in not_before not_after added; do
        [[ "$(jq -r ".certificates[0].$f" <<<"$output")" =~ $iso ]]
    done
    [ "$(jq -r '.certificates[0].retired' <<<"$output")" = null ]
    [[ "$(jq -r '.certificates[1].retired' <<<"$output")" =~ $iso ]]
    [[ "$(jq -r '.certificates[0].serial' <<<"$output")" =~ ^[0-9A-F]+$ ]]
    [ "$(jq -r '.certificates[0].exportable' <<<"$output")" = true ]
    [ "$(jq -r '.certificates[0].has_private_key' <<<"$output")" = true ]
    ! grep -qi 'private key-----\|BEGIN' <<<"$output"
    # The serial is the certificate's own.
    authcert -q -e "$T/c.der"
    want=$(openssl x509 -inform DER -in "$T/c.der" -noout -serial | sed 's/serial=//')
    [ "$(jq -r '.certificates[0].serial' <<<"$output" | sed 's/^0*//')" = "$(sed 's/^0*//' <<<"$want")" ]
}

@test "a certificate with less than 90 days left: a WARNING line and a JSON warning" {
    make_store --days 30
    run authcert --status
    [ "$status" -eq 0 ]
    grep -q '^WARNING: the current certificate expires in 2[89] days' <<<"$output" ||
        grep -q '^WARNING: the current certificate expires in 30 days' <<<"$output"
    [ "$(authcert --status --json | jq -r .days_left)" -ge 29 ]
    [[ "$(authcert --status --json | jq -r .warning)" == *"expires in"* ]]
}

@test "89 days warns, 91 days does not" {
    make_store --days 89
    authcert --status | grep -q '^WARNING'
    make_store --days 91
    ! authcert --status | grep -q '^WARNING'
}

@test "--status of a store with no current certificate says so" {
    openssl_cert "$T/k.pem" "$T/c.pem"
    openssl pkcs12 -export -inkey "$T/k.pem" -in "$T/c.pem" -passout pass:"$PASS" -out "$T/o.pfx"
    authcert -q -i --as-expired --password-file "$PWF" "$T/o.pfx"
    run authcert --status --json
    [ "$status" -eq 0 ]
    [ "$(jq -r .current <<<"$output")" = null ]
    [[ "$(jq -r .warning <<<"$output")" == *"no current certificate"* ]]
    authcert --status | grep -q '^current: none'
}

@test "--status without a store: not found (9), one line, no (nothing was changed)" {
    run --separate-stderr authcert --status
    [ "$status" -eq 9 ]
    assert_one_error_line
    [[ "$stderr" != *"nothing was changed"* ]]
}

@test "--status does not take the writer's lock" {
    make_store
    exec 8>>"$AUTHCERT_STORE/lock"
    flock -n 8
    run authcert --status --json
    exec 8>&-
    [ "$status" -eq 0 ]
    [ "$(jq -r .current <<<"$output")" != null ]
}
