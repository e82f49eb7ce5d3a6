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
    char *ca_file;        /* trust for the server's certificate, NULL: the system's */
    char **pins;          /* --server-pin, NULL-terminated; none: npins 0 */
    size_t npins;
    authcert_key_type key_type; /* of a key made at first start */
    bool insecure_http;   /* --server http:// allowed */
} agent_config;

/* 0, or 2 after printing a usage error; exits 0 for --help/--version. */
int agent_config_parse(agent_config *cfg, int argc, char **argv);
void agent_config_free(agent_config *cfg);

/* ---- log.c ---- */
enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
void agent_log_set_level(int level);
int agent_log_level_parse(const char *name); /* -1 when unknown */
void agent_log(int level, const char *fmt, ...) AUTHCERT_PRINTF(2, 3);

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
} agent;

/* ---- identity.c ---- */
/* Make the state directory, read or create the agent id. */
authcert_status agent_identity_load(agent *a);
/*
 * The agent's key: STATE_DIR/agent.key, made at first start (--key-type,
 * P-256 by default), 0600, never sent anywhere; and a self-signed
 * certificate of it for the listener's TLS.
 */
authcert_status agent_key_load(agent *a);
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
/* POST every pending result to /v1/result (for --once). */
authcert_status agent_checkin_flush_results(agent_checkin *c);

#endif
