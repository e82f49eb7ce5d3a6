#!/usr/bin/env bats
# authcert -e: the agent certificate file of the current certificate.
load helpers

@test "-e FILE writes the current certificate as DER, 0644, public only" {
    make_store
    run --separate-stderr authcert -e "$T/agent.der"
    [ "$status" -eq 0 ]
    [ "$(stat -c %a "$T/agent.der")" = 644 ]
    [ "$(der_sha256 "$T/agent.der")" = "$(current_thumb)" ]
    ! grep -a -q 'PRIVATE' "$T/agent.der"
    [[ "$output" == *"$T/agent.der"* ]]
}

@test "-e FOLDER writes authcert-server.der in it" {
    make_store
    mkdir "$T/agent"
    authcert -q -e "$T/agent"
    [ "$(der_sha256 "$T/agent/authcert-server.der")" = "$(current_thumb)" ]
    authcert -q -e "$T/agent/"
    [ "$(ls "$T/agent")" = authcert-server.der ]
}

@test "-e replaces an existing file whole and leaves no temporary file" {
    make_store
    echo "corrupted" > "$T/agent.der"
    authcert -q -e "$T/agent.der"
    [ "$(der_sha256 "$T/agent.der")" = "$(current_thumb)" ]
    make_store
    authcert -q -e "$T/agent.der"
    [ "$(der_sha256 "$T/agent.der")" = "$(current_thumb)" ]
    [ "$(ls "$T" | grep -c tmp)" -eq 0 ]
}

@test "-e without a store: not found (9)" {
    run --separate-stderr authcert -e "$T/agent.der"
    [ "$status" -eq 9 ]
    assert_one_error_line
    [ ! -e "$T/agent.der" ]
}

@test "-e with no current certificate (only an expired import): not found (9)" {
    openssl_cert "$T/k.pem" "$T/c.pem"
    openssl pkcs12 -export -inkey "$T/k.pem" -in "$T/c.pem" -passout pass:"$PASS" -out "$T/old.pfx"
    authcert -q -i --as-expired --password-file "$PWF" "$T/old.pfx"
    before=$(store_digest)
    run --separate-stderr authcert -e "$T/agent.der"
    [ "$status" -eq 9 ]
    assert_one_error_line
    [ ! -e "$T/agent.der" ]
    [ "$(store_digest)" = "$before" ]
}

@test "-e into a missing folder: I/O error (6), nothing written" {
    make_store
    before=$(store_digest)
    run --separate-stderr authcert -e "$T/no/such/dir/agent.der"
    [ "$status" -eq 6 ]
    assert_one_error_line
    [ "$(store_digest)" = "$before" ]
}

@test "-e into a folder the caller cannot write: I/O error (6)" {
    need_nobody
    authcert -q -c --store "$T/nobodys" --password-file "$PWF"
    chown -R nobody "$T/nobodys"
    mkdir -m 0755 "$T/rootonly"
    before=$(store_digest "$T/nobodys")
    run --separate-stderr as_nobody -e --store "$T/nobodys" "$T/rootonly/agent.der"
    [ "$status" -eq 6 ]
    assert_one_error_line
    [[ "$stderr" == *"$T/rootonly"* ]]
    [ -z "$(ls "$T/rootonly")" ]
    [ "$(store_digest "$T/nobodys")" = "$before" ]
}
