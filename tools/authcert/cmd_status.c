/*
 * authcert --status [--json]: every certificate in the store, its state and
 * dates, and how long the current one has left. Public facts only: a private
 * key shows as "(hidden)" and never leaves the library here.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tool.h"

/* Under this many days the view says to replace the certificate now. */
#define WARN_DAYS 90

struct overview {
    const authcert_store_entry *cur;
    long days_left;  /* floor; negative once expired */
    char warning[160];
};

static void overview_of(authcert_store *s, struct overview *ov)
{
    authcert_cert_info info;
    char until[32];
    time_t now = time(NULL);

    ov->cur = authcert_store_current(s);
    ov->days_left = 0;
    ov->warning[0] = '\0';
    if (ov->cur == NULL) {
        snprintf(ov->warning, sizeof ov->warning,
                 "no current certificate: create one with authcert -c");
        return;
    }
    authcert_cert_get_info(ov->cur->cert, &info);
    tool_iso8601(info.not_after, until, sizeof until);
    /* Floor division, so that a certificate that expired an hour ago shows -1. */
    long secs = (long)(info.not_after - now);
    ov->days_left = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    if (secs < 0)
        snprintf(ov->warning, sizeof ov->warning,
                 "the current certificate expired on %s: replace it with authcert -c", until);
    else if (ov->days_left < WARN_DAYS)
        snprintf(ov->warning, sizeof ov->warning,
                 "the current certificate expires in %ld days (%s): replace it with "
                 "authcert -c", ov->days_left, until);
}

/* The successor e commits to (pre-rotation), and for the current one where its key is. */
static void print_commitment(const authcert_store *s, const authcert_store_entry *e)
{
    char hash[AUTHCERT_SPKI_HASH_LEN + 1], stored[AUTHCERT_SPKI_HASH_LEN + 1];
    bool has = false;
    authcert_next_key_where w;

    if (authcert_cert_commitment(e->cert, &has, hash) != AUTHCERT_OK) {
        printf("  commits to:  (malformed commitment: no successor is accepted)\n");
        return;
    }
    if (!has) {
        printf("  commits to:  none\n");
        return;
    }
    if (e->state != AUTHCERT_STATE_CURRENT) {
        printf("  commits to:  %s\n", hash);
        return;
    }
    w = authcert_store_next_key(s, stored);
    printf("  commits to:  %s\n  next key:    %s\n", hash,
           w != AUTHCERT_NEXT_KEY_NONE && strcmp(stored, hash) == 0
               ? (w == AUTHCERT_NEXT_KEY_SEALED ? "sealed in the store (recovery secret)"
                                                : "exported (authcert --next-key import FILE)")
               : "MISSING: the next -c needs --break-commitment");
}

/* The commitment of c as JSON: its hash, or null. */
static json_t *commitment_json(const authcert_cert *c)
{
    char hash[AUTHCERT_SPKI_HASH_LEN + 1];
    bool has = false;

    if (authcert_cert_commitment(c, &has, hash) != AUTHCERT_OK || !has)
        return json_null();
    return json_string(hash);
}

static void print_text(authcert_store *s, const struct overview *ov)
{
    char nb[32], na[32], added[32], retired[32];

    printf("store: %s (generation %llu)\n", authcert_store_dir(s),
           authcert_store_generation(s));
    if (ov->cur != NULL)
        printf("current: %s, expires in %ld days\n", ov->cur->thumbprint, ov->days_left);
    else
        printf("current: none\n");
    if (ov->warning[0] != '\0')
        printf("WARNING: %s\n", ov->warning);
    for (size_t i = 0; i < authcert_store_count(s); i++) {
        const authcert_store_entry *e = authcert_store_entry_at(s, i);
        authcert_cert_info info;

        authcert_cert_get_info(e->cert, &info);
        tool_iso8601(info.not_before, nb, sizeof nb);
        tool_iso8601(info.not_after, na, sizeof na);
        tool_iso8601(e->added, added, sizeof added);
        if (e->retired != 0)
            tool_iso8601(e->retired, retired, sizeof retired);
        else
            snprintf(retired, sizeof retired, "-");
        printf("\ncertificate %s\n", e->thumbprint);
        printf("  state:       %s\n", authcert_state_name(e->state));
        printf("  subject:     %s\n", info.subject);
        printf("  serial:      %s\n", info.serial);
        printf("  key type:    %s\n", authcert_key_type_name(info.type));
        printf("  private key: %s\n", info.has_key ? "(hidden)" : "none");
        printf("  exportable:  %s\n", e->exportable ? "yes" : "no");
        printf("  not before:  %s\n", nb);
        printf("  not after:   %s\n", na);
        printf("  added:       %s\n", added);
        printf("  retired:     %s\n", retired);
        print_commitment(s, e);
        if (e->handoff != NULL)
            printf("  hand-off:    signed for its successor (agents on it need no key)\n");
    }
}

static json_t *iso_or_null(time_t t)
{
    char buf[32];

    if (t == 0)
        return json_null();
    tool_iso8601(t, buf, sizeof buf);
    return json_string(buf);
}

static authcert_status print_json(authcert_store *s, const struct overview *ov, json_t *fleet)
{
    json_t *root = NULL, *certs, *next;
    authcert_status rc = AUTHCERT_E_NOMEM;

    certs = json_array();
    if (certs == NULL)
        goto out;
    for (size_t i = 0; i < authcert_store_count(s); i++) {
        const authcert_store_entry *e = authcert_store_entry_at(s, i);
        authcert_cert_info info;

        authcert_cert_get_info(e->cert, &info);
        if (json_array_append_new(certs, json_pack(
                "{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:b, s:b, s:o, s:o, s:o, s:b}",
                "thumbprint", e->thumbprint,
                "state", authcert_state_name(e->state),
                "subject", info.subject,
                "serial", info.serial,
                "key_type", authcert_key_type_name(info.type),
                "not_before", iso_or_null(info.not_before),
                "not_after", iso_or_null(info.not_after),
                "exportable", (int)e->exportable,
                "has_private_key", (int)info.has_key,
                "added", iso_or_null(e->added),
                "retired", iso_or_null(e->retired),
                "commits_to", commitment_json(e->cert),
                "handoff", (int)(e->handoff != NULL))) != 0)
            goto out;
    }
    {
        char hash[AUTHCERT_SPKI_HASH_LEN + 1];
        authcert_next_key_where w = authcert_store_next_key(s, hash);
        next = w == AUTHCERT_NEXT_KEY_NONE
                   ? json_null()
                   : json_pack("{s:s, s:s}", "commitment", hash, "where",
                               authcert_next_key_where_name(w));
    }
    root = json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:O}",
                     "store", authcert_store_dir(s),
                     "generation", (json_int_t)authcert_store_generation(s),
                     "current", ov->cur != NULL ? json_string(ov->cur->thumbprint) : json_null(),
                     "days_left", ov->cur != NULL ? json_integer(ov->days_left) : json_null(),
                     "warning", ov->warning[0] != '\0' ? json_string(ov->warning) : json_null(),
                     "next_key", next,
                     "certificates", certs);
    if (root == NULL)
        goto out;
    if (fleet != NULL && json_object_update(root, fleet) != 0)
        goto out;
    if (json_dumpf(root, stdout, JSON_INDENT(2)) != 0 || fputc('\n', stdout) == EOF) {
        rc = authcert_fail(AUTHCERT_E_IO, "standard output: write failed");
        goto out;
    }
    rc = AUTHCERT_OK;
out:
    if (rc == AUTHCERT_E_NOMEM)
        rc = authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    json_decref(root);
    json_decref(certs);
    return rc;
}

int cmd_status(const struct tool_opts *o)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_store *s = NULL;
    json_t *fleet = NULL;
    struct overview ov;

    TRY(authcert_store_open(o->store_dir, AUTHCERT_STORE_READ, &s));
    overview_of(s, &ov);
    fleet = status_fleet(o, s);
    if (o->json) {
        TRY(print_json(s, &ov, fleet));
    } else {
        print_text(s, &ov);
        if (fleet != NULL) {
            putchar('\n');
            status_fleet_print(fleet);
        }
    }
    if (fflush(stdout) != 0)
        TRY(authcert_fail(AUTHCERT_E_IO, "standard output: write failed"));
    rc = AUTHCERT_OK;
out:
    json_decref(fleet);
    if (s != NULL)
        authcert_store_close(s);
    return rc == AUTHCERT_OK ? 0 : tool_fail(o, rc);
}
