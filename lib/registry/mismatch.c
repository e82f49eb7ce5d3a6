/*
 * The mismatch list: a registry scan streamed straight into the CSV writer.
 * Per row there is no allocation: the strings are SQLite's column buffers,
 * the date is formatted by hand (gmtime_r takes glibc's time zone lock),
 * and the reason comes from a small cache since a fleet reports only a few
 * distinct certificates.
 */
#include <inttypes.h>
#include <string.h>

#include "authcert/csv.h"
#include "authcert/mismatch.h"
#include "internal.h"

#define CACHE_SLOTS 16

typedef struct list_ctx {
    authcert_csv *w;
    const char *current;
    size_t current_len;
    authcert_mismatch_classify_cb classify;
    void *cctx;
    size_t cached;
    struct {
        char thumbprint[AUTHCERT_THUMBPRINT_LEN + 1];
        authcert_mismatch_reason reason;
    } cache[CACHE_SLOTS];
} list_ctx;

const char *authcert_mismatch_reason_name(authcert_mismatch_reason r)
{
    switch (r) {
    case AUTHCERT_MISMATCH_EXPIRED: return "expired";
    case AUTHCERT_MISMATCH_REVOKED: return "revoked";
    case AUTHCERT_MISMATCH_UNKNOWN: break;
    }
    return "unknown";
}

static authcert_mismatch_reason classify(list_ctx *c, const char *tp)
{
    size_t len = strlen(tp);
    authcert_mismatch_reason r;

    if (c->classify == NULL)
        return AUTHCERT_MISMATCH_UNKNOWN;
    if (len <= AUTHCERT_THUMBPRINT_LEN) {
        for (size_t i = 0; i < c->cached; i++)
            if (strcmp(c->cache[i].thumbprint, tp) == 0)
                return c->cache[i].reason;
    }
    r = c->classify(c->cctx, tp);
    if (r != AUTHCERT_MISMATCH_EXPIRED && r != AUTHCERT_MISMATCH_REVOKED)
        r = AUTHCERT_MISMATCH_UNKNOWN;
    if (len <= AUTHCERT_THUMBPRINT_LEN && c->cached < CACHE_SLOTS) {
        memcpy(c->cache[c->cached].thumbprint, tp, len + 1);
        c->cache[c->cached++].reason = r;
    }
    return r;
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* "2026-11-25T12:00:00Z"; returns the length. */
static size_t iso8601(int64_t t, char out[40])
{
    int64_t days = t / 86400, secs = t % 86400, y;
    unsigned m, d;

    if (secs < 0) {
        secs += 86400;
        days--;
    }
    civil(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return (size_t)snprintf(out, 40, "%" PRId64 "-%02u-%02uT%02u:%02u:%02uZ", y, m, d,
                                (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
                                (unsigned)(secs % 60));
    put2(out, (unsigned)(y / 100));
    put2(out + 2, (unsigned)(y % 100));
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = 'T';
    put2(out + 11, (unsigned)(secs / 3600));
    out[13] = ':';
    put2(out + 14, (unsigned)(secs / 60 % 60));
    out[16] = ':';
    put2(out + 17, (unsigned)(secs % 60));
    out[19] = 'Z';
    out[20] = '\0';
    return 20;
}

static authcert_status row(void *ctx, const authcert_agent *a)
{
    list_ctx *c = ctx;
    authcert_status rc = AUTHCERT_E_INTERNAL;
    const char *reason = authcert_mismatch_reason_name(classify(c, a->thumbprint));
    char when[40];
    size_t when_len = iso8601((int64_t)a->last_seen, when);

    GUARD(authcert_csv_field_str(c->w, a->agent_id));
    GUARD(authcert_csv_field_str(c->w, a->hostname));
    GUARD(authcert_csv_field_str(c->w, a->address));
    GUARD(authcert_csv_field(c->w, when, when_len));
    GUARD(authcert_csv_field_str(c->w, a->thumbprint));
    GUARD(authcert_csv_field_str(c->w, reason));
    GUARD(authcert_csv_field(c->w, c->current, c->current_len));
    GUARD(authcert_csv_end_row(c->w));
    rc = AUTHCERT_OK;
out:
    return rc;
}

static const char *const header[] = {
    "agent_id", "hostname", "address", "last_seen", "reported_thumbprint", "reason",
    "current_thumbprint",
};

authcert_status authcert_mismatch_list_write(authcert_registry *reg,
                                             const char *current_thumbprint,
                                             authcert_mismatch_classify_cb classify_cb,
                                             void *ctx, FILE *out, size_t *rows)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_agent_filter filter = { 0 };
    list_ctx c = { 0 };
    size_t n;

    if (rows != NULL)
        *rows = 0;
    if (reg == NULL || out == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "mismatch list: missing argument");
    c.current = current_thumbprint != NULL ? current_thumbprint : "";
    c.current_len = strlen(c.current);
    c.classify = classify_cb;
    c.cctx = ctx;
    filter.not_thumbprint = c.current_len > 0 ? c.current : NULL;

    GUARD(authcert_csv_new_file(out, AUTHCERT_CSV_NEUTRALIZE_FORMULAS, &c.w));
    for (size_t i = 0; i < sizeof header / sizeof header[0]; i++)
        GUARD(authcert_csv_field_str(c.w, header[i]));
    GUARD(authcert_csv_end_row(c.w));
    GUARD(authcert_registry_foreach_agent(reg, c.current_len > 0 ? &filter : NULL, row, &c));
    n = (size_t)(authcert_csv_rows(c.w) - 1);
    rc = authcert_csv_finish(c.w);
    c.w = NULL;
    if (rc == AUTHCERT_OK && rows != NULL)
        *rows = n;
out:
    authcert_csv_free(c.w);
    return rc;
}
