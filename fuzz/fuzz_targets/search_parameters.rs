//! restSearch filters from a client, as a `POST` body (JSON, optionally wrapped in
//! `{"request": …}`) and as a `GET`'s URL parameters: whatever the bytes, the endpoints'
//! parsing returns a query or an error without panicking.
//!
//! Organisation names and event ids are resolved on a real node, made once per process in a
//! temporary directory (removed when the process exits), on a fixed clock.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use threatlog::api::request::JsonBody;
use threatlog::api::search::request::parse_query;
use threatlog::api::search::url_params;
use threatlog::clock::ManualClock;
use threatlog::node::Node;
use threatlog::view::search::Scope;
use uuid::Uuid;

/// The node's clock: relative ages (`5d`) count back from here.
const NOW_MS: i64 = 1_700_000_000_000;

/// The node's directory, one per process (libFuzzer's `-fork` and `-jobs` run several).
fn node_dir() -> PathBuf {
    std::env::temp_dir().join(format!("threatlog-fuzz-search-{}", std::process::id()))
}

/// Removes the node's directory at exit: libFuzzer ends with `exit`, which drops no statics.
extern "C" fn remove_node_dir() {
    let _ = std::fs::remove_dir_all(node_dir());
}

static NODE: LazyLock<Node> = LazyLock::new(|| {
    let dir = node_dir();
    // A directory left by a crashed run of the same process id.
    let _ = std::fs::remove_dir_all(&dir);
    // SAFETY: `remove_node_dir` is a plain function that touches no state `exit` tears down.
    unsafe { libc::atexit(remove_node_dir) };
    // The fuzzer cannot run without its node: failing to make one is not a finding.
    Node::init(&dir, "Fuzz Org", Some(Uuid::from_u128(1)), false).expect("a node to search");
    Node::open_with_clock(&dir, Arc::new(ManualClock::new(NOW_MS))).expect("the node opens")
});

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let params = JsonBody(Some(value)).object("request");
        let _ = parse_query(&NODE, Scope::Events, &params);
    }
    // A query string, read as axum's `Query` extractor reads it.
    let query = std::str::from_utf8(data).ok();
    if let Some(pairs) = query.and_then(|query| serde_urlencoded::from_str(query).ok()) {
        let _ = parse_query(&NODE, Scope::Attributes, &url_params(pairs));
    }
});
