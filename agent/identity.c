/*
 * Who this agent is: the state directory, the agent id made at first start
 * and kept (STATE_DIR/agent-id), and the listen-port file that tells
 * scripts which port --listen ADDR:0 bound.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"

static authcert_status path_in_state(const agent *a, const char *name, char *out, size_t size)
{
    if ((size_t)snprintf(out, size, "%s/%s", a->cfg.state_dir, name) >= size)
        return authcert_fail(AUTHCERT_E_USAGE, "%s: path too long", a->cfg.state_dir);
    return AUTHCERT_OK;
}

authcert_status agent_identity_load(agent *a)
{
    char path[4096];
    uint8_t *data = NULL;
    size_t len = 0;
    authcert_status rc;

    /* It holds the agent's private key (0600) as well: 0700 when we make it. */
    if (mkdir(a->cfg.state_dir, 0700) != 0 && errno != EEXIST)
        return authcert_fail(AUTHCERT_E_IO, "%s: %s", a->cfg.state_dir, strerror(errno));
    if (!authcert_is_dir(a->cfg.state_dir))
        return authcert_fail(AUTHCERT_E_IO, "%s: not a directory", a->cfg.state_dir);

    if (a->cfg.cert == NULL) {
        if ((rc = path_in_state(a, "authcert-server.der", path, sizeof path)) != AUTHCERT_OK)
            return rc;
        if ((a->cfg.cert = strdup(path)) == NULL)
            return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }
    if (a->cfg.id_file == NULL) {
        if ((rc = path_in_state(a, "agent-id", path, sizeof path)) != AUTHCERT_OK)
            return rc;
        if ((a->cfg.id_file = strdup(path)) == NULL)
            return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    }

    rc = authcert_read_file(a->cfg.id_file, 1024, &data, &len);
    if (rc == AUTHCERT_E_NOTFOUND) {
        char id[37];
        if ((rc = authcert_agent_id_generate(id)) != AUTHCERT_OK)
            return rc;
        char line[40];
        snprintf(line, sizeof line, "%s\n", id);
        if ((rc = authcert_write_atomic(a->cfg.id_file, line, strlen(line), 0644)) != AUTHCERT_OK)
            return rc;
        snprintf(a->id, sizeof a->id, "%s", id);
        agent_log(LOG_INFO, "new agent id %s written to %s", a->id, a->cfg.id_file);
    } else if (rc != AUTHCERT_OK) {
        return rc;
    } else {
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
            len--;
        if (len >= sizeof a->id) {
            free(data);
            return authcert_fail(AUTHCERT_E_CORRUPT, "%s: agent id longer than 128 characters",
                                 a->cfg.id_file);
        }
        memcpy(a->id, data, len);
        a->id[len] = '\0';
        free(data);
        if (strlen(a->id) != len || !authcert_agent_id_valid(a->id))
            return authcert_fail(AUTHCERT_E_CORRUPT,
                                 "%s: not an agent id (1-128 printable ASCII characters "
                                 "without spaces, not \"*\")", a->cfg.id_file);
    }
    if (gethostname(a->hostname, sizeof a->hostname - 1) != 0)
        snprintf(a->hostname, sizeof a->hostname, "unknown");
    return AUTHCERT_OK;
}

authcert_status agent_write_listen_port(agent *a)
{
    char path[4096], line[16];
    authcert_status rc = path_in_state(a, "listen-port", path, sizeof path);
    if (rc != AUTHCERT_OK)
        return rc;
    snprintf(line, sizeof line, "%u\n", (unsigned)a->port);
    return authcert_write_atomic(path, line, strlen(line), 0644);
}

authcert_status agent_key_load(agent *a)
{
    authcert_cert_params cp = { .subject = "CN=authcert-agent", .days = 3650, .tls = true };
    authcert_cert *c = NULL;
    char path[4096];
    size_t len = 0;
    bool created = false;
    authcert_status rc = path_in_state(a, "agent.key", path, sizeof path);

    if (rc != AUTHCERT_OK)
        return rc;
    if ((rc = authcert_key_file_load_or_create(path, a->cfg.key_type, &a->key, &created)) !=
        AUTHCERT_OK)
        return rc;
    if ((rc = authcert_key_pin(a->key, a->key_pin)) != AUTHCERT_OK)
        return rc;
    if (created)
        agent_log(LOG_INFO, "new agent key %s written to %s", a->key_pin, path);
    /* The listener's certificate is made at each start: only its key is
     * pinned (by authcertd), so nothing of it needs keeping. */
    if ((rc = authcert_cert_generate_for(&cp, a->key, &c)) != AUTHCERT_OK)
        return rc;
    rc = authcert_cert_to_pem(c, &a->listen_cert_pem, &len);
    authcert_cert_free(c);
    return rc;
}

/*
 * Nobody but us (or root) may change what the agent trusts or runs: the
 * state folder (its id, key, credential, certificate file), the certificate
 * file wherever it is, the handler program and the folder it is in. A file
 * another user can write is one they can swap for their own certificate or
 * program; the agent refuses to start rather than obey it.
 */
static authcert_status trusted(const char *what, const char *path, bool must_exist)
{
    struct stat st;
    uid_t me = geteuid();

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT && !must_exist)
            return AUTHCERT_OK;
        return authcert_fail(errno == ENOENT ? AUTHCERT_E_NOTFOUND : AUTHCERT_E_IO,
                             "%s %s: %s", what, path, strerror(errno));
    }
    if (S_ISLNK(st.st_mode) && stat(path, &st) != 0)
        return authcert_fail(AUTHCERT_E_IO, "%s %s: %s", what, path, strerror(errno));
    if (st.st_uid != 0 && st.st_uid != me)
        return authcert_fail(AUTHCERT_E_PERM, "%s %s belongs to uid %u, not to us (uid %u) or "
                             "root: refusing to trust it", what, path, (unsigned)st.st_uid,
                             (unsigned)me);
    if ((st.st_mode & 022) != 0 && !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX)))
        return authcert_fail(AUTHCERT_E_PERM, "%s %s is writable by %s (mode %04o): refusing "
                             "to trust it (chmod go-w %s)", what, path,
                             (st.st_mode & 002) != 0 ? "everyone" : "its group",
                             (unsigned)(st.st_mode & 07777), path);
    return AUTHCERT_OK;
}

authcert_status agent_state_check(agent *a)
{
    char dir[4096];
    authcert_status rc;

    if ((rc = trusted("state folder", a->cfg.state_dir, true)) != AUTHCERT_OK)
        return rc;
    if ((rc = trusted("certificate file", a->cfg.cert, false)) != AUTHCERT_OK)
        return rc;
    if (a->cfg.handler != NULL) {
        if ((rc = trusted("handler", a->cfg.handler, true)) != AUTHCERT_OK)
            return rc;
        snprintf(dir, sizeof dir, "%s", a->cfg.handler);
        if ((rc = trusted("handler's folder", dirname(dir), true)) != AUTHCERT_OK)
            return rc;
    }
    return AUTHCERT_OK;
}
