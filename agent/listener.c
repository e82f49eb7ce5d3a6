/*
 * The push listener: POST /v1/command with a signed command (docs/protocol.md).
 *
 * libmicrohttpd with its own polling thread and a pool of two, a cap on
 * connections (in all and per address) and an idle timeout, so that idle or
 * slow clients cannot hold it. The answer is queued on the last callback of
 * a request (after the body), never the first: libmicrohttpd 0.9.75 closes
 * a keep-alive connection when the answer comes first. The exception is a
 * Content-Length beyond the cap: 413 at once, and the body is never read.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "daemon.h"

#define LISTEN_THREADS 2
#define LISTEN_MAX_CONNECTIONS 64
#define LISTEN_MAX_PER_IP 16
#define LISTEN_IDLE_TIMEOUT 10 /* seconds */

typedef struct request {
    char *body;
    size_t len;
    bool too_large;
} request;

static void peer_of(struct MHD_Connection *c, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, size, "?");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%u", host, (unsigned)ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%u", host, (unsigned)ntohs(s6->sin6_port));
    }
}

/*
 * mac_for: when not NULL, the answer carries an Authcert-Mac header made
 * with our MAC key over the body (method PUSH-ANSWER, path /v1/command,
 * the delivery id as the counter): authcertd records a result only when it
 * verifies, so an answer is the agent's own.
 */
static enum MHD_Result answer_as(struct MHD_Connection *c, unsigned int status, json_t *body,
                                 agent *mac_for, uint64_t did)
{
    char *text = json_dumps(body, JSON_COMPACT), authz[512];
    json_decref(body);
    if (text == NULL)
        return MHD_NO;
    size_t n = strlen(text);
    bool signed_ok = mac_for != NULL && did > 0 &&
                     agent_creds_authorize(mac_for, "PUSH-ANSWER", "/v1/command", text, n, did,
                                           authz, sizeof authz) == AUTHCERT_OK;
    struct MHD_Response *r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (signed_ok)
        MHD_add_response_header(r, "Authcert-Mac", authz);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned int status, json_t *body)
{
    return answer_as(c, status, body, NULL, 0);
}

/* A refusal: logged with its reason and the peer, answered with one line. */
static enum MHD_Result refuse(struct MHD_Connection *c, unsigned int status, const char *reason,
                              const char *detail)
{
    char peer[80];
    peer_of(c, peer, sizeof peer);
    agent_log(LOG_WARN, "refused push from %s: %u %s: %s", peer, status, reason, detail);
    return answer(c, status, json_pack("{s:s}", "error", reason));
}

static bool is_jwt_type(const char *ct)
{
    static const char want[] = "application/jwt";
    if (ct == NULL || strncasecmp(ct, want, sizeof want - 1) != 0)
        return false;
    const char *rest = ct + sizeof want - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

static enum MHD_Result handle_command(agent *a, struct MHD_Connection *c, request *rq)
{
    char peer[80], origin[128];
    json_t *claims = NULL;
    authcert_agent_verdict v = AUTHCERT_AGENT_UNAVAILABLE;

    /* A trailing newline (curl --data-binary @file) is not part of the token. */
    while (rq->len > 0 && (rq->body[rq->len - 1] == '\n' || rq->body[rq->len - 1] == '\r'))
        rq->len--;
    authcert_status st = authcert_agent_verify(a->trust, a->id, rq->body != NULL ? rq->body : "",
                                               rq->len, 0, &claims, &v);
    if (st != AUTHCERT_OK) {
        unsigned int http = (unsigned int)authcert_agent_verdict_http(v);
        char detail[400];
        snprintf(detail, sizeof detail, "%s", authcert_detail());
        return refuse(c, http, authcert_agent_verdict_name(v), detail);
    }
    peer_of(c, peer, sizeof peer);
    const char *cmd = json_string_value(json_object_get(claims, "cmd"));
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    snprintf(origin, sizeof origin, "push from %s", peer);
    agent_log(LOG_INFO, "accepted push from %s: cmd %.64s jti %s", peer, cmd ? cmd : "(none)",
              jti);
    json_t *res = agent_run_command(a, claims, origin);
    if (res == NULL) {
        json_decref(claims);
        return answer(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                      json_pack("{s:s}", "error", "out of memory"));
    }
    json_object_set_new(res, "agent_id", json_string(a->id));
    json_object_set_new(res, "jti", json_string(jti));
    const json_t *did = json_object_get(claims, "did");
    uint64_t d = json_is_integer(did) && json_integer_value(did) > 0
                     ? (uint64_t)json_integer_value(did) : 0;
    json_decref(claims);
    return answer_as(c, MHD_HTTP_OK, res, a, d);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    agent *a = cls;
    request *rq = *con_cls;
    (void)version;

    if (rq == NULL) {
        rq = calloc(1, sizeof *rq);
        if (rq == NULL)
            return MHD_NO;
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > AGENT_TOKEN_MAX) {
            char detail[64];
            snprintf(detail, sizeof detail, "Content-Length %.20s, limit %zu", cl,
                     AGENT_TOKEN_MAX);
            rq->too_large = true;
            return refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, "too large", detail);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_large)
            return MHD_YES;
        if (rq->len + n > AGENT_TOKEN_MAX) {
            /* Chunked, no length given: stop collecting; the rest is dropped unread. */
            rq->too_large = true;
            free(rq->body);
            rq->body = NULL;
            return MHD_YES;
        }
        char *nb = realloc(rq->body, rq->len + n + 1);
        if (nb == NULL)
            return MHD_NO;
        memcpy(nb + rq->len, upload_data, n);
        rq->body = nb;
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
    }

    /* The whole request is in: answer now. */
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return refuse(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", method);
    if (strcmp(url, "/v1/command") != 0)
        return refuse(c, MHD_HTTP_NOT_FOUND, "not found", url);
    if (rq->too_large) {
        char detail[64];
        snprintf(detail, sizeof detail, "body over %zu bytes", AGENT_TOKEN_MAX);
        return refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, "too large", detail);
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!is_jwt_type(ct))
        return refuse(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported media type",
                      ct != NULL ? ct : "no Content-Type");
    return handle_command(a, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request *rq = *con_cls;
    if (rq != NULL) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

/* "ADDR:PORT", "[V6]:PORT", "*:PORT" into a socket address. */
static authcert_status parse_listen(const char *spec, struct sockaddr_storage *ss, bool *v6)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] == '\0')
        return authcert_fail(AUTHCERT_E_USAGE, "--listen %s: want ADDR:PORT", spec);
    size_t hl = (size_t)(colon - spec);
    if (hl >= sizeof host)
        return authcert_fail(AUTHCERT_E_USAGE, "--listen %s: address too long", spec);
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    const char *node = (strcmp(host, "*") == 0 || host[0] == '\0') ? NULL : host;
    int e = getaddrinfo(node, colon + 1, &hints, &res);
    if (e != 0)
        return authcert_fail(AUTHCERT_E_USAGE, "--listen %s: %s", spec, gai_strerror(e));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return AUTHCERT_OK;
}

authcert_status agent_listener_start(agent *a)
{
    struct sockaddr_storage ss;
    bool v6 = false;
    authcert_status rc = parse_listen(a->cfg.listen, &ss, &v6);
    if (rc != AUTHCERT_OK)
        return rc;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_INTERNALLY | MHD_USE_TLS;
    if (v6)
        flags |= MHD_USE_IPv6;
    /*
     * HTTPS with a self-signed certificate of the agent's own key: authcertd
     * pins the key the agent reported (its pin in each check-in), so a
     * listener with another key gets no command. The key goes to GnuTLS as
     * PEM for the start only, then is wiped (GnuTLS keeps its own copy).
     */
    char *key_pem = NULL;
    size_t key_len = 0;
    BIO *bio = BIO_new(BIO_s_secmem());
    if (bio == NULL || PEM_write_bio_PrivateKey(bio, a->key, NULL, NULL, 0, NULL, NULL) != 1 ||
        (key_len = (size_t)BIO_get_mem_data(bio, &key_pem)) == 0 ||
        (key_pem = strndup(key_pem, key_len)) == NULL) {
        BIO_free(bio);
        return authcert_fail(AUTHCERT_E_CRYPTO, "cannot encode the agent key for the listener");
    }
    BIO_free(bio);
    a->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, &on_request, a,
        MHD_OPTION_HTTPS_MEM_KEY, key_pem,
        MHD_OPTION_HTTPS_MEM_CERT, a->listen_cert_pem,
        MHD_OPTION_HTTPS_PRIORITIES, AUTHCERT_TLS_GNUTLS_PRIORITIES,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)LISTEN_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)LISTEN_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)LISTEN_MAX_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)LISTEN_IDLE_TIMEOUT,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, &on_completed, NULL,
        MHD_OPTION_END);
    OPENSSL_cleanse(key_pem, key_len);
    free(key_pem);
    if (a->mhd == NULL)
        return authcert_fail(AUTHCERT_E_IO, "cannot listen on %s (address in use or not ours?)",
                             a->cfg.listen);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    a->port = di != NULL ? di->port : 0;
    agent_log(LOG_INFO, "listening on %s (port %u, HTTPS, key %s)", a->cfg.listen,
              (unsigned)a->port, a->key_pin);
    return agent_write_listen_port(a);
}

void agent_listener_stop(agent *a)
{
    if (a->mhd != NULL) {
        MHD_stop_daemon(a->mhd);
        a->mhd = NULL;
    }
}
