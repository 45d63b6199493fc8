//! Stubs a peer relays in place of entries withheld from this node (SPEC §6.2, §7): whatever
//! their fields and inclusion proofs, decoding them, checking each proof against its origin's
//! signed checkpoint and linking them on their origin's chain returns without panicking.
//!
//! The fuzzer's bytes are a segment. The target plays the origin of a test key: for each stub
//! of that origin with a proof, it signs the checkpoint of the stub's `proof_size` whose root the
//! proof leads to (the first such stub's, per size), as an origin whose tree holds the stub
//! would have, so the signature does not hide the proof and chain code from the fuzzer. The
//! segment's own checkpoints travel as sent, and stubs of other origins as they are.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use threatlog::log::checkpoint::{origin_name, Checkpoint};
use threatlog::log::merkle::{leaf_hash, root_from_inclusion, Hash};
use threatlog::log::{Head, NodeKey, OriginKey};
use threatlog::proto::sync as wire;
use threatlog::store::Incoming;
use threatlog::sync::decode_segment;

/// The origin whose checkpoints the target signs.
static ORIGIN: LazyLock<NodeKey> = LazyLock::new(|| NodeKey::from_seed(&[7; 32]));

/// The root `stub`'s proof leads to, when the stub names [`ORIGIN`] and carries a well-formed
/// proof: (size, root).
fn proven_root(stub: &wire::Stub) -> Option<(u64, Hash)> {
    if stub.origin.as_ref() != ORIGIN.origin().0 || stub.proof_size == 0 {
        return None;
    }
    let hash: [u8; 32] = stub.hash.as_ref().try_into().ok()?;
    let proof = stub
        .proof
        .iter()
        .map(|hash| Hash::try_from(hash.as_ref()).ok())
        .collect::<Option<Vec<Hash>>>()?;
    let index = stub.sequence.checked_sub(1)?;
    let root = root_from_inclusion(index, stub.proof_size, &leaf_hash(&hash), &proof).ok()?;
    Some((stub.proof_size, root))
}

fuzz_target!(|data: &[u8]| {
    let Ok(segment) = wire::Segment::decode(data) else {
        return;
    };
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
    for item in &segment.items {
        if let Some(wire::item::Item::Stub(stub)) = &item.item {
            if let Some((size, root)) = proven_root(stub) {
                roots.entry(size).or_insert(root);
            }
        }
    }
    let name = origin_name(&ORIGIN.origin());
    let mut notes = segment.checkpoints;
    for (size, root) in roots {
        let checkpoint = Checkpoint {
            origin: name.clone(),
            size,
            root,
        };
        notes.push(checkpoint.sign(&name, &ORIGIN));
    }
    let decoded = decode_segment(segment.items, &notes);
    // Placed on their chains as the store places them, up to the first that does not link.
    let mut heads: HashMap<OriginKey, Head> = HashMap::new();
    for item in &decoded.items {
        let head = heads.entry(item.id().origin).or_insert(Head::EMPTY);
        let next = match item {
            Incoming::Stub(stub) => stub.check_next(head).map(|()| stub.head()),
            Incoming::Entry(entry) => head.check_next(entry).map(|()| Head::after(entry)),
        };
        match next {
            Ok(next) => *head = next,
            Err(_) => break,
        }
    }
});
