/*
 * mktoken — signed commands for the agent's tests, including hostile ones.
 *
 *   mktoken --gen-store-pem OUT.pem [--type p256|ed25519|rsa2048] [--export-der OUT.der]
 *       a new certificate and key in the store's key file form (certificate
 *       PEM + PKCS#8 key PEM in one file), and the agent certificate file
 *   mktoken --cert-pem FILE --export-der OUT.der
 *       the agent certificate file (DER) of a store key file
 *   mktoken --cert-pem FILE --aud ID --cmd NAME [--args JSON] [--ttl S]
 *           [--iat-offset S] [--jti X] [--iss X] [--did N]
 *           [--update-cert DER_FILE [--update-thumbprint HEX]]
 *           [--alg-override ALG] [--header-json JSON] [--raw-claims JSON]
 *       print a token on stdout. --update-cert fills args with the
 *       update-key arguments of that certificate (thumbprint: its own unless
 *       given). --alg-override writes ALG in the header but signs with the
 *       key (so "alg swapped"); "none" leaves the signature empty.
 *       --header-json and --raw-claims replace the header or the claims
 *       verbatim (duplicate keys and all), still signed with the key.
 *
 * A test tool: it prints and exits, which the library never does. The
 * signing here is deliberately separate from lib/jws/jws.c so that it can
 * write tokens the library would never make.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "authcert/authcert.h"
#include "authcert/base64url.h"
#include "authcert/jws.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mktoken: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(2);
}

static void die_st(const char *what, authcert_status st)
{
    fprintf(stderr, "mktoken: %s: %s (%s)\n", what, authcert_strerror(st), authcert_detail());
    exit(2);
}

static char *slurp(const char *path, size_t *len)
{
    uint8_t *d = NULL;
    authcert_status st = authcert_read_file(path, 1 << 20, &d, len);
    if (st != AUTHCERT_OK)
        die_st(path, st);
    char *s = realloc(d, *len + 1);
    if (s == NULL)
        die("out of memory");
    s[*len] = '\0';
    return s;
}

static void spit(const char *path, const void *data, size_t len, mode_t mode)
{
    authcert_status st = authcert_write_atomic(path, data, len, mode);
    if (st != AUTHCERT_OK)
        die_st(path, st);
}

static char *b64(const void *data, size_t len)
{
    char *s = NULL;
    if (authcert_b64url_encode(data, len, &s) != AUTHCERT_OK)
        die("encode");
    return s;
}

/* Sign header.payload with the key as the key's JWS alg dictates. */
static char *sign_input(const authcert_cert *c, const char *input)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    authcert_key_type t = authcert_cert_key_type(c);
    const EVP_MD *md = t == AUTHCERT_KEY_ED25519 ? NULL : EVP_sha256();
    unsigned char sig[1024];
    size_t siglen = sizeof sig;

    if (ctx == NULL || EVP_DigestSignInit(ctx, &pctx, md, NULL, authcert_cert_pkey(c)) != 1)
        die("sign init");
    if (t >= AUTHCERT_KEY_RSA2048 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
        die("pss");
    if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1)
        die("sign");
    EVP_MD_CTX_free(ctx);
    if (t == AUTHCERT_KEY_P256) {
        /* JWS wants raw R||S, OpenSSL gives DER. */
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        unsigned char raw[64];
        if (es == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) != 32 ||
            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) != 32)
            die("ecdsa");
        ECDSA_SIG_free(es);
        return b64(raw, sizeof raw);
    }
    return b64(sig, siglen);
}

static authcert_cert *load_pem(const char *path)
{
    size_t n = 0;
    char *pem = slurp(path, &n);
    authcert_cert *c = NULL;
    authcert_status st = authcert_cert_from_pem(pem, n, pem, n, &c);
    if (st != AUTHCERT_OK)
        die_st(path, st);
    OPENSSL_clear_free(pem, n);
    return c;
}

static int gen_store_pem(const char *out, const char *type, const char *der_out)
{
    authcert_cert_params p = {.type = authcert_key_type_parse(type)};
    authcert_cert *c = NULL;
    char *cp = NULL, *kp = NULL;
    size_t cn = 0, kn = 0, dn = 0;

    if (p.type == AUTHCERT_KEY_UNKNOWN)
        die("unknown key type %s", type);
    authcert_status st = authcert_cert_generate(&p, &c);
    if (st != AUTHCERT_OK)
        die_st("generate", st);
    if ((st = authcert_cert_to_pem(c, &cp, &cn)) != AUTHCERT_OK ||
        (st = authcert_cert_key_to_pem(c, &kp, &kn)) != AUTHCERT_OK)
        die_st("pem", st);
    char *both = malloc(cn + kn);
    if (both == NULL)
        die("out of memory");
    memcpy(both, cp, cn);
    memcpy(both + cn, kp, kn);
    spit(out, both, cn + kn, 0600);
    OPENSSL_clear_free(both, cn + kn);
    OPENSSL_clear_free(cp, cn);
    OPENSSL_clear_free(kp, kn);
    if (der_out != NULL) {
        const uint8_t *der = authcert_cert_der(c, &dn);
        spit(der_out, der, dn, 0644);
    }
    printf("%s\n", authcert_cert_thumbprint(c));
    authcert_cert_free(c);
    return 0;
}

static json_t *parse_json(const char *what, const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    if (j == NULL)
        die("bad JSON in %s", what);
    return j;
}

int main(int argc, char **argv)
{
    const char *cert_pem = NULL, *aud = NULL, *cmd = NULL, *args = NULL, *jti = NULL;
    const char *iss = "authcert-test", *alg_override = NULL, *header_json = NULL;
    const char *raw_claims = NULL, *export_der = NULL, *gen = NULL, *type = "p256";
    const char *update_cert = NULL, *update_thumb = NULL;
    long long ttl = 300, iat_offset = 0, did = -1;
    enum { O_CERT = 1, O_AUD, O_CMD, O_ARGS, O_TTL, O_IAT, O_JTI, O_ISS, O_DID, O_ALG,
           O_HDR, O_RAW, O_DER, O_GEN, O_TYPE, O_UCERT, O_UTHUMB };
    static const struct option opts[] = {
        {"cert-pem", required_argument, NULL, O_CERT}, {"aud", required_argument, NULL, O_AUD},
        {"cmd", required_argument, NULL, O_CMD}, {"args", required_argument, NULL, O_ARGS},
        {"ttl", required_argument, NULL, O_TTL}, {"iat-offset", required_argument, NULL, O_IAT},
        {"jti", required_argument, NULL, O_JTI}, {"iss", required_argument, NULL, O_ISS},
        {"did", required_argument, NULL, O_DID},
        {"alg-override", required_argument, NULL, O_ALG},
        {"header-json", required_argument, NULL, O_HDR},
        {"raw-claims", required_argument, NULL, O_RAW},
        {"export-der", required_argument, NULL, O_DER},
        {"gen-store-pem", required_argument, NULL, O_GEN},
        {"type", required_argument, NULL, O_TYPE},
        {"update-cert", required_argument, NULL, O_UCERT},
        {"update-thumbprint", required_argument, NULL, O_UTHUMB},
        {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_CERT: cert_pem = optarg; break;
        case O_AUD: aud = optarg; break;
        case O_CMD: cmd = optarg; break;
        case O_ARGS: args = optarg; break;
        case O_TTL: ttl = atoll(optarg); break;
        case O_IAT: iat_offset = atoll(optarg); break;
        case O_JTI: jti = optarg; break;
        case O_ISS: iss = optarg; break;
        case O_DID: did = atoll(optarg); break;
        case O_ALG: alg_override = optarg; break;
        case O_HDR: header_json = optarg; break;
        case O_RAW: raw_claims = optarg; break;
        case O_DER: export_der = optarg; break;
        case O_GEN: gen = optarg; break;
        case O_TYPE: type = optarg; break;
        case O_UCERT: update_cert = optarg; break;
        case O_UTHUMB: update_thumb = optarg; break;
        default: die("usage: see the comment at the top of tests/tools/mktoken.c");
        }
    }
    if (authcert_init() != AUTHCERT_OK)
        die("init");
    if (gen != NULL)
        return gen_store_pem(gen, type, export_der);
    if (cert_pem == NULL)
        die("--cert-pem FILE is required");
    authcert_cert *c = load_pem(cert_pem);
    if (export_der != NULL && cmd == NULL && raw_claims == NULL) {
        size_t n = 0;
        const uint8_t *der = authcert_cert_der(c, &n);
        spit(export_der, der, n, 0644);
        authcert_cert_free(c);
        authcert_cleanup();
        return 0;
    }

    /* The header: ours, with the alg replaced, or verbatim. */
    char *hdr_text = NULL;
    if (header_json != NULL) {
        hdr_text = strdup(header_json);
    } else {
        size_t n = 0;
        const uint8_t *der = authcert_cert_der(c, &n);
        uint8_t digest[32];
        EVP_Digest(der, n, digest, NULL, EVP_sha256(), NULL);
        char *x5t = b64(digest, sizeof digest);
        const char *alg = alg_override != NULL ? alg_override
                                               : authcert_jws_alg_for(authcert_cert_key_type(c));
        json_t *h = json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "x5t#S256", x5t);
        hdr_text = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        free(x5t);
    }

    char *cl_text = NULL;
    if (raw_claims != NULL) {
        cl_text = strdup(raw_claims);
    } else {
        if (aud == NULL || cmd == NULL)
            die("--aud and --cmd are required (or --raw-claims)");
        int64_t now = (int64_t)time(NULL) + iat_offset;
        json_t *cl = json_pack("{s:s, s:s, s:I, s:I, s:s}", "iss", iss, "aud", aud, "iat",
                               (json_int_t)now, "exp", (json_int_t)(now + ttl), "cmd", cmd);
        if (jti != NULL) {
            json_object_set_new(cl, "jti", json_string(jti));
        } else {
            uint8_t r[16];
            RAND_bytes(r, sizeof r);
            char *j = b64(r, sizeof r);
            json_object_set_new(cl, "jti", json_string(j));
            free(j);
        }
        if (did >= 0)
            json_object_set_new(cl, "did", json_integer(did));
        if (args != NULL)
            json_object_set_new(cl, "args", parse_json("--args", args));
        if (update_cert != NULL) {
            size_t n = 0;
            char *der = slurp(update_cert, &n);
            char thumb[65];
            authcert_thumbprint_of((const uint8_t *)der, n, thumb);
            char *enc = b64(der, n);
            json_object_set_new(cl, "args",
                                json_pack("{s:s, s:s}", "certificate", enc, "thumbprint",
                                          update_thumb != NULL ? update_thumb : thumb));
            free(enc);
            free(der);
        }
        cl_text = json_dumps(cl, JSON_COMPACT);
        json_decref(cl);
    }

    char *h64 = b64(hdr_text, strlen(hdr_text));
    char *c64 = b64(cl_text, strlen(cl_text));
    size_t inlen = strlen(h64) + 1 + strlen(c64);
    char *input = malloc(inlen + 1);
    if (input == NULL)
        die("out of memory");
    snprintf(input, inlen + 1, "%s.%s", h64, c64);
    char *sig = (alg_override != NULL && strcmp(alg_override, "none") == 0) ? strdup("")
                                                                           : sign_input(c, input);
    printf("%s.%s\n", input, sig);
    free(sig);
    free(input);
    free(h64);
    free(c64);
    free(hdr_text);
    free(cl_text);
    authcert_cert_free(c);
    authcert_cleanup();
    return 0;
}
