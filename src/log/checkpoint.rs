//! Checkpoints (SPEC §8): C2SP `tlog-checkpoint` signed notes stating "origin X's log has N
//! entries and Merkle root R", and C2SP `tlog-cosignature` (timestamped cosignature v1) by
//! other nodes. Pure: text in, text out.
//!
//! A threatlog checkpoint's origin line — and its signature's key name — is
//! `threatlog/<origin key hex>` ([`origin_name`]), so the key that must sign it is named by
//! the checkpoint itself. The note is
//!
//! ```text
//! threatlog/<64 hex digits>
//! <tree size, decimal>
//! <base64 root hash>
//!
//! — threatlog/<64 hex digits> <base64(key id (4) ‖ Ed25519 signature (64))>
//! ```
//!
//! where the key id is the first 4 bytes of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)` and the
//! signature covers the note text: the three body lines with their newlines. A cosignature
//! line is `— <cosigner name> <base64(key id (4) ‖ timestamp (8, big-endian) ‖ signature
//! (64))>` with key id type byte `0x04`, signed over `cosignature/v1\ntime <timestamp>\n` then
//! the checkpoint body.

use base64::Engine;
use sha2::{Digest, Sha256};

use super::merkle::Hash;
use super::{NodeKey, OriginKey};

/// Prefix of every threatlog checkpoint origin line and key name.
pub const ORIGIN_PREFIX: &str = "threatlog/";
/// Signature type byte of Ed25519 note signatures in C2SP key ids.
const ALGORITHM_ED25519: u8 = 0x01;
/// Signature type byte of C2SP timestamped Ed25519 cosignatures (`cosignature/v1`).
const ALGORITHM_COSIGNATURE_V1: u8 = 0x04;
/// Largest signed note accepted, in bytes: a checkpoint is three short lines plus a few
/// signatures; anything larger is not one of ours.
pub const NOTE_BYTES_MAX: usize = 64 * 1024;
/// Most signature lines read from one note.
pub const NOTE_SIGNATURES_MAX: usize = 100;
/// The em dash and space that open a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Why a checkpoint or cosignature was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is not a signed note with a checkpoint body.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// No signature line by the expected key.
    #[error("checkpoint has no signature by {0}")]
    Unsigned(String),
    /// The signature line by the expected key does not verify.
    #[error("checkpoint signature by {0} does not verify")]
    BadSignature(String),
    /// A newer checkpoint is not consistent with an earlier one of the same origin.
    #[error("checkpoint of size {new} is not consistent with checkpoint of size {old}")]
    Inconsistent {
        /// Size of the earlier checkpoint.
        old: u64,
        /// Size of the later one.
        new: u64,
    },
}

/// The C2SP name of `origin`'s log and key: `threatlog/<key hex>`.
pub fn origin_name(origin: &OriginKey) -> String {
    format!("{ORIGIN_PREFIX}{origin}")
}

/// The C2SP key id: the first 4 bytes of `SHA-256(name ‖ "\n" ‖ algorithm ‖ key)`.
pub fn key_id(name: &str, algorithm: u8, key: &OriginKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', algorithm]);
    hasher.update(key.0);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A checkpoint body: origin, size, root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The origin line (`threatlog/<key hex>` for threatlog logs).
    pub origin: String,
    /// Entries in the tree.
    pub size: u64,
    /// Merkle root of the tree.
    pub root: Hash,
}

impl Checkpoint {
    /// The body text: three lines, each ending in a newline.
    pub fn body(&self) -> String {
        let root = base64::engine::general_purpose::STANDARD.encode(self.root);
        format!("{}\n{}\n{root}\n", self.origin, self.size)
    }

    /// The origin key a threatlog checkpoint names.
    pub fn origin_key(&self) -> Option<OriginKey> {
        OriginKey::from_hex(self.origin.strip_prefix(ORIGIN_PREFIX)?)
    }

    /// Parses a body (without signatures). Extension lines after the root are refused:
    /// threatlog writes none.
    pub fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        let malformed = |reason: &str| CheckpointError::Malformed(reason.to_string());
        let Some(text) = body.strip_suffix('\n') else {
            return Err(malformed("body does not end in a newline"));
        };
        let lines: Vec<&str> = text.split('\n').collect();
        let [origin, size, root] = lines.as_slice() else {
            return Err(malformed("body is not three lines"));
        };
        if origin.is_empty() {
            return Err(malformed("empty origin line"));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || size.starts_with('0') && size.len() > 1
        {
            return Err(malformed("size is not a decimal number"));
        }
        let size = size
            .parse()
            .map_err(|_| malformed("size is out of range"))?;
        let root = base64::engine::general_purpose::STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| <Hash>::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| malformed("root is not base64 of 32 bytes"))?;
        Ok(Checkpoint {
            origin: (*origin).to_string(),
            size,
            root,
        })
    }

    /// Signs the checkpoint as a note with `key` under `name`; returns the whole note.
    pub fn sign(&self, name: &str, key: &NodeKey) -> String {
        let body = self.body();
        let signature = key.sign(body.as_bytes());
        let mut blob = key_id(name, ALGORITHM_ED25519, &key.origin()).to_vec();
        blob.extend_from_slice(&signature);
        format!(
            "{body}\n{SIGNATURE_PREFIX}{name} {}\n",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    /// The message a cosigner signs at `timestamp` (seconds since the Unix epoch).
    fn cosigned_message(&self, timestamp: u64) -> String {
        format!("cosignature/v1\ntime {timestamp}\n{}", self.body())
    }

    /// A `tlog-cosignature` line by `key` (named by [`origin_name`]) at `timestamp`.
    pub fn cosign(&self, key: &NodeKey, timestamp: u64) -> String {
        let name = origin_name(&key.origin());
        let signature = key.sign(self.cosigned_message(timestamp).as_bytes());
        let mut blob = key_id(&name, ALGORITHM_COSIGNATURE_V1, &key.origin()).to_vec();
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature);
        format!(
            "{SIGNATURE_PREFIX}{name} {}\n",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    /// Verifies a cosignature line by `cosigner` over this checkpoint; returns its timestamp.
    pub fn verify_cosignature(
        &self,
        line: &str,
        cosigner: &OriginKey,
    ) -> Result<u64, CheckpointError> {
        let name = origin_name(cosigner);
        let (line_name, blob) = parse_signature_line(line.trim_end_matches('\n'))?;
        if line_name != name {
            return Err(CheckpointError::Unsigned(name));
        }
        if blob.len() != 4 + 8 + 64
            || blob[..4] != key_id(&name, ALGORITHM_COSIGNATURE_V1, cosigner)
        {
            return Err(CheckpointError::Unsigned(name));
        }
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&blob[4..12]);
        let timestamp = u64::from_be_bytes(timestamp);
        cosigner
            .verify_strict(self.cosigned_message(timestamp).as_bytes(), &blob[12..])
            .map_err(|_| CheckpointError::BadSignature(name))?;
        Ok(timestamp)
    }
}

/// A signature line's key name and decoded blob.
fn parse_signature_line(line: &str) -> Result<(&str, Vec<u8>), CheckpointError> {
    let malformed = |reason: &str| CheckpointError::Malformed(reason.to_string());
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| malformed("signature line does not start with an em dash"))?;
    let (name, encoded) = rest
        .rsplit_once(' ')
        .ok_or_else(|| malformed("signature line has no key name"))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| malformed("signature is not base64"))?;
    if blob.len() < 5 {
        return Err(malformed("signature is too short"));
    }
    Ok((name, blob))
}

/// A signed note split into its body and signature lines.
pub fn split_note(note: &str) -> Result<(&str, Vec<&str>), CheckpointError> {
    let malformed = |reason: &str| CheckpointError::Malformed(reason.to_string());
    if note.len() > NOTE_BYTES_MAX {
        return Err(malformed("note is over the size limit"));
    }
    let split = note
        .find("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let body = &note[..split + 1];
    let signatures = &note[split + 2..];
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(malformed("note does not end in a newline"));
    };
    let lines: Vec<&str> = signatures.split('\n').collect();
    if lines.is_empty() || lines.len() > NOTE_SIGNATURES_MAX {
        return Err(malformed("wrong number of signature lines"));
    }
    Ok((body, lines))
}

/// Verifies `note` as a checkpoint signed by `key` under `name`, and returns it. Signature
/// lines by other keys are ignored, as C2SP prescribes.
pub fn verify_note(note: &str, name: &str, key: &OriginKey) -> Result<Checkpoint, CheckpointError> {
    let (body, lines) = split_note(note)?;
    let checkpoint = Checkpoint::parse_body(body)?;
    let id = key_id(name, ALGORITHM_ED25519, key);
    for line in lines {
        let (line_name, blob) = parse_signature_line(line)?;
        if line_name != name || blob.len() != 4 + 64 || blob[..4] != id {
            continue;
        }
        key.verify_strict(body.as_bytes(), &blob[4..])
            .map_err(|_| CheckpointError::BadSignature(name.to_string()))?;
        return Ok(checkpoint);
    }
    Err(CheckpointError::Unsigned(name.to_string()))
}

/// Verifies a threatlog checkpoint note: signed by the origin key its origin line names.
pub fn verify_origin_note(note: &str, origin: &OriginKey) -> Result<Checkpoint, CheckpointError> {
    let name = origin_name(origin);
    let checkpoint = verify_note(note, &name, origin)?;
    if checkpoint.origin != name {
        return Err(CheckpointError::Malformed(format!(
            "origin line '{}' is not {name}",
            checkpoint.origin
        )));
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(key: &NodeKey) -> Checkpoint {
        Checkpoint {
            origin: origin_name(&key.origin()),
            size: 12,
            root: [7; 32],
        }
    }

    #[test]
    fn signed_notes_verify_and_tampering_is_refused() {
        let key = NodeKey::generate();
        let note = checkpoint(&key).sign(&origin_name(&key.origin()), &key);
        assert_eq!(
            verify_origin_note(&note, &key.origin()).unwrap(),
            checkpoint(&key)
        );
        let other = NodeKey::generate();
        assert!(matches!(
            verify_origin_note(&note, &other.origin()),
            Err(CheckpointError::Unsigned(_))
        ));
        let tampered = note.replacen("\n12\n", "\n13\n", 1);
        assert!(matches!(
            verify_origin_note(&tampered, &key.origin()),
            Err(CheckpointError::BadSignature(_))
        ));
        assert!(verify_origin_note(&note[..note.len() - 1], &key.origin()).is_err());
    }

    #[test]
    fn cosignatures_verify_for_their_checkpoint_only() {
        let origin = NodeKey::generate();
        let cosigner = NodeKey::generate();
        let checkpoint = checkpoint(&origin);
        let line = checkpoint.cosign(&cosigner, 1_700_000_000);
        assert_eq!(
            checkpoint.verify_cosignature(&line, &cosigner.origin()),
            Ok(1_700_000_000)
        );
        let mut other = checkpoint.clone();
        other.size = 13;
        assert!(other.verify_cosignature(&line, &cosigner.origin()).is_err());
        assert!(checkpoint
            .verify_cosignature(&line, &origin.origin())
            .is_err());
    }
}
