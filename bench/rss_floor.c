/*
 * rss_floor — the resident set that the agent's libraries cost by
 * themselves, as Debian 12 builds them: the baseline of bench/run's
 * authcert-agent RSS rows.
 *
 *   rss_floor CERT_DER TLS_CERT TLS_KEY     prints "hwm KIB uss KIB"
 *
 * (VmHWM, and the private pages, clean and dirty, of smaps_rollup.)
 *
 * It does the least an agent on this stack must: verifies an ES256
 * signature with the key of the certificate it is given (libcrypto and
 * its default provider), starts a libmicrohttpd listener as the agent's
 * (internal polling thread pool, epoll, HTTPS through GnuTLS with
 * authcertd's priorities) serving TLS_CERT and TLS_KEY (PEM), makes one
 * libcurl POST to it over TLS (OpenSSL, verifying TLS_CERT as a CA file,
 * the agent's TLS versions and suites) and parses the JSON answer with
 * jansson. Nothing of the agent's own code is
 * here, so authcert-agent's RSS over this one is what the agent adds.
 * Linux counts in RSS every page of a shared library that the process has
 * mapped in, clean and shared with every other process or not, and maps
 * them in blocks (fault-around): most of a library that is used at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "authcert/tls.h" /* the TLS settings' macros only: nothing of the library is linked */

static const char answer[] = "{\"state\":\"current\",\"commands\":[]}";

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **req)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (*req == NULL) { /* the headers: answer once the body is in */
        *req = c;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    r = MHD_create_response_from_buffer(strlen(answer), (void *)answer,
                                        MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

struct body {
    char buf[256];
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct body *b = ud;

    if (b->len + size * n >= sizeof b->buf)
        return 0;
    memcpy(b->buf + b->len, p, size * n);
    b->len += size * n;
    return size * n;
}

/* The sum of the fields of a /proc/self file whose names begin with one of names. */
static long kib_of(const char *file, const char *const *names)
{
    char line[256];
    long kib = 0;
    FILE *f = fopen(file, "r");

    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        for (const char *const *n = names; *n != NULL; n++)
            if (strncmp(line, *n, strlen(*n)) == 0)
                kib += strtol(line + strlen(*n), NULL, 10);
    if (f != NULL)
        fclose(f);
    return kib;
}

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "rss_floor: %s\n", what);
    exit(1);
}

static char *slurp(const char *path)
{
    static char buf[2][16384];
    static int k;
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL || k == 2)
        die(path);
    n = fread(buf[k], 1, sizeof buf[k] - 1, f);
    fclose(f);
    buf[k][n] = '\0';
    return buf[k++];
}

int main(int argc, char **argv)
{
    static const unsigned char sig[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01 };
    unsigned char der[8192];
    const unsigned char *p = der;
    size_t n;
    FILE *f;
    X509 *x;
    EVP_PKEY *key;
    EVP_MD_CTX *ctx;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    CURL *e;
    struct body b = { .len = 0 };
    char url[64];
    json_t *j;

    if (argc != 4 || (f = fopen(argv[1], "rb")) == NULL)
        die("usage: rss_floor CERT_DER TLS_CERT TLS_KEY");
    n = fread(der, 1, sizeof der, f);
    fclose(f);
    if ((x = d2i_X509(NULL, &p, (long)n)) == NULL || (key = X509_get0_pubkey(x)) == NULL)
        die("not a certificate");
    /* ECDSA r = s = 1: well-formed, so the verification runs the whole way
     * (hash, two scalar multiplications) and only then says no. */
    if ((ctx = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
        EVP_DigestVerify(ctx, sig, sizeof sig, der, n) < 0)
        die("verify (an ES256 certificate is needed)");
    EVP_MD_CTX_free(ctx);

    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_INTERNALLY | MHD_USE_TLS,
                         0, NULL, NULL, &on_request, NULL, MHD_OPTION_THREAD_POOL_SIZE, 2u,
                         MHD_OPTION_HTTPS_MEM_CERT, slurp(argv[2]),
                         MHD_OPTION_HTTPS_MEM_KEY, slurp(argv[3]),
                         MHD_OPTION_HTTPS_PRIORITIES, AUTHCERT_TLS_GNUTLS_PRIORITIES,
                         MHD_OPTION_END);
    if (d == NULL || (info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)) == NULL)
        die("listener");
    snprintf(url, sizeof url, "https://127.0.0.1:%u/v1/command", (unsigned)info->port);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (e = curl_easy_init()) == NULL)
        die("libcurl");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CAINFO, argv[2]);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_SSL_CIPHER_LIST, AUTHCERT_TLS_OPENSSL_CIPHERS);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{\"agent_id\":\"floor\"}");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(e) != CURLE_OK)
        die("POST");
    if ((j = json_loadb(b.buf, b.len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
        die("answer is not JSON");
    printf("hwm %ld uss %ld\n",
           kib_of("/proc/self/status", (const char *const[]){ "VmHWM:", NULL }),
           kib_of("/proc/self/smaps_rollup",
                  (const char *const[]){ "Private_Clean:", "Private_Dirty:", NULL }));
    json_decref(j);
    curl_easy_cleanup(e);
    curl_global_cleanup();
    MHD_stop_daemon(d);
    X509_free(x);
    return 0;
}
