#!/usr/bin/env bats
# The command line's refusals, a busy store, and callers who are not administrators.
load helpers

@test "--help on stdout, exit 0, one synopsis line per mode" {
    run --separate-stderr authcert --help
    [ "$status" -eq 0 ] && [ -z "$stderr" ]
    for m in '-c  \[PASSWORD\]' '-b  \[PASSWORD\] PATH' '-r  \[PASSWORD\] PATH' \
             '-re \[PASSWORD\] PATH' '-e  PATH' '-i  \[PASSWORD\] PATH' '--status'; do
        grep -q "authcert $m" <<<"$output"
    done
    run authcert -h
    [ "$status" -eq 0 ] && [[ "$output" == *usage:* ]]
}

@test "--version and -V" {
    run --separate-stderr authcert --version
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^authcert\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
    run authcert -V
    [ "$status" -eq 0 ]
}

@test "no mode, two modes, unknown options, wrong argument counts: usage (2) on stderr" {
    make_store
    before=$(store_digest)
    for args in "" "-c -b $PASS x" "-e x -i $PASS y" "-r $PASS x -re $PASS y" "--status -e x" \
                "-b -c" "-x" "--frobnicate" "-e" "-e a b" "-b $PASS a b" "-c a b" "--status extra" \
                "--status --json=1" "--store" "--days" "-c --days 3.5" "-e x --json" "-c --as-expired" \
                "-i --compromised $PASS x" "-b --key-type p256 $PASS x" "-r --skip-unexportable $PASS x" \
                "-c --password-file $PWF --password-fd 0" "--password-fd -1 -c" "-l" "-l a b" "--push" "--agents x" "-l x --agent y"; do
        run --separate-stderr authcert $args
        [ "$status" -eq 2 ] || { echo "args '$args': exit $status" >&2; false; }
        [ -z "$output" ]
        [[ "$stderr" == *"usage:"* ]]
        assert_no_password
    done
    [ "$(store_digest)" = "$before" ]
}

@test "a password both on the command line and from a file: usage (2)" {
    make_store
    before=$(store_digest)
    run --separate-stderr authcert -b --password-file "$PWF" "$PASS" "$T/x.zip"
    [ "$status" -eq 2 ]
    assert_one_error_line
    [ ! -e "$T/x.zip" ]
    [ "$(store_digest)" = "$before" ]
}

@test "-- ends the options, so a password may start with a dash" {
    run authcert -c -- "-$PASS"
    [ "$status" -eq 0 ]
    run authcert -q -b -- "-$PASS" "$T/dash.zip"
    [ "$status" -eq 0 ]
    authcert -q -r --store "$T/new" -- "-$PASS" "$T/dash.zip"
}

# A second writer holds the lock: every writing mode refuses at once.
@test "a store held by another writer: busy (7) at once, nothing changed" {
    make_store
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    openssl_cert "$T/k.pem" "$T/c.pem"
    openssl pkcs12 -export -inkey "$T/k.pem" -in "$T/c.pem" -passout pass:"$PASS" -out "$T/i.pfx"
    # Another writer: this shell holds the lock through descriptor 8.
    exec 8>>"$AUTHCERT_STORE/lock"
    flock -n 8
    before=$(store_digest)
    for args in "-c" "-r $T/b.zip" "-re $T/b.zip" "-i $T/i.pfx"; do
        start=$(date +%s%N)
        run --separate-stderr authcert $args --password-file "$PWF"
        took=$(( ($(date +%s%N) - start) / 1000000 ))
        [ "$status" -eq 7 ] || { echo "$args: exit $status: $stderr" >&2; false; }
        [ "$took" -lt $((2000 * ${AUTHCERT_TEST_SLOWER:-1})) ] # the lock is never released
        assert_one_error_line
        assert_nothing_changed_msg
        [ "$(store_digest)" = "$before" ]
    done
    exec 8>&-
    authcert -q -c --password-file "$PWF"
}

@test "a caller who is neither root nor the store's owner: not permitted (8), nothing changed" {
    need_nobody
    make_store
    authcert -q -b --password-file "$PWF" "$T/b.zip"
    chmod 0755 "$AUTHCERT_STORE"   # even when it could read the directory
    chmod 0644 "$T/b.zip" "$PWF"
    before=$(store_digest)
    for args in "-c --password-file $PWF" "-b --password-file $PWF $T/nb.zip" \
                "-r --password-file $PWF $T/b.zip" "-e $T/nb.der" "--status"; do
        run --separate-stderr as_nobody --store "$AUTHCERT_STORE" $args
        [ "$status" -eq 8 ] || { echo "$args: exit $status: $stderr" >&2; false; }
        assert_one_error_line
        [[ "$stderr" == *"only root or the store's owner (uid 0) may manage this store"* ]]
        [ "$(store_digest)" = "$before" ]
    done
    [ ! -e "$T/nb.zip" ] && [ ! -e "$T/nb.der" ]
}

@test "a store the caller cannot even reach: not permitted (8), naming the folder in the way" {
    need_nobody
    mkdir -m 0700 "$T/walled"
    authcert -q -c --store "$T/walled/store" --password-file "$PWF"
    chmod 0644 "$PWF"
    before=$(store_digest "$T/walled/store")
    for args in "--status" "-e $T/nb.der" "-b --password-file $PWF $T/nb.zip"; do
        run --separate-stderr as_nobody --store "$T/walled/store" $args
        [ "$status" -eq 8 ] || { echo "$args: exit $status: $stderr" >&2; false; }
        assert_one_error_line
        [[ "$stderr" == *"$T/walled"*"not permitted"* || "$stderr" == *"not permitted"*"$T/walled"* ]] ||
            { echo "want the folder named: $stderr" >&2; false; }
        [ "$(store_digest "$T/walled/store")" = "$before" ]
    done
    [ ! -e "$T/nb.zip" ] && [ ! -e "$T/nb.der" ]
}

@test "the store's owner who is not root may manage it" {
    need_nobody
    mkdir -m 0700 "$T/own"
    chown nobody "$T/own"
    chmod 0644 "$PWF"
    run as_nobody -q -c --store "$T/own" --password-file "$PWF"
    [ "$status" -eq 0 ]
    run as_nobody --status --store "$T/own"
    [ "$status" -eq 0 ]
}
