/*
 * fakefleet — register many agents straight into a registry, for tests and
 * benchmarks of what reads it (authcert -l, --agents, /metrics).
 *
 *   fakefleet REGISTRY PREFIX COUNT THUMBPRINT [COUNT THUMBPRINT]...
 *
 * Agents are named PREFIX-<n> (hostname host-<n>, address 127.0.0.1, port
 * 0) and report the thumbprint of their group; "-" reports none. Batches of
 * 5,000 per transaction, as authcertd writes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authcert/authcert.h"

#define BATCH 5000

int main(int argc, char **argv)
{
    static char ids[BATCH][64], hosts[BATCH][32];
    static authcert_agent_report r[BATCH];
    authcert_registry *reg = NULL;
    authcert_status rc;
    unsigned long long serial = 0;
    size_t n = 0;

    if (argc < 5 || (argc - 3) % 2 != 0) {
        fprintf(stderr, "usage: fakefleet REGISTRY PREFIX COUNT THUMBPRINT [COUNT THUMBPRINT]...\n");
        return 2;
    }
    if ((rc = authcert_registry_open(argv[1], &reg)) != AUTHCERT_OK)
        goto fail;
    for (int g = 3; g < argc; g += 2) {
        unsigned long long count = strtoull(argv[g], NULL, 10);
        const char *thumb = strcmp(argv[g + 1], "-") == 0 ? "" : argv[g + 1];
        for (unsigned long long k = 0; k < count; k++, serial++) {
            snprintf(ids[n], sizeof ids[n], "%s-%llu", argv[2], serial);
            snprintf(hosts[n], sizeof hosts[n], "host-%llu", serial);
            r[n] = (authcert_agent_report){ .agent_id = ids[n], .hostname = hosts[n],
                                            .address = "127.0.0.1", .port = 0,
                                            .thumbprint = thumb, .version = "fake" };
            if (++n == BATCH) {
                if ((rc = authcert_registry_checkin_batch(reg, r, n, time(NULL))) != AUTHCERT_OK)
                    goto fail;
                n = 0;
            }
        }
    }
    if (n > 0 && (rc = authcert_registry_checkin_batch(reg, r, n, time(NULL))) != AUTHCERT_OK)
        goto fail;
    authcert_registry_close(reg);
    return 0;
fail:
    fprintf(stderr, "fakefleet: %s (%s)\n", authcert_strerror(rc), authcert_detail());
    authcert_registry_close(reg);
    return 1;
}
