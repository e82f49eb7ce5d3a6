/*
 * authcertd's private header: the configuration, the one context every part
 * shares, and the small interfaces between the parts (one file each), from
 * the top down:
 *
 *   main.c     options, config file, signals, start and orderly stop
 *   http.c     libmicrohttpd: routing, body caps, error answers
 *   enroll.c   POST /v2/enroll/nonce and /v2/enroll: binding an agent's key
 *   checkin.c  POST /v2/checkin and /v2/result (and v1's refusal)
 *   auth.c     authenticating a v2 request: the MAC, the epoch, the counter
 *   push.c     the push thread (libcurl multi) and the proactive roll-over
 *   metrics.c  counters and GET /metrics
 *   tls.c      the TLS certificate served, re-read on a change; tickets
 *   limits.c   rates per source, the first request's deadline
 *   writer.c   the batching writer of check-ins to the registry
 *   nodes.c    one certificate across the nodes of one registry
 *   refresh.c  re-reading the store; tells d->store_changed of a change
 *   handles.c  the per-thread registry handles
 *   log.c      one line per event on stderr
 *
 * A file calls only files below it in this list, never one above: a part
 * that must wake a higher one reaches it through daemon_ctx (the refresh
 * tells the push thread through d->store_changed). `make lint` checks that
 * the calls between the objects form no loop (tests/lint/no-call-loops.sh).
 */
#ifndef AUTHCERTD_DAEMON_H
#define AUTHCERTD_DAEMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authcert/registry.h"
#include "authcert/server.h"
#include "authcert/store.h"

#include "authcert/auth.h"
#include "authcert/protocol.h"

#define CHECKIN_BODY_MAX AUTHCERT_CHECKIN_BODY_MAX
#define RESULT_BODY_MAX AUTHCERT_RESULT_BODY_MAX

typedef struct daemon_config {
    char *store_dir;
    char *registry;
    char *listen;         /* ADDR:PORT, [V6]:PORT */
    char *port_file;      /* the bound port is written here */
    char *server_id;  /* what agents bind: the same on every node (default: derived) */
    char *node_id;    /* this node in the registry's node list (default: host name) */
    long token_ttl;       /* seconds */
    long interval;        /* check-in interval told to agents */
    long push_concurrency;
    long push_rate;       /* pushes per second (token bucket) */
    long push_timeout;    /* seconds for one push */
    long threads;         /* HTTP thread pool */
    long max_connections;
    long connection_timeout; /* seconds idle before MHD closes */
    long batch_ms;        /* writer flush period */
    char *tls_cert;       /* PEM chain, leaf first (default STORE/tls/server.crt) */
    char *tls_key;        /* PEM key, 0600 (default STORE/tls/server.key) */
    long insecure_http;   /* 1: plain HTTP (--insecure-http), warned at every start */
    char *enroll;         /* token (default), approve, open */
    long enroll_pending_max; /* pending requests (approve) */
    long enroll_rate;     /* enrollment attempts a minute per source */
    long auth_fail_rate;  /* failed authentications a minute per source */
    long per_ip_connections;
    long header_deadline; /* seconds for a connection's first request */
    char *trusted_proxy;  /* the address of a proxy whose X-Forwarded-For names the source */
} daemon_config;

enum enroll_mode { ENROLL_TOKEN, ENROLL_APPROVE, ENROLL_OPEN };

struct writer;
struct pusher;
struct MHD_Connection;

/*
 * What a store refresh tells (refresh.c): replaced is true when the current
 * certificate changed, false when only the store did.
 */
typedef void (*daemon_store_changed_fn)(void *cookie, bool replaced);

typedef struct daemon_ctx {
    daemon_config cfg;
    authcert_store *store;
    authcert_server *srv;
    struct writer *writer;
    struct pusher *pusher;
    /*
     * Who is told of a change of the store: the push thread (pusher_start
     * sets it before any thread that refreshes starts, pusher_stop clears
     * it once they have stopped); NULL: nobody. So the refresh, which every
     * part calls, reaches the push thread without calling up into push.c.
     */
    daemon_store_changed_fn store_changed;
    void *store_changed_cookie;
    atomic_bool stopping;
    enum enroll_mode enroll_mode;
    /* The server secret (the store's): agents' MAC keys and nonces derive from it. */
    unsigned char secret[32];
    authcert_mac_kdf *mac_kdf; /* agents' MAC keys, from that secret */
} daemon_ctx;

/* ---- log.c ---- */
void dlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- handles.c ---- */
/*
 * The registry handles: one per thread (registry.h), opened on the thread's
 * first dreg and closed together by dreg_close_all once every thread has
 * stopped; SQLite's locks arbitrate between them. dreg_open opens (creates,
 * migrates) the first one at start so that a bad registry stops the start.
 * dreg_done marks the end of a use (nothing to release today: the handle
 * stays with its thread).
 */
authcert_status dreg_open(daemon_ctx *d);
authcert_status dreg(daemon_ctx *d, authcert_registry **reg);
void dreg_done(void);
void dreg_close_all(void);

/* ---- refresh.c ---- */
/*
 * Refresh the store (at most once a second), log a change and tell
 * d->store_changed.
 */
void daemon_refresh(daemon_ctx *d);

/* ---- tls.c ---- */
struct MHD_OptionItem;
/* Load and check cfg.tls_cert and cfg.tls_key; make the ticket key. */
authcert_status tls_open(daemon_ctx *d);
/* Re-read the files when they changed (force: SIGHUP); a bad set is logged, the old kept. */
void tls_maybe_reload(daemon_ctx *d, bool force);
void tls_close(void);
/* libmicrohttpd options for TLS into o (room for 2); returns how many. */
size_t tls_mhd_options(struct MHD_OptionItem *o);
/* A connection started (before its handshake) or ended. */
void tls_connection_event(struct MHD_Connection *c, bool started);
/* Handshakes so far: full, and resumed from a session ticket. */
void tls_sessions(unsigned long long *full, unsigned long long *resumed);

/* ---- writer.c ---- */
authcert_status writer_start(daemon_ctx *d, struct writer **out);
/* Queue a check-in (copied); blocks only when the queue is full. */
void writer_submit(struct writer *w, const authcert_agent_report *r);
/* Flush what is queued and stop the thread. */
void writer_stop(struct writer *w);
uint64_t writer_backlog(struct writer *w);

/* ---- metrics.c (counters) ---- */
enum refusal {
    REFUSE_BAD_JSON, REFUSE_BAD_FIELD, REFUSE_TOO_LARGE, REFUSE_CONTENT_TYPE,
    REFUSE_METHOD, REFUSE_NOT_FOUND, REFUSE_STORE, REFUSE_REGISTRY,
    REFUSE_UNAUTHENTICATED, /* no or a bad MAC, not enrolled, a stale epoch, replayed */
    REFUSE_RATE,            /* 429: a source over its rate */
    REFUSE_ENROLL,          /* an enrollment refused (token, policy, clone, proof) */
    REFUSE_PROTOCOL_V1,     /* a protocol v1 agent */
    REFUSE_MAX
};
enum push_result {
    PUSH_OK, PUSH_FAILED, PUSH_RETRY, PUSH_MISMATCHED, PUSH_NO_LISTENER, PUSH_NOT_NEEDED,
    PUSH_NO_KEY,     /* no key recorded for the agent: nothing to pin, check-in only */
    PUSH_WRONG_KEY,  /* its listener answered with another key: check-in only */
    PUSH_MAX
};
/* ---- checkin.c ---- */
typedef struct http_answer {
    unsigned status;
    char *body;            /* malloc'd */
    const char *content_type;
    unsigned retry_after;  /* seconds, for a 429 or 503 (0: no Retry-After) */
} http_answer;
/* What http.c hands a request handler. */
typedef struct http_request {
    const char *body;
    size_t len;
    const char *peer;      /* the source address (X-Forwarded-For from a trusted proxy) */
    const char *authz;     /* the Authorization header, NULL when none */
    const char *path;
} http_request;
void checkin_handle(daemon_ctx *d, const http_request *rq, http_answer *out);
void result_handle(daemon_ctx *d, const http_request *rq, http_answer *out);
/* POST /v1/checkin, /v1/result: protocol v1 is refused, saying what to do. */
void v1_refused(http_answer *out);
/* Seconds a check-in answer's commands stay leased to the agent. */
unsigned checkin_lease(const daemon_ctx *d);
/* Log what routine check-ins sent since the last line (at most once a second
 * while they come; main.c calls it at stop for the rest). */
void checkin_summary(void);
/* {"error": "..."} with status; counts a refusal for why. */
void answer_error(http_answer *out, unsigned status, enum refusal why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- enroll.c ---- */
void enroll_nonce_handle(daemon_ctx *d, const http_request *rq, http_answer *out);
void enroll_handle(daemon_ctx *d, const http_request *rq, http_answer *out);
void rotate_handle(daemon_ctx *d, const http_request *rq, http_answer *out);

/* ---- auth.c ---- */
/* An authenticated v2 request: who, and the counter it carried. */
typedef struct authed {
    char agent_id[129];
    uint64_t epoch;
    uint64_t counter;
} authed;
/*
 * Authenticate rq (method POST): false after answering 401 (or 429 when its
 * source failed too often), counted and logged; true with *a filled. The
 * registry's counter is read, not written (the writer raises it with the
 * report); strict (compare and set in the registry) when strict is true.
 */
bool auth_request(daemon_ctx *d, const http_request *rq, bool strict, authed *a,
                  http_answer *out);
/* The MAC key of an agent at an epoch (caller wipes). */
/* A push answer's Authcert-Mac, for delivery DID of agent_id (auth.c). */
bool auth_push_answer(daemon_ctx *d, authcert_registry *reg, const char *agent_id, uint64_t did,
                      const char *mac_header, const char *body, size_t len);
/*
 * Proactive roll-over (rollover.c): one keyed update-key queued for every
 * agent with a listener on an expired certificate; *total how many.
 */
authcert_status rollover_queue(daemon_ctx *d, authcert_registry *reg, uint64_t *total);
authcert_status auth_agent_key(const daemon_ctx *d, const char *agent_id, uint64_t epoch,
                               unsigned char key[32]);
/* answer_error with a machine-readable "code" too (the agent acts on it). */
void answer_refusal(http_answer *out, unsigned status, enum refusal why, const char *code,
                    unsigned retry_after, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- limits.c ---- */
enum limit_kind { LIMIT_ENROLL, LIMIT_AUTH_FAIL, LIMIT_KINDS };
authcert_status limits_init(const daemon_config *c);
void limits_free(void);
/* Seconds until addr may try again (0: now). */
unsigned limits_retry_after(enum limit_kind k, const char *addr);
void limits_spend(enum limit_kind k, const char *addr);
/* libmicrohttpd's connection events; the returned context goes back to the others. */
void *limits_connection_started(struct MHD_Connection *c);
void limits_request_seen(void *ctx);
void limits_connection_ended(void *ctx);
/* Cut the connections whose first request has not come within deadline seconds. */
void limits_sweep(unsigned deadline);
unsigned long long limits_cut(void);

/* ---- http.c ---- */
struct MHD_Daemon;
/* Serve on the bound, listening socket fd (MHD owns it from now on). */
authcert_status http_start(daemon_ctx *d, int fd, struct MHD_Daemon **out);
/* Stop accepting, let requests in progress finish (up to a second), stop. */
void http_stop(struct MHD_Daemon *mhd);

/* ---- push.c ---- */
/*
 * Start the push thread; it registers as d->store_changed: after a
 * replacement (and at start) it queues update-key, once per agent, for
 * every agent on an expired certificate that has a listener (a few
 * statements, no agent list in memory) and then pushes them at --push-rate
 * like any delivery.
 */
authcert_status pusher_start(daemon_ctx *d, struct pusher **out);
void pusher_stop(struct pusher *p);

/* ---- metrics.c ---- */
void metric_checkin(void);
void metric_signatures(unsigned n);
void metric_push(enum push_result r);
void metric_refusal(enum refusal r);
void metric_rollover(uint64_t queued);
enum enroll_result { ENROLL_OK, ENROLL_PENDING, ENROLL_CLONE, ENROLL_REFUSED, ENROLL_MAX };
void metric_enroll(enum enroll_result r);
/* The Prometheus text; caller frees. */
char *metrics_render(daemon_ctx *d);

/* ---- nodes.c: one certificate across the nodes of one registry ---- */
#define NODES_TICK_SECONDS 5
/* Record ours, compare with the others' (main thread, every tick). */
void nodes_tick(daemon_ctx *d);
unsigned nodes_count(void);           /* nodes seen at the last tick */
unsigned nodes_differing_count(void); /* of those, serving another certificate */

#endif
