#!/usr/bin/env bats
# Two administrators at once: one writer wins, the other is told "busy"
# (exit 7) at once and changes nothing; a replacement while authcertd serves
# check-ins fails none of them, and the new certificate is used from the
# next check-in on.

load ../e2e/harden

setup() {
    harden_setup concurrency
    S="$T/store"
    ac --store "$S" -q -c --password-file "$PWF"
    ac --store "$T/other" -q -c --password-file "$PWF"
    ac --store "$T/other" -q -b --password-file "$PWF" "$T/other.zip"
}

teardown() { harden_teardown; }

ms() { date +%s%3N; }

@test "a held store: -c, -r, -re, -i are refused busy (exit 7) at once, nothing changed" {
    ac --store "$T/x" -q -c --key-type ed25519 --password-file "$PWF"
    ac --store "$T/x" -q -b --password-file "$PWF" "$T/x.zip"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
        -keyout "$T/k.pem" -out "$T/c.pem" -days 30 -subj /CN=i 2>/dev/null
    openssl pkcs12 -export -in "$T/c.pem" -inkey "$T/k.pem" -out "$T/x.pfx" -passout "pass:$PASS"
    before="$(store_map "$S")"
    # Another writer: this shell holds the lock (flock(2), the tool's)
    # through descriptor 8 until the end, however slow the runs are.
    exec 8>>"$S/lock"
    flock -n 8
    local slower=${AUTHCERT_TEST_SLOWER:-1} base
    for args in "-c" "-r $T/x.zip" "-re $T/x.zip" "-i $T/x.pfx"; do
        # What a run costs that is not refused (a reader: the process
        # started, the store opened): milliseconds, but seconds under
        # valgrind, more on a busy machine. The refusal takes at most 1 s
        # (x AUTHCERT_TEST_SLOWER) more.
        a=$(ms)
        ac --store "$S" --status >/dev/null
        b=$(ms)
        base=$((b - a))
        a=$(ms)
        # shellcheck disable=SC2086
        run --separate-stderr ac --store "$S" --password-file "$PWF" $args
        b=$(ms)
        [ "$status" -eq 7 ] || { echo "$args: exit $status: $stderr" >&2; return 1; }
        [[ "$stderr" == "authcert: "*"busy"* ]]
        [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
        [ $((b - a)) -lt $((base + 1000 * slower)) ] || # at once, not after waiting for the lock
            { echo "$args: refused after $((b - a)) ms (a reader: $base ms)" >&2; return 1; }
    done
    [ "$(store_map "$S")" = "$before" ]
    # --status, a reader, is not refused.
    ac --store "$S" --status >/dev/null
    exec 8>&-
}

# Two writers started together, ROUNDS times: every outcome is "both
# finished one after the other" or "one won, the other busy"; never
# anything else, and the store holds exactly the winners' changes.
race() { # ARGS_A ARGS_B
    local r sa sb n0 n1 wins
    for r in $(seq "${ROUNDS:-8}"); do
        n0="$(ac --store "$S" --status --json | jq '.certificates | length')"
        # shellcheck disable=SC2086
        ac --store "$S" -q --password-file "$PWF" $1 2>"$T/ea" & pa=$!
        # shellcheck disable=SC2086
        ac --store "$S" -q --password-file "$PWF" $2 2>"$T/eb" & pb=$!
        sa=0; wait "$pa" || sa=$?
        sb=0; wait "$pb" || sb=$?
        case "$sa/$sb" in
        0/0 | 0/7 | 7/0) ;;
        *) echo "round $r: exits $sa/$sb: $(cat "$T/ea" "$T/eb")" >&2; return 1 ;;
        esac
        for e in "$T/ea" "$T/eb"; do
            if [ -s "$e" ]; then grep -q "busy" "$e" && [ "$(wc -l <"$e")" -eq 1 ]; fi
        done
        [ "$sa" = 7 ] || [ "$sb" = 7 ] && BUSY=$((BUSY + 1))
        check_key_files "$S"
        n1="$(ac --store "$S" --status --json | jq '.certificates | length')"
        echo "$r $sa $sb $n0 $n1" >>"$T/rounds"
    done
}

@test "two -c at once: one wins, the other is busy; every winner's key is kept" {
    BUSY=0
    race "-c" "-c"
    # each -c that exited 0 added exactly one certificate
    while read -r r sa sb n0 n1; do
        wins=$(( (sa == 0) + (sb == 0) ))
        [ "$n1" -eq $((n0 + wins)) ] || { echo "round $r: $n0 -> $n1 with $wins wins" >&2; return 1; }
    done <"$T/rounds"
    echo "# two -c: $BUSY of ${ROUNDS:-8} rounds overlapped (busy)" >&3
    [ "$BUSY" -ge 1 ]
    [ "$(ac --store "$S" --status --json | jq '[.certificates[] | select(.state == "current")] | length')" -eq 1 ]
}

@test "-c against -r at once: one wins, the other is busy; nothing lost" {
    BUSY=0
    race "-c" "-r $T/other.zip"
    echo "# -c against -r: $BUSY of ${ROUNDS:-8} rounds overlapped (busy)" >&3
    [ "$BUSY" -ge 1 ]
    # when -r won a round, every certificate of the backup is in the store
    if awk '$3 == 0 {found=1} END {exit !found}' "$T/rounds"; then
        for t in $(ac --store "$T/other" --status --json | jq -r '.certificates[].thumbprint'); do
            [ -n "$(state_of_s "$t")" ]
        done
    fi
    # and each -c that won added one certificate (a -r adds the backup's, once)
    while read -r r sa sb n0 n1; do
        [ "$n1" -ge $((n0 + (sa == 0))) ]
    done <"$T/rounds"
}

state_of_s() { ac --store "$S" --status --json | jq -r --arg t "$1" '.certificates[] | select(.thumbprint == $t) | .state'; }

@test "-c while authcertd serves check-ins: none fails, the next ones get the new certificate" {
    OLD="$(store_current "$S")"
    start_authcertd "$S" "$T/reg.db" "$T/d.log"
    # Four agents check in as fast as they can, each answer logged with its
    # time: enrolled by tests/tools/agentsim, their requests signed here
    # with Python's hmac (protocol v2).
    for n in 0 1 2 3; do
        checkin_once "agent-$n" "$OLD" >/dev/null
        mk="$("$BIN/agentsim" mackey "$T/sim/agent-$n.json")"
        echo "agent-$n ${mk#* } ${mk%% *}" >>"$T/keys"
    done
    sid="$(jq -r .server_id "$T/sim/agent-0.json")"
    /usr/bin/env python3 - "$URL" "$OLD" "$T/answers" "$T/stop" "$CA" "$T/keys" "$sid" <<'PY' &
import hashlib, hmac, base64, json, os, ssl, sys, threading, time, urllib.request
url, thumb, out, stop, ca, keyfile, sid = sys.argv[1:]
tls = ssl.create_default_context(cafile=ca)
keys = [line.split() for line in open(keyfile)]
def authz(agent, epoch, key, body):
    counter = time.time_ns() // 1000
    text = "authcert-v2\nPOST\n/v2/checkin\n%s\n%s\n%s\n%d\n%s" % (
        agent, epoch, sid, counter, hashlib.sha256(body).hexdigest())
    mac = base64.urlsafe_b64encode(hmac.new(bytes.fromhex(key), text.encode(), hashlib.sha256).digest())
    return 'AUTHCERT-V2 agent="%s", epoch=%s, counter=%d, mac="%s"' % (agent, epoch, counter, mac.rstrip(b"=").decode())
def agent(n):
    name, epoch, key = keys[n]
    with open(out + str(n), "w") as f:
        while not os.path.exists(stop):
            body = json.dumps({"agent_id": name, "hostname": "h", "port": 0,
                               "version": "1", "thumbprint": thumb}).encode()
            req = urllib.request.Request(url + "/v2/checkin", body,
                                         {"Content-Type": "application/json",
                                          "Authorization": authz(name, epoch, key, body)})
            try:
                with urllib.request.urlopen(req, timeout=5, context=tls) as r:
                    a = json.load(r)
                    f.write("%d %s %s\n" % (r.status, a["state"], a["current_thumbprint"]))
            except Exception as e:
                f.write("FAIL %s\n" % e)
            f.flush()
            time.sleep(0.02)
ts = [threading.Thread(target=agent, args=(n,)) for n in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
    PIDS+=("$!")
    # Until a dozen check-ins were answered on the old certificate ...
    answered() { cat "$T"/answers? 2>/dev/null | grep -c "^200 $1" || true; }
    for _ in $(seq $((200 * ${AUTHCERT_TEST_SLOWER:-1}))); do
        [ "$(answered "current $OLD")" -gt 10 ] && break
        sleep 0.05
    done
    ac --store "$S" -q -c --password-file "$PWF"
    NEW="$(store_current "$S")"
    [ "$NEW" != "$OLD" ]
    # ... and a dozen on the new one (the store is looked at once a second).
    for _ in $(seq $((200 * ${AUTHCERT_TEST_SLOWER:-1}))); do
        [ "$(answered "expired $NEW")" -gt 10 ] && break
        sleep 0.05
    done
    touch "$T/stop"
    wait "${PIDS[-1]}"
    cat "$T"/answers* >"$T/all"
    echo "# $(wc -l <"$T/all") check-ins during the replacement" >&3
    ! grep -q FAIL "$T/all"
    [ "$(grep -c "^200 current $OLD" "$T/all")" -gt 10 ]
    [ "$(grep -c "^200 expired $NEW" "$T/all")" -gt 10 ]
    # per agent: once the new certificate was announced, never the old one again
    for f in "$T"/answers?; do
        awk -v new="$NEW" '$3 == new {seen=1} seen && $3 != new {exit 1}' "$f"
        [ "$(tail -1 "$f" | cut -d' ' -f3)" = "$NEW" ]
    done
    grep -q "certificate replaced: current $NEW" "$T/d.log"
}
