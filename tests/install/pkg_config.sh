#!/usr/bin/env bash
# pkg_config.sh — an installed build, moved to another folder, is found by pkg-config there and serves a program.
# Usage: pkg_config.sh BUILD_DIR PC_NAME CC   (PC_NAME: hakmem, hakmem-trace or hakmem-debug)
# Installs BUILD_DIR into a fresh temporary prefix, moves that prefix (the .pc file must not name where it was
# installed), compiles tests/install/uses_hakmem.c with `pkg-config --cflags --libs PC_NAME` (PKG_CONFIG_PATH
# into the prefix only), links it against the installed library and runs it with LD_LIBRARY_PATH into the prefix:
# it must be served by that library (malloc and hak_malloc both counted by hak_stats_get).
set -euo pipefail
build=$1
name=$2
cc=$3
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*"; exit 1; }

[ -f "$build/CMakeCache.txt" ] ||
  fail "no build in $build: build it with scripts/test, or cmake --preset $(basename "$build") && cmake --build --preset $(basename "$build")"
command -v pkg-config >/dev/null || fail "pkg-config is not installed (apt-get install pkgconf)"

work=$(mktemp -d /tmp/hakmem-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/installed" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install $build"; }
mv "$work/installed" "$work/prefix"
prefix=$work/prefix
pc=$(find "$prefix" -name "$name.pc")
[ -n "$pc" ] || fail "no $name.pc under $prefix: $(cd "$prefix" && find . -type f | tr '\n' ' ')"
if grep -n "$work/installed\|/usr/local" "$pc"; then
  fail "$pc names a fixed prefix (above): it cannot be used where the tree was moved"
fi

export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs "$name") || fail "pkg-config --cflags --libs $name failed"
libdir=$(pkg-config --variable=libdir "$name")
echo "pkg-config --cflags --libs $name: $flags"
[ "$(realpath "$libdir")" = "$(realpath "$(dirname "$(dirname "$pc")")")" ] ||
  fail "pkg-config's libdir $libdir is not the folder holding pkgconfig/$name.pc"
# shellcheck disable=SC2086  # the flags are words
"$cc" -o "$work/uses_hakmem" "$here/uses_hakmem.c" $flags || fail "compiling against the installed $name"
LD_LIBRARY_PATH=$libdir "$work/uses_hakmem" "$prefix" || fail "the program linked against the installed $name"
echo "ok: $name installed, moved, found by pkg-config and serving a program"
