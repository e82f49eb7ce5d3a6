/*
 * Private to authcert-agent: the running agent's state, shared by its
 * parts (options.c, identity.c, checkin.c, listener.c, handler.c, log.c).
 */
#ifndef AUTHCERT_AGENT_DAEMON_H
#define AUTHCERT_AGENT_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/types.h>

#include "authcert/agent.h"
#include "authcert/authcert.h"
#include "authcert/tls.h"

#define AGENT_NAME "authcert-agent"
#define AGENT_OUTPUT_MAX ((size_t)64 * 1024)    /* handler stdout kept */
#define AGENT_TOKEN_MAX ((size_t)64 * 1024)     /* POST /v1/command body */
#define AGENT_CHECKIN_MAX ((size_t)16 * 1024)   /* the server's cap on our check-in */
#define AGENT_RESULT_MAX ((size_t)64 * 1024)    /* the server's cap on POST /v1/result */
#define AGENT_ANSWER_MAX ((size_t)8 * 1024 * 1024) /* a check-in answer we read */
#define AGENT_PENDING_MAX 256                   /* results kept for the next check-in */

/* ---- options.c ---- */
typedef struct agent_config {
    char *server;         /* base URL, NULL: no check-ins (push only) */
    char *state_dir;
    char *listen;         /* ADDR:PORT, NULL: no listener */
    char *cert;           /* agent certificate file */
    char *handler;        /* program for other commands, NULL: none */
    char *id_file;
    char *config;
    int interval;         /* seconds between check-ins */
    int leeway;           /* seconds of clock skew allowed */
    int handler_timeout;  /* seconds before SIGKILL */
    int log_level;
    bool once;
    bool rotate_key;      /* --rotate-key: replace the agent's key, then exit */
    char *ca_file;        /* trust for the server's certificate, NULL: the system's */
    char **pins;          /* --server-pin, NULL-terminated; none: npins 0 */
    size_t npins;
    authcert_key_type key_type; /* of a key made at first start */
    bool insecure_http;   /* --server http:// allowed */
    char *enroll_token_file; /* JSON: {"server", "pins", "token"} (authcert --enroll-token new) */
    char *enroll_token;   /* its token, "ID.SECRET" (wiped at exit) */
    int max_token_lifetime; /* seconds: a command token with exp - iat beyond is refused */
} agent_config;

/* 0, or 2 after printing a usage error; exits 0 for --help/--version. */
int agent_config_parse(agent_config *cfg, int argc, char **argv);
void agent_config_free(agent_config *cfg);

/* ---- log.c ---- */
enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
void agent_log_set_level(int level);
int agent_log_level_parse(const char *name); /* -1 when unknown */
void agent_log(int level, const char *fmt, ...) AUTHCERT_PRINTF(2, 3);

/*
 * What enrollment gave the agent (STATE_DIR/agent.mac, 0600): its MAC key
 * for a key epoch, the server's id, and the counter of its last request.
 */
typedef struct agent_creds {
    bool have;
    uint64_t epoch;
    unsigned char mac_key[32];
    char server_id[257];
    uint64_t counter;
} agent_creds;

/* ---- the running agent ---- */
typedef struct agent {
    agent_config cfg;
    char id[129];
    char hostname[256];
    authcert_agent_trust *trust;
    EVP_PKEY *key;                 /* the agent's own key (STATE_DIR/agent.key) */
    char key_pin[AUTHCERT_PIN_LEN + 1]; /* its pin, reported at check-in */
    char *listen_cert_pem;         /* a self-signed certificate of key, for the listener */
    uint16_t port;                 /* bound listener port, 0: none */
    struct MHD_Daemon *mhd;
    pthread_mutex_t pending_lock;
    json_t *pending;               /* results for the next check-in (array) */
    pthread_mutex_t creds_lock;    /* the listener signs push answers with them too */
    agent_creds creds;
} agent;

/* ---- creds.c ---- */
/* Read STATE_DIR/agent.mac into a->creds (absent: none). Errors: corrupt, permissions. */
authcert_status agent_creds_load(agent *a);
/* Write a->creds (0600, atomically). */
authcert_status agent_creds_save(agent *a);
/* Forget them (the server said: enroll again): the file goes too. */
void agent_creds_clear(agent *a);
/*
 * The next request counter (microseconds of our clock, above the last one
 * used), saved before it is used, so a restart never reuses one. Under
 * creds_lock. 0 on failure.
 */
uint64_t agent_creds_next_counter(agent *a);
/* The Authorization header value for a request (method, path, body) into out. */
authcert_status agent_creds_authorize(agent *a, const char *method, const char *path,
                                      const char *body, size_t len, uint64_t counter_or_0,
                                      char *out, size_t size);

/* ---- identity.c ---- */
/* Make the state directory, read or create the agent id. */
authcert_status agent_identity_load(agent *a);
/*
 * The agent's key: STATE_DIR/agent.key, made at first start (--key-type,
 * P-256 by default), 0600, never sent anywhere; and a self-signed
 * certificate of it for the listener's TLS.
 */
authcert_status agent_key_load(agent *a);
/*
 * The state folder, the certificate file and the handler (and its folder)
 * must be ours or root's and not writable by others. Errors: AUTHCERT_E_PERM
 * (one line naming the file and the fix), AUTHCERT_E_NOTFOUND.
 */
authcert_status agent_state_check(agent *a);
/* Write STATE_DIR/listen-port with the bound port. */
authcert_status agent_write_listen_port(agent *a);

/* ---- handler.c ---- */
/*
 * Carry out a verified command: ping, update-key, or the handler program.
 * Returns a new object {"status": "ok"|"failed", "exit": N, "output": "..."}.
 */
json_t *agent_run_command(agent *a, const json_t *claims, const char *origin);

/* ---- done.c: deliveries already carried out ---- */
/* The result of the delivery these claims name, if it already ran (caller owns), else NULL. */
json_t *agent_done_lookup(const json_t *claims);
/* Remember that the delivery these claims name gave result. */
void agent_done_record(const json_t *claims, const json_t *result);
void agent_done_clear(void);
/* Keep the ring in path too (STATE_DIR/done): load it, then append each record. */
authcert_status agent_done_persist(const char *path);

/* A JSON string of up to max bytes of data, invalid UTF-8 replaced by '?'. */
json_t *agent_json_text(const char *data, size_t len, size_t max);

/* ---- listener.c ---- */
authcert_status agent_listener_start(agent *a);
void agent_listener_stop(agent *a);

/* ---- checkin.c ---- */
typedef struct agent_checkin agent_checkin;
authcert_status agent_checkin_new(agent *a, agent_checkin **out);
void agent_checkin_free(agent_checkin *c);
/*
 * One check-in: send pending results, verify and run the commands of the
 * answer. *interval receives the server's interval (0 when it gave none).
 * Errors: AUTHCERT_E_IO (network, HTTP status), AUTHCERT_E_CORRUPT
 * (answer), AUTHCERT_E_POLICY (the server says our certificate is
 * mismatched).
 */
authcert_status agent_checkin_run(agent_checkin *c, int *interval);
/* POST every pending result to /v2/result (for --once). */
authcert_status agent_checkin_flush_results(agent_checkin *c);
/*
 * POST body to the server's path; authorized: with the Authorization of
 * a->creds. *http gets the status (any status is AUTHCERT_OK here: the
 * caller decides); the answer is agent_checkin_answer's until the next post.
 * Errors: AUTHCERT_E_IO (network), AUTHCERT_E_CRYPTO (the server's TLS
 * certificate refused), AUTHCERT_E_CORRUPT (answer too large).
 */
authcert_status agent_post(agent_checkin *c, const char *path, const char *body, bool authorized,
                           long *http);
/* The same with a counter chosen by the caller (0: the next one). */
authcert_status agent_post_counter(agent_checkin *c, const char *path, const char *body,
                                   bool authorized, uint64_t counter, long *http);
const char *agent_checkin_answer(const agent_checkin *c, size_t *len);

/* ---- enroll.c ---- */
/*
 * Enroll this agent (its id and key) with the server: a nonce, a signed
 * proof, the token from --enroll-token-file when there is one. OK with
 * a->creds saved; AUTHCERT_E_BUSY while the server waits for an operator's
 * approval; AUTHCERT_E_AUTH / AUTHCERT_E_POLICY refused (the detail says
 * why: token, clone, policy); AUTHCERT_E_IO.
 */
authcert_status agent_enroll(agent *a, agent_checkin *c);
/*
 * --rotate-key: a new key (--key-type) replaces the enrolled one, asked in a
 * request signed with the current credential and proved by both keys. The
 * new key is written to agent.key.new first and renamed over agent.key
 * once the server bound it.
 */
authcert_status agent_rotate_key(agent *a, agent_checkin *c);

#endif
