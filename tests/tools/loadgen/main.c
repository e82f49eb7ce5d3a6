/*
 * loadgen — many simulated agents in one process, for bench/run, speaking
 * protocol v2 (docs/protocol.md): every check-in carries the agent's
 * request MAC, every push answer its Authcert-Mac. The agents are enrolled
 * identities: `enroll` enrolls them over HTTP as an agent does; the other
 * modes take agents that bench/run bound in the registry beforehand (a
 * fixture, as mkstore is: key epoch 1), and derive each one's MAC key from
 * the store's server secret (--store) as authcertd does. Every token is
 * checked with the real agent code (authcert_agent_verify and
 * authcert_agent_apply_update_key), one trust per simulated agent made
 * with authcert_agent_trust_new, all sharing one certificate object, with
 * a replay capacity of REPLAY_CAP tokens each (about 100 bytes an entry).
 *
 *   loadgen rollover URL OLD_CERT_DER PREFIX COUNT CONNS [THREADS]
 *       Agents PREFIX-0..COUNT-1 hold the certificate in OLD_CERT_DER (an
 *       expired one of the server). Each checks in with its thumbprint,
 *       must get state "expired" and an update-key command, verifies it,
 *       installs the certificate it carries, and checks in again, which must
 *       answer "current". CONNS keep-alive connections over THREADS threads
 *       (default 1). Prints "agents N seconds S rate R".
 *
 *   loadgen push URL CERT_DER PREFIX COUNT CONNS PORT TIMEOUT -- CMD [ARG]...
 *       Listens on PORT of every loopback address (SO_BINDTODEVICE lo when
 *       allowed). Agent i is reached at 127.1.(i/200).(i%200+1):PORT: its
 *       check-in comes from that address, so the daemon records it, and the
 *       push's destination address names the agent (authcertd's push carries
 *       no agent id outside the token). Registers the COUNT agents with one
 *       check-in each, runs CMD (the operator's `authcert --push ... --all`),
 *       and waits until every agent has received and verified its command.
 *       Each answer carries Authcert-Mac (method PUSH-ANSWER, the token's
 *       did as the counter), without which authcertd records no delivery.
 *       Prints "agents N seconds S rate R bytes B" (S from CMD's start, B a
 *       token's length).
 *
 *   loadgen checkin URL PREFIX COUNT THUMBPRINT CONNS SECONDS MODE [START [QFILE]]
 *       Check-ins for SECONDS, cycling through agents PREFIX-START..
 *       modulo COUNT that report THUMBPRINT, CONNS at once, one thread,
 *       connection k from its own source address (below). MODE keepalive:
 *       CONNS kept-alive connections (HTTP/1.1 of our own over OpenSSL, as
 *       lean as wrk: keepalive.c); resume or full: each check-in on a new
 *       libcurl connection closed after it (resumed from the handle's last
 *       TLS session, or a full handshake). Prints "requests N seconds S rate R
 *       resumed K full F non2xx X errors E p50_ms P p99_ms Q" (K, F: the TLS
 *       handshakes of each kind, in resume and full). QFILE: the request
 *       count and the latency quantiles 0.1% .. 100% ("permille
 *       microseconds" a line), for bench/latmerge.py. Against authcertd, or
 *       against `bare` as its baseline.
 *
 *   loadgen enroll URL PREFIX COUNT TOKEN CONNS
 *       Agents PREFIX-0..COUNT-1 enroll, each with a P-256 key of its own
 *       (made before the clock starts): a nonce, then the proof of
 *       possession with TOKEN ("ID.SECRET", enough uses), CONNS keep-alive
 *       connections, each from its own source address. Each must answer
 *       "enrolled", and with --store its MAC key must be the one derived
 *       from the secret. Prints "agents N seconds S rate R".
 *
 *   loadgen bare PORT [SECONDS]
 *       A bare libmicrohttpd server (the daemon's threading: internal polling
 *       thread pool of 2, auto poll) answering every request with a fixed
 *       100-byte body: the baseline for the HTTP loads. Listens like push.
 *       With --store and --server-id, a POST carrying an Authorization
 *       header is answered only when its MAC verifies (the key derived per
 *       request, as authcertd derives it), else 401: so the check-in
 *       baseline does the v2 cryptography too, and what the comparison
 *       leaves is authcertd's own cost (parsing, the registry, the answer).
 *
 * Addresses: an agent index i < 200*250 maps to 127.1.(i/200).(i%200+1);
 * client connection k comes from 127.2.(k/250).(k%250+1).
 *
 * Options, before the mode:
 *   --cacert FILE      check-ins go to https:// URLs that FILE's certificate
 *                      vouches for (authcertd's STORE/tls/server.crt), TLS 1.2
 *                      or 1.3 with the agent's suites
 *                      (AUTHCERT_TLS_OPENSSL_CIPHERS)
 *   --tls-cert FILE --tls-key FILE
 *                      the listeners (push, bare) serve HTTPS with this
 *                      certificate and key (PEM) and authcertd's GnuTLS
 *                      priorities (AUTHCERT_TLS_GNUTLS_PRIORITIES); the
 *                      simulated agents report the key's pin in their
 *                      check-ins ("key_pin"), the pin bench/run bound them to
 *   --tickets          the listener hands out TLS session tickets, as
 *                      authcertd does (server/tls.c), so clients may resume
 *   --store DIR        the certificate store whose server secret the MAC
 *                      keys derive from (read only)
 *   --server-id ID     authcertd's --server-id, which every MAC covers
 *   --epoch N          the agents' key epoch (default 1, as bench/run binds them)
 *   --first N          checkin: the agents are PREFIX-(N+i), i < COUNT (default 0):
 *                      two generators, one per node, each with agents of its own
 *
 * And for the test of the harness itself (tests/e2e/bench_smoke.bats):
 *   --refuse I         push: simulated agent I refuses every command (403),
 *                      so the run must end with "delivered N-1/N" and fail
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "authcert/store.h"
#include "loadgen.h"

static void load_secret(const char *dir)
{
    authcert_store *s = NULL;

    if (authcert_store_open(dir, 0, &s) != AUTHCERT_OK ||
        authcert_store_server_secret(s, g_secret) != AUTHCERT_OK)
        die("store %s: no server secret", dir);
    authcert_store_close(s);
    g_have_secret = true;
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    size_t len;
    int rc = 2;

    signal(SIGPIPE, SIG_IGN);
    if (authcert_init() != AUTHCERT_OK || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        die("init");
    /* The options come first; the modes see argv[1] as their name. */
    while (argc >= 2 && strncmp(argv[1], "--", 2) == 0) {
        int used = 2;
        if (strcmp(argv[1], "--cacert") == 0 && argc >= 3)
            g_cacert = argv[2];
        else if (strcmp(argv[1], "--tls-cert") == 0 && argc >= 3)
            cert = argv[2];
        else if (strcmp(argv[1], "--tls-key") == 0 && argc >= 3)
            key = argv[2];
        else if (strcmp(argv[1], "--tickets") == 0)
            g_tickets = true, used = 1;
        else if (strcmp(argv[1], "--refuse") == 0 && argc >= 3)
            g_refuse = atol(argv[2]);
        else if (strcmp(argv[1], "--store") == 0 && argc >= 3)
            load_secret(argv[2]);
        else if (strcmp(argv[1], "--server-id") == 0 && argc >= 3)
            g_server_id = argv[2];
        else if (strcmp(argv[1], "--epoch") == 0 && argc >= 3)
            g_epoch = strtoull(argv[2], NULL, 10);
        else if (strcmp(argv[1], "--first") == 0 && argc >= 3)
            g_first = strtoull(argv[2], NULL, 10);
        else
            break;
        argv[used] = argv[0];
        argv += used;
        argc -= used;
    }
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "loadgen: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (g_have_secret != (g_server_id != NULL)) {
        fprintf(stderr, "loadgen: --store and --server-id go together\n");
        return 2;
    }
    if (cert != NULL) {
        g_cert_pem = read_file(cert, &len);
        if (authcert_cert_pin(g_cert_pem, len, g_pin) != AUTHCERT_OK)
            die("%s: no certificate", cert);
        g_key_pem = read_file(key, &len);
    }
    if (argc >= 2 && strcmp(argv[1], "rollover") == 0)
        rc = rollover(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "push") == 0)
        rc = push(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "bare") == 0)
        rc = bare(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "checkin") == 0)
        rc = checkin(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "enroll") == 0)
        rc = enroll(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: see the comment at the top of tests/tools/loadgen/main.c\n");
    OPENSSL_cleanse(g_secret, sizeof g_secret);
    return rc;
}
