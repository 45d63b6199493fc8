//! Stubs: what a peer receives in place of an entry it may not see (SPEC §6.2). A stub carries
//! only the entry's position, its link to the previous entry and its hash, so the receiver can
//! keep the origin's chain (and Merkle tree) complete without learning anything of the content:
//! the per-entry salt keeps the hash from revealing it.
//!
//! A stub from anyone but its origin is only a claim (SPEC §7): it is authenticated by an
//! inclusion proof of its hash in a checkpoint its origin signed ([`Stub::verify_inclusion`]).

use super::checkpoint::Checkpoint;
use super::merkle::{self, Hash, ProofError};
use super::{EntryHash, EntryId, Head, LogError, VerifiedEntry};

/// Why a stub's inclusion proof does not authenticate it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StubProofError {
    /// The checkpoint is not one of the stub's origin.
    #[error("the checkpoint is of another origin ('{0}')")]
    OtherOrigin(String),
    /// The checkpoint's tree does not reach the stub's position.
    #[error("a checkpoint of {size} entries does not cover sequence {sequence}")]
    Uncovered {
        /// The checkpoint's tree size.
        size: u64,
        /// The stub's sequence.
        sequence: u64,
    },
    /// The proof does not lead from the stub's hash to the checkpoint's root.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

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

    /// Checks that `proof` leads from this stub's hash, as leaf `sequence - 1`, to the root of
    /// `checkpoint`, a checkpoint of the stub's origin whose signature the caller verified.
    pub fn verify_inclusion(
        &self,
        checkpoint: &Checkpoint,
        proof: &[Hash],
    ) -> Result<(), StubProofError> {
        if checkpoint.origin_key() != Some(self.id.origin) {
            return Err(StubProofError::OtherOrigin(checkpoint.origin.clone()));
        }
        if self.id.sequence == 0 || self.id.sequence > checkpoint.size {
            return Err(StubProofError::Uncovered {
                size: checkpoint.size,
                sequence: self.id.sequence,
            });
        }
        merkle::verify_inclusion(
            self.id.sequence - 1,
            checkpoint.size,
            &merkle::leaf_hash(&self.hash),
            proof,
            &checkpoint.root,
        )?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::checkpoint::origin_name;
    use crate::log::merkle::{inclusion_proof, MemoryTree};
    use crate::log::{NodeKey, OriginKey};

    /// A chain of `count` stubs of `origin` with made-up hashes, and its tree.
    fn chain(origin: OriginKey, count: u64) -> (Vec<Stub>, MemoryTree) {
        let mut head = Head::EMPTY;
        let mut stubs = Vec::new();
        let mut tree = MemoryTree::new();
        for sequence in 1..=count {
            let stub = Stub {
                id: EntryId { origin, sequence },
                prev_hash: head.hash,
                hash: [sequence as u8; 32],
            };
            head = stub.head();
            tree.push(merkle::leaf_hash(&stub.hash));
            stubs.push(stub);
        }
        (stubs, tree)
    }

    #[test]
    fn a_stub_is_authenticated_by_its_proof_in_its_origins_checkpoint_only() {
        let origin = NodeKey::generate().origin();
        let (stubs, tree) = chain(origin, 11);
        let checkpoint = Checkpoint {
            origin: origin_name(&origin),
            size: 11,
            root: tree.root(),
        };
        for stub in &stubs {
            let proof = inclusion_proof(&tree, stub.id.sequence - 1, 11).unwrap();
            assert_eq!(stub.verify_inclusion(&checkpoint, &proof), Ok(()));
        }
        let seventh = &stubs[6];
        let proof = inclusion_proof(&tree, 6, 11).unwrap();
        // Another hash at the position: the proof no longer leads to the root.
        let forged = Stub {
            hash: [0xee; 32],
            ..*seventh
        };
        assert_eq!(
            forged.verify_inclusion(&checkpoint, &proof),
            Err(StubProofError::Proof(ProofError::Mismatch))
        );
        // A proof with one hash altered.
        let mut bent = proof.clone();
        bent[1][0] ^= 1;
        assert_eq!(
            seventh.verify_inclusion(&checkpoint, &bent),
            Err(StubProofError::Proof(ProofError::Mismatch))
        );
        // The proof of another position.
        let other = inclusion_proof(&tree, 5, 11).unwrap();
        assert!(seventh.verify_inclusion(&checkpoint, &other).is_err());
        // A checkpoint that does not reach the stub, or names another origin.
        let short = Checkpoint {
            size: 6,
            ..checkpoint.clone()
        };
        assert_eq!(
            seventh.verify_inclusion(&short, &proof),
            Err(StubProofError::Uncovered {
                size: 6,
                sequence: 7
            })
        );
        let stranger = NodeKey::generate().origin();
        let foreign = Checkpoint {
            origin: origin_name(&stranger),
            ..checkpoint
        };
        assert!(matches!(
            seventh.verify_inclusion(&foreign, &proof),
            Err(StubProofError::OtherOrigin(_))
        ));
    }
}
