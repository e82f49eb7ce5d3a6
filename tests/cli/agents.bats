#!/usr/bin/env bats
# -l (the mismatch list), --agents and --push against a registry filled by
# fakefleet (the daemons' own tests exercise the same registry live).
load helpers

setup_fleet() {
    make_store
    OLD=$(current_thumb)
    make_store
    GONE=$(current_thumb)
    make_store --compromised
    CUR=$(current_thumb)
    UNKNOWN=$(printf 'ab%.0s' {1..32})
    export AUTHCERT_REGISTRY="$T/registry.db"
    # 3 current, 2 expired, 1 revoked, 2 unknown, 1 holding none.
    "$AUTHCERT_BIN/fakefleet" "$AUTHCERT_REGISTRY" agent 3 "$CUR" 2 "$OLD" 1 "$GONE" \
        2 "$UNKNOWN" 1 -
}

@test "-l writes RFC 4180 CSV of every agent not on the current certificate" {
    setup_fleet
    run --separate-stderr authcert -l "$T/mismatched.csv"
    [ "$status" -eq 0 ]
    [[ "$output" == "6 mismatched agents listed in $T/mismatched.csv" ]]
    # An independent CSV reader sees the header and one row per agent.
    run python3 - "$T/mismatched.csv" "$CUR" "$OLD" "$GONE" <<'PY'
import csv, sys
path, cur, old, gone = sys.argv[1:5]
with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
assert list(rows[0].keys())[:7] == ['agent_id', 'hostname', 'address', 'last_seen',
                                    'reported_thumbprint', 'reason', 'current_thumbprint'], rows[0].keys()
by = {r['agent_id']: r for r in rows}
assert sorted(by) == ['agent-3', 'agent-4', 'agent-5', 'agent-6', 'agent-7', 'agent-8'], sorted(by)
assert by['agent-3']['reason'] == 'expired' and by['agent-3']['reported_thumbprint'] == old
assert by['agent-5']['reason'] == 'revoked' and by['agent-5']['reported_thumbprint'] == gone
assert by['agent-6']['reason'] == 'unknown'
assert by['agent-8']['reason'] == 'unknown' and by['agent-8']['reported_thumbprint'] == ''
assert all(r['current_thumbprint'] == cur for r in rows)
import re
assert all(re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', r['last_seen']) for r in rows)
print('ok')
PY
    [ "$output" = ok ]
    # RFC 4180 line ends.
    [ "$(head -1 "$T/mismatched.csv" | od -An -c | tr -d ' \n' | tail -c 4)" = '\r\n' ]
}

@test "-l - writes the list to standard output and nothing else" {
    setup_fleet
    run --separate-stderr authcert -l -
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 7 ]
    [[ "${lines[0]}" == agent_id,hostname,* ]]
}

@test "-l with an empty fleet writes just the header" {
    make_store
    export AUTHCERT_REGISTRY="$T/registry.db"
    "$AUTHCERT_BIN/fakefleet" "$AUTHCERT_REGISTRY" agent 2 "$(current_thumb)"
    run --separate-stderr authcert -l -
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
}

@test "-l refusals: no registry, a folder that does not exist; nothing written" {
    make_store
    run --separate-stderr authcert --registry "$T/none.db" -l "$T/out.csv"
    [ "$status" -eq 9 ]
    assert_one_error_line
    [[ "$stderr" == *"no agent registry"* ]]
    [ ! -e "$T/none.db" ]
    [ ! -e "$T/out.csv" ]
    setup_fleet
    run --separate-stderr authcert -l "$T/no/such/dir/out.csv"
    [ "$status" -eq 6 ]
    assert_one_error_line
    [ -z "$(ls "$T" | grep -v -e '^store$' -e '^registry.db' -e '^pw$')" ]
}

@test "-l replaces an existing list atomically and keeps the old one on failure" {
    setup_fleet
    echo "old list" > "$T/list.csv"
    run authcert -q -l "$T/list.csv"
    [ "$status" -eq 0 ]
    [ "$(wc -l < "$T/list.csv")" -eq 7 ]
    # A registry that is not one: refused, the old list stays.
    cp "$T/list.csv" "$T/keep.csv"
    echo "not sqlite" > "$T/bad.db"
    run --separate-stderr authcert --registry "$T/bad.db" -l "$T/list.csv"
    [ "$status" -eq 5 ]
    cmp "$T/list.csv" "$T/keep.csv"
}

@test "--agents shows each agent's state; --json is a JSON array" {
    setup_fleet
    run --separate-stderr authcert --agents
    [ "$status" -eq 0 ]
    [[ "$output" == *"agent-0"*"current"* ]]
    [[ "$output" == *"agent-3"*"expired"* ]]
    [[ "$output" == *"agent-5"*"mismatched (revoked)"* ]]
    run --separate-stderr authcert --agents --json
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq length)" -eq 9 ]
    [ "$(echo "$output" | jq -r '[.[] | select(.state == "current")] | length')" -eq 3 ]
    [ "$(echo "$output" | jq -r '[.[] | select(.state == "expired")] | length')" -eq 2 ]
    [ "$(echo "$output" | jq -r '[.[] | select(.reason == "revoked")] | length')" -eq 1 ]
    [ "$(echo "$output" | jq -r '[.[] | select(.reason == "unknown")] | length')" -eq 3 ]
}

@test "--push queues durably; --wait without a daemon reports nothing delivered" {
    setup_fleet
    run --separate-stderr authcert --push ping --agent agent-0 --agent agent-1
    [ "$status" -eq 0 ]
    [[ "$output" == "queued command "*" (ping) for 2 agents" ]]
    run --separate-stderr authcert --push restart --all --args '{"service":"web"}'
    [ "$status" -eq 0 ]
    [[ "$output" == *"for 9 agents" ]]
    # The queue is in the registry file: another process sees it.
    [ "$(sqlite3 "$AUTHCERT_REGISTRY" 'select count(*) from deliveries')" -eq 11 ]
    run --separate-stderr authcert --push ping --agent agent-2 --wait --timeout 1
    [ "$status" -eq 6 ]
    [[ "$output" == *"agent-2"*"not delivered"* ]]
    [[ "$stderr" == *"0 of 1 agents ran it; 0 failed, 1 not delivered in 1 s" ]]
}

@test "--push refusals: no target, both targets, bad args, unknown agent; nothing queued" {
    setup_fleet
    before=$(sqlite3 "$AUTHCERT_REGISTRY" 'select count(*) from deliveries')
    run --separate-stderr authcert --push ping
    [ "$status" -eq 2 ]
    run --separate-stderr authcert --push ping --all --agent agent-0
    [ "$status" -eq 2 ]
    run --separate-stderr authcert --push ping --all --args '[1,2]'
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--args must be a JSON object"* ]]
    run --separate-stderr authcert --push ping --all --args '{"a":1,"a":2}'
    [ "$status" -eq 2 ]
    run --separate-stderr authcert --push ping --agent agent-0 --agent nobody-here
    [ "$status" -eq 9 ]
    assert_one_error_line
    [ "$(sqlite3 "$AUTHCERT_REGISTRY" 'select count(*) from deliveries')" -eq "$before" ]
}

@test "--status adds the agents by state when the registry is there" {
    setup_fleet
    run --separate-stderr authcert --status
    [ "$status" -eq 0 ]
    [[ "$output" == *"agents: 3 current, 2 expired (rolled over at their next check-in), 4 mismatched (authcert -l)"* ]]
    run --separate-stderr authcert --status --json
    [ "$(jq -c .agents <<< "$output")" = '{"current":3,"expired":2,"mismatched":4}' ]
    [ "$(jq -r .nodes <<< "$output")" = "[]" ]
    # Without a registry the store alone is shown, and nothing is created.
    run --separate-stderr authcert --registry "$T/none.db" --status --json
    [ "$status" -eq 0 ]
    [ "$(jq -r .agents <<< "$output")" = null ]
    [ ! -e "$T/none.db" ]
}
