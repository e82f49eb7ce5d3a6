/*
 * loadgen checkin's parts: the agents' cycle and what is counted
 * (checkin.c), and two ways of sending: kept-alive connections of our own
 * over OpenSSL (keepalive.c), a new libcurl connection per check-in
 * (reconnect.c).
 */
#ifndef LOADGEN_CHECKIN_H
#define LOADGEN_CHECKIN_H

#include "loadgen.h"

#define CHECKIN_BODY_MAX 512

enum checkin_mode { KEEPALIVE, RESUME, FULL };

struct run {
    const char *base, *prefix, *thumb; /* base: "https://HOST:PORT" */
    size_t count, conns;
    double secs;
    enum checkin_mode mode;
    uint8_t (*keys)[AUTHCERT_MAC_KEY_LEN];
    unsigned char *have; /* keys[i] derived */
    unsigned char *busy; /* agent i's check-in is in flight */
    size_t next;         /* the next agent, modulo count */
    bool counting;       /* the first round (uncounted) is over */
    size_t resumed, full, non2xx, errors;
    uint32_t *lat; /* microseconds, one per answered check-in */
    size_t nlat, caplat;
    double t0, t; /* when the counted rounds began, and how long they took */
};

/*
 * The next agent's check-in: its index (busy until checkin_done), its body
 * (*len bytes) and the value of its Authorization header.
 */
size_t checkin_next(struct run *r, char body[CHECKIN_BODY_MAX], size_t *len,
                    char authz[AUTHZ_MAX]);
/*
 * The check-in of agent i, started at t0, ended: answered with status
 * (latency kept when 200 and counting), or failed (status 0).
 */
void checkin_done(struct run *r, size_t i, double t0, long status, const char *why);

/* The engines: run the first round, then r->secs of counted ones; set r->t0 and r->t. */
void run_keepalive(struct run *r);
void run_reconnect(struct run *r);

#endif
