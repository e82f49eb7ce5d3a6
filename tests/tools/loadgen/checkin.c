/*
 * loadgen checkin: check-ins of many agents, each signed with its MAC key,
 * for a given time, CONNS at once, one thread (one core for the load, one
 * for the server on a 2-core machine), connection k from its own source
 * address; every latency kept for the quantiles.
 *
 * keepalive (keepalive.c): CONNS kept-alive connections, our own HTTP/1.1
 * over OpenSSL on an epoll loop, as lean as wrk was: libcurl's multi
 * interface cost ~140 us of CPU a check-in here, so that one generator
 * thread was slower than the bare server and both sides measured it.
 * resume, full (reconnect.c): each check-in on a new libcurl connection.
 *
 * MAC keys are derived when an agent first checks in (one HKDF; authcertd
 * derives one for every request) and kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "checkin.h"

/*
 * An agent has one check-in in flight at a time, as a real one does: when
 * the cycle comes back to an agent whose last check-in is still on its way
 * (a slow answer while the others went round), its next one could overtake
 * it, and the slow one would then be refused as a replay (its counter below
 * the last one seen). Such an agent is skipped this time round.
 */
size_t checkin_next(struct run *r, char body[CHECKIN_BODY_MAX], size_t *len,
                    char authz[AUTHZ_MAX])
{
    char id[64];
    size_t i;

    while (r->busy[r->next % r->count])
        r->next++;
    i = r->next++ % r->count;
    r->busy[i] = 1;
    snprintf(id, sizeof id, "%s-%zu", r->prefix, g_first + i);
    *len = (size_t)snprintf(body, CHECKIN_BODY_MAX,
                            "{\"agent_id\":\"%s\",\"hostname\":\"host-%zu\",\"port\":0,"
                            "\"version\":\"loadgen\",\"handoff\":true,\"thumbprint\":\"%s\"}", id, g_first + i,
                            r->thumb);
    if (!r->have[i]) {
        mac_key(id, r->keys[i]);
        r->have[i] = 1;
    }
    authorization(id, r->keys[i], "/v2/checkin", body, *len, authz);
    return i;
}

void checkin_done(struct run *r, size_t i, double t0, long status, const char *why)
{
    r->busy[i] = 0;
    if (!r->counting)
        return;
    if (status == 0) {
        if (r->errors++ == 0)
            fprintf(stderr, "loadgen: checkin: %s\n", why);
    } else if (status != 200) {
        if (r->non2xx++ == 0)
            fprintf(stderr, "loadgen: checkin: answered %ld\n", status);
    } else {
        if (r->nlat == r->caplat) {
            uint32_t *p = realloc(r->lat, r->caplat * 2 * sizeof *p);
            if (p == NULL)
                die("out of memory");
            r->lat = p;
            r->caplat *= 2;
        }
        r->lat[r->nlat++] = (uint32_t)((now_s() - t0) * 1e6);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* The latency at quantile permille/1000 (sorted lat), microseconds. */
static uint32_t quantile(const struct run *r, unsigned permille)
{
    size_t k = (r->nlat * permille + 999) / 1000;

    return r->nlat == 0 ? 0 : r->lat[k > 0 ? k - 1 : 0];
}

/* loadgen checkin URL PREFIX COUNT THUMBPRINT CONNS SECONDS MODE [START [QFILE]] */
int checkin(int argc, char **argv)
{
    struct run r = { .caplat = 65536 };
    const char *qfile = argc > 10 ? argv[10] : NULL;

    if (argc < 9 || argc > 11)
        return 2;
    r.base = argv[2];
    r.prefix = argv[3];
    r.count = strtoull(argv[4], NULL, 10);
    r.thumb = argv[5];
    r.conns = strtoull(argv[6], NULL, 10);
    r.secs = atof(argv[7]);
    if (strcmp(argv[8], "keepalive") == 0)
        r.mode = KEEPALIVE;
    else if (strcmp(argv[8], "resume") == 0)
        r.mode = RESUME;
    else if (strcmp(argv[8], "full") == 0)
        r.mode = FULL;
    else
        return 2;
    r.next = argc > 9 ? strtoull(argv[9], NULL, 10) : 0;
    if (r.count == 0 || r.conns == 0 || r.conns >= r.count || r.secs <= 0)
        return 2;
    if ((r.keys = calloc(r.count, sizeof *r.keys)) == NULL ||
        (r.have = calloc(r.count, 1)) == NULL || (r.busy = calloc(r.count, 1)) == NULL ||
        (r.lat = malloc(r.caplat * sizeof *r.lat)) == NULL)
        die("out of memory");
    if (r.mode == KEEPALIVE)
        run_keepalive(&r);
    else
        run_reconnect(&r);
    qsort(r.lat, r.nlat, sizeof *r.lat, cmp_u32);
    printf("requests %zu seconds %.3f rate %.1f resumed %zu full %zu non2xx %zu errors %zu "
           "p50_ms %.3f p99_ms %.3f\n", r.nlat, r.t, r.nlat / r.t, r.resumed, r.full, r.non2xx,
           r.errors, quantile(&r, 500) / 1e3, quantile(&r, 990) / 1e3);
    if (qfile != NULL) {
        FILE *f = fopen(qfile, "w");
        if (f == NULL)
            die("cannot write %s", qfile);
        fprintf(f, "requests %zu\n", r.nlat);
        for (unsigned k = 1; k <= 1000; k++)
            fprintf(f, "%u %u\n", k, quantile(&r, k));
        fclose(f);
    }
    OPENSSL_cleanse(r.keys, r.count * sizeof *r.keys);
    free(r.keys);
    free(r.have);
    free(r.busy);
    free(r.lat);
    return 0;
}
