#!/usr/bin/env bash
# Installs what building (and, with --test, testing) threatlog needs and is missing: a C++ compiler and libclang
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
# With --test: the interchange tests load exported rules in the real Suricata engine.
need_suricata=0
if [ "${1:-}" = "--test" ]; then
  command -v suricata >/dev/null 2>&1 || need_suricata=1
fi
[ ${#missing[@]} -eq 0 ] && [ $need_suricata -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "prereqs: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ $need_suricata -eq 1 ]; then
    echo "prereqs: installing suricata" >&2
    release=()
    # Debian 12 ships Suricata in bookworm-backports only; enable it when the main archive
    # has no candidate.
    if ! apt-cache policy suricata 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
      if [ -n "$codename" ] && [ -f /etc/debian_version ]; then
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$codename" \
          | $sudo tee /etc/apt/sources.list.d/threatlog-backports.sources >/dev/null
        $sudo apt-get update -qq
        release=(-t "$codename-backports")
      fi
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${release[@]}" suricata >/dev/null
  fi
  exit 0
fi
[ $need_suricata -eq 1 ] && missing+=(suricata)
echo "prereqs: missing ${missing[*]}. Install a C++ compiler, make, libclang and python3 with venv" >&2
echo "  (Fedora: dnf install gcc-c++ make clang-devel; macOS: xcode-select --install)." >&2
exit 1
