# Shared by the hardening suites (tests/e2e/crash_*.bats, faults_*.bats,
# hostile_*.bats, tests/cli/concurrency.bats): stores, daemons on random
# ports, and the invariants every fault must leave intact.
# Env (set by CTest): AUTHCERT_BIN, AUTHCERT_SRC, AUTHCERT_TEST_TMP.
bats_require_minimum_version 1.5.0

PASS='correct horse battery staple 42'

harden_setup() { # NAME
    : "${AUTHCERT_BIN:?run through ctest, or set AUTHCERT_BIN=build/bin}"
    BIN="$AUTHCERT_BIN"
    mkdir -p "${AUTHCERT_TEST_TMP:-/tmp}"
    T="$(mktemp -d "${AUTHCERT_TEST_TMP:-/tmp}/$1.XXXXXX")"
    MOUNTS=()
    # Crash tests fsync a lot and test only process crashes (never a power
    # cut): on a tmpfs, when we may mount one, they run several times faster.
    if [ -n "${HARDEN_TMPFS:-}" ] && mount -t tmpfs -o size=64m,mode=0755 tmpfs "$T" 2>/dev/null; then
        MOUNTS+=("$T")
    fi
    PWF="$T/pw"
    (umask 077 && printf '%s\n' "$PASS" >"$PWF")
    PIDS=()
}

harden_teardown() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    local m
    for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
    [ -n "${T:-}" ] && rm -rf "$T"
}

ac() { "$BIN/authcert" "$@"; }

# The store's state as one line: every certificate's thumbprint, state and
# exportable flag, sorted; "error" when the store does not open.
store_map() { # STORE
    ac --store "$1" --status --json 2>/dev/null |
        jq -c '[.certificates[] | [.thumbprint, .state, .exportable]] | sort' ||
        echo error
}

store_current() { # STORE
    ac --store "$1" --status --json | jq -r .current
}

# Every key file loads with openssl alone (certificate and key, and the key is
# the certificate's), and the index names only key files that exist.
check_key_files() { # STORE [TRUSTED_SUMS]
    local s="$1" trusted="${2:-}" f t
    for f in "$s"/keys/*.pem; do
        [ -e "$f" ] || continue
        # Key files are written once: one already checked needs no openssl.
        if [ -n "$trusted" ] && grep -qx "$(sha256sum <"$f" | cut -d' ' -f1) ${f##*/}" "$trusted"; then
            continue
        fi
        local a b
        a="$(openssl pkey -in "$f" -pubout 2>/dev/null)" || { echo "key file does not load: $f" >&2; return 1; }
        b="$(openssl x509 -in "$f" -noout -pubkey 2>/dev/null)" || { echo "no certificate in $f" >&2; return 1; }
        [ -n "$a" ] && [ "$a" = "$b" ] || { echo "key and certificate differ in $f" >&2; return 1; }
        [ -z "$trusted" ] || echo "$(sha256sum <"$f" | cut -d' ' -f1) ${f##*/}" >>"$trusted"
    done
    for t in $(jq -r '.certificates[].thumbprint' "$s/store.json"); do
        [ -f "$s/keys/$t.pem" ] || { echo "index names a missing key file: $t" >&2; return 1; }
    done
}

# Files a killed writer may leave: temporaries (never read, never named by
# the index). Printed, one a line.
leftover_tmp() { # DIR
    find "$1" -name '*.tmp' 2>/dev/null
}

# curl trusts authcertd's TLS certificate ($CA, set by start_authcertd);
# give -k and --pinnedpubkey to reach an agent's listener instead.
curl() { command curl ${CA:+--cacert "$CA"} "$@"; }

# The pin of an agent's key (STATE_DIR/agent.key), computed with openssl.
agent_pin() { # STATE_DIR
    echo "sha256//$(openssl pkey -in "$1/agent.key" -pubout -outform DER |
        openssl dgst -sha256 -binary | base64)"
}

# authcertd on a random port over HTTPS (a TLS certificate for 127.0.0.1
# made in STORE/tls when there is none); sets DPID, DPORT, URL, CA and PIN.
# Extra arguments go to it.
start_authcertd() { # STORE REGISTRY LOG [ARGS...]
    local store="$1" reg="$2" log="$3"; shift 3
    if [ ! -s "$store/tls/server.crt" ]; then
        "$BIN/authcert" --store "$store" -q --tls-cert new --dns localhost --ip 127.0.0.1 ||
            return 1
    fi
    CA="$store/tls/server.crt"
    PIN="$("$BIN/authcert" --store "$store" --tls-cert pins | awk '$2 == "current" { print $1 }')"
    rm -f "$T/port"
    "$BIN/authcertd" --store "$store" --registry "$reg" --listen 127.0.0.1:0 \
        --port-file "$T/port" --server-id harden "$@" 2>>"$log" &
    DPID=$!
    PIDS+=("$DPID")
    for _ in $(seq $((200 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ -s "$T/port" ] && break; sleep 0.025; done
    [ -s "$T/port" ] || { echo "authcertd did not start:" >&2; cat "$log" >&2; return 1; }
    DPORT="$(cat "$T/port")"
    URL="https://127.0.0.1:$DPORT"
    # An enrollment token for the agents of the test (checkin_once, real agents).
    if [[ " $* " != *" --insecure-http "* ]]; then
        TOKEN="$("$BIN/authcert" --store "$store" --registry "$reg" --enroll-token new \
            --uses 100000 --server "$URL" "$T/token.json" -q && jq -r .token "$T/token.json")"
    fi
}

# One well-behaved check-in of agent AGENT (enrolled with $TOKEN the first
# time, by tests/tools/agentsim: its own key, the real proof and MAC);
# prints the answer; fails unless it is a 200. -m SECONDS: a deadline. The
# agent's listen port is $CHECKIN_PORT (default 0).
checkin_once() { # AGENT THUMBPRINT [-m SECONDS]
    local a="$1" t="$2" out
    [ "${3:-}" != -m ] || export AGENTSIM_TIMEOUT="$4"
    mkdir -p "$T/sim"
    if [ ! -s "$T/sim/$a.json" ]; then
        "$BIN/agentsim" enroll "$URL" "${CA:--}" "$T/sim/$a.json" "$a" "$TOKEN" >/dev/null ||
            return 1
    fi
    out="$("$BIN/agentsim" post "$URL" "${CA:--}" "$T/sim/$a.json" /v2/checkin \
        "{\"agent_id\":\"$a\",\"hostname\":\"h-$a\",\"port\":${CHECKIN_PORT:-0},\"version\":\"0.1.0\",\"thumbprint\":\"$t\"}")"
    local rc=$?
    unset AGENTSIM_TIMEOUT
    printf '%s\n' "${out#* }"
    return $rc
}

# Resident memory (kB) and threads of a process.
vmrss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
threads_of() { ls "/proc/$1/task" | wc -l; }

# A free TCP port on 127.0.0.1 (for a listener that must be named up front).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
