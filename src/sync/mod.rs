//! Replication between paired nodes (SPEC §7): segments of entries and stubs pulled (and
//! pushed) over gRPC with mutual TLS, filtered per peer by the release policy, and checked on
//! arrival. [`transport`] is the only file that touches tonic; the rest is the session logic.

pub mod check;
pub mod checkpoints;
pub mod peer;
pub mod release;
pub mod tls;
pub mod transport;

use crate::log::{OriginKey, Stub, VerifiedEntry};
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
/// Stubs asked to be revealed in one request.
pub const REVEAL_IDS_MAX: usize = 4096;
/// First retry delay after a failure.
pub const RETRY_DELAY_MS_MIN: u64 = 250;
/// Longest retry delay (capped exponential backoff).
pub const RETRY_DELAY_MS_MAX: u64 = 30_000;
/// Consecutive failures after which a peer is quarantined.
pub const QUARANTINE_FAILURES: u32 = 5;
/// HTTP/2 stream window: large enough that a 100 ms round trip does not cap a stream at the
/// default window's ~1 MB/s.
pub const STREAM_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// HTTP/2 connection window.
pub const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

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
}

/// The wire form of released items.
pub fn encode_items(items: &[Released]) -> Vec<wire::Item> {
    items
        .iter()
        .map(|item| wire::Item {
            item: Some(match item {
                Released::Entry(entry) => wire::item::Item::Entry(entry.stored().clone()),
                Released::Stub(stub) => wire::item::Item::Stub(wire::Stub {
                    origin: stub.id.origin.0.to_vec().into(),
                    sequence: stub.id.sequence,
                    prev_hash: stub.prev_hash.to_vec().into(),
                    hash: stub.hash.to_vec().into(),
                }),
            }),
        })
        .collect()
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
