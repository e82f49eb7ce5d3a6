#!/usr/bin/env bash
# `make check`, after the three builds: the whole suite on the plain build,
# the unit and CLI tests again under ASan+UBSan, each fuzz target briefly,
# and the static analysis, in two lanes that run side by side so that both
# CPUs stay busy. `make check-asan` (--asan-only): the ASan lane alone, on
# what make check left out of it. Each step's output goes to LOGS/STEP.log;
# a line says when a step ends, with its time; a failed step's log is
# printed at the end, then each failed test with its reasons; the wall time
# is the last line.
#
# Usage: tests/check.sh PLAIN_BUILD ASAN_BUILD FUZZ_BUILD
#        tests/check.sh --asan-only PLAIN_BUILD ASAN_BUILD
# Env: JOBS (tests at once per lane, default 2); which tests the ASan lane
# runs, as CTest regexes: ASAN_LABELS (-L), ASAN_NOT_LABELS (-LE),
# ASAN_EXCLUDE (-E); none set: every test (make check-full).
set -uo pipefail

asan_only=0
if [ "${1:-}" = --asan-only ]; then
    asan_only=1
    shift
    set -- "$1" "$2" "$2"
fi
plain=${1:?usage: tests/check.sh PLAIN_BUILD ASAN_BUILD FUZZ_BUILD}
asan=${2:?usage: tests/check.sh PLAIN_BUILD ASAN_BUILD FUZZ_BUILD}
fuzz=${3:?usage: tests/check.sh PLAIN_BUILD ASAN_BUILD FUZZ_BUILD}
src=$(cd "$(dirname "$0")/.." && pwd)
# Absolute: each lane cd's into its own build (make passes relative names).
plain=$(cd "$plain" && pwd) asan=$(cd "$asan" && pwd) fuzz=$(cd "$fuzz" && pwd)
jobs=${JOBS:-2}
logs=$plain/check-logs
rm -rf "$logs"
mkdir -p "$logs"
# CHECK_START: when make check began (epoch seconds), so that the builds count.
start=$(( SECONDS - ( $(date +%s) - ${CHECK_START:-$(date +%s)} ) ))

# step NAME COMMAND...: run it, its output in LOGS/NAME.log, one line at its
# end; CTest's line for each test as it ends, prefixed with the step's name.
step() {
    local name=$1 t0=$SECONDS rc
    shift
    echo "check: $name: started"
    "$@" 2>&1 | tee "$logs/$name.log" | sed -un "s|^ *\([0-9]*/[0-9]* Test *#[0-9]*: .*\)|[$name] \1|p"
    rc=${PIPESTATUS[0]}
    echo "$rc" >"$logs/$name.rc"
    if [ $rc -eq 0 ]; then
        echo "check: $name: passed in $((SECONDS - t0)) s"
    else
        echo "check: $name: FAILED (exit $rc) in $((SECONDS - t0)) s"
    fi
    return $rc
}

# The interop suites (tools nobody here wrote) run on the plain build at the
# end of the second lane, which is otherwise done a minute or two before the
# first: the two lanes end together, under the 12 minutes.
plain_suite() { (cd "$plain" && ctest --output-on-failure -j "$jobs" -LE interop); }
plain_interop() { (cd "$plain" && ctest --output-on-failure -j "$jobs" -L interop); }

# AUTHCERT_REAL_BIN: e2e/crash_admin's runs that are killed with SIGKILL
# are the plain build's programs (as under valgrind): a killed process gets
# no leak check and what it ran is a prefix of an uninterrupted run, which
# the ASan suite runs; every run after each crash is the ASan build's.
asan_suite() {
    (cd "$asan" && AUTHCERT_REAL_BIN="$plain/bin" \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j "$jobs" ${ASAN_LABELS:+-L "$ASAN_LABELS"} \
            ${ASAN_NOT_LABELS:+-LE "$ASAN_NOT_LABELS"} ${ASAN_EXCLUDE:+-E "$ASAN_EXCLUDE"})
}

fuzz_smoke() { (cd "$fuzz" && ctest --output-on-failure -j "$jobs"); }

static_analysis() { make -C "$src" --no-print-directory lint BUILD="$plain"; }

# Lane 1: the plain suite but interop, the longer. Lane 2: ASan, fuzz, the
# analysis (~45 s of clang-tidy on both CPUs), then the plain interop suites.
if [ $asan_only = 1 ]; then
    step asan-suite asan_suite
else
    step plain-suite plain_suite &
    lane1=$!
    { step asan-suite asan_suite; step fuzz-smoke fuzz_smoke; step static-analysis static_analysis
      step plain-interop plain_interop; } &
    lane2=$!
    wait $lane1
    wait $lane2
fi

failed=0
for rc in "$logs"/*.rc; do
    [ "$(cat "$rc")" = 0 ] && continue
    name=$(basename "$rc" .rc)
    failed=1
    echo
    echo "==== $name failed; the end of $logs/$name.log:"
    tail -n 150 "$logs/$name.log"
done
# Last, where a CI log's tail shows it: every failed test and its reasons
# (a bats "not ok" and the lines under it; a unit test's assertion).
if [ $failed = 1 ]; then
    echo
    echo "==== what failed:"
    for rc in "$logs"/*.rc; do
        [ "$(cat "$rc")" = 0 ] && continue
        name=$(basename "$rc" .rc)
        grep -E -A4 '^not ok |\*\*\*Failed|!= |FAIL' "$logs/$name.log" | grep -v '^ok ' |
            sed "s|^|[$name] |"
    done
fi
wall=$((SECONDS - start))
echo
if [ $failed = 0 ]; then
    echo "check: every step passed; wall time $((wall / 60)) min $((wall % 60)) s (logs in $logs)"
else
    echo "check: FAILED; wall time $((wall / 60)) min $((wall % 60)) s (logs in $logs)"
fi
exit $failed
