/*
 * authcertd — the server daemon (docs/authcertd.8).
 *
 * Options and the config file (same names, `key = value`), the listening
 * socket, the threads (HTTP pool, check-in writer, push), and an orderly
 * stop on SIGTERM/SIGINT: stop accepting, let requests in progress finish,
 * flush queued check-ins, close the registry, authcert_cleanup.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "authcert/config.h"
#include "authcert/auth.h"
#include "authcert/authcert.h"
#include "authcert/fsutil.h"
#include "authcert/handoff.h"
#include "daemon.h"

enum { EXIT_USAGE = 2, EXIT_START = 1 };

/* Every option, on the command line as --NAME and in the file as NAME. */
enum opt_kind { O_STR, O_NUM, O_BOOL };
struct opt {
    const char *name;
    enum opt_kind kind;
    size_t off;
    long min, max;
};
#define S(n, f) { n, O_STR, offsetof(daemon_config, f), 0, 0 }
#define N(n, f, lo, hi) { n, O_NUM, offsetof(daemon_config, f), lo, hi }
#define B(n, f) { n, O_BOOL, offsetof(daemon_config, f), 0, 1 }
static const struct opt opts[] = {
    S("store", store_dir), S("registry", registry), S("listen", listen),
    S("port-file", port_file), S("server-id", server_id), S("node-id", node_id),
    N("token-ttl", token_ttl, 1, 31 * 86400), N("interval", interval, 1, 86400),
    N("push-concurrency", push_concurrency, 1, 10000), N("push-rate", push_rate, 1, 1000000),
    N("push-timeout", push_timeout, 1, 300), N("threads", threads, 1, 256),
    N("max-connections", max_connections, 1, 1000000),
    N("connection-timeout", connection_timeout, 1, 3600), N("batch-ms", batch_ms, 1, 1000),
    S("tls-cert", tls_cert), S("tls-key", tls_key), B("insecure-http", insecure_http),
    S("enroll", enroll), N("enroll-pending-max", enroll_pending_max, 1, 1000000),
    N("enroll-rate", enroll_rate, 1, 1000000), N("auth-fail-rate", auth_fail_rate, 1, 1000000),
    N("per-ip-connections", per_ip_connections, 0, 1000000),
    N("header-deadline", header_deadline, 1, 3600), S("trusted-proxy", trusted_proxy),
};
#define NOPTS (sizeof opts / sizeof *opts)

static void usage(FILE *f)
{
    fprintf(f,
        "usage: authcertd --store DIR --registry DB --listen ADDR:PORT [--config FILE]\n"
        "                 [--port-file FILE] [--server-id ID] [--node-id ID] [--token-ttl S] [--interval S]\n"
        "                 [--push-concurrency N] [--push-rate N] [--push-timeout S]\n"
        "                 [--threads N] [--max-connections N] [--connection-timeout S]\n"
        "                 [--batch-ms MS] [--tls-cert FILE --tls-key FILE | --insecure-http]\n"
        "                 [--enroll token|approve|open] [--enroll-pending-max N]\n"
        "                 [--enroll-rate N] [--auth-fail-rate N] [--per-ip-connections N]\n"
        "                 [--header-deadline S] [--trusted-proxy ADDRESS]\n"
        "       authcertd --help | --version\n");
}

static int set_opt(daemon_config *c, const char *name, const char *value, const char *where)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (strcmp(opts[i].name, name) != 0)
            continue;
        if (opts[i].kind == O_BOOL) {
            long *slot = (long *)(void *)((char *)c + opts[i].off);
            if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0)
                *slot = 1;
            else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
                     strcmp(value, "0") == 0)
                *slot = 0;
            else {
                fprintf(stderr, "authcertd: %s: %s must be true or false\n", where, name);
                return -1;
            }
        } else if (opts[i].kind == O_STR) {
            char **slot = (char **)(void *)((char *)c + opts[i].off);
            free(*slot);
            if ((*slot = strdup(value)) == NULL)
                return -1;
        } else {
            char *end;
            long v;
            errno = 0;
            v = strtol(value, &end, 10);
            if (errno != 0 || end == value || *end != '\0' || v < opts[i].min ||
                v > opts[i].max) {
                fprintf(stderr, "authcertd: %s: %s must be a number from %ld to %ld\n", where,
                        name, opts[i].min, opts[i].max);
                return -1;
            }
            *(long *)(void *)((char *)c + opts[i].off) = v;
        }
        return 0;
    }
    fprintf(stderr, "authcertd: %s: unknown option %s\n", where, name);
    return -1;
}

/* One setting of the --config file; set_opt prints its own message. */
static authcert_status config_setting(void *ctx, const char *key, const char *value,
                                      const char *where)
{
    return set_opt(ctx, key, value, where) == 0 ? AUTHCERT_OK : AUTHCERT_E_USAGE;
}

static int load_config(daemon_config *c, const char *path)
{
    authcert_status rc = authcert_config_read(path, config_setting, c);

    if (rc != AUTHCERT_OK && rc != AUTHCERT_E_USAGE)
        fprintf(stderr, "authcertd: %s\n", authcert_detail());
    return rc == AUTHCERT_OK ? 0 : -1;
}

static void config_free(daemon_config *c)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].kind == O_STR)
            free(*(char **)(void *)((char *)c + opts[i].off));
}

/* Parse argv: --config first (anywhere), then the flags override the file. */
static int parse_args(int argc, char **argv, daemon_config *c)
{
    struct option lo[NOPTS + 4];
    size_t k = 0;
    int ch, idx;

    for (size_t i = 0; i < NOPTS; i++)
        lo[k++] = (struct option){ opts[i].name,
                                   opts[i].kind == O_BOOL ? no_argument : required_argument,
                                   NULL, 1000 + (int)i };
    lo[k++] = (struct option){ "config", required_argument, NULL, 'c' };
    lo[k++] = (struct option){ "help", no_argument, NULL, 'h' };
    lo[k++] = (struct option){ "version", no_argument, NULL, 'V' };
    lo[k] = (struct option){ 0 };

    opterr = 1;
    while ((ch = getopt_long(argc, argv, "", lo, &idx)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            exit(0);
        }
        if (ch == 'V') {
            printf("authcertd %s\n", authcert_version());
            exit(0);
        }
        if (ch == 'c' && load_config(c, optarg) != 0)
            return -1;
        if (ch == '?')
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "authcertd: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, &idx)) != -1)
        if (ch >= 1000 && set_opt(c, opts[ch - 1000].name,
                                  opts[ch - 1000].kind == O_BOOL ? "true" : optarg,
                                  "command line") != 0)
            return -1;
    if (c->store_dir == NULL || c->registry == NULL || c->listen == NULL) {
        fprintf(stderr, "authcertd: --store, --registry and --listen are required\n");
        return -1;
    }
    if (c->insecure_http && (c->tls_cert != NULL || c->tls_key != NULL)) {
        fprintf(stderr, "authcertd: --insecure-http and --tls-cert/--tls-key: choose one\n");
        return -1;
    }
    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        fprintf(stderr, "authcertd: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (c->enroll != NULL && strcmp(c->enroll, "token") != 0 &&
        strcmp(c->enroll, "approve") != 0 && strcmp(c->enroll, "open") != 0) {
        fprintf(stderr, "authcertd: --enroll must be token, approve or open, not %s\n",
                c->enroll);
        return -1;
    }
    /* What authcert --tls-cert new makes, in the store. */
    if (!c->insecure_http && c->tls_cert == NULL &&
        (asprintf(&c->tls_cert, "%s/tls/server.crt", c->store_dir) < 0 ||
         asprintf(&c->tls_key, "%s/tls/server.key", c->store_dir) < 0))
        return -1;
    return 0;
}

/* Bind ADDR:PORT or [V6]:PORT; the port actually bound goes to *port. */
static int listen_on(const char *spec, unsigned *port)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
    struct addrinfo *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    size_t hl;
    int fd = -1, one = 1, r;

    if (colon == NULL || colon == spec || colon[1] == '\0') {
        fprintf(stderr, "authcertd: --listen %s: expected ADDRESS:PORT\n", spec);
        return -1;
    }
    hl = (size_t)(colon - spec);
    if (spec[0] == '[' && colon[-1] == ']') {
        spec++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        fprintf(stderr, "authcertd: --listen: address too long\n");
        return -1;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    memset(&ss, 0, sizeof ss);
    if ((r = getaddrinfo(host, colon + 1, &hints, &ai)) != 0) {
        fprintf(stderr, "authcertd: --listen %s: %s\n", host, gai_strerror(r));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        fprintf(stderr, "authcertd: --listen %s: %s\n", colon - hl, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/*
 * Every connection is a file descriptor: --max-connections must fit under
 * RLIMIT_NOFILE with room for the registry, the store and the pushes. The
 * soft limit is raised to what is needed when the hard one allows.
 */
static int check_nofile(const daemon_config *c)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)c->max_connections + (rlim_t)c->push_concurrency + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
            rl.rlim_cur = need;
            if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
                return 0;
        }
        fprintf(stderr, "authcertd: --max-connections %ld needs %llu file descriptors, and "
                "RLIMIT_NOFILE allows %llu: lower it, or raise the limit (ulimit -n, "
                "LimitNOFILE=)\n", c->max_connections, (unsigned long long)need,
                (unsigned long long)(rl.rlim_max == RLIM_INFINITY ? rl.rlim_cur : rl.rlim_max));
        return -1;
    }
    return 0;
}

static int write_port_file(const char *path, unsigned port)
{
    char text[16];
    int n = snprintf(text, sizeof text, "%u\n", port);
    authcert_status rc = authcert_write_atomic(path, text, (size_t)n,
                                                    0644);

    if (rc != AUTHCERT_OK) {
        fprintf(stderr, "authcertd: %s: %s\n", path, authcert_detail());
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    daemon_ctx d = { .cfg = { .token_ttl = AUTHCERT_SERVER_TOKEN_TTL_DEFAULT,
                              .interval = AUTHCERT_SERVER_INTERVAL_DEFAULT,
                              .push_concurrency = 64, .push_rate = 1000, .push_timeout = 5,
                              .threads = 2, .max_connections = 4096,
                              .connection_timeout = 120, .batch_ms = 5,
                              .enroll_pending_max = 1000, .enroll_rate = 30,
                              .auth_fail_rate = 60, .per_ip_connections = 256,
                              .header_deadline = 10 } };
    authcert_server_options so = { 0 };
    struct MHD_Daemon *mhd = NULL;
    sigset_t sigs;
    unsigned port = 0;
    int fd = -1, sig = 0, status = EXIT_START;
    authcert_status rc;
    char cur[AUTHCERT_THUMBPRINT_LEN + 1];

    if (parse_args(argc, argv, &d.cfg) != 0) {
        usage(stderr);
        config_free(&d.cfg);
        return EXIT_USAGE;
    }
    /* Before any thread: they inherit the mask, and main waits for the signal. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Its signing key and the server secret stay out of cores (authcert/authcert.h). */
    if ((rc = authcert_no_core_dumps()) != AUTHCERT_OK ||
        (rc = authcert_init_with(0)) != AUTHCERT_OK) {
        fprintf(stderr, "authcertd: %s\n", authcert_detail());
        config_free(&d.cfg);
        return EXIT_START;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((rc = authcert_store_open(d.cfg.store_dir, AUTHCERT_STORE_READ, &d.store)) != AUTHCERT_OK) {
        fprintf(stderr, "authcertd: store %s: %s (%s)\n", d.cfg.store_dir,
                authcert_strerror(rc), authcert_detail());
        goto out;
    }
    if ((rc = authcert_store_server_secret(d.store, d.secret)) != AUTHCERT_OK ||
        (rc = authcert_mac_kdf_new(d.secret, &d.mac_kdf)) != AUTHCERT_OK) {
        fprintf(stderr, "authcertd: %s\n", authcert_detail());
        status = (int)rc;
        goto out;
    }
    /*
     * The id agents bind (JWS issuer, request MACs, enrollment proofs) must
     * be the same on every node an agent may reach: by default it is derived
     * from the server secret all of them share; the node's own name, for the
     * registry's node list, is another option.
     */
    if (d.cfg.server_id != NULL && strcmp(d.cfg.server_id, AUTHCERT_HANDOFF_ISSUER) == 0) {
        /* Its commands would read as hand-off statements (authcert/handoff.h). */
        fprintf(stderr, "authcertd: --server-id %s is reserved\n", AUTHCERT_HANDOFF_ISSUER);
        goto out;
    }
    if (d.cfg.server_id == NULL) {
        char id[AUTHCERT_DERIVED_SERVER_ID_LEN + 1];
        if ((rc = authcert_server_id_derive(d.secret, id)) != AUTHCERT_OK ||
            (d.cfg.server_id = strdup(id)) == NULL) {
            fprintf(stderr, "authcertd: server id: %s\n", authcert_detail());
            goto out;
        }
    }
    if (d.cfg.node_id == NULL) {
        char host[256] = "";
        if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
            snprintf(host, sizeof host, "%s", d.cfg.server_id);
        host[sizeof host - 1] = '\0';
        if ((d.cfg.node_id = strdup(host)) == NULL)
            goto out;
    }
    so.server_id = d.cfg.server_id;
    so.token_ttl = d.cfg.token_ttl;
    so.interval = (unsigned)d.cfg.interval;
    if ((rc = authcert_server_new(d.store, &so, &d.srv)) != AUTHCERT_OK) {
        fprintf(stderr, "authcertd: store %s: %s (%s)\n", d.cfg.store_dir,
                authcert_strerror(rc), authcert_detail());
        goto out;
    }
    /* Create or migrate the registry now, so that a bad one stops the start. */
    if ((rc = dreg_open(&d)) != AUTHCERT_OK) {
        fprintf(stderr, "authcertd: registry %s: %s (%s)\n", d.cfg.registry,
                authcert_strerror(rc), authcert_detail());
        goto out;
    }
    d.enroll_mode = d.cfg.enroll == NULL || strcmp(d.cfg.enroll, "token") == 0 ? ENROLL_TOKEN
                    : strcmp(d.cfg.enroll, "approve") == 0                  ? ENROLL_APPROVE
                                                                            : ENROLL_OPEN;
    if (d.enroll_mode == ENROLL_OPEN)
        dlog("WARNING: --enroll open: any agent that reaches this server enrolls with the "
             "first key it shows (trust on first use); for labs only");
    if (check_nofile(&d.cfg) != 0) {
        status = EXIT_USAGE;
        goto out;
    }
    if (limits_init(&d.cfg) != AUTHCERT_OK) {
        fprintf(stderr, "authcertd: %s\n", authcert_detail());
        goto out;
    }
    if (d.cfg.insecure_http) {
        dlog("WARNING: --insecure-http: check-ins, results and pushed commands (their "
             "arguments too) cross the network in clear, and agents cannot tell this "
             "server from another");
    } else if ((rc = tls_open(&d)) != AUTHCERT_OK) {
        /* The status is the exit code (authcertd(8), EXIT STATUS). */
        fprintf(stderr, "authcertd: TLS: %s%s\n", authcert_detail(),
                rc == AUTHCERT_E_NOTFOUND
                    ? " (make one with authcert --tls-cert new --dns NAME, give --tls-cert "
                      "FILE --tls-key FILE, or run with --insecure-http)"
                    : "");
        status = (int)rc;
        goto out;
    }
    if ((fd = listen_on(d.cfg.listen, &port)) < 0)
        goto out;
    if ((rc = writer_start(&d, &d.writer)) != AUTHCERT_OK ||
        (rc = pusher_start(&d, &d.pusher)) != AUTHCERT_OK ||
        (rc = http_start(&d, fd, &mhd)) != AUTHCERT_OK) {
        fprintf(stderr, "authcertd: %s\n", authcert_detail());
        goto out;
    }
    fd = -1; /* MHD's now */
    if (d.cfg.port_file != NULL && write_port_file(d.cfg.port_file, port) != 0)
        goto out;
    authcert_server_current(d.srv, cur, NULL);
    dlog("listening on %s (port %u, %s), server id %s, node %s, current certificate %s, "
         "store generation %llu, %ld HTTP threads", d.cfg.listen, port,
         d.cfg.insecure_http ? "plain HTTP" : "HTTPS", authcert_server_id(d.srv),
         d.cfg.node_id, cur,
         authcert_server_generation(d.srv), d.cfg.threads);

    nodes_tick(&d);
    for (unsigned ticks = 1;; ticks++) {
        /* Between signals the main thread has two chores: a look at the TLS
         * files every second, and the nodes check. */
        struct timespec tick = { .tv_sec = 1 };
        sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig < 0) {
            if (errno != EAGAIN)
                continue;
            if (!d.cfg.insecure_http)
                tls_maybe_reload(&d, false);
            limits_sweep((unsigned)d.cfg.header_deadline);
            if (ticks % NODES_TICK_SECONDS == 0)
                nodes_tick(&d);
            continue;
        }
        if (sig == SIGHUP) { /* re-read the store and the TLS files now */
            daemon_refresh(&d);
            if (!d.cfg.insecure_http)
                tls_maybe_reload(&d, true);
            continue;
        }
        break;
    }
    dlog("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    status = 0;
out:
    atomic_store(&d.stopping, true);
    http_stop(mhd);
    tls_close();
    limits_free();
    OPENSSL_cleanse(d.secret, sizeof d.secret);
    checkin_summary();
    pusher_stop(d.pusher);
    writer_stop(d.writer);
    dreg_close_all();
    authcert_server_free(d.srv);
    authcert_mac_kdf_free(d.mac_kdf);
    authcert_store_close(d.store);
    if (fd >= 0)
        close(fd);
    curl_global_cleanup();
    authcert_cleanup();
    config_free(&d.cfg);
    if (status == 0)
        dlog("stopped");
    return status;
}
