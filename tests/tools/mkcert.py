#!/usr/bin/env python3
"""mkcert.py - self-signed certificates the certificate policy must judge.

    mkcert.py OUT_PREFIX [--type p256|ed25519|rsa2048] [--days-from N] [--days-to N]
              [--kind ours|ca-certsign|unknown-critical]

writes OUT_PREFIX.key (PKCS#8 PEM), OUT_PREFIX.crt (PEM), OUT_PREFIX.der,
and OUT_PREFIX.pem (certificate then key: the store's key file form, which
tests/tools/mktoken reads with --cert-pem). Validity runs from now + N days
to now + N days (negative for the past), which `openssl req` 3.0 cannot
write. The kinds:

    ours              what `authcert -c` writes: keyUsage critical
                      digitalSignature, basicConstraints critical CA:FALSE
    ca-certsign       a CA: basicConstraints critical CA:TRUE, keyUsage
                      critical keyCertSign only
    unknown-critical  ours plus a critical extension nobody knows
                      (1.3.6.1.4.1.55555.1)

Python's `cryptography` (Debian's python3-cryptography), not our library:
the certificates come from another implementation.
"""
import argparse
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")


def new_key(kind):
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sys.exit(f"mkcert.py: unknown key type {kind}")


def key_usage(digital_signature, cert_sign):
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--type", default="p256")
    ap.add_argument("--days-from", type=float, default=-1)
    ap.add_argument("--days-to", type=float, default=365)
    ap.add_argument("--kind", default="ours",
                    choices=["ours", "ca-certsign", "unknown-critical"])
    a = ap.parse_args()

    key = new_key(a.type)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"policy test {a.kind}")])
    b = (x509.CertificateBuilder()
         .subject_name(name).issuer_name(name)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=a.days_from))
         .not_valid_after(now + datetime.timedelta(days=a.days_to))
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False))
    if a.kind == "ca-certsign":
        b = (b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(key_usage(False, True), critical=True))
    else:
        b = (b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(key_usage(True, False), critical=True))
    if a.kind == "unknown-critical":
        b = b.add_extension(x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), critical=True)
    cert = b.sign(key, None if a.type == "ed25519" else hashes.SHA256())

    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    crt_pem = cert.public_bytes(serialization.Encoding.PEM)
    with open(a.out + ".key", "wb") as f:
        f.write(key_pem)
    with open(a.out + ".crt", "wb") as f:
        f.write(crt_pem)
    with open(a.out + ".der", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.DER))
    with open(a.out + ".pem", "wb") as f:
        f.write(crt_pem + key_pem)


if __name__ == "__main__":
    main()
