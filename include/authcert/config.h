/*
 * authcert/config.h — the daemons' configuration files.
 *
 * One setting a line, `key = value`, with the same names as the long
 * options; blank lines and lines starting with # are ignored, spaces around
 * key and value are not part of them. Both daemons read the file first and
 * let the command line override it.
 */
#ifndef AUTHCERT_CONFIG_H
#define AUTHCERT_CONFIG_H

#include "authcert/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHCERT_CONFIG_LINE_MAX 4096

/*
 * Called once per setting; where is "PATH:LINE" for messages. A status
 * other than AUTHCERT_OK stops the reading and is returned.
 */
typedef authcert_status (*authcert_config_cb)(void *ctx, const char *key, const char *value,
                                              const char *where);

/*
 * Read the file at path and call cb for each setting, in order.
 * Errors: AUTHCERT_E_NOTFOUND, AUTHCERT_E_IO (the file), AUTHCERT_E_CORRUPT
 * ("PATH:LINE: want key = value", a line longer than
 * AUTHCERT_CONFIG_LINE_MAX, a NUL byte), or what cb returned.
 */
AUTHCERT_MUST_CHECK authcert_status
authcert_config_read(const char *path, authcert_config_cb cb, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
