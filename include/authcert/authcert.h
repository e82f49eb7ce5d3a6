/*
 * authcert/authcert.h — everything, and the library's set-up.
 */
#ifndef AUTHCERT_AUTHCERT_H
#define AUTHCERT_AUTHCERT_H

#include "authcert/error.h"
#include "authcert/fsutil.h"
#include "authcert/cert.h"
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
void authcert_cleanup(void);

const char *authcert_version(void);

#ifdef __cplusplus
}
#endif
#endif
