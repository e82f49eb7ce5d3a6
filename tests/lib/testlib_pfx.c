/* See testlib_pfx.h. OpenSSL's own structures, rewritten and re-encoded. */
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "testlib_pfx.h"

int testlib_pbe_set_iter(X509_ALGOR *alg, int64_t count)
{
    int ok = 0;

    if (OBJ_obj2nid(alg->algorithm) == NID_pbes2) {
        PBE2PARAM *p2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
        PBKDF2PARAM *kdf = p2 != NULL ? ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
                                                                  p2->keyfunc->parameter)
                                      : NULL;
        ok = kdf != NULL && ASN1_INTEGER_set_int64(kdf->iter, count) == 1 &&
             ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), kdf,
                                     &p2->keyfunc->parameter) != NULL &&
             ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBE2PARAM), p2, &alg->parameter) != NULL;
        PBKDF2PARAM_free(kdf);
        PBE2PARAM_free(p2);
    } else {
        PBEPARAM *pbe = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);
        ok = pbe != NULL && ASN1_INTEGER_set_int64(pbe->iter, count) == 1 &&
             ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBEPARAM), pbe, &alg->parameter) != NULL;
        PBEPARAM_free(pbe);
    }
    return ok;
}

/* The first shrouded key bag in p7 (a data safe) rewritten; p7 replaced in safes. */
static int patch_key(STACK_OF(PKCS7) *safes, int i, int64_t count)
{
    STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(sk_PKCS7_value(safes, i));
    PKCS7 *p7 = NULL;
    int done = 0;

    for (int k = 0; k < sk_PKCS12_SAFEBAG_num(bags) && !done; k++) {
        PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, k);
        X509_ALGOR *alg = NULL;

        if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag)
            continue;
        X509_SIG_getm((X509_SIG *)PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
        if (!testlib_pbe_set_iter(alg, count))
            break;
        done = 1;
    }
    if (done && (p7 = PKCS12_pack_p7data(bags)) != NULL) {
        PKCS7_free(sk_PKCS7_value(safes, i)); /* sk_set returns the new one */
        sk_PKCS7_set(safes, i, p7);
        done = 2;
    }
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    return done == 2;
}

uint8_t *testlib_pfx_set_iter(const uint8_t *der, size_t len, testlib_pfx_field field,
                              int64_t count, const char *password, size_t *outlen)
{
    const unsigned char *p = der;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    STACK_OF(PKCS7) *safes = NULL;
    const ASN1_INTEGER *mac_iter = NULL;
    const X509_ALGOR *macalg = NULL;
    const ASN1_OBJECT *mac_md = NULL;
    unsigned char *out = NULL;
    int64_t keep_iter = 1;
    int ok = 0, n;

    if (p12 == NULL)
        return NULL;
    PKCS12_get0_mac(NULL, &macalg, NULL, &mac_iter, p12);
    if (mac_iter != NULL && ASN1_INTEGER_get_int64(&keep_iter, mac_iter) != 1)
        goto out;
    if (field == TESTLIB_PFX_MAC) {
        /* A patch in place: the MAC no longer matches, as it would not for an attacker. */
        ok = mac_iter != NULL && ASN1_INTEGER_set_int64((ASN1_INTEGER *)mac_iter, count) == 1;
        goto encode;
    }
    if ((safes = PKCS12_unpack_authsafes(p12)) == NULL)
        goto out;
    for (int i = 0; i < sk_PKCS7_num(safes) && !ok; i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        if (field == TESTLIB_PFX_SAFE && PKCS7_type_is_encrypted(p7))
            ok = testlib_pbe_set_iter(p7->d.encrypted->enc_data->algorithm, count);
        else if (field == TESTLIB_PFX_KEY && PKCS7_type_is_data(p7))
            ok = patch_key(safes, i, count);
    }
    /* The MAC covers the safes: redo it, cheaply, at the file's own count. */
    X509_ALGOR_get0(&mac_md, NULL, NULL, macalg);
    ok = ok && PKCS12_pack_authsafes(p12, safes) == 1 &&
         PKCS12_set_mac(p12, password, -1, NULL, 0, (int)keep_iter,
                        EVP_get_digestbyobj(mac_md)) == 1;
encode:
    if (ok && (n = i2d_PKCS12(p12, &out)) > 0) {
        *outlen = (size_t)n;
    } else {
        OPENSSL_free(out);
        out = NULL;
    }
out:
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
    return out;
}
