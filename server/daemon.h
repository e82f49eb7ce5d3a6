/*
 * authcertd's private header: the configuration, the one context every part
 * shares, and the small interfaces between the parts (one file each):
 *
 *   main.c     options, config file, signals, start and orderly stop
 *   http.c     libmicrohttpd: routing, body caps, error answers
 *   checkin.c  POST /v1/checkin and /v1/result
 *   writer.c   the batching writer of check-ins to the registry
 *   offered.c  deliveries handed out in a check-in answer (not pushed too)
 *   push.c     the push thread (libcurl multi)
 *   metrics.c  counters and GET /metrics
 *   dlog.c     one line per event on stderr; per-thread registry handles
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

#define CHECKIN_BODY_MAX (16 * 1024)
#define RESULT_BODY_MAX (64 * 1024)

typedef struct daemon_config {
    char *store_dir;
    char *registry;
    char *listen;         /* ADDR:PORT, [V6]:PORT */
    char *port_file;      /* the bound port is written here */
    char *server_id;
    long token_ttl;       /* seconds */
    long interval;        /* check-in interval told to agents */
    long push_concurrency;
    long push_rate;       /* pushes per second (token bucket) */
    long push_timeout;    /* seconds for one push */
    long threads;         /* HTTP thread pool */
    long max_connections;
    long connection_timeout; /* seconds idle before MHD closes */
    long batch_ms;        /* writer flush period */
} daemon_config;

struct writer;
struct pusher;
struct offered;

typedef struct daemon_ctx {
    daemon_config cfg;
    authcert_store *store;
    authcert_server *srv;
    struct writer *writer;
    struct pusher *pusher;
    struct offered *offered;
    atomic_bool stopping;
} daemon_ctx;

/* ---- dlog.c ---- */
void dlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * The registry handle: opened once at start (dreg_open), then taken by one
 * thread at a time (dreg ... dreg_done; registry.h: one thread per handle).
 * Why one handle and not one per thread: lib/registry_sqlite.c's open does
 * open()+close() on the database file, and a close() drops every POSIX lock
 * the process holds on it, including the SHARED locks of this process's
 * other SQLite connections; another process (the admin tool) may then think
 * it is the last user and delete the WAL under us. Until that is fixed a
 * process must open the registry once.
 */
authcert_status dreg_open(daemon_ctx *d);
authcert_status dreg(daemon_ctx *d, authcert_registry **reg); /* takes the lock on success */
void dreg_done(void);
void dreg_close_all(void);
/* Refresh the store (at most once a second) and log a replacement. */
void daemon_refresh(daemon_ctx *d);

/* ---- writer.c ---- */
authcert_status writer_start(daemon_ctx *d, struct writer **out);
/* Queue a check-in (copied); blocks only when the queue is full. */
void writer_submit(struct writer *w, const authcert_agent_report *r);
/* Flush what is queued and stop the thread. */
void writer_stop(struct writer *w);
uint64_t writer_backlog(struct writer *w);

/* ---- offered.c ---- */
struct offered *offered_new(void);
void offered_free(struct offered *o);
/* Remember that delivery id went out in a check-in answer, until `until`. */
void offered_add(struct offered *o, int64_t id, time_t until);
bool offered_has(struct offered *o, int64_t id, time_t now);
void offered_forget(struct offered *o, int64_t id);

/* ---- metrics.c (counters) ---- */
enum refusal {
    REFUSE_BAD_JSON, REFUSE_BAD_FIELD, REFUSE_TOO_LARGE, REFUSE_CONTENT_TYPE,
    REFUSE_METHOD, REFUSE_NOT_FOUND, REFUSE_STORE, REFUSE_REGISTRY, REFUSE_MAX
};
enum push_result {
    PUSH_OK, PUSH_FAILED, PUSH_RETRY, PUSH_MISMATCHED, PUSH_NO_LISTENER, PUSH_MAX
};
/* ---- checkin.c ---- */
typedef struct http_answer {
    unsigned status;
    char *body;            /* malloc'd */
    const char *content_type;
} http_answer;
void checkin_handle(daemon_ctx *d, const char *body, size_t len, const char *peer,
                    http_answer *out);
void result_handle(daemon_ctx *d, const char *body, size_t len, http_answer *out);
/* {"error": "..."} with status; counts a refusal for why. */
void answer_error(http_answer *out, unsigned status, enum refusal why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- http.c ---- */
struct MHD_Daemon;
/* Serve on the bound, listening socket fd (MHD owns it from now on). */
authcert_status http_start(daemon_ctx *d, int fd, struct MHD_Daemon **out);
/* Stop accepting, let requests in progress finish (up to a second), stop. */
void http_stop(struct MHD_Daemon *mhd);

/* ---- push.c ---- */
authcert_status pusher_start(daemon_ctx *d, struct pusher **out);
void pusher_stop(struct pusher *p);
void pusher_wake(struct pusher *p);

/* ---- metrics.c ---- */
void metric_checkin(void);
void metric_signatures(unsigned n);
void metric_push(enum push_result r);
void metric_refusal(enum refusal r);
/* The Prometheus text; caller frees. */
char *metrics_render(daemon_ctx *d);

#endif
