//! Identity on the sync path (SPEC §4.1). A segment carries the node certificates and
//! revocations its sender holds of the origins whose full entries it carries; the receiver
//! verifies and stores them (binding organisations on first use, keeping conflicts as
//! evidence) before it judges the entries, so it can judge origins it never paired with and
//! origins whose certificate entry comes after older entries (nodes that existed before org
//! keys). Then each entry is judged by [`crate::log::identity::judge`] against what is held.

use prost::bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

use super::release::Released;
use crate::log::identity::{self, Certificate, IdentityRefusal, Known, OrgPublicKey, Revocation};
use crate::log::{OriginKey, VerifiedEntry};
use crate::proto::op::Op;
use crate::store::{Incoming, Store, StoreError};

/// Most certificates a sender attaches per origin: the newest ones it holds.
pub const CERTIFICATES_SENT_PER_ORIGIN_MAX: usize = 4;
/// Most revocations a sender attaches per origin.
pub const REVOCATIONS_SENT_PER_ORIGIN_MAX: usize = 4;
/// Most certificates a receiver accepts in one segment: every origin of a full segment with
/// [`CERTIFICATES_SENT_PER_ORIGIN_MAX`] each.
pub const CERTIFICATES_PER_SEGMENT_MAX: usize =
    super::SEGMENT_ITEMS_MAX * CERTIFICATES_SENT_PER_ORIGIN_MAX;
/// Most revocations a receiver accepts in one segment.
pub const REVOCATIONS_PER_SEGMENT_MAX: usize =
    super::SEGMENT_ITEMS_MAX * REVOCATIONS_SENT_PER_ORIGIN_MAX;

/// The certificates and revocations to send with `items` to the peer `to`: those held of
/// each origin whose full entries the items carry (never of the peer itself).
pub fn attach(
    store: &Store,
    items: &[Released],
    to: &OriginKey,
) -> Result<(Vec<Bytes>, Vec<Bytes>), StoreError> {
    let origins: BTreeSet<OriginKey> = items
        .iter()
        .filter_map(|item| match item {
            Released::Entry(entry) if entry.origin() != *to => Some(entry.origin()),
            _ => None,
        })
        .collect();
    let mut certificates = Vec::new();
    let mut revocations = Vec::new();
    for origin in origins {
        let mut held = store.certificates_of(&origin)?;
        held.sort_by_key(|certificate| std::cmp::Reverse(certificate.issued_ms));
        certificates.extend(
            held.iter()
                .take(CERTIFICATES_SENT_PER_ORIGIN_MAX)
                .map(|certificate| certificate.stored().clone()),
        );
        revocations.extend(
            store
                .revocations_of(&origin)?
                .iter()
                .take(REVOCATIONS_SENT_PER_ORIGIN_MAX)
                .map(|revocation| revocation.stored().clone()),
        );
    }
    Ok((certificates, revocations))
}

/// Verifies and stores the statements a segment from peer `via` brings: the certificates
/// and revocations it carries for the origins of its entries, then those inside its entries'
/// ops. A statement that does not verify, or more than the limits allow, refuses the segment
/// (the peer's failure); statements about origins the segment has no entries of are ignored.
pub fn receive(
    store: &Store,
    via: OriginKey,
    certificates: &[Bytes],
    revocations: &[Bytes],
    items: &[Incoming],
) -> Result<(), String> {
    if certificates.len() > CERTIFICATES_PER_SEGMENT_MAX {
        return Err(format!(
            "{} certificates in one segment, over the limit of {CERTIFICATES_PER_SEGMENT_MAX}",
            certificates.len()
        ));
    }
    if revocations.len() > REVOCATIONS_PER_SEGMENT_MAX {
        return Err(format!(
            "{} revocations in one segment, over the limit of {REVOCATIONS_PER_SEGMENT_MAX}",
            revocations.len()
        ));
    }
    let entries: Vec<&VerifiedEntry> = items
        .iter()
        .filter_map(|item| match item {
            Incoming::Entry(entry) => Some(entry),
            Incoming::Stub(_) => None,
        })
        .collect();
    let origins: BTreeSet<OriginKey> = entries.iter().map(|entry| entry.origin()).collect();
    let failed = |error: StoreError| error.to_string();
    for bytes in certificates {
        let certificate = Certificate::verify(bytes.clone()).map_err(|error| error.to_string())?;
        if origins.contains(&certificate.node_key) {
            store
                .receive_certificate(&certificate, Some(via))
                .map_err(failed)?;
        }
    }
    // Certificates inside entries: only an origin's own, for its own organisation (the
    // judge refuses the entry otherwise).
    for entry in &entries {
        for op in &entry.entry().ops {
            if let Some(Op::Certificate(op)) = &op.op {
                if let Ok(certificate) = Certificate::from_op(op) {
                    if certificate.node_key == entry.origin()
                        && certificate.org_uuid == entry.origin_org()
                    {
                        store
                            .receive_certificate(&certificate, Some(via))
                            .map_err(failed)?;
                    }
                }
            }
        }
    }
    for bytes in revocations {
        let revocation = Revocation::verify(bytes.clone()).map_err(|error| error.to_string())?;
        if origins.contains(&revocation.node_key) {
            store.receive_revocation(&revocation).map_err(failed)?;
        }
    }
    for entry in &entries {
        for op in &entry.entry().ops {
            if let Some(Op::Revocation(op)) = &op.op {
                if let Ok(revocation) = Revocation::from_op(op) {
                    if revocation.org_uuid == entry.origin_org() {
                        store.receive_revocation(&revocation).map_err(failed)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Judges entries against the identity state held, reading each origin's certificates and
/// revocations and each organisation's binding once per judge (one segment).
pub struct Judge<'a> {
    store: &'a Store,
    /// Certificates and revocations per origin.
    origins: HashMap<OriginKey, (Vec<Certificate>, Vec<Revocation>)>,
    /// Bound org keys per organisation.
    bindings: HashMap<Uuid, Vec<OrgPublicKey>>,
}

impl<'a> Judge<'a> {
    /// A judge reading `store`.
    pub fn new(store: &'a Store) -> Self {
        Judge {
            store,
            origins: HashMap::new(),
            bindings: HashMap::new(),
        }
    }

    fn bound_keys(&mut self, org: Uuid) -> Result<&[OrgPublicKey], StoreError> {
        if !self.bindings.contains_key(&org) {
            let keys = self
                .store
                .binding(&org)?
                .map(|binding| binding.keys)
                .unwrap_or_default();
            self.bindings.insert(org, keys);
        }
        Ok(&self.bindings[&org])
    }

    /// Whether `entry` may be accepted: `Err` holds the reason recorded for the peer.
    pub fn check(&mut self, entry: &VerifiedEntry) -> Result<(), String> {
        self.judge(entry).map_err(|refusal| match refusal {
            Ok(refusal) => refusal.to_string(),
            Err(error) => error.to_string(),
        })
    }

    fn judge(&mut self, entry: &VerifiedEntry) -> Result<(), Result<IdentityRefusal, StoreError>> {
        let origin = entry.origin();
        let org = entry.origin_org();
        let acting = entry.acting_org();
        let bound_keys = self.bound_keys(org).map_err(Err)?.to_vec();
        let acting_org_bound = acting != org && !self.bound_keys(acting).map_err(Err)?.is_empty();
        if !self.origins.contains_key(&origin) {
            let certificates = self.store.certificates_of(&origin).map_err(Err)?;
            let revocations = self.store.revocations_of(&origin).map_err(Err)?;
            self.origins.insert(origin, (certificates, revocations));
        }
        let (certificates, revocations) = &self.origins[&origin];
        let known = Known {
            certificates,
            revocations,
            bound_keys: &bound_keys,
            acting_org_bound,
        };
        match identity::judge(entry, known) {
            Err(IdentityRefusal::NoCertificate { .. }) => {
                // A certificate kept only as conflict evidence names the real reason.
                match self.store.conflict_of_node(&origin).map_err(Err)? {
                    Some(conflict) => Err(Ok(IdentityRefusal::Conflict {
                        origin,
                        org: conflict.org_uuid,
                        certified_by: conflict.received_key,
                        bound: conflict.bound_keys[0],
                    })),
                    None => Err(Ok(IdentityRefusal::NoCertificate { origin })),
                }
            }
            other => other.map_err(Ok),
        }
    }
}

/// A roster, signed by `org_key` as a community operator's, of the organisations `store`
/// binds as strongly as a pairing card: the node's own and those of its paired peers.
pub fn roster(
    store: &Store,
    org_key: &crate::log::identity::OrgKey,
) -> Result<crate::log::identity::Roster, crate::node::NodeError> {
    use crate::log::identity::{Roster, RosterMember};
    use crate::store::BindingSource;
    let mut names: std::collections::HashMap<Uuid, String> = super::peer::peers(store)?
        .into_iter()
        .map(|peer| (peer.org_uuid, peer.org_name))
        .collect();
    if let Some(own) = store.own_certificate()? {
        names.insert(own.org_uuid, own.org_name);
    }
    let members: Vec<RosterMember> = store
        .bindings()?
        .into_iter()
        .filter(|binding| binding.source >= BindingSource::Card)
        .map(|binding| RosterMember {
            org_name: names.get(&binding.org_uuid).cloned().unwrap_or_default(),
            org_uuid: binding.org_uuid,
            org_keys: binding.keys,
        })
        .collect();
    Ok(Roster::issue(org_key, &members, store.now_ms())?)
}
