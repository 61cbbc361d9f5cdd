#!/usr/bin/env bash
# repeat.sh — runs a command N times in a row; any failure fails the whole test and shows that run's output.
# REPEAT_SEEDED_ENV="NAME=value" sets NAME for each run with @RUN@ in value replaced by the run's number
# (e.g. HAKMEM_FAULT_OS=prob:0.2:@RUN@: a different fault sequence per run, each replayable).
set -u
runs=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
seeded=${REPEAT_SEEDED_ENV:-}
for ((i = 1; i <= runs; i++)); do
  setting=""
  if [ -n "$seeded" ]; then
    setting=${seeded//@RUN@/$i}
    export "${setting?}"
  fi
  if ! "$@" --seed "$i" >"$out" 2>&1; then
    echo "run $i of $runs failed: ${setting:+$setting }$*  --seed $i"
    cat "$out"
    exit 1
  fi
done
tail -n 1 "$out"
echo "$runs/$runs runs passed"
