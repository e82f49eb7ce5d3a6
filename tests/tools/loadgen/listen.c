/*
 * loadgen's listener: one libmicrohttpd daemon on PORT of every loopback
 * address, as the push's simulated agents (each answer MACed as the agent
 * MACs it) or as the bare server of the baselines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "loadgen.h"

struct agent *g_agents;
size_t g_count;
/*
 * What the simulated agents answered, under g_lock: per agent 0 (nothing
 * yet), OUTCOME_VERIFIED (a verified command: the first one counts), or
 * OUTCOME_REFUSED (refused, and none verified). g_last: when the last
 * agent verified its command (0 until all have). One lock for all three,
 * so that the waiting thread never sees every agent counted before g_last
 * is set (it once read 0 there and printed a negative time).
 */
unsigned char *g_outcome;
size_t g_verified, g_refused;
double g_last;
atomic_size_t g_toklen;
pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_bare_body[101];
static gnutls_datum_t g_ticket_key;

struct req {
    char *body;
    size_t len;
    bool too_big;
};

/* Answer body; authz, when not NULL, is the answer's Authcert-Mac. */
static enum MHD_Result reply_as(struct MHD_Connection *c, unsigned status, const char *body,
                                const char *authz)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    MHD_add_response_header(r, "Content-Type", "application/json");
    if (authz != NULL)
        MHD_add_response_header(r, "Authcert-Mac", authz);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body)
{
    return reply_as(c, status, body, NULL);
}

/*
 * The push answer of agent a to the token whose claims are given, MACed as
 * authcert-agent MACs it (agent/listener.c): method PUSH-ANSWER, path
 * /v1/command, the token's did as the counter, over the answer's body.
 */
static enum MHD_Result reply_signed(struct MHD_Connection *c, const struct agent *a,
                                    const char *body, const json_t *claims)
{
    char mac[AUTHCERT_MAC_B64_LEN + 1], authz[AUTHZ_MAX];
    json_int_t did = json_integer_value(json_object_get(claims, "did"));

    if (did <= 0 ||
        authcert_request_mac(a->key, &(authcert_request_auth){
                                         .method = "PUSH-ANSWER", .path = "/v1/command",
                                         .agent_id = a->id, .epoch = g_epoch,
                                         .server_id = g_server_id, .counter = (uint64_t)did,
                                         .body = body, .body_len = strlen(body) },
                             mac) != AUTHCERT_OK ||
        authcert_auth_header_format(a->id, g_epoch, (uint64_t)did, mac, authz, sizeof authz) !=
            AUTHCERT_OK)
        return reply(c, 500, "{\"error\":\"cannot MAC the answer\"}");
    return reply_as(c, 200, body, authz);
}

/*
 * The bare server with --store: a request's MAC, checked as authcertd
 * checks it (the key derived per request, the MAC recomputed), and nothing
 * else (no counter, no registry). True without an Authorization header.
 */
static bool bare_mac_ok(struct MHD_Connection *c, const char *url, const struct req *rq)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    authcert_auth_header h;
    uint8_t key[AUTHCERT_MAC_KEY_LEN];
    bool ok;

    if (!g_have_secret || v == NULL)
        return true;
    if (authcert_auth_header_parse(v, &h) != AUTHCERT_OK ||
        authcert_agent_mac_key(g_secret, h.agent_id, h.epoch, key) != AUTHCERT_OK)
        return false;
    ok = authcert_request_mac_ok(key, &(authcert_request_auth){
                                          .method = "POST", .path = url,
                                          .agent_id = h.agent_id, .epoch = h.epoch,
                                          .server_id = g_server_id, .counter = h.counter,
                                          .body = rq->body, .body_len = rq->len },
                                 h.mac);
    OPENSSL_cleanse(key, sizeof key);
    return ok;
}

/* Which simulated agent a connection is for: the loopback address it reached. */
static long agent_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    uint32_t ip;

    if (ci == NULL || getsockname(ci->connect_fd, (struct sockaddr *)&sa, &sl) != 0 ||
        sa.sin_family != AF_INET)
        return -1;
    ip = ntohl(sa.sin_addr.s_addr);
    if ((ip >> 16) != 0x7f01 || (ip & 0xff) == 0)
        return -1;
    return (long)(((ip >> 8) & 0xff) * 200 + (ip & 0xff) - 1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **ctx)
{
    struct req *rq = *ctx;
    bool bare = cls != NULL;
    char answer[512];
    json_t *claims = NULL;
    authcert_agent_verdict v;
    enum MHD_Result ret;
    long i;

    (void)version;
    if (rq == NULL) {
        if ((rq = calloc(1, sizeof *rq)) == NULL)
            return MHD_NO;
        *ctx = rq;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (rq->len + *upload_size > BODY_MAX) {
            rq->too_big = true;
        } else {
            char *p = realloc(rq->body, rq->len + *upload_size + 1);
            if (p == NULL)
                return MHD_NO;
            rq->body = p;
            memcpy(rq->body + rq->len, upload, *upload_size);
            rq->len += *upload_size;
            rq->body[rq->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (bare)
        return bare_mac_ok(c, url, rq) ? reply(c, 200, g_bare_body)
                                       : reply(c, 401, "{\"error\":\"the MAC does not verify\"}");
    if (strcmp(method, "POST") != 0 || strcmp(url, "/v1/command") != 0)
        return reply(c, 404, "{\"error\":\"not found\"}");
    if (rq->too_big)
        return reply(c, 413, "{\"error\":\"too large\"}");
    if ((i = agent_of(c)) < 0 || (size_t)i >= g_count)
        return reply(c, 404, "{\"error\":\"no such simulated agent\"}");
    if (i == g_refuse || authcert_agent_verify(g_agents[i].trust, g_agents[i].id, rq->body,
                                               rq->len, 0, &claims, &v) != AUTHCERT_OK) {
        if (i == g_refuse)
            v = AUTHCERT_AGENT_FORBIDDEN;
        pthread_mutex_lock(&g_lock);
        if (g_outcome[i] == 0) {
            g_outcome[i] = OUTCOME_REFUSED;
            g_refused++;
        }
        pthread_mutex_unlock(&g_lock);
        fprintf(stderr, "loadgen: %s refused a push: %s\n", g_agents[i].id,
                i == g_refuse ? "told to (--refuse)" : authcert_detail());
        snprintf(answer, sizeof answer, "{\"error\":\"%s\"}", authcert_agent_verdict_name(v));
        return reply(c, (unsigned)authcert_agent_verdict_http(v), answer);
    }
    snprintf(answer, sizeof answer,
             "{\"agent_id\":\"%s\",\"jti\":\"%s\",\"status\":\"ok\",\"exit\":0,\"output\":\"\"}",
             g_agents[i].id, json_string_value(json_object_get(claims, "jti")));
    atomic_store(&g_toklen, rq->len);
    pthread_mutex_lock(&g_lock);
    if (g_outcome[i] != OUTCOME_VERIFIED) {
        if (g_outcome[i] == OUTCOME_REFUSED)
            g_refused--;
        g_outcome[i] = OUTCOME_VERIFIED;
        if (++g_verified == g_count)
            g_last = now_s();
    }
    pthread_mutex_unlock(&g_lock);
    ret = reply_signed(c, &g_agents[i], answer, claims);
    json_decref(claims);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode code)
{
    struct req *rq = *ctx;

    (void)cls, (void)c, (void)code;
    if (rq != NULL) {
        free(rq->body);
        free(rq);
    }
    *ctx = NULL;
}

/* Every connection's start: session tickets, as authcertd enables them (server/tls.c). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    const union MHD_ConnectionInfo *ci;

    (void)cls, (void)socket_context;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED ||
        (ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION)) == NULL ||
        ci->tls_session == NULL)
        return;
    (void)gnutls_session_ticket_enable_server((gnutls_session_t)ci->tls_session, &g_ticket_key);
}

struct MHD_Daemon *listen_all(unsigned port, bool bare)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_ANY) };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC;
    struct MHD_OptionItem tls[5] = { { MHD_OPTION_END, 0, NULL } };
    size_t n = 0;
    struct MHD_Daemon *d;

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Loopback only, where allowed; the benchmark listens for a minute at most. */
    (void)setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0)
        die("cannot listen: %s", strerror(errno));
    if (g_cert_pem != NULL) {
        flags |= MHD_USE_TLS;
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, g_key_pem };
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, g_cert_pem };
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            (void *)AUTHCERT_TLS_GNUTLS_PRIORITIES };
        if (g_tickets) {
            if (gnutls_session_ticket_key_generate(&g_ticket_key) < 0)
                die("cannot make a session ticket key");
            tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
                                                (intptr_t)on_connection, NULL };
        }
    }
    d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, bare ? (void *)1 : NULL,
                         MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                         MHD_OPTION_THREAD_POOL_SIZE, 2u,
                         MHD_OPTION_CONNECTION_LIMIT, 8192u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_ARRAY, tls,
                         MHD_OPTION_END);
    if (d == NULL)
        die("cannot start the listener");
    return d;
}


int bare(int argc, char **argv)
{
    double secs = argc > 3 ? atof(argv[3]) : 600;

    if (argc < 3)
        return 2;
    memset(g_bare_body, 'x', 100);
    memcpy(g_bare_body, "{\"ok\":\"", 7);
    memcpy(g_bare_body + 98, "\"}", 2);
    listen_all((unsigned)atoi(argv[2]), true);
    printf("ready\n");
    fflush(stdout);
    usleep((useconds_t)(secs * 1e6));
    return 0;
}

