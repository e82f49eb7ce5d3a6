/*
 * authcert — the admin tool: the seed's Certificate Manager flags over
 * libauthcert. This file is the command line and the table of modes; each
 * mode lives in its own cmd_*.c.
 *
 * `-re` is a two-letter flag behind one dash, which getopt cannot express,
 * hence the small parser below.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

#define PW_OPTS OPT_PASSWORD

static const struct tool_mode modes[] = {
    { "-c", "create", 0, 1,
      PW_OPTS | OPT_KEY_TYPE | OPT_DAYS | OPT_SUBJECT | OPT_COMPROMISED | OPT_RECOVERY
          | OPT_BREAK_COMMITMENT | OPT_REGISTRY, true,
      cmd_create, "-c  [PASSWORD]",
      "new certificate replaces the current one, after a backup with PASSWORD" },
    { "-b", "backup", 1, 2, PW_OPTS | OPT_SKIP_UNEXPORTABLE, true,
      cmd_backup, "-b  [PASSWORD] PATH",
      "back up every certificate to PATH (a .zip file or a folder)" },
    { "-r", "restore", 1, 2, PW_OPTS | OPT_BREAK_COMMITMENT | OPT_REGISTRY, true,
      cmd_restore, "-r  [PASSWORD] PATH",
      "restore every certificate from a backup; keys stay exportable" },
    { "-re", "restore", 1, 2, PW_OPTS | OPT_BREAK_COMMITMENT | OPT_REGISTRY, true,
      cmd_restore_noexp, "-re [PASSWORD] PATH",
      "restore every certificate; keys can no longer be exported" },
    { "-e", "export", 1, 1, 0, true,
      cmd_export, "-e  PATH",
      "write the agent certificate file of the current certificate" },
    { "-i", "import", 1, 2, PW_OPTS | OPT_AS_EXPIRED | OPT_BREAK_COMMITMENT | OPT_REGISTRY, true,
      cmd_import, "-i  [PASSWORD] PATH",
      "import a certificate and key from a PKCS#12/PFX file" },
    { "-l", "list", 1, 1, OPT_REGISTRY, false,
      cmd_list, "-l  CSV_PATH",
      "list the agents using a mismatched certificate (CSV; - for stdout)" },
    { "--status", "status", 0, 0, OPT_JSON | OPT_REGISTRY, false,
      cmd_status, "--status [--json]",
      "show every certificate, its state and the days left" },
    { "--agents", "agents", 0, 0, OPT_JSON | OPT_REGISTRY, false,
      cmd_agents, "--agents [--json]",
      "list every agent and whether it holds the current certificate" },
    { "--push", "push", 1, 1, OPT_REGISTRY | OPT_PUSH | OPT_AGENT | OPT_JSON, false,
      cmd_push, "--push COMMAND (--agent ID ... | --all) [--args JSON] [--wait]",
      "queue a signed command for agents; --wait prints each result" },
    { "--migrate-registry", "migrate registry", 2, 2, 0, true,
      cmd_migrate, "--migrate-registry FROM TO",
      "copy agents and queued commands to another registry (SQLite, postgresql://)" },
    { "--tls-cert", "tls certificate", 1, 1, OPT_KEY_TYPE | OPT_DAYS | OPT_SUBJECT | OPT_TLS_NAMES,
      true, cmd_tls, "--tls-cert new|renew|prepare|pins [--dns NAME]... [--ip ADDRESS]...",
      "the TLS certificate authcertd serves (STORE/tls/); pins for the agents" },
    { "--enroll-token", "enrollment token", 1, 2,
      OPT_REGISTRY | OPT_AGENT | OPT_ENROLL | OPT_JSON, true, cmd_enroll_token,
      "--enroll-token new [FILE] [--uses N] [--expires DURATION] [--agent ID] [--server URL]"
      " | list | revoke ID",
      "tokens that let agents enroll; new writes the one file an agent needs" },
    { "--enrollments", "enrollments", 0, 0, OPT_REGISTRY | OPT_JSON, false, cmd_enrollments,
      "--enrollments [--json]", "the enrollment requests waiting for approval" },
    { "--approve", "approve", 1, 1, OPT_REGISTRY | OPT_KEY_PIN, true, cmd_approve,
      "--approve ID [--key PIN]", "approve an agent's pending enrollment (its key)" },
    { "--forget", "forget", 1, 1, OPT_REGISTRY, true, cmd_forget,
      "--forget ID", "unbind an agent's key: a reinstalled agent may enroll again" },
    { "--server-secret", "server secret", 1, 1, 0, true, cmd_server_secret,
      "--server-secret init", "make the server secret of a store made before protocol v2" },
    { "--next-key", "next key", 2, 2, OPT_RECOVERY, true, cmd_next_key,
      "--next-key export PATH | import PATH --recovery-file FILE",
      "move the sealed successor key off the machine, or back (pre-rotation)" },
};
#define NMODES (sizeof modes / sizeof modes[0])

static void usage(FILE *f)
{
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < NMODES; i++)
        fprintf(f, "  authcert %s\n", modes[i].synopsis);
    fprintf(f, "  authcert -h | --help | -V | --version\n");
}

static void help(void)
{
    printf("authcert %s — manage the server's authentication certificates\n\n",
           authcert_version());
    usage(stdout);
    printf("\nmodes:\n");
    for (size_t i = 0; i < NMODES; i++)
        printf("  %-9s %s\n", modes[i].flag, modes[i].help);
    printf(
        "\noptions:\n"
        "  --store DIR            the certificate store (default: $AUTHCERT_STORE or %s)\n"
        "  --password-file FILE   read the password from the first line of FILE\n"
        "  --password-fd N        read the password from file descriptor N\n"
        "  --key-type TYPE        -c: ed25519, p256, rsa2048, rsa3072, rsa4096 (default: the\n"
        "                         current certificate's type, else p256)\n"
        "  --days N               -c: validity in days (default %d)\n"
        "  --subject DN           -c: subject, e.g. \"CN=server,O=Example\"\n"
        "  --compromised          -c: the replaced certificate is revoked, not expired\n"
        "  --recovery-file FILE   -c: pre-rotation's recovery secret (not the password),\n"
        "  --recovery-fd N            which seals the committed successor key\n"
        "  --break-commitment     -c, -i, -r: make current a certificate agents holding\n"
        "                         the committing one cannot follow\n"
        "  --dns NAME, --ip ADDR  --tls-cert new|renew: a name of the server (repeat)\n"
        "  --as-expired           -i: add the certificate as expired, not current\n"
        "  --skip-unexportable    -b: leave out keys that may not be exported\n"
        "  --json                 --status, --agents, --push --wait: JSON output\n"
        "  --registry DB          the agent registry (default: $AUTHCERT_REGISTRY or %s)\n"
        "  --agent ID             --push: an agent to command (repeat for several);\n"
        "                         --enroll-token new: the one agent the token enrolls\n"
        "  --uses N, --expires D  --enroll-token new: uses (default 1), lifetime (default 24h)\n"
        "  --server URL           --enroll-token new: the https:// URL agents reach\n"
        "  --key PIN              --approve: the key to approve, when several are pending\n"
        "  --all                  --push: every registered agent\n"
        "  --args JSON            --push: the command's arguments, a JSON object\n"
        "  --wait                 --push: wait for the results and print them\n"
        "  --timeout S            --push --wait: give up after S seconds (default 60)\n"
        "  -q, --quiet            print nothing on success\n"
        "\nWithout PASSWORD the password is read from --password-file, --password-fd,\n"
        "a prompt without echo, or standard input when it is not a terminal.\n"
        "Passwords on the command line are visible to every user of the machine.\n"
        "\nexit status: 0 ok, 2 usage, 3 wrong password, 4 weak password, 5 damaged\n"
        "input, 6 I/O error, 7 store busy, 8 not permitted, 9 not found, 10 refused\n"
        "by policy, 11 crypto failure; see authcert(8).\n",
        AUTHCERT_STORE_DEFAULT_DIR, AUTHCERT_DEFAULT_DAYS, TOOL_REGISTRY_DEFAULT);
}

/* A usage error: one line naming it, then the synopsis. */
AUTHCERT_PRINTF(1, 2)
static int bad_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("authcert: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    return AUTHCERT_E_USAGE;
}

static bool parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* "30m", "24h", "7d", "90s", or seconds; 0 when malformed or beyond a year. */
static long long parse_duration(const char *s)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v <= 0 || v > 365LL * 86400)
        return 0;
    switch (*end) {
    case '\0': case 's': break;
    case 'm': v *= 60; break;
    case 'h': v *= 3600; break;
    case 'd': v *= 86400; break;
    default: return 0;
    }
    if (*end != '\0' && end[1] != '\0')
        return 0;
    return v <= 365LL * 86400 ? v : 0;
}

/* "--name VALUE" or "--name=VALUE"; NULL when s is not --name. */
static const char *long_value(const char *s, const char *name, int argc,
                              char **argv, int *i, bool *missing)
{
    size_t n = strlen(name);

    if (strncmp(s, name, n) != 0)
        return NULL;
    if (s[n] == '=')
        return s + n + 1;
    if (s[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* Parses argv into o; returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, struct tool_opts *o)
{
    bool only_pos = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        long n;

        if (only_pos || a[0] != '-' || a[1] == '\0') {
            o->pos[o->npos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help();
            return 0;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("authcert %s\n", authcert_version());
            return 0;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o->quiet = true;
            continue;
        }
        const struct tool_mode *m = NULL;
        for (size_t k = 0; k < NMODES; k++)
            if (strcmp(a, modes[k].flag) == 0)
                m = &modes[k];
        if (m != NULL) {
            if (o->mode != NULL)
                return bad_usage("%s and %s: one mode at a time", o->mode->flag, a);
            o->mode = m;
            continue;
        }
        if (strcmp(a, "--compromised") == 0) {
            o->compromised = true;
            o->given |= OPT_COMPROMISED;
        } else if (strcmp(a, "--break-commitment") == 0) {
            o->break_commitment = true;
            o->given |= OPT_BREAK_COMMITMENT;
        } else if ((v = long_value(a, "--recovery-file", argc, argv, &i, &missing)) != NULL) {
            o->recovery_file = v;
            o->given |= OPT_RECOVERY;
        } else if ((v = long_value(a, "--recovery-fd", argc, argv, &i, &missing)) != NULL) {
            if (!parse_int(v, 0, INT_MAX, &n))
                return bad_usage("--recovery-fd: not a file descriptor: %s", v);
            o->recovery_fd = (int)n;
            o->given |= OPT_RECOVERY;
        } else if (strcmp(a, "--as-expired") == 0) {
            o->as_expired = true;
            o->given |= OPT_AS_EXPIRED;
        } else if (strcmp(a, "--skip-unexportable") == 0) {
            o->skip_unexportable = true;
            o->given |= OPT_SKIP_UNEXPORTABLE;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
            o->given |= OPT_JSON;
        } else if ((v = long_value(a, "--store", argc, argv, &i, &missing)) != NULL) {
            if (*v == '\0')
                return bad_usage("--store: empty directory name");
            o->store_dir = v;
        } else if ((v = long_value(a, "--password-file", argc, argv, &i, &missing)) != NULL) {
            o->password_file = v;
            o->given |= OPT_PASSWORD;
        } else if ((v = long_value(a, "--password-fd", argc, argv, &i, &missing)) != NULL) {
            if (!parse_int(v, 0, INT_MAX, &n))
                return bad_usage("--password-fd: not a file descriptor: %s", v);
            o->password_fd = (int)n;
            o->given |= OPT_PASSWORD;
        } else if ((v = long_value(a, "--key-type", argc, argv, &i, &missing)) != NULL) {
            o->key_type = authcert_key_type_parse(v);
            if (o->key_type == AUTHCERT_KEY_UNKNOWN)
                return bad_usage("--key-type: unknown type %s "
                                 "(ed25519, p256, rsa2048, rsa3072, rsa4096)", v);
            o->given |= OPT_KEY_TYPE;
        } else if ((v = long_value(a, "--days", argc, argv, &i, &missing)) != NULL) {
            if (!parse_int(v, 1, 36500, &n))
                return bad_usage("--days: not a number of days from 1 to 36500: %s", v);
            o->days = (int)n;
            o->given |= OPT_DAYS;
        } else if ((v = long_value(a, "--subject", argc, argv, &i, &missing)) != NULL) {
            o->subject = v;
            o->given |= OPT_SUBJECT;
        } else if ((v = long_value(a, "--registry", argc, argv, &i, &missing)) != NULL) {
            if (*v == '\0')
                return bad_usage("--registry: empty name");
            o->registry = v;
            o->given |= OPT_REGISTRY;
        } else if ((v = long_value(a, "--agent", argc, argv, &i, &missing)) != NULL) {
            o->agents[o->nagents++] = (char *)v;
            o->given |= OPT_AGENT;
        } else if ((v = long_value(a, "--uses", argc, argv, &i, &missing)) != NULL) {
            if (!parse_int(v, 1, 1000000000, &n))
                return bad_usage("--uses: not a number from 1 to 1000000000: %s", v);
            o->uses = n;
            o->given |= OPT_ENROLL;
        } else if ((v = long_value(a, "--expires", argc, argv, &i, &missing)) != NULL) {
            if ((o->expires = parse_duration(v)) <= 0)
                return bad_usage("--expires: a duration like 30m, 24h or 7d (at most 365d): %s",
                                 v);
            o->given |= OPT_ENROLL;
        } else if ((v = long_value(a, "--server", argc, argv, &i, &missing)) != NULL) {
            if (strncmp(v, "https://", 8) != 0)
                return bad_usage("--server: an https:// URL, not %s", v);
            o->server_url = v;
            o->given |= OPT_ENROLL;
        } else if ((v = long_value(a, "--key", argc, argv, &i, &missing)) != NULL) {
            o->key_pin = v;
            o->given |= OPT_KEY_PIN;
        } else if ((v = long_value(a, "--dns", argc, argv, &i, &missing)) != NULL) {
            o->dns_names[o->ndns++] = (char *)v;
            o->given |= OPT_TLS_NAMES;
        } else if ((v = long_value(a, "--ip", argc, argv, &i, &missing)) != NULL) {
            o->ip_addresses[o->nips++] = (char *)v;
            o->given |= OPT_TLS_NAMES;
        } else if (strcmp(a, "--all") == 0) {
            o->push_all = true;
            o->given |= OPT_PUSH;
        } else if ((v = long_value(a, "--args", argc, argv, &i, &missing)) != NULL) {
            o->push_args = v;
            o->given |= OPT_PUSH;
        } else if (strcmp(a, "--wait") == 0) {
            o->wait = true;
            o->given |= OPT_PUSH;
        } else if ((v = long_value(a, "--timeout", argc, argv, &i, &missing)) != NULL) {
            if (!parse_int(v, 1, 86400, &n))
                return bad_usage("--timeout: not a number of seconds from 1 to 86400: %s", v);
            o->timeout = (int)n;
            o->given |= OPT_PUSH;
        } else if (missing) {
            return bad_usage("%s needs a value", a);
        } else {
            return bad_usage("unknown option %s", a);
        }
    }
    if (o->mode == NULL)
        return bad_usage("no mode given");
    if (o->npos < o->mode->min_pos || o->npos > o->mode->max_pos)
        return bad_usage("wrong number of arguments for %s: authcert %s",
                         o->mode->flag, o->mode->synopsis);
    if ((o->given & ~o->mode->allowed) != 0)
        return bad_usage("an option given does not apply to %s (see --help)",
                         o->mode->flag);
    if (o->password_file != NULL && o->password_fd >= 0)
        return bad_usage("--password-file and --password-fd: one at a time");
    if (o->recovery_file != NULL && o->recovery_fd >= 0)
        return bad_usage("--recovery-file and --recovery-fd: one at a time");
    return -1;
}

int main(int argc, char **argv)
{
    struct tool_opts o = { .password_fd = -1, .recovery_fd = -1, .timeout = 60 };
    authcert_status rc;
    int code;

    /* First: the password (even one given as an argument) and keys stay out of cores. */
    if (authcert_no_core_dumps() != AUTHCERT_OK) {
        fprintf(stderr, "authcert: %s\n", authcert_detail());
        return 1;
    }
    o.pos = calloc((size_t)argc + 1, sizeof *o.pos);
    o.agents = calloc((size_t)argc + 1, sizeof *o.agents);
    o.dns_names = calloc((size_t)argc + 1, sizeof *o.dns_names);
    o.ip_addresses = calloc((size_t)argc + 1, sizeof *o.ip_addresses);
    if (o.pos == NULL || o.agents == NULL || o.dns_names == NULL || o.ip_addresses == NULL) {
        free(o.pos);
        free(o.agents);
        free(o.dns_names);
        free(o.ip_addresses);
        fputs("authcert: out of memory\n", stderr);
        return AUTHCERT_E_NOMEM;
    }
    code = parse(argc, argv, &o);
    if (code >= 0) {
        free(o.pos);
        free(o.agents);
        free(o.dns_names);
        free(o.ip_addresses);
        return code;
    }
    if (o.store_dir == NULL)
        o.store_dir = authcert_store_default_dir();
    if (o.registry == NULL) {
        const char *env = getenv("AUTHCERT_REGISTRY");
        o.registry = env != NULL && *env != '\0' ? env : TOOL_REGISTRY_DEFAULT;
    }

    rc = authcert_init();
    if (rc != AUTHCERT_OK) {
        code = tool_fail(&o, rc);
    } else {
        code = o.mode->run(&o); /* NOLINT(clang-analyzer-core.NullDereference): parse() returns -1 only with a mode */
    }
    authcert_cleanup();
    free(o.pos);
    free(o.agents);
    free(o.dns_names);
    free(o.ip_addresses);
    return code;
}
