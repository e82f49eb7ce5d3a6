#!/usr/bin/env bats
# TLS on both paths (docs/operations.md, "TLS"), seen from outside with tools
# nobody here wrote: openssl s_client and s_server, sslscan, curl, tcpdump,
# Python's ssl module. authcertd serves HTTPS with the certificate of
# `authcert --tls-cert new`; agents pin its key; an agent's listener serves
# a self-signed certificate of the agent's own key. Each refusal has its
# control beside it, so that it cannot pass because nothing works.

load harden

setup() {
    harden_setup tls
    ac --store "$T/store" -q -c --password-file "$PWF"
    SECRET="s3cret-$RANDOM$RANDOM-do-not-leak"
}

teardown() { harden_teardown; }

# s_client ARGS...: openssl s_client against authcertd, its output; never waits for input.
s_client() { openssl s_client -connect "127.0.0.1:$DPORT" "$@" </dev/null 2>&1; }
# s_request ARGS: s_client that asks for /healthz and reads until the server closes.
s_request() {
    printf 'GET /healthz HTTP/1.0\r\n\r\n' |
        openssl s_client -connect "127.0.0.1:$DPORT" -ign_eof "$@" 2>&1
}

# pin_of_pem CERT.pem: the pin of a certificate's key, computed with openssl.
pin_of_pem() {
    echo "sha256//$(openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER |
        openssl dgst -sha256 -binary | base64)"
}

@test "authcert --tls-cert: new (0600 key, names, pin as openssl computes it), renew keeps the pin, prepare then new switches to the prepared key" {
    run ac --store "$T/store" --tls-cert new --dns localhost --dns mgmt.example --ip 127.0.0.1
    [ "$status" -eq 0 ]
    [ "$(stat -c %a "$T/store/tls/server.key")" = 600 ]
    openssl x509 -in "$T/store/tls/server.crt" -noout -ext subjectAltName,extendedKeyUsage >"$T/ext"
    grep -q 'DNS:localhost, DNS:mgmt.example, IP Address:127.0.0.1' "$T/ext"
    grep -q 'TLS Web Server Authentication' "$T/ext"
    pin="$(pin_of_pem "$T/store/tls/server.crt")"
    [[ "$output" == *"pin: $pin"* ]]
    [ "$(ac --store "$T/store" --tls-cert pins)" = "$pin current" ]
    serial="$(openssl x509 -in "$T/store/tls/server.crt" -noout -serial)"
    # renew: a new certificate, the same key (so the same pin), the same names
    ac --store "$T/store" -q --tls-cert renew --days 30
    [ "$(openssl x509 -in "$T/store/tls/server.crt" -noout -serial)" != "$serial" ]
    [ "$(pin_of_pem "$T/store/tls/server.crt")" = "$pin" ]
    openssl x509 -in "$T/store/tls/server.crt" -noout -ext subjectAltName | grep -q 'DNS:mgmt.example'
    # prepare: the next key's pin is known before it is used
    run ac --store "$T/store" --tls-cert prepare
    [ "$status" -eq 0 ]
    next="$(ac --store "$T/store" --tls-cert pins | awk '$2 == "next" { print $1 }')"
    [ -n "$next" ] && [ "$next" != "$pin" ]
    [ "$(stat -c %a "$T/store/tls/next.key")" = 600 ]
    ac --store "$T/store" -q --tls-cert new --ip 127.0.0.1
    [ "$(pin_of_pem "$T/store/tls/server.crt")" = "$next" ]
    [ ! -e "$T/store/tls/next.key" ]
    # bad names and modes are usage errors, nothing written
    before="$(sha256sum "$T/store/tls/server.crt")"
    run --separate-stderr ac --store "$T/store" --tls-cert new --dns 'bad name'
    [ "$status" -eq 2 ]
    run --separate-stderr ac --store "$T/store" --tls-cert new --ip 300.1.1.1
    [ "$status" -eq 2 ]
    run --separate-stderr ac --store "$T/store" --tls-cert sideways
    [ "$status" -eq 2 ]
    [ "$(sha256sum "$T/store/tls/server.crt")" = "$before" ]
}

@test "authcertd: TLS 1.2 and 1.3 with forward-secret AEAD suites only (s_client, sslscan), sessions resumed" {
    start_authcertd "$T/store" "$T/reg.db" "$T/d.log"
    for v in tls1_2 tls1_3; do
        s_client -"$v" -CAfile "$CA" >"$T/s.$v"
        grep -q 'Verify return code: 0 (ok)' "$T/s.$v"
        grep -Eq "New, TLSv1\.[23], Cipher is (ECDHE-ECDSA-AES(128|256)-GCM|ECDHE-ECDSA-CHACHA20|TLS_)" "$T/s.$v"
    done
    # TLS 1.0 and 1.1, and CBC suites in 1.2, are refused. OpenSSL 3's client
    # refuses old protocols by itself, hence SECLEVEL=0; the control shows
    # that the very same probe reaches a server that does speak them.
    for v in tls1 tls1_1; do
        ! s_client -"$v" -cipher 'DEFAULT:@SECLEVEL=0' | grep -q 'Cipher is ECDHE'
    done
    ! s_client -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-SHA' |
        grep -q 'Cipher is ECDHE'
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=control -keyout "$T/ctl.key" \
        -out "$T/ctl.crt" 2>/dev/null
    CPORT="$(free_port)"
    openssl s_server -accept "127.0.0.1:$CPORT" -cert "$T/ctl.crt" -key "$T/ctl.key" \
        -cipher "DEFAULT:@SECLEVEL=0" -quiet </dev/null >/dev/null 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$CPORT") 2>/dev/null && break; sleep 0.05; done
    openssl s_client -connect "127.0.0.1:$CPORT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1 |
        grep -q 'Protocol  : TLSv1.1'
    openssl s_client -connect "127.0.0.1:$CPORT" -tls1_2 -cipher 'ECDHE-RSA-AES128-SHA' </dev/null 2>&1 |
        grep -q 'Cipher is ECDHE-RSA-AES128-SHA'
    # sslscan's view: the same
    sslscan --no-colour --no-fallback "127.0.0.1:$DPORT" >"$T/scan" 2>&1
    grep -Eq '^TLSv1\.0 +disabled' "$T/scan"
    grep -Eq '^TLSv1\.1 +disabled' "$T/scan"
    grep -Eq '^TLSv1\.2 +enabled' "$T/scan"
    grep -Eq '^TLSv1\.3 +enabled' "$T/scan"
    ! grep -E '^(Accepted|Preferred) ' "$T/scan" | grep -Ev 'GCM|CHACHA20|POLY1305'
    ! grep -E '^(Accepted|Preferred) +TLSv1\.2 ' "$T/scan" | grep -v ECDHE
    # a reconnection resumes its session (a ticket), in 1.2 and 1.3: each
    # connection makes a request and reads the answer to the end (a TLS 1.3
    # ticket comes after the handshake; s_client closing at once may miss it)
    for v in tls1_2 tls1_3; do
        s_request -"$v" -sess_out "$T/sess.$v" >/dev/null
        s_request -"$v" -sess_in "$T/sess.$v" | grep -q '^Reused, TLSv1'
    done
    curl -s "$URL/metrics" | grep -Eq '^authcert_tls_handshakes_total\{kind="resumed"\} [2-9]'
}

@test "authcertd serves its chain; curl --cacert and --pinnedpubkey accept it, a wrong pin or CA is refused" {
    # A certificate signed by a CA of the operator's, with the chain in the file.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=ops-ca \
        -addext basicConstraints=critical,CA:TRUE -keyout "$T/ca.key" -out "$T/ca.crt" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=mgmt \
        -keyout "$T/leaf.key" -out "$T/leaf.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/leaf.ext"
    openssl x509 -req -in "$T/leaf.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial \
        -days 10 -extfile "$T/leaf.ext" -out "$T/leaf.crt" 2>/dev/null
    cat "$T/leaf.crt" "$T/ca.crt" >"$T/chain.pem"
    chmod 600 "$T/leaf.key"
    start_authcertd "$T/store" "$T/reg.db" "$T/d.log" --tls-cert "$T/chain.pem" --tls-key "$T/leaf.key"
    [ "$(s_client -showcerts | grep -c 'BEGIN CERTIFICATE')" = 2 ]
    [ "$(command curl -s --cacert "$T/ca.crt" "$URL/healthz")" = ok ]
    pin="$(pin_of_pem "$T/leaf.crt")"
    [ "$(command curl -s -k --pinnedpubkey "$pin" "$URL/healthz")" = ok ]
    run command curl -s -k --pinnedpubkey "$(pin_of_pem "$T/ca.crt")" "$URL/healthz"
    [ "$status" -eq 90 ] # CURLE_SSL_PINNEDPUBKEYNOTMATCH
    run command curl -s --cacert "$T/store/tls/server.crt" "$URL/healthz" 2>/dev/null || true
    [ "$status" -eq 60 ] # CURLE_PEER_FAILED_VERIFICATION
    # plain HTTP to the TLS port gets nothing
    run command curl -s -m 2 "http://127.0.0.1:$DPORT/healthz"
    [ "$status" -ne 0 ]
    [ "$output" != ok ]
}

@test "a TLS certificate replaced on disk is served without a restart (and SIGHUP at once); a bad one is logged, the old kept" {
    start_authcertd "$T/store" "$T/reg.db" "$T/d.log"
    fp() { s_client | openssl x509 -noout -fingerprint -sha256; }
    first="$(fp)"
    ac --store "$T/store" -q --tls-cert renew
    for _ in $(seq $((60 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ "$(fp)" != "$first" ] && break; sleep 0.1; done
    second="$(fp)"
    [ "$second" != "$first" ]
    [ "$second" = "$(openssl x509 -in "$T/store/tls/server.crt" -noout -fingerprint -sha256)" ]
    grep -q "TLS: .*server.crt re-read: now serving public key $PIN (the same key)" "$T/d.log"
    kill -0 "$DPID"
    # a key file that does not match: logged, the running certificate stays
    cp "$T/store/tls/server.key" "$T/good.key"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/store/tls/server.key" 2>/dev/null
    chmod 600 "$T/store/tls/server.key"
    kill -HUP "$DPID"
    for _ in $(seq 50); do grep -q "does not match" "$T/d.log" && break; sleep 0.1; done
    grep -q "TLS: .*the key does not match the certificate.*still serving" "$T/d.log"
    [ "$(fp)" = "$second" ]
    [ "$(curl -s "$URL/healthz")" = ok ]
    cp "$T/good.key" "$T/store/tls/server.key"
}

@test "authcertd will not start on bad TLS files: one line and an exit code for each; plain HTTP only when asked, with a warning" {
    ac --store "$T/store" -q --tls-cert new --ip 127.0.0.1
    d() { "$BIN/authcertd" --store "$T/store" --registry "$T/reg.db" --listen 127.0.0.1:0 "$@"; }
    # no certificate at all: 9, and how to make one
    run d --tls-cert "$T/none.crt" --tls-key "$T/none.key"
    [ "$status" -eq 9 ]
    [[ "$output" == *"no such certificate file"*"authcert --tls-cert new"* ]]
    # a key others can read: 8
    cp "$T/store/tls/server.key" "$T/open.key"
    chmod 644 "$T/open.key"
    run d --tls-cert "$T/store/tls/server.crt" --tls-key "$T/open.key"
    [ "$status" -eq 8 ]
    [[ "$output" == *"open.key: mode 0644"*"chmod 600"* ]]
    # a key of another certificate: 5
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
    chmod 600 "$T/other.key"
    run d --tls-cert "$T/store/tls/server.crt" --tls-key "$T/other.key"
    [ "$status" -eq 5 ]
    [[ "$output" == *"the key does not match the certificate"* ]]
    # an expired certificate: 10 (openssl ca can backdate one)
    mkdir -p "$T/ca/newcerts" && touch "$T/ca/index.txt" && echo 01 >"$T/ca/serial"
    printf '[ca]\ndefault_ca=x\n[x]\ndir=%s\ndatabase=$dir/index.txt\nnew_certs_dir=$dir/newcerts\nserial=$dir/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' \
        "$T/ca" >"$T/ca.cnf"
    openssl req -new -key "$T/other.key" -subj /CN=old -out "$T/old.csr" 2>/dev/null
    openssl ca -batch -config "$T/ca.cnf" -selfsign -keyfile "$T/other.key" -in "$T/old.csr" \
        -startdate 20200101000000Z -enddate 20200201000000Z -out "$T/old.crt" 2>/dev/null
    run d --tls-cert "$T/old.crt" --tls-key "$T/other.key"
    [ "$status" -eq 10 ]
    [[ "$output" == *"old.crt: the certificate expired on 2020-02-01"* ]]
    # usage: only one of the two, or both with --insecure-http
    run d --tls-key "$T/other.key"
    [ "$status" -eq 2 ]
    run d --insecure-http --tls-cert "$T/old.crt" --tls-key "$T/other.key"
    [ "$status" -eq 2 ]
    # --insecure-http: plain HTTP, with a warning at the start
    start_authcertd "$T/store" "$T/reg.db" "$T/d.log" --insecure-http
    [ "$(command curl -s "http://127.0.0.1:$DPORT/healthz")" = ok ]
    grep -q "WARNING: --insecure-http" "$T/d.log"
}

@test "the agent talks only to its server: a man in the middle with another key is refused (naming both keys), and learns nothing" {
    start_authcertd "$T/store" "$T/reg.db" "$T/d.log"
    ac --store "$T/store" -q -e "$T/agent.der"
    mkdir -p "$T/a"
    cp "$T/agent.der" "$T/a/authcert-server.der"
    # The man in the middle: a TLS server with a key of its own on the path
    # (here: where the agent is told the server is), logging what it gets.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=mitm \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$T/mitm.key" -out "$T/mitm.crt" 2>/dev/null
    mkdir -p "$T/mitm"
    python3 "$AUTHCERT_SRC/tests/e2e/fake_authcertd.py" "$T/mitm" "$T/mitm.crt" "$T/mitm.key" &
    PIDS+=("$!")
    for _ in $(seq 100); do [ -s "$T/mitm/port" ] && break; sleep 0.05; done
    run "$BIN/authcert-agent" --once --state-dir "$T/a" --server "https://127.0.0.1:$(cat "$T/mitm/port")" \
        --server-pin "$PIN"
    [ "$status" -eq 11 ]
    [[ "$output" == *"refused: the server's key is $(pin_of_pem "$T/mitm.crt"), not $PIN"* ]]
    [ ! -s "$T/mitm/requests.log" ] # not one request reached it
    # with --ca-file the same: the MITM's certificate is not trusted
    run "$BIN/authcert-agent" --once --state-dir "$T/a" --server "https://127.0.0.1:$(cat "$T/mitm/port")" \
        --ca-file "$CA"
    [ "$status" -eq 11 ]
    [[ "$output" == *"is not trusted by $CA"* ]]
    [ ! -s "$T/mitm/requests.log" ]
    # control: the real server, by pin (enrolling) and by CA
    run "$BIN/authcert-agent" --once --state-dir "$T/a" --server "$URL" --server-pin "$PIN" \
        --enroll-token-file "$T/token.json"
    [ "$status" -eq 0 ]
    run "$BIN/authcert-agent" --once --state-dir "$T/a" --server "$URL" --ca-file "$CA"
    [ "$status" -eq 0 ]
    # several pins: any of them will do (a key being replaced)
    run "$BIN/authcert-agent" --once --state-dir "$T/a" --server "$URL" \
        --server-pin "$(pin_of_pem "$T/mitm.crt")" --server-pin "$PIN"
    [ "$status" -eq 0 ]
    # plain HTTP only when asked
    run "$BIN/authcert-agent" --once --state-dir "$T/a" --server "http://127.0.0.1:1"
    [ "$status" -eq 2 ]
    [[ "$output" == *"plain HTTP"*"--insecure-http"* ]]
}

@test "the agent's key: 0600, its listener serves a certificate of it, enrollment binds it, authcertd records it" {
    start_authcertd "$T/store" "$T/reg.db" "$T/d.log"
    ac --store "$T/store" -q -e "$T/agent.der"
    mkdir -p "$T/a"
    cp "$T/agent.der" "$T/a/authcert-server.der"
    "$BIN/authcert-agent" --state-dir "$T/a" --enroll-token-file "$T/token.json" \
        --listen 127.0.0.1:0 --key-type ed25519 2>"$T/a.log" &
    PIDS+=("$!")
    for _ in $(seq $((100 * ${AUTHCERT_TEST_SLOWER:-1}))); do [ -s "$T/a/listen-port" ] && break; sleep 0.05; done
    [ "$(stat -c %a "$T/a/agent.key")" = 600 ]
    openssl pkey -in "$T/a/agent.key" -noout -text | grep -q ED25519
    apin="$(agent_pin "$T/a")"
    # what the listener presents is a certificate of that very key
    openssl s_client -connect "127.0.0.1:$(cat "$T/a/listen-port")" </dev/null 2>/dev/null |
        openssl x509 >"$T/listener.crt"
    [ "$(pin_of_pem "$T/listener.crt")" = "$apin" ]
    for _ in $(seq 100); do
        [ "$(sqlite3 "$T/reg.db" "SELECT key_pin FROM agents" 2>/dev/null)" = "$apin" ] && break
        sleep 0.1
    done
    [ "$(sqlite3 "$T/reg.db" "SELECT key_pin FROM agents")" = "$apin" ] # bound at enrollment
    [ "$(stat -c %a "$T/a/agent.mac")" = 600 ]
    # a restart keeps the key
    grep -q "new agent key $apin" "$T/a.log"
}

@test "nothing in clear: a push with a secret argument and the check-ins, captured on loopback, show neither the secret nor the agent id" {
    start_authcertd "$T/store" "$T/reg.db" "$T/d.log"
    ac --store "$T/store" -q -e "$T/agent.der"
    mkdir -p "$T/a"
    cp "$T/agent.der" "$T/a/authcert-server.der"
    printf '#!/bin/sh\ncat >/dev/null\necho handled\n' >"$T/handler"
    chmod +x "$T/handler"
    tcpdump -i lo -U -w "$T/cap.pcap" tcp 2>"$T/tcpdump.log" &
    TPID=$!
    PIDS+=("$TPID")
    for _ in $(seq 100); do grep -q "listening on" "$T/tcpdump.log" && break; sleep 0.05; done
    "$BIN/authcert-agent" --state-dir "$T/a" --enroll-token-file "$T/token.json" --interval 1 \
        --listen 127.0.0.1:0 --handler "$T/handler" 2>"$T/a.log" &
    PIDS+=("$!")
    for _ in $(seq 100); do [ -s "$T/a/agent-id" ] && break; sleep 0.05; done
    id="$(cat "$T/a/agent-id")"
    for _ in $(seq 100); do
        [ "$(sqlite3 "$T/reg.db" "SELECT count(*) FROM agents WHERE port != 0" 2>/dev/null)" = 1 ] && break
        sleep 0.1
    done
    run ac --registry "$T/reg.db" --store "$T/store" --push deploy --agent "$id" \
        --args "{\"secret\":\"$SECRET\"}" --wait --timeout 20
    [ "$status" -eq 0 ]
    [[ "$output" == *handled* ]]
    # the control: the same capture does see what crosses in clear
    control="control-$RANDOM$RANDOM-in-clear"
    start_authcertd "$T/store" "$T/reg2.db" "$T/d2.log" --insecure-http
    command curl -s "http://127.0.0.1:$DPORT/v2/checkin" -H 'Content-Type: application/json' \
        -d "{\"agent_id\":\"$control\"}" >/dev/null
    for _ in $(seq 50); do grep -q -- "$control" "$T/cap.pcap" && break; sleep 0.1; done
    kill "$TPID"
    wait "$TPID" 2>/dev/null || true
    grep -q -- "$control" "$T/cap.pcap" # visible in clear: the capture works
    [ "$(grep -c "\"secret\":\"$SECRET\"" "$T/cap.pcap")" = 0 ]
    [ "$(grep -c -- "$SECRET\"" "$T/cap.pcap")" = 0 ]
    [ "$(grep -c -- "$id" "$T/cap.pcap")" = 0 ]
}
