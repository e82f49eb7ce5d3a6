# Shared by tests/cli/*.bats and tests/interop/*.bats.
# Env (set by CTest): AUTHCERT_BIN (build/bin), AUTHCERT_SRC, AUTHCERT_TEST_TMP.
bats_require_minimum_version 1.5.0

# A password the strength check accepts (tests/lib/testlib.h's TESTLIB_PASSWORD).
PASS='correct horse battery staple 42'
# Another strong one, for "wrong password" cases.
OTHER='violet submarine juggles 93 quietly'

setup() {
    : "${AUTHCERT_BIN:?run through ctest, or set AUTHCERT_BIN=build/bin}"
    mkdir -p "${AUTHCERT_TEST_TMP:-/tmp}"
    T=$(mktemp -d "${AUTHCERT_TEST_TMP:-/tmp}/cli.XXXXXX")
    export AUTHCERT_STORE="$T/store"
    PWF="$T/pw"
    (umask 077 && printf '%s\n' "$PASS" > "$PWF")
}

teardown() {
    [ -n "${T:-}" ] && rm -rf "$T"
}

authcert() {
    "$AUTHCERT_BIN/authcert" "$@"
}

# A store with one current certificate.
make_store() {
    authcert -q -c --password-file "$PWF" "$@"
}

# sha256 of every file under a store, with names and modes, in one line;
# "absent" when there is no store. Compared before and after every refusal.
store_digest() {
    local dir=${1:-$AUTHCERT_STORE}
    [ -e "$dir" ] || { echo absent; return; }
    (cd "$dir" && find . -printf '%y %m %p\n' | LC_ALL=C sort &&
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) | sha256sum
}

# The thumbprint of the current certificate, from --status --json.
current_thumb() {
    authcert --status --json "$@" | jq -r .current
}

state_of() { # THUMBPRINT [--store DIR]
    local t=$1; shift
    authcert --status --json "$@" | jq -r --arg t "$t" '.certificates[] | select(.thumbprint == $t) | .state'
}

# After `run --separate-stderr`: the refusal was one line, on stderr only,
# in the documented form, and never showed a password.
assert_one_error_line() {
    local n
    n=$(printf '%s\n' "$stderr" | wc -l)
    if [ "$n" -ne 1 ] || [[ "$stderr" != "authcert: "* ]]; then
        echo "want one 'authcert: ...' line on stderr, got: $stderr" >&2
        return 1
    fi
    [ -z "$output" ] || { echo "stdout not empty: $output" >&2; return 1; }
    assert_no_password
}

assert_nothing_changed_msg() {
    [[ "$stderr" == *"(nothing was changed)" ]] || { echo "stderr: $stderr" >&2; return 1; }
}

assert_no_password() {
    local p
    for p in "$PASS" "$OTHER" ${EXTRA_SECRET:+"$EXTRA_SECRET"}; do
        if [[ "${output:-}${stderr:-}" == *"$p"* ]]; then
            echo "a password appears in the output" >&2
            return 1
        fi
    done
}

# An unencrypted (STORED) ZIP with the given member names, each holding a
# few bytes; libzip stores such names as they are, so refusing is ours.
make_plain_zip() { # OUT NAME...
    python3 - "$@" <<'PY'
import sys, zipfile
out, names = sys.argv[1], sys.argv[2:]
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    for n in names:
        z.writestr(zipfile.ZipInfo(n), b"not a certificate\n")
PY
}

# What a certificate needs for the certificate policy to let it become
# current (`openssl req -x509` alone makes a CA: basicConstraints CA:TRUE).
LEAF_EXT=(-addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature)

# A self-signed certificate and key made by openssl alone: KEY CERT [CN]
openssl_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "${LEAF_EXT[@]}" \
        -keyout "$1" -out "$2" -days 30 -subj "/CN=${3:-imported}" 2>/dev/null
}

# sha256 of a DER file as 64 lowercase hex.
der_sha256() {
    openssl x509 -inform DER -in "$1" -noout -fingerprint -sha256 |
        sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# Tests that run the tool as `nobody` need root, and every path nobody
# touches must be reachable whatever the checkout's place: the build tree may
# sit under /root or a mktemp -d (0700), which nobody cannot pass. So such a
# test moves its folder T (and the store and password file in it) under /tmp,
# world-searchable on every Linux, and runs a copy of the tool from there
# (as_nobody). teardown removes it as any T.
need_nobody() {
    [ "$(id -u)" -eq 0 ] || skip "needs root to run as nobody"
    local old=$T
    T=$(mktemp -d /tmp/authcert-cli-nobody.XXXXXX)
    chmod 0755 "$T"
    cp -p "$old/pw" "$T/pw"
    rm -rf "$old"
    export AUTHCERT_STORE="$T/store"
    PWF="$T/pw"
    copy_tool_to "$T/tool"
    runuser -u nobody -- test -x "$T/tool/bin/authcert" ||
        { echo "nobody cannot run $T/tool/bin/authcert" >&2; return 1; }
}

# authcert as nobody: the copy need_nobody made, with its own library.
as_nobody() {
    runuser -u nobody -- env LD_LIBRARY_PATH="$T/tool/lib" "$T/tool/bin/authcert" "$@"
}

# Copy authcert and libauthcert into DIR/bin and DIR/lib, readable by all.
# Under valgrind (AUTHCERT_BIN holds wrappers, tests/valgrind/wrapper.sh.in)
# the wrapper is copied too, pointed at the copied program and suppressions.
copy_tool_to() {
    local dir=$1 prog=$AUTHCERT_BIN/authcert real supp lib
    mkdir -p "$dir/bin" "$dir/lib"
    real=$prog
    if [ "$(head -c 2 "$prog")" = '#!' ]; then
        real=$(sed -n "s/^\[ -n \"\$vg\" \] || exec '\(.*\)' \"\$@\"$/\1/p" "$prog")
        supp=$(sed -n "s/.*--suppressions='\([^']*\)'.*/\1/p" "$prog")
        [ -x "$real" ] && [ -f "$supp" ] || { echo "copy_tool_to: cannot read $prog" >&2; return 1; }
        cp "$supp" "$dir/memcheck.supp"
        sed -e "s|'$real'|'$dir/bin/authcert.real'|g" -e "s|'$supp'|'$dir/memcheck.supp'|" \
            "$prog" > "$dir/bin/authcert"
        chmod 0755 "$dir/bin/authcert"
        cp "$real" "$dir/bin/authcert.real"
    else
        cp "$prog" "$dir/bin/authcert"
    fi
    lib=$(ldd "$real" | sed -n 's/.*libauthcert\.so[.0-9]* => \(.*\) (.*/\1/p')
    [ -f "$lib" ] || { echo "copy_tool_to: no libauthcert for $real" >&2; return 1; }
    cp "$lib" "$dir/lib/"
    chmod -R a+rX "$dir"
}
