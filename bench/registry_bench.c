/*
 * Hand-run registry figures (bench/README.md will take them):
 *   registry_bench DB        check in 100,000 agents in batches of 500 (new,
 *                            then again as updates), then grow to 1,000,000
 *                            agents (750,000 not on the current certificate)
 *                            and write the mismatch list to DB.csv.
 * Compare with: sqlite3 -csv DB "<the same SELECT>" > /dev/null
 * Build: cc -O2 -Iinclude bench/registry_bench.c -Lbuild-rel/lib -lauthcert
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authcert/mismatch.h"
#include "authcert/registry.h"

#define CUR "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define OLD "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define REV "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned long long next(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static char (*ids)[40];

static void make_ids(size_t n)
{
    ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        unsigned long long a = next(), b = next();
        snprintf(ids[i], sizeof ids[i], "%08llx-%04llx-4%03llx-8%03llx-%012llx",
                 a >> 32, (a >> 16) & 0xffff, a & 0xfff, b >> 52, b & 0xffffffffffffull);
    }
}

static double checkin(authcert_registry *reg, size_t from, size_t to, time_t t)
{
    authcert_agent_report r[500];
    double t0 = now_s();

    for (size_t b = from; b < to; b += 500) {
        size_t n = to - b < 500 ? to - b : 500;
        for (size_t i = 0; i < n; i++) {
            size_t k = b + i;
            r[i] = (authcert_agent_report){ ids[k], "host-0042.corp.example", "10.20.30.40",
                                            7443, k % 4 == 0 ? CUR : k % 4 == 1 ? REV : OLD,
                                            "1.0.0" };
        }
        if (authcert_registry_checkin_batch(reg, r, n, t) != AUTHCERT_OK) {
            fprintf(stderr, "checkin: %s\n", authcert_detail());
            exit(1);
        }
    }
    return now_s() - t0;
}

static authcert_mismatch_reason classify(void *ctx, const char *tp)
{
    (void)ctx;
    return strcmp(tp, OLD) == 0 ? AUTHCERT_MISMATCH_EXPIRED
         : strcmp(tp, REV) == 0 ? AUTHCERT_MISMATCH_REVOKED : AUTHCERT_MISMATCH_UNKNOWN;
}

int main(int argc, char **argv)
{
    authcert_registry *reg;
    char csv[4096];
    size_t rows;
    double t;

    if (argc != 2)
        return 2;
    make_ids(1000000);
    if (authcert_registry_open(argv[1], &reg) != AUTHCERT_OK) {
        fprintf(stderr, "%s\n", authcert_detail());
        return 1;
    }
    t = checkin(reg, 0, 100000, 1795608000);
    printf("check-in 100k new, batches of 500:      %.3f s  %.0f/s\n", t, 100000 / t);
    t = checkin(reg, 0, 100000, 1795608060);
    printf("check-in 100k updates, batches of 500:  %.3f s  %.0f/s\n", t, 100000 / t);
    t = checkin(reg, 100000, 1000000, 1795608000);
    printf("check-in 900k more new (to 1M):         %.3f s  %.0f/s\n", t, 900000 / t);
    t = checkin(reg, 0, 100000, 1795608120);
    printf("check-in 100k updates at 1M agents:     %.3f s  %.0f/s\n", t, 100000 / t);

    snprintf(csv, sizeof csv, "%s.csv", argv[1]);
    FILE *f = fopen(csv, "w");
    t = now_s();
    if (authcert_mismatch_list_write(reg, CUR, classify, NULL, f, &rows) != AUTHCERT_OK)
        return 1;
    fclose(f);
    t = now_s() - t;
    printf("mismatch list %zu of 1M rows:         %.3f s  %.0f rows/s\n", rows, t, rows / t);

    int64_t cmd;
    uint64_t n;
    t = now_s();
    if (authcert_registry_enqueue_all(reg, "restart", "{\"delay\":5}", 1795609000, &cmd, &n)
        != AUTHCERT_OK)
        return 1;
    t = now_s() - t;
    printf("enqueue_all to %llu agents:          %.3f s  %.0f rows/s\n",
           (unsigned long long)n, t, n / t);
    authcert_registry_close(reg);
    return 0;
}
