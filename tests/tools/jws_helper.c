/*
 * jws_helper — the JWS code from the shell, for tests/interop/jose.bats.
 *
 *   jws_helper gen TYPE CERT.der KEY.pem     new certificate (DER) and key (PKCS#8 PEM)
 *   jws_helper sign KEY.pem CERT.der AUD CMD  print a signed command (ttl 300 s)
 *   jws_helper verify CERT.der AUD TOKEN      exit 0 and print the claims, or
 *                                             exit 1 with the reason on stderr
 *
 * A test tool: it prints and exits, which the library never does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "authcert/authcert.h"
#include "authcert/jws.h"

static int die(const char *what, authcert_status st)
{
    fprintf(stderr, "jws_helper: %s: %s (%s)\n", what, authcert_strerror(st), authcert_detail());
    return st == AUTHCERT_E_AUTH || st == AUTHCERT_E_CORRUPT ? 1 : 2;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int gen(const char *type, const char *cert_path, const char *key_path)
{
    authcert_cert_params p = {.type = authcert_key_type_parse(type)};
    authcert_cert *c = NULL;
    authcert_status st;
    size_t n;

    if (p.type == AUTHCERT_KEY_UNKNOWN) {
        fprintf(stderr, "jws_helper: unknown key type %s\n", type);
        return 2;
    }
    if ((st = authcert_cert_generate(&p, &c)) != AUTHCERT_OK)
        return die("gen", st);
    const uint8_t *der = authcert_cert_der(c, &n);
    FILE *f = fopen(cert_path, "wb");
    if (f == NULL || fwrite(der, 1, n, f) != n || fclose(f) != 0) {
        perror(cert_path);
        return 2;
    }
    umask(077);
    f = fopen(key_path, "w");
    if (f == NULL || PEM_write_PrivateKey(f, authcert_cert_pkey(c), NULL, NULL, 0, NULL, NULL) != 1 ||
        fclose(f) != 0) {
        perror(key_path);
        return 2;
    }
    authcert_cert_free(c);
    return 0;
}

static int sign(const char *key_path, const char *cert_path, const char *aud, const char *cmd)
{
    size_t n;
    uint8_t *der = slurp(cert_path, &n);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    FILE *f = fopen(key_path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    authcert_cert *c = NULL;
    json_t *cl = NULL;
    char *tok = NULL;
    authcert_status st;

    if (f != NULL)
        fclose(f);
    free(der);
    if (x == NULL || k == NULL) {
        fprintf(stderr, "jws_helper: cannot read %s or %s\n", cert_path, key_path);
        return 2;
    }
    if ((st = authcert_cert_adopt(x, k, &c)) != AUTHCERT_OK)
        return die("sign", st);
    if ((st = authcert_jws_claims_new("authcert-test-server", aud, cmd, NULL, 300, 0, &cl)) ||
        (st = authcert_jws_sign(c, cl, &tok)))
        return die("sign", st);
    puts(tok);
    free(tok);
    json_decref(cl);
    authcert_cert_free(c);
    return 0;
}

static int verify(const char *cert_path, const char *aud, const char *token)
{
    size_t n;
    uint8_t *der = slurp(cert_path, &n);
    authcert_cert *c = NULL;
    json_t *cl = NULL;
    authcert_jws_expect ex = {.audience = aud, .leeway = 60};
    authcert_status st;

    if ((st = authcert_cert_from_der(der, n, &c)) != AUTHCERT_OK)
        return die("verify", st);
    free(der);
    if ((st = authcert_jws_verify(c, token, strlen(token), &ex, &cl)) != AUTHCERT_OK) {
        authcert_cert_free(c);
        return die("verify", st);
    }
    char *s = json_dumps(cl, JSON_COMPACT | JSON_SORT_KEYS);
    puts(s);
    free(s);
    json_decref(cl);
    authcert_cert_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 2;
    if (authcert_init() != AUTHCERT_OK)
        return die("init", AUTHCERT_E_CRYPTO);
    if (argc == 5 && strcmp(argv[1], "gen") == 0)
        rc = gen(argv[2], argv[3], argv[4]);
    else if (argc == 6 && strcmp(argv[1], "sign") == 0)
        rc = sign(argv[2], argv[3], argv[4], argv[5]);
    else if (argc == 5 && strcmp(argv[1], "verify") == 0)
        rc = verify(argv[2], argv[3], argv[4]);
    else
        fprintf(stderr, "usage: jws_helper gen TYPE CERT.der KEY.pem\n"
                        "       jws_helper sign KEY.pem CERT.der AUD CMD\n"
                        "       jws_helper verify CERT.der AUD TOKEN\n");
    authcert_cleanup();
    return rc;
}
