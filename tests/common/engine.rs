//! Nodes in one process, driven through the sync engine: opening them and the cards that
//! pair them.
#![allow(dead_code)]

use std::path::Path;
use threatlog::node::Node;
use threatlog::sync::peer::Card;

/// Initialises a node of a new organisation `name` in `dir` and opens it.
pub fn init(dir: &Path, name: &str) -> Node {
    Node::init(dir, name, None, false).unwrap();
    Node::open(dir).unwrap()
}

/// `node`'s pairing card (its endpoint is never dialled in one process).
pub fn card_of(node: &Node) -> Card {
    Card {
        key: node.origin(),
        org_uuid: node.org.uuid,
        org_name: node.org.name.clone(),
        endpoint: "127.0.0.1:9".into(),
        org_key: Some(node.org_key()),
    }
}

/// Temp dirs on a memory file system where there is one: cases of many nodes sync every
/// append.
pub fn temp_dir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}
