#!/usr/bin/env bash
# valgrind memcheck over a representative subset, for `make valgrind` (and
# `make lint`): the agent, replay and file unit tests, one CLI round
# (create, replace, backup, restore, restore not exportable, import, export,
# status, a wrong password) and the agent refusing a certificate file with
# an unsupported key (a double free once). Any error or definite leak fails.
# The whole suite under valgrind takes many minutes; this about 40 s.
# Usage: tests/valgrind.sh BUILD_DIR
set -euo pipefail
B="$(cd "${1:?usage: tests/valgrind.sh BUILD_DIR}" && pwd)/bin"
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 1; }
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
export AUTHCERT_SRC="$(cd "$(dirname "$0")/.." && pwd)" AUTHCERT_BIN="$B" AUTHCERT_TEST_TMP="$T/unit"
mkdir -p "$AUTHCERT_TEST_TMP"
VG=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
    --track-origins=no --child-silent-after-fork=yes)
run() {
    local a b
    a=$(date +%s)
    "${VG[@]}" "$@" >"$T/out" 2>&1 || { echo "valgrind: FAILED: $*" >&2; cat "$T/out" >&2; exit 1; }
    b=$(date +%s)
    echo "valgrind: ok ($((b - a)) s): ${*##*/}"
}
# Unit tests that finish in seconds under valgrind (key generation, scrypt
# and PKCS#12 KDFs run ~50x slower: test_cert, test_pkcs12, test_store and
# test_backup_store take minutes; the CLI round below covers those paths).
for t in test_agent test_replay test_fsutil test_base64url; do
    run "$B/$t"
done
PW="$T/pw"
printf '%s\n' 'correct horse battery staple 42' >"$PW"
S="$T/store"
run "$B/authcert" --store "$S" -q -c --password-file "$PW"
run "$B/authcert" --store "$S" -q -c --key-type ed25519 --password-file "$PW"
run "$B/authcert" --store "$S" -q -b --password-file "$PW" "$T/b.zip"
run "$B/authcert" --store "$T/r" -q -r --password-file "$PW" "$T/b.zip"
run "$B/authcert" --store "$T/re" -q -re --password-file "$PW" "$T/b.zip"
printf '%s\n' authcert-test >"$T/pfxpw" # tests/data/mkdata.sh
run "$B/authcert" --store "$S" -q -i --password-file "$T/pfxpw" "$AUTHCERT_SRC/tests/data/p256.pfx"
run "$B/authcert" --store "$S" -q -e "$T/agent.der"
run "$B/authcert" --store "$S" --status --json
# a refusal path too: a wrong password on restore (exit 3, no leak)
printf '%s\n' 'violet submarine juggles 93 quietly' >"$T/bad"
if "${VG[@]}" "$B/authcert" --store "$T/r" -q -r --password-file "$T/bad" "$T/b.zip" >"$T/out" 2>&1; then
    echo "valgrind: a wrong password was accepted" >&2; exit 1
elif [ $? -eq 99 ]; then
    echo "valgrind: FAILED: restore with a wrong password" >&2; cat "$T/out" >&2; exit 1
fi
echo "valgrind: ok: restore with a wrong password"
# The agent with a P-384 certificate file (a key type we do not support):
# exit 5, and no invalid read on the way out.
mkdir -p "$T/agent"
cp "$AUTHCERT_SRC/tests/data/p384.der" "$T/agent/authcert-server.der"
echo valgrind-agent >"$T/agent/agent-id"
st=0
"${VG[@]}" "$B/authcert-agent" --state-dir "$T/agent" --server http://127.0.0.1:9 --once >"$T/out" 2>&1 || st=$?
[ "$st" -eq 5 ] || { echo "valgrind: FAILED: agent with a P-384 file: exit $st" >&2; cat "$T/out" >&2; exit 1; }
echo "valgrind: ok: agent refusing a P-384 certificate file"
