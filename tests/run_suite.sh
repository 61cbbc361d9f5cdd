#!/usr/bin/env bash
# run_suite.sh — runs another build's tests (the sanitizer presets) as one entry of this suite.
# Usage: run_suite.sh BUILD_DIR LABEL_REGEX. Exit 77 (skipped) when that build does not exist.
set -u
dir=$1
labels=$2
if [ ! -f "$dir/CTestTestfile.cmake" ]; then
  echo "no build in $dir: run scripts/test, or cmake --preset for it first"
  exit 77
fi
exec ctest --test-dir "$dir" -L "$labels" --output-on-failure
