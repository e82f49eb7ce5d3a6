/* Server authentication certificates: keys, self-signed X.509 v3, encodings. */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authcert/cert.h"
#include "authcert/commitment.h"
#include "internal.h"

/* Like FAIL, keeping OpenSSL's reason (belongs in internal.h beside FAIL). */
#define MAX_DAYS 36500
#define SERIAL_BYTES 16

struct authcert_cert {
    atomic_int refs;
    X509 *x509;
    EVP_PKEY *pkey;   /* private key, or NULL */
    EVP_PKEY *pub;    /* borrowed from x509 */
    uint8_t *der;
    size_t der_len;
    authcert_key_type type;
    char thumbprint[AUTHCERT_THUMBPRINT_LEN + 1];
};

static const struct {
    authcert_key_type type;
    const char *name;
} key_names[] = {
    { AUTHCERT_KEY_ED25519, "ed25519" },
    { AUTHCERT_KEY_P256,    "p256" },
    { AUTHCERT_KEY_RSA2048, "rsa2048" },
    { AUTHCERT_KEY_RSA3072, "rsa3072" },
    { AUTHCERT_KEY_RSA4096, "rsa4096" },
};

const char *authcert_key_type_name(authcert_key_type t)
{
    for (size_t i = 0; i < sizeof key_names / sizeof key_names[0]; i++)
        if (key_names[i].type == t)
            return key_names[i].name;
    return "unknown";
}

authcert_key_type authcert_key_type_parse(const char *name)
{
    if (name == NULL)
        return AUTHCERT_KEY_UNKNOWN;
    for (size_t i = 0; i < sizeof key_names / sizeof key_names[0]; i++)
        if (strcasecmp(key_names[i].name, name) == 0)
            return key_names[i].type;
    return AUTHCERT_KEY_UNKNOWN;
}

/* Which of our key types pk is; UNKNOWN for anything else (RSA-1024, P-384, RSA-PSS). */
authcert_key_type authcert_key_type_of(const EVP_PKEY *pk)
{
    char group[64];

    if (pk == NULL)
        return AUTHCERT_KEY_UNKNOWN;
    if (EVP_PKEY_is_a(pk, "ED25519"))
        return AUTHCERT_KEY_ED25519;
    if (EVP_PKEY_is_a(pk, "EC")) {
        if (EVP_PKEY_get_group_name(pk, group, sizeof group, NULL) == 1
            && (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
            return AUTHCERT_KEY_P256;
        ERR_clear_error();
        return AUTHCERT_KEY_UNKNOWN;
    }
    if (EVP_PKEY_is_a(pk, "RSA")) {
        switch (EVP_PKEY_get_bits(pk)) {
        case 2048: return AUTHCERT_KEY_RSA2048;
        case 3072: return AUTHCERT_KEY_RSA3072;
        case 4096: return AUTHCERT_KEY_RSA4096;
        default:   return AUTHCERT_KEY_UNKNOWN;
        }
    }
    return AUTHCERT_KEY_UNKNOWN;
}

void authcert_thumbprint_of(const uint8_t *der, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    out[0] = '\0';
    if (EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        ERR_clear_error();
        return;
    }
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[2 * mdlen] = '\0';
}

bool authcert_thumbprint_valid(const char *s)
{
    if (s == NULL)
        return false;
    for (size_t i = 0; i < AUTHCERT_THUMBPRINT_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[AUTHCERT_THUMBPRINT_LEN] == '\0';
}

authcert_status authcert_cert_adopt(X509 *x509, EVP_PKEY *pkey, authcert_cert **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_cert *c = NULL;
    unsigned char *der = NULL;
    int der_len;

    if (out == NULL || x509 == NULL)
        FAIL(AUTHCERT_E_USAGE, "adopt: no certificate");
    *out = NULL;
    GUARD_ALLOC(c = OPENSSL_zalloc(sizeof *c));
    atomic_init(&c->refs, 1);
    c->x509 = x509;
    c->pkey = pkey;
    x509 = NULL;
    pkey = NULL;

    c->pub = X509_get0_pubkey(c->x509);
    if (c->pub == NULL)
        FAIL(AUTHCERT_E_CORRUPT, "certificate public key is unreadable");
    c->type = authcert_key_type_of(c->pub);
    if (c->type == AUTHCERT_KEY_UNKNOWN)
        FAIL(AUTHCERT_E_CORRUPT, "unsupported key type (%s, %d bits)",
             EVP_PKEY_get0_type_name(c->pub) != NULL ? EVP_PKEY_get0_type_name(c->pub) : "?",
             EVP_PKEY_get_bits(c->pub));
    if (c->pkey != NULL && X509_check_private_key(c->x509, c->pkey) != 1) {
        ERR_clear_error();
        FAIL(AUTHCERT_E_CORRUPT, "key does not match certificate");
    }

    der_len = i2d_X509(c->x509, &der);
    if (der_len <= 0)
        FAIL_OSSL(AUTHCERT_E_CORRUPT, "encode certificate");
    c->der = der;
    c->der_len = (size_t)der_len;
    der = NULL;
    authcert_thumbprint_of(c->der, c->der_len, c->thumbprint);
    if (c->thumbprint[0] == '\0')
        FAIL(AUTHCERT_E_CRYPTO, "SHA-256 of the certificate failed");

    *out = c;
    c = NULL;
    rc = AUTHCERT_OK;
out:
    X509_free(x509);
    EVP_PKEY_free(pkey);
    authcert_cert_free(c);
    return rc;
}

authcert_status authcert_cert_from_der(const uint8_t *der, size_t len, authcert_cert **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    X509 *x = NULL;
    const unsigned char *p = der;
    authcert_cert *c = NULL;

    if (out == NULL || (der == NULL && len > 0))
        FAIL(AUTHCERT_E_USAGE, "from_der: no output or input");
    *out = NULL;
    if (len == 0 || len > LONG_MAX)
        FAIL(AUTHCERT_E_CORRUPT, "not a certificate (%zu bytes)", len);
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL)
        FAIL_OSSL(AUTHCERT_E_CORRUPT, "not a DER certificate");
    if ((size_t)(p - der) != len)
        FAIL(AUTHCERT_E_CORRUPT, "%zu bytes of trailing data after the certificate",
             len - (size_t)(p - der));
    /* adopt owns x from here on, refused or not: freeing it again below
     * would be a double free (an unsupported key type got there). */
    rc = authcert_cert_adopt(x, NULL, &c);
    x = NULL;
    GUARD(rc);
    /*
     * The thumbprint names what the file holds: a BER (non-DER) encoding that
     * OpenSSL re-encodes differently would give a name nobody else computes.
     */
    if (c->der_len != len || memcmp(c->der, der, len) != 0)
        FAIL(AUTHCERT_E_CORRUPT, "certificate is not in DER form");
    *out = c;
    c = NULL;
    rc = AUTHCERT_OK;
out:
    X509_free(x);
    authcert_cert_free(c);
    return rc;
}

/* Refuse to prompt for a passphrase: store keys are never PEM-encrypted. */
static int no_password_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

authcert_status authcert_cert_from_pem(const char *cert_pem, size_t cert_len,
                                       const char *key_pem, size_t key_len,
                                       authcert_cert **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;

    if (out == NULL || cert_pem == NULL)
        FAIL(AUTHCERT_E_USAGE, "from_pem: no output or input");
    *out = NULL;
    if (cert_len == 0 || cert_len > INT_MAX || key_len > INT_MAX)
        FAIL(AUTHCERT_E_CORRUPT, "PEM input of %zu bytes", cert_len);
    GUARD_OSSL_PTR(bio = BIO_new_mem_buf(cert_pem, (int)cert_len), "BIO");
    x = PEM_read_bio_X509(bio, NULL, no_password_cb, NULL);
    if (x == NULL)
        FAIL_OSSL(AUTHCERT_E_CORRUPT, "not a PEM certificate");
    BIO_free(bio);
    bio = NULL;
    if (key_pem != NULL) {
        if (key_len == 0)
            FAIL(AUTHCERT_E_CORRUPT, "empty PEM key");
        GUARD_OSSL_PTR(bio = BIO_new_mem_buf(key_pem, (int)key_len), "BIO");
        pk = PEM_read_bio_PrivateKey(bio, NULL, no_password_cb, NULL);
        if (pk == NULL)
            FAIL_OSSL(AUTHCERT_E_CORRUPT, "not an unencrypted PEM private key");
    }
    rc = authcert_cert_adopt(x, pk, out);
    x = NULL;
    pk = NULL;
out:
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

/* The contents of a memory BIO as a NUL-terminated buffer of its own. */
static authcert_status bio_to_buf(BIO *bio, char **buf, size_t *len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *copy = NULL;

    if (n <= 0 || data == NULL)
        FAIL(AUTHCERT_E_CRYPTO, "PEM encoding is empty");
    GUARD_ALLOC(copy = OPENSSL_malloc((size_t)n + 1));
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *buf = copy;
    *len = (size_t)n;
    rc = AUTHCERT_OK;
out:
    return rc;
}

authcert_status authcert_cert_to_pem(const authcert_cert *c, char **pem, size_t *len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    BIO *bio = NULL;

    if (c == NULL || pem == NULL || len == NULL)
        FAIL(AUTHCERT_E_USAGE, "to_pem: missing argument");
    GUARD_OSSL_PTR(bio = BIO_new(BIO_s_mem()), "BIO");
    GUARD_OSSL(PEM_write_bio_X509(bio, c->x509), "PEM-encode certificate");
    GUARD(bio_to_buf(bio, pem, len));
    rc = AUTHCERT_OK;
out:
    BIO_free(bio);
    return rc;
}

authcert_status authcert_cert_key_to_pem(const authcert_cert *c, char **pem, size_t *len)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    BIO *bio = NULL;

    if (c == NULL || pem == NULL || len == NULL)
        FAIL(AUTHCERT_E_USAGE, "key_to_pem: missing argument");
    if (c->pkey == NULL)
        FAIL(AUTHCERT_E_USAGE, "certificate %s has no private key", c->thumbprint);
    /* A secure-heap BIO is wiped when freed. */
    GUARD_OSSL_PTR(bio = BIO_new(BIO_s_secmem()), "BIO");
    GUARD_OSSL(PEM_write_bio_PrivateKey(bio, c->pkey, NULL, NULL, 0, NULL, NULL),
               "PEM-encode private key");
    GUARD(bio_to_buf(bio, pem, len));
    rc = AUTHCERT_OK;
out:
    BIO_free(bio);
    return rc;
}

void authcert_cert_free(authcert_cert *c)
{
    if (c == NULL)
        return;
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    X509_free(c->x509);
    EVP_PKEY_free(c->pkey);
    OPENSSL_free(c->der);
    OPENSSL_free(c);
}

authcert_cert *authcert_cert_ref(authcert_cert *c)
{
    if (c != NULL)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

const char *authcert_cert_thumbprint(const authcert_cert *c)
{
    return c->thumbprint;
}

const uint8_t *authcert_cert_der(const authcert_cert *c, size_t *len)
{
    if (len != NULL)
        *len = c->der_len;
    return c->der;
}

bool authcert_cert_has_key(const authcert_cert *c)
{
    return c->pkey != NULL;
}

authcert_key_type authcert_cert_key_type(const authcert_cert *c)
{
    return c->type;
}

X509 *authcert_cert_x509(const authcert_cert *c)
{
    return c->x509;
}

EVP_PKEY *authcert_cert_pkey(const authcert_cert *c)
{
    return c->pkey;
}

EVP_PKEY *authcert_cert_pubkey(const authcert_cert *c)
{
    return c->pub;
}

static time_t asn1_time_to_time_t(const ASN1_TIME *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return (time_t)-1;
    }
    return timegm(&tm);
}

void authcert_cert_get_info(const authcert_cert *c, authcert_cert_info *info)
{
    BIGNUM *bn = NULL;
    char *hex = NULL;
    BIO *bio = NULL;
    char *data = NULL;
    long n;

    memset(info, 0, sizeof *info);
    info->thumbprint = c->thumbprint;
    info->type = c->type;
    info->has_key = c->pkey != NULL;
    info->not_before = asn1_time_to_time_t(X509_get0_notBefore(c->x509));
    info->not_after = asn1_time_to_time_t(X509_get0_notAfter(c->x509));

    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c->x509), NULL);
    if (bn != NULL && (hex = BN_bn2hex(bn)) != NULL)
        snprintf(info->serial, sizeof info->serial, "%s", hex);

    bio = BIO_new(BIO_s_mem());
    if (bio != NULL
        && X509_NAME_print_ex(bio, X509_get_subject_name(c->x509), 0, XN_FLAG_RFC2253) >= 0
        && (n = BIO_get_mem_data(bio, &data)) > 0)
        snprintf(info->subject, sizeof info->subject, "%.*s", (int)n, data);

    OPENSSL_free(hex);
    BN_free(bn);
    BIO_free(bio);
    ERR_clear_error();
}

/* ---- generation ---- */

authcert_status authcert_key_generate(authcert_key_type type, EVP_PKEY **out)
{
    EVP_PKEY *pk = NULL;

    switch (type) {
    case AUTHCERT_KEY_ED25519: pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
    case AUTHCERT_KEY_P256:    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    case AUTHCERT_KEY_RSA2048: pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); break;
    case AUTHCERT_KEY_RSA3072: pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072); break;
    case AUTHCERT_KEY_RSA4096: pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096); break;
    default:
        return authcert_fail(AUTHCERT_E_USAGE, "unknown key type %d", (int)type);
    }
    if (pk == NULL)
        return authcert_fail_ossl(AUTHCERT_E_CRYPTO, "generate %s key", authcert_key_type_name(type));
    *out = pk;
    return AUTHCERT_OK;
}

/* Add one "key=value" (value may contain backslash escapes) to name. */
static authcert_status add_rdn(X509_NAME *name, const char *s, size_t n, int set)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    char field[64];
    char value[256];
    size_t i = 0, flen = 0, vlen = 0;

    while (i < n && s[i] == ' ')
        i++;
    while (i < n && s[i] != '=' && s[i] != ' ') {
        if (flen + 1 >= sizeof field)
            FAIL(AUTHCERT_E_USAGE, "subject: attribute name too long");
        field[flen++] = s[i++];
    }
    field[flen] = '\0';
    while (i < n && s[i] == ' ')
        i++;
    if (flen == 0 || i >= n || s[i] != '=')
        FAIL(AUTHCERT_E_USAGE, "subject: expected NAME=value, got \"%.*s\"", (int)n, s);
    i++;
    while (i < n && s[i] == ' ')
        i++;
    for (; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n)
            i++;
        if (vlen + 1 >= sizeof value)
            FAIL(AUTHCERT_E_USAGE, "subject: value of %s too long", field);
        value[vlen++] = s[i];
    }
    while (vlen > 0 && value[vlen - 1] == ' ' && !(vlen >= 2 && value[vlen - 2] == '\\'))
        vlen--;
    value[vlen] = '\0';
    if (vlen == 0)
        FAIL(AUTHCERT_E_USAGE, "subject: empty value for %s", field);
    if (OBJ_txt2nid(field) == NID_undef) {
        ERR_clear_error();
        FAIL(AUTHCERT_E_USAGE, "subject: unknown attribute \"%s\"", field);
    }
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value,
                                   (int)vlen, set, 0) != 1)
        FAIL_OSSL(AUTHCERT_E_USAGE, "subject: bad value for %s", field);
    rc = AUTHCERT_OK;
out:
    return rc;
}

/*
 * "/CN=x/O=y" (OpenSSL's oneline form) lists RDNs in encoding order;
 * "CN=x,O=y" (RFC 4514 form) lists the most specific first, so each RDN is
 * put in front and get_info's RFC 2253 view gives back what was written.
 */
static authcert_status parse_subject(const char *subject, X509_NAME **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    X509_NAME *name = NULL;
    bool slash = subject[0] == '/';
    char sep = slash ? '/' : ',';
    const char *p = slash ? subject + 1 : subject;

    GUARD_OSSL_PTR(name = X509_NAME_new(), "X509_NAME_new");
    if (*p == '\0')
        FAIL(AUTHCERT_E_USAGE, "subject is empty");
    while (*p != '\0') {
        const char *q = p;
        while (*q != '\0' && *q != sep) {
            if (*q == '\\' && q[1] != '\0')
                q++;
            q++;
        }
        GUARD(add_rdn(name, p, (size_t)(q - p), slash ? -1 : 0));
        if (*q == sep && q[1] == '\0')
            FAIL(AUTHCERT_E_USAGE, "subject ends with '%c'", sep);
        p = *q == sep ? q + 1 : q;
    }
    *out = name;
    name = NULL;
    rc = AUTHCERT_OK;
out:
    X509_NAME_free(name);
    return rc;
}

static authcert_status add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    X509_EXTENSION *ext = NULL;

    GUARD_OSSL_PTR(ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value), "extension %s", OBJ_nid2sn(nid));
    GUARD_OSSL(X509_add_ext(x, ext, -1), "add extension %s", OBJ_nid2sn(nid));
    rc = AUTHCERT_OK;
out:
    X509_EXTENSION_free(ext);
    return rc;
}

static authcert_status random_serial(X509 *x)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    unsigned char buf[SERIAL_BYTES];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;

    do {
        GUARD_OSSL(RAND_bytes(buf, sizeof buf), "random serial");
        buf[0] &= 0x7f;  /* positive, and 16 bytes in DER */
        GUARD_OSSL_PTR(bn = BN_bin2bn(buf, sizeof buf, bn), "serial");
    } while (BN_is_zero(bn));
    GUARD_OSSL_PTR(ai = BN_to_ASN1_INTEGER(bn, NULL), "serial");
    GUARD_OSSL(X509_set_serialNumber(x, ai), "set serial");
    rc = AUTHCERT_OK;
out:
    OPENSSL_cleanse(buf, sizeof buf);
    BN_free(bn);
    ASN1_INTEGER_free(ai);
    return rc;
}

/* A DNS name of a certificate: letters, digits, '-', '.', a leading "*.". */
static bool dns_name_ok(const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n > 253)
        return false;
    if (strncmp(v, "*.", 2) == 0)
        v += 2;
    for (; *v != '\0'; v++)
        if (!isalnum((unsigned char)*v) && *v != '-' && *v != '.')
            return false;
    return true;
}

static bool address_ok(const char *v)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1;
}

/* subjectAltName from the params' DNS names and addresses ("" when none). */
static authcert_status alt_names(const authcert_cert_params *p, char **out)
{
    size_t cap = 1, n = 0;
    char *s;

    *out = NULL;
    for (size_t i = 0; p->dns_names != NULL && p->dns_names[i] != NULL; i++) {
        if (!dns_name_ok(p->dns_names[i]))
            return authcert_fail(AUTHCERT_E_USAGE, "not a DNS name: \"%.80s\"", p->dns_names[i]);
        cap += strlen(p->dns_names[i]) + 6;
    }
    for (size_t i = 0; p->ip_addresses != NULL && p->ip_addresses[i] != NULL; i++) {
        if (!address_ok(p->ip_addresses[i]))
            return authcert_fail(AUTHCERT_E_USAGE, "not an IP address: \"%.80s\"",
                                 p->ip_addresses[i]);
        cap += strlen(p->ip_addresses[i]) + 6;
    }
    if ((s = malloc(cap)) == NULL)
        return authcert_fail(AUTHCERT_E_NOMEM, "out of memory");
    s[0] = '\0';
    for (size_t i = 0; p->dns_names != NULL && p->dns_names[i] != NULL; i++)
        n += (size_t)snprintf(s + n, cap - n, "%sDNS:%s", n > 0 ? "," : "", p->dns_names[i]);
    for (size_t i = 0; p->ip_addresses != NULL && p->ip_addresses[i] != NULL; i++)
        n += (size_t)snprintf(s + n, cap - n, "%sIP:%s", n > 0 ? "," : "", p->ip_addresses[i]);
    *out = s;
    return AUTHCERT_OK;
}

/*
 * The certificate of authcert_cert_generate(_for): pk is the key (the
 * caller's reference stays the caller's).
 */
static authcert_status generate(const authcert_cert_params *params, EVP_PKEY *given,
                                authcert_cert **out)
{
    authcert_status rc = AUTHCERT_E_INTERNAL;
    authcert_key_type type = AUTHCERT_KEY_DEFAULT;
    int days = AUTHCERT_DEFAULT_DAYS;
    const char *subject = AUTHCERT_DEFAULT_SUBJECT;
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    X509_NAME *name = NULL;
    X509V3_CTX ctx;
    time_t now = time(NULL);
    char *san = NULL;

    if (out == NULL)
        FAIL(AUTHCERT_E_USAGE, "generate: no output");
    *out = NULL;
    if (given != NULL) {
        type = authcert_key_type_of(given);
        if (type == AUTHCERT_KEY_UNKNOWN)
            FAIL(AUTHCERT_E_USAGE, "generate: unsupported key type");
    }
    if (params != NULL) {
        if (params->type != AUTHCERT_KEY_UNKNOWN && given == NULL)
            type = params->type;
        if (params->days != 0)
            days = params->days;
        if (params->subject != NULL)
            subject = params->subject;
    }
    if (days < 1 || days > MAX_DAYS)
        FAIL(AUTHCERT_E_USAGE, "validity of %d days is not in 1..%d", days, MAX_DAYS);
    if (strcmp(authcert_key_type_name(type), "unknown") == 0)
        FAIL(AUTHCERT_E_USAGE, "unknown key type %d", (int)type);
    GUARD(parse_subject(subject, &name));
    if (params != NULL && params->tls)
        GUARD(alt_names(params, &san));
    if (given != NULL) {
        GUARD_OSSL(EVP_PKEY_up_ref(given), "key reference");
        pk = given;
    } else {
        GUARD(authcert_key_generate(type, &pk));
    }

    GUARD_OSSL_PTR(x = X509_new(), "X509_new");
    GUARD_OSSL(X509_set_version(x, X509_VERSION_3), "set version");
    GUARD(random_serial(x));
    GUARD_OSSL(X509_set_subject_name(x, name), "set subject");
    GUARD_OSSL(X509_set_issuer_name(x, name), "set issuer");
    /* A minute back, so that a verifier whose clock lags a little accepts it. */
    /* One clock reading for both, so that the span is exactly days + 60 s. */
    GUARD_OSSL_PTR(X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, &now), "set notBefore");
    GUARD_OSSL_PTR(X509_time_adj_ex(X509_getm_notAfter(x), days, 0, &now), "set notAfter");
    GUARD_OSSL(X509_set_pubkey(x, pk), "set public key");

    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    GUARD_OSSL(X509V3_set_issuer_pkey(&ctx, pk), "extension context");
    GUARD(add_ext(x, &ctx, NID_subject_key_identifier, "hash"));
    GUARD(add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"));
    GUARD(add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature"));
    GUARD(add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    if (params != NULL && params->tls) {
        /* RSA in TLS 1.2 with static RSA needs keyEncipherment; we only
         * offer ECDHE suites, where digitalSignature is what is used. */
        GUARD(add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth"));
        if (san != NULL && san[0] != '\0')
            GUARD(add_ext(x, &ctx, NID_subject_alt_name, san));
    }
    if (params != NULL && params->commit_to != NULL)
        GUARD(authcert_commitment_add(x, params->commit_to));

    /* EdDSA hashes internally: no separate digest. */
    if (X509_sign(x, pk, type == AUTHCERT_KEY_ED25519 ? NULL : EVP_sha256()) <= 0)
        FAIL_OSSL(AUTHCERT_E_CRYPTO, "sign certificate");

    rc = authcert_cert_adopt(x, pk, out);
    x = NULL;
    pk = NULL;
out:
    free(san);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

authcert_status authcert_cert_generate(const authcert_cert_params *params, authcert_cert **out)
{
    return generate(params, NULL, out);
}

authcert_status authcert_cert_generate_for(const authcert_cert_params *params, EVP_PKEY *key,
                                           authcert_cert **out)
{
    if (key == NULL)
        return authcert_fail(AUTHCERT_E_USAGE, "generate: no key");
    return generate(params, key, out);
}
