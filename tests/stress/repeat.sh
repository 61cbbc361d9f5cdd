#!/usr/bin/env bash
# repeat.sh — runs a command N times in a row; any failure fails the whole test and shows that run's output.
set -u
runs=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((i = 1; i <= runs; i++)); do
  if ! "$@" --seed "$i" >"$out" 2>&1; then
    echo "run $i of $runs failed: $*  --seed $i"
    cat "$out"
    exit 1
  fi
done
tail -n 1 "$out"
echo "$runs/$runs runs passed"
