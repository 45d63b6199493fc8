//! `cargo bench --bench api [-- OPTIONS]`: adds events over HTTP with concurrent keep-alive
//! clients, then times value searches against a node holding many attributes.
//! `--help` after `--` lists the options; `--json` prints one JSON object.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

fn main() -> std::process::ExitCode {
    support::main::<support::api::ApiOptions>(support::api::figures, support::api::text)
}
