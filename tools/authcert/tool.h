/*
 * tool.h — private to the admin tool: the parsed command line, the modes,
 * password input and the message helpers. The tool is thin: it parses,
 * reads passwords, calls the library and prints; the library decides.
 */
#ifndef AUTHCERT_TOOL_H
#define AUTHCERT_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "authcert/authcert.h"

/* Options that only some modes accept (a mode's `allowed` mask). */
enum {
    OPT_KEY_TYPE          = 1 << 0,
    OPT_DAYS              = 1 << 1,
    OPT_SUBJECT           = 1 << 2,
    OPT_COMPROMISED       = 1 << 3,
    OPT_AS_EXPIRED        = 1 << 4,
    OPT_SKIP_UNEXPORTABLE = 1 << 5,
    OPT_JSON              = 1 << 6,
    OPT_PASSWORD          = 1 << 7, /* --password-file, --password-fd */
    OPT_REGISTRY          = 1 << 8,
    OPT_PUSH              = 1 << 9, /* --agent, --all, --args, --wait, --timeout */
    OPT_TLS_NAMES         = 1 << 10, /* --dns, --ip */
    OPT_AGENT             = 1 << 11, /* --agent ID */
    OPT_ENROLL            = 1 << 12, /* --uses, --expires, --server */
    OPT_KEY_PIN           = 1 << 13, /* --key PIN */
    OPT_RECOVERY          = 1 << 14, /* --recovery-file, --recovery-fd */
    OPT_BREAK_COMMITMENT  = 1 << 15, /* --break-commitment */
};

/* The agent registry authcertd keeps: $AUTHCERT_REGISTRY or this. */
#define TOOL_REGISTRY_DEFAULT "/var/lib/authcertd/registry.db"

struct tool_mode;

/* The command line, parsed once by main.c. */
struct tool_opts {
    const struct tool_mode *mode;
    const char *store_dir;
    const char *password_file;
    int password_fd;              /* -1: not given */
    authcert_key_type key_type;   /* AUTHCERT_KEY_UNKNOWN: the default */
    int days;                     /* 0: the default */
    const char *subject;          /* NULL: the default */
    bool compromised;
    bool as_expired;
    bool skip_unexportable;
    bool json;
    bool quiet;
    const char *registry;         /* the agent registry (a path or a URI) */
    char **agents;                /* --push: --agent ID, repeated */
    size_t nagents;
    bool push_all;                /* --push: --all */
    const char *push_args;        /* --push: --args JSON (an object) */
    bool wait;                    /* --push: follow the deliveries */
    int timeout;                  /* --push --wait: seconds */
    char **dns_names;             /* --tls-cert: --dns NAME, repeated (NULL-terminated) */
    size_t ndns;
    char **ip_addresses;          /* --tls-cert: --ip ADDRESS, repeated (NULL-terminated) */
    size_t nips;
    long long uses;               /* --enroll-token new: --uses N (0: the default) */
    long long expires;            /* --enroll-token new: --expires DURATION, seconds (0: default) */
    const char *server_url;       /* --enroll-token new: --server URL */
    const char *key_pin;          /* --approve: --key PIN */
    const char *recovery_file;    /* pre-rotation's recovery secret: --recovery-file */
    int recovery_fd;              /* --recovery-fd N; -1: not given */
    bool break_commitment;        /* -c, -i, -r: replace a committing certificate anyway */
    unsigned given;               /* OPT_* seen, to refuse them in other modes */
    int npos;
    char **pos;                   /* positional arguments, in order */
};

/* One row of main.c's mode table. */
struct tool_mode {
    const char *flag;      /* "-c" */
    const char *name;      /* "create": used in every message */
    int min_pos, max_pos;  /* positional arguments accepted */
    unsigned allowed;      /* OPT_* that make sense with it */
    bool changes;          /* errors end with "(nothing was changed)" */
    int (*run)(const struct tool_opts *o);
    const char *synopsis;  /* after "authcert " */
    const char *help;      /* one line for --help */
};

int cmd_create(const struct tool_opts *o);
int cmd_backup(const struct tool_opts *o);
int cmd_restore(const struct tool_opts *o);      /* -r: keys stay exportable */
int cmd_restore_noexp(const struct tool_opts *o); /* -re: keys not exportable */
int cmd_export(const struct tool_opts *o);
int cmd_import(const struct tool_opts *o);
int cmd_status(const struct tool_opts *o);
int cmd_list(const struct tool_opts *o);   /* -l: the mismatch list */
int cmd_agents(const struct tool_opts *o); /* --agents */
int cmd_push(const struct tool_opts *o);   /* --push */
int cmd_migrate(const struct tool_opts *o); /* --migrate-registry (cmd_migrate.c) */
int cmd_tls(const struct tool_opts *o);     /* --tls-cert (cmd_tls.c) */
int cmd_enroll_token(const struct tool_opts *o); /* --enroll-token (cmd_enroll.c) */
int cmd_enrollments(const struct tool_opts *o);  /* --enrollments */
int cmd_approve(const struct tool_opts *o);      /* --approve ID */
int cmd_forget(const struct tool_opts *o);       /* --forget ID */
int cmd_server_secret(const struct tool_opts *o); /* --server-secret init */
int cmd_next_key(const struct tool_opts *o);      /* --next-key export|import PATH */

/*
 * Pre-rotation (next_key.c): refuse to make a certificate that is not the
 * committed successor current while the store's current certificate
 * commits to one, unless --break-commitment; with it, warn how many agents
 * (from the registry, when there is one) cannot follow.
 */
authcert_status tool_commitment_guard(const struct tool_opts *o, const authcert_store *s,
                                      const authcert_cert *incoming);

/*
 * --status's view of the fleet when a registry is there: agents by state
 * and the server nodes ({"registry", "agents": {...}, "nodes": [...]}), or
 * NULL (no registry). Caller json_decref's it.
 */
struct json_t;
struct json_t *status_fleet(const struct tool_opts *o, const authcert_store *store);
void status_fleet_print(const struct json_t *fleet);

/* Open the registry named by --registry / $AUTHCERT_REGISTRY / the default. */
authcert_status tool_registry_open(const struct tool_opts *o, authcert_registry **out);

/*
 * The password for a mode. From argv when the mode's syntax put it there
 * (argv_pw != NULL), else --password-file, --password-fd, a no-echo prompt
 * on the terminal (twice when confirm: a new password) or the first line of
 * stdin when it is not a terminal. Caller wipes it with
 * authcert_secret_free. Errors: AUTHCERT_E_USAGE (none given, two sources,
 * the two entries differ, too long), AUTHCERT_E_IO.
 */
authcert_status tool_password(const struct tool_opts *o, const char *argv_pw,
                              bool confirm, char **out);

/*
 * Pre-rotation's recovery secret (not the store password): --recovery-file,
 * --recovery-fd, or a no-echo prompt when standard input is a terminal
 * (twice when confirm). *out NULL: none given (never read from a piped
 * standard input, which may carry the password). Caller wipes it.
 */
authcert_status tool_recovery_secret(const struct tool_opts *o, bool confirm, char **out);

/*
 * The one line on stderr for a failure of the current mode:
 * "authcert: <mode>: <detail> (nothing was changed)". Returns rc, the exit code.
 */
int tool_fail(const struct tool_opts *o, authcert_status rc);

/*
 * -e and -b's PATH (destination.c): a symbolic link to a folder must lead
 * to one of the caller's or root's. Errors: AUTHCERT_E_PERM.
 */
authcert_status tool_check_destination(const char *path);

/* "authcert: <mode>: warning: ..." on stderr. */
void tool_warn(const struct tool_opts *o, const char *fmt, ...) AUTHCERT_PRINTF(2, 3);

/* A line on stdout unless -q. */
void tool_say(const struct tool_opts *o, const char *fmt, ...) AUTHCERT_PRINTF(2, 3);

/*
 * The certificate policy (authcert/cert_policy.h) for c, which becomes
 * current (current true: its dates are checked) or is added as expired
 * (current false). An expired certificate's refusal gets expired_hint
 * (may be NULL) appended: what the operator can do instead.
 * Errors: AUTHCERT_E_POLICY. (cert_policy.c)
 */
authcert_status tool_cert_policy(const authcert_cert *c, bool current, const char *expired_hint);

/*
 * Warn when c, about to become current in s, has a key of another family
 * than the current certificate: agents refuse such a key update.
 */
void tool_warn_key_change(const struct tool_opts *o, const authcert_store *s,
                          const authcert_cert *c);

/* A step that returns authcert_status; on failure leave for `out:`. */
#define TRY(expr)                                                           \
    do {                                                                    \
        rc = (expr);                                                        \
        if (rc != AUTHCERT_OK)                                              \
            goto out;                                                       \
    } while (0)

/* "2027-03-01T12:00:00Z" into buf (at least 21 bytes). */
void tool_iso8601(time_t t, char *buf, size_t size);

/* Positional argument i counted from the end (0: the last one). */
static inline const char *tool_pos_last(const struct tool_opts *o, int i)
{
    return o->npos > i ? o->pos[o->npos - 1 - i] : NULL;
}

#endif
