//! `cargo bench --bench ingest [-- OPTIONS]`: appends events into log and views in a scratch
//! directory and compares with raw ed25519 signing and RocksDB write rates measured in the
//! same run.
//! `--help` after `--` lists the options; `--json` prints one JSON object.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

/// The product's allocator (see `src/main.rs`): the benchmark appends in this process, and
/// its figures are the product's only with the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    support::main::<support::ingest::IngestOptions>(support::ingest::figures, support::ingest::text)
}
