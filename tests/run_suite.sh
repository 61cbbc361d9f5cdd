#!/usr/bin/env bash
# run_suite.sh — runs another build's tests (the sanitizer, trace and checked presets) as one entry of this suite.
# Usage: run_suite.sh BUILD_DIR LABEL_REGEX. A missing build fails: a suite that never ran must not pass.
set -u
dir=$1
labels=$2
if [ ! -f "$dir/CTestTestfile.cmake" ]; then
  preset=$(basename "$dir")
  echo "FAIL: no $preset build in $dir, so its suite did not run: build every preset with scripts/test, or this one"
  echo "with: cmake --preset $preset && cmake --build --preset $preset"
  exit 1
fi
exec ctest --test-dir "$dir" -L "$labels" --output-on-failure
