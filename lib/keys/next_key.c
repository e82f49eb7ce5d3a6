/*
 * Pre-rotation's successor key, sealed (authcert/next_key.h): PKCS#8
 * encrypted with PBES2 (scrypt, AES-256-CBC) by OpenSSL, beside its public
 * key in the clear.
 *
 * Why scrypt at N = 2^14, r = 8, p = 2: OpenSSL reads a PBES2-scrypt key
 * with at most 32 MiB of scrypt memory (its own default, which `openssl
 * pkey` uses too), so N = 2^15 at r = 8 would be unreadable by it; p = 2
 * doubles the work of `openssl pkcs8 -scrypt`'s default within that memory,
 * about the store password hash's (~0.1 s here). p = 8 made every -c with a
 * commitment cost a second (a seal and an unseal) for little: the recovery
 * secret's strength (zxcvbn, as the store password's) is what holds against
 * a stolen file.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "authcert/next_key.h"
#include "internal.h"

#define SCRYPT_N (1u << 14)
#define SCRYPT_R 8
#define SCRYPT_P 2

struct authcert_next_key {
    EVP_PKEY *pub;
    X509_SIG *sealed;
    authcert_key_type type;
    char hash[AUTHCERT_SPKI_HASH_LEN + 1];
};

void authcert_next_key_free(authcert_next_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pub);
    X509_SIG_free(k->sealed);
    OPENSSL_free(k);
}

const char *authcert_next_key_hash(const authcert_next_key *k)
{
    return k->hash;
}

authcert_key_type authcert_next_key_type(const authcert_next_key *k)
{
    return k->type;
}

/* Never prompt for a pass phrase (OpenSSL's default callback reads the terminal). */
static int no_prompt(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

/* The public half of priv, as a key of its own. */
static authcert_status public_of(EVP_PKEY *priv, EVP_PKEY **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    unsigned char *der = NULL;
    const unsigned char *p;
    int len;

    len = i2d_PUBKEY(priv, &der);
    if (len <= 0)
        FAIL_OSSL(AUTHCERT_E_CRYPTO, "next key: public key");
    p = der;
    GUARD_OSSL_PTR(*out = d2i_PUBKEY(NULL, &p, len), "next key: public key");
    rc = AUTHCERT_OK;
out:
    OPENSSL_free(der);
    return rc;
}

static authcert_status finish(authcert_next_key *k)
{
    k->type = authcert_key_type_of(k->pub);
    if (k->type == AUTHCERT_KEY_UNKNOWN)
        return authcert_fail(AUTHCERT_E_CORRUPT, "next key: not a supported key type");
    return authcert_spki_sha256(k->pub, k->hash);
}

authcert_status authcert_next_key_generate(authcert_key_type type, const char *secret,
                                           authcert_next_key **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_next_key *k = NULL;
    EVP_PKEY *priv = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509_ALGOR *pbe = NULL;
    size_t slen;

    *out = NULL;
    if (secret == NULL || (slen = strlen(secret)) == 0 || slen > INT_MAX)
        FAIL(AUTHCERT_E_USAGE, "next key: no recovery secret");
    GUARD(authcert_key_generate(type, &priv));
    GUARD_ALLOC(k = OPENSSL_zalloc(sizeof *k));
    GUARD(public_of(priv, &k->pub));
    GUARD(finish(k));
    GUARD_OSSL_PTR(p8 = EVP_PKEY2PKCS8(priv), "next key: PKCS#8");
    /* NULL salt and IV: random ones of the default lengths. */
    GUARD_OSSL_PTR(pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, SCRYPT_N,
                                               SCRYPT_R, SCRYPT_P),
                   "next key: scrypt parameters");
    GUARD_OSSL_PTR(k->sealed = PKCS8_set0_pbe(secret, (int)slen, p8, pbe), "next key: seal");
    pbe = NULL; /* owned by k->sealed now */
    *out = k;
    k = NULL;
    rc = AUTHCERT_OK;
out:
    X509_ALGOR_free(pbe);
    PKCS8_PRIV_KEY_INFO_free(p8); /* frees its copy of the key wiped (ASN1_SFLG) */
    EVP_PKEY_free(priv);
    authcert_next_key_free(k);
    return rc;
}

/*
 * The sealed block is PBES2 with scrypt at our parameters and AES-256-CBC,
 * nothing else: a file from elsewhere (an import, a backup) must not make
 * the next -c run PBKDF2 for a billion rounds or scrypt for gigabytes.
 */
static bool our_sealing(const X509_SIG *sealed)
{
    const X509_ALGOR *alg = NULL;
    const ASN1_OCTET_STRING *digest = NULL;
    PBE2PARAM *pbe2 = NULL;
    SCRYPT_PARAMS *sp = NULL;
    uint64_t n = 0, r = 0, p = 0;
    bool ok = false;

    X509_SIG_get0(sealed, &alg, &digest);
    if (alg == NULL || OBJ_obj2nid(alg->algorithm) != NID_pbes2 || alg->parameter == NULL)
        goto out;
    pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
    if (pbe2 == NULL || OBJ_obj2nid(pbe2->keyfunc->algorithm) != NID_id_scrypt
        || OBJ_obj2nid(pbe2->encryption->algorithm) != NID_aes_256_cbc
        || pbe2->keyfunc->parameter == NULL)
        goto out;
    sp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), pbe2->keyfunc->parameter);
    ok = sp != NULL && ASN1_INTEGER_get_uint64(&n, sp->costParameter) == 1
         && ASN1_INTEGER_get_uint64(&r, sp->blockSize) == 1
         && ASN1_INTEGER_get_uint64(&p, sp->parallelizationParameter) == 1
         && n == SCRYPT_N && r == SCRYPT_R && p == SCRYPT_P;
out:
    SCRYPT_PARAMS_free(sp);
    PBE2PARAM_free(pbe2);
    ERR_clear_error();
    return ok;
}

authcert_status authcert_next_key_from_pem(const char *pem, size_t len, authcert_next_key **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_next_key *k = NULL;
    BIO *bio = NULL;

    *out = NULL;
    if (pem == NULL || len == 0 || len > AUTHCERT_NEXT_KEY_MAX)
        FAIL(AUTHCERT_E_CORRUPT, "next key: a file of %zu bytes", len);
    GUARD_ALLOC(k = OPENSSL_zalloc(sizeof *k));
    GUARD_OSSL_PTR(bio = BIO_new_mem_buf(pem, (int)len), "BIO");
    /* In this order: the public key, then the sealed private key. */
    k->pub = PEM_read_bio_PUBKEY(bio, NULL, no_prompt, NULL);
    if (k->pub == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "next key: no PUBLIC KEY block first");
    k->sealed = PEM_read_bio_PKCS8(bio, NULL, no_prompt, NULL);
    if (k->sealed == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "next key: no ENCRYPTED PRIVATE KEY block after the public key");
    if (!our_sealing(k->sealed))
        FAIL(AUTHCERT_E_CORRUPT, "next key: not sealed as authcert seals (PBES2, scrypt "
             "N=%u r=%d p=%d, AES-256-CBC)", SCRYPT_N, SCRYPT_R, SCRYPT_P);
    GUARD(finish(k));
    *out = k;
    k = NULL;
    rc = AUTHCERT_OK;
out:
    ERR_clear_error();
    BIO_free(bio);
    authcert_next_key_free(k);
    return rc;
}

authcert_status authcert_next_key_to_pem(const authcert_next_key *k, char **pem, size_t *len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    BIO *bio = NULL;
    char *data = NULL;
    long n;

    *pem = NULL;
    *len = 0;
    GUARD_OSSL_PTR(bio = BIO_new(BIO_s_mem()), "BIO");
    GUARD_OSSL(PEM_write_bio_PUBKEY(bio, k->pub), "next key: PEM public key");
    GUARD_OSSL(PEM_write_bio_PKCS8(bio, k->sealed), "next key: PEM sealed key");
    n = BIO_get_mem_data(bio, &data);
    if (n <= 0)
        FAIL(AUTHCERT_E_CRYPTO, "next key: empty PEM");
    GUARD_ALLOC(*pem = OPENSSL_malloc((size_t)n + 1));
    memcpy(*pem, data, (size_t)n);
    (*pem)[n] = '\0';
    *len = (size_t)n;
    rc = AUTHCERT_OK;
out:
    BIO_free(bio);
    return rc;
}

authcert_status authcert_next_key_unseal(const authcert_next_key *k, const char *secret,
                                         EVP_PKEY **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    EVP_PKEY *priv = NULL;
    size_t slen;

    *out = NULL;
    if (secret == NULL || (slen = strlen(secret)) == 0 || slen > INT_MAX)
        FAIL(AUTHCERT_E_USAGE, "next key: no recovery secret");
    /* A wrong secret decrypts to garbage whose padding or DER fails. */
    p8 = PKCS8_decrypt(k->sealed, secret, (int)slen);
    if (p8 == NULL)
        FAIL(AUTHCERT_E_AUTH, "the recovery secret does not open the sealed next key");
    priv = EVP_PKCS82PKEY(p8);
    if (priv == NULL)
        FAIL(AUTHCERT_E_AUTH, "the recovery secret does not open the sealed next key");
    if (EVP_PKEY_eq(priv, k->pub) != 1)
        FAIL(AUTHCERT_E_CORRUPT, "the sealed next key is not the key its public block names");
    *out = priv;
    priv = NULL;
    rc = AUTHCERT_OK;
out:
    ERR_clear_error();
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(priv);
    return rc;
}
