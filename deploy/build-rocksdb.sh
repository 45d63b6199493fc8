#!/usr/bin/env bash
# Provides .rocksdb/librocksdb.a, the prebuilt RocksDB that .cargo/config.toml links threatlog
# against. RocksDB is compiled once by the tiny crate in deploy/rocksdb (same version and
# features as threatlog's `rocksdb` dependency) and kept under the cargo target directory, so
# that changes to threatlog's own dependencies never recompile the C++.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
cache="$target/rocksdb-lib"
if [ ! -f "$cache/librocksdb.a" ]; then
  echo "build-rocksdb: compiling RocksDB once (20-40 minutes on 2 cores)" >&2
  ROCKSDB_COMPILE=1 CARGO_TARGET_DIR="$target/rocksdb-build" \
    cargo build --quiet --manifest-path deploy/rocksdb/Cargo.toml
  built=$(ls -t "$target"/rocksdb-build/debug/build/librocksdb-sys-*/out/librocksdb.a | head -n 1)
  mkdir -p "$cache"
  cp "$built" "$cache/librocksdb.a.partial"
  mv "$cache/librocksdb.a.partial" "$cache/librocksdb.a"
fi
ln -sfn "$cache" .rocksdb
