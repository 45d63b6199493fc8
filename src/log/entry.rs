//! Entry sealing (encode once, sign the exact bytes) and verification.

use prost::bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{LogError, NodeKey, OriginKey, StrictVerifier};
use crate::proto;

/// Version written into every entry this node authors.
pub const ENTRY_FORMAT_VERSION: u32 = 1;
/// Largest stored entry, in bytes. Large enough for one attachment of
/// [`crate::model::ATTACHMENT_BYTES_MAX`] in base64 plus its event context; small enough that
/// a peer cannot make us buffer arbitrary amounts per entry.
pub const ENTRY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most ops in one entry. Bounds the work one entry can cause in the view reducer; larger
/// changes are split over several entries appended atomically.
pub const OPS_PER_ENTRY_MAX: usize = 4096;
/// Length of the random salt that keeps entry hashes from revealing content.
pub const SALT_BYTES: usize = 16;

/// SHA-256 of an entry's stored bytes.
pub type EntryHash = [u8; 32];

/// The position of an entry: its origin and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    /// The authoring node.
    pub origin: OriginKey,
    /// Sequence number in the origin's log.
    pub sequence: u64,
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.origin, self.sequence)
    }
}

/// The last entry of an origin's chain, which the next entry must link to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Sequence number of the last entry (0 before the first).
    pub sequence: u64,
    /// Hash of the last entry (zeros before the first).
    pub hash: EntryHash,
}

impl Head {
    /// The head of an origin with no entries yet.
    pub const EMPTY: Head = Head {
        sequence: 0,
        hash: [0; 32],
    };

    /// Checks that `entry` is the next link of this chain.
    pub fn check_next(&self, entry: &VerifiedEntry) -> Result<(), LogError> {
        if entry.sequence() != self.sequence + 1 {
            return Err(LogError::Sequence {
                expected_after: self.sequence,
                got: entry.sequence(),
            });
        }
        if entry.entry().prev_hash.as_ref() != self.hash {
            return Err(LogError::ChainBreak {
                previous: self.sequence,
            });
        }
        Ok(())
    }

    /// The head after appending `entry`.
    pub fn after(entry: &VerifiedEntry) -> Head {
        Head {
            sequence: entry.sequence(),
            hash: entry.hash(),
        }
    }
}

/// An entry before it is sealed: who acts, on which event, with which visibility, what ops.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Draft {
    /// Organisation on whose behalf the change is made.
    pub acting_org: Uuid,
    /// User on this node who made the change.
    pub acting_user: String,
    /// The event the ops change; `None` for directory data (organisations, sharing groups).
    pub event: Option<Uuid>,
    /// Visibility shared by every op.
    pub visibility: proto::Visibility,
    /// The changes.
    pub ops: Vec<proto::Op>,
}

/// SHA-256 of stored entry bytes.
pub fn entry_hash(stored: &[u8]) -> EntryHash {
    Sha256::digest(stored).into()
}

/// Encodes `draft` as the entry after `head` of `key`'s chain and signs it.
pub fn seal(
    key: &NodeKey,
    origin_org: Uuid,
    head: &Head,
    draft: Draft,
    time_ms: i64,
    salt: [u8; SALT_BYTES],
) -> Result<VerifiedEntry, LogError> {
    if draft.ops.len() > OPS_PER_ENTRY_MAX {
        return Err(LogError::TooManyOps {
            ops: draft.ops.len(),
            max_ops: OPS_PER_ENTRY_MAX,
        });
    }
    let entry = proto::Entry {
        format_version: ENTRY_FORMAT_VERSION,
        origin_key: Bytes::copy_from_slice(&key.origin().0),
        origin_org: Bytes::copy_from_slice(origin_org.as_bytes()),
        acting_org: Bytes::copy_from_slice(draft.acting_org.as_bytes()),
        acting_user: draft.acting_user,
        sequence: head.sequence + 1,
        prev_hash: Bytes::copy_from_slice(&head.hash),
        time_ms,
        salt: Bytes::copy_from_slice(&salt),
        event_uuid: draft
            .event
            .map(|uuid| Bytes::copy_from_slice(uuid.as_bytes()))
            .unwrap_or_default(),
        visibility: Some(draft.visibility),
        ops: draft.ops,
    };
    let entry_bytes = Bytes::from(entry.encode_to_vec());
    let signature = key.sign(&entry_bytes);
    let signed = proto::SignedEntry {
        entry: entry_bytes,
        signature: Bytes::copy_from_slice(&signature),
    };
    let stored = signed.encode_to_vec();
    if stored.len() > ENTRY_BYTES_MAX {
        return Err(LogError::TooLarge {
            bytes: stored.len(),
            max_bytes: ENTRY_BYTES_MAX,
        });
    }
    Ok(VerifiedEntry {
        hash: entry_hash(&stored),
        origin: key.origin(),
        stored: Bytes::from(stored),
        signed: signed.entry,
        entry,
    })
}

/// An entry whose signature, envelope and fields have been checked. Only [`seal`] and
/// [`VerifiedEntry::verify`] construct one, so holding one proves the checks passed.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedEntry {
    /// The exact stored bytes (an encoded `SignedEntry`).
    stored: Bytes,
    /// The encoded `Entry` the signature covers (a slice of `stored`).
    signed: Bytes,
    /// The decoded entry.
    entry: proto::Entry,
    /// SHA-256 of `stored`.
    hash: EntryHash,
    /// The authoring node.
    origin: OriginKey,
}

impl VerifiedEntry {
    /// Decodes and verifies stored entry bytes: canonical envelope, size and op limits, format
    /// version, field shapes, and the strict ed25519 signature over the exact entry bytes.
    pub fn verify(stored: Bytes) -> Result<Self, LogError> {
        let unverified = UnverifiedEntry::decode(stored)?;
        let verifier = unverified.origin.verifier()?;
        unverified.verified(&verifier)
    }

    /// Decodes entry bytes read back from this node's own store. They were verified (or
    /// sealed here) before they were stored, so the signature is not checked again on every
    /// read; the shape checks still run, and `Store::verify` and `audit verify` re-check
    /// every signature.
    pub(crate) fn from_store(stored: Bytes) -> Result<Self, LogError> {
        UnverifiedEntry::decode(stored)?.checked()
    }

    /// The exact stored bytes.
    pub fn stored(&self) -> &Bytes {
        &self.stored
    }

    /// The encoded entry bytes the signature covers.
    pub fn signed_bytes(&self) -> &Bytes {
        &self.signed
    }

    /// The decoded entry.
    pub fn entry(&self) -> &proto::Entry {
        &self.entry
    }

    /// SHA-256 of the stored bytes.
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// The authoring node.
    pub fn origin(&self) -> OriginKey {
        self.origin
    }

    /// Sequence number in the origin's log.
    pub fn sequence(&self) -> u64 {
        self.entry.sequence
    }

    /// Origin and sequence.
    pub fn id(&self) -> EntryId {
        EntryId {
            origin: self.origin,
            sequence: self.entry.sequence,
        }
    }

    /// The event the entry changes, if any.
    pub fn event(&self) -> Option<Uuid> {
        Uuid::from_slice(&self.entry.event_uuid).ok()
    }

    /// Whether the entry deletes its event.
    pub fn is_tombstone(&self) -> bool {
        self.entry
            .ops
            .iter()
            .any(|op| matches!(op.op, Some(crate::proto::op::Op::Tombstone(_))))
    }

    /// The draft the entry was sealed from, to seal it again elsewhere in the chain.
    pub fn into_draft(self) -> Draft {
        Draft {
            acting_org: self.acting_org(),
            event: self.event(),
            acting_user: self.entry.acting_user,
            visibility: self.entry.visibility.unwrap_or_default(),
            ops: self.entry.ops,
        }
    }

    /// The organisation on whose behalf the change was made.
    pub fn acting_org(&self) -> Uuid {
        // check_fields guaranteed 16 bytes.
        Uuid::from_slice(&self.entry.acting_org).unwrap_or_default()
    }

    /// The organisation that runs the origin node.
    pub fn origin_org(&self) -> Uuid {
        Uuid::from_slice(&self.entry.origin_org).unwrap_or_default()
    }
}

/// An entry decoded and checked in everything but its signature: the step before
/// [`verify_entries`] checks many signatures.
#[derive(Clone, Debug)]
pub struct UnverifiedEntry {
    /// The exact stored bytes.
    stored: Bytes,
    /// The encoded `Entry` the signature covers.
    signed: Bytes,
    /// The signature bytes as stored.
    signature: Bytes,
    /// The decoded entry.
    entry: proto::Entry,
    /// The authoring node.
    origin: OriginKey,
    /// SHA-256 of `stored`.
    hash: EntryHash,
}

impl UnverifiedEntry {
    /// Decodes stored entry bytes: size limit, canonical envelope, format version, origin key.
    pub fn decode(stored: Bytes) -> Result<Self, LogError> {
        if stored.len() > ENTRY_BYTES_MAX {
            return Err(LogError::TooLarge {
                bytes: stored.len(),
                max_bytes: ENTRY_BYTES_MAX,
            });
        }
        let signed = proto::SignedEntry::decode(stored.clone())
            .map_err(|error| LogError::Decode(error.to_string()))?;
        // The framing is re-derived only to compare it: the signed bytes are never re-encoded.
        if signed.encoded_len() != stored.len() || signed.encode_to_vec() != stored.as_ref() {
            return Err(LogError::Envelope);
        }
        let entry = proto::Entry::decode(signed.entry.clone())
            .map_err(|error| LogError::Decode(error.to_string()))?;
        if entry.format_version != ENTRY_FORMAT_VERSION {
            return Err(LogError::Version(entry.format_version));
        }
        let origin = OriginKey::from_slice(&entry.origin_key)?;
        Ok(Self {
            hash: entry_hash(&stored),
            stored,
            signed: signed.entry,
            signature: signed.signature,
            entry,
            origin,
        })
    }

    /// SHA-256 of the stored bytes.
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// The decoded entry (not yet authenticated).
    pub fn entry(&self) -> &proto::Entry {
        &self.entry
    }

    /// The origin the entry claims.
    pub fn origin(&self) -> OriginKey {
        self.origin
    }

    /// The exact stored bytes.
    pub fn stored(&self) -> &Bytes {
        &self.stored
    }

    /// The strict signature check under `verifier` (the origin's key), then the field checks:
    /// the one path by which entries of other origins become verified, on ingest
    /// ([`VerifiedEntry::verify`]) and in audits ([`verify_entries`]) alike.
    fn verified(self, verifier: &StrictVerifier) -> Result<VerifiedEntry, LogError> {
        verifier.verify(&self.signed, &self.signature)?;
        self.checked()
    }

    /// Field checks, once the signature is known good.
    fn checked(self) -> Result<VerifiedEntry, LogError> {
        check_fields(&self.entry)?;
        Ok(VerifiedEntry {
            hash: self.hash,
            origin: self.origin,
            stored: self.stored,
            signed: self.signed,
            entry: self.entry,
        })
    }
}

/// Verifies many entries exactly as [`VerifiedEntry::verify`] (ingest) does: each signature
/// strictly, one by one, then the fields. Returns the entries, or the first failure with its
/// index.
///
/// There is no batch equation here on purpose: ed25519 batch verification is cofactorless
/// over a random combination of the signatures, so the holder of a key can make it accept a
/// signature whose `R` carries a small-order component, which strict verification refuses.
/// An auditor must accept exactly the entries every node accepts. Decoding each origin key
/// once is the only work saved.
pub fn verify_entries(
    entries: Vec<UnverifiedEntry>,
) -> Result<Vec<VerifiedEntry>, (usize, LogError)> {
    let mut cache: Option<(OriginKey, StrictVerifier)> = None;
    let mut out = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let verifier = match cache {
            Some((origin, verifier)) if origin == entry.origin => verifier,
            _ => {
                let verifier = entry.origin.verifier().map_err(|error| (index, error))?;
                cache = Some((entry.origin, verifier));
                verifier
            }
        };
        out.push(entry.verified(&verifier).map_err(|error| (index, error))?);
    }
    Ok(out)
}

/// Checks the lengths of fixed-size fields, the sequence and the op count.
fn check_fields(entry: &proto::Entry) -> Result<(), LogError> {
    let fixed: [(&'static str, &[u8], &[usize]); 5] = [
        ("origin_org", &entry.origin_org, &[16]),
        ("acting_org", &entry.acting_org, &[16]),
        ("prev_hash", &entry.prev_hash, &[32]),
        ("salt", &entry.salt, &[SALT_BYTES]),
        ("event_uuid", &entry.event_uuid, &[0, 16]),
    ];
    for (field, bytes, lengths) in fixed {
        if !lengths.contains(&bytes.len()) {
            return Err(LogError::Field {
                field,
                reason: format!("{} bytes, expected {lengths:?}", bytes.len()),
            });
        }
    }
    if entry.sequence == 0 {
        return Err(LogError::Field {
            field: "sequence",
            reason: "sequence numbers start at 1".into(),
        });
    }
    if entry.ops.len() > OPS_PER_ENTRY_MAX {
        return Err(LogError::TooManyOps {
            ops: entry.ops.len(),
            max_ops: OPS_PER_ENTRY_MAX,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        Draft {
            acting_org: Uuid::from_u128(7),
            acting_user: "admin@example.org".into(),
            event: Some(Uuid::from_u128(9)),
            visibility: proto::Visibility {
                distribution: 1,
                sharing_group: Bytes::new(),
            },
            ops: vec![proto::Op {
                op: Some(proto::op::Op::Tombstone(proto::EventTombstone {
                    reason: "test".into(),
                })),
            }],
        }
    }

    fn first_entry(key: &NodeKey) -> VerifiedEntry {
        seal(
            key,
            Uuid::from_u128(7),
            &Head::EMPTY,
            draft(),
            1000,
            [1; 16],
        )
        .unwrap()
    }

    #[test]
    fn sealed_entry_verifies_and_links() {
        let key = NodeKey::generate();
        let first = first_entry(&key);
        let verified = VerifiedEntry::verify(first.stored().clone()).unwrap();
        assert_eq!(verified, first);
        Head::EMPTY.check_next(&verified).unwrap();
        let head = Head::after(&verified);
        let second = seal(&key, Uuid::from_u128(7), &head, draft(), 1001, [2; 16]).unwrap();
        assert_eq!(second.sequence(), 2);
        head.check_next(&second).unwrap();
        assert_eq!(
            Head::EMPTY.check_next(&second),
            Err(LogError::Sequence {
                expected_after: 0,
                got: 2
            })
        );
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let key = NodeKey::generate();
        let entry = first_entry(&key);
        let stored = entry.stored().to_vec();
        for index in 0..stored.len() {
            let mut tampered = stored.clone();
            tampered[index] ^= 0x01;
            assert!(
                VerifiedEntry::verify(Bytes::from(tampered)).is_err(),
                "flipping byte {index} was not detected"
            );
        }
    }

    fn chain(key: &NodeKey, length: u8) -> Vec<VerifiedEntry> {
        let mut head = Head::EMPTY;
        let mut out = Vec::new();
        for index in 0..length {
            let entry = seal(key, Uuid::from_u128(7), &head, draft(), 1000, [index; 16]).unwrap();
            head = Head::after(&entry);
            out.push(entry);
        }
        out
    }

    fn decode(stored: &[Bytes]) -> Vec<UnverifiedEntry> {
        stored
            .iter()
            .map(|b| UnverifiedEntry::decode(b.clone()).unwrap())
            .collect()
    }

    #[test]
    fn many_entries_verify_and_the_bad_one_is_named() {
        let key = NodeKey::generate();
        let stored: Vec<Bytes> = chain(&key, 5).iter().map(|e| e.stored().clone()).collect();
        let verified = verify_entries(decode(&stored)).unwrap();
        assert_eq!(verified.len(), 5);
        assert_eq!(verified[4].sequence(), 5);
        // A signature from another key on entry 3.
        let mut bad = stored.clone();
        let mut signed = proto::SignedEntry::decode(bad[3].clone()).unwrap();
        signed.signature = Bytes::copy_from_slice(&NodeKey::generate().sign(&signed.entry));
        bad[3] = Bytes::from(signed.encode_to_vec());
        let error = verify_entries(decode(&bad)).unwrap_err();
        assert_eq!(error, (3, LogError::BadSignature));
    }

    /// Most nonces tried for a torsion signature that batch verification accepts (each try
    /// succeeds with probability 1/8).
    const TORSION_TRIES_MAX: u32 = 256;

    /// An ed25519 signature by `key` over `message` whose R is `r·B + T`, T of order 8.
    fn torsion_signature(key: &NodeKey, message: &[u8], nonce: u32) -> [u8; 64] {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
        use curve25519_dalek::scalar::Scalar;
        use sha2::Sha512;
        let expanded = Sha512::digest(key.seed());
        let mut secret: [u8; 32] = expanded[..32].try_into().unwrap();
        secret[0] &= 248;
        secret[31] &= 127;
        secret[31] |= 64;
        let a = Scalar::from_bytes_mod_order(secret);
        let wide = |parts: &[&[u8]]| {
            let mut hasher = Sha512::new();
            for part in parts {
                hasher.update(part);
            }
            Scalar::from_bytes_mod_order_wide(&hasher.finalize().into())
        };
        let r = wide(&[&expanded[32..], &nonce.to_be_bytes(), message]);
        let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1]).compress();
        let k = wide(&[big_r.as_bytes(), &key.origin().0, message]);
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(big_r.as_bytes());
        signature[32..].copy_from_slice((r + k * a).as_bytes());
        signature
    }

    #[test]
    fn a_torsion_signature_that_batch_verification_accepts_is_refused() {
        let key = NodeKey::generate();
        let entries = chain(&key, 4);
        let public = ed25519_dalek::VerifyingKey::from_bytes(&key.origin().0).unwrap();
        let last = entries.last().unwrap();
        let mut signed = proto::SignedEntry::decode(last.stored().clone()).unwrap();
        let signatures_of = |signed: &proto::SignedEntry| -> Vec<ed25519_dalek::Signature> {
            entries[..3]
                .iter()
                .map(|e| {
                    proto::SignedEntry::decode(e.stored().clone())
                        .unwrap()
                        .signature
                })
                .chain([signed.signature.clone()])
                .map(|bytes| ed25519_dalek::Signature::from_slice(&bytes).unwrap())
                .collect()
        };
        let messages: Vec<&[u8]> = entries.iter().map(|e| e.signed_bytes().as_ref()).collect();
        let accepted_by_batch = (0..TORSION_TRIES_MAX).any(|nonce| {
            signed.signature = torsion_signature(&key, &signed.entry, nonce)
                .to_vec()
                .into();
            ed25519_dalek::verify_batch(&messages, &signatures_of(&signed), &[public; 4]).is_ok()
        });
        assert!(accepted_by_batch, "no nonce passed batch verification");
        let mut stored: Vec<Bytes> = entries.iter().map(|e| e.stored().clone()).collect();
        stored[3] = Bytes::from(signed.encode_to_vec());
        assert_eq!(
            VerifiedEntry::verify(stored[3].clone()),
            Err(LogError::BadSignature)
        );
        assert_eq!(
            verify_entries(decode(&stored)).unwrap_err(),
            (3, LogError::BadSignature)
        );
    }

    #[test]
    fn salt_changes_the_hash_of_identical_content() {
        let key = NodeKey::generate();
        let a = first_entry(&key);
        let b = seal(
            &key,
            Uuid::from_u128(7),
            &Head::EMPTY,
            draft(),
            1000,
            [2; 16],
        )
        .unwrap();
        assert_ne!(a.hash(), b.hash());
    }
}
