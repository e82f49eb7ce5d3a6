#!/bin/sh
# Golden vectors for tests/unit/test_cert.c and test_pkcs12.c, made with the
# openssl CLI only (nothing of ours), so that the library is checked against
# files another implementation wrote. Run from anywhere; rewrites the files
# next to this script. Keys are random: rerunning changes every file, and the
# tests read the expected values (thumbprints, DER) from the files themselves.
set -eu
cd "$(dirname "$0")"
PASS=authcert-test
SUBJ="/CN=authcert golden vector/O=authcert tests"
EXT="-addext keyUsage=critical,digitalSignature -addext basicConstraints=critical,CA:FALSE"

# selfsigned NAME KEYGEN-ARGS...: NAME.key (PKCS#8 PEM), NAME.pem, NAME.der
selfsigned() {
    name=$1; shift
    openssl genpkey "$@" -out "$name.key" 2>/dev/null
    # shellcheck disable=SC2086
    openssl req -new -x509 -key "$name.key" -subj "$SUBJ" -days 3650 -sha256 $EXT -out "$name.pem"
    openssl x509 -in "$name.pem" -outform DER -out "$name.der"
}

selfsigned p256     -algorithm EC -pkeyopt ec_paramgen_curve:P-256
selfsigned rsa2048  -algorithm RSA -pkeyopt rsa_keygen_bits:2048
selfsigned rsa1024  -algorithm RSA -pkeyopt rsa_keygen_bits:1024
selfsigned p384     -algorithm EC -pkeyopt ec_paramgen_curve:P-384
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-p256.key
# RSA keys for test_cert_policy.c, which makes its certificates itself (RSA
# key generation takes minutes under valgrind).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out policy-rsa2048.key
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out policy-rsa3072.key

# The SHA-256 fingerprint as authcert writes thumbprints (lowercase, no colons).
openssl x509 -in p256.pem -noout -fingerprint -sha256 | sed 's/^.*=//; s/://g' \
    | tr 'A-F' 'a-f' > p256.sha256

# OpenSSL 3's default PKCS#12 (PBES2/AES-256-CBC, HMAC-SHA-256).
openssl pkcs12 -export -in p256.pem -inkey p256.key -passout "pass:$PASS" -out p256.pfx
# As Windows exports them: RC2-40 certificates, 3DES key, SHA-1 MAC, with a
# chain certificate that is not the key's (p256.pem plays the CA).
openssl pkcs12 -export -legacy -in rsa2048.pem -inkey rsa2048.key -certfile p256.pem \
    -passout "pass:$PASS" -out rsa2048-legacy.pfx
# A PFX with no password at all (-passout pass: gives the empty password).
openssl pkcs12 -export -in p256.pem -inkey p256.key -passout pass: -out p256-nopass.pfx
# Certificate only.
openssl pkcs12 -export -nokeys -in p256.pem -passout "pass:$PASS" -out nokey.pfx
# Valid PKCS#12 whose key type authcert does not support.
openssl pkcs12 -export -in rsa1024.pem -inkey rsa1024.key -passout "pass:$PASS" -out rsa1024.pfx
openssl pkcs12 -export -in p384.pem -inkey p384.key -passout "pass:$PASS" -out p384.pfx

rm -f rsa1024.pem rsa1024.key rsa1024.der p384.key p384.pem rsa2048.key rsa2048.pem
