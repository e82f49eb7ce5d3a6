#!/usr/bin/env bash
# Under `set -o pipefail`, a pipeline whose reader stops early (`grep -q`,
# `grep -m`, `head`) fails whenever the writer is still writing when the
# reader exits: the writer dies of SIGPIPE and the pipeline takes its status.
# How often depends on the machine's load (16 of 300 `ldd | grep -q` failed
# with two busy CPUs), so such a line is a flaky test or a wrong decision.
# This check lists them in every script that sets pipefail, and in the
# libraries such scripts source (scripts/lib/). Exit 1 when it finds one.
#
# Usage: tests/lint/pipefail.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"

files=$(git ls-files 2>/dev/null || find . -type f -printf '%P\n')
bad=0
while IFS= read -r f; do
    [ -f "$f" ] || continue
    case $f in
        scripts/lib/*.bash) ;;
        *.c | *.h | *.md | *.txt | *.json | *.py | *.cjs | *.lua | *.in | tests/fuzz/corpus/*) continue ;;
        *) grep -qs -- 'pipefail' "$f" || continue ;;
    esac
    # Comments aside: a pipe into a reader that may stop before the writer.
    if out=$(grep -nE '^[^#]*\|[[:space:]]*(grep[[:space:]]+(-[a-zA-Z]*[qm]|--quiet|--max-count)|head([[:space:]]|$)|sed[[:space:]]+-?n?[[:space:]]*[0-9]*q)' "$f"); then
        printf '%s\n' "$out" | sed "s|^|$f:|"
        bad=1
    fi
done <<<"$files"
if [ $bad = 1 ]; then
    echo "pipefail.sh: a reader that can stop early in a pipefail script (above): read the whole output first, e.g. case \$(cmd) in *x*) ..." >&2
    exit 1
fi
