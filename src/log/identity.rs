//! Organisation identity (SPEC §4.1): org keys and the statements they sign — node
//! certificates ("node key K belongs to org X"), revocations ("K is revoked from sequence s")
//! and community rosters ("org X has org keys …", signed by an operator's org key). Pure: bytes
//! in, verified values out.
//!
//! Each statement is a protobuf message `{ body, signature }`: the signer encodes the body once
//! and signs `context ‖ body`, where the context string names the kind of statement, so a
//! signature over one kind can never be passed off as another (or as a log entry). Verifiers
//! check the signature over the body bytes as received and only then decode them; nothing is
//! re-encoded before verifying (STYLE habit 4).

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use prost::bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::OriginKey;
use crate::proto;

mod judge;
pub use judge::{check_statements, judge, IdentityRefusal, Known};

/// Version written into every statement body this build signs.
pub const STATEMENT_FORMAT_VERSION: u32 = 1;
/// Largest certificate or revocation, in bytes: a few keys, a uuid, a name and a reason.
pub const STATEMENT_BYTES_MAX: usize = 4096;
/// Longest organisation name or revocation reason in a statement, in bytes.
pub const STATEMENT_TEXT_BYTES_MAX: usize = 1024;
/// Largest roster, in bytes: room for [`ROSTER_MEMBERS_MAX`] members with a few keys each.
pub const ROSTER_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most organisations in one roster.
pub const ROSTER_MEMBERS_MAX: usize = 10_000;
/// Most org keys one roster member lists (current and rotating keys).
pub const ROSTER_KEYS_PER_MEMBER_MAX: usize = 8;

/// Context string of node certificate signatures.
const CERTIFICATE_CONTEXT: &[u8] = b"threatlog node certificate v1\0";
/// Context string of revocation signatures.
const REVOCATION_CONTEXT: &[u8] = b"threatlog revocation v1\0";
/// Context string of roster signatures.
const ROSTER_CONTEXT: &[u8] = b"threatlog roster v1\0";

/// Text prefix of a certificate printed by `threatlog org certify`.
pub const CERTIFICATE_TEXT_PREFIX: &str = "threatlog-certificate:";
/// Text prefix of a revocation signed by `threatlog org revoke`.
pub const REVOCATION_TEXT_PREFIX: &str = "threatlog-revocation:";
/// Text prefix of a roster written by `threatlog org roster export`.
pub const ROSTER_TEXT_PREFIX: &str = "threatlog-roster:";

/// Why a statement was refused. Every variant is caused by the statement's bytes (ours or a
/// peer's) and is returned, never panicked on.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// The bytes are not the protobuf message they should be.
    #[error("{what} does not decode: {reason}")]
    Decode {
        /// Which statement.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The outer `{ body, signature }` message is not in its one canonical framing.
    #[error("{0} envelope is not canonical")]
    Envelope(&'static str),
    /// The statement is over its size limit.
    #[error("{what} is {bytes} bytes, over the limit of {max_bytes}")]
    TooLarge {
        /// Which statement.
        what: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// A body of a format version this build does not know.
    #[error("{what} format version {version} is not supported (this build knows {STATEMENT_FORMAT_VERSION})")]
    Version {
        /// Which statement.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A field has the wrong shape (length, range, count).
    #[error("{what} field {field} is malformed: {reason}")]
    Field {
        /// Which statement.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The signer's key is not a valid ed25519 public key, or is a weak key.
    #[error("{0} signer key is not a valid ed25519 public key")]
    BadKey(&'static str),
    /// The signature does not verify (strict ed25519) against the signer's key.
    #[error("{0} signature does not verify")]
    BadSignature(&'static str),
    /// Text that is not a statement printed by threatlog.
    #[error("not a threatlog {what} (expected text starting with {prefix})")]
    Text {
        /// Which statement.
        what: &'static str,
        /// The expected prefix.
        prefix: &'static str,
    },
}

/// An organisation's ed25519 signing key: it certifies and revokes the org's node keys, and a
/// community operator's signs rosters. Kept apart from node keys; it signs rarely and can live
/// offline once the org's nodes are certified.
pub struct OrgKey {
    /// The secret key; never leaves the org key file.
    signing: SigningKey,
}

impl OrgKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The key from its 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte secret seed, for writing the key file.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key peers bind to the organisation.
    pub fn public(&self) -> OrgPublicKey {
        OrgPublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs `context ‖ body`.
    fn sign(&self, context: &[u8], body: &[u8]) -> Bytes {
        let mut message = Vec::with_capacity(context.len() + body.len());
        message.extend_from_slice(context);
        message.extend_from_slice(body);
        Bytes::copy_from_slice(&self.signing.sign(&message).to_bytes())
    }
}

/// An organisation's public org key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrgPublicKey(pub [u8; 32]);

impl OrgPublicKey {
    /// The key from bytes of a statement field.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The key parsed from 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        Self::from_slice(&hex::decode(text.trim()).ok()?)
    }

    /// Verifies `signature` over `context ‖ body` with strict ed25519 rules.
    fn verify(
        &self,
        what: &'static str,
        context: &[u8],
        body: &[u8],
        signature: &[u8],
    ) -> Result<(), IdentityError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| IdentityError::BadKey(what))?;
        if key.is_weak() {
            return Err(IdentityError::BadKey(what));
        }
        let signature = ed25519_dalek::Signature::from_slice(signature)
            .map_err(|_| IdentityError::BadSignature(what))?;
        let mut message = Vec::with_capacity(context.len() + body.len());
        message.extend_from_slice(context);
        message.extend_from_slice(body);
        key.verify_strict(&message, &signature)
            .map_err(|_| IdentityError::BadSignature(what))
    }
}

super::key::hex_key_text!(OrgPublicKey);

/// The signed envelope shared by every statement: the body bytes and the signature.
struct Envelope {
    /// The canonical encoding of the envelope (what is stored and sent).
    stored: Bytes,
    /// The body bytes as signed.
    body: Bytes,
    /// The signature bytes.
    signature: Bytes,
}

/// Decodes a `{ body = 1; signature = 2; }` envelope, refusing non-canonical framings so that a
/// statement has one stored form (and one hash).
fn open_envelope(
    what: &'static str,
    stored: Bytes,
    max_bytes: usize,
) -> Result<Envelope, IdentityError> {
    if stored.len() > max_bytes {
        return Err(IdentityError::TooLarge {
            what,
            bytes: stored.len(),
            max_bytes,
        });
    }
    // Certificates, revocations and rosters share the envelope's shape.
    let envelope =
        proto::NodeCertificate::decode(stored.clone()).map_err(|error| IdentityError::Decode {
            what,
            reason: error.to_string(),
        })?;
    if envelope.encode_to_vec() != stored.as_ref() {
        return Err(IdentityError::Envelope(what));
    }
    Ok(Envelope {
        stored,
        body: envelope.body,
        signature: envelope.signature,
    })
}

/// The canonical envelope of `body` and `signature`.
fn seal_envelope(body: Bytes, signature: Bytes) -> Bytes {
    Bytes::from(proto::NodeCertificate { body, signature }.encode_to_vec())
}

fn field(what: &'static str, field: &'static str, reason: String) -> IdentityError {
    IdentityError::Field {
        what,
        field,
        reason,
    }
}

fn uuid_field(what: &'static str, name: &'static str, bytes: &[u8]) -> Result<Uuid, IdentityError> {
    Uuid::from_slice(bytes)
        .map_err(|_| field(what, name, format!("{} bytes, expected 16", bytes.len())))
}

fn key_field(
    what: &'static str,
    name: &'static str,
    bytes: &[u8],
) -> Result<[u8; 32], IdentityError> {
    bytes
        .try_into()
        .map_err(|_| field(what, name, format!("{} bytes, expected 32", bytes.len())))
}

fn text_field(what: &'static str, name: &'static str, text: &str) -> Result<(), IdentityError> {
    if text.len() > STATEMENT_TEXT_BYTES_MAX {
        return Err(field(
            what,
            name,
            format!("{} bytes, over {STATEMENT_TEXT_BYTES_MAX}", text.len()),
        ));
    }
    Ok(())
}

fn version(what: &'static str, version: u32) -> Result<(), IdentityError> {
    if version != STATEMENT_FORMAT_VERSION {
        return Err(IdentityError::Version { what, version });
    }
    Ok(())
}

fn to_text(prefix: &str, stored: &[u8]) -> String {
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(stored)
    )
}

fn from_text(what: &'static str, prefix: &'static str, text: &str) -> Result<Bytes, IdentityError> {
    let body = text
        .trim()
        .strip_prefix(prefix)
        .ok_or(IdentityError::Text { what, prefix })?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map(Bytes::from)
        .map_err(|_| IdentityError::Text { what, prefix })
}

/// A node certificate whose signature and fields have been checked. Only
/// [`Certificate::issue`] and [`Certificate::verify`] construct one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The canonical envelope bytes, as stored and sent.
    stored: Bytes,
    /// The organisation.
    pub org_uuid: Uuid,
    /// The organisation's name when issued.
    pub org_name: String,
    /// The certified node.
    pub node_key: OriginKey,
    /// The signing org key.
    pub org_key: OrgPublicKey,
    /// Issue time (ms since the epoch).
    pub issued_ms: i64,
    /// Expiry (ms since the epoch), if any.
    pub expires_ms: Option<i64>,
}

const CERTIFICATE: &str = "node certificate";

impl Certificate {
    /// Signs a certificate of `node_key` for organisation `org_uuid` (`org_name`) with
    /// `org_key`.
    pub fn issue(
        org_key: &OrgKey,
        org_uuid: Uuid,
        org_name: &str,
        node_key: OriginKey,
        issued_ms: i64,
        expires_ms: Option<i64>,
    ) -> Result<Certificate, IdentityError> {
        text_field(CERTIFICATE, "org_name", org_name)?;
        let body = proto::NodeCertificateBody {
            format_version: STATEMENT_FORMAT_VERSION,
            org_uuid: Bytes::copy_from_slice(org_uuid.as_bytes()),
            org_name: org_name.to_string(),
            node_key: Bytes::copy_from_slice(&node_key.0),
            org_key: Bytes::copy_from_slice(&org_key.public().0),
            issued_ms,
            expires_ms: expires_ms.unwrap_or(0),
        };
        let body = Bytes::from(body.encode_to_vec());
        let signature = org_key.sign(CERTIFICATE_CONTEXT, &body);
        Certificate::verify(seal_envelope(body, signature))
    }

    /// Decodes and verifies certificate bytes (an encoded `NodeCertificate`): size, canonical
    /// envelope, the org key's strict signature over the exact body bytes, then the fields.
    pub fn verify(stored: Bytes) -> Result<Certificate, IdentityError> {
        let envelope = open_envelope(CERTIFICATE, stored, STATEMENT_BYTES_MAX)?;
        let body = proto::NodeCertificateBody::decode(envelope.body.clone()).map_err(|error| {
            IdentityError::Decode {
                what: CERTIFICATE,
                reason: error.to_string(),
            }
        })?;
        let org_key = OrgPublicKey(key_field(CERTIFICATE, "org_key", &body.org_key)?);
        org_key.verify(
            CERTIFICATE,
            CERTIFICATE_CONTEXT,
            &envelope.body,
            &envelope.signature,
        )?;
        version(CERTIFICATE, body.format_version)?;
        text_field(CERTIFICATE, "org_name", &body.org_name)?;
        if body.expires_ms < 0 {
            return Err(field(CERTIFICATE, "expires_ms", "negative".into()));
        }
        Ok(Certificate {
            stored: envelope.stored,
            org_uuid: uuid_field(CERTIFICATE, "org_uuid", &body.org_uuid)?,
            org_name: body.org_name,
            node_key: OriginKey(key_field(CERTIFICATE, "node_key", &body.node_key)?),
            org_key,
            issued_ms: body.issued_ms,
            expires_ms: (body.expires_ms != 0).then_some(body.expires_ms),
        })
    }

    /// Verifies the certificate an op carries.
    pub fn from_op(op: &proto::NodeCertificate) -> Result<Certificate, IdentityError> {
        Certificate::verify(seal_envelope(op.body.clone(), op.signature.clone()))
    }

    /// The op that puts this certificate in its node's chain.
    pub fn op(&self) -> proto::Op {
        proto::Op {
            op: Some(proto::op::Op::Certificate(self.to_proto())),
        }
    }

    /// The certificate as an op's message, body and signature as signed.
    pub fn to_proto(&self) -> proto::NodeCertificate {
        // `stored` was produced or checked as the canonical encoding of exactly this message.
        proto::NodeCertificate::decode(self.stored.clone()).unwrap_or_default()
    }

    /// The canonical envelope bytes.
    pub fn stored(&self) -> &Bytes {
        &self.stored
    }

    /// SHA-256 of the stored bytes.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(&self.stored).into()
    }

    /// Whether the certificate covers an entry dated `time_ms` (it has not expired by then).
    pub fn covers_time(&self, time_ms: i64) -> bool {
        self.expires_ms.is_none_or(|expires| time_ms < expires)
    }

    /// The certificate as one line of text, for `threatlog org certify`.
    pub fn to_text(&self) -> String {
        to_text(CERTIFICATE_TEXT_PREFIX, &self.stored)
    }

    /// Parses and verifies a certificate printed by [`Certificate::to_text`].
    pub fn from_text(text: &str) -> Result<Certificate, IdentityError> {
        Certificate::verify(from_text(CERTIFICATE, CERTIFICATE_TEXT_PREFIX, text)?)
    }
}

/// A revocation whose signature and fields have been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The canonical envelope bytes, as stored and sent.
    stored: Bytes,
    /// The organisation.
    pub org_uuid: Uuid,
    /// The signing org key: only certificates by this key are revoked.
    pub org_key: OrgPublicKey,
    /// The revoked node.
    pub node_key: OriginKey,
    /// First sequence of the node's chain no longer covered.
    pub from_sequence: u64,
    /// Issue time (ms since the epoch).
    pub issued_ms: i64,
    /// Free text.
    pub reason: String,
}

const REVOCATION: &str = "revocation";

impl Revocation {
    /// Signs a revocation of `node_key` from `from_sequence` on with `org_key`.
    pub fn issue(
        org_key: &OrgKey,
        org_uuid: Uuid,
        node_key: OriginKey,
        from_sequence: u64,
        issued_ms: i64,
        reason: &str,
    ) -> Result<Revocation, IdentityError> {
        text_field(REVOCATION, "reason", reason)?;
        let body = proto::RevocationBody {
            format_version: STATEMENT_FORMAT_VERSION,
            org_uuid: Bytes::copy_from_slice(org_uuid.as_bytes()),
            org_key: Bytes::copy_from_slice(&org_key.public().0),
            node_key: Bytes::copy_from_slice(&node_key.0),
            from_sequence,
            issued_ms,
            reason: reason.to_string(),
        };
        let body = Bytes::from(body.encode_to_vec());
        let signature = org_key.sign(REVOCATION_CONTEXT, &body);
        Revocation::verify(seal_envelope(body, signature))
    }

    /// Decodes and verifies revocation bytes (an encoded `Revocation`).
    pub fn verify(stored: Bytes) -> Result<Revocation, IdentityError> {
        let envelope = open_envelope(REVOCATION, stored, STATEMENT_BYTES_MAX)?;
        let body = proto::RevocationBody::decode(envelope.body.clone()).map_err(|error| {
            IdentityError::Decode {
                what: REVOCATION,
                reason: error.to_string(),
            }
        })?;
        let org_key = OrgPublicKey(key_field(REVOCATION, "org_key", &body.org_key)?);
        org_key.verify(
            REVOCATION,
            REVOCATION_CONTEXT,
            &envelope.body,
            &envelope.signature,
        )?;
        version(REVOCATION, body.format_version)?;
        text_field(REVOCATION, "reason", &body.reason)?;
        if body.from_sequence == 0 {
            return Err(field(
                REVOCATION,
                "from_sequence",
                "sequences start at 1".into(),
            ));
        }
        Ok(Revocation {
            stored: envelope.stored,
            org_uuid: uuid_field(REVOCATION, "org_uuid", &body.org_uuid)?,
            org_key,
            node_key: OriginKey(key_field(REVOCATION, "node_key", &body.node_key)?),
            from_sequence: body.from_sequence,
            issued_ms: body.issued_ms,
            reason: body.reason,
        })
    }

    /// Verifies the revocation an op carries.
    pub fn from_op(op: &proto::Revocation) -> Result<Revocation, IdentityError> {
        Revocation::verify(seal_envelope(op.body.clone(), op.signature.clone()))
    }

    /// The op that publishes this revocation in a node's chain.
    pub fn op(&self) -> proto::Op {
        proto::Op {
            op: Some(proto::op::Op::Revocation(self.to_proto())),
        }
    }

    /// The revocation as an op's message.
    pub fn to_proto(&self) -> proto::Revocation {
        // `stored` is the canonical encoding of exactly this message's fields.
        proto::Revocation::decode(self.stored.clone()).unwrap_or_default()
    }

    /// The canonical envelope bytes.
    pub fn stored(&self) -> &Bytes {
        &self.stored
    }

    /// SHA-256 of the stored bytes.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(&self.stored).into()
    }

    /// The revocation as one line of text.
    pub fn to_text(&self) -> String {
        to_text(REVOCATION_TEXT_PREFIX, &self.stored)
    }

    /// Parses and verifies a revocation written by [`Revocation::to_text`].
    pub fn from_text(text: &str) -> Result<Revocation, IdentityError> {
        Revocation::verify(from_text(REVOCATION, REVOCATION_TEXT_PREFIX, text)?)
    }

    /// Whether this revocation withdraws `certificate` for the entry at `sequence`.
    pub fn revokes(&self, certificate: &Certificate, sequence: u64) -> bool {
        self.node_key == certificate.node_key
            && self.org_key == certificate.org_key
            && sequence >= self.from_sequence
    }
}

/// One organisation in a roster.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RosterMember {
    /// The organisation.
    pub org_uuid: Uuid,
    /// Its name.
    pub org_name: String,
    /// Its org keys, current first.
    pub org_keys: Vec<OrgPublicKey>,
}

/// A community roster whose signature and fields have been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    /// The canonical envelope bytes.
    stored: Bytes,
    /// The operator's org key: the signer.
    pub operator_key: OrgPublicKey,
    /// Issue time (ms since the epoch).
    pub issued_ms: i64,
    /// The member organisations.
    pub members: Vec<RosterMember>,
}

const ROSTER: &str = "roster";

impl Roster {
    /// Signs a roster of `members` with the operator's org key.
    pub fn issue(
        operator: &OrgKey,
        members: &[RosterMember],
        issued_ms: i64,
    ) -> Result<Roster, IdentityError> {
        let body = proto::RosterBody {
            format_version: STATEMENT_FORMAT_VERSION,
            operator_key: Bytes::copy_from_slice(&operator.public().0),
            issued_ms,
            members: members
                .iter()
                .map(|member| proto::RosterMember {
                    org_uuid: Bytes::copy_from_slice(member.org_uuid.as_bytes()),
                    org_name: member.org_name.clone(),
                    org_keys: member
                        .org_keys
                        .iter()
                        .map(|key| Bytes::copy_from_slice(&key.0))
                        .collect(),
                })
                .collect(),
        };
        let body = Bytes::from(body.encode_to_vec());
        let signature = operator.sign(ROSTER_CONTEXT, &body);
        Roster::verify(seal_envelope(body, signature))
    }

    /// Decodes and verifies roster bytes (an encoded `Roster`).
    pub fn verify(stored: Bytes) -> Result<Roster, IdentityError> {
        let envelope = open_envelope(ROSTER, stored, ROSTER_BYTES_MAX)?;
        let body = proto::RosterBody::decode(envelope.body.clone()).map_err(|error| {
            IdentityError::Decode {
                what: ROSTER,
                reason: error.to_string(),
            }
        })?;
        let operator_key = OrgPublicKey(key_field(ROSTER, "operator_key", &body.operator_key)?);
        operator_key.verify(ROSTER, ROSTER_CONTEXT, &envelope.body, &envelope.signature)?;
        version(ROSTER, body.format_version)?;
        if body.members.len() > ROSTER_MEMBERS_MAX {
            return Err(field(
                ROSTER,
                "members",
                format!("{} members, over {ROSTER_MEMBERS_MAX}", body.members.len()),
            ));
        }
        let mut members = Vec::with_capacity(body.members.len());
        for member in body.members {
            text_field(ROSTER, "org_name", &member.org_name)?;
            if member.org_keys.is_empty() || member.org_keys.len() > ROSTER_KEYS_PER_MEMBER_MAX {
                return Err(field(
                    ROSTER,
                    "org_keys",
                    format!(
                        "{} keys, expected 1 to {ROSTER_KEYS_PER_MEMBER_MAX}",
                        member.org_keys.len()
                    ),
                ));
            }
            members.push(RosterMember {
                org_uuid: uuid_field(ROSTER, "org_uuid", &member.org_uuid)?,
                org_name: member.org_name,
                org_keys: member
                    .org_keys
                    .iter()
                    .map(|key| key_field(ROSTER, "org_keys", key).map(OrgPublicKey))
                    .collect::<Result<_, _>>()?,
            });
        }
        Ok(Roster {
            stored: envelope.stored,
            operator_key,
            issued_ms: body.issued_ms,
            members,
        })
    }

    /// The canonical envelope bytes.
    pub fn stored(&self) -> &Bytes {
        &self.stored
    }

    /// The roster as one line of text, for `threatlog org roster export`.
    pub fn to_text(&self) -> String {
        to_text(ROSTER_TEXT_PREFIX, &self.stored)
    }

    /// Parses and verifies a roster written by [`Roster::to_text`].
    pub fn from_text(text: &str) -> Result<Roster, IdentityError> {
        Roster::verify(from_text(ROSTER, ROSTER_TEXT_PREFIX, text)?)
    }
}

/// Whether every op of `entry` is a certificate or revocation: an identity entry, which is
/// released in full to every peer that receives anything of its origin (SPEC §4.1).
pub fn is_identity_entry(entry: &super::VerifiedEntry) -> bool {
    let ops = &entry.entry().ops;
    !ops.is_empty()
        && ops.iter().all(|op| {
            matches!(
                op.op,
                Some(proto::op::Op::Certificate(_) | proto::op::Op::Revocation(_))
            )
        })
}

#[cfg(test)]
mod tests;
