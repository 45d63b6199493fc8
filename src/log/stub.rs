//! Stubs: what a peer receives in place of an entry it may not see (SPEC §6.2). A stub carries
//! only the entry's position, its link to the previous entry and its hash, so the receiver can
//! keep the origin's chain (and Merkle tree) complete without learning anything of the content:
//! the per-entry salt keeps the hash from revealing it.

use super::{EntryHash, EntryId, Head, LogError, VerifiedEntry};

/// Bytes of an encoded stub value: previous hash then entry hash.
pub const STUB_VALUE_BYTES: usize = 64;

/// A withheld entry's place in its origin's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stub {
    /// The entry's origin and sequence.
    pub id: EntryId,
    /// Hash of the origin's previous entry (zeros for sequence 1).
    pub prev_hash: EntryHash,
    /// SHA-256 of the withheld entry's stored bytes.
    pub hash: EntryHash,
}

impl Stub {
    /// The stub of `entry`.
    pub fn of(entry: &VerifiedEntry) -> Stub {
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&entry.entry().prev_hash);
        Stub {
            id: entry.id(),
            prev_hash,
            hash: entry.hash(),
        }
    }

    /// Checks that this stub is the next link of the chain ending at `head`.
    pub fn check_next(&self, head: &Head) -> Result<(), LogError> {
        if self.id.sequence != head.sequence + 1 {
            return Err(LogError::Sequence {
                expected_after: head.sequence,
                got: self.id.sequence,
            });
        }
        if self.prev_hash != head.hash {
            return Err(LogError::ChainBreak {
                previous: head.sequence,
            });
        }
        Ok(())
    }

    /// The head after this stub.
    pub fn head(&self) -> Head {
        Head {
            sequence: self.id.sequence,
            hash: self.hash,
        }
    }

    /// The stored value: previous hash then hash.
    pub fn encode_value(&self) -> [u8; STUB_VALUE_BYTES] {
        let mut out = [0u8; STUB_VALUE_BYTES];
        out[..32].copy_from_slice(&self.prev_hash);
        out[32..].copy_from_slice(&self.hash);
        out
    }

    /// Decodes a stored value for the entry at `id`.
    pub fn decode_value(id: EntryId, bytes: &[u8]) -> Result<Stub, LogError> {
        if bytes.len() != STUB_VALUE_BYTES {
            return Err(LogError::Field {
                field: "stub",
                reason: format!("{} bytes, expected {STUB_VALUE_BYTES}", bytes.len()),
            });
        }
        let mut prev_hash = [0u8; 32];
        let mut hash = [0u8; 32];
        prev_hash.copy_from_slice(&bytes[..32]);
        hash.copy_from_slice(&bytes[32..]);
        Ok(Stub {
            id,
            prev_hash,
            hash,
        })
    }
}
