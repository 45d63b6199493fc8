//! Helpers shared by the integration tests: run the real `threatlog` binary on real data
//! directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shared reference data: the first `shared/data` directory found walking up from the
/// crate (`../shared/data` in CI; further up from a worktree).
pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("shared/data"))
        .find(|dir| dir.is_dir())
        .expect("a shared/data directory above the crate")
}

/// Runs `threatlog --data DIR ARGS…`.
pub fn threatlog(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_threatlog"))
        .arg("--data")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the threatlog binary runs")
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let output = threatlog(dir, args);
    assert!(
        output.status.success(),
        "threatlog {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs a command that must fail and returns its stderr.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let output = threatlog(dir, args);
    assert!(
        !output.status.success(),
        "threatlog {args:?} succeeded but should fail: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).expect("utf-8 output")
}

/// A fresh initialised node directory inside a temp dir (kept alive by the returned guard).
pub fn node() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("node");
    ok(&dir, &["init", "--org-name", "Test Org"]);
    (temp, dir)
}
pub mod accounts;
pub mod attack;
pub mod engine;
pub mod feed_server;
pub mod forge;
pub mod hostile;
pub mod identity;
pub mod nodes;
pub mod server;
pub mod workload;

/// Opens a stopped node's RocksDB directly, as someone with disk access would.
pub fn open_db(dir: &Path) -> rocksdb::DB {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.join("db")).unwrap();
    rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.join("db"), names).unwrap()
}
