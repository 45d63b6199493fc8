//! Writes the generated seed corpora (`fuzz/seeds/<target>/`): small valid inputs of a test
//! origin (the keys the targets know), so that the fuzzer starts past signatures and Merkle
//! proofs instead of having to forge them. Deterministic (fixed keys, times and salts; Ed25519
//! signs deterministically): a second run writes the same bytes. The hand-written seeds
//! (search_parameters, feed_manifest, parse_event) are not touched.
//!
//! Run from the repository root when an encoding changes:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/seeds`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message;
use serde_json::json;
use threatlog::change::{self, Actor};
use threatlog::log::checkpoint::{origin_name, Checkpoint};
use threatlog::log::identity::{Certificate, OrgKey, Revocation};
use threatlog::log::merkle::{inclusion_proof, leaf_hash, MemoryTree};
use threatlog::log::{seal, EntryId, Head, NodeKey, Stub, VerifiedEntry};
use threatlog::model::{Event, Organisation};
use threatlog::proto::sync as wire;
use threatlog::sync::peer::Card;
use threatlog::sync::release::Released;
use threatlog::sync::{encode_items, encode_proven_items, StubProof};
use uuid::Uuid;

/// Origin time of the first entry (ms); the targets' clocks are later.
const TIME_MS: i64 = 1_700_000_000_000;

/// The test origin's chain: its certificate, its organisation, and one small event.
fn entries(key: &NodeKey, org: &Organisation, certificate: &Certificate) -> Vec<VerifiedEntry> {
    let actor = Actor {
        org: org.uuid,
        user: "seed@example.org".into(),
    };
    let event = Event::from_json_on(
        &json!({"Event": {
            "uuid": "5b646415-7b48-40d5-86b4-c0070acd0835",
            "info": "Seed event",
            "date": "2023-11-14",
            "timestamp": "1700000000",
            "distribution": "1",
            "threat_level_id": "2",
            "analysis": "1",
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [{
                "uuid": "9f3b1c5e-2d4a-4b6c-8e7f-0a1b2c3d4e5f",
                "type": "ip-dst",
                "category": "Network activity",
                "value": "198.51.100.7",
                "to_ids": true,
                "timestamp": "1700000000"
            }]
        }}),
        "2023-11-14",
    )
    .expect("the seed event is valid MISP");
    let mut drafts = vec![
        change::directory_draft(vec![certificate.op()], &actor),
        change::directory_draft(vec![change::organisation_op(org, true)], &actor),
    ];
    drafts.extend(change::event_drafts(&event, &actor));
    let mut head = Head::EMPTY;
    let mut out = Vec::new();
    for (index, draft) in drafts.into_iter().enumerate() {
        let salt = [index as u8; 16];
        let entry = seal(key, org.uuid, &head, draft, TIME_MS + index as i64, salt)
            .expect("a seed entry seals");
        head = Head::after(&entry);
        out.push(entry);
    }
    out
}

/// The inclusion proofs of `entries` in the tree of all of them.
fn proofs(entries: &[VerifiedEntry], tree: &MemoryTree) -> HashMap<EntryId, StubProof> {
    let size = entries.len() as u64;
    entries
        .iter()
        .map(|entry| {
            let proof = inclusion_proof(tree, entry.sequence() - 1, size).expect("in the tree");
            (entry.id(), (size, proof))
        })
        .collect()
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("the seed directory can be made");
    std::fs::write(dir.join(name), bytes).expect("the seed can be written");
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or("fuzz/seeds".into()));
    // The keys the targets know: the origin (sync_segment, sync_stub, checkpoint_note) and
    // the cosigner (checkpoint_note).
    let key = NodeKey::from_seed(&[7; 32]);
    let cosigner = NodeKey::from_seed(&[9; 32]);
    let org_key = OrgKey::from_seed(&[6; 32]);
    let org = Organisation {
        uuid: Uuid::from_u128(1),
        name: "Fuzz Org".into(),
    };
    let certificate =
        Certificate::issue(&org_key, org.uuid, &org.name, key.origin(), TIME_MS, None)
            .expect("the seed certificate is valid");
    let revocation = Revocation::issue(&org_key, org.uuid, key.origin(), 3, TIME_MS, "retired")
        .expect("the seed revocation is valid");
    let entries = entries(&key, &org, &certificate);

    for (index, entry) in entries.iter().enumerate() {
        let name = format!("entry-{}", index + 1);
        write(&out, "verify_entry", &name, entry.stored());
        write(&out, "apply_entry", &name, &entry.entry().encode_to_vec());
    }
    write(
        &out,
        "identity_statement",
        "certificate",
        certificate.stored(),
    );
    write(
        &out,
        "identity_statement",
        "revocation",
        revocation.stored(),
    );

    let mut tree = MemoryTree::new();
    for entry in &entries {
        tree.push(leaf_hash(&entry.hash()));
    }
    let name = origin_name(&key.origin());
    let checkpoint = Checkpoint {
        origin: name.clone(),
        size: entries.len() as u64,
        root: tree.root(),
    };
    let note = checkpoint.sign(&name, &key);
    let proofs = proofs(&entries, &tree);
    let segment = |released: Vec<Released>,
                   checkpoints: Vec<String>,
                   proofs: &HashMap<EntryId, StubProof>| wire::Segment {
        items: encode_proven_items(&released, proofs),
        cursor: released.len() as u64,
        head_cursor: released.len() as u64,
        head_time_ms: TIME_MS,
        certificates: vec![certificate.stored().clone()],
        revocations: vec![],
        checkpoints,
    };
    let full: Vec<Released> = entries.iter().cloned().map(Released::Entry).collect();
    let stubs: Vec<Released> = entries
        .iter()
        .map(|entry| Released::Stub(Stub::of(entry)))
        .collect();
    // The first two entries in full, the event's withheld.
    let mixed: Vec<Released> = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| match index < 2 {
            true => Released::Entry(entry.clone()),
            false => Released::Stub(Stub::of(entry)),
        })
        .collect();
    let none = HashMap::new();
    for (name, released, proofs) in [
        ("entries", full, &none),
        ("stubs", stubs.clone(), &proofs),
        ("mixed", mixed, &proofs),
    ] {
        let segment = segment(released, vec![note.clone()], proofs).encode_to_vec();
        write(&out, "sync_segment", name, &segment);
        write(&out, "sync_stub", name, &segment);
    }
    let unproven = wire::Segment {
        items: encode_items(&stubs),
        ..Default::default()
    };
    write(&out, "sync_stub", "unproven", &unproven.encode_to_vec());

    let cosigned = format!("{note}{}", checkpoint.cosign(&cosigner, 1_700_000_000));
    write(&out, "checkpoint_note", "signed", note.as_bytes());
    write(&out, "checkpoint_note", "cosigned", cosigned.as_bytes());

    let mut card = Card {
        key: key.origin(),
        org_uuid: org.uuid,
        org_name: org.name.clone(),
        endpoint: "node.example.org:7443".into(),
        org_key: Some(org_key.public()),
    };
    write(&out, "pairing_card", "card", card.encode().as_bytes());
    card.org_key = None;
    write(
        &out,
        "pairing_card",
        "card-without-org-key",
        card.encode().as_bytes(),
    );
}
