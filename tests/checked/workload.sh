#!/usr/bin/env bash
# workload.sh — a normal multithreaded workload under the checked library must run clean: no report, no abort, hakmem serving.
# Usage: workload.sh LIB RUNS PROGRAM [ARGS...]   (PROGRAM gets --seed N appended, like tests/stress/repeat.sh)
set -u
lib=$1
runs=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-workload.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for simple in 0 1; do
    for ((i = 1; i <= runs; i++)); do
        rc=0
        LD_PRELOAD=$lib HAKMEM_STATS=1 HAKMEM_TINY_MID_REFILL_SIMPLE=$simple "$@" --seed "$i" >"$tmp/out" 2>"$tmp/err" || rc=$?
        # Every invariant check and every block check ran in this process; a
        # false positive would be a "hakmem: " line and an abort.
        if ((rc != 0)) || grep -q '^hakmem: ' "$tmp/err" || ! grep -q '^hakmem stats: allocs [1-9]' "$tmp/err"; then
            echo "FAIL: run $i (mid-simple $simple) of '$*' under $lib: exit status $rc"
            cat "$tmp/out" "$tmp/err"
            exit 1
        fi
    done
    echo "mid-simple $simple: $runs/$runs runs clean: $(tail -n 1 "$tmp/out")"
done
