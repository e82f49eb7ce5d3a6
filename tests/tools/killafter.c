/*
 * killafter USEC PROGRAM [ARG...]
 *
 * Run PROGRAM and send it SIGKILL USEC microseconds after it was started,
 * if it is still running: a crash at a chosen moment, for the crash tests
 * (tests/e2e/crash_*.bats). A shell's `sleep` and `kill` add milliseconds of
 * their own; this keeps the delay within a few tens of microseconds.
 *
 * Exit status: the program's own when it finished first, 137 (128 + SIGKILL)
 * when it was killed, 127 when it could not be started. Prints "killed" or
 * "finished" on standard error when AUTHCERT_KILLAFTER_VERBOSE is set.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int status_of(int ws)
{
    if (WIFEXITED(ws))
        return WEXITSTATUS(ws);
    if (WIFSIGNALED(ws))
        return 128 + WTERMSIG(ws);
    return 1;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long usec;
    struct timespec start, now;
    pid_t pid;
    int ws = 0;

    if (argc < 3 || (usec = strtoul(argv[1], &end, 10), *end != '\0')) {
        fprintf(stderr, "usage: killafter USEC PROGRAM [ARG...]\n");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid = fork();
    if (pid < 0) {
        perror("killafter: fork");
        return 127;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "killafter: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    /* Poll with a short sleep: waitpid has no timeout, and a timer signal
     * would race with the child's exit just the same. */
    for (;;) {
        pid_t r = waitpid(pid, &ws, WNOHANG);
        long long elapsed;

        if (r == pid) {
            if (getenv("AUTHCERT_KILLAFTER_VERBOSE") != NULL)
                fprintf(stderr, "finished\n");
            return status_of(ws);
        }
        if (r < 0 && errno != EINTR) {
            perror("killafter: waitpid");
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (long long)(now.tv_sec - start.tv_sec) * 1000000LL
                  + (now.tv_nsec - start.tv_nsec) / 1000;
        if (elapsed >= (long long)usec)
            break;
        {
            long long left = (long long)usec - elapsed;
            struct timespec nap = { 0, (long)(left < 200 ? left : 200) * 1000L };
            nanosleep(&nap, NULL);
        }
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (getenv("AUTHCERT_KILLAFTER_VERBOSE") != NULL)
        fprintf(stderr, WIFSIGNALED(ws) ? "killed\n" : "finished\n");
    return status_of(ws);
}
