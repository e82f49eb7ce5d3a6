/*
 * How an agent proves who it is (authcert/auth.h): derived keys and MACs
 * against a vector computed with the openssl tool alone (docs/protocol.md
 * shows the same example), the header's one spelling, nonces, enrollment
 * proofs of both key types, tokens. Forgeries beside every acceptance.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "authcert/auth.h"
#include "authcert/tls.h"
#include "testlib.h"

/*
 * openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:SECRET
 *   -kdfopt salt:"authcert-v2 agent MAC key" -kdfopt hexinfo:6167656e742d3100 0000000000000001 HKDF
 * then openssl mac -digest SHA256 -macopt hexkey:KEY HMAC over the text.
 */
static const uint8_t secret[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const char vector_key_hex[] =
    "643ed5aa197757e1bc6fb26aa7d76423699e8b81c006cf787b71a4bd14aae1aa";
static const char vector_mac[] = "GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU";
static const char vector_body[] = "{\"agent_id\":\"agent-1\"}";

static authcert_request_auth vector_request(void)
{
    return (authcert_request_auth){ .method = "POST", .path = "/v2/checkin",
                                    .agent_id = "agent-1", .epoch = 1, .server_id = "mgmt-1",
                                    .counter = 1764700000000000ULL, .body = vector_body,
                                    .body_len = strlen(vector_body) };
}

static void test_mac_key_and_mac_match_openssl(void **state)
{
    uint8_t key[32];
    char hex[65], mac[AUTHCERT_MAC_B64_LEN + 1];
    authcert_request_auth r = vector_request();

    (void)state;
    assert_ok(authcert_agent_mac_key(secret, "agent-1", 1, key));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    assert_string_equal(hex, vector_key_hex);
    assert_ok(authcert_request_mac(key, &r, mac));
    assert_string_equal(mac, vector_mac);
    assert_true(authcert_request_mac_ok(key, &r, vector_mac));
}

/* The server's template-based derivation gives the same keys (the vector, and many more). */
static void test_mac_kdf_matches(void **state)
{
    authcert_mac_kdf *kdf = NULL;
    uint8_t key[32], want[32];
    char hex[65], id[40];

    (void)state;
    assert_ok(authcert_mac_kdf_new(secret, &kdf));
    assert_ok(authcert_mac_kdf_key(kdf, "agent-1", 1, key));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    assert_string_equal(hex, vector_key_hex);
    for (int i = 0; i < 200; i++) { /* the template is not worn by use */
        snprintf(id, sizeof id, "agent-%d", i * 7919);
        assert_ok(authcert_mac_kdf_key(kdf, id, (uint64_t)i, key));
        assert_ok(authcert_agent_mac_key(secret, id, (uint64_t)i, want));
        assert_memory_equal(key, want, sizeof key);
    }
    assert_status(authcert_mac_kdf_key(kdf, "", 1, key), AUTHCERT_E_USAGE);
    authcert_mac_kdf_free(kdf);
    authcert_mac_kdf_free(NULL);
}

static void test_every_field_is_covered(void **state)
{
    uint8_t key[32], other[32];
    authcert_request_auth r;

    (void)state;
    assert_ok(authcert_agent_mac_key(secret, "agent-1", 1, key));
    r = vector_request(); r.method = "GET";
    assert_false(authcert_request_mac_ok(key, &r, vector_mac));
    r = vector_request(); r.path = "/v2/result";
    assert_false(authcert_request_mac_ok(key, &r, vector_mac));
    r = vector_request(); r.agent_id = "agent-2";
    assert_false(authcert_request_mac_ok(key, &r, vector_mac));
    r = vector_request(); r.epoch = 2;
    assert_false(authcert_request_mac_ok(key, &r, vector_mac));
    r = vector_request(); r.server_id = "mgmt-2";
    assert_false(authcert_request_mac_ok(key, &r, vector_mac));
    r = vector_request(); r.counter++;
    assert_false(authcert_request_mac_ok(key, &r, vector_mac));
    r = vector_request(); r.body = "{\"agent_id\":\"agent-3\"}";
    assert_false(authcert_request_mac_ok(key, &r, vector_mac));
    /* another epoch, another agent: other keys */
    assert_ok(authcert_agent_mac_key(secret, "agent-1", 2, other));
    assert_memory_not_equal(key, other, 32);
    r = vector_request();
    assert_false(authcert_request_mac_ok(other, &r, vector_mac));
    assert_ok(authcert_agent_mac_key(secret, "agent-10", 1, other));
    assert_memory_not_equal(key, other, 32);
    /* a field that could shift the lines is refused, not MACed */
    r = vector_request(); r.path = "/v2/checkin\n1";
    char mac[AUTHCERT_MAC_B64_LEN + 1];
    assert_status(authcert_request_mac(key, &r, mac), AUTHCERT_E_USAGE);
    r = vector_request();
    assert_false(authcert_request_mac_ok(key, &r, "short"));
    assert_false(authcert_request_mac_ok(key, &r, NULL));
}

static void test_header_has_one_spelling(void **state)
{
    char v[512];
    authcert_auth_header h;
    static const char *const bad[] = {
        "",
        "AUTHCERT-V2",
        "Bearer x",
        "AUTHCERT-V2 agent=\"a\", epoch=1, counter=2",
        "AUTHCERT-V2 agent=\"a\",epoch=1, counter=2, mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU\"",
        "AUTHCERT-V2 agent=\"a\", epoch=01, counter=2, mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU\"",
        "AUTHCERT-V2 agent=\"a\", epoch=1, counter=-2, mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU\"",
        "AUTHCERT-V2 agent=\"a\", epoch=1, counter=99999999999999999999, mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU\"",
        "AUTHCERT-V2 agent=\"a\", epoch=1, counter=2, mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBb+\"",
        "AUTHCERT-V2 agent=\"a\", epoch=1, counter=2, mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU\" ",
        "AUTHCERT-V2 agent=\"a b\", epoch=1, counter=2, mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU\"",
        "AUTHCERT-V2 agent=\"\", epoch=1, counter=2, mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU\"",
        "AUTHCERT-V2 mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU\", agent=\"a\", epoch=1, counter=2",
    };

    (void)state;
    assert_ok(authcert_auth_header_format("agent-1", 1, 1764700000000000ULL, vector_mac, v, sizeof v));
    assert_string_equal(v, "AUTHCERT-V2 agent=\"agent-1\", epoch=1, counter=1764700000000000, "
                           "mac=\"GhrwCDen1ftgxs6j9840wOSTjK8JJ8aFG0mtZY_ZBbU\"");
    assert_ok(authcert_auth_header_parse(v, &h));
    assert_string_equal(h.agent_id, "agent-1");
    assert_int_equal(h.epoch, 1);
    assert_true(h.counter == 1764700000000000ULL);
    assert_string_equal(h.mac, vector_mac);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (authcert_auth_header_parse(bad[i], &h) != AUTHCERT_E_CORRUPT)
            fail_msg("accepted: %s", bad[i]);
    }
    assert_status(authcert_auth_header_parse(NULL, &h), AUTHCERT_E_CORRUPT);
}

static void test_nonces(void **state)
{
    char n[AUTHCERT_NONCE_B64_LEN + 1], forged[AUTHCERT_NONCE_B64_LEN + 1];
    uint8_t other[32];
    time_t now = 1764700000;

    (void)state;
    assert_ok(authcert_nonce_make(secret, now, n));
    assert_int_equal(strlen(n), AUTHCERT_NONCE_B64_LEN);
    assert_ok(authcert_nonce_check(secret, n, now + 10, AUTHCERT_NONCE_MAX_AGE));
    /* too old, from the future, another server's, altered, truncated */
    assert_status(authcert_nonce_check(secret, n, now + 301, 300), AUTHCERT_E_AUTH);
    assert_status(authcert_nonce_check(secret, n, now - 61, 300), AUTHCERT_E_AUTH);
    memcpy(other, secret, 32);
    other[0] ^= 1;
    assert_status(authcert_nonce_check(other, n, now, 300), AUTHCERT_E_AUTH);
    memcpy(forged, n, sizeof forged);
    forged[3] = forged[3] == 'A' ? 'B' : 'A';
    assert_status(authcert_nonce_check(secret, forged, now, 300), AUTHCERT_E_AUTH);
    forged[10] = '\0';
    assert_status(authcert_nonce_check(secret, forged, now, 300), AUTHCERT_E_AUTH);
    assert_status(authcert_nonce_check(secret, NULL, now, 300), AUTHCERT_E_AUTH);
}

static void proof_round_trip(const char *alg, const char *curve)
{
    EVP_PKEY *k = curve != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, alg, curve)
                                : EVP_PKEY_Q_keygen(NULL, NULL, alg);
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char pin[AUTHCERT_PIN_LEN + 1], seen[53], *spki = NULL, *ospki = NULL, *text = NULL,
        *sig = NULL, *text2 = NULL;

    assert_non_null(k);
    assert_ok(authcert_key_pin(k, pin));
    assert_ok(authcert_key_spki(k, &spki));
    assert_ok(authcert_key_spki(other, &ospki));
    assert_ok(authcert_enroll_proof_text("agent-1", pin, "mgmt-1", "nonce-1", NULL, &text));
    assert_non_null(strstr(text, "\n0000000000000000000000000000000000000000000000000000000000000000"));
    assert_ok(authcert_proof_sign(k, text, &sig));
    assert_ok(authcert_proof_verify(spki, text, sig, seen));
    assert_string_equal(seen, pin);
    assert_ok(authcert_spki_pin(spki, seen));
    assert_string_equal(seen, pin);
    /* the same signature for another text, or with another key: refused */
    assert_ok(authcert_enroll_proof_text("agent-2", pin, "mgmt-1", "nonce-1", NULL, &text2));
    assert_status(authcert_proof_verify(spki, text2, sig, seen), AUTHCERT_E_AUTH);
    assert_status(authcert_proof_verify(ospki, text, sig, seen), AUTHCERT_E_AUTH);
    assert_status(authcert_proof_verify(spki, text, "AAAA", seen), AUTHCERT_E_AUTH);
    free(text);
    free(text2);
    free(sig);
    free(spki);
    free(ospki);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void test_proofs_p256_and_ed25519(void **state)
{
    (void)state;
    proof_round_trip("EC", "P-256");
    proof_round_trip("ED25519", NULL);
}

static void test_keys_we_do_not_take(void **state)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    char *spki = NULL, pin[53];

    (void)state;
    assert_ok(authcert_key_spki(rsa, &spki));
    assert_status(authcert_spki_pin(spki, pin), AUTHCERT_E_CORRUPT);
    free(spki);
    assert_ok(authcert_key_spki(p384, &spki));
    assert_status(authcert_spki_pin(spki, pin), AUTHCERT_E_CORRUPT);
    free(spki);
    assert_status(authcert_spki_pin("not base64url!", pin), AUTHCERT_E_CORRUPT);
    assert_status(authcert_spki_pin("AAAA", pin), AUTHCERT_E_CORRUPT);
    assert_status(authcert_spki_pin(NULL, pin), AUTHCERT_E_CORRUPT);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
}

static void test_tokens(void **state)
{
    char id[13], secret_b64[AUTHCERT_TOKEN_SECRET_B64_LEN + 1], tok[80], id2[33],
        s2[AUTHCERT_TOKEN_SECRET_B64_LEN + 1], h1[65], h2[65];

    (void)state;
    assert_ok(authcert_token_new(id, secret_b64));
    assert_int_equal(strlen(id), 12);
    assert_int_equal(strlen(secret_b64), AUTHCERT_TOKEN_SECRET_B64_LEN);
    /* An id is an argument of authcert --enroll-token revoke: never like a
     * flag (a first '-' came once in 32; 640 draws miss it by chance ~1e-9). */
    for (int i = 0; i < 640; i++) {
        char idn[13], sn[AUTHCERT_TOKEN_SECRET_B64_LEN + 1];
        assert_ok(authcert_token_new(idn, sn));
        assert_true(idn[0] != '-' && idn[0] != '_');
    }
    snprintf(tok, sizeof tok, "%s.%s", id, secret_b64);
    assert_ok(authcert_token_split(tok, id2, s2));
    assert_string_equal(id2, id);
    assert_string_equal(s2, secret_b64);
    authcert_token_hash(secret_b64, h1);
    authcert_sha256_hex(secret_b64, strlen(secret_b64), h2);
    assert_string_equal(h1, h2);
    assert_status(authcert_token_split("no-dot", id2, s2), AUTHCERT_E_CORRUPT);
    assert_status(authcert_token_split(".abc", id2, s2), AUTHCERT_E_CORRUPT);
    assert_status(authcert_token_split("id.short", id2, s2), AUTHCERT_E_CORRUPT);
    snprintf(tok, sizeof tok, "i d.%s", secret_b64);
    assert_status(authcert_token_split(tok, id2, s2), AUTHCERT_E_CORRUPT);
    assert_status(authcert_token_split(NULL, id2, s2), AUTHCERT_E_CORRUPT);
}

/* The default server id: the same for the same secret (every node), another
 * for another, and HKDF as openssl computes it. */
static void test_derived_server_id(void **state)
{
    uint8_t a[AUTHCERT_SECRET_LEN], b[AUTHCERT_SECRET_LEN];
    char ida[AUTHCERT_DERIVED_SERVER_ID_LEN + 1], ida2[AUTHCERT_DERIVED_SERVER_ID_LEN + 1];
    char idb[AUTHCERT_DERIVED_SERVER_ID_LEN + 1], cmd[512], want[64] = "";
    FILE *p;

    (void)state;
    memset(a, 0x11, sizeof a);
    memset(b, 0x22, sizeof b);
    assert_int_equal(authcert_server_id_derive(a, ida), AUTHCERT_OK);
    assert_int_equal(authcert_server_id_derive(a, ida2), AUTHCERT_OK);
    assert_int_equal(authcert_server_id_derive(b, idb), AUTHCERT_OK);
    assert_string_equal(ida, ida2);
    assert_string_not_equal(ida, idb);
    assert_int_equal(strlen(ida), AUTHCERT_DERIVED_SERVER_ID_LEN);
    assert_memory_equal(ida, "authcert-", 9);
    snprintf(cmd, sizeof cmd, "openssl kdf -keylen 8 -kdfopt digest:SHA256 -kdfopt hexkey:%s "
             "-kdfopt 'salt:authcert-v2 server id' -kdfopt info: HKDF 2>/dev/null",
             "1111111111111111111111111111111111111111111111111111111111111111");
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(want, sizeof want, p));
    pclose(p);
    /* openssl prints AA:BB:...; ours is aabb... */
    char hex[17] = "";
    for (size_t i = 0, k = 0; want[i] != '\0' && k < 16; i++)
        if (want[i] != ':' && want[i] != '\n')
            hex[k++] = (char)tolower((unsigned char)want[i]);
    assert_string_equal(ida + 9, hex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac_key_and_mac_match_openssl),
        cmocka_unit_test(test_mac_kdf_matches),
        cmocka_unit_test(test_every_field_is_covered),
        cmocka_unit_test(test_header_has_one_spelling),
        cmocka_unit_test(test_nonces),
        cmocka_unit_test(test_proofs_p256_and_ed25519),
        cmocka_unit_test(test_keys_we_do_not_take),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_derived_server_id),
    };
    int rc;

    assert_int_equal(authcert_init(), AUTHCERT_OK);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    authcert_cleanup();
    return rc;
}
