//! Organisations, users and API keys of a node, made with the real CLI.
#![allow(dead_code)]

use std::path::Path;

/// The site admin's API key that `init` wrote.
pub fn admin_key(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string()
}

/// Adds a user of the existing organisation `org` with `role`; returns its API key.
pub fn cli_user(dir: &Path, org: &str, role: &str, email: &str) -> String {
    let out = super::ok(
        dir,
        &[
            "user", "add", "--org", org, "--role", role, "--email", email,
        ],
    );
    out.rsplit(' ').next().unwrap().trim().to_string()
}

/// Adds an organisation and a user of it with `role`; returns the user's API key.
pub fn org_member(dir: &Path, org: &str, role: &str, email: &str) -> String {
    super::ok(dir, &["org", "add", "--name", org]);
    cli_user(dir, org, role, email)
}

/// Adds an organisation and a plain user of it; returns the user's API key.
pub fn org_user(dir: &Path, org: &str, email: &str) -> String {
    org_member(dir, org, "user", email)
}

/// The uuid of organisation `name` on the node in `dir`.
pub fn org_uuid(dir: &Path, name: &str) -> String {
    let list = super::ok(dir, &["org", "list"]);
    let line = list
        .lines()
        .find(|line| line.trim_end().ends_with(name))
        .unwrap_or_else(|| panic!("{name} in {list}"));
    line.split_whitespace().nth(1).unwrap().to_string()
}
