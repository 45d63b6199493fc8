//! The ingest rule of SPEC §4.1, as a pure function: an entry is accepted only under a valid
//! node certificate of its origin whose org key is bound to the entry's `origin_org`, not
//! expired at the entry's time and not revoked at its sequence; and a node acts for another
//! organisation only when that organisation has no org key of its own.

use uuid::Uuid;

use super::{Certificate, OrgPublicKey, Revocation};
use crate::log::{OriginKey, VerifiedEntry};
use crate::proto::op::Op;

/// Why an entry is refused on identity grounds.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IdentityRefusal {
    /// No valid certificate of the origin is held.
    #[error("identity: origin {origin} has no node certificate")]
    NoCertificate {
        /// The entry's origin.
        origin: OriginKey,
    },
    /// The origin's certificates name another organisation.
    #[error("identity: origin {origin} is certified for org {certified}, not for org {claimed}")]
    OtherOrg {
        /// The entry's origin.
        origin: OriginKey,
        /// The organisation a certificate names.
        certified: Uuid,
        /// The organisation the entry claims.
        claimed: Uuid,
    },
    /// The origin is certified by an org key other than the one bound to its organisation.
    #[error(
        "identity conflict: origin {origin} is certified for org {org} by org key {certified_by}, \
         but org {org} is bound to org key {bound}"
    )]
    Conflict {
        /// The entry's origin.
        origin: OriginKey,
        /// The organisation.
        org: Uuid,
        /// The org key that signed the origin's certificate.
        certified_by: OrgPublicKey,
        /// The org key bound to the organisation here.
        bound: OrgPublicKey,
    },
    /// The certificate expired before the entry's time.
    #[error(
        "identity: the certificate of origin {origin} expired at {expires_ms} ms, before the \
         entry's time {time_ms} ms"
    )]
    Expired {
        /// The entry's origin.
        origin: OriginKey,
        /// The certificate's expiry.
        expires_ms: i64,
        /// The entry's origin time.
        time_ms: i64,
    },
    /// The org key revoked the origin's key at or before the entry's sequence.
    #[error(
        "identity: node key {origin} is revoked from sequence {from_sequence} (entry sequence \
         {sequence})"
    )]
    Revoked {
        /// The entry's origin.
        origin: OriginKey,
        /// The first revoked sequence.
        from_sequence: u64,
        /// The entry's sequence.
        sequence: u64,
    },
    /// The node acts for an organisation that has an org key (and so nodes) of its own.
    #[error("identity: node of org {org} acts for org {acting}, which has an org key of its own")]
    ActsForKeyedOrg {
        /// The origin's organisation.
        org: Uuid,
        /// The organisation the entry acts for.
        acting: Uuid,
    },
    /// A certificate or revocation op inside the entry is invalid or not the origin's.
    #[error("identity: {0}")]
    Statement(String),
}

/// What the receiver holds about an entry's origin and organisations.
#[derive(Clone, Copy, Debug)]
pub struct Known<'a> {
    /// Certificates held of the entry's origin.
    pub certificates: &'a [Certificate],
    /// Revocations held of the entry's origin.
    pub revocations: &'a [Revocation],
    /// Org keys bound to the entry's `origin_org` (empty when unbound).
    pub bound_keys: &'a [OrgPublicKey],
    /// Whether the entry's acting organisation, when it is not `origin_org`, is bound to an
    /// org key.
    pub acting_org_bound: bool,
}

/// Checks the certificate and revocation ops an entry carries: each must verify, a
/// certificate must certify the entry's own origin for its own organisation, and a revocation
/// must be its organisation's.
pub fn check_statements(entry: &VerifiedEntry) -> Result<(), IdentityRefusal> {
    let org = entry.origin_org();
    for op in &entry.entry().ops {
        match &op.op {
            Some(Op::Certificate(certificate)) => {
                let certificate = Certificate::from_op(certificate)
                    .map_err(|error| IdentityRefusal::Statement(error.to_string()))?;
                if certificate.node_key != entry.origin() || certificate.org_uuid != org {
                    return Err(IdentityRefusal::Statement(format!(
                        "the entry carries a certificate of node {} for org {}, not its own",
                        certificate.node_key, certificate.org_uuid
                    )));
                }
            }
            Some(Op::Revocation(revocation)) => {
                let revocation = Revocation::from_op(revocation)
                    .map_err(|error| IdentityRefusal::Statement(error.to_string()))?;
                if revocation.org_uuid != org {
                    return Err(IdentityRefusal::Statement(format!(
                        "a node of org {org} carries a revocation by org {}",
                        revocation.org_uuid
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decides whether `entry` is covered by what the receiver knows (see the module docs).
pub fn judge(entry: &VerifiedEntry, known: Known<'_>) -> Result<(), IdentityRefusal> {
    check_statements(entry)?;
    let origin = entry.origin();
    let org = entry.origin_org();
    let Some(first) = known.certificates.first() else {
        return Err(IdentityRefusal::NoCertificate { origin });
    };
    let mut refusal = None;
    let mut for_org = known
        .certificates
        .iter()
        .filter(|certificate| certificate.node_key == origin && certificate.org_uuid == org)
        .peekable();
    if for_org.peek().is_none() {
        return Err(IdentityRefusal::OtherOrg {
            origin,
            certified: first.org_uuid,
            claimed: org,
        });
    }
    for certificate in for_org {
        if !known.bound_keys.contains(&certificate.org_key) {
            refusal.get_or_insert(IdentityRefusal::Conflict {
                origin,
                org,
                certified_by: certificate.org_key,
                bound: known
                    .bound_keys
                    .first()
                    .copied()
                    .unwrap_or(OrgPublicKey([0; 32])),
            });
            continue;
        }
        let time_ms = entry.entry().time_ms;
        if !certificate.covers_time(time_ms) {
            refusal = Some(IdentityRefusal::Expired {
                origin,
                expires_ms: certificate.expires_ms.unwrap_or_default(),
                time_ms,
            });
            continue;
        }
        if let Some(revocation) = known
            .revocations
            .iter()
            .find(|revocation| revocation.revokes(certificate, entry.sequence()))
        {
            refusal = Some(IdentityRefusal::Revoked {
                origin,
                from_sequence: revocation.from_sequence,
                sequence: entry.sequence(),
            });
            continue;
        }
        let acting = entry.acting_org();
        if acting != org && known.acting_org_bound {
            return Err(IdentityRefusal::ActsForKeyedOrg { org, acting });
        }
        return Ok(());
    }
    // A candidate existed, so a refusal was recorded.
    Err(refusal.unwrap_or(IdentityRefusal::NoCertificate { origin }))
}
