/*
 * The certificate policy (authcert/cert_policy.h) where the admin tool makes
 * a certificate current: -c (a generated certificate, checked anyway), -i
 * (a PFX; an expired one only as expired) and -r/-re (the backup's current
 * one, before the store is opened). The library decides; this file only
 * adds what the operator can do about a refusal.
 */
#include "tool.h"

authcert_status tool_cert_policy(const authcert_cert *c, bool current, const char *expired_hint)
{
    authcert_cert_policy p = {.any_dates = !current};
    authcert_cert_refusal why = AUTHCERT_CERT_ACCEPTABLE;
    authcert_status rc;

    rc = authcert_cert_check_policy(c, &p, &why);
    if (rc == AUTHCERT_E_POLICY && why == AUTHCERT_CERT_EXPIRED && expired_hint != NULL)
        rc = authcert_fail(rc, "%s: %s", authcert_detail(), expired_hint);
    return rc;
}

void tool_warn_key_change(const struct tool_opts *o, const authcert_store *s,
                          const authcert_cert *c)
{
    const authcert_store_entry *cur = authcert_store_current(s);
    authcert_cert_policy p = {.any_dates = true};
    authcert_cert_refusal why = AUTHCERT_CERT_ACCEPTABLE;

    if (cur == NULL || cur->cert == NULL)
        return;
    p.trusted = cur->cert;
    /* The rest of the policy has passed already: only the key family can fail. */
    if (authcert_cert_check_policy(c, &p, &why) == AUTHCERT_OK || why != AUTHCERT_CERT_KEY_CHANGE)
        return;
    authcert_clear_detail();
    tool_warn(o, "agents refuse a key update from key type %s to %s: copy the agent "
              "certificate file (-e) to each of them",
              authcert_key_type_name(authcert_cert_key_type(cur->cert)),
              authcert_key_type_name(authcert_cert_key_type(c)));
}
