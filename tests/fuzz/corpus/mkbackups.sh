#!/usr/bin/env bash
# Seeds for fuzz_backup: real backups written by authcert -b, password
# fuzz corpus 7Qx!horse-lamp. Run from the source root after a build.
set -euo pipefail
bin=${AUTHCERT_BIN:-build/bin}
out=tests/fuzz/corpus/backup
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'fuzz corpus 7Qx!horse-lamp\n' > "$tmp/pw"
a() { "$bin/authcert" --store "$tmp/store" --password-file "$tmp/pw" -q "$@"; }
a -c --key-type p256
a -b "$out/one-p256.zip"
a -c --key-type ed25519
a -c --key-type rsa2048 --compromised
a -b "$out/three-mixed.zip"
