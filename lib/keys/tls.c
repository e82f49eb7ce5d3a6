/*
 * Keys and certificates for TLS between authcertd and its agents: pins,
 * private key files checked before use, the server's certificate files
 * (authcert/tls.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>

#include "authcert/fsutil.h"
#include "authcert/tls.h"
#include "internal.h"

#define KEY_FILE_MAX (64 * 1024)
#define CERT_FILE_MAX (1024 * 1024)

authcert_status authcert_key_pin(EVP_PKEY *key, char out[AUTHCERT_PIN_LEN + 1])
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    unsigned char *der = NULL, md[32];
    int len;

    out[0] = '\0';
    if (key == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "pin: no key");
    /* i2d_PUBKEY: the SubjectPublicKeyInfo, the public half even of a private key. */
    if ((len = i2d_PUBKEY(key, &der)) <= 0)
        FAIL_OSSL(AUTHCERT_E_CRYPTO, "pin: encode the public key");
    GUARD_OSSL(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL), "pin: SHA-256");
    memcpy(out, AUTHCERT_PIN_PREFIX, 8);
    if (EVP_EncodeBlock((unsigned char *)out + 8, md, (int)sizeof md) != 44)
        FAIL(AUTHCERT_E_CRYPTO, "pin: base64");
    out[AUTHCERT_PIN_LEN] = '\0';
    rc = AUTHCERT_OK;
out:
    OPENSSL_free(der);
    return rc;
}

static X509 *read_cert(const void *cert, size_t len)
{
    const unsigned char *p = cert;
    BIO *bio;
    X509 *x;

    if (len > INT32_MAX)
        return NULL;
    if (len > 10 && memmem(cert, len, "-----BEGIN", 10) != NULL) {
        if ((bio = BIO_new_mem_buf(cert, (int)len)) == NULL)
            return NULL;
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        return x;
    }
    return d2i_X509(NULL, &p, (long)len);
}

authcert_status authcert_cert_pin(const void *cert, size_t len, char out[AUTHCERT_PIN_LEN + 1])
{
    X509 *x = read_cert(cert, len);
    authcert_status rc;

    out[0] = '\0';
    if (x == NULL)
        return authcert_fail_ossl(AUTHCERT_E_CORRUPT, "not a certificate");
    rc = authcert_key_pin(X509_get0_pubkey(x), out);
    X509_free(x);
    return rc;
}

void authcert_names_free(char **names)
{
    for (size_t i = 0; names != NULL && names[i] != NULL; i++)
        free(names[i]);
    free(names);
}

authcert_status authcert_cert_alt_names(const void *cert, size_t len, char ***dns, char ***ips)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    X509 *x = read_cert(cert, len);
    GENERAL_NAMES *gens = NULL;
    char **d = NULL, **a = NULL;
    size_t nd = 0, na = 0;
    int n;

    *dns = *ips = NULL;
    if (x == NULL)
        FAIL_OSSL(AUTHCERT_E_CORRUPT, "not a certificate");
    gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;
    GUARD_ALLOC(d = calloc((size_t)n + 1, sizeof *d));
    GUARD_ALLOC(a = calloc((size_t)n + 1, sizeof *a));
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char text[INET6_ADDRSTRLEN];
        if (g->type == GEN_DNS) {
            const ASN1_IA5STRING *s = g->d.dNSName;
            GUARD_ALLOC(d[nd] = strndup((const char *)ASN1_STRING_get0_data(s),
                                        (size_t)ASN1_STRING_length(s)));
            nd++;
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *o = g->d.iPAddress;
            int fam = ASN1_STRING_length(o) == 4 ? AF_INET : AF_INET6;
            if ((ASN1_STRING_length(o) != 4 && ASN1_STRING_length(o) != 16) ||
                inet_ntop(fam, ASN1_STRING_get0_data(o), text, sizeof text) == NULL)
                continue;
            GUARD_ALLOC(a[na] = strdup(text));
            na++;
        }
    }
    *dns = d;
    *ips = a;
    d = a = NULL;
    rc = AUTHCERT_OK;
out:
    authcert_names_free(d);
    authcert_names_free(a);
    GENERAL_NAMES_free(gens);
    X509_free(x);
    return rc;
}

bool authcert_pin_valid(const char *s)
{
    unsigned char buf[36];

    if (s == NULL || strlen(s) != AUTHCERT_PIN_LEN || strncmp(s, AUTHCERT_PIN_PREFIX, 8) != 0)
        return false;
    for (const char *c = s + 8; *c != '\0'; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '+' || *c == '/' || (*c == '=' && c[1] == '\0')))
            return false;
    /* 44 characters with one '=' of padding: exactly 32 bytes. */
    return s[AUTHCERT_PIN_LEN - 1] == '=' && s[AUTHCERT_PIN_LEN - 2] != '=' &&
           EVP_DecodeBlock(buf, (const unsigned char *)s + 8, 44) == 33;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return 0;
}

static bool tls_key_ok(EVP_PKEY *k)
{
    if (EVP_PKEY_is_a(k, "ED25519"))
        return true;
    if (EVP_PKEY_is_a(k, "RSA"))
        return EVP_PKEY_get_bits(k) >= 2048;
    if (EVP_PKEY_is_a(k, "EC")) {
        char curve[32] = "";
        size_t n = 0;
        if (EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof curve, &n) != 1)
            return false;
        return strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0 ||
               strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0;
    }
    return false;
}

static authcert_status parse_key(const char *path, const char *pem, size_t len, EVP_PKEY **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    BIO *bio = NULL;
    EVP_PKEY *k = NULL;

    GUARD_OSSL_PTR(bio = BIO_new_mem_buf(pem, (int)len), "BIO");
    if ((k = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL)) == NULL)
        FAIL_OSSL(AUTHCERT_E_CORRUPT, "%s: not an unencrypted PEM private key", path);
    if (!tls_key_ok(k))
        FAIL(AUTHCERT_E_CORRUPT, "%s: a key type we do not use (P-256, P-384, Ed25519, "
             "RSA of 2048 bits or more)", path);
    *out = k;
    k = NULL;
    rc = AUTHCERT_OK;
out:
    EVP_PKEY_free(k);
    BIO_free(bio);
    return rc;
}

authcert_status authcert_key_file_load(const char *path, EVP_PKEY **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char *pem = NULL;
    size_t len = 0;

    *out = NULL;
    GUARD(authcert_read_private(path, KEY_FILE_MAX, (uint8_t **)&pem, &len));
    GUARD(parse_key(path, pem, len, out));
    rc = AUTHCERT_OK;
out:
    OPENSSL_clear_free(pem, len);
    return rc;
}

authcert_status authcert_key_file_load_or_create(const char *path, authcert_key_type type,
                                                 EVP_PKEY **out, bool *created)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    EVP_PKEY *k = NULL;
    BIO *bio = NULL;
    char *pem = NULL;
    long n;

    *out = NULL;
    *created = false;
    rc = authcert_key_file_load(path, out);
    if (rc != AUTHCERT_E_NOTFOUND)
        return rc;
    switch (type) {
    case AUTHCERT_KEY_P256: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    case AUTHCERT_KEY_ED25519: k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
    default: FAIL(AUTHCERT_E_USAGE, "%s: a new key is P-256 or Ed25519", path);
    }
    if (k == NULL)
        FAIL_OSSL(AUTHCERT_E_CRYPTO, "%s: generate the key", path);
    GUARD_OSSL_PTR(bio = BIO_new(BIO_s_secmem()), "BIO");
    GUARD_OSSL(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), "encode the key");
    n = BIO_get_mem_data(bio, &pem);
    GUARD(authcert_write_atomic(path, pem, (size_t)n, 0600));
    *out = k;
    k = NULL;
    *created = true;
    rc = AUTHCERT_OK;
out:
    BIO_free(bio); /* a secure-memory BIO: its bytes are wiped */
    EVP_PKEY_free(k);
    return rc;
}

void authcert_tls_files_clear(authcert_tls_files *f)
{
    if (f == NULL)
        return;
    free(f->cert_pem);
    OPENSSL_clear_free(f->key_pem, f->key_len);
    memset(f, 0, sizeof *f);
}

static time_t to_time_t(const ASN1_TIME *t)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

authcert_status authcert_tls_files_load(const char *cert_path, const char *key_path, time_t now,
                                        authcert_tls_files *out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    uint8_t *cert = NULL;
    size_t clen = 0;
    BIO *bio = NULL;
    X509 *leaf = NULL, *more = NULL;
    EVP_PKEY *key = NULL;
    char when[64];

    memset(out, 0, sizeof *out);
    rc = authcert_read_file(cert_path, CERT_FILE_MAX, &cert, &clen);
    if (rc == AUTHCERT_E_NOTFOUND)
        FAIL(rc, "%s: no such certificate file", cert_path);
    if (rc != AUTHCERT_OK)
        goto out;
    GUARD_OSSL_PTR(bio = BIO_new_mem_buf(cert, (int)clen), "BIO");
    if ((leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
        FAIL_OSSL(AUTHCERT_E_CORRUPT, "%s: no PEM certificate in it", cert_path);
    out->chain_len = 1;
    while ((more = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        out->chain_len++;
        X509_free(more);
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    GUARD(authcert_read_private(key_path, KEY_FILE_MAX, (uint8_t **)&out->key_pem, &out->key_len));
    GUARD(parse_key(key_path, out->key_pem, out->key_len, &key));
    if (X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        FAIL(AUTHCERT_E_CORRUPT, "%s: the key does not match the certificate in %s", key_path,
             cert_path);
    }
    out->not_before = to_time_t(X509_get0_notBefore(leaf));
    out->not_after = to_time_t(X509_get0_notAfter(leaf));
    if (now > out->not_after) {
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&out->not_after, &tm));
        FAIL(AUTHCERT_E_POLICY, "%s: the certificate expired on %s (authcert --tls-cert renew)",
             cert_path, when);
    }
    if (now < out->not_before) {
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&out->not_before, &tm));
        FAIL(AUTHCERT_E_POLICY, "%s: the certificate is not valid before %s (is the clock right?)",
             cert_path, when);
    }
    {
        BIO *nb = BIO_new(BIO_s_mem());
        char *p = NULL;
        long n;
        if (nb != NULL && X509_NAME_print_ex(nb, X509_get_subject_name(leaf), 0,
                                             XN_FLAG_RFC2253) >= 0) {
            n = BIO_get_mem_data(nb, &p);
            snprintf(out->subject, sizeof out->subject, "%.*s", (int)n, p);
        }
        BIO_free(nb);
    }
    GUARD(authcert_key_pin(key, out->pin));
    out->cert_pem = (char *)cert;
    out->cert_len = clen;
    cert = NULL;
    rc = AUTHCERT_OK;
out:
    if (rc != AUTHCERT_OK)
        authcert_tls_files_clear(out);
    free(cert);
    BIO_free(bio);
    X509_free(leaf);
    EVP_PKEY_free(key);
    return rc;
}
