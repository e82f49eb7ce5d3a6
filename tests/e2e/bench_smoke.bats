#!/usr/bin/env bats
# The benchmark harness at tiny sizes: every step runs, every check it makes
# of the results holds (agents rolled over, pushes verified, rows listed),
# and it writes a results.json with every metric. Figures are not judged.
# The PostgreSQL rows run in the CTest fixture "pg"'s cluster
# (AUTHCERT_TEST_PG_URI_FILE), else in one bench/run starts; they are
# expected whenever PostgreSQL is installed.

setup() {
    command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
    [ -x "$AUTHCERT_BIN/loadgen" ] || skip "no loadgen in $AUTHCERT_BIN"
}

@test "bench/run --smoke runs every benchmark and writes results.json" {
    pg=0
    if command -v psql >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        pg=1
    fi
    # Generous: under ASan and beside other tests it runs several times slower.
    run timeout 240 "$AUTHCERT_SRC/bench/run" --smoke
    echo "$output"
    [ "$status" -eq 0 ]
    json=$(echo "$output" | sed -n 's/.*results: //p')
    [ -f "$json" ]
    run python3 -c '
import json, sys
m = {r["metric"]: r for r in json.load(open(sys.argv[1]))["metrics"]}
want = ["jwt_sign_ed25519", "jwt_verify_ed25519", "jwt_sign_p256", "jwt_verify_p256",
        "jwt_sign_rsa2048", "jwt_verify_rsa2048", "list_time", "list_peak_rss",
        "checkins_per_s", "checkin_p50_ms", "checkin_p99_ms", "checkins_resumed_per_s",
        "checkins_full_handshake_per_s", "enrollments_per_s", "rollover_agents_per_s",
        "rollover_per_daemon_cpu_s", "rollover_ceiling", "push_agents_per_s",
        "agent_rss_idle", "agent_rss_push", "agent_uss", "agent_pss", "authcertd_peak_rss"]
if sys.argv[2] == "1":
    want += ["pg_checkins_per_s", "pg_checkin_p50_ms", "pg_checkin_p99_ms",
             "pg2_checkins_per_s", "pg2_checkin_p50_ms", "pg2_checkin_p99_ms",
             "pg_list_time", "pg_list_peak_rss"]
missing = [w for w in want if w not in m or m[w]["value"] <= 0]
# Rows against a baseline have it, measured in the same run.
missing += [w + " baseline" for w in ("agent_rss_idle", "agent_rss_push", "checkins_per_s",
                                      "checkins_resumed_per_s", "checkins_full_handshake_per_s",
                                      "enrollments_per_s", "push_agents_per_s", "list_time")
            if w in m and not (m[w]["baseline"] or 0) > 0]
print("missing or zero:", missing)
sys.exit(1 if missing else 0)' "$json" "$pg"
    echo "$output"
    [ "$status" -eq 0 ]
    rm -rf "$(dirname "$json")"
}

# A run where not every simulated agent took its push is broken: the
# harness says how many did (delivered/expected), prints no table and no
# figure, and fails. One agent refuses every push (loadgen --refuse).
@test "bench/run --smoke fails, saying delivered/expected, when an agent refuses its push" {
    run timeout 240 env BENCH_PUSH_REFUSE=7 "$AUTHCERT_SRC/bench/run" --smoke
    echo "$output"
    [ "$status" -eq 1 ]
    [[ $output == *"broadcast push: delivered 99/100 (1 refused"* ]]
    [[ $output != *"| metric"* ]]
    [[ $output != *"push_agents_per_s"* ]]
    work=$(echo "$output" | sed -n 's/.*its work files: //p')
    [ -d "$work" ]
    # The refusal is the one asked for, and the only one: the other 99 verified theirs.
    grep -q '^loadgen: push-7 refused a push: told to' "$work/loadgen.log"
    [ "$(grep 'refused a push' "$work/loadgen.log" | grep -vc '^loadgen: push-7 ')" = 0 ]
    rm -rf "$(dirname "$work")"
}
