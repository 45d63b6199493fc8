//! Identity state (SPEC §4.1), node-local and never replicated: the node certificates and
//! revocations held, the bindings org uuid → org keys with where each came from, the evidence
//! of identity conflicts, and the roster operators this node trusts. Kept in the local column
//! family under `identity/`.
//!
//! Bindings, strongest first: this node's own org (`own`), pairing cards (`card`), a roster
//! signed by a trusted operator (`roster`), the first valid certificate seen (`first_use`). A
//! statement naming another org key for a bound uuid is an identity conflict: it is kept as
//! evidence beside the statement the binding came from, and entries under it are refused. A
//! stronger source replaces a weaker one's different key, and that is recorded as a conflict
//! too.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::log::identity::{Certificate, OrgPublicKey, Revocation, Roster};
use crate::log::OriginKey;

/// Local key prefix of certificates: `identity/cert/ ‖ node key ‖ SHA-256` → certificate.
const CERT_PREFIX: &[u8] = b"identity/cert/";
/// Local key prefix of revocations: `identity/revoked/ ‖ node key ‖ org key` → revocation.
const REVOCATION_PREFIX: &[u8] = b"identity/revoked/";
/// Local key prefix of bindings: `identity/bind/ ‖ org uuid` → [`Binding`] JSON.
const BINDING_PREFIX: &[u8] = b"identity/bind/";
/// Local key prefix of conflict evidence: `identity/conflict/ ‖ org uuid ‖ SHA-256 of the
/// received statement` → [`IdentityConflict`] JSON.
const CONFLICT_PREFIX: &[u8] = b"identity/conflict/";
/// Local key prefix of the conflict evidence naming a node's certificate: `identity/
/// conflict-node/ ‖ node key` → the evidence's key, so refusing that node's entries does not
/// scan every conflict.
const CONFLICT_NODE_PREFIX: &[u8] = b"identity/conflict-node/";
/// Local key of the number of conflicts kept (8, big-endian).
const CONFLICT_COUNT_KEY: &[u8] = b"identity/conflict-count";
/// Local key prefix of trusted roster operators: `identity/operator/ ‖ key` → name.
const OPERATOR_PREFIX: &[u8] = b"identity/operator/";
/// Local key prefix of imported rosters: `identity/roster/ ‖ operator key` → roster text.
const ROSTER_PREFIX: &[u8] = b"identity/roster/";
/// Local key of this node's own certificate.
const OWN_KEY: &[u8] = b"identity/own";

/// Most certificates held per node key (renewals); more are dropped.
pub const CERTIFICATES_PER_NODE_MAX: usize = 16;
/// Most identity conflicts kept as evidence; later ones are logged only.
pub const CONFLICTS_MAX: usize = 10_000;

/// Serialises the read-modify-write of bindings: two peers' segments may introduce the same
/// organisation at once, and exactly one of them must win the first use.
static BINDINGS_LOCK: Mutex<()> = Mutex::new(());

/// Where a binding came from, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingSource {
    /// The first valid certificate seen for the uuid (trust on first use).
    FirstUse,
    /// A roster signed by a trusted community operator.
    Roster,
    /// A pairing card, exchanged out of band.
    Card,
    /// This node's own organisation.
    Own,
}

impl std::fmt::Display for BindingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BindingSource::FirstUse => "first use",
            BindingSource::Roster => "roster",
            BindingSource::Card => "pairing card",
            BindingSource::Own => "own organisation",
        })
    }
}

/// An organisation uuid bound to its org keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The organisation.
    pub org_uuid: Uuid,
    /// Its org keys (one, or a roster's list).
    pub keys: Vec<OrgPublicKey>,
    /// Where the binding came from.
    pub source: BindingSource,
    /// The statement it came from: a certificate or roster in its text form, or the card.
    pub statement: String,
    /// When it was bound (ms since the epoch).
    pub bound_ms: i64,
}

/// Evidence of an identity conflict: a second org key for a bound organisation uuid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityConflict {
    /// The organisation.
    pub org_uuid: Uuid,
    /// The org keys it is bound to.
    pub bound_keys: Vec<OrgPublicKey>,
    /// Where that binding came from.
    pub bound_source: BindingSource,
    /// The statement the binding came from.
    pub bound_statement: String,
    /// The other org key.
    pub received_key: OrgPublicKey,
    /// The statement that named it (a certificate, card or roster in text form).
    pub received_statement: String,
    /// What the received statement was.
    pub received_source: BindingSource,
    /// The node key the received certificate certifies, when it was a certificate.
    pub node_key: Option<OriginKey>,
    /// The peer that sent the statement, when it came through sync.
    pub via: Option<OriginKey>,
    /// When it was detected (ms since the epoch).
    pub detected_ms: i64,
}

/// Why a binding from a card or roster was refused.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The uuid is bound as strongly or more strongly to another key.
    #[error(
        "identity conflict: org {org} is bound to org key {bound} (from {bound_source}); this names \
         org key {received}"
    )]
    Conflict {
        /// The organisation.
        org: Uuid,
        /// The key it is bound to.
        bound: OrgPublicKey,
        /// Where that binding came from.
        bound_source: BindingSource,
        /// The key offered.
        received: OrgPublicKey,
    },
    /// The roster's signer is not a trusted operator.
    #[error(
        "the roster is signed by {0}, which this node does not trust; run `threatlog org roster \
         trust {0}` first if it is your community operator's org key"
    )]
    Untrusted(OrgPublicKey),
}

/// What became of a received certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Its org key is bound to its organisation (now or before): it is held.
    Held,
    /// It names another org key than the bound one: kept as conflict evidence only.
    Conflict,
    /// The node already holds [`CERTIFICATES_PER_NODE_MAX`] certificates: dropped.
    Full,
}

fn corrupt(what: &'static str) -> impl Fn(String) -> StoreError {
    move |reason| StoreError::Corrupt { what, reason }
}

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Bindings and evidence are strings, keys and numbers: they serialise.
    serde_json::to_vec(value).expect("identity records serialise")
}

impl Store {
    /// This node's own certificate, once issued.
    pub fn own_certificate(&self) -> Result<Option<Certificate>, StoreError> {
        self.local(OWN_KEY)?
            .map(|bytes| {
                Certificate::verify(bytes.into())
                    .map_err(|e| corrupt("own certificate")(e.to_string()))
            })
            .transpose()
    }

    /// Records `certificate` as this node's own: held, and its org key bound to its
    /// organisation as the node's own (replacing any weaker binding).
    pub fn install_own_certificate(&self, certificate: &Certificate) -> Result<(), StoreError> {
        let _guard = BINDINGS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let binding = Binding {
            org_uuid: certificate.org_uuid,
            keys: vec![certificate.org_key],
            source: BindingSource::Own,
            statement: certificate.to_text(),
            bound_ms: self.now_ms(),
        };
        self.put_local(&[
            (OWN_KEY.to_vec(), certificate.stored().to_vec()),
            (
                key(BINDING_PREFIX, &[certificate.org_uuid.as_bytes()]),
                json(&binding),
            ),
            (
                key(CERT_PREFIX, &[&certificate.node_key.0, &certificate.hash()]),
                certificate.stored().to_vec(),
            ),
        ])
    }

    /// The binding of organisation `org`, if it has one.
    pub fn binding(&self, org: &Uuid) -> Result<Option<Binding>, StoreError> {
        self.local(&key(BINDING_PREFIX, &[org.as_bytes()]))?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| corrupt("binding")(e.to_string()))
            })
            .transpose()
    }

    /// Whether organisation `org` is bound to an org key (by any source). A node may act for
    /// a hosted local organisation only while this is false (SPEC §4.1).
    pub fn is_org_bound(&self, org: &Uuid) -> Result<bool, StoreError> {
        Ok(self
            .local(&key(BINDING_PREFIX, &[org.as_bytes()]))?
            .is_some())
    }

    /// Every binding, by organisation uuid.
    pub fn bindings(&self) -> Result<Vec<Binding>, StoreError> {
        self.scan_local(BINDING_PREFIX)?
            .into_iter()
            .map(|(_, value)| {
                serde_json::from_slice(&value).map_err(|e| corrupt("binding")(e.to_string()))
            })
            .collect()
    }

    /// The certificates held of node `node`.
    pub fn certificates_of(&self, node: &OriginKey) -> Result<Vec<Certificate>, StoreError> {
        self.scan_local(&key(CERT_PREFIX, &[&node.0]))?
            .into_iter()
            .map(|(_, value)| {
                Certificate::verify(value.into()).map_err(|e| corrupt("certificate")(e.to_string()))
            })
            .collect()
    }

    /// The revocations held of node `node`.
    pub fn revocations_of(&self, node: &OriginKey) -> Result<Vec<Revocation>, StoreError> {
        self.scan_local(&key(REVOCATION_PREFIX, &[&node.0]))?
            .into_iter()
            .map(|(_, value)| {
                Revocation::verify(value.into()).map_err(|e| corrupt("revocation")(e.to_string()))
            })
            .collect()
    }

    /// Takes in a verified certificate received from peer `via` (or read from an entry):
    /// binds its organisation on first use, holds it when its org key is bound, and keeps it
    /// as conflict evidence when another key is.
    pub fn receive_certificate(
        &self,
        certificate: &Certificate,
        via: Option<OriginKey>,
    ) -> Result<Received, StoreError> {
        let _guard = BINDINGS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut pairs = Vec::new();
        match self.binding(&certificate.org_uuid)? {
            Some(binding) if binding.keys.contains(&certificate.org_key) => {}
            Some(binding) => {
                self.record_conflict(
                    &binding,
                    certificate.org_key,
                    certificate.to_text(),
                    BindingSource::FirstUse,
                    Some(certificate.node_key),
                    via,
                )?;
                return Ok(Received::Conflict);
            }
            None => {
                tracing::info!(
                    org = %certificate.org_uuid,
                    org_key = %certificate.org_key,
                    "bound organisation '{}' to its org key on first use",
                    certificate.org_name
                );
                let binding = Binding {
                    org_uuid: certificate.org_uuid,
                    keys: vec![certificate.org_key],
                    source: BindingSource::FirstUse,
                    statement: certificate.to_text(),
                    bound_ms: self.now_ms(),
                };
                pairs.push((
                    key(BINDING_PREFIX, &[certificate.org_uuid.as_bytes()]),
                    json(&binding),
                ));
            }
        }
        let cert_key = key(CERT_PREFIX, &[&certificate.node_key.0, &certificate.hash()]);
        if self.local(&cert_key)?.is_none() {
            let held = self
                .scan_local(&key(CERT_PREFIX, &[&certificate.node_key.0]))?
                .len();
            if held >= CERTIFICATES_PER_NODE_MAX {
                tracing::warn!(node = %certificate.node_key, "certificate dropped: {CERTIFICATES_PER_NODE_MAX} already held for this node");
                return Ok(Received::Full);
            }
            pairs.push((cert_key, certificate.stored().to_vec()));
        }
        if !pairs.is_empty() {
            self.put_local(&pairs)?;
        }
        Ok(Received::Held)
    }

    /// Takes in a verified revocation: held when its org key is bound to its organisation
    /// (one per node and org key, the earliest sequence kept); otherwise dropped, since it
    /// could only withdraw certificates this node does not accept anyway. Returns whether it
    /// is held.
    pub fn receive_revocation(&self, revocation: &Revocation) -> Result<bool, StoreError> {
        let bound = self
            .binding(&revocation.org_uuid)?
            .is_some_and(|binding| binding.keys.contains(&revocation.org_key));
        if !bound {
            return Ok(false);
        }
        let slot = key(
            REVOCATION_PREFIX,
            &[&revocation.node_key.0, &revocation.org_key.0],
        );
        let earlier = self
            .local(&slot)?
            .and_then(|bytes| Revocation::verify(bytes.into()).ok())
            .is_some_and(|held| held.from_sequence <= revocation.from_sequence);
        if !earlier {
            tracing::warn!(node = %revocation.node_key, from_sequence = revocation.from_sequence, "node key revoked by its org key");
            self.put_local(&[(slot, revocation.stored().to_vec())])?;
        }
        Ok(true)
    }

    /// Binds `org` to `org_key` from a pairing card (`card`, its text). A card overrides a
    /// roster's or first use's different key (recording the conflict), and is refused when
    /// the uuid is this node's own organisation or another card's with a different key.
    pub fn bind_card(
        &self,
        org: Uuid,
        org_key: OrgPublicKey,
        card: &str,
        via: OriginKey,
    ) -> Result<(), BindError> {
        let _guard = BINDINGS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let existing = self.binding(&org)?;
        if let Some(binding) = &existing {
            if binding.source >= BindingSource::Card {
                if binding.keys.contains(&org_key) {
                    return Ok(());
                }
                return Err(BindError::Conflict {
                    org,
                    bound: binding.keys[0],
                    bound_source: binding.source,
                    received: org_key,
                });
            }
            if !binding.keys.contains(&org_key) {
                self.record_conflict(
                    binding,
                    org_key,
                    card.to_string(),
                    BindingSource::Card,
                    None,
                    Some(via),
                )?;
            }
        }
        let binding = Binding {
            org_uuid: org,
            keys: vec![org_key],
            source: BindingSource::Card,
            statement: card.to_string(),
            bound_ms: self.now_ms(),
        };
        self.put_local(&[(key(BINDING_PREFIX, &[org.as_bytes()]), json(&binding))])?;
        Ok(())
    }

    /// Trusts `operator` (an org key) to sign rosters.
    pub fn trust_operator(&self, operator: OrgPublicKey, name: &str) -> Result<(), StoreError> {
        self.put_local(&[(
            key(OPERATOR_PREFIX, &[&operator.0]),
            name.as_bytes().to_vec(),
        )])
    }

    /// The trusted roster operators: (key, name).
    pub fn operators(&self) -> Result<Vec<(OrgPublicKey, String)>, StoreError> {
        Ok(self
            .scan_local(OPERATOR_PREFIX)?
            .into_iter()
            .filter_map(|(k, v)| {
                let operator = OrgPublicKey::from_slice(&k[OPERATOR_PREFIX.len()..])?;
                Some((operator, String::from_utf8_lossy(&v).into_owned()))
            })
            .collect())
    }

    /// Binds the roster's members, when its signer is a trusted operator. A member's uuid
    /// bound by this node's own org or a card keeps that binding (a different key there is
    /// recorded as a conflict); bindings by earlier rosters or first use are replaced, and a
    /// first-use key the roster does not list is recorded as a conflict. Returns how many
    /// members were bound.
    pub fn import_roster(&self, roster: &Roster) -> Result<usize, BindError> {
        let trusted = self
            .operators()?
            .iter()
            .any(|(operator, _)| *operator == roster.operator_key);
        if !trusted {
            return Err(BindError::Untrusted(roster.operator_key));
        }
        let _guard = BINDINGS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let text = roster.to_text();
        let reference = format!(
            "roster of operator {} issued at {} ms",
            roster.operator_key, roster.issued_ms
        );
        let mut pairs = vec![(
            key(ROSTER_PREFIX, &[&roster.operator_key.0]),
            text.clone().into_bytes(),
        )];
        let mut bound = 0;
        for member in &roster.members {
            if let Some(binding) = self.binding(&member.org_uuid)? {
                let disagreeing = member
                    .org_keys
                    .iter()
                    .find(|key| !binding.keys.contains(key));
                if binding.source > BindingSource::Roster {
                    if let Some(other) = disagreeing {
                        self.record_conflict(
                            &binding,
                            *other,
                            reference.clone(),
                            BindingSource::Roster,
                            None,
                            None,
                        )?;
                    }
                    continue;
                }
                if binding.source == BindingSource::FirstUse
                    && !member.org_keys.contains(&binding.keys[0])
                {
                    self.record_conflict(
                        &binding,
                        member.org_keys[0],
                        reference.clone(),
                        BindingSource::Roster,
                        None,
                        None,
                    )?;
                }
            }
            let binding = Binding {
                org_uuid: member.org_uuid,
                keys: member.org_keys.clone(),
                source: BindingSource::Roster,
                statement: reference.clone(),
                bound_ms: self.now_ms(),
            };
            pairs.push((
                key(BINDING_PREFIX, &[member.org_uuid.as_bytes()]),
                json(&binding),
            ));
            bound += 1;
        }
        self.put_local(&pairs)?;
        Ok(bound)
    }

    /// Every identity conflict kept as evidence.
    pub fn identity_conflicts(&self) -> Result<Vec<IdentityConflict>, StoreError> {
        self.scan_local(CONFLICT_PREFIX)?
            .into_iter()
            .map(|(_, value)| {
                serde_json::from_slice(&value)
                    .map_err(|e| corrupt("identity conflict")(e.to_string()))
            })
            .collect()
    }

    /// The conflict evidence naming node `node`'s certificate, if any.
    pub fn conflict_of_node(
        &self,
        node: &OriginKey,
    ) -> Result<Option<IdentityConflict>, StoreError> {
        let Some(slot) = self.local(&key(CONFLICT_NODE_PREFIX, &[&node.0]))? else {
            return Ok(None);
        };
        self.local(&slot)?
            .map(|value| {
                serde_json::from_slice(&value)
                    .map_err(|e| corrupt("identity conflict")(e.to_string()))
            })
            .transpose()
    }

    /// Stores conflict evidence (once per received statement) and alerts.
    fn record_conflict(
        &self,
        binding: &Binding,
        received_key: OrgPublicKey,
        received_statement: String,
        received_source: BindingSource,
        node_key: Option<OriginKey>,
        via: Option<OriginKey>,
    ) -> Result<(), StoreError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(received_statement.as_bytes()).into();
        let slot = key(CONFLICT_PREFIX, &[binding.org_uuid.as_bytes(), &digest]);
        if self.local(&slot)?.is_some() {
            return Ok(());
        }
        tracing::error!(
            org = %binding.org_uuid,
            bound = %binding.keys[0],
            received = %received_key,
            via = ?via.map(|key| key.to_string()),
            "identity conflict: a second org key for a bound organisation; evidence stored, its entries refused"
        );
        let count = self
            .local(CONFLICT_COUNT_KEY)?
            .and_then(|bytes| bytes.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        if count >= CONFLICTS_MAX as u64 {
            return Ok(());
        }
        let conflict = IdentityConflict {
            org_uuid: binding.org_uuid,
            bound_keys: binding.keys.clone(),
            bound_source: binding.source,
            bound_statement: binding.statement.clone(),
            received_key,
            received_statement,
            received_source,
            node_key,
            via,
            detected_ms: self.now_ms(),
        };
        let mut pairs = vec![
            (
                CONFLICT_COUNT_KEY.to_vec(),
                (count + 1).to_be_bytes().to_vec(),
            ),
            (slot.clone(), json(&conflict)),
        ];
        if let Some(node) = node_key {
            pairs.push((key(CONFLICT_NODE_PREFIX, &[&node.0]), slot));
        }
        self.put_local(&pairs)
    }
}

/// Write authority reads the bindings this store holds (SPEC §4.1: an organisation bound to an
/// org key has nodes of its own, so no other node may host it).
impl crate::policy::authority::OrgKeys for Store {
    fn is_bound(&self, org: &Uuid) -> Result<bool, crate::view::KvError> {
        self.is_org_bound(org)
            .map_err(|error| crate::view::KvError(error.to_string()))
    }
}
