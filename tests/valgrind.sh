#!/usr/bin/env bash
# The suite under valgrind memcheck, for `make valgrind` (in `make check`,
# through `make lint`) and `make valgrind-full`. BUILD_DIR is configured with
# -DAUTHCERT_VALGRIND=ON (tests/CMakeLists.txt): there every test runs its
# programs under memcheck and fails on any error or definite leak, in any
# process it started (tests/valgrind/run-test.sh). CTEST_ARGS choose the
# tests (make valgrind: -L 'unit|cli'); the end is a table of the times,
# slowest first, to see where the minutes go.
# Usage: tests/valgrind.sh BUILD_DIR [CTEST_ARGS...]
set -euo pipefail
B="$(cd "${1:?usage: tests/valgrind.sh BUILD_DIR [CTEST_ARGS...]}" && pwd)"
shift
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 1; }
grep -qx 'AUTHCERT_VALGRIND:BOOL=ON' "$B/CMakeCache.txt" ||
    { echo "valgrind.sh: $B is not configured with -DAUTHCERT_VALGRIND=ON" >&2; exit 1; }
out="$B/valgrind-ctest.log"
st=0
start=$(date +%s)
(cd "$B" && ctest --output-on-failure -j "${JOBS:-2}" "$@") 2>&1 | tee "$out" || st=$?
echo "valgrind: $(($(date +%s) - start)) s wall; per test, slowest first:"
sed -n 's/^ *[0-9]*\/[0-9]* Test *#[0-9]*: \([^ ]*\) [.* ]*\([^0-9]*\) *\([0-9.]*\) sec$/\3 \1 \2/p' "$out" |
    sort -rn | awk '{ printf "  %8.1f s  %-32s %s\n", $1, $2, $3 }'
exit $st
