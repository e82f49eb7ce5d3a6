/* Library set-up: OpenSSL's providers. */
#include <openssl/provider.h>

#include "authcert/authcert.h"
#include "internal.h"

static OSSL_PROVIDER *prov_default;
static OSSL_PROVIDER *prov_legacy;

authcert_status authcert_init(void)
{
    return authcert_init_with(AUTHCERT_INIT_LEGACY);
}

authcert_status authcert_init_with(unsigned flags)
{
    if (prov_default == NULL)
        prov_default = OSSL_PROVIDER_load(NULL, "default");
    if (prov_default == NULL)
        return authcert_fail_ossl(AUTHCERT_E_CRYPTO, "load OpenSSL default provider");
    if (!(flags & AUTHCERT_INIT_LEGACY))
        return AUTHCERT_OK;
    /* Legacy is optional: without it only legacy PFX imports fail. */
    if (prov_legacy == NULL)
        prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
    if (prov_legacy == NULL)
        authcert_clear_detail();
    return AUTHCERT_OK;
}

void authcert_cleanup(void)
{
    if (prov_legacy != NULL)
        OSSL_PROVIDER_unload(prov_legacy);
    if (prov_default != NULL)
        OSSL_PROVIDER_unload(prov_default);
    prov_legacy = prov_default = NULL;
}

const char *authcert_version(void)
{
    return AUTHCERT_VERSION;
}
