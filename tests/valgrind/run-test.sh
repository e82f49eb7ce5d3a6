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
# Under /tmp, not the build tree: tests run some programs as nobody, who
# cannot reach a build tree under /root or a mktemp -d (0700). A failed
# test's logs are moved to LOG_ROOT.
logs=$(mktemp -d /tmp/authcert-vg.XXXXXX) || exit 1
chmod 1777 "$logs"
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
    kept=$(mktemp -d "$root/test.XXXXXX") && cp -p "$logs"/*.log "$kept"/ 2>/dev/null
    echo "valgrind: logs kept in ${kept:-$logs}" >&2
    [ $st -ne 0 ] || st=1
fi
rm -rf "$logs"
exit $st
