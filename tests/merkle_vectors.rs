//! Every RFC 6962 inclusion and consistency vector in `../shared/data/merkle/` (happy paths and
//! mutated proofs), and the Merkle Tree Certificates subtree vectors, give the expected result.

mod common;

use base64::Engine;
use serde_json::Value;
use std::path::{Path, PathBuf};
use threatlog::log::merkle::{self, Hash, ProofError};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A hash field: base64 of exactly 32 bytes, else the error a malformed hash gives.
fn hash(value: &Value) -> Result<Hash, ProofError> {
    let text = value.as_str().unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| ProofError::HashLength(text.len()))?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| ProofError::HashLength(bytes.len()))
}

/// A root as given: base64 bytes of any length (some vectors use placeholder roots).
fn bytes(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or(""))
        .unwrap_or_default()
}

fn proof(value: &Value) -> Result<Vec<Hash>, ProofError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        other => panic!("proof is {other}"),
    }
}

fn number(vector: &Value, name: &str) -> u64 {
    vector[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {vector}"))
}

fn check(kind: &str, vector: &Value) -> Result<(), ProofError> {
    match kind {
        "inclusion" => merkle::verify_inclusion(
            number(vector, "leafIdx"),
            number(vector, "treeSize"),
            &hash(&vector["leafHash"])?,
            &proof(&vector["proof"])?,
            &hash(&vector["root"])?,
        ),
        "consistency" => merkle::verify_consistency_bytes(
            number(vector, "size1"),
            number(vector, "size2"),
            &bytes(&vector["root1"]),
            &bytes(&vector["root2"]),
            &proof(&vector["proof"])?,
        ),
        "subtreeinclusion" => merkle::verify_subtree_inclusion(
            number(vector, "leafIdx"),
            number(vector, "start"),
            number(vector, "end"),
            &hash(&vector["leafHash"])?,
            &proof(&vector["proof"])?,
            &hash(&vector["root"])?,
        ),
        "subtreeconsistency" => merkle::verify_subtree_consistency_bytes(
            number(vector, "start"),
            number(vector, "end"),
            number(vector, "size"),
            &bytes(&vector["root1"]),
            &bytes(&vector["root2"]),
            &proof(&vector["proof"])?,
        ),
        other => panic!("unknown vector kind {other}"),
    }
}

fn run(kind: &str) -> usize {
    let dir = common::shared_data().join("merkle").join(kind);
    let mut failures = Vec::new();
    let mut count = 0;
    let mut happy = 0;
    for path in files(&dir) {
        let vector: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let want_err = vector["wantErr"].as_bool().expect("wantErr");
        let result = check(kind, &vector);
        if result.is_err() != want_err {
            failures.push(format!(
                "{}: want error {want_err}, got {result:?}",
                path.display()
            ));
        }
        count += 1;
        happy += usize::from(!want_err);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(happy > 0, "{kind}: no happy path among {count} vectors");
    count
}

#[test]
fn inclusion_vectors() {
    assert_eq!(run("inclusion"), 98);
}

#[test]
fn consistency_vectors() {
    assert_eq!(run("consistency"), 98);
}

#[test]
fn subtree_inclusion_vectors() {
    assert_eq!(run("subtreeinclusion"), 204);
}

#[test]
fn subtree_consistency_vectors() {
    assert_eq!(run("subtreeconsistency"), 118);
}

mod properties {
    use proptest::prelude::*;
    use threatlog::log::merkle::{self, Hash, MemoryTree};

    /// Trees up to this many leaves: every (index, size) and (m, n) pair of them is checked.
    const LEAVES_MAX: u64 = 40;

    fn tree(seed: u64, size: u64) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for i in 0..size {
            tree.push(merkle::leaf_hash(
                &[seed.to_be_bytes(), i.to_be_bytes()].concat(),
            ));
        }
        tree
    }

    fn flip(hash: &Hash, bit: usize) -> Hash {
        let mut out = *hash;
        out[bit / 8 % 32] ^= 1 << (bit % 8);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn every_inclusion_proof_verifies_and_any_change_breaks_it(
            seed in any::<u64>(), leaves in 1..=LEAVES_MAX, bit in 0usize..256,
        ) {
            let tree = tree(seed, leaves);
            for size in 1..=leaves {
                let root = merkle::root(&tree, size).unwrap();
                for index in 0..size {
                    let leaf = merkle::HashSource::perfect(&tree, 0, index).unwrap();
                    let proof = merkle::inclusion_proof(&tree, index, size).unwrap();
                    prop_assert!(merkle::verify_inclusion(index, size, &leaf, &proof, &root).is_ok());
                    for at in 0..proof.len() {
                        let mut bad = proof.clone();
                        bad[at] = flip(&bad[at], bit);
                        prop_assert!(merkle::verify_inclusion(index, size, &leaf, &bad, &root).is_err());
                    }
                    prop_assert!(merkle::verify_inclusion(index, size, &leaf, &proof, &flip(&root, bit)).is_err());
                    prop_assert!(merkle::verify_inclusion(index, size, &flip(&leaf, bit), &proof, &root).is_err());
                    for other in 0..size + 2 {
                        if other != index {
                            prop_assert!(merkle::verify_inclusion(other, size, &leaf, &proof, &root).is_err(),
                                "index {index} proof accepted for {other} in {size}");
                        }
                    }
                    // A size comes with its root (a checkpoint signs both): the proof must not
                    // verify against the tree of any other size.
                    for other in 1..=leaves {
                        if other != size {
                            let other_root = merkle::root(&tree, other).unwrap();
                            prop_assert!(merkle::verify_inclusion(index, other, &leaf, &proof, &other_root).is_err(),
                                "size {size} proof accepted for size {other} (index {index})");
                        }
                    }
                }
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_any_change_breaks_it(
            seed in any::<u64>(), leaves in 1..=LEAVES_MAX, bit in 0usize..256,
        ) {
            let tree = tree(seed, leaves);
            for new in 1..=leaves {
                let new_root = merkle::root(&tree, new).unwrap();
                for old in 1..=new {
                    let old_root = merkle::root(&tree, old).unwrap();
                    let proof = merkle::consistency_proof(&tree, old, new).unwrap();
                    prop_assert!(merkle::verify_consistency(old, new, &old_root, &new_root, &proof).is_ok());
                    for at in 0..proof.len() {
                        let mut bad = proof.clone();
                        bad[at] = flip(&bad[at], bit);
                        prop_assert!(merkle::verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
                    }
                    prop_assert!(merkle::verify_consistency(old, new, &flip(&old_root, bit), &new_root, &proof).is_err());
                    prop_assert!(merkle::verify_consistency(old, new, &old_root, &flip(&new_root, bit), &proof).is_err());
                    // Sizes come with their roots (a checkpoint signs both).
                    for other in 1..=leaves {
                        let other_root = merkle::root(&tree, other).unwrap();
                        if other != old && other <= new {
                            prop_assert!(merkle::verify_consistency(other, new, &other_root, &new_root, &proof).is_err(),
                                "{old}->{new} proof accepted from {other}");
                        }
                        if other != new && other >= old {
                            prop_assert!(merkle::verify_consistency(old, other, &old_root, &other_root, &proof).is_err(),
                                "{old}->{new} proof accepted to {other}");
                        }
                    }
                }
            }
        }
    }
}
