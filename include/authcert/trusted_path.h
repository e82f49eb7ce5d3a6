/*
 * authcert/trusted_path.h — is a path safe from other users (as OpenSSH's
 * StrictModes asks of ~/.ssh)? A store, a registry file, a password file
 * is only as safe as every folder above it: a user who can write one of
 * them can swap what is below for their own (a store.json naming their
 * certificate, a keys/ folder with the real key linked back in).
 */
#ifndef AUTHCERT_TRUSTED_PATH_H
#define AUTHCERT_TRUSTED_PATH_H

#include <stdbool.h>
#include <sys/types.h>

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * PATH (a folder or a file that exists), every folder above it as written,
 * and every folder above where it really is (symbolic links resolved), are
 * owned by root or OWNER and writable by neither group nor others; a
 * folder above may be writable by all when it is root's and has the sticky
 * bit (/tmp: there only an entry's owner can rename or remove it). PATH
 * itself never may. Errors: AUTHCERT_E_PERM, the detail naming the first
 * path that is not safe, who may change it, and the fix;
 * AUTHCERT_E_NOTFOUND, AUTHCERT_E_IO.
 */
AUTHCERT_MUST_CHECK authcert_status authcert_path_trusted(const char *path, uid_t owner);

/*
 * An entry inside a trusted folder, by lstat: not a symbolic link, a
 * folder when want_dir (else a regular file), owned by root or OWNER, not
 * writable by group or others. A missing entry is AUTHCERT_E_NOTFOUND
 * (callers that allow it say so). Errors: AUTHCERT_E_PERM as above.
 */
AUTHCERT_MUST_CHECK authcert_status authcert_entry_trusted(const char *path, uid_t owner,
                                                           bool want_dir);

#ifdef __cplusplus
}
#endif
#endif
