#!/usr/bin/env bats
# authcertd killed with SIGKILL, again and again, while real agents check in
# and commands are queued and pushed; restarted on the same port each time.
# Afterwards no queued command is lost: every delivery ends delivered, once
# (one row per command and agent, a result recorded), every command ran at
# its agent, and the registry is intact (reg_intact). The registry is
# SQLite, or PostgreSQL in CTest's e2e/crash_daemon_pg (registry.bash).

load harden
load registry

setup() {
    harden_setup crash-daemon
    ac --store "$T/store" -q -c --password-file "$PWF"
    reg_setup "$T"
    PORT="$(free_port)"
    URL="https://127.0.0.1:$PORT"
    "$BIN/authcert" --store "$T/store" -q --tls-cert new --dns localhost --ip 127.0.0.1
    CA="$T/store/tls/server.crt"
    PIN="$("$BIN/authcert" --store "$T/store" --tls-cert pins | awk '$2 == "current" { print $1 }')"
    # The handler logs each command it is given: COMMAND AGENT DELIVERY.
    cat >"$T/handler.sh" <<EOF
#!/bin/sh
did=\$(jq -r '.did // "none"')
echo "\$1 \$AUTHCERT_AGENT_ID \$did" >>"$T/ran.log"
echo done
EOF
    chmod +x "$T/handler.sh"
}

teardown() {
    harden_teardown # the daemons first: they hold the database open
    reg_teardown
}

daemon_up() {
    "$BIN/authcertd" --store "$T/store" --registry "$REG" --listen "127.0.0.1:$PORT" \
        --server-id harden --interval 1 --push-timeout 2 2>>"$T/d.log" &
    DPID=$!
    PIDS+=("$DPID")
    for _ in $(seq $((100 * ${AUTHCERT_TEST_SLOWER:-1}))); do curl -sf -m 1 --cacert "$CA" "$URL/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "authcertd did not come up" >&2; tail "$T/d.log" >&2; return 1
}

@test "SIGKILL authcertd during check-ins and pushes: no queued command lost, registry intact" {
    daemon_up
    "$BIN/authcert" --store "$T/store" --registry "$REG" -q --enroll-token new "$T/token.json" \
        --uses 3 --server "$URL"
    "$BIN/authcert" --store "$T/store" -q -e "$T/agent.der"
    for n in 1 2 3; do
        mkdir -p "$T/a$n"
        cp "$T/agent.der" "$T/a$n/authcert-server.der"
        echo "agent-$n" >"$T/a$n/agent-id"
        "$BIN/authcert-agent" --state-dir "$T/a$n" --enroll-token-file "$T/token.json" \
            --listen 127.0.0.1:0 \
            --interval 1 --handler "$T/handler.sh" 2>>"$T/a$n.log" &
        PIDS+=("$!")
    done
    for _ in $(seq 100); do
        [ "$(reg_q 'SELECT count(*) FROM agents' 2>/dev/null)" = 3 ] && break
        sleep 0.1
    done
    [ "$(reg_q 'SELECT count(*) FROM agents')" = 3 ]

    kills=0 queued=0
    for round in $(seq "${DAEMON_KILLS:-10}"); do
        # An operator queues a command for every agent ...
        if ac --registry "$REG" --push "job-$round" --all >/dev/null 2>>"$T/push.err"; then
            queued=$((queued + 1))
        fi
        # ... and the daemon dies at a random moment of its pushes and check-ins.
        sleep "0.$((RANDOM % 6 + 1))"
        kill -KILL "$DPID"
        wait "$DPID" 2>/dev/null || true
        kills=$((kills + 1))
        [ "$(reg_intact)" = ok ]
        daemon_up
    done
    echo "# $kills kills, $queued commands queued for 3 agents" >&3
    [ "$queued" -eq "${DAEMON_KILLS:-10}" ]

    # Left alone, the daemon delivers everything: with the check-ins (every
    # second), or pushes once a dead daemon's lease runs out.
    want=$((queued * 3))
    for _ in $(seq 200); do
        [ "$(reg_q "SELECT count(*) FROM deliveries WHERE state = 'delivered'")" = "$want" ] && break
        sleep 0.2
    done
    reg_q "SELECT state, count(*) FROM deliveries GROUP BY state" >&3
    [ "$(reg_q 'SELECT count(*) FROM deliveries')" = "$want" ]
    [ "$(reg_q "SELECT count(*) FROM deliveries WHERE state = 'delivered'")" = "$want" ]
    # one row per command and agent; every delivered one has its result
    [ "$(reg_q 'SELECT count(*) FROM (SELECT command_id, agent FROM deliveries GROUP BY 1, 2 HAVING count(*) > 1) AS dup')" = 0 ]
    [ "$(reg_q "SELECT count(*) FROM deliveries WHERE state = 'delivered' AND (result IS NULL OR result NOT LIKE '%\"ok\"%')")" = 0 ]
    [ "$(reg_intact)" = ok ]
    # Every command ran at every agent, once: a delivery re-sent after a
    # crash between the agent's answer and its recording is answered from
    # the agent's memory of the delivery id, not run again.
    for round in $(seq "$queued"); do
        for n in 1 2 3; do
            grep -q "^job-$round agent-$n " "$T/ran.log" || { echo "job-$round never ran at agent-$n" >&2; return 1; }
        done
    done
    dups=$(awk '{print $1, $2}' "$T/ran.log" | sort | uniq -d | wc -l)
    echo "# commands run more than once at an agent: $dups of $want" >&3
    [ "$dups" -eq 0 ]
}
