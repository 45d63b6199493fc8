#!/usr/bin/env bash
# Proves the README's two commands on a fresh Debian 12 machine: builds a Debian 12 root file
# system with debootstrap in a scratch folder, copies in a clean clone of this repository's HEAD
# and the Rust toolchain (with the tests' reference data beside the clone, where CI has it), and
# runs there, as a new user would, `make test` and then `make run` until the node answers
# `GET /servers/getVersion`.
#
# The root file system holds what a Debian 12 install with a Rust toolchain has: Debian's
# required and important packages, ca-certificates (rustup and cargo fetch over https), gcc and
# libc6-dev (the linker rustc needs) and make (to type the README's commands). Everything else
# the build and the tests need, the two commands must install themselves.
#
# Not part of `make test`: it compiles RocksDB from scratch (about 12 minutes on 2 cores, the
# whole run about 25). Run it as root, whenever the prerequisites change:
#
#   sudo deploy/fresh-check.sh [--keep] [--dir DIR]
#
# --keep leaves the scratch folder (default /var/tmp/threatlog-fresh) for inspection.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
root=/var/tmp/threatlog-fresh
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --dir) root="$2"; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

[ "$(id -u)" -eq 0 ] || { echo "fresh-check: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
toolchain_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
[ -d "$toolchain_home" ] && [ -x "$cargo_home/bin/cargo" ] || {
  echo "fresh-check: no rustup toolchain at $toolchain_home and $cargo_home" >&2
  exit 1
}
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "fresh-check: installing debootstrap" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
fi

started=$(date +%s)
phase() { echo "fresh-check: [$(($(date +%s) - started)) s] $*" >&2; }

mounted=()
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && chroot "$root" /bin/sh -c "kill $node_pid" 2>/dev/null || true
  [ -n "$node_pid" ] && pkill -f "$root/root/threatlog/target/release/threatlog" 2>/dev/null || true
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  if [ $keep -eq 0 ]; then rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT

if [ -e "$root" ]; then
  echo "fresh-check: $root exists; remove it or pass --dir" >&2
  trap - EXIT
  exit 1
fi

base=/var/cache/threatlog/debootstrap-bookworm.tar
if [ -f "$base" ]; then
  phase "unpacking Debian 12 (bookworm) from $base into $root"
  mkdir -p "$root"
  tar -xpf "$base" -C "$root"
else
  phase "debootstrap Debian 12 (bookworm) into $root"
  debootstrap --include=ca-certificates,gcc,libc6-dev,make bookworm "$root" http://deb.debian.org/debian \
    >"$root.debootstrap.log" 2>&1 || { tail -20 "$root.debootstrap.log" >&2; exit 1; }
  rm -f "$root.debootstrap.log"
  mkdir -p "$(dirname "$base")"
  tar -cpf "$base.partial" -C "$root" . && mv "$base.partial" "$base"
fi
for fs in proc sys dev dev/pts; do
  mount --bind "/$fs" "$root/$fs"
  mounted+=("$root/$fs")
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
proxy_env=()
for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -n "${!name:-}" ] && proxy_env+=("$name=${!name}")
done

phase "copying the Rust toolchain and a clean clone of HEAD ($(git -C "$repo" rev-parse --short HEAD))"
mkdir -p "$root/root/.cargo"
cp -a "$toolchain_home" "$root/root/.rustup"
cp -a "$cargo_home/bin" "$root/root/.cargo/bin"
git clone --quiet --no-hardlinks "$repo" "$root/root/threatlog"
# The tests read MISP's reference data from shared/data beside the clone, as CI provides it
# (the product does not need it at run time): the first one found walking up from here.
for dir in "$repo"/.. "$repo"/../.. "$repo"/../../..; do
  if [ -d "$dir/shared/data" ]; then
    mkdir -p "$root/root/shared"
    cp -a "$dir/shared/data" "$root/root/shared/data"
    break
  fi
done

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 "${proxy_env[@]}" \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/threatlog && $1"
}

phase "make test"
in_root "make test" 2>&1 | tee "$root.make-test.log" | tail -n 40
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || { phase "make test FAILED (exit $status; log: $root.make-test.log)"; exit 1; }
phase "make test passed"

phase "make run"
in_root "make run >/root/make-run.log 2>&1 & echo \$! >/root/make-run.pid"
node_pid=$(cat "$root/root/make-run.pid")
answered=0
for _ in $(seq 1 900); do
  if [ -f "$root/root/threatlog/data/admin.key" ] && in_root '
      key=$(cat data/admin.key)
      exec 3<>/dev/tcp/127.0.0.1/8080 || exit 1
      printf "GET /servers/getVersion HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\nAccept: application/json\r\nConnection: close\r\n\r\n" "$key" >&3
      response=$(cat <&3)
      case "$response" in "HTTP/1.1 200"*) echo "${response##*$'"'"'\r\n\r\n'"'"'}" ;; *) exit 1 ;; esac
    ' 2>/dev/null; then
    answered=1
    break
  fi
  sleep 2
done
echo "--- make run printed:" >&2
head -n 20 "$root/root/make-run.log" | grep -v '^\s*Compiling' >&2 || true
[ $answered -eq 1 ] || { phase "make run: no answer on GET /servers/getVersion"; exit 1; }
phase "make run serves GET /servers/getVersion: fresh machine check passed"
