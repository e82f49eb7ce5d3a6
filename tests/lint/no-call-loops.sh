#!/bin/sh
# No loop of calls among the object files given (make lint: authcertd's).
#
#   tests/lint/no-call-loops.sh [-v] FILE.o FILE.o...
#
# A file calls another when it needs (nm: U) a global symbol the other
# defines. Parts of a daemon meet through its context, not by calling back
# up (STYLE.md): a part that must wake another registers a callback. So the
# calls must form no loop, direct (a <-> b) or round several files; tsort
# finds one. Prints the loop and the calls that make it and exits 1; exits 0
# with a one-line summary otherwise (-v: every call between the files too).
set -eu

verbose=0
if [ "${1:-}" = "-v" ]; then
    verbose=1
    shift
fi
if [ $# -lt 1 ]; then
    echo "usage: $0 [-v] FILE.o..." >&2
    exit 2
fi
for o in "$@"; do
    if [ ! -f "$o" ]; then
        echo "$0: $o: no such file" >&2
        exit 2
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "symbol file" pairs: what each file defines, what each needs.
for o in "$@"; do
    f=$(basename "$o" .o)
    nm -P -g --defined-only "$o" | awk -v f="$f" '{ print $1, f }' >>"$tmp/defs"
    nm -P -u "$o" | awk -v f="$f" '{ print $1, f }' >>"$tmp/uses"
done

# "caller callee symbol...", one line per pair of files that call.
awk 'NR == FNR { def[$1] = $2; next }
     ($1 in def) && def[$1] != $2 {
         k = $2 " " def[$1]
         if (!(k in syms)) order[n++] = k
         syms[k] = syms[k] " " $1
     }
     END { for (i = 0; i < n; i++) print order[i] syms[order[i]] }' \
    "$tmp/defs" "$tmp/uses" | sort >"$tmp/edges"

# Every file is a node, called or not; then every call.
{
    for o in "$@"; do
        f=$(basename "$o" .o)
        echo "$f $f"
    done
    awk '{ print $1, $2 }' "$tmp/edges"
} >"$tmp/pairs"

if [ "$verbose" = 1 ]; then
    awk '{ printf "%s -> %s:", $1, $2; for (i = 3; i <= NF; i++) printf " %s", $i; print "" }' \
        "$tmp/edges"
fi

if ! tsort "$tmp/pairs" >/dev/null 2>"$tmp/loop"; then
    # tsort names the files of each loop it breaks, one a line, after a
    # "input contains a loop" line.
    grep -v 'contains a loop' "$tmp/loop" | sed 's/^tsort: //' | sort -u >"$tmp/in_loop"
    echo "$0: a loop of calls among: $(tr '\n' ' ' <"$tmp/in_loop")" >&2
    awk 'NR == FNR { in_loop[$1] = 1; next }
         ($1 in in_loop) && ($2 in in_loop) {
             printf "  %s -> %s:", $1, $2
             for (i = 3; i <= NF; i++) printf " %s", $i
             print ""
         }' "$tmp/in_loop" "$tmp/edges" >&2
    exit 1
fi
echo "no-call-loops: $# files, $(wc -l <"$tmp/edges") calling pairs, no loop"
