//! The signed append-only log (SPEC §4): entry encoding, signing, strict verification and chain
//! links, the per-origin Merkle tree ([`merkle`]). Pure: no IO. The store persists what this
//! module seals and verifies.

pub mod checkpoint;
mod entry;
pub mod identity;
mod key;
pub mod merkle;
mod stub;

pub use entry::{
    entry_hash, seal, verify_entries, Draft, EntryHash, EntryId, Head, UnverifiedEntry,
    VerifiedEntry, ENTRY_BYTES_MAX, ENTRY_FORMAT_VERSION, OPS_PER_ENTRY_MAX, SALT_BYTES,
};
pub use key::{NodeKey, OriginKey, StrictVerifier};
pub use stub::{Stub, StubProofError, STUB_VALUE_BYTES};

/// Why an entry was refused. Every variant is caused by the bytes of an entry (ours or a
/// peer's) and is returned, never panicked on.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LogError {
    /// The bytes are not a valid protobuf `SignedEntry` or `Entry`.
    #[error("entry does not decode: {0}")]
    Decode(String),
    /// The `SignedEntry` envelope is not in its one canonical framing, so its hash would be
    /// ambiguous.
    #[error("entry envelope is not canonical")]
    Envelope,
    /// The entry is larger than [`ENTRY_BYTES_MAX`].
    #[error("entry is {bytes} bytes, over the limit of {max_bytes}")]
    TooLarge {
        /// Size of the offending entry.
        bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// The entry has more than [`OPS_PER_ENTRY_MAX`] ops.
    #[error("entry has {ops} ops, over the limit of {max_ops}")]
    TooManyOps {
        /// Number of ops in the entry.
        ops: usize,
        /// The limit.
        max_ops: usize,
    },
    /// The entry format version is not one this node understands.
    #[error("entry format version {0} is not supported (this node knows version {ENTRY_FORMAT_VERSION})")]
    Version(u32),
    /// A field does not have its required shape (a key, uuid, hash or salt of the wrong length).
    #[error("entry field {field} is malformed: {reason}")]
    Field {
        /// The field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The origin key is not a valid ed25519 public key, or is a weak key.
    #[error("origin key is not a valid ed25519 public key")]
    BadKey,
    /// The signature does not verify (strict ed25519) against the origin key.
    #[error("signature does not verify")]
    BadSignature,
    /// The entry's sequence number is not the one after the origin's last entry.
    #[error("sequence {got} does not follow {expected_after} (gap or replay)")]
    Sequence {
        /// The last sequence number held for the origin.
        expected_after: u64,
        /// The entry's sequence number.
        got: u64,
    },
    /// The entry's previous-entry hash does not match the origin's last entry.
    #[error("previous-entry hash does not match the hash of sequence {previous}")]
    ChainBreak {
        /// Sequence number of the entry the link should point to.
        previous: u64,
    },
}
