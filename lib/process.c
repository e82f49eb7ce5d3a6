/*
 * The process's own protection (authcert/authcert.h): no core dumps, not
 * dumpable. A core of authcert holds the store's password and private keys
 * in clear, one of authcertd its signing key and the server secret, one of
 * the agent its key and MAC key; whoever can read /var/crash or the
 * process's folder would get them.
 */
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "authcert/authcert.h"
#include "internal.h"

authcert_status authcert_no_core_dumps(void)
{
    struct rlimit none = { 0, 0 };

    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return authcert_fail(AUTHCERT_E_IO, "no core dumps: setrlimit(RLIMIT_CORE): %s",
                             strerror(errno));
    /* Also covers a core_pattern pipe (systemd-coredump, apport), which
     * RLIMIT_CORE 0 does not stop on every kernel. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return authcert_fail(AUTHCERT_E_IO, "no core dumps: prctl(PR_SET_DUMPABLE): %s",
                             strerror(errno));
    return AUTHCERT_OK;
}
