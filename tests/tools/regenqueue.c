/*
 * regenqueue — queue a command in a registry from the shell, for the
 * daemon's tests (the admin tool's --push does this for operators).
 *
 *   regenqueue DB AGENT_ID COMMAND [ARGS_JSON]   prints the command id
 *
 * A test tool: it prints and exits, which the library never does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "authcert/authcert.h"
#include "authcert/registry.h"

int main(int argc, char **argv)
{
    authcert_registry *reg = NULL;
    int64_t id = 0;
    authcert_status st;

    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: regenqueue DB AGENT_ID COMMAND [ARGS_JSON]\n");
        return 2;
    }
    if ((st = authcert_registry_open(argv[1], &reg)) != AUTHCERT_OK ||
        (st = authcert_registry_enqueue(reg, argv[2], argv[3], argc == 5 ? argv[4] : NULL,
                                        time(NULL), &id)) != AUTHCERT_OK) {
        fprintf(stderr, "regenqueue: %s (%s)\n", authcert_strerror(st), authcert_detail());
        authcert_registry_close(reg);
        return 1;
    }
    printf("%" PRId64 "\n", id);
    authcert_registry_close(reg);
    return 0;
}
