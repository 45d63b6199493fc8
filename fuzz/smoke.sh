#!/usr/bin/env bash
# `make fuzz-smoke`: builds every fuzz target (fuzz/fuzz_targets) once, on the stable toolchain
# without a sanitizer but with debug assertions and overflow checks, then runs each for
# FUZZ_SECONDS (default 20) on one core, one after another, from its seeds (fuzz/seeds/TARGET,
# where there are any). Prints one line per target. A panic, a failed assertion, an overflow,
# an input that runs longer than INPUT_SECONDS_MAX or memory past libFuzzer's limit fails the
# run; the input that did it is kept in FUZZ_TARGET_DIR/artifacts/TARGET/ to reproduce with
# `FUZZ_TARGET_DIR/<triple>/release/TARGET INPUT`.
#
# FUZZ_TARGET_DIR is where the targets build (default: CARGO_TARGET_DIR/fuzz, else
# target/fuzz), apart from the main build so that neither waits on the other's lock; RocksDB is
# linked from the prebuilt library as in the main build (.cargo/config.toml). The corpora the
# runs grow go to a temporary directory that is removed afterwards: nothing is written into the
# work tree but fuzz/Cargo.lock, copied from the main Cargo.lock on every run (so the targets
# build the dependency versions the node builds) and ignored by git.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/fuzz}"
# An input that runs this long is a hang (libFuzzer's own default is 20 minutes).
INPUT_SECONDS_MAX=10

triple=$(rustc -vV | sed -n 's/^host: //p')
cp Cargo.lock fuzz/Cargo.lock
cargo fuzz build --sanitizer none --target "$triple" --target-dir "$target_dir"
bin_dir="$target_dir/$triple/release"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0
for target in $(cargo fuzz list); do
  corpus="$scratch/corpus/$target"
  artifacts="$target_dir/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  seeds=()
  seed_count=0
  if [ -d "fuzz/seeds/$target" ]; then
    seeds=("fuzz/seeds/$target")
    seed_count=$(find "fuzz/seeds/$target" -type f | wc -l)
  fi
  log="$scratch/$target.log"
  # New inputs go to the first directory (the scratch corpus); the seeds are only read.
  # TMPDIR: what a target keeps in temporary files (search_parameters' node) goes with the
  # scratch directory.
  if TMPDIR="$scratch" "$bin_dir/$target" -max_total_time="$seconds" \
    -timeout="$INPUT_SECONDS_MAX" -artifact_prefix="$artifacts/" \
    "$corpus" "${seeds[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log")
    found=$(find "$corpus" -type f | wc -l)
    echo "fuzz-smoke: $target: ${runs:-?} runs in $seconds s, no crash ($seed_count seeds, $found inputs found)"
    passed=$((passed + 1))
  else
    echo "fuzz-smoke: $target: FAILED; the input is kept in $artifacts/, the end of its log:" >&2
    tail -n 40 "$log" | sed 's/^/    /' >&2
    failed=$((failed + 1))
  fi
done
echo "fuzz-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
