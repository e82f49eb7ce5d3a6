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
# three-mixed.zip repacked by 7-Zip (WinZip AE-2: CRC 0, deflated or stored,
# with the certs/ folder entry): the path backup_zip_read_member takes for them.
7z x -p'fuzz corpus 7Qx!horse-lamp' -o"$tmp/tree" "$out/three-mixed.zip" >/dev/null
rm -f "$out/three-mixed-7z.zip" "$out/three-mixed-7z-stored.zip"
(cd "$tmp/tree" &&
    7z a -tzip -mem=AES256 -p'fuzz corpus 7Qx!horse-lamp' "$OLDPWD/$out/three-mixed-7z.zip" . &&
    7z a -tzip -mx0 -mem=AES256 -p'fuzz corpus 7Qx!horse-lamp' \
        "$OLDPWD/$out/three-mixed-7z-stored.zip" .) >/dev/null
