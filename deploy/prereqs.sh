#!/usr/bin/env bash
# Installs what building and testing threatlog needs and is missing: a C++ compiler and libclang
# (the RocksDB bindings are generated with bindgen and RocksDB itself is C++), and python3 with
# venv for the PyMISP suite. On Debian/Ubuntu it installs the packages itself (as root, or
# through sudo); elsewhere it says what to install.
set -euo pipefail

missing=()
command -v cargo >/dev/null 2>&1 || {
  echo "prereqs: cargo not found. Install the Rust toolchain (https://rustup.rs), then re-run." >&2
  exit 1
}
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1; then
  missing+=(libclang-dev)
fi
# The PyMISP test suite runs in a virtualenv (Debian splits venv/ensurepip into python3-venv).
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "prereqs: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "prereqs: missing ${missing[*]}. Install a C++ compiler, make, libclang and python3 with venv" >&2
echo "  (Fedora: dnf install gcc-c++ make clang-devel; macOS: xcode-select --install)." >&2
exit 1
