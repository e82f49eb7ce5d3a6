#!/usr/bin/env bash
# One CTest test under valgrind (AUTHCERT_VALGRIND=ON): run COMMAND with
# AUTHCERT_VG_LOGS set to a fresh directory, where each program started
# through valgrind-bin/ logs its memcheck errors; the test fails when any
# log is non-empty, whatever COMMAND's own status (a refusal a test expects
# to exit non-zero must still be clean). The logs of a failed test are kept.
# Usage: run-test.sh LOG_ROOT COMMAND...
set -uo pipefail
root=${1:?usage: run-test.sh LOG_ROOT COMMAND...}
shift
mkdir -p "$root"
logs=$(mktemp -d "$root/test.XXXXXX") || exit 1
chmod 1777 "$logs" # tests run some programs as nobody
export AUTHCERT_VG_LOGS="$logs"
"$@"
st=$?
bad=0
for f in "$logs"/*.log; do
    [ -s "$f" ] || continue
    echo "valgrind: errors in ${f##*/}:" >&2
    cat "$f" >&2
    bad=1
done
if [ $bad = 1 ]; then
    echo "valgrind: logs kept in $logs" >&2
    [ $st -ne 0 ] || st=1
else
    rm -rf "$logs"
fi
exit $st
