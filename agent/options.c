/*
 * authcert-agent's settings: defaults, then the --config file (the same
 * names as the long flags, one "key = value" a line), then the flags.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "authcert/config.h"
#include "authcert/fsutil.h"
#include "authcert/tls.h"
#include "daemon.h"

#define DEFAULT_INTERVAL 60
#define DEFAULT_LEEWAY 60
#define DEFAULT_HANDLER_TIMEOUT 30

enum { O_SERVER = 1, O_STATE, O_LISTEN, O_CERT, O_INTERVAL, O_HANDLER, O_ONCE, O_IDFILE,
       O_LEEWAY, O_CONFIG, O_LOGLEVEL, O_HTIMEOUT, O_CAFILE, O_PIN, O_KEYTYPE, O_INSECURE,
       O_TOKENFILE, O_MAXLIFE, O_ROTATE, O_HELP, O_VERSION };

static const struct option longopts[] = {
    {"server", required_argument, NULL, O_SERVER},
    {"state-dir", required_argument, NULL, O_STATE},
    {"listen", required_argument, NULL, O_LISTEN},
    {"cert", required_argument, NULL, O_CERT},
    {"interval", required_argument, NULL, O_INTERVAL},
    {"handler", required_argument, NULL, O_HANDLER},
    {"handler-timeout", required_argument, NULL, O_HTIMEOUT},
    {"once", no_argument, NULL, O_ONCE},
    {"id-file", required_argument, NULL, O_IDFILE},
    {"leeway", required_argument, NULL, O_LEEWAY},
    {"config", required_argument, NULL, O_CONFIG},
    {"log-level", required_argument, NULL, O_LOGLEVEL},
    {"ca-file", required_argument, NULL, O_CAFILE},
    {"server-pin", required_argument, NULL, O_PIN},
    {"key-type", required_argument, NULL, O_KEYTYPE},
    {"insecure-http", no_argument, NULL, O_INSECURE},
    {"enroll-token-file", required_argument, NULL, O_TOKENFILE},
    {"max-token-lifetime", required_argument, NULL, O_MAXLIFE},
    {"rotate-key", no_argument, NULL, O_ROTATE},
    {"help", no_argument, NULL, O_HELP},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " AGENT_NAME " --state-dir DIR [--server URL] [--listen ADDR:PORT]\n"
            "           [--cert FILE] [--interval SECONDS] [--handler PROGRAM]\n"
            "           [--handler-timeout SECONDS] [--id-file FILE] [--leeway SECONDS]\n"
            "           [--ca-file FILE] [--server-pin sha256//BASE64]... [--key-type p256|ed25519]\n"
            "           [--insecure-http] [--enroll-token-file FILE] [--max-token-lifetime S]\n"
            "           [--log-level error|warn|info|debug] [--config FILE]\n"
            "           [--once | --rotate-key]\n"
            "       " AGENT_NAME " --help | --version\n"
            "See authcert-agent(8).\n");
}

static int bad(const char *where, const char *what, const char *value)
{
    fprintf(stderr, AGENT_NAME ": %s%s%s\n", where, what, value);
    return 2;
}

static int set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = strdup(v);
    return *slot == NULL ? 1 : 0;
}

static int set_int(int *slot, const char *v, int lo, int hi, const char *where, const char *name)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s must be a number in %d..%d, not ", name, lo, hi);
        return bad(where, msg, v);
    }
    *slot = (int)n;
    return 0;
}

/* Apply one setting (from a flag or a config line); where prefixes errors. */
static int apply(agent_config *cfg, int opt, const char *v, const char *where)
{
    switch (opt) {
    case O_SERVER: return set_str(&cfg->server, v);
    case O_STATE: return set_str(&cfg->state_dir, v);
    case O_LISTEN: return set_str(&cfg->listen, v);
    case O_CERT: return set_str(&cfg->cert, v);
    case O_HANDLER: return set_str(&cfg->handler, v);
    case O_IDFILE: return set_str(&cfg->id_file, v);
    case O_CONFIG: return set_str(&cfg->config, v);
    case O_INTERVAL: return set_int(&cfg->interval, v, 1, 86400, where, "--interval");
    case O_LEEWAY: return set_int(&cfg->leeway, v, 0, 3600, where, "--leeway");
    case O_HTIMEOUT:
        return set_int(&cfg->handler_timeout, v, 1, 86400, where, "--handler-timeout");
    case O_LOGLEVEL:
        cfg->log_level = agent_log_level_parse(v);
        if (cfg->log_level < 0)
            return bad(where, "--log-level must be error, warn, info or debug, not ", v);
        return 0;
    case O_ONCE: cfg->once = true; return 0;
    case O_INSECURE: cfg->insecure_http = true; return 0;
    case O_ROTATE: cfg->rotate_key = true; return 0;
    case O_CAFILE: return set_str(&cfg->ca_file, v);
    case O_TOKENFILE: return set_str(&cfg->enroll_token_file, v);
    case O_MAXLIFE:
        return set_int(&cfg->max_token_lifetime, v, 1, 31 * 86400, where,
                       "--max-token-lifetime");
    case O_PIN: {
        if (!authcert_pin_valid(v))
            return bad(where, "--server-pin must be sha256// and the base64 of a SHA-256 "
                       "(authcert --tls-cert pins), not ", v);
        char **n = realloc(cfg->pins, (cfg->npins + 2) * sizeof *n);
        if (n == NULL)
            return 1;
        cfg->pins = n;
        if ((n[cfg->npins] = strdup(v)) == NULL)
            return 1;
        n[++cfg->npins] = NULL;
        return 0;
    }
    case O_KEYTYPE:
        cfg->key_type = authcert_key_type_parse(v);
        if (cfg->key_type != AUTHCERT_KEY_P256 && cfg->key_type != AUTHCERT_KEY_ED25519)
            return bad(where, "--key-type must be p256 or ed25519, not ", v);
        return 0;
    }
    return 2;
}

/*
 * One setting of the --config file: apply() prints its own message (with
 * "PATH:LINE: " in front); the status only stops the reading.
 */
static authcert_status config_setting(void *ctx, const char *key, const char *val,
                                      const char *where)
{
    agent_config *cfg = ctx;
    char prefix[PATH_MAX + 32];
    int opt = 0;

    snprintf(prefix, sizeof prefix, "%s: ", where);
    for (const struct option *o = longopts; o->name != NULL; o++)
        if (strcmp(o->name, key) == 0)
            opt = o->val;
    if (opt == 0 || opt == O_CONFIG || opt == O_HELP || opt == O_VERSION) {
        bad(prefix, "unknown setting ", key);
        return AUTHCERT_E_USAGE;
    }
    if (opt == O_ONCE || opt == O_INSECURE) {
        if (strcmp(val, "true") == 0 || strcmp(val, "yes") == 0 || strcmp(val, "1") == 0)
            *(opt == O_ONCE ? &cfg->once : &cfg->insecure_http) = true;
        return AUTHCERT_OK;
    }
    return apply(cfg, opt, val, prefix) == 0 ? AUTHCERT_OK : AUTHCERT_E_USAGE;
}

static int load_config(agent_config *cfg, const char *path)
{
    authcert_status rc = authcert_config_read(path, config_setting, cfg);

    /* The callback already said what was wrong with a setting. */
    if (rc != AUTHCERT_OK && rc != AUTHCERT_E_USAGE)
        fprintf(stderr, AGENT_NAME ": %s\n", authcert_detail());
    return rc == AUTHCERT_OK ? 0 : 2;
}

/*
 * The enrollment token file (authcert --enroll-token new): {"server", "pins",
 * "token"}. It gives the server's URL and pins when the command line and
 * the configuration do not, so that installing an agent is one file. It
 * holds a secret: it must be ours and private (authcert_read_private).
 */
static int read_token_file(agent_config *cfg)
{
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *j;
    json_error_t err;
    const char *url, *tok;
    authcert_status rc = authcert_read_private(cfg->enroll_token_file, 64 * 1024, &data, &len);
    int ret = 0;

    if (rc != AUTHCERT_OK)
        return bad("--enroll-token-file: ", authcert_detail(), "");
    j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &err);
    OPENSSL_clear_free(data, len);
    url = json_string_value(json_object_get(j, "server"));
    tok = json_string_value(json_object_get(j, "token"));
    if (tok == NULL || (json_object_get(j, "pins") != NULL &&
                        !json_is_array(json_object_get(j, "pins")))) {
        json_decref(j);
        return bad("--enroll-token-file: ", cfg->enroll_token_file,
                   ": not a token file (authcert --enroll-token new writes one)");
    }
    if ((cfg->enroll_token = strdup(tok)) == NULL)
        ret = 1;
    if (ret == 0 && cfg->server == NULL && url != NULL)
        ret = set_str(&cfg->server, url);
    /* Its pins, unless --server-pin or --ca-file chose the server's trust already. */
    if (ret == 0 && cfg->npins == 0 && cfg->ca_file == NULL) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(j, "pins"), i, p) {
            if (!json_is_string(p) || (ret = apply(cfg, O_PIN, json_string_value(p),
                                                   "--enroll-token-file: ")) != 0)
                break;
        }
    }
    json_decref(j); /* it held the token: jansson's memory, not wiped */
    return ret;
}

int agent_config_parse(agent_config *cfg, int argc, char **argv)
{
    int opt, rc;

    memset(cfg, 0, sizeof *cfg);
    cfg->interval = DEFAULT_INTERVAL;
    cfg->leeway = DEFAULT_LEEWAY;
    cfg->handler_timeout = DEFAULT_HANDLER_TIMEOUT;
    cfg->log_level = LOG_INFO;
    cfg->key_type = AUTHCERT_KEY_P256;
    cfg->max_token_lifetime = 3600;

    /* First pass: only --config, so that flags override the file. */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if (opt == O_CONFIG && (rc = set_str(&cfg->config, optarg)) != 0)
            return 2;
    if (cfg->config != NULL && (rc = load_config(cfg, cfg->config)) != 0)
        return rc;

    optind = 0; /* glibc: start over */
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case O_HELP: usage(stdout); exit(0);
        case O_VERSION: printf(AGENT_NAME " %s\n", authcert_version()); exit(0);
        case '?': usage(stderr); return 2;
        default:
            if ((rc = apply(cfg, opt, optarg, "")) != 0)
                return rc;
        }
    }
    if (optind < argc)
        return bad("", "unexpected argument ", argv[optind]);
    if (cfg->state_dir == NULL)
        return bad("", "--state-dir DIR is required", "");
    if (cfg->enroll_token_file != NULL && (rc = read_token_file(cfg)) != 0)
        return rc;
    if (cfg->once && cfg->server == NULL)
        return bad("", "--once needs --server URL", "");
    if (cfg->rotate_key && cfg->server == NULL)
        return bad("", "--rotate-key needs --server URL", "");
    if (cfg->server == NULL && cfg->listen == NULL)
        return bad("", "nothing to do: give --server URL, --listen ADDR:PORT or both", "");
    if (cfg->server != NULL && strncmp(cfg->server, "http://", 7) != 0 &&
        strncmp(cfg->server, "https://", 8) != 0)
        return bad("", "--server must be an https:// URL, not ", cfg->server);
    if (cfg->server != NULL && strncmp(cfg->server, "http://", 7) == 0 && !cfg->insecure_http)
        return bad("", "--server is plain HTTP: anyone on the way reads and changes what "
                   "passes; use https://, or say --insecure-http: ", cfg->server);
    if (cfg->insecure_http && cfg->server != NULL && strncmp(cfg->server, "https://", 8) == 0)
        return bad("", "--insecure-http with an https:// server: choose one, not ", cfg->server);
    if ((cfg->ca_file != NULL || cfg->npins > 0) && cfg->insecure_http)
        return bad("", "--ca-file and --server-pin are for https://", "");
    if (cfg->handler != NULL && cfg->handler[0] != '/')
        return bad("", "--handler must be an absolute path, not ", cfg->handler);
    return 0;
}

void agent_config_free(agent_config *cfg)
{
    free(cfg->server);
    free(cfg->state_dir);
    free(cfg->listen);
    free(cfg->cert);
    free(cfg->handler);
    free(cfg->id_file);
    free(cfg->config);
    free(cfg->ca_file);
    free(cfg->enroll_token_file);
    if (cfg->enroll_token != NULL)
        OPENSSL_clear_free(cfg->enroll_token, strlen(cfg->enroll_token));
    for (size_t i = 0; i < cfg->npins; i++)
        free(cfg->pins[i]);
    free(cfg->pins);
    memset(cfg, 0, sizeof *cfg);
}
