/*
 * Carrying out a verified command: the built-in ones (ping, update-key),
 * and the operator's handler program for everything else.
 *
 * The handler is started with posix_spawn (no shell: the command name is
 * argv[1], never parsed), in its own process group so that a timeout kills
 * whatever it started, with the signal mask and dispositions reset (the
 * daemon blocks SIGTERM/SIGINT/SIGHUP and ignores SIGPIPE, and a child
 * would inherit both). The verified claims are its stdin as one JSON
 * object; its stdout (first AGENT_OUTPUT_MAX bytes) is the result's output;
 * its stderr goes to ours, the agent's log.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "authcert/handoff.h"
#include "daemon.h"

extern char **environ;

static bool utf8_ok(const unsigned char *s, size_t len, size_t *adv)
{
    size_t need;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 1;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        need = 2;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        need = 3;
    else
        return false;
    if (len < need + 1)
        return false;
    for (size_t i = 1; i <= need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return false;
    *adv = need + 1;
    return true;
}

json_t *agent_json_text(const char *data, size_t len, size_t max)
{
    if (len > max)
        len = max;
    char *copy = calloc(len + 1, 1);
    if (copy == NULL)
        return NULL;
    const unsigned char *s = (const unsigned char *)data;
    size_t i = 0;
    while (i < len) {
        size_t adv = 1;
        if (s[i] < 0x80) {
            copy[i] = s[i] == 0 ? '?' : (char)s[i];
        } else if (utf8_ok(s + i, len - i, &adv)) {
            memcpy(copy + i, s + i, adv);
        } else {
            copy[i] = '?';
        }
        i += adv;
    }
    json_t *j = json_stringn(copy, len);
    if (j == NULL) {
        /* Overlong forms or surrogates passed our quick check: keep ASCII only. */
        for (i = 0; i < len; i++)
            if ((unsigned char)copy[i] >= 0x80)
                copy[i] = '?';
        j = json_stringn(copy, len);
    }
    free(copy);
    return j;
}

static json_t *result(const char *status, int exit_code, const char *output, size_t len)
{
    json_t *out = agent_json_text(output, len, AGENT_OUTPUT_MAX);
    return json_pack("{s:s, s:i, s:o*}", "status", status, "exit", exit_code, "output", out);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* posix_spawn with the child's stdin and stdout on our pipes. */
static int spawn_handler(const agent *a, const char *cmd, int in_rd, int out_wr, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, defaults;
    char env_id[160], env_cmd[300];
    int rc;

    snprintf(env_id, sizeof env_id, "AUTHCERT_AGENT_ID=%s", a->id);
    snprintf(env_cmd, sizeof env_cmd, "AUTHCERT_COMMAND=%s", cmd);
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **envp = calloc(n + 3, sizeof *envp);
    if (envp == NULL)
        return ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "AUTHCERT_AGENT_ID=", 18) != 0 &&
            strncmp(environ[i], "AUTHCERT_COMMAND=", 17) != 0)
            envp[k++] = environ[i];
    envp[k++] = env_id;
    envp[k++] = env_cmd;

    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGHUP);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_rd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out_wr, STDOUT_FILENO);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &defaults);
    posix_spawnattr_setpgroup(&at, 0);
    char *argv[] = {a->cfg.handler, (char *)cmd, NULL};
    rc = posix_spawn(pid, a->cfg.handler, &fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    return rc;
}

/*
 * Feed the claims, collect stdout, wait for the exit, all within the
 * timeout; then SIGKILL the process group.
 */
static json_t *run_handler(agent *a, const json_t *claims, const char *cmd, const char *origin)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    char *input = json_dumps(claims, JSON_COMPACT);
    char *buf = malloc(AGENT_OUTPUT_MAX);
    size_t got = 0, sent = 0, inlen = input != NULL ? strlen(input) : 0;
    json_t *res = NULL;
    pid_t pid = -1;
    int status = 0;
    bool reaped = false, eof = false, timed_out = false;

    if (input == NULL || buf == NULL || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        res = result("failed", -1, "agent: out of resources", 23);
        goto out;
    }
    int e = spawn_handler(a, cmd, in[0], out[1], &pid);
    close(in[0]);
    close(out[1]);
    in[0] = out[1] = -1;
    if (e != 0) {
        agent_log(LOG_ERROR, "%s: cannot start handler %s: %s", origin, a->cfg.handler,
                  strerror(e));
        res = result("failed", -1, "handler could not be started", 28);
        goto out;
    }
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    int64_t deadline = now_ms() + (int64_t)a->cfg.handler_timeout * 1000;
    while (!reaped || !eof) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p[2];
        int np = 0;
        if (in[1] >= 0)
            p[np++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
        if (!eof)
            p[np++] = (struct pollfd){.fd = out[0], .events = POLLIN};
        /* Short polls: the child's exit is noticed by waitpid below. */
        int r = poll(p, (nfds_t)np, left < 50 ? (int)left : 50);
        if (r < 0 && errno != EINTR)
            break;
        for (int i = 0; r > 0 && i < np; i++) {
            if (p[i].revents == 0)
                continue;
            if (p[i].fd == in[1]) {
                ssize_t w = write(in[1], input + sent, inlen - sent);
                if (w > 0)
                    sent += (size_t)w;
                if (w < 0 && errno != EAGAIN && errno != EINTR)
                    sent = inlen; /* the handler closed its stdin: fine */
                if (sent == inlen) {
                    close(in[1]);
                    in[1] = -1;
                }
            } else {
                char tmp[4096];
                ssize_t rd = read(out[0], tmp, sizeof tmp);
                if (rd == 0 || (rd < 0 && errno != EINTR && errno != EAGAIN)) {
                    eof = true;
                } else if (rd > 0) {
                    size_t keep = AGENT_OUTPUT_MAX - got;
                    if ((size_t)rd < keep)
                        keep = (size_t)rd;
                    memcpy(buf + got, tmp, keep);
                    got += keep; /* the rest is read and dropped so the handler never blocks */
                }
            }
        }
        if (!reaped) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                reaped = true;
                /* A grandchild may hold stdout open: read what is there, then stop. */
                fcntl(out[0], F_SETFL, O_NONBLOCK);
                deadline = now_ms() + 100 < deadline ? now_ms() + 100 : deadline;
            }
        }
    }
    kill(-pid, SIGKILL); /* whatever the handler left behind in its group */
    if (!reaped) {
        waitpid(pid, &status, 0);
        reaped = true;
    }
    if (timed_out && !(WIFEXITED(status))) {
        agent_log(LOG_WARN, "%s: handler %s for %s killed after %d s", origin, a->cfg.handler,
                  cmd, a->cfg.handler_timeout);
        res = result("failed", 128 + SIGKILL, buf, got);
    } else if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        agent_log(LOG_INFO, "%s: handler for %s exited %d", origin, cmd, code);
        res = result(code == 0 ? "ok" : "failed", code, buf, got);
    } else {
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        agent_log(LOG_WARN, "%s: handler for %s killed by signal %d", origin, cmd, sig);
        res = result("failed", 128 + sig, buf, got);
    }
out:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    free(input);
    free(buf);
    return res;
}

static json_t *run_once(agent *a, const json_t *claims, const char *origin);

json_t *agent_run_command(agent *a, const json_t *claims, const char *origin)
{
    json_t *res = agent_done_lookup(claims);

    if (res != NULL) {
        /* Delivered again after the server lost our answer: answer again. */
        agent_log(LOG_INFO, "%s: delivery %lld already carried out: its result again, "
                  "nothing run", origin,
                  (long long)json_integer_value(json_object_get(claims, "did")));
        return res;
    }
    res = run_once(a, claims, origin);
    agent_done_record(claims, res);
    return res;
}

static json_t *run_once(agent *a, const json_t *claims, const char *origin)
{
    const char *cmd = json_string_value(json_object_get(claims, "cmd"));

    if (cmd == NULL || cmd[0] == '\0') {
        agent_log(LOG_WARN, "%s: verified token has no cmd: nothing run", origin);
        return result("failed", -1, "no command", 10);
    }
    if (strcmp(cmd, "ping") == 0)
        return result("ok", 0, "pong", 4);
    if (strcmp(cmd, AUTHCERT_HANDOFF_COMMAND) == 0) {
        /* A statement is walked from a check-in answer, never run. */
        agent_log(LOG_WARN, "%s: a hand-off statement as a command: nothing run", origin);
        return result("failed", -1, "a hand-off statement is not a command", 37);
    }
    if (strcmp(cmd, "update-key") == 0) {
        char thumb[65], msg[512];
        authcert_status st = authcert_agent_apply_update_key(a->trust, claims, thumb);
        if (st != AUTHCERT_OK) {
            snprintf(msg, sizeof msg, "update-key refused: %s", authcert_detail());
            agent_log(LOG_ERROR, "%s: %s (the certificate file is unchanged)", origin, msg);
            return result("failed", st, msg, strlen(msg));
        }
        snprintf(msg, sizeof msg, "certificate %s installed", thumb);
        agent_log(LOG_INFO, "%s: %s in %s", origin, msg, a->cfg.cert);
        return result("ok", 0, msg, strlen(msg));
    }
    if (a->cfg.handler == NULL) {
        agent_log(LOG_WARN, "%s: command %.64s: no handler configured", origin, cmd);
        return result("failed", -1, "no handler", 10);
    }
    return run_handler(a, claims, cmd, origin);
}
