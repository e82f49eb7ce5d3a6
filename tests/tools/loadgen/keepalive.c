/*
 * loadgen checkin keepalive: CONNS kept-alive HTTPS connections of our own
 * (HTTP/1.1 over OpenSSL, non-blocking, one epoll loop), as lean as wrk
 * was: per check-in one SSL_write and the SSL_reads of its answer, no
 * more. TLS as authcert-agent sets it (TLS 1.2 or 1.3, the agent's suites,
 * the server verified by --cacert and the URL's address); connection k
 * comes from conn_source(k). The first round (a handshake and a check-in on
 * every connection) is not counted. A connection the server closes, or
 * that fails, counts an error and is made again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "checkin.h"

#define RBUF 4096
#define TIMEOUT_S 10.0

enum state { IDLE, HANDSHAKE, SEND, RECV };

struct conn {
    int fd;
    SSL *ssl;
    enum state st;
    uint32_t events; /* what epoll waits for now */
    size_t k, agent;
    bool has_agent;
    char req[CHECKIN_BODY_MAX + AUTHZ_MAX + 256];
    size_t rlen_req;
    char rbuf[RBUF + 1];
    size_t rlen;
    double t0;
};

struct loop {
    struct run *r;
    SSL_CTX *ctx;
    int ep;
    struct sockaddr_in dst;
    char host[64];
    unsigned port;
    bool stopping; /* the time is up: no new check-ins */
    size_t inflight;
};

static void want(struct loop *l, struct conn *c, uint32_t ev)
{
    struct epoll_event e = { .events = ev, .data.ptr = c };

    if (c->events == ev)
        return;
    if (epoll_ctl(l->ep, c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &e) != 0)
        die("epoll_ctl: %s", strerror(errno));
    c->events = ev;
}

static void conn_close(struct conn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd); /* leaves the epoll set with it */
    c->ssl = NULL;
    c->fd = -1;
    c->events = 0;
    c->st = IDLE;
}

static void conn_open(struct loop *l, struct conn *c)
{
    char src[32];
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int one = 1;

    conn_source(c->k, src);
    inet_pton(AF_INET, src, &sa.sin_addr);
    if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
        bind(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("socket from %s: %s", src, strerror(errno));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&l->dst, sizeof l->dst) != 0 && errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    if ((c->ssl = SSL_new(l->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        die("SSL_new");
    SSL_set_connect_state(c->ssl);
    c->st = HANDSHAKE;
    c->rlen = 0;
    want(l, c, EPOLLOUT);
}

/* The next agent's check-in as one HTTP/1.1 request in c->req. */
static void prepare(struct loop *l, struct conn *c)
{
    char body[CHECKIN_BODY_MAX], authz[AUTHZ_MAX];
    size_t len;

    c->agent = checkin_next(l->r, body, &len, authz);
    c->has_agent = true;
    c->rlen_req = (size_t)snprintf(c->req, sizeof c->req,
                                   "POST /v2/checkin HTTP/1.1\r\nHost: %s:%u\r\n"
                                   "Content-Type: application/json\r\n%s\r\n"
                                   "Content-Length: %zu\r\n\r\n%s",
                                   l->host, l->port, authz, len, body);
    c->t0 = now_s();
    l->inflight++;
}

/* The check-in on c ended (status 0: failed); then the next, unless stopping. */
static void finish(struct loop *l, struct conn *c, long status, const char *why)
{
    checkin_done(l->r, c->agent, c->t0, status, why);
    c->has_agent = false;
    l->inflight--;
}

static void failed(struct loop *l, struct conn *c, const char *why)
{
    if (!l->r->counting)
        die("checkin: the first round failed: %s", why);
    if (c->has_agent)
        finish(l, c, 0, why);
    conn_close(c);
    if (!l->stopping)
        conn_open(l, c);
}

/* A complete answer in c->rbuf? Its status, or 0 while incomplete; *close when it says so. */
static long parsed(struct conn *c, bool *close_after)
{
    char *end, *cl;
    size_t hdr, clen = 0;

    c->rbuf[c->rlen] = '\0';
    if ((end = strstr(c->rbuf, "\r\n\r\n")) == NULL)
        return 0;
    hdr = (size_t)(end - c->rbuf) + 4;
    *end = '\0';
    for (cl = c->rbuf; (cl = strchr(cl, '\n')) != NULL; cl++) {
        if (strncasecmp(cl + 1, "content-length:", 15) == 0)
            clen = strtoull(cl + 16, NULL, 10);
        else if (strncasecmp(cl + 1, "connection: close", 17) == 0)
            *close_after = true;
    }
    *end = '\r';
    if (c->rlen < hdr + clen)
        return 0;
    if (strncmp(c->rbuf, "HTTP/1.1 ", 9) != 0)
        return -1;
    return strtol(c->rbuf + 9, NULL, 10);
}

/* Move c on as far as it goes without waiting. */
static void drive(struct loop *l, struct conn *c)
{
    for (;;) {
        int n, e;
        switch (c->st) {
        case IDLE: {
            /* Waiting: TLS 1.3 session tickets are taken in; a close ends it. */
            char junk[256];
            if (c->ssl == NULL)
                return;
            n = SSL_read(c->ssl, junk, sizeof junk);
            e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
            ERR_clear_error();
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                conn_close(c);
            return;
        }
        case HANDSHAKE:
            n = SSL_do_handshake(c->ssl);
            if (n == 1) {
                if (l->stopping) {
                    conn_close(c);
                    return;
                }
                prepare(l, c);
                c->st = SEND;
                continue;
            }
            e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ)
                want(l, c, EPOLLIN);
            else if (e == SSL_ERROR_WANT_WRITE)
                want(l, c, EPOLLOUT);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            {
                const char *why = ERR_reason_error_string(ERR_peek_last_error());
                failed(l, c, why != NULL ? why : "TLS handshake failed");
            }
            ERR_clear_error();
            continue;
        case SEND:
            n = SSL_write(c->ssl, c->req, (int)c->rlen_req);
            if (n > 0) {
                c->st = RECV;
                c->rlen = 0;
                continue;
            }
            e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                want(l, c, e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
                return;
            }
            ERR_clear_error();
            failed(l, c, "the server closed the connection (write)");
            continue;
        case RECV: {
            bool close_after = false;
            long status;
            n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(RBUF - c->rlen));
            if (n <= 0) {
                e = SSL_get_error(c->ssl, n);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    want(l, c, e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
                    return;
                }
                ERR_clear_error();
                failed(l, c, "the server closed the connection");
                continue;
            }
            c->rlen += (size_t)n;
            if ((status = parsed(c, &close_after)) == 0) {
                if (c->rlen == RBUF)
                    failed(l, c, "an answer too large");
                continue;
            }
            finish(l, c, status < 0 ? 0 : status, "not an HTTP/1.1 answer");
            if (close_after) {
                conn_close(c);
                if (!l->stopping)
                    conn_open(l, c);
                continue;
            }
            if (l->stopping || !l->r->counting) {
                c->st = IDLE;
                want(l, c, EPOLLIN); /* a close by the server shows */
                return;
            }
            prepare(l, c);
            c->st = SEND;
            continue;
        }
        }
    }
}

static SSL_CTX *client_ctx(const char *host)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, AUTHCERT_TLS_OPENSSL_CIPHERS) != 1)
        die("TLS context");
    if (g_cacert != NULL) {
        X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
        if (SSL_CTX_load_verify_locations(ctx, g_cacert, NULL) != 1 ||
            X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1)
            die("TLS: cannot trust %s for %s", g_cacert, host);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

void run_keepalive(struct run *r)
{
    struct loop l = { .r = r };
    struct conn *cs;
    struct epoll_event ev[64];
    size_t idle;

    if (sscanf(r->base, "https://%63[0-9.]:%u", l.host, &l.port) != 2 ||
        inet_pton(AF_INET, l.host, &l.dst.sin_addr) != 1)
        die("keepalive: %s: only https://IPV4:PORT", r->base);
    l.dst.sin_family = AF_INET;
    l.dst.sin_port = htons((uint16_t)l.port);
    l.ctx = client_ctx(l.host);
    if ((l.ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || (cs = calloc(r->conns, sizeof *cs)) == NULL)
        die("out of memory");
    for (size_t k = 0; k < r->conns; k++) {
        cs[k].k = k;
        cs[k].fd = -1;
        conn_open(&l, &cs[k]);
    }
    /* The first round: every connection up and one check-in each, uncounted. */
    for (;;) {
        idle = 0;
        for (size_t k = 0; k < r->conns; k++)
            idle += cs[k].st == IDLE && !cs[k].has_agent;
        if (idle == r->conns)
            break;
        int n = epoll_wait(l.ep, ev, 64, 1000);
        for (int i = 0; i < n; i++)
            drive(&l, ev[i].data.ptr);
    }
    r->counting = true;
    r->t0 = now_s();
    for (size_t k = 0; k < r->conns; k++) {
        if (cs[k].ssl == NULL) { /* closed while the others finished */
            conn_open(&l, &cs[k]);
            continue;
        }
        prepare(&l, &cs[k]);
        cs[k].st = SEND;
        drive(&l, &cs[k]);
    }
    while (l.inflight > 0) {
        double now = now_s();
        int n = epoll_wait(l.ep, ev, 64, 100);
        for (int i = 0; i < n; i++)
            drive(&l, ev[i].data.ptr);
        if (!l.stopping && now - r->t0 >= r->secs)
            l.stopping = true;
        for (size_t k = 0; l.stopping && k < r->conns; k++)
            if (cs[k].has_agent && now - cs[k].t0 > TIMEOUT_S)
                failed(&l, &cs[k], "no answer in 10 s");
    }
    r->t = now_s() - r->t0;
    for (size_t k = 0; k < r->conns; k++)
        conn_close(&cs[k]);
    free(cs);
    close(l.ep);
    SSL_CTX_free(l.ctx);
}
