#!/usr/bin/env bats
# The admin tool killed with SIGKILL in the middle of -c, -r, -re and -i.
#
# Two ways to pick the moment, for each mode:
#  - at random delays spread over the operation's measured duration
#    (build/bin/killafter), CRASH_RANDOM runs (default 15);
#  - at every file-changing system call in turn (strace's fault injection
#    delivers SIGKILL on the way out of the Nth write/fsync/rename/mkdir/
#    unlink), so that each step of the commit is hit at least once.
# After each crash: the store opens (--status exits 0), it holds exactly the
# old state or the new one (thumbprints, states, exportable flags), every
# key file under keys/ loads with openssl and holds a matching pair, the
# index names only key files that exist, no thumbprint of the old state is
# gone, and a following -c succeeds and removes the temporaries the crash
# left (a killed writer cannot; they may hold part of a key).
#
# Under valgrind (make valgrind-full), and under ASan (make check-asan), the
# killed runs, and the runs that time and count them, are the plain build's
# program (AUTHCERT_REAL_BIN): valgrind
# makes hundreds of system calls of its own, which strace would count and
# kill at, and a killed process gets no leak check. What a killed run
# executes is a prefix of an uninterrupted one, and those (the setup, the
# expected states) and every run after each crash (--status, the next -c)
# are under memcheck. CMake sets CRASH_RANDOM=0 there: every file-changing
# call is killed at anyway, and each round costs seconds under memcheck.

load harden

setup() {
    HARDEN_TMPFS=1 harden_setup crash-admin
    RANDOM_RUNS="${CRASH_RANDOM:-15}"
    KBIN="${AUTHCERT_REAL_BIN:-$BIN}" # the runs that are killed
    BASE="$T/base"
    ac --store "$BASE" -q -c --password-file "$PWF"
    ac --store "$BASE" -q -c --password-file "$PWF"
    # A backup of another store (two certificates, one of them current) for
    # -r/-re, and a PFX made by openssl alone for -i.
    ac --store "$T/other" -q -c --key-type ed25519 --password-file "$PWF"
    ac --store "$T/other" -q -c --password-file "$PWF"
    ac --store "$T/other" -q -b --password-file "$PWF" "$T/other.zip"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
        -keyout "$T/k.pem" -out "$T/c.pem" -days 30 -subj /CN=imported 2>/dev/null
    openssl pkcs12 -export -in "$T/c.pem" -inkey "$T/k.pem" -out "$T/x.pfx" \
        -passout "pass:$PASS"
    OLD_MAP="$(store_map "$BASE")"
    OLD_CUR="$(store_current "$BASE")"
    NSYS=0
}

teardown() { harden_teardown; }

args_of() { # MODE
    case "$1" in
    c) echo "-q -c --password-file $PWF" ;;
    r) echo "-q -r --password-file $PWF $T/other.zip" ;;
    re) echo "-q -re --password-file $PWF $T/other.zip" ;;
    i) echo "-q -i --password-file $PWF $T/x.pfx" ;;
    esac
}

fresh_copy() { rm -rf "$T/s" && cp -a "$BASE" "$T/s"; }

# The state the mode leads to, from a run nobody interrupts; for -c (a new
# random key each time) only its shape is known: see check_new_c.
expected_new() { # MODE
    fresh_copy
    # shellcheck disable=SC2046
    ac --store "$T/s" $(args_of "$1") || return 1
    store_map "$T/s"
}

# -c's new state: the old one with the old current expired, plus one new
# current certificate, exportable, that was not there before.
check_new_c() { # MAP CURRENT
    jq -en --argjson got "$1" --arg cur "$2" --argjson old "$OLD_MAP" --arg oc "$OLD_CUR" '
        ($old | map(.[0]) | index($cur)) == null and
        $got == ($old | map(if .[0] == $oc then [.[0], "expired", .[2]] else . end)
                 | . + [[$cur, "current", true]] | sort)' >/dev/null
}

# Microseconds one uninterrupted run takes (the fastest of three).
measure() { # MODE
    local i a b
    for i in 1 2 3; do
        fresh_copy
        a=$(date +%s%6N)
        # shellcheck disable=SC2046
        "$KBIN/authcert" --store "$T/s" $(args_of "$1") >/dev/null
        b=$(date +%s%6N)
        echo $((b - a))
    done | sort -n | head -1
}

# The invariants after one crash. MODE, NEW_MAP, what killed it (for messages).
check_after_crash() {
    local mode="$1" new="$2" how="$3" map cur
    run --separate-stderr ac --store "$T/s" --status --json
    [ "$status" -eq 0 ] || { echo "$how: --status exit $status: $stderr" >&2; return 1; }
    map="$(jq -c '[.certificates[] | [.thumbprint, .state, .exportable]] | sort' <<<"$output")"
    cur="$(jq -r .current <<<"$output")"
    if [ "$map" != "$OLD_MAP" ]; then
        if [ "$mode" = c ]; then
            check_new_c "$map" "$cur" || { echo "$how: neither old nor new: $map" >&2; return 1; }
        elif [ "$map" != "$new" ]; then
            echo "$how: neither old nor new state: $map" >&2
            return 1
        fi
    fi
    check_key_files "$T/s" "$T/trusted" || { echo "$how: key files" >&2; return 1; }
    # A following replacement works, and no old thumbprint went missing.
    run --separate-stderr ac --store "$T/s" -q -c --password-file "$PWF"
    [ "$status" -eq 0 ] || { echo "$how: the next -c failed ($status): $stderr" >&2; return 1; }
    jq -en --argjson old "$OLD_MAP" --argjson now "$(store_map "$T/s")" \
        '($old | map(.[0])) - ($now | map(.[0])) == []' >/dev/null ||
        { echo "$how: a key was lost" >&2; return 1; }
    # The crash may leave temporaries; the next writer removes them.
    [ -z "$(leftover_tmp "$T/s")" ] || { echo "$how: temporaries left: $(leftover_tmp "$T/s")" >&2; return 1; }
}

crash_mode() { # MODE
    local mode="$1" new="" d n round k killed=0 finished=0
    [ "$mode" = c ] || new="$(expected_new "$mode")"
    [ "$mode" = c ] || [ "$new" != "$OLD_MAP" ] # the mode changes something
    d="$(measure "$mode")"
    echo "# $mode: one run takes ${d} us" >&3
    # A run that finishes before its delay was faster than the measured one
    # (the machine got quieter): the delays shrink to its time, and rounds go
    # on (up to three times as many) until a third of them were kills.
    local a b want=$((RANDOM_RUNS / 3))
    for ((round = 0; round < 3 * RANDOM_RUNS; round++)); do
        [ "$round" -lt "$RANDOM_RUNS" ] || [ "$killed" -lt "$want" ] || break
        fresh_copy
        n=$(( (RANDOM * 32768 + RANDOM) % (d + 1) ))
        a=$(date +%s%6N)
        # shellcheck disable=SC2046
        run "$BIN/killafter" "$n" "$KBIN/authcert" --store "$T/s" $(args_of "$mode")
        b=$(date +%s%6N)
        if [ "$status" -eq 137 ]; then killed=$((killed + 1)); else
            [ "$status" -eq 0 ] || { echo "run $round exit $status: $output" >&2; return 1; }
            finished=$((finished + 1))
            [ $((b - a)) -ge "$d" ] || d=$((b - a))
        fi
        check_after_crash "$mode" "$new" "kill after ${n} us"
    done
    echo "# $mode: random: $killed killed, $finished finished first" >&3
    [ "$killed" -ge "$want" ] # the delays really fell inside the run

    # Every file-changing call, in turn. strace counts `when` per system
    # call, so the Nth call of each name is a kill point of its own.
    local set=write,fsync,fdatasync,rename,renameat,renameat2,mkdir,mkdirat,unlink,unlinkat,ftruncate
    local name count
    # LeakSanitizer cannot run under ptrace: in the sanitizer build, the
    # traced runs go without the leak check (every other test keeps it).
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0"
    fresh_copy
    # shellcheck disable=SC2046
    strace -f -qq -e trace="$set" -o "$T/trace" "$KBIN/authcert" --store "$T/s" $(args_of "$mode")
    NSYS="$(wc -l <"$T/trace")"
    [ "$NSYS" -ge 4 ]
    while read -r count name; do
        for ((k = 1; k <= count; k++)); do
            fresh_copy
            # shellcheck disable=SC2046
            run strace -f -qq -o /dev/null -e trace="$set" -e inject="$name:signal=KILL:when=$k" \
                "$KBIN/authcert" --store "$T/s" $(args_of "$mode")
            [ "$status" -ne 0 ] || { echo "$name #$k: not killed" >&2; return 1; }
            check_after_crash "$mode" "$new" "SIGKILL after $name #$k"
        done
    done < <(sed -E 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/' "$T/trace" | sort | uniq -c)
    echo "# $mode: $NSYS file calls, each one killed" >&3
}

@test "SIGKILL during -c: old or new state, no key lost, the next -c works" {
    crash_mode c
}

@test "SIGKILL during -r: old or new state, no key lost, the next -c works" {
    crash_mode r
}

@test "SIGKILL during -re: old or new state, no key lost, the next -c works" {
    crash_mode re
}

@test "SIGKILL during -i: old or new state, no key lost, the next -c works" {
    crash_mode i
}
