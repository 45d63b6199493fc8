//! `cargo bench --bench sync [-- OPTIONS]`: pulls a node's published events into a second
//! node (its own process) over gRPC with mutual TLS, compared with raw signature verification
//! and raw tonic streaming.
//! `--help` after `--` lists the options; `--json` prints one JSON object.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

fn main() -> std::process::ExitCode {
    support::main::<support::sync::SyncOptions>(support::sync::figures, support::sync::text)
}
