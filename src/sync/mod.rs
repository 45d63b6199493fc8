//! Replication between paired nodes (SPEC §7): segments of entries and stubs pulled (and
//! pushed) over gRPC with mutual TLS, filtered per peer by the release policy, and checked on
//! arrival.
//!
//! - [`exchange`]: what a session sends and does with what it receives (outbox, receive,
//!   hello, reveal), blocking and transport-free, so nodes in one process can be driven with it;
//! - [`engine`]: per-peer state as pure state machines (backoff, resume cursor, quarantine
//!   window), driven with `now`;
//! - [`release`] and [`check`]: what a peer may receive, and what this node accepts, both
//!   from the [`reach`] of events and entries;
//! - [`service`] (the gRPC server), [`client`] (sessions and per-peer tasks) and [`bridge`]
//!   (their blocking work): the only files that touch tonic; [`tls`] the mutual-TLS identity;
//! - [`memory`]: sessions between nodes in one process, for running several nodes together;
//! - [`peer`]: paired peers, cursors and status; [`identity`] and [`checkpoints`]: org
//!   certificates and checkpoints that travel with segments and hellos.

pub mod bridge;
pub mod check;
pub mod checkpoints;
pub mod client;
pub mod engine;
pub mod exchange;
pub mod identity;
pub mod memory;
pub mod peer;
pub mod reach;
pub mod release;
pub mod service;
pub mod tls;

pub use client::connect_as;
pub use service::{runtime, serve};

use std::collections::{HashMap, HashSet};

use crate::log::checkpoint::{self, Checkpoint};
use crate::log::merkle::Hash;
use crate::log::{EntryId, OriginKey, Stub, VerifiedEntry};
use crate::proto::sync as wire;
use crate::store::Incoming;
use release::Released;

/// Protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = wire::ProtocolVersion::ProtocolVersion1 as u32;
/// Most items in one segment.
pub const SEGMENT_ITEMS_MAX: usize = 512;
/// Most bytes of entries in one segment (a single larger entry travels alone).
pub const SEGMENT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest gRPC message accepted: one segment of the largest entries, with framing.
pub const MESSAGE_BYTES_MAX: usize = crate::log::ENTRY_BYTES_MAX + SEGMENT_BYTES_MAX + 64 * 1024;
/// Segments buffered per stream ahead of a slow receiver: with [`SEGMENT_BYTES_MAX`] this
/// bounds the memory a stalled peer costs.
pub const SEGMENTS_IN_FLIGHT_MAX: usize = 4;
/// Concurrent streams served per connection.
pub const STREAMS_PER_CONNECTION_MAX: u32 = 16;
/// Pull streams one peer may have open at once, over all its connections: an honest peer
/// holds one follow-pull and the occasional catch-up pull. Further pulls are refused
/// (`RESOURCE_EXHAUSTED`) until one ends.
pub const PULLS_PER_PEER_MAX: usize = 4;
/// Milliseconds a pull over [`PULLS_PER_PEER_MAX`] waits before it is refused, so that a peer
/// retrying in a loop cannot make the node spend its CPU on handshakes and refusals.
pub const PULL_REFUSAL_DELAY_MS: u64 = 1_000;
/// Stubs asked to be revealed in one request.
pub const REVEAL_IDS_MAX: usize = 4096;
/// First retry delay after a failure.
pub const RETRY_DELAY_MS_MIN: u64 = 250;
/// Longest retry delay (capped exponential backoff).
pub const RETRY_DELAY_MS_MAX: u64 = 30_000;
/// Signed checkpoints one segment may carry for its stubs' proofs: at most one per item.
pub const SEGMENT_CHECKPOINTS_MAX: usize = SEGMENT_ITEMS_MAX;
/// Time a peer has to answer a hello or a reveal request.
pub const CALL_DEADLINE_MS: u64 = 30_000;
/// Seconds between HTTP/2 pings on a sync connection, idle or not: a peer that vanished
/// without closing is noticed.
pub const KEEPALIVE_INTERVAL_S: u64 = 30;
/// Seconds a ping may go unanswered before the connection is closed.
pub const KEEPALIVE_TIMEOUT_S: u64 = 20;
/// Time a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_MS_MAX: u64 = 10_000;
/// Failures within [`QUARANTINE_WINDOW_MS`] after which a peer is quarantined.
pub const QUARANTINE_FAILURES: u32 = 5;
/// The window a peer's failures are counted in: an hour, so that a peer alternating good and
/// bad segments is quarantined, while an honest peer's rare refusals never add up.
pub const QUARANTINE_WINDOW_MS: i64 = 3_600_000;
/// HTTP/2 stream window: large enough that a 100 ms round trip does not cap a stream at the
/// default window's ~1 MB/s.
pub const STREAM_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// HTTP/2 connection window.
pub const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;
/// mTLS handshakes of incoming sync connections under way at once; further connections wait
/// in the kernel's backlog.
pub const HANDSHAKES_MAX: usize = 1024;
/// Pause after a failed `accept` (for example, out of file descriptors) before retrying.
pub const ACCEPT_RETRY_DELAY_MS: u64 = 50;

/// Why an item from a peer could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// An item with neither entry nor stub.
    #[error("empty item")]
    Empty,
    /// The entry failed verification.
    #[error("{0}")]
    Entry(#[from] crate::log::LogError),
    /// A stub field has the wrong length.
    #[error("stub field {0} is malformed")]
    Stub(&'static str),
    /// A stub's inclusion proof does not authenticate it: a forgery by the sender.
    #[error(
        "{}: stub {id} carries an inclusion proof that does not verify against its origin's \
         checkpoint of size {size}: {reason}",
        check::VIOLATION
    )]
    Proof {
        /// The stub's position.
        id: EntryId,
        /// The tree size the proof claims.
        size: u64,
        /// Why it does not verify.
        reason: String,
    },
}

/// An inclusion proof sent with a stub: the origin's tree size it is for, and its hashes.
pub type StubProof = (u64, Vec<Hash>);

/// The items of a segment from a peer, decoded and verified up to the first bad one.
#[derive(Debug, Default)]
pub struct DecodedSegment {
    /// The items before the first bad one, in order.
    pub items: Vec<Incoming>,
    /// Positions of the stubs among `items` whose inclusion proof verified against a
    /// checkpoint their origin signed.
    pub proven: HashSet<EntryId>,
    /// The validly signed checkpoint notes the segment carried, for the store to accept.
    pub checkpoints: Vec<String>,
    /// Why decoding stopped early, if it did.
    pub error: Option<DecodeError>,
}

/// The wire form of released items.
pub fn encode_items(items: &[Released]) -> Vec<wire::Item> {
    encode_proven_items(items, &HashMap::new())
}

/// The wire form of released items, each stub with its inclusion proof from `proofs` when
/// there is one (the checkpoints they lead to travel in the segment).
pub fn encode_proven_items(
    items: &[Released],
    proofs: &HashMap<EntryId, StubProof>,
) -> Vec<wire::Item> {
    items
        .iter()
        .map(|item| wire::Item {
            item: Some(match item {
                Released::Entry(entry) => wire::item::Item::Entry(entry.stored().clone()),
                Released::Stub(stub) => {
                    let (proof_size, proof) = proofs
                        .get(&stub.id)
                        .map(|(size, hashes)| {
                            (*size, hashes.iter().map(|h| h.to_vec().into()).collect())
                        })
                        .unwrap_or_default();
                    wire::item::Item::Stub(wire::Stub {
                        origin: stub.id.origin.0.to_vec().into(),
                        sequence: stub.id.sequence,
                        prev_hash: stub.prev_hash.to_vec().into(),
                        hash: stub.hash.to_vec().into(),
                        proof_size,
                        proof,
                    })
                }
            }),
        })
        .collect()
}

/// Decodes and verifies a segment's items and the proofs of its stubs: entries strictly, byte
/// for byte; a stub's proof against the checkpoint of its origin and size among
/// `checkpoints`, each verified under the key its origin line names. Decoding stops at the
/// first item that fails; a stub whose proof fails is such an item.
pub fn decode_segment(items: Vec<wire::Item>, checkpoints: &[String]) -> DecodedSegment {
    let mut decoded = DecodedSegment::default();
    let mut signed: HashMap<(OriginKey, u64), Checkpoint> = HashMap::new();
    for note in checkpoints.iter().take(SEGMENT_CHECKPOINTS_MAX) {
        if let Some(checkpoint) = verified_note(note) {
            if let Some(origin) = checkpoint.origin_key() {
                signed.insert((origin, checkpoint.size), checkpoint);
                decoded.checkpoints.push(note.clone());
            }
        }
    }
    for item in items {
        let proof = match &item.item {
            Some(wire::item::Item::Stub(stub)) if stub.proof_size > 0 => {
                Some((stub.proof_size, stub.proof.clone()))
            }
            _ => None,
        };
        let incoming = match decode_item(item) {
            Ok(incoming) => incoming,
            Err(error) => {
                decoded.error = Some(error);
                break;
            }
        };
        if let (Incoming::Stub(stub), Some((size, hashes))) = (&incoming, proof) {
            if let Err(reason) = check_proof(stub, size, &hashes, &signed) {
                decoded.error = Some(DecodeError::Proof {
                    id: stub.id,
                    size,
                    reason,
                });
                break;
            }
            decoded.proven.insert(stub.id);
        }
        decoded.items.push(incoming);
    }
    decoded
}

/// The checkpoint a note states, when it is validly signed by the origin it names.
fn verified_note(note: &str) -> Option<Checkpoint> {
    let (body, _) = checkpoint::split_note(note).ok()?;
    let origin = Checkpoint::parse_body(body).ok()?.origin_key()?;
    checkpoint::verify_origin_note(note, &origin).ok()
}

/// Checks one stub's proof against the signed checkpoint of its origin and `size`.
fn check_proof(
    stub: &Stub,
    size: u64,
    hashes: &[prost::bytes::Bytes],
    signed: &HashMap<(OriginKey, u64), Checkpoint>,
) -> Result<(), String> {
    let checkpoint = signed
        .get(&(stub.id.origin, size))
        .ok_or_else(|| "the segment has no validly signed checkpoint of that size".to_string())?;
    if hashes.len() > crate::log::merkle::PROOF_HASHES_MAX {
        return Err(format!("{} proof hashes, over the limit", hashes.len()));
    }
    let proof = hashes
        .iter()
        .map(|hash| <Hash>::try_from(hash.as_ref()))
        .collect::<Result<Vec<Hash>, _>>()
        .map_err(|_| "a proof hash is not 32 bytes".to_string())?;
    stub.verify_inclusion(checkpoint, &proof)
        .map_err(|error| error.to_string())
}

/// Decodes and verifies one item from a peer: entries are verified strictly, byte for byte.
pub fn decode_item(item: wire::Item) -> Result<Incoming, DecodeError> {
    match item.item.ok_or(DecodeError::Empty)? {
        wire::item::Item::Entry(bytes) => Ok(Incoming::Entry(VerifiedEntry::verify(bytes)?)),
        wire::item::Item::Stub(stub) => {
            let hash32 = |bytes: &[u8], field| -> Result<[u8; 32], DecodeError> {
                bytes.try_into().map_err(|_| DecodeError::Stub(field))
            };
            Ok(Incoming::Stub(Stub {
                id: crate::log::EntryId {
                    origin: OriginKey::from_slice(&stub.origin)
                        .map_err(|_| DecodeError::Stub("origin"))?,
                    sequence: stub.sequence,
                },
                prev_hash: hash32(&stub.prev_hash, "prev_hash")?,
                hash: hash32(&stub.hash, "hash")?,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::checkpoint::origin_name;
    use crate::log::merkle::{inclusion_proof, leaf_hash, MemoryTree};
    use crate::log::NodeKey;

    /// Three stubs of a fresh origin, its signed checkpoint over them, and its tree.
    fn origin_with_stubs() -> (NodeKey, Vec<Stub>, String, MemoryTree) {
        let key = NodeKey::generate();
        let origin = key.origin();
        let mut tree = MemoryTree::new();
        let mut prev_hash = [0; 32];
        let mut stubs = Vec::new();
        for sequence in 1..=3u64 {
            let stub = Stub {
                id: EntryId { origin, sequence },
                prev_hash,
                hash: [sequence as u8 + 10; 32],
            };
            prev_hash = stub.hash;
            tree.push(leaf_hash(&stub.hash));
            stubs.push(stub);
        }
        let note = Checkpoint {
            origin: origin_name(&origin),
            size: 3,
            root: tree.root(),
        }
        .sign(&origin_name(&origin), &key);
        (key, stubs, note, tree)
    }

    fn items_with_proofs(stubs: &[Stub], tree: &MemoryTree, size: u64) -> Vec<wire::Item> {
        let released: Vec<Released> = stubs.iter().map(|stub| Released::Stub(*stub)).collect();
        let proofs = stubs
            .iter()
            .map(|stub| {
                let proof = inclusion_proof(tree, stub.id.sequence - 1, size).unwrap();
                (stub.id, (size, proof))
            })
            .collect();
        encode_proven_items(&released, &proofs)
    }

    #[test]
    fn stubs_are_proven_only_by_their_origins_signed_checkpoint() {
        let (_, stubs, note, tree) = origin_with_stubs();
        let items = items_with_proofs(&stubs, &tree, 3);
        let decoded = decode_segment(items.clone(), std::slice::from_ref(&note));
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.items.len(), 3);
        assert_eq!(decoded.proven.len(), 3);
        assert_eq!(decoded.checkpoints, vec![note.clone()]);

        // Without the checkpoint, or with one another key signed, a proof proves nothing and
        // the stub carrying it is refused.
        let missing = decode_segment(items.clone(), &[]);
        assert_eq!(missing.items.len(), 0);
        assert!(matches!(
            missing.error,
            Some(DecodeError::Proof { size: 3, .. })
        ));
        let impostor = NodeKey::generate();
        let forged_note = Checkpoint {
            origin: origin_name(&stubs[0].id.origin),
            size: 3,
            root: tree.root(),
        }
        .sign(&origin_name(&stubs[0].id.origin), &impostor);
        let forged = decode_segment(items.clone(), &[forged_note]);
        assert!(forged.checkpoints.is_empty());
        assert!(matches!(forged.error, Some(DecodeError::Proof { .. })));

        // A stub whose hash was changed after proving is refused; those before it stand.
        let mut tampered = items;
        if let Some(wire::item::Item::Stub(stub)) = tampered[1].item.as_mut() {
            stub.hash = vec![0xee; 32].into();
        }
        let decoded = decode_segment(tampered, &[note]);
        assert_eq!(decoded.items.len(), 1);
        assert_eq!(decoded.proven.len(), 1);
        let Some(DecodeError::Proof { id, reason, .. }) = decoded.error else {
            panic!("a refused proof: {:?}", decoded.error);
        };
        assert_eq!(id, stubs[1].id);
        assert_eq!(reason, "proof does not match the root");
        // Stubs without a proof decode as unproven.
        let plain = decode_segment(encode_items(&[Released::Stub(stubs[0])]), &[]);
        assert_eq!((plain.items.len(), plain.proven.len()), (1, 0));
    }
}
