#!/usr/bin/env bash
# Installs what building (and, with --test, testing) threatlog needs and is missing: a C++
# compiler, make and libclang (the RocksDB bindings are generated with bindgen and RocksDB itself
# is C++); with --test also python3 with venv (the PyMISP suite) and Suricata (rule exports). On Debian/Ubuntu
# it installs the packages itself (as root, or through sudo); elsewhere, or when it cannot
# install, it names what is missing and exits non-zero.
#
# Each check tests what the build actually uses, not a file that merely looks like it:
# - libclang: the shared library bindgen loads (libclang.so, libclang.so.N, libclang-N.so…;
#   not libclang-cpp, the C++ interface library other LLVM packages install) and clang's
#   builtin headers (stddef.h), which bindgen needs to parse RocksDB's C header;
# - the compiler: `c++` compiles and links a small program;
# - venv: `python3 -m venv` creates a virtualenv with pip (Debian splits ensurepip out).
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "prereqs: cargo not found. Install the Rust toolchain (https://rustup.rs), then re-run." >&2
  exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

have_cxx() {
  command -v c++ >/dev/null 2>&1 || return 1
  printf '#include <string>\nint main() { return std::string("ok").size() == 2 ? 0 : 1; }\n' >"$scratch/t.cc"
  c++ -o "$scratch/t" "$scratch/t.cc" >/dev/null 2>&1
}

# The file names clang-sys (bindgen's loader) looks for, in the places it looks.
have_libclang() {
  local dirs=() d f found_lib=0 found_headers=0
  [ -n "${LIBCLANG_PATH:-}" ] && dirs+=("$LIBCLANG_PATH")
  for d in /usr/lib/llvm-*/lib /usr/lib/*-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
    [ -d "$d" ] && dirs+=("$d")
  done
  for d in "${dirs[@]}"; do
    for f in "$d"/libclang.so "$d"/libclang.so.* "$d"/libclang-[0-9]*.so "$d"/libclang-[0-9]*.so.*; do
      [ -e "$f" ] && found_lib=1
    done
  done
  for f in /usr/lib/llvm-*/lib/clang/*/include/stddef.h /usr/lib/clang/*/include/stddef.h \
    /usr/local/lib/clang/*/include/stddef.h; do
    [ -e "$f" ] && found_headers=1
  done
  [ $found_lib -eq 1 ] && [ $found_headers -eq 1 ]
}

have_venv() {
  command -v python3 >/dev/null 2>&1 || return 1
  python3 -m venv "$scratch/venv" >/dev/null 2>&1 && [ -x "$scratch/venv/bin/pip" ]
}

missing=()
have_cxx || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
have_libclang || missing+=(libclang-dev)
need_suricata=0
if [ "${1:-}" = "--test" ]; then
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  have_venv || missing+=(python3-venv)
  command -v suricata >/dev/null 2>&1 || need_suricata=1
fi
[ ${#missing[@]} -eq 0 ] && [ $need_suricata -eq 0 ] && exit 0

all_missing=("${missing[@]}")
[ $need_suricata -eq 1 ] && all_missing+=(suricata)

fail() {
  echo "prereqs: missing ${all_missing[*]}: $1" >&2
  echo "  Install them (Debian/Ubuntu: apt-get install ${all_missing[*]}; Fedora: dnf install" >&2
  echo "  gcc-c++ make clang-devel python3 suricata; macOS: xcode-select --install), then re-run." >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "this system has no apt-get to install them with"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "not root and no sudo to install them with"
  sudo="sudo"
fi

# Another apt (unattended upgrades, a second terminal) may hold the package locks: wait for it.
APT_LOCK_WAIT_S=600
apt_get() { $sudo apt-get -o DPkg::Lock::Timeout=$APT_LOCK_WAIT_S "$@"; }

echo "prereqs: installing ${all_missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_get update -qq || fail "apt-get update failed"
if [ ${#missing[@]} -gt 0 ]; then
  apt_get install -y -qq "${missing[@]}" >/dev/null || fail "apt-get install failed"
fi
if [ $need_suricata -eq 1 ]; then
  release=()
  # Debian 12 ships Suricata in bookworm-backports only; enable it when the main archive
  # has no candidate.
  if ! apt-cache policy suricata 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ -n "$codename" ] && [ -f /etc/debian_version ]; then
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$codename" \
        | $sudo tee /etc/apt/sources.list.d/threatlog-backports.sources >/dev/null
      apt_get update -qq || fail "apt-get update (backports) failed"
      release=(-t "$codename-backports")
    fi
  fi
  apt_get install -y -qq "${release[@]}" suricata >/dev/null || fail "apt-get install suricata failed"
fi

# What was installed must now pass the same checks, or the build would fail later, less clearly.
have_cxx || fail "g++ installed but c++ still does not compile"
have_libclang || fail "libclang-dev installed but bindgen's libclang or clang's headers are still not found"
if [ "${1:-}" = "--test" ]; then
  have_venv || fail "python3-venv installed but python3 -m venv still fails"
  command -v suricata >/dev/null 2>&1 || fail "suricata installed but not on PATH"
fi
