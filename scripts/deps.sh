# deps.sh — sourced by scripts/*: installs the Debian packages a script needs, only those missing.
# Usage: hak_need_packages pkg...   (as root; runs apt-get update once before installing)

hak_need_packages() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building and testing hakmem needs on Debian 12 (LTTng-UST and Babeltrace2 for the trace build, libunwind
# for its stacks and elfutils' eu-addr2line to resolve them, chromium to render the timeline and the flame graph
# in tests, pkgconf for the installed hakmem.pc's test; git, python3, sqlite3, coreutils, make, gcc and binutils
# are also the programs the preload tests run under hakmem).
HAK_BUILD_PACKAGES=(gcc make cmake libc6-dev git coreutils python3 sqlite3 binutils pkgconf
  lttng-tools liblttng-ust-dev babeltrace2 python3-bt2 libbabeltrace2-dev libbabeltrace2-python-plugin-provider
  libunwind-dev elfutils chromium)
