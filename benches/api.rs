//! `cargo bench --bench api [-- OPTIONS]`: adds events over HTTP with concurrent keep-alive
//! clients, then times value searches against a node holding many attributes.
//! `--help` after `--` lists the options; `--json` prints one JSON object.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

/// The product's allocator (see `src/main.rs`): the node runs in this process, and its figures
/// are the product's only with the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    support::main::<support::api::ApiOptions>(support::api::figures, support::api::text)
}
