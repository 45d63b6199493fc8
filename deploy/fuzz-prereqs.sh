#!/usr/bin/env bash
# Installs what `make fuzz-smoke` needs beyond the build prerequisites (deploy/prereqs.sh) and
# is missing: cargo-fuzz, from crates.io, at the version pinned here. The targets build on the
# stable toolchain (`cargo fuzz build --sanitizer none` passes no nightly-only flag), so no
# nightly is needed; address sanitizer runs are the one thing that does (`cargo +nightly fuzz
# run TARGET` with cargo-fuzz's default sanitizer), and are not part of the smoke run.
#
# Like deploy/prereqs.sh, the check tests what the run uses: `cargo fuzz` answering with its
# version, not a file that looks like it.
set -euo pipefail

# The cargo-fuzz release the smoke run was written against; installed with its own lock file.
CARGO_FUZZ_VERSION=0.13.2

if ! command -v cargo >/dev/null 2>&1; then
  echo "fuzz-prereqs: cargo not found. Install the Rust toolchain (https://rustup.rs), then re-run." >&2
  exit 1
fi

# Another release already there is used as it is: the smoke run needs only `build --sanitizer
# none` and `list`, and runs the built targets itself.
cargo fuzz --version >/dev/null 2>&1 && exit 0

echo "fuzz-prereqs: installing cargo-fuzz $CARGO_FUZZ_VERSION (about 2 minutes on 2 cores)" >&2
cargo install --quiet --locked "cargo-fuzz@$CARGO_FUZZ_VERSION" || {
  echo "fuzz-prereqs: cargo install cargo-fuzz@$CARGO_FUZZ_VERSION failed; install it by hand, then re-run." >&2
  exit 1
}
installed=$(cargo fuzz --version 2>/dev/null) || {
  echo "fuzz-prereqs: cargo-fuzz installed but \`cargo fuzz\` still does not run (is ~/.cargo/bin on PATH?)" >&2
  exit 1
}
echo "fuzz-prereqs: $installed" >&2
