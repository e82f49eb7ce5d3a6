/*
 * authcert/authcert.h — everything, and the library's set-up.
 */
#ifndef AUTHCERT_AUTHCERT_H
#define AUTHCERT_AUTHCERT_H

#include "authcert/error.h"
#include "authcert/fsutil.h"
#include "authcert/cert.h"
#include "authcert/cert_policy.h"
#include "authcert/commitment.h"
#include "authcert/next_key.h"
#include "authcert/pkcs12.h"
#include "authcert/password.h"
#include "authcert/store.h"
#include "authcert/backup.h"
#include "authcert/base64url.h"
#include "authcert/replay.h"
#include "authcert/jws.h"
#include "authcert/registry.h"
#include "authcert/csv.h"
#include "authcert/mismatch.h"
#include "authcert/agent.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Load OpenSSL's default and legacy providers (legacy PFX files exported by
 * Windows use RC2 and 3DES; loading legacy alone breaks every PKCS#12).
 * Call once at start; authcert_cleanup unloads them at exit.
 */
AUTHCERT_MUST_CHECK authcert_status authcert_init(void);

/* authcert_init's optional parts, for authcert_init_with. */
#define AUTHCERT_INIT_LEGACY 1u /* the legacy provider: only PFX import needs it */

/*
 * As authcert_init, with only the parts FLAGS names beyond the default
 * provider. The daemons pass 0: a process that verifies or signs commands
 * has no use for RC2, MD4 or DES, so they are not in its address space.
 */
AUTHCERT_MUST_CHECK authcert_status authcert_init_with(unsigned flags);
void authcert_cleanup(void);

/*
 * Keep this process's memory (passwords, private keys, MAC keys) out of
 * core dumps and away from same-user debuggers: no core is written
 * (RLIMIT_CORE 0) and the process is not dumpable (PR_SET_DUMPABLE 0, which
 * also makes /proc/PID/mem and ptrace root's only). A program it execs is
 * dumpable again (the agent's handler). authcert, authcertd and
 * authcert-agent call it first thing. Errors: AUTHCERT_E_IO (the kernel
 * refused; the detail says which).
 */
AUTHCERT_MUST_CHECK authcert_status authcert_no_core_dumps(void);

const char *authcert_version(void);

#ifdef __cplusplus
}
#endif
#endif
