#!/usr/bin/env bats
# Where a password comes from, and that it never shows.
load helpers

@test "--password-file: the first line, without its newline (LF or CRLF)" {
    printf '%s\nsomething else\n' "$PASS" > "$T/two-lines"
    authcert -q -c --password-file "$T/two-lines"
    printf '%s' "$PASS" > "$T/no-newline"
    authcert -q -c --password-file "$T/no-newline"
    printf '%s\r\n' "$PASS" > "$T/crlf"
    authcert -q -c --password-file "$T/crlf"
    # All three were the same password: the store's check accepted each.
    [ "$(authcert --status --json | jq '.certificates | length')" -eq 3 ]
}

@test "--password-fd N" {
    run --separate-stderr authcert -c --password-fd 3 3<"$PWF"
    [ "$status" -eq 0 ]
    run authcert -q -b --password-fd 7 "$T/b.zip" 7<"$PWF"
    [ "$status" -eq 0 ]
    authcert -q -r --store "$T/new" --password-fd 5 "$T/b.zip" 5<"$PWF"
    [ "$(current_thumb --store "$T/new")" = "$(current_thumb)" ]
}

@test "--password-fd of a closed descriptor: usage (2)" {
    run --separate-stderr authcert -c --password-fd 9
    [ "$status" -eq 2 ]
    assert_one_error_line
    [ ! -e "$AUTHCERT_STORE" ]
}

@test "standard input when it is not a terminal" {
    run --separate-stderr bash -c "printf '%s\n' '$PASS' | '$AUTHCERT_BIN/authcert' -c"
    [ "$status" -eq 0 ]
    printf '%s\n' "$PASS" | authcert -q -b "$T/b.zip"
    printf '%s\n' "$OTHER" | { run --separate-stderr authcert -r "$T/b.zip"; [ "$status" -eq 3 ]; }
    printf '%s\n' "$PASS" | authcert -q -r --store "$T/new" "$T/b.zip"
}

@test "no password at all (empty stdin): usage (2), nothing created" {
    run --separate-stderr authcert -c </dev/null
    [ "$status" -eq 2 ]
    assert_one_error_line
    [ ! -e "$AUTHCERT_STORE" ]
}

@test "a missing --password-file: not found (9); too long a password: usage (2)" {
    run --separate-stderr authcert -c --password-file "$T/nope"
    [ "$status" -eq 9 ]
    assert_one_error_line
    head -c 2000 /dev/zero | tr '\0' a > "$T/long"
    run --separate-stderr authcert -c --password-file "$T/long"
    [ "$status" -eq 2 ]
    [ ! -e "$AUTHCERT_STORE" ]
}

@test "the password never appears in any output, success or failure" {
    run --separate-stderr authcert -c "$PASS"
    assert_no_password
    run --separate-stderr authcert -c "$OTHER"
    [ "$status" -eq 3 ]
    assert_no_password
    run --separate-stderr authcert -b "$PASS" "$T/b.zip"
    assert_no_password
    run --separate-stderr authcert -r "$OTHER" "$T/b.zip"
    [ "$status" -eq 3 ]
    assert_no_password
    run --separate-stderr authcert --status --json
    assert_no_password
    ! grep -rqF "$PASS" "$AUTHCERT_STORE"
}

@test "the terminal prompt: no echo, a new password asked twice, a mismatch refused" {
    command -v python3 >/dev/null || skip "python3 drives the terminal"
    run python3 "$BATS_TEST_DIRNAME/tty_prompt.py" "$AUTHCERT_BIN/authcert" "$T/tty" "$PASS" "$OTHER"
    echo "$output"
    [ "$status" -eq 0 ]
}
