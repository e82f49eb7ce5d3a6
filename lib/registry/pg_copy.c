/*
 * The PostgreSQL registry's agent scan (authcert -l, --agents): one
 * `COPY (SELECT ...) TO STDOUT (FORMAT binary)`.
 *
 * Why COPY and not a cursor: FETCH is a round trip per batch, and between
 * batches the server waits for us while we format rows, then we wait for
 * it; with COPY the server sends rows as fast as it makes them and the
 * socket buffers them while we write the CSV, so the two run side by side
 * (bench/README.md has the figures). Memory stays flat: one row's message
 * at a time.
 *
 * Why binary: text fields arrive as their bytes with a length, so an agent
 * id or hostname needs no unescaping; integers are fixed-width big-endian.
 * The format is PostgreSQL's documented COPY binary format (signature,
 * flags, header extension; per row a 16-bit field count and per field a
 * 32-bit length, -1 for NULL, then the bytes; a count of -1 ends it). The
 * server sends the header with the first row and one row per message.
 *
 * COPY takes no parameters, so the filter's values go in as literals:
 * strings through PQescapeLiteral, numbers printed as integers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/pg.h"

#define NFIELDS 11
#define SIGNATURE "PGCOPY\n\377\r\n"
#define SIGNATURE_LEN 11

/* A growing SQL text; on allocation failure it stays NULL. */
typedef struct sql_buf {
    char *s;
    size_t len;
} sql_buf;

static authcert_status append(sql_buf *b, const char *a, const char *lit, const char *z)
{
    size_t la = strlen(a), ll = lit != NULL ? strlen(lit) : 0, lz = strlen(z);
    char *n = realloc(b->s, b->len + la + ll + lz + 1);

    if (n == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    b->s = n;
    memcpy(b->s + b->len, a, la);
    if (ll > 0)
        memcpy(b->s + b->len + la, lit, ll);
    memcpy(b->s + b->len + la + ll, z, lz + 1);
    b->len += la + ll + lz;
    return AUTHCERT_OK;
}

/* " AND thumbprint = '...'" with the value escaped by libpq. */
static authcert_status append_text(pg *p, sql_buf *b, const char *cond, const char *value)
{
    authcert_status rc;
    char *lit = PQescapeLiteral(p->conn, value, strlen(value));

    if (lit == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "registry %s: cannot quote a filter value: %s",
                             p->name, PQerrorMessage(p->conn));
    rc = append(b, cond, lit, "");
    PQfreemem(lit);
    return rc;
}

/* The same conditions as pg_filter_sql, with the values written in. */
static authcert_status copy_sql(pg *p, const authcert_agent_filter *f, char **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    sql_buf b = { NULL, 0 };
    char num[48];

    *out = NULL;
    /* Every text column before an integer one: copy_message ends them in place. */
    GUARD(append(&b, "COPY (SELECT agent_id, hostname, address, port::int4, thumbprint, "
                 "version, key_pin, clone_pin, first_seen::int8, last_seen::int8, "
                 "(CASE WHEN key_spki <> '' THEN key_epoch ELSE 0 END)::int8 FROM agents "
                 "WHERE true",
                 NULL, ""));
    if (f != NULL && f->thumbprint != NULL)
        GUARD(append_text(p, &b, " AND thumbprint = ", f->thumbprint));
    if (f != NULL && f->not_thumbprint != NULL)
        GUARD(append_text(p, &b, " AND thumbprint <> ", f->not_thumbprint));
    if (f != NULL && f->seen_since != 0) {
        snprintf(num, sizeof num, "%lld", (long long)f->seen_since);
        GUARD(append(&b, " AND last_seen >= ", num, ""));
    }
    if (f != NULL && f->seen_before != 0) {
        snprintf(num, sizeof num, "%lld", (long long)f->seen_before);
        GUARD(append(&b, " AND last_seen < ", num, ""));
    }
    if (f != NULL && f->listening)
        GUARD(append(&b, " AND port <> 0", NULL, ""));
    GUARD(append(&b, " ORDER BY id) TO STDOUT (FORMAT binary)", NULL, ""));
    *out = b.s;
    b.s = NULL;
    rc = AUTHCERT_OK;
out:
    free(b.s);
    return rc;
}

static uint32_t be32(const unsigned char *q)
{
    return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

static uint64_t be64(const unsigned char *q)
{
    return (uint64_t)be32(q) << 32 | be32(q + 4);
}

typedef struct copy_state {
    pg *p;
    int header_seen;
    int ended;
} copy_state;

static authcert_status corrupt(const copy_state *s, const char *what)
{
    return authcert_fail(AUTHCERT_E_CORRUPT, "registry %s: agent list: unexpected COPY data "
                         "(%s)", s->p->name, what);
}

/*
 * One message: the header if it is the first, then rows (each whole), or
 * the end marker. Text fields are NUL-terminated in place once every
 * field's length has been read: the byte after a text field is the first
 * byte of the next field's length (the last field is an integer), and the
 * buffer is ours (PQgetCopyData's copy).
 */
static authcert_status copy_message(copy_state *s, unsigned char *m, size_t n,
                                    authcert_agent_cb cb, void *ctx)
{
    size_t at = 0;

    if (!s->header_seen) {
        if (n < SIGNATURE_LEN + 8 || memcmp(m, SIGNATURE, SIGNATURE_LEN) != 0)
            return corrupt(s, "no binary header");
        if (be32(m + SIGNATURE_LEN) != 0)
            return corrupt(s, "header flags");
        at = SIGNATURE_LEN + 8 + (size_t)be32(m + SIGNATURE_LEN + 4);
        if (at > n)
            return corrupt(s, "header extension");
        s->header_seen = 1;
    }
    while (at < n) {
        unsigned char *f[NFIELDS];
        uint32_t len[NFIELDS];
        authcert_agent a;
        authcert_status rc;
        uint16_t count;

        if (s->ended || n - at < 2)
            return corrupt(s, "data after the end");
        count = (uint16_t)(m[at] << 8 | m[at + 1]);
        at += 2;
        if (count == 0xffff) {
            s->ended = 1;
            continue;
        }
        if (count != NFIELDS)
            return corrupt(s, "field count");
        for (int i = 0; i < NFIELDS; i++) {
            if (n - at < 4)
                return corrupt(s, "short row");
            len[i] = be32(m + at);
            at += 4;
            /* -1 (NULL) is larger than any message too: every column is NOT NULL. */
            if (len[i] > n - at)
                return corrupt(s, "short row");
            f[i] = m + at;
            at += len[i];
        }
        if (len[3] != 4 || len[8] != 8 || len[9] != 8 || len[10] != 8)
            return corrupt(s, "integer width");
        a.port = (uint16_t)be32(f[3]);
        a.first_seen = (time_t)(int64_t)be64(f[8]);
        a.last_seen = (time_t)(int64_t)be64(f[9]);
        a.key_epoch = be64(f[10]);
        f[0][len[0]] = f[1][len[1]] = f[2][len[2]] = '\0';
        f[4][len[4]] = f[5][len[5]] = f[6][len[6]] = f[7][len[7]] = '\0';
        a.agent_id = (const char *)f[0];
        a.hostname = (const char *)f[1];
        a.address = (const char *)f[2];
        a.thumbprint = (const char *)f[4];
        a.version = (const char *)f[5];
        a.key_pin = (const char *)f[6];
        a.clone_pin = (const char *)f[7];
        if ((rc = cb(ctx, &a)) != AUTHCERT_OK)
            return rc;
    }
    return AUTHCERT_OK;
}

authcert_status pg_copy_agents(pg *p, const authcert_agent_filter *f, authcert_agent_cb cb,
                               void *ctx)
{
    authcert_status rc = AUTHCERT_E_INTERNAL, stop = AUTHCERT_OK;
    copy_state s = { p, 0, 0 };
    PGresult *res = NULL;
    char *sql = NULL, *buf = NULL;
    int n;

    GUARD(copy_sql(p, f, &sql));
    res = PQexec(p->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        rc = res == NULL ? authcert_fail(AUTHCERT_E_NOMEM, "registry %s: out of memory", p->name)
                         : pg_fail(p, res, "agent list");
        goto out;
    }
    PQclear(res);
    res = NULL;
    /*
     * A callback that stops the walk (its status comes back) or a row we
     * cannot read: the rest is read and dropped, not cancelled. A cancel
     * request races the end of the COPY and could hit the next statement
     * on this connection instead.
     */
    while ((n = PQgetCopyData(p->conn, &buf, 0)) > 0) {
        if (stop == AUTHCERT_OK)
            stop = copy_message(&s, (unsigned char *)buf, (size_t)n, cb, ctx);
        PQfreemem(buf);
        buf = NULL;
    }
    /* -1: the COPY is over, its status follows; -2: the connection failed. */
    res = PQgetResult(p->conn);
    if (stop != AUTHCERT_OK)
        rc = stop; /* its detail stays */
    else if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(p, res, "agent list");
    else if (!s.ended)
        rc = corrupt(&s, "no end marker");
    else
        rc = AUTHCERT_OK;
    while (res != NULL) {
        PQclear(res);
        res = PQgetResult(p->conn);
    }
out:
    PQclear(res);
    free(sql);
    return rc;
}
