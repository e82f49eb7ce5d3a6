/*
 * Private to lib/store: PKCS#12 import with a shared budget of key-derivation
 * iterations, so that a backup's members are capped together, not only one
 * by one (lib/store/backup_read.c).
 */
#ifndef AUTHCERT_PKCS12_INTERNAL_H
#define AUTHCERT_PKCS12_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "authcert/pkcs12.h"

/*
 * authcert_pkcs12_import, charging every iteration count the file asks for
 * to *left (each count still at most AUTHCERT_PKCS12_MAX_ITER) and refusing
 * before the derivation that would overdraw it. The authcert_pkcs12_import
 * budget is AUTHCERT_PKCS12_MAX_TOTAL_ITER.
 */
AUTHCERT_MUST_CHECK authcert_status
pkcs12_import_budget(const uint8_t *der, size_t len, const char *password, uint64_t *left,
                     authcert_cert **out);

#endif
