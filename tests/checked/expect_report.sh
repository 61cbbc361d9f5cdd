#!/usr/bin/env bash
# expect_report.sh — runs one misuse case and asserts the checked build's report: death by SIGABRT, one exact line on stderr.
# Usage: expect_report.sh [--preload LIB] CASE PROGRAM [ARGS...]
# The program prints ptr=, block= and tid= lines first (tests/checked/misuse.c);
# the expected line is built from them and the case's class, and must be all
# of stderr.
set -u

preload=
if [[ ${1-} == --preload ]]; then
    preload=$2
    shift 2
fi
(($# >= 2)) || {
    echo "usage: $0 [--preload LIB] CASE PROGRAM [ARGS...]" >&2
    exit 2
}
case=$1
shift

fail() {
    echo "FAIL [$case]: $*" >&2
    echo "---- stdout ----" >&2
    cat "$tmp/out" >&2
    echo "---- stderr ----" >&2
    cat "$tmp/err" >&2
    exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-checked.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ulimit -c 0 # an abort per case: no core files

if [[ -n $preload ]]; then
    LD_PRELOAD=$preload "$@" >"$tmp/out" 2>"$tmp/err"
else
    "$@" >"$tmp/out" 2>"$tmp/err"
fi
rc=$?

fact() {
    sed -n "s/^$1=//p" "$tmp/out"
}
ptr=$(fact ptr)
block=$(fact block)
tid=$(fact tid)

# The report each case must produce.
small4="class 4 (128 B), thread $tid"
large="class large (2000000 B), thread $tid"
medium="class 51 (229376 B), thread $tid"
case $case in
double_free | double_free_remote) want="hakmem: double free of $ptr, $small4" ;;
foreign) want="hakmem: free of foreign pointer $ptr, thread $tid" ;;
unallocated) want="hakmem: free of unallocated block $ptr, class 11 (2048 B), thread $tid" ;;
unallocated_fresh) want="hakmem: free of unallocated block $ptr, class 13 (3072 B), thread $tid" ;;
interior) want="hakmem: free of interior pointer $ptr (block $block + 8), $small4" ;;
overflow) want="hakmem: write past the end of $ptr (110 B requested, byte 110 overwritten), $small4" ;;
use_after_free) want="hakmem: use after free of $ptr (byte 40 written after free), class 5 (256 B), thread $tid" ;;
realloc_freed) want="hakmem: realloc of freed block $ptr, $small4" ;;
large_double_free) want="hakmem: double free of $ptr, $large" ;;
large_interior) want="hakmem: free of interior pointer $ptr (block $block + 64), $large" ;;
large_overflow) want="hakmem: write past the end of $ptr (2000000 B requested, byte 2000000 overwritten), $large" ;;
medium_double_free) want="hakmem: double free of $ptr, $medium" ;;
medium_interior) want="hakmem: free of interior pointer $ptr (block $block + 65536), $medium" ;;
medium_overflow) want="hakmem: write past the end of $ptr (200000 B requested, byte 200000 overwritten), $medium" ;;
invariant) want="hakmem: check failed: a released slab is live and has no block out (slab.c:N), thread $tid" ;;
*)
    echo "unknown case '$case'" >&2
    exit 2
    ;;
esac

((rc == 2)) && fail "the program could not set the case up (exit 2)"
((rc == 3)) && fail "the misuse was accepted: no report, no abort"
((rc == 128 + 6)) || fail "exit status $rc, want death by SIGABRT (134)"
[[ -n $tid ]] || fail "the program printed no tid= line"
[[ $case == invariant || -n $ptr ]] || fail "the program printed no ptr= line"
lines=$(wc -l <"$tmp/err")
((lines == 1)) || fail "stderr has $lines lines, want exactly one"
got=$(cat "$tmp/err")
# A check names its source line: compared as N, so that editing the file does not break the test.
[[ $case == invariant ]] && got=$(sed -E 's/\(([a-z_]+\.c):[0-9]+\)/(\1:N)/' <<<"$got")
[[ $got == "$want" ]] || fail "stderr is not the expected line
want: $want
got:  $got"
echo "PASS [$case]: $got"
