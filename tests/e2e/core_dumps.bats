#!/usr/bin/env bats
# No secrets in core dumps (issue 14): authcert waiting for a password,
# authcertd holding its signing key and server secret, and authcert-agent
# holding its key and MAC key are killed with SIGSEGV under `ulimit -c
# unlimited`; none leaves a core. The control: a process of ours that did not
# ask (sleep) leaves one in the same place, so cores are written here at all.

load harden

setup() {
    harden_setup core_dumps
    pattern="$(cat /proc/sys/kernel/core_pattern)"
    # A core_pattern pipe (systemd-coredump, apport) keeps cores elsewhere.
    [[ "$pattern" != "|"* ]] || skip "core_pattern is a pipe ($pattern): cores are not files here"
    mkdir -p "$T/cwd"
}

teardown() { harden_teardown; }

# crash DIR COMMAND...: start COMMAND in DIR with cores allowed, let it
# settle into its work, SIGSEGV it; prints how it ended.
crash() {
    local dir="$1" pid
    shift
    (cd "$dir" && ulimit -c unlimited && exec "$@" 2>"$dir/stderr.log") &
    pid=$!
    PIDS+=("$pid")
    sleep_until_busy "$pid"
    kill -SEGV "$pid"
    wait "$pid" && echo "exited 0" || echo "ended $?"
}

# Until the process has two threads or has been up half a second (a
# daemon's set-up done; authcert blocked on its password).
sleep_until_busy() {
    for _ in $(seq 20); do
        [ "$(ls "/proc/$1/task" 2>/dev/null | wc -l)" -ge 2 ] && return 0
        sleep 0.025
    done
}

cores() { find "$1" -maxdepth 1 -name 'core*' | wc -l; }

@test "control: a process that did not ask leaves a core here" {
    run crash "$T/cwd" sleep 30
    [ "$output" = "ended 139" ]
    [ "$(cores "$T/cwd")" -ge 1 ]
}

@test "authcertd, authcert-agent and authcert killed by SIGSEGV write no core" {
    ac --store "$T/store" -q -c --password-file "$PWF"
    ac --store "$T/store" -q --tls-cert new --ip 127.0.0.1
    mkdir -p "$T/d" "$T/a" "$T/t" "$T/agent"
    ac --store "$T/store" -q -e "$T/agent"
    run crash "$T/d" "$BIN/authcertd" --store "$T/store" --registry "sqlite:$T/reg.db" \
        --listen 127.0.0.1:0 --server-id core-test
    echo "authcertd: $output"
    # 139: SIGSEGV; 134: ASan's build turns it into its report and an abort
    [[ "$output" == "ended 139" || "$output" == "ended 134" ]]
    [ "$(cores "$T/d")" -eq 0 ]

    run crash "$T/a" "$BIN/authcert-agent" --server https://127.0.0.1:1 --state-dir "$T/agent" \
        --ca-file "$T/store/tls/server.crt" --listen 127.0.0.1:0
    echo "authcert-agent: $output"
    [[ "$output" == "ended 139" || "$output" == "ended 134" ]]
    [ "$(cores "$T/a")" -eq 0 ]

    # authcert blocked on a password from a pipe nobody writes to
    mkfifo "$T/pw.fifo"
    exec 7<>"$T/pw.fifo"
    run crash "$T/t" "$BIN/authcert" --store "$T/store2" -c --password-fd 7
    exec 7>&-
    echo "authcert: $output"
    [[ "$output" == "ended 139" || "$output" == "ended 134" ]]
    [ "$(cores "$T/t")" -eq 0 ]
}
