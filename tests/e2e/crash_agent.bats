#!/usr/bin/env bats
# The agent's certificate file under stress: replaced (atomically, and
# rewritten in place, slowly) while pushed commands are verified and SIGHUP
# asks for a reload; and authcert-agent killed with SIGKILL in the middle of
# update-key. The agent never obeys a forgery, never dies of a half-written
# file, and the certificate file is always a whole certificate, old or new.

load harden

setup() {
    harden_setup crash-agent
    MK="$BIN/mktoken" AG="$BIN/authcert-agent"
    S="$T/state"
    mkdir -p "$S"
    "$MK" --gen-store-pem "$T/a.pem" --export-der "$T/a.der" >"$T/a.thumb"
    "$MK" --gen-store-pem "$T/b.pem" --export-der "$T/b.der" >"$T/b.thumb"
    "$MK" --gen-store-pem "$T/forger.pem" --export-der "$T/forger.der" >/dev/null
    cp "$T/a.der" "$S/authcert-server.der"
    echo agent-1 >"$S/agent-id"
}

teardown() { harden_teardown; }

agent_up() {
    rm -f "$S/listen-port"
    "$AG" --state-dir "$S" --listen 127.0.0.1:0 2>>"$T/agent.log" &
    APID=$!
    PIDS+=("$APID")
    # 2 s; under valgrind (AUTHCERT_TEST_SLOWER) the agent alone takes 1.5 s
    # to start on an idle machine.
    for _ in $(seq $((100 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ -s "$S/listen-port" ] && break; sleep 0.02; done
    [ -s "$S/listen-port" ]
    CURL_URL="https://127.0.0.1:$(cat "$S/listen-port")/v1/command"
    APIN="$(agent_pin "$S")"
}

push() { # TOKEN: prints the HTTP code
    curl -s -m 5 -k --pinnedpubkey "$APIN" -o /dev/null -w '%{http_code}' \
        -H 'Content-Type: application/jwt' --data-binary "$1" "$CURL_URL"
}

thumb_of_file() {
    openssl x509 -inform DER -in "$1" -noout -fingerprint -sha256 2>/dev/null |
        sed 's/.*=//; s/://g' | tr A-F a-f
}

@test "the certificate file swapped (atomically and in place) during pushes: no forgery obeyed, no crash" {
    agent_up
    # Swapper: A and B alternate, by rename and by slow in-place rewrites,
    # each followed by SIGHUP; the agent must keep a whole certificate.
    (
        for i in $(seq 40); do
            if [ $((i % 2)) -eq 0 ]; then
                cp "$T/b.der" "$S/.swap" && mv "$S/.swap" "$S/authcert-server.der"
            else
                # in place, in two halves with a pause between: a reader
                # may see half a certificate
                python3 -c '
import sys, time
d = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "r+b") as f:
    f.truncate(0); f.write(d[:len(d)//2]); f.flush(); time.sleep(0.02)
    f.write(d[len(d)//2:])' "$T/a.der" "$S/authcert-server.der"
            fi
            kill -HUP "$APID" 2>/dev/null || true
            sleep 0.03
        done
    ) &
    SW=$!
    n=0 ok=0 forged=0
    while kill -0 "$SW" 2>/dev/null; do
        ta="$("$MK" --cert-pem "$T/a.pem" --aud agent-1 --cmd ping)"
        tf="$("$MK" --cert-pem "$T/forger.pem" --aud agent-1 --cmd ping)"
        ca="$(push "$ta")"
        cf="$(push "$tf")"
        n=$((n + 1))
        [ "$ca" = 200 ] && ok=$((ok + 1))
        case "$ca" in 200 | 401) ;; *) echo "push signed by A: $ca" >&2; return 1 ;; esac
        [ "$cf" = 401 ] || { echo "forged push answered $cf" >&2; forged=$((forged + 1)); }
    done
    wait "$SW"
    echo "# $n rounds during 40 swaps: A's tokens accepted $ok times (when A was loaded)" >&3
    [ "$forged" -eq 0 ]
    kill -0 "$APID" # still running
    # At rest: file A, reloaded, A's commands run again
    cp "$T/a.der" "$S/authcert-server.der"
    kill -HUP "$APID"
    sleep 0.2
    [ "$(push "$("$MK" --cert-pem "$T/a.pem" --aud agent-1 --cmd ping)")" = 200 ]
    [ "$(push "$("$MK" --cert-pem "$T/b.pem" --aud agent-1 --cmd ping)")" = 401 ]
}

@test "SIGKILL of authcert-agent during update-key: the file is a whole certificate, old or new" {
    # How long one update-key push takes here: kills are spread over twice
    # that, so they land before, during and after the write on a slow or a
    # fast machine alike (a fixed 0..15 ms window fell after it on CI).
    cp "$T/a.der" "$S/authcert-server.der"
    agent_up
    t0=$(date +%s%N)
    [ "$(push "$("$MK" --cert-pem "$T/a.pem" --aud agent-1 --cmd update-key --update-cert "$T/b.der")")" = 200 ]
    span=$(( ($(date +%s%N) - t0) / 500000 + 1 )) # 2x the push, in ms
    kill -TERM "$APID"; wait "$APID" 2>/dev/null || true
    rounds="${AGENT_KILLS:-30}" old=0 new=0
    for r in $(seq "$rounds"); do
        cp "$T/a.der" "$S/authcert-server.der"
        agent_up
        tok="$("$MK" --cert-pem "$T/a.pem" --aud agent-1 --cmd update-key --update-cert "$T/b.der")"
        if [ "$r" -eq 1 ]; then
            : # killed before the command arrives: the old file must stay
        elif [ "$r" -eq "$rounds" ]; then
            # killed after the agent answered: the new file must be there
            [ "$(push "$tok")" = 200 ]
        else
            push "$tok" >/dev/null &
            ms=$((RANDOM % span))
            sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
        fi
        kill -KILL "$APID"
        wait "$APID" 2>/dev/null || true
        wait 2>/dev/null || true
        f="$S/authcert-server.der"
        [ -s "$f" ] || { echo "round $r: certificate file missing or empty" >&2; return 1; }
        t="$(thumb_of_file "$f")"
        if [ "$t" = "$(cat "$T/a.thumb")" ]; then old=$((old + 1)); last=old
        elif [ "$t" = "$(cat "$T/b.thumb")" ]; then new=$((new + 1)); last=new
        else echo "round $r: not a whole certificate (openssl: '$t')" >&2; return 1
        fi
        [ "$r" -ne 1 ] || [ "$last" = old ] || { echo "round 1: changed without a command" >&2; return 1; }
        [ "$r" -ne "$rounds" ] || [ "$last" = new ] || { echo "last round: answered 200, old file left" >&2; return 1; }
        [ "$(stat -c %a "$f")" = 644 ]
        # the agent starts again on what it finds
        agent_up
        kill -TERM "$APID"; wait "$APID" 2>/dev/null || true
    done
    echo "# update-key killed $rounds times over 0..$span ms: $old left the old file, $new the new one" >&3
}
