//! `cargo bench --bench audit [-- OPTIONS]`: builds a large log, exports it, and times `audit
//! verify` of the bundle against raw strict ed25519 verification of the same signatures;
//! reports peak memory.
//! `--help` after `--` lists the options; `--json` prints one JSON object.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

/// The product's allocator (see `src/main.rs`): the benchmark appends in this process, and
/// its figures are the product's only with the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    support::main::<support::audit::AuditOptions>(support::audit::figures, support::audit::text)
}
