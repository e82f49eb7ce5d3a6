#!/usr/bin/env bats
# Hostile folders and files (issue 14, item 1): a store, a registry or a
# password file that another user can replace is refused before anything is
# read, signed or written, with one line naming the path and the fix. Each
# attack has its control: the same thing made by its owner works.
load helpers

TRAPS=()

# A folder another user (nobody) made, writable by everyone, as an attacker
# would leave it in /tmp for root to use.
nobody_folder() {
    local d
    d=$(runuser -u nobody -- mktemp -d /tmp/authcert-trap.XXXXXX)
    runuser -u nobody -- chmod 0777 "$d"
    TRAPS+=("$d")
    echo "$d"
}

teardown() {
    for d in "${TRAPS[@]}"; do rm -rf "$d"; done
    [ -n "${T:-}" ] && rm -rf "$T"
}

@test "the store takeover: root's -c into a 0777 folder of another user is refused; nothing written there" {
    [ "$(id -u)" -eq 0 ] || skip "needs root to act as nobody"
    trap_dir=$(nobody_folder)
    run --separate-stderr authcert -c --store "$trap_dir" --password-file "$PWF"
    echo "$stderr"
    [ "$status" -eq 8 ]
    assert_one_error_line
    [[ "$stderr" == *"$trap_dir"*"neither root nor"* || "$stderr" == *"$trap_dir"*"writable by every user"* ]]
    [ -z "$(ls -A "$trap_dir")" ]
    # and authcertd will not serve a store the attacker made either
    run "$AUTHCERT_BIN/authcertd" --store "$trap_dir" --registry "sqlite:$T/reg.db" \
        --listen 127.0.0.1:0
    [ "$status" -ne 0 ]
    [[ "$output" == *"not safe"* ]]
    # control: a store under /tmp made by its owner works
    mine=$(mktemp -d /tmp/authcert-mine.XXXXXX)
    TRAPS+=("$mine")
    authcert -q -c --store "$mine/store" --password-file "$PWF"
    [ "$(authcert --status --json --store "$mine/store" | jq -r '.certificates | length')" = 1 ]
}

@test "a store folder, or a folder in it, that group or others can write is refused; chmod go-w repairs it" {
    make_store
    chmod 0770 "$AUTHCERT_STORE"
    run --separate-stderr authcert --status
    [ "$status" -eq 8 ]
    assert_one_error_line
    [[ "$stderr" == *"$AUTHCERT_STORE (mode 0770) is writable by its group"*"chmod go-w $AUTHCERT_STORE"* ]]
    chmod 0700 "$AUTHCERT_STORE"
    chmod 0777 "$AUTHCERT_STORE/keys"
    before=$(store_digest)
    run --separate-stderr authcert -c --password-file "$PWF"
    [ "$status" -eq 8 ]
    [[ "$stderr" == *"$AUTHCERT_STORE/keys (mode 0777) is writable by every user"* ]]
    [ "$(store_digest)" = "$before" ]
    chmod 0700 "$AUTHCERT_STORE/keys"
    authcert --status >/dev/null
    # a folder above the store
    mkdir -m 0755 "$T/up" && make_store --store "$T/up/s"
    chmod 0777 "$T/up"
    run --separate-stderr authcert --status --store "$T/up/s"
    [ "$status" -eq 8 ]
    [[ "$stderr" == *"$T/up (mode 0777)"* ]]
    # a sticky folder of root's above (as /tmp) is fine
    chmod 1777 "$T/up"
    authcert --status --store "$T/up/s" >/dev/null
}

@test "symbolic links inside the store are refused: a key file, keys/, store.json" {
    make_store
    tp=$(current_thumb)
    key="$AUTHCERT_STORE/keys/$tp.pem"
    mv "$key" "$T/real.pem"
    ln -s "$T/real.pem" "$key"
    run --separate-stderr authcert -e "$T/out"
    [ "$status" -eq 8 ]
    assert_one_error_line
    [[ "$stderr" == *"$key: a symbolic link, refused in a store"* ]]
    [ ! -e "$T/out/authcert-server.der" ]
    rm "$key" && mv "$T/real.pem" "$key"
    authcert -q -e "$T/out" # control
    mv "$AUTHCERT_STORE/keys" "$T/keys"
    ln -s "$T/keys" "$AUTHCERT_STORE/keys"
    run --separate-stderr authcert --status
    [ "$status" -eq 8 ]
    [[ "$stderr" == *"keys: a symbolic link"* ]]
    rm "$AUTHCERT_STORE/keys" && mv "$T/keys" "$AUTHCERT_STORE/keys"
    mv "$AUTHCERT_STORE/store.json" "$T/store.json"
    ln -s "$T/store.json" "$AUTHCERT_STORE/store.json"
    run --separate-stderr authcert --status
    [ "$status" -eq 8 ]
    [[ "$stderr" == *"store.json: a symbolic link"* ]]
}

@test "a store file owned by another user is refused" {
    [ "$(id -u)" -eq 0 ] || skip "needs root to chown"
    make_store
    chown nobody "$AUTHCERT_STORE/store.json"
    run --separate-stderr authcert --status
    [ "$status" -eq 8 ]
    [[ "$stderr" == *"store.json: owned by uid $(id -u nobody)"* ]]
    chown root "$AUTHCERT_STORE/store.json"
    tp=$(current_thumb)
    chown nobody "$AUTHCERT_STORE/keys/$tp.pem"
    run --separate-stderr authcert -e "$T/out"
    [ "$status" -eq 8 ]
    [[ "$stderr" == *"$tp.pem is owned by uid $(id -u nobody)"* ]]
}

@test "password files: another user's or a writable one refused, a NUL byte refused; a pipe of ours works" {
    make_store
    before=$(store_digest)
    chmod 0666 "$PWF"
    run --separate-stderr authcert -b --password-file "$PWF" "$T"
    [ "$status" -eq 8 ]
    assert_one_error_line
    [[ "$stderr" == *"$PWF: writable by group or others"* ]]
    chmod 0600 "$PWF"
    if [ "$(id -u)" -eq 0 ]; then
        chown nobody "$PWF"
        run --separate-stderr authcert -b --password-file "$PWF" "$T"
        [ "$status" -eq 8 ]
        [[ "$stderr" == *"$PWF: owned by uid $(id -u nobody)"* ]]
        chown root "$PWF"
    fi
    # "pass\0word": C would have read "pass"
    printf '%s\0tail\n' "$PASS" >"$T/nul.pw" && chmod 0600 "$T/nul.pw"
    run --separate-stderr authcert -b --password-file "$T/nul.pw" "$T"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"a NUL byte in the password"* ]]
    [ "$(store_digest)" = "$before" ]
    # controls: the file as it should be, and a pipe
    authcert -q -b --password-file "$PWF" "$T"
    authcert -q -b --password-file <(printf '%s\n' "$PASS") "$T"
    # a FIFO nobody writes to does not hang the tool when it is not ours
    if [ "$(id -u)" -eq 0 ]; then
        mkfifo "$T/fifo" && chown nobody "$T/fifo"
        run timeout 10 "$AUTHCERT_BIN/authcert" -b --password-file "$T/fifo" "$T"
        [ "$status" -eq 8 ]
    fi
}

@test "authcertd refuses a registry in a folder others can write" {
    make_store
    authcert -q --tls-cert new --ip 127.0.0.1
    mkdir -m 0777 "$T/open"
    run "$AUTHCERT_BIN/authcertd" --store "$AUTHCERT_STORE" --registry "sqlite:$T/open/reg.db" \
        --listen 127.0.0.1:0
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *"registry $T/open/reg.db: not safe: $T/open (mode 0777)"* ]]
    [ ! -e "$T/open/reg.db" ]
}

@test "-e and -b into a symbolic link to another user's folder are refused; to a folder of ours, fine" {
    [ "$(id -u)" -eq 0 ] || skip "needs root to act as nobody"
    make_store
    theirs=$(nobody_folder)
    ln -s "$theirs" "$T/out"
    run --separate-stderr authcert -e "$T/out"
    [ "$status" -eq 8 ]
    assert_one_error_line
    [[ "$stderr" == *"$T/out: a symbolic link to a folder of uid $(id -u nobody)"* ]]
    run --separate-stderr authcert -b --password-file "$PWF" "$T/out/"
    [ "$status" -eq 8 ]
    [ -z "$(ls -A "$theirs")" ]
    # control: a link to a folder of root's
    mkdir "$T/mine" && ln -s "$T/mine" "$T/ours"
    authcert -q -e "$T/ours"
    authcert -q -b --password-file "$PWF" "$T/ours"
    [ -f "$T/mine/authcert-server.der" ]
    ls "$T/mine"/authcert-backup-*.zip >/dev/null
}
