/*
 * sign_bench — JWT signing (server) and verification (agent) rates per key
 * type, against the raw OpenSSL call on the same key and the same bytes.
 *
 *   sign_bench [SECONDS_PER_FIGURE [ONLY]]   (default 0.6, per side; ONLY: a figure's
 *                                            name, e.g. verify_p256, for profiling)
 *
 * Prints one line per figure: "name value baseline" (operations/s), for
 * bench/run to collect. One thread: both sides measured the same way.
 *
 * Library side: authcert_jws_signer_sign on a prepared claims object (what a
 * check-in answer costs per token), authcert_agent_verify with a trust from
 * authcert_agent_trust_new (what the agent does per push: parse, header
 * rules, x5t#S256, signature, claims, replay cache).
 * Baseline: what a caller writing it by hand would do per token: a fresh
 * EVP_MD_CTX, EVP_DigestSignInit_ex / EVP_DigestVerifyInit_ex (SHA-256, PSS
 * salt 32 for RSA, no digest for Ed25519), one EVP_DigestSign /
 * EVP_DigestVerify over a signing input of the same length as the token's,
 * free. The ECDSA baseline verifies the DER signature OpenSSL wants (the
 * library converts JOSE's R||S each time; that is part of its cost).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "authcert/agent.h"
#include "authcert/authcert.h"
#include "authcert/jws.h"

#define NTOK 1000
#define NTRUST 256

static double secs = 0.6;
static const char *only;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "sign_bench: %s: %s\n", what, authcert_detail());
    exit(1);
}

static EVP_MD_CTX *init_ctx(EVP_PKEY *pkey, authcert_key_type t, int sign)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const char *md = t == AUTHCERT_KEY_ED25519 ? NULL : "SHA256";
    int ok = sign ? EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, pkey, NULL)
                  : EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, pkey, NULL);

    if (ok != 1)
        die("raw init");
    if (t >= AUTHCERT_KEY_RSA2048) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1)
            die("raw pss");
    }
    return ctx;
}

/*
 * The rates of the library (a) and of the baseline (b), measured in
 * alternating slices (a b b a a b ...) of secs / SLICES each, each the
 * median of its slices: a machine shared with other work drifts within a
 * second, and measuring one side after the other put the drift into the
 * ratio (a quiet run once gave P-256 signing 0.80 and Ed25519 1.31).
 */
typedef size_t (*round_fn)(void *ctx, size_t round);

#define SLICES 10

static double slice_rate(round_fn fn, void *ctx, size_t *round)
{
    size_t ops = 0;
    double t0 = now_s(), t;

    do {
        ops += fn(ctx, (*round)++);
        t = now_s() - t0;
    } while (t < secs / SLICES);
    return ops / t;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;

    return (a > b) - (a < b);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void rates(round_fn a, round_fn b, void *ctx, double *ra, double *rb)
{
    double va[SLICES], vb[SLICES];
    size_t round_a = 0, round_b = 0;

    for (int i = 0; i < SLICES; i++) {
        if (i % 2 == 0) {
            va[i] = slice_rate(a, ctx, &round_a);
            vb[i] = slice_rate(b, ctx, &round_b);
        } else {
            vb[i] = slice_rate(b, ctx, &round_b);
            va[i] = slice_rate(a, ctx, &round_a);
        }
    }
    *ra = median(va, SLICES);
    *rb = median(vb, SLICES);
}

struct fixture {
    authcert_key_type type;
    authcert_cert *cert;
    authcert_jws_signer *signer;
    json_t *claims;
    char *tokens[NTOK];
    size_t toklen[NTOK];
    authcert_agent_trust *trusts[NTRUST];
    /* raw */
    unsigned char input[4096];
    size_t inlen;
    unsigned char sig[1024];
    size_t siglen;
    size_t vround;
};

static size_t lib_sign(void *p, size_t round)
{
    struct fixture *f = p;
    char *tok;

    (void)round;
    for (int i = 0; i < 16; i++) {
        if (authcert_jws_signer_sign(f->signer, f->claims, &tok) != AUTHCERT_OK)
            die("sign");
        free(tok);
    }
    return 16;
}

static size_t raw_sign(void *p, size_t round)
{
    struct fixture *f = p;
    EVP_PKEY *pkey = authcert_cert_pkey(f->cert);

    (void)round;
    for (int i = 0; i < 16; i++) {
        EVP_MD_CTX *ctx = init_ctx(pkey, f->type, 1);
        unsigned char sig[1024];
        size_t n = sizeof sig;
        if (EVP_DigestSign(ctx, sig, &n, f->input, f->inlen) != 1)
            die("raw sign");
        EVP_MD_CTX_free(ctx);
    }
    return 16;
}

static size_t lib_verify(void *p, size_t round)
{
    struct fixture *f = p;
    authcert_agent_trust *t;

    (void)round;
    round = f->vround++; /* across every slice: every token fresh per trust */
    t = f->trusts[round % NTRUST];
    size_t first;

    /* Each trust sees each token once: 100 per round, NTOK/100 rounds a trust. */
    if (round >= (size_t)NTRUST * (NTOK / 100))
        die("verify: out of fresh tokens, raise NTRUST");
    first = (round / NTRUST) % (NTOK / 100) * 100;
    for (size_t i = first; i < first + 100; i++) {
        json_t *claims = NULL;
        authcert_agent_verdict v;
        if (authcert_agent_verify(t, "bench-agent", f->tokens[i], f->toklen[i], 0, &claims,
                                  &v) != AUTHCERT_OK)
            die("verify");
        json_decref(claims);
    }
    return 100;
}

static size_t raw_verify(void *p, size_t round)
{
    struct fixture *f = p;
    EVP_PKEY *pkey = authcert_cert_pubkey(f->cert);

    (void)round;
    for (int i = 0; i < 16; i++) {
        EVP_MD_CTX *ctx = init_ctx(pkey, f->type, 0);
        if (EVP_DigestVerify(ctx, f->sig, f->siglen, f->input, f->inlen) != 1)
            die("raw verify");
        EVP_MD_CTX_free(ctx);
    }
    return 16;
}

static bool wanted(const char *what, const char *type)
{
    char full[64];

    snprintf(full, sizeof full, "%s%s", what, type);
    return only == NULL || strcmp(only, full) == 0;
}

static void run(authcert_key_type type)
{
    static struct fixture f;
    authcert_cert_params params = { .type = type };
    authcert_agent_trust_opts topts = { .replay_capacity = NTOK };
    const char *name = authcert_key_type_name(type);
    char *dot;
    double lib, raw;

    memset(&f, 0, sizeof f);
    f.type = type;
    if (authcert_cert_generate(&params, &f.cert) != AUTHCERT_OK)
        die("generate");
    if (authcert_jws_signer_new(f.cert, &f.signer) != AUTHCERT_OK)
        die("signer");
    /* A check-in answer's typical command: ping with a small argument. */
    if (authcert_jws_claims_new("bench-server", "bench-agent", "ping",
                                json_pack("{s:i}", "delay", 5), 3600, 0, &f.claims) !=
        AUTHCERT_OK)
        die("claims");
    for (int i = 0; i < NTOK; i++) {
        json_t *c;
        if (authcert_jws_claims_new("bench-server", "bench-agent", "ping",
                                    json_pack("{s:i}", "delay", 5), 3600, 0, &c) != AUTHCERT_OK ||
            authcert_jws_signer_sign(f.signer, c, &f.tokens[i]) != AUTHCERT_OK)
            die("sign tokens");
        json_decref(c);
        f.toklen[i] = strlen(f.tokens[i]);
    }
    for (int i = 0; i < NTRUST; i++)
        if (authcert_agent_trust_new(f.cert, &topts, &f.trusts[i]) != AUTHCERT_OK)
            die("trust");
    /* The same signing input length as a real token; a real signature of it. */
    dot = strrchr(f.tokens[0], '.');
    f.inlen = (size_t)(dot - f.tokens[0]);
    memcpy(f.input, f.tokens[0], f.inlen);
    {
        EVP_MD_CTX *ctx = init_ctx(authcert_cert_pkey(f.cert), type, 1);
        f.siglen = sizeof f.sig;
        if (EVP_DigestSign(ctx, f.sig, &f.siglen, f.input, f.inlen) != 1)
            die("raw sign once");
        EVP_MD_CTX_free(ctx);
    }

    if (wanted("sign_", name)) {
        rates(lib_sign, raw_sign, &f, &lib, &raw);
        printf("sign_%s %.1f %.1f\n", name, lib, raw);
    }
    if (wanted("verify_", name)) {
        rates(lib_verify, raw_verify, &f, &lib, &raw);
        printf("verify_%s %.1f %.1f\n", name, lib, raw);
    }
    fflush(stdout);

    for (int i = 0; i < NTRUST; i++)
        authcert_agent_trust_free(f.trusts[i]);
    for (int i = 0; i < NTOK; i++)
        free(f.tokens[i]);
    json_decref(f.claims);
    authcert_jws_signer_free(f.signer);
    authcert_cert_free(f.cert);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        secs = atof(argv[1]);
    if (secs <= 0)
        secs = 0.6;
    if (argc > 2)
        only = argv[2];
    run(AUTHCERT_KEY_ED25519);
    run(AUTHCERT_KEY_P256);
    run(AUTHCERT_KEY_RSA2048);
    return 0;
}
