/*
 * The HTTP front: libmicrohttpd with its own threads (a pool, default 2).
 *
 * A request is answered on the handler's second call at the earliest:
 * libmicrohttpd 0.9.75 closes the connection after a response queued on the
 * first call (DESIGN.md 8: keep-alive is worth 5x). Refusals (404, 405, 415,
 * 413 by Content-Length) are the exception: they are answered at once and
 * the connection closes, so that an unwanted body is never read. A body
 * that grows past its cap while arriving is answered 413 as soon as it
 * does, without keeping another byte.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "daemon.h"

enum route { R_NONE, R_CHECKIN, R_RESULT, R_ENROLL_NONCE, R_ENROLL, R_ROTATE, R_V1, R_HEALTHZ,
             R_METRICS };

struct req {
    enum route route;
    bool answered;
    bool too_large;  /* the rest of the body is dropped, 413 at its end */
    size_t dropped;
    char *buf;
    size_t len, cap, max;
};

static enum MHD_Result send_answer(struct MHD_Connection *c, http_answer *a)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char *body = a->body != NULL ? a->body : strdup("");

    a->body = NULL;
    if (body == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            a->content_type != NULL ? a->content_type : "application/json");
    if (a->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", a->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    ret = MHD_queue_response(c, a->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result refuse(struct MHD_Connection *c, struct req *rq, unsigned status,
                              enum refusal why, const char *msg)
{
    http_answer a = { 0 };

    rq->answered = true;
    answer_error(&a, status, why, "%s", msg);
    return send_answer(c, &a);
}

static bool is_json(const char *ct)
{
    size_t n = strlen("application/json");

    return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void peer_of(struct MHD_Connection *c, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

    strcpy(out, "-");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

/* First call: route, method, type and declared size; no answer if all is well. */
static enum MHD_Result begin(struct MHD_Connection *c, struct req *rq, const char *url,
                             const char *method)
{
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
               strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    const char *cl;

    if (strcmp(url, "/v2/checkin") == 0) {
        rq->route = R_CHECKIN;
        rq->max = CHECKIN_BODY_MAX;
    } else if (strcmp(url, "/v2/result") == 0) {
        rq->route = R_RESULT;
        rq->max = RESULT_BODY_MAX;
    } else if (strcmp(url, "/v2/enroll/nonce") == 0) {
        rq->route = R_ENROLL_NONCE;
        rq->max = 1024;
    } else if (strcmp(url, "/v2/enroll") == 0) {
        rq->route = R_ENROLL;
        rq->max = 8 * 1024;
    } else if (strcmp(url, "/v2/rotate-key") == 0) {
        rq->route = R_ROTATE;
        rq->max = 8 * 1024;
    } else if (strcmp(url, "/v1/checkin") == 0 || strcmp(url, "/v1/result") == 0) {
        rq->route = R_V1;
        rq->max = CHECKIN_BODY_MAX;
    } else if (strcmp(url, "/healthz") == 0) {
        rq->route = R_HEALTHZ;
    } else if (strcmp(url, "/metrics") == 0) {
        rq->route = R_METRICS;
    } else {
        return refuse(c, rq, MHD_HTTP_NOT_FOUND, REFUSE_NOT_FOUND, "no such endpoint");
    }
    if (rq->max > 0) {
        if (!post)
            return refuse(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, REFUSE_METHOD, "use POST");
        if (!is_json(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE)))
            return refuse(c, rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, REFUSE_CONTENT_TYPE,
                          "Content-Type must be application/json");
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > rq->max)
            return refuse(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, REFUSE_TOO_LARGE,
                          "body too large");
    } else if (!get) {
        return refuse(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, REFUSE_METHOD, "use GET");
    }
    return MHD_YES;
}

/*
 * The source of a request: the peer's address, or, when the peer is the
 * configured trusted proxy (a load balancer), the last address of its
 * X-Forwarded-For (the one it saw; earlier ones are the client's word).
 */
static void source_of(const daemon_ctx *d, struct MHD_Connection *c, char *out, size_t size)
{
    const char *xff, *last;

    peer_of(c, out, size);
    if (d->cfg.trusted_proxy == NULL || strcmp(out, d->cfg.trusted_proxy) != 0)
        return;
    xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
    if (xff == NULL)
        return;
    last = strrchr(xff, ',');
    last = last != NULL ? last + 1 : xff;
    while (*last == ' ')
        last++;
    if (*last != '\0' && strlen(last) < size && strspn(last, "0123456789abcdefABCDEF.:") ==
                                                     strlen(last))
        snprintf(out, size, "%s", last);
}

static enum MHD_Result finish(daemon_ctx *d, struct MHD_Connection *c, struct req *rq,
                              const char *url)
{
    http_answer a = { .status = 200 };
    char peer[INET6_ADDRSTRLEN + 1];
    authcert_registry *reg = NULL;
    http_request hr = { .body = rq->buf != NULL ? rq->buf : "", .len = rq->len, .peer = peer,
                        .path = url };

    rq->answered = true;
    source_of(d, c, peer, sizeof peer);
    hr.authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    switch (rq->route) {
    case R_CHECKIN:
        checkin_handle(d, &hr, &a);
        break;
    case R_RESULT:
        result_handle(d, &hr, &a);
        break;
    case R_ENROLL_NONCE:
        enroll_nonce_handle(d, &hr, &a);
        break;
    case R_ENROLL:
        enroll_handle(d, &hr, &a);
        break;
    case R_ROTATE:
        rotate_handle(d, &hr, &a);
        break;
    case R_V1:
        v1_refused(&a);
        break;
    case R_HEALTHZ:
        daemon_refresh(d);
        a.content_type = "text/plain";
        if (dreg(d, &reg) == AUTHCERT_OK) {
            dreg_done();
            a.body = strdup("ok\n");
        } else {
            a.status = 503;
            a.body = strdup("registry unavailable\n");
        }
        break;
    case R_METRICS:
        daemon_refresh(d);
        a.content_type = "text/plain; version=0.0.4";
        if ((a.body = metrics_render(d)) == NULL)
            a.status = 500;
        break;
    case R_NONE:
        a.status = 404;
        break;
    }
    return send_answer(c, &a);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_data_size,
                               void **con_cls)
{
    daemon_ctx *d = cls;
    struct req *rq = *con_cls;

    (void)version;
    if (rq == NULL) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci != NULL)
            limits_request_seen(ci->socket_context);
        if ((rq = calloc(1, sizeof *rq)) == NULL)
            return MHD_NO;
        *con_cls = rq;
        return begin(c, rq, url, method);
    }
    if (rq->answered) { /* refused: drop whatever else arrives */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (rq->too_large || rq->max == 0 || rq->len + n > rq->max) {
            /*
             * A body without Content-Length (chunked) that outgrew its cap.
             * libmicrohttpd 0.9.75 cannot answer in the middle of an upload,
             * so the rest is read and dropped, and a body that goes on far
             * past the cap loses its connection.
             */
            free(rq->buf);
            rq->buf = NULL;
            rq->len = 0;
            rq->too_large = true;
            rq->dropped += n;
            return rq->dropped > 16 * (rq->max + 1) ? MHD_NO : MHD_YES;
        }
        if (rq->len + n + 1 > rq->cap) {
            size_t cap = rq->len + n + 1 > 1024 ? rq->max + 1 : 1024;
            char *p = realloc(rq->buf, cap);
            if (p == NULL)
                return MHD_NO;
            rq->buf = p;
            rq->cap = cap;
        }
        memcpy(rq->buf + rq->len, upload_data, n);
        rq->len += n;
        rq->buf[rq->len] = '\0';
        return MHD_YES;
    }
    if (rq->too_large)
        return refuse(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, REFUSE_TOO_LARGE, "body too large");
    return finish(d, c, rq, url);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct req *rq = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (rq != NULL) {
        free(rq->buf);
        free(rq);
        *con_cls = NULL;
    }
}

/* libmicrohttpd's own format strings: not literals, but not ours to check either. */
__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    dlog("http: %s", line);
}

/* Every connection's start and end: TLS wants both (tls.c). */
static void connection_event(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
    const daemon_ctx *d = cls;

    if (!d->cfg.insecure_http)
        tls_connection_event(c, toe == MHD_CONNECTION_NOTIFY_STARTED);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        *socket_context = limits_connection_started(c);
    else {
        limits_connection_ended(*socket_context);
        *socket_context = NULL;
    }
}

authcert_status http_start(daemon_ctx *d, int fd, struct MHD_Daemon **out)
{
    struct MHD_OptionItem tls[4] = { { MHD_OPTION_END, 0, NULL } };
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *mhd;

    size_t n = 0;

    if (!d->cfg.insecure_http) {
        n = tls_mhd_options(tls);
        flags |= MHD_USE_TLS;
    }
    tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
                                        (intptr_t)connection_event, d };
    tls[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    mhd = MHD_start_daemon(
        flags, 0, NULL, NULL,
        handler, d,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)d->cfg.threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)d->cfg.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)d->cfg.per_ip_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)d->cfg.connection_timeout,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_END);
    if (mhd == NULL)
        return authcert_fail(AUTHCERT_E_IO, "cannot start the HTTP server");
    *out = mhd;
    return AUTHCERT_OK;
}

void http_stop(struct MHD_Daemon *mhd)
{
    MHD_socket lfd;

    if (mhd == NULL)
        return;
    lfd = MHD_quiesce_daemon(mhd);
    for (int i = 0; i < 20; i++) { /* requests in progress: up to a second */
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        struct timespec nap = { 0, 50 * 1000000L };
        if (di == NULL || di->num_connections == 0)
            break;
        nanosleep(&nap, NULL);
    }
    MHD_stop_daemon(mhd);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
}
