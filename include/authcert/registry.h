/*
 * authcert/registry.h — the agent registry: who checked in, with which
 * certificate, and the durable queue of commands to deliver to them.
 *
 * One interface, several backends chosen by the URI given to open: a file
 * path or "sqlite:PATH" is SQLite (embedded, WAL); "postgresql://..." is
 * reserved for the shared PostgreSQL backend. Schema and behaviour are the
 * same on all of them; docs/registry.md describes both.
 *
 * Threads: a handle is used by one thread at a time. The daemon's worker
 * threads each open their own handle (open is cheap: the schema check is one
 * PRAGMA once the database exists); SQLite's own locking and the busy
 * timeout arbitrate between handles and between processes.
 *
 * Strings handed to callbacks (in authcert_agent and authcert_delivery) are
 * borrowed from the backend: valid only during the callback, copy what you
 * keep. A callback returning anything but AUTHCERT_OK stops the iteration and
 * that status is returned by the iterating function.
 *
 * Errors common to every function: AUTHCERT_E_USAGE (bad arguments, an
 * agent id or hostname out of bounds), AUTHCERT_E_BUSY (another writer held
 * the database past the busy timeout), AUTHCERT_E_IO (disk full, I/O error),
 * AUTHCERT_E_CORRUPT (the database is damaged), AUTHCERT_E_NOMEM.
 */
#ifndef AUTHCERT_REGISTRY_H
#define AUTHCERT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "authcert/cert.h"
#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct authcert_registry authcert_registry;

/* Bounds on what an agent may report (it is untrusted input). */
#define AUTHCERT_AGENT_ID_MAX  128 /* bytes, visible ASCII 0x21-0x7e */
#define AUTHCERT_HOSTNAME_MAX  255 /* bytes of UTF-8, no control characters */
#define AUTHCERT_ADDRESS_MAX   64  /* bytes, visible ASCII (IPv6 with zone fits) */
#define AUTHCERT_AGENT_VERSION_MAX 64 /* bytes, visible ASCII */
#define AUTHCERT_COMMAND_MAX   64  /* bytes, visible ASCII */
#define AUTHCERT_JSON_MAX      65536 /* args and results, bytes of JSON */
/*
 * A key pin: "sha256//" and the standard base64 (with its one '=') of the
 * SHA-256 of a DER SubjectPublicKeyInfo (authcert/tls.h: AUTHCERT_PIN_LEN).
 */
#define AUTHCERT_KEY_PIN_LEN   52

/* The schema version this library creates and understands. */
#define AUTHCERT_REGISTRY_SCHEMA_VERSION 4

/* What an agent says at check-in. */
typedef struct authcert_agent_report {
    const char *agent_id;   /* the agent's stable id (e.g. a UUID) */
    const char *hostname;
    const char *address;    /* where the server can reach its listener */
    uint16_t    port;       /* its listener's port */
    const char *thumbprint; /* 64 lowercase hex, or "" / NULL: holds none */
    const char *version;    /* agent software version; NULL = "" */
    /*
     * The pin of the key its listener serves TLS with (AUTHCERT_KEY_PIN_LEN
     * characters), or NULL / "": it reported none. The registry keeps the
     * first pin an agent id reports (authcert_agent.key_pin).
     */
    const char *key_pin;
    /*
     * The counter of the authenticated request that carried this report
     * (authcert/auth.h), 0 for none: the registry's counter for the agent
     * (authcert/identity.h) becomes the highest it has seen, never lower.
     * At most INT64_MAX.
     */
    uint64_t mac_counter;
    /* It walks a hand-off chain (authcert/handoff.h): its check-in says
     * "handoff": true. An agent that does not gets a signed update-key. */
    bool handoff;
} authcert_agent_report;

/* An agent as the registry knows it (borrowed strings, see above). */
typedef struct authcert_agent {
    const char *agent_id;
    const char *hostname;
    const char *address;
    uint16_t    port;
    const char *thumbprint; /* "" when the agent holds none */
    const char *version;
    /*
     * The first key pin this agent id reported, "" until one did; a later
     * report with another pin (or none) does not change it. Pushes to the
     * agent's listener are pinned to it.
     */
    const char *key_pin;
    time_t      first_seen;
    time_t      last_seen;
    /*
     * Its identity (authcert/identity.h): the epoch of the key bound to its
     * id, 0 when none is (never enrolled, or forgotten); the last other key
     * refused for its id (a clone), "" for none.
     */
    uint64_t    key_epoch;
    const char *clone_pin;
} authcert_agent;

/* Which agents an iteration visits; every set field must match. */
typedef struct authcert_agent_filter {
    const char *thumbprint;     /* NULL: any; else reported == this */
    const char *not_thumbprint; /* NULL: any; else reported != this */
    time_t      seen_since;     /* 0: any; else last_seen >= this */
    time_t      seen_before;    /* 0: any; else last_seen <  this */
    bool        listening;      /* false: any; true: port != 0 (it can be pushed to) */
} authcert_agent_filter;

typedef enum authcert_delivery_state {
    AUTHCERT_DELIVERY_QUEUED = 0,   /* not yet delivered (maybe leased) */
    AUTHCERT_DELIVERY_DELIVERED = 1,
    AUTHCERT_DELIVERY_FAILED = 2,   /* given up: final */
} authcert_delivery_state;

const char *authcert_delivery_state_name(authcert_delivery_state s);

/* One command for one agent (borrowed strings, see above). */
typedef struct authcert_delivery {
    int64_t     id;
    int64_t     command_id;
    const char *agent_id;
    const char *address;     /* the agent's listener, for a push */
    uint16_t    port;
    const char *thumbprint;  /* what the agent last reported ("" for none) */
    const char *key_pin;     /* the agent's recorded key pin (authcert_agent.key_pin; "" none) */
    bool        broadcast;   /* queued by enqueue_all: its token's "did" is command_id */
    const char *command;
    const char *args_json;   /* NULL: no arguments */
    time_t      created_at;  /* when the command was enqueued */
    authcert_delivery_state state;
    unsigned    attempts;    /* claims so far */
    time_t      next_attempt_at;
    time_t      lease_until; /* 0: not leased */
    time_t      updated_at;  /* last state change */
    const char *result_json; /* NULL until a result is recorded */
} authcert_delivery;

typedef authcert_status (*authcert_agent_cb)(void *ctx, const authcert_agent *a);
typedef authcert_status (*authcert_delivery_cb)(void *ctx, const authcert_delivery *d);
typedef authcert_status (*authcert_thumbprint_count_cb)(void *ctx, const char *thumbprint,
                                                        uint64_t agents);

/*
 * Open the registry named by uri: a path or "sqlite:PATH" (an embedded
 * SQLite file, created mode 0600 if missing), or a libpq connection URI
 * "postgresql://..." / "postgres://..." (a registry several authcertd nodes
 * share). The schema is created or migrated to
 * AUTHCERT_REGISTRY_SCHEMA_VERSION on either.
 * Caller owns *out; close it with authcert_registry_close.
 * Errors: AUTHCERT_E_CORRUPT (not a database, or not a registry),
 * AUTHCERT_E_POLICY (made by a newer authcert: schema version unknown here;
 * nothing is changed), AUTHCERT_E_IO, AUTHCERT_E_PERM, AUTHCERT_E_BUSY.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_open(const char *uri, authcert_registry **out);

/* Close and free; NULL is fine. */
void authcert_registry_close(authcert_registry *reg);

/* The schema version of the open database. */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_schema_version(authcert_registry *reg, int *version);

/*
 * Check a report against the bounds above without touching the registry
 * (the daemon checks each request before it joins a batch).
 * Errors: AUTHCERT_E_USAGE with the offending field in the detail.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_validate_report(const authcert_agent_report *r);

/*
 * Record a check-in: insert the agent (first_seen = last_seen = now) or
 * update everything but first_seen, and key_pin once it is set (the first
 * non-empty pin reported is kept). Errors: AUTHCERT_E_USAGE (bad report).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_checkin(authcert_registry *reg, const authcert_agent_report *r,
                          time_t now);

/*
 * Record n check-ins in one transaction: all or nothing. Every report is
 * validated before anything is written (AUTHCERT_E_USAGE names the index).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_checkin_batch(authcert_registry *reg,
                                const authcert_agent_report *reports, size_t n,
                                time_t now);

/*
 * Look one agent up. Caller owns *out (one allocation): free it with
 * authcert_agent_free. Errors: AUTHCERT_E_NOTFOUND.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_get_agent(authcert_registry *reg, const char *agent_id,
                            authcert_agent **out);
void authcert_agent_free(authcert_agent *a);

/* The number of registered agents. */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_count_agents(authcert_registry *reg, uint64_t *n);

/*
 * Call cb for each agent matching filter (NULL: all), in registration
 * order, streaming: memory does not grow with the number of agents. The
 * iteration sees one consistent snapshot.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_foreach_agent(authcert_registry *reg,
                                const authcert_agent_filter *filter,
                                authcert_agent_cb cb, void *ctx);

/* Call cb once per distinct reported thumbprint ("" = none) with its count. */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_count_by_thumbprint(authcert_registry *reg,
                                      authcert_thumbprint_count_cb cb, void *ctx);

/*
 * Queue a command for one agent (registered: else AUTHCERT_E_NOTFOUND).
 * command: 1..AUTHCERT_COMMAND_MAX visible ASCII; args_json: a JSON object
 * or NULL. Durable: on return the command survives a crash or power loss.
 * *command_id (may be NULL) names it for authcert_registry_results.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_enqueue(authcert_registry *reg, const char *agent_id,
                          const char *command, const char *args_json,
                          time_t now, int64_t *command_id);

/*
 * One command for each of n agents, all or nothing (an unknown agent is
 * AUTHCERT_E_NOTFOUND naming it, and nothing is queued).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_enqueue_list(authcert_registry *reg,
                               const char *const *agent_ids, size_t n,
                               const char *command, const char *args_json,
                               time_t now, int64_t *command_id);

/*
 * One command for every agent registered now (one delivery row each);
 * *deliveries (may be NULL) is how many. Durable like enqueue. This is a
 * broadcast (commands.broadcast, authcert_delivery.broadcast): its token has
 * aud "*" and did = the command id, signed once per certificate in use.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_enqueue_all(authcert_registry *reg, const char *command,
                              const char *args_json, time_t now,
                              int64_t *command_id, uint64_t *deliveries);

/*
 * Deliveries still queued for one agent (leased or not), oldest first (a
 * view for operators: a check-in answer takes authcert_registry_claim_agent).
 * Unknown agent: no calls, AUTHCERT_OK.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_pending(authcert_registry *reg, const char *agent_id,
                          authcert_delivery_cb cb, void *ctx);

/*
 * Lease up to limit (1..10000) queued deliveries that are due
 * (next_attempt_at <= now) and not leased (lease_until <= now) until
 * now + lease_seconds, count the attempt, and then call cb for each, after
 * the claim is committed (so cb may take its time: the database is not held).
 * Another claim before the lease ends does not get them; after it ends,
 * with no result recorded, they can be claimed again. *claimed may be NULL.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_claim(authcert_registry *reg, unsigned limit,
                        unsigned lease_seconds, time_t now,
                        authcert_delivery_cb cb, void *ctx, size_t *claimed);

/*
 * Lease, in one step, up to limit (1..10000) of ONE agent's queued deliveries
 * that are not leased now (lease_until <= now), whatever their next attempt
 * time, until now + lease_seconds; count the attempt and call cb for each,
 * oldest first, after the claim is committed. What a check-in answer offers:
 * a delivery leased here is not claimed by authcert_registry_claim (a push)
 * before the lease ends, and one leased by a push is not claimed here, so no
 * command goes out both ways. An agent with nothing claimable costs one
 * indexed read and no write. Unknown agent: no calls, AUTHCERT_OK.
 * (PostgreSQL: UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
 * RETURNING, so two nodes never lease the same row.)
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_claim_agent(authcert_registry *reg, const char *agent_id, unsigned limit,
                              unsigned lease_seconds, time_t now,
                              authcert_delivery_cb cb, void *ctx, size_t *claimed);

/*
 * Record a result an agent reported for the token it got, matched on what
 * the token said: did is the delivery id of a per-agent command, or the
 * command id of a broadcast (docs/protocol.md). The delivery must be the
 * agent's own: (agent_id, delivery id) of a command that is not a broadcast,
 * or (agent_id, command id) of a broadcast; command and delivery ids are
 * drawn from one sequence, so did names at most one of them. *delivery_id
 * (may be NULL) is the delivery recorded. State and result_json as for
 * authcert_registry_record_result. Errors: AUTHCERT_E_NOTFOUND (no such
 * delivery of this agent: another agent's, or made up), AUTHCERT_E_POLICY
 * (it already has a final outcome; the first one is kept).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_record_agent_result(authcert_registry *reg, const char *agent_id,
                                      int64_t did, authcert_delivery_state state,
                                      const char *result_json, time_t now,
                                      int64_t *delivery_id);

/*
 * One command for every agent that matches filter (NULL: all) now, in one
 * statement (no agent list in memory, whatever the fleet's size). With key
 * (1..AUTHCERT_COMMAND_MAX visible ASCII, or NULL for none), an agent that
 * already has a QUEUED delivery made with the same key is skipped, so
 * running it again queues nothing twice (the daemon's proactive roll-over
 * uses the key "update-key"). *deliveries (may be NULL) is how many were
 * queued; the command row is written even when that is 0. Not a broadcast:
 * each delivery's token is signed for its agent. Durable like enqueue.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_enqueue_matching(authcert_registry *reg, const authcert_agent_filter *filter,
                                   const char *command, const char *args_json,
                                   const char *key, time_t now, int64_t *command_id,
                                   uint64_t *deliveries);

/*
 * Set an agent's reported thumbprint to `to` if it still reports `from`
 * (a push of update-key that the agent confirmed; its next check-in says the
 * same). *changed (may be NULL) says whether it did. Both are 64 lowercase
 * hex. Unknown agent: AUTHCERT_OK, not changed.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_update_thumbprint(authcert_registry *reg, const char *agent_id,
                                    const char *from, const char *to, bool *changed);

/*
 * Record the outcome of a delivery: DELIVERED or FAILED are final; QUEUED
 * means "try again later": the lease is dropped and the next attempt is due
 * after a backoff that grows with the attempts (30 s doubling, at most 1 h).
 * result_json (a JSON value, or NULL) is kept. Durable like enqueue.
 * Errors: AUTHCERT_E_NOTFOUND (no such delivery), AUTHCERT_E_POLICY (it
 * already has a final outcome; the first one is kept).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_record_result(authcert_registry *reg, int64_t delivery_id,
                                authcert_delivery_state state,
                                const char *result_json, time_t now);

/*
 * One outcome for authcert_registry_record_results: delivery_id, state and
 * result_json as for authcert_registry_record_result; status is set by the
 * call: AUTHCERT_OK, or this one delivery's AUTHCERT_E_NOTFOUND /
 * AUTHCERT_E_POLICY (the others are still recorded).
 *
 * checkin_only, with state QUEUED: back to the queue for the agent's next
 * check-in only (authcert_registry_claim_agent takes it), never for a push
 * (authcert_registry_claim does not), as for an agent without a listener;
 * authcertd's answer to a listener that shows another key than the agent's
 * recorded pin. Ignored with DELIVERED and FAILED.
 */
typedef struct authcert_delivery_outcome {
    int64_t delivery_id;
    authcert_delivery_state state;
    const char *result_json;
    bool checkin_only;
    authcert_status status;
} authcert_delivery_outcome;

/*
 * Record n outcomes in ONE durable transaction (one fsync for all: what a
 * push thread finishing many transfers at once wants), with the rules of
 * authcert_registry_record_result for each. Per-delivery refusals
 * (NOTFOUND, POLICY) land in o[i].status and do not stop the rest; any
 * other error records none of them and is returned. n may be 0.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_record_results(authcert_registry *reg, authcert_delivery_outcome *o,
                                 size_t n, time_t now);

/*
 * Every delivery of one command, in agent registration order, streaming.
 * Errors: AUTHCERT_E_NOTFOUND (no such command).
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_results(authcert_registry *reg, int64_t command_id,
                          authcert_delivery_cb cb, void *ctx);

/*
 * Server nodes. Several authcertd sharing one registry must sign with one
 * authentication certificate; each node reports the thumbprint it serves
 * with, so that any node (and authcert --status) can see one that differs.
 * node_id: 1..AUTHCERT_AGENT_ID_MAX visible ASCII; thumbprint: 64 hex.
 */
typedef struct authcert_node {
    const char *node_id;
    const char *thumbprint; /* the node's current certificate */
    time_t      last_seen;
} authcert_node;

typedef authcert_status (*authcert_node_cb)(void *ctx, const authcert_node *n);

/* Record (insert or update) that node_id serves with thumbprint, now. */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_node_report(authcert_registry *reg, const char *node_id,
                              const char *thumbprint, time_t now);

/* Every node seen at or after since, by node id. */
AUTHCERT_MUST_CHECK authcert_status
authcert_registry_foreach_node(authcert_registry *reg, time_t since, authcert_node_cb cb,
                               void *ctx);

#ifdef __cplusplus
}
#endif
#endif
