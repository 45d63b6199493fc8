//! `cargo bench --bench sync [-- OPTIONS]`: pulls a node's published events into a second
//! node (its own process) over gRPC with mutual TLS, compared with raw signature verification
//! and raw tonic streaming.
//! `--help` after `--` lists the options; `--json` prints one JSON object.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

/// The product's allocator (see `src/main.rs`): the node runs in this process, and its figures
/// are the product's only with the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    support::main::<support::sync::SyncOptions>(support::sync::figures, support::sync::text)
}
