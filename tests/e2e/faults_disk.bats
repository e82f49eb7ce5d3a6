#!/usr/bin/env bats
# A full disk: a 256 KiB tmpfs filled to the last page (or to a few pages
# short, so that each step of a write meets the wall in turn). Every failure
# is one clear line and exit 6; nothing half-written is left (no *.tmp); the
# store is exactly as before; authcertd keeps answering with its registry on
# a full file system, logs what it could not record, and the registry is
# intact afterwards. Needs root (mount); skipped when mount is refused.
# SQLite only (no e2e/faults_disk_pg): the registry is a file on the full
# disk here, while a full disk under PostgreSQL is its server's matter.

load harden

setup() {
    harden_setup faults-disk
    FS="$T/fs"
    mkdir -p "$FS"
    if ! mount -t tmpfs -o size=4m,mode=0755 tmpfs "$FS" 2>/dev/null; then
        skip "cannot mount a tmpfs here (needs root)"
    fi
    MOUNTS+=("$FS")
}

teardown() { harden_teardown; }

# Fill FS, then give back PAGES pages of 4 KiB.
fill() { # PAGES
    rm -f "$FS/fill"
    dd if=/dev/zero of="$FS/fill" bs=4096 2>/dev/null || true
    [ "${1:-0}" -eq 0 ] || truncate -s "-$(($1 * 4096))" "$FS/fill"
    sync
}

# sha256 of a store's files and modes, leaving out backups/ (a failed -c may
# leave the complete automatic backup it made before the wall: that is a
# whole file, not a change of state).
state_digest() { # STORE
    (cd "$1" && find . -path ./backups -prune -o -printf '%y %m %p\n' | LC_ALL=C sort &&
        find . -path ./backups -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) | sha256sum
}

full_digest() {
    (cd "$1" && find . -printf '%y %m %p\n' | LC_ALL=C sort &&
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) | sha256sum
}

@test "-b onto a full disk: exit 6, one line naming the file and the cause, no *.tmp, store unchanged" {
    ac --store "$T/store" -q -c --password-file "$PWF"
    before="$(full_digest "$T/store")"
    for pages in 0; do
        fill "$pages"
        run --separate-stderr ac --store "$T/store" -b --password-file "$PWF" "$FS/b.zip"
        echo "pages=$pages status=$status stderr=$stderr"
        [ "$status" -eq 6 ]
        [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
        [[ "$stderr" == "authcert: "*"No space left on device"* ]]
        [[ "$stderr" == *"$FS/b.zip"* ]]
        [ -z "$(leftover_tmp "$FS")" ]
        [ ! -e "$FS/b.zip" ]
    done
    # a folder as PATH: the dated file is not left behind either
    fill 0
    mkdir -p "$FS/dir" 2>/dev/null || { rm -f "$FS/fill"; mkdir "$FS/dir"; fill 0; }
    run --separate-stderr ac --store "$T/store" -b --password-file "$PWF" "$FS/dir"
    [ "$status" -eq 6 ]
    [ -z "$(ls -A "$FS/dir")" ]
    [ "$(full_digest "$T/store")" = "$before" ]
}

@test "-c with the store on a full disk, at each step: exit 6 and the old state, or done; never a mix" {
    S="$FS/store"
    ac --store "$S" -q -c --password-file "$PWF"
    ac --store "$S" -q -c --password-file "$PWF"
    old_map="$(store_map "$S")"
    ok=0 refused=0
    for pages in 0 1 2 3 4 5 6; do
        rm -rf "$T/copy" && cp -a "$S" "$T/copy"
        before="$(state_digest "$S")"
        fill "$pages"
        run --separate-stderr ac --store "$S" -q -c --password-file "$PWF"
        echo "pages=$pages status=$status stderr=$stderr"
        if [ "$status" -eq 0 ]; then
            ok=$((ok + 1))
            [ "$(store_map "$S")" != "$old_map" ]
        else
            refused=$((refused + 1))
            [ "$status" -eq 6 ]
            [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
            [[ "$stderr" == "authcert: "*"No space left on device"*"(nothing was changed)" ]] ||
                [[ "$stderr" == "authcert: "*"No space left on device"* ]]
            [ "$(state_digest "$S")" = "$before" ]
            [ "$(store_map "$S")" = "$old_map" ]
        fi
        [ -z "$(leftover_tmp "$S")" ]
        check_key_files "$S"
        # room again: the store works and keeps every key
        rm -f "$FS/fill"
        rm -rf "$S/backups"/* # the tmpfs is small; backups are not state
        ac --store "$S" --status >/dev/null
        old_map="$(store_map "$S")"
    done
    echo "# -c on a full disk: $refused refused, $ok done" >&3
    [ "$refused" -ge 2 ]
    ac --store "$S" -q -c --password-file "$PWF"
}

@test "-i and -r with the store on a full disk: exit 6, store unchanged, no *.tmp" {
    S="$FS/store"
    ac --store "$S" -q -c --password-file "$PWF"
    ac --store "$T/other" -q -c --password-file "$PWF"
    ac --store "$T/other" -q -b --password-file "$PWF" "$T/other.zip"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
        -keyout "$T/k.pem" -out "$T/c.pem" -days 30 -subj /CN=i 2>/dev/null
    openssl pkcs12 -export -in "$T/c.pem" -inkey "$T/k.pem" -out "$T/x.pfx" -passout "pass:$PASS"
    before="$(full_digest "$S")"
    fill 0
    for args in "-i $T/x.pfx" "-r $T/other.zip" "-re $T/other.zip"; do
        # shellcheck disable=SC2086
        run --separate-stderr ac --store "$S" --password-file "$PWF" $args
        echo "$args: $status $stderr"
        [ "$status" -eq 6 ]
        [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
        [[ "$stderr" == "authcert: "*"No space left on device"* ]]
        [ -z "$(leftover_tmp "$S")" ]
        [ "$(full_digest "$S")" = "$before" ]
    done
}

@test "authcertd with its registry on a full disk keeps answering, logs it, and the registry stays intact" {
    ac --store "$T/store" -q -c --password-file "$PWF"
    CUR="$(store_current "$T/store")"
    start_authcertd "$T/store" "$FS/reg.db" "$T/d.log" --enroll-rate 1000
    for i in $(seq 5); do checkin_once "a$i" "$CUR" >/dev/null; done
    # Enrolled agents whose check-ins will need room the disk no longer has.
    for i in $(seq 40); do checkin_once "agent-with-a-long-name-to-fill-pages-$i" "$CUR" >/dev/null; done
    sleep 0.3
    [ "$(sqlite3 "$FS/reg.db" 'SELECT count(*) FROM agents')" -eq 45 ]
    fill 0
    # A new agent cannot enroll (binding its key is a write): a 503, said.
    run "$BIN/agentsim" enroll "$URL" "$CA" "$T/sim/new.json" new-agent "$TOKEN"
    echo "enroll on a full disk: $output"
    [[ "$output" == "503 "* ]]
    # The enrolled ones, ten rounds: every check-in is answered.
    fails=0
    for round in $(seq 10); do
        for i in $(seq 40); do
            checkin_once "agent-with-a-long-name-to-fill-pages-$i" "$CUR" >/dev/null ||
                fails=$((fails + 1))
        done
    done
    sleep 0.5
    echo "# check-ins that failed with the disk full: $fails of 400" >&3
    [ "$fails" -eq 0 ] # answered, even when not recorded
    kill -0 "$DPID"
    curl -sf -m 2 "$URL/healthz"
    grep -q "registry: .*check-ins not recorded" "$T/d.log" || {
        echo "no log line about the full disk:" >&2; cat "$T/d.log" >&2; return 1; }
    grep "not recorded" "$T/d.log" | head -1 | grep -Eiq "full|space"
    # An operator's queued command on the full disk: one clear line, exit 6.
    run --separate-stderr ac --registry "$FS/reg.db" --push ping --all
    echo "push: $status $stderr"
    [ "$status" -eq 6 ]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    # Room again: the daemon records check-ins again, without a restart.
    rm -f "$FS/fill"
    checkin_once late-agent "$CUR" >/dev/null
    sleep 0.5
    [ "$(sqlite3 "$FS/reg.db" "SELECT count(*) FROM agents WHERE agent_id = 'late-agent'")" -eq 1 ]
    kill -TERM "$DPID"
    wait "$DPID"
    [ "$(sqlite3 "$FS/reg.db" 'PRAGMA integrity_check')" = ok ]
    [ "$(sqlite3 "$FS/reg.db" 'SELECT count(*) FROM agents WHERE agent_id LIKE "a_"')" -eq 5 ]
    [ "$(sqlite3 "$FS/reg.db" "SELECT count(*) FROM agents WHERE agent_id = 'new-agent'")" -eq 0 ]
}
