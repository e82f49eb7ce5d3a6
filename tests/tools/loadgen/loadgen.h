/*
 * loadgen's parts (main.c says what each mode does): what they share.
 * A test tool: it prints and exits, which the library never does.
 */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "authcert/auth.h"
#include "authcert/authcert.h"
#include "authcert/tls.h"

#define REPLAY_CAP 8
#define BODY_MAX (64 * 1024)
#define AUTHZ_MAX 700 /* "Authorization: " and the header's value */

/* The options (main.c). */
extern const char *g_cacert;
extern char *g_cert_pem, *g_key_pem;
extern char g_pin[AUTHCERT_PIN_LEN + 1];
extern bool g_tickets;
extern long g_refuse;
/* --store: the server secret the agents' MAC keys derive from; --server-id, --epoch. */
extern bool g_have_secret;
extern uint8_t g_secret[AUTHCERT_SECRET_LEN];
extern const char *g_server_id;
extern uint64_t g_epoch;
extern size_t g_first; /* --first */

double now_s(void);
__attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...);
authcert_cert *load_cert(const char *path);
char *read_file(const char *path, size_t *len);
void client_tls(CURL *easy);
/* "https://HOST:PORT" and a path: the URL (a static buffer per call site is the caller's). */
void url_of(const char *base, const char *path, char *out, size_t size);

/*
 * Addresses on lo: agent i's listener (push) is 127.1.(i/200).(i%200+1);
 * the generator's k-th client connection comes from 127.2.(k/250).(k%250+1),
 * so that authcertd's limits per source address (connections, failed
 * authentications, enrollments) see a fleet, not one address (issue 13).
 */
void agent_addr(size_t i, char out[32]);
void conn_source(size_t k, char out[32]);
/* Bind easy's connections to that source ("host!ADDR": no interface lookup). */
void bind_source(CURL *easy, size_t k);

/*
 * Request MACs (protocol v2, docs/protocol.md "Requests of an enrolled
 * agent"). The counter is one clock for the whole process, in
 * microseconds, strictly increasing: so it is for every agent, and within
 * authcertd's window of its own clock.
 */
uint64_t next_counter(void);
/* The MAC key of agent id at g_epoch, from g_secret. */
void mac_key(const char *id, uint8_t key[AUTHCERT_MAC_KEY_LEN]);
/* "Authorization: AUTHCERT-V2 ..." for a POST of body to path, into out. */
void authorization(const char *id, const uint8_t key[AUTHCERT_MAC_KEY_LEN], const char *path,
                   const char *body, size_t len, char out[AUTHZ_MAX]);

/* ---- simulated agents with a certificate (rollover, push) ------------------ */

struct agent {
    authcert_agent_trust *trust;
    char id[48];
    uint8_t key[AUTHCERT_MAC_KEY_LEN];
    int step; /* rollover: 0 old check-in, 1 new check-in, 2 done */
};

struct agent *make_agents(authcert_cert *cert, const char *prefix, size_t count);

/* One keep-alive check-in transfer (rollover, push). */
struct xfer {
    CURL *easy;
    struct curl_slist *hdrs;
    size_t agent;
    char body[512];
    char *ans;
    size_t alen;
};

/*
 * Start agent a's check-in on x (its handle made on first use). source:
 * the address to come from (push: the agent's own); NULL for connection
 * k's (conn_source), kept alive.
 */
void checkin_start(CURLM *m, struct xfer *x, const char *url, const struct agent *a,
                   unsigned port, const char *source, size_t k);
/* The answer of a finished check-in, parsed; dies on anything but 200. */
json_t *checkin_answer(CURLM *m, CURLMsg *msg, struct xfer **xout);
void xfer_clear(struct xfer *x);

/* The modes. */
int rollover(int argc, char **argv);
int checkin(int argc, char **argv);
int enroll(int argc, char **argv);
int push(int argc, char **argv);
int bare(int argc, char **argv);

/* listen.c: one listener on PORT of every loopback address; bare or the push agents'. */
struct MHD_Daemon;
struct MHD_Daemon *listen_all(unsigned port, bool bare);
/* What the push agents answered (listen.c), read by push.c under g_lock. */
enum { OUTCOME_VERIFIED = 1, OUTCOME_REFUSED = 2 };
extern struct agent *g_agents;
extern size_t g_count;
extern unsigned char *g_outcome;
extern size_t g_verified, g_refused;
extern double g_last;
extern atomic_size_t g_toklen;
extern pthread_mutex_t g_lock;

#endif
