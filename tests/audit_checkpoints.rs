//! The stored Merkle tree and checkpoints on a real node directory: proofs from the store
//! verify against roots recomputed from the stored entries; checkpoints are issued every N
//! entries, are consistent with each other, and verify with an independent implementation of
//! the C2SP signed-note rules; cosignatures and split views are stored.

mod common;

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use std::path::Path;
use threatlog::log::checkpoint::{self, Checkpoint};
use threatlog::log::merkle::{self, MemoryTree};
use threatlog::log::{NodeKey, OriginKey};
use threatlog::node::Node;
use threatlog::store::Store;

fn node_with_checkpoints_every(dir: &Path, entries: u64) -> Node {
    Node::init(dir, "Audit Org", None, false).unwrap();
    let config = dir.join("threatlog.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "checkpoint_entries = 1000",
            &format!("checkpoint_entries = {entries}"),
        ),
    )
    .unwrap();
    Node::open(dir).unwrap()
}

fn import(node: &Node, index: usize) {
    let document = format!(
        r#"{{"Event": {{"info": "event {index}", "Attribute": [{{"type": "domain", "value": "e{index}.example.test"}}]}}}}"#
    );
    node.import_document(document.as_bytes()).unwrap();
}

/// The C2SP signed-note rules, written out independently of threatlog's code: the note is
/// `body + "\n" + signature lines`; a line is `"— " name " " base64(key id ‖ signature)`; the
/// Ed25519 key id is `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[..4]`; the signature covers the
/// body bytes.
fn c2sp_verify(note: &str, name: &str, public_key: &[u8; 32]) -> (String, u64, Vec<u8>) {
    let (body, signatures) = note.split_once("\n\n").expect("blank line");
    let body = format!("{body}\n");
    let mut id_input = name.as_bytes().to_vec();
    id_input.push(b'\n');
    id_input.push(0x01);
    id_input.extend_from_slice(public_key);
    let id = &Sha256::digest(&id_input)[..4];
    let key = VerifyingKey::from_bytes(public_key).unwrap();
    let mut verified = false;
    for line in signatures.lines() {
        let rest = line.strip_prefix("\u{2014} ").expect("em dash");
        let (line_name, blob) = rest.split_once(' ').unwrap();
        let blob = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .unwrap();
        if line_name == name && &blob[..4] == id {
            let signature = Signature::from_slice(&blob[4..]).unwrap();
            key.verify_strict(body.as_bytes(), &signature).unwrap();
            verified = true;
        }
    }
    assert!(verified, "no signature by {name}");
    let mut lines = body.lines();
    let origin = lines.next().unwrap().to_string();
    let size = lines.next().unwrap().parse().unwrap();
    let root = base64::engine::general_purpose::STANDARD
        .decode(lines.next().unwrap())
        .unwrap();
    assert_eq!(lines.next(), None);
    (origin, size, root)
}

#[test]
fn tree_proofs_and_checkpoints_on_a_real_store() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("a");
    let node = node_with_checkpoints_every(&dir, 5);
    for index in 0..12 {
        import(&node, index);
    }
    let origin = node.origin();
    let store = &node.store;
    let size = store.tree_size(&origin);
    assert_eq!(
        size,
        store
            .heads()
            .into_iter()
            .find(|(o, _)| *o == origin)
            .unwrap()
            .1
    );
    assert!(size >= 13, "init and 12 imports: {size}");

    // The stored tree agrees with a tree recomputed from the stored entry bytes.
    let mut reference = MemoryTree::new();
    for sequence in 1..=size {
        let bytes = store.stored_entry(&origin, sequence).unwrap().unwrap();
        reference.push(merkle::leaf_hash(&Sha256::digest(&bytes)));
    }
    for at in 1..=size {
        let root = store.tree_root(&origin, at).unwrap();
        assert_eq!(root, merkle::root(&reference, at).unwrap());
        for sequence in 1..=at {
            let proof = store.inclusion_proof(&origin, sequence, at).unwrap();
            let leaf = store.tree_leaf(&origin, sequence).unwrap();
            merkle::verify_inclusion(sequence - 1, at, &leaf, &proof, &root).unwrap();
        }
        for old in 1..=at {
            let proof = store.consistency_proof(&origin, old, at).unwrap();
            let old_root = store.tree_root(&origin, old).unwrap();
            merkle::verify_consistency(old, at, &old_root, &root, &proof).unwrap();
        }
    }
    assert!(store.inclusion_proof(&origin, size + 1, size + 1).is_err());

    // A checkpoint after every 5 entries, each verified by the independent C2SP code and
    // consistent with the one before.
    let checkpoints = store.checkpoints(&origin).unwrap();
    assert_eq!(checkpoints.len() as u64, size / 5, "{checkpoints:?}");
    let name = format!("threatlog/{origin}");
    let mut previous: Option<(u64, Vec<u8>)> = None;
    for (size, note) in &checkpoints {
        let (line, signed_size, root) = c2sp_verify(note, &name, &origin.0);
        assert_eq!(line, name);
        assert_eq!(signed_size, *size);
        assert_eq!(root, store.tree_root(&origin, *size).unwrap().to_vec());
        if let Some((old, old_root)) = previous {
            let proof = store.consistency_proof(&origin, old, *size).unwrap();
            merkle::verify_consistency_bytes(old, *size, &old_root, &root, &proof).unwrap();
        }
        previous = Some((*size, root));
    }
    // Forcing signs the current size once; nothing new to sign after that.
    let (forced, _) = node.checkpoint(true).unwrap().unwrap();
    assert_eq!(forced, size);
    assert_eq!(node.checkpoint(true).unwrap(), None);

    // The directory can be read while the node holds it.
    let reader = Store::open_read_only(&dir).unwrap();
    assert_eq!(reader.tree_size(&origin), size);
    assert_eq!(
        reader.tree_root(&origin, size).unwrap(),
        store.tree_root(&origin, size).unwrap()
    );
    assert!(
        Store::open(&dir).is_err(),
        "the lock still keeps writers out"
    );
    drop(reader);

    // A view rebuild leaves the tree alone.
    store.rebuild_views(&|_| {}).unwrap();
    assert_eq!(
        store.tree_root(&origin, size).unwrap(),
        merkle::root(&reference, size).unwrap()
    );
}

#[test]
fn cosignatures_and_split_views() {
    let temp = tempfile::tempdir().unwrap();
    let a_dir = temp.path().join("a");
    let a = node_with_checkpoints_every(&a_dir, 1000);
    import(&a, 1);
    let (size, note) = a.checkpoint(true).unwrap().unwrap();
    let b = node_with_checkpoints_every(&temp.path().join("b"), 1000);

    // B checks and cosigns A's checkpoint; the cosignature verifies with B's key.
    let line = b.cosign(&note).unwrap();
    let cosigned = checkpoint::verify_origin_note(&note, &a.origin()).unwrap();
    assert!(cosigned.verify_cosignature(&line, &b.origin()).is_ok());
    assert_eq!(
        b.store.cosignatures(&a.origin()).unwrap(),
        vec![(size, b.origin(), line.clone())]
    );
    // A stores B's cosignature over its own checkpoint; a forged one is refused.
    a.store
        .put_cosignature(&a.origin(), size, &b.origin(), &line)
        .unwrap();
    let forged = line.replace('A', "B");
    assert!(a
        .store
        .put_cosignature(&a.origin(), size, &a.origin(), &forged)
        .is_err());

    // A (its key, misbehaving) signs another root for the same size: B refuses it and keeps
    // both notes as the proof.
    let seed: [u8; 32] = hex::decode(
        std::fs::read_to_string(a_dir.join("node.key"))
            .unwrap()
            .trim(),
    )
    .unwrap()
    .try_into()
    .unwrap();
    let a_key = NodeKey::from_seed(&seed);
    let name = checkpoint::origin_name(&a.origin());
    let other = Checkpoint {
        origin: name.clone(),
        size,
        root: [9; 32],
    }
    .sign(&name, &a_key);
    let error = b.cosign(&other).unwrap_err().to_string();
    assert!(error.contains("split view"), "{error}");
    let proofs = b.store.split_views().unwrap();
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0].0, a.origin());
    assert_eq!(
        (proofs[0].1.a.as_str(), proofs[0].1.b.as_str()),
        (note.as_str(), other.as_str())
    );
    // A checkpoint signed by another key than the one its origin line names is refused.
    let impostor = NodeKey::generate();
    let fake = Checkpoint {
        origin: name.clone(),
        size: size + 1,
        root: [1; 32],
    }
    .sign(&name, &impostor);
    assert!(b.cosign(&fake).is_err());
    let _ = OriginKey::from_hex(&hex::encode(a.origin().0)).unwrap();
}

#[test]
fn a_directory_without_stored_trees_gets_them_built_at_open() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("old");
    let node = node_with_checkpoints_every(&dir, 1000);
    for index in 0..5 {
        import(&node, index);
    }
    let origin = node.origin();
    let size = node.store.tree_size(&origin);
    let root = node.store.tree_root(&origin, size).unwrap();
    drop(node);
    // Empty the `merkle` family, as in a directory written before trees were stored.
    {
        let path = dir.join("db");
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).unwrap();
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, &names).unwrap();
        let cf = db.cf_handle("merkle").unwrap();
        let keys: Vec<Box<[u8]>> = db
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|item| item.unwrap().0)
            .collect();
        assert!(!keys.is_empty());
        for key in keys {
            db.delete_cf(cf, key).unwrap();
        }
    }
    // A read-only open cannot build it and says so; a read-write open builds it.
    let error = Store::open_read_only(&dir).err().unwrap().to_string();
    assert!(error.contains("not built yet"), "{error}");
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.tree_size(&origin), size);
    assert_eq!(store.tree_root(&origin, size).unwrap(), root);
}
