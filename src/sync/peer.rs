//! Paired peers: their identity and policy (node-local state, never replicated), their cursor
//! and their sync status, and the pairing card.

use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::log::OriginKey;
use crate::policy::PeerRules;
use crate::store::{Store, StoreError};

/// Local key prefix of peer settings: `peer/ ‖ key hex` → [`Peer`] JSON.
const PEER_PREFIX: &str = "peer/";
/// Local key prefix of peer cursors: `peercursor/ ‖ key hex` → arrival number (8, BE).
const CURSOR_PREFIX: &str = "peercursor/";
/// Local key prefix of peer status: `peerstatus/ ‖ key hex` → [`PeerStatus`] JSON.
const STATUS_PREFIX: &str = "peerstatus/";
/// Local key of the next peer id.
const NEXT_ID_KEY: &[u8] = b"peer_next_id";
/// The prefix of a pairing card.
pub const CARD_PREFIX: &str = "threatlog-card:";
/// Most peers a node pairs with.
pub const PEERS_MAX: usize = 256;

/// A paired peer and its policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Local numeric id (MISP's server id).
    pub id: u64,
    /// The peer's node key.
    pub key: OriginKey,
    /// The peer's organisation.
    pub org_uuid: Uuid,
    /// The peer organisation's name.
    pub org_name: String,
    /// The peer's sync endpoint, `host:port`.
    pub endpoint: String,
    /// Release policy towards the peer.
    pub rules: PeerRules,
    /// Pull the peer's log.
    pub pull: bool,
    /// Push to the peer when it does not pull.
    pub push: bool,
}

/// How sync with a peer is going.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// `idle`, `connecting`, `syncing`, `live`, `backoff` or `quarantined`.
    pub state: String,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Failures the peer caused within the last [`super::QUARANTINE_WINDOW_MS`].
    pub failures: u32,
    /// When those failures happened: [`super::QUARANTINE_FAILURES`] of them within the window
    /// quarantine the peer.
    #[serde(default)]
    pub failure_window: super::engine::FailureWindow,
    /// Quarantined after repeated failures: not pulled from, its pushes refused.
    pub quarantined: bool,
    /// Policy violations recorded against the peer.
    pub violations: u64,
    /// The peer's last arrival number when last heard.
    pub remote_head: u64,
    /// Origin time of the peer's last entry when last heard (ms).
    pub remote_head_time_ms: i64,
    /// Origin time of the last entry received from the peer (ms).
    pub received_time_ms: i64,
    /// Entries and stubs received from the peer.
    pub received: u64,
}

/// What a pairing card carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// The node key.
    pub key: OriginKey,
    /// The node's organisation.
    pub org_uuid: Uuid,
    /// The organisation's name.
    pub org_name: String,
    /// The sync endpoint, `host:port`.
    pub endpoint: String,
    /// The organisation's org key (SPEC §4.1). Pairing binds the organisation to it; cards
    /// printed before org keys existed lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_key: Option<crate::log::identity::OrgPublicKey>,
}

/// Why a card does not parse.
#[derive(Debug, thiserror::Error)]
#[error("not a threatlog pairing card ({0}); cards start with {CARD_PREFIX}")]
pub struct CardError(String);

impl Card {
    /// The card as one line of text.
    pub fn encode(&self) -> String {
        // A card is strings and a key: it serialises.
        let json = serde_json::to_vec(self).expect("card serialises");
        format!(
            "{CARD_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Parses a card printed by `threatlog peer card`.
    pub fn decode(text: &str) -> Result<Card, CardError> {
        let body = text
            .trim()
            .strip_prefix(CARD_PREFIX)
            .ok_or_else(|| CardError("missing prefix".into()))?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|error| CardError(error.to_string()))?;
        serde_json::from_slice(&json).map_err(|error| CardError(error.to_string()))
    }
}

fn key_of(prefix: &str, peer: &OriginKey) -> Vec<u8> {
    format!("{prefix}{peer}").into_bytes()
}

fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |error| StoreError::Corrupt {
        what,
        reason: error.to_string(),
    }
}

/// Every paired peer, by id.
pub fn peers(store: &Store) -> Result<Vec<Peer>, StoreError> {
    let mut out: Vec<Peer> = store
        .scan_local(PEER_PREFIX.as_bytes())?
        .into_iter()
        .map(|(_, value)| serde_json::from_slice(&value).map_err(corrupt("peer")))
        .collect::<Result<_, _>>()?;
    out.sort_by_key(|peer| peer.id);
    Ok(out)
}

/// The peer with node key `key`.
pub fn peer(store: &Store, key: &OriginKey) -> Result<Option<Peer>, StoreError> {
    store
        .local(&key_of(PEER_PREFIX, key))?
        .map(|value| serde_json::from_slice(&value).map_err(corrupt("peer")))
        .transpose()
}

/// Stores `peer` (a new one gets the next id when its id is 0).
pub fn put_peer(store: &Store, mut peer: Peer) -> Result<Peer, StoreError> {
    let mut pairs = Vec::new();
    if peer.id == 0 {
        let next = store
            .local(NEXT_ID_KEY)?
            .and_then(|bytes| bytes.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(1);
        peer.id = next;
        pairs.push((NEXT_ID_KEY.to_vec(), (next + 1).to_be_bytes().to_vec()));
    }
    // A peer is plain data: it serialises.
    let json = serde_json::to_vec(&peer).expect("peer serialises");
    pairs.push((key_of(PEER_PREFIX, &peer.key), json));
    store.put_local(&pairs)?;
    Ok(peer)
}

/// Unpairs `key`, forgetting its cursor and status.
pub fn remove_peer(store: &Store, key: &OriginKey) -> Result<(), StoreError> {
    store.delete_local(&[
        key_of(PEER_PREFIX, key),
        key_of(CURSOR_PREFIX, key),
        key_of(STATUS_PREFIX, key),
    ])
}

/// The arrival number on `key`'s node up to which its log was ingested.
pub fn cursor(store: &Store, key: &OriginKey) -> Result<u64, StoreError> {
    Ok(store
        .local(&key_of(CURSOR_PREFIX, key))?
        .and_then(|bytes| bytes.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0))
}

/// The local pair that records `cursor` for `key`, written with the entries it covers.
pub fn cursor_pair(key: &OriginKey, cursor: u64) -> (Vec<u8>, Vec<u8>) {
    (key_of(CURSOR_PREFIX, key), cursor.to_be_bytes().to_vec())
}

/// The sync status of `key`.
pub fn status(store: &Store, key: &OriginKey) -> Result<PeerStatus, StoreError> {
    Ok(store
        .local(&key_of(STATUS_PREFIX, key))?
        .map(|value| serde_json::from_slice(&value).map_err(corrupt("peer status")))
        .transpose()?
        .unwrap_or_default())
}

/// Changes the sync status of `key` (a read-modify-write; each peer's task is its only
/// writer apart from operator commands).
pub fn update_status(
    store: &Store,
    key: &OriginKey,
    change: impl FnOnce(&mut PeerStatus),
) -> Result<PeerStatus, StoreError> {
    let mut current = status(store, key)?;
    change(&mut current);
    // A status is plain data: it serialises.
    let json = serde_json::to_vec(&current).expect("status serialises");
    store.put_local(&[(key_of(STATUS_PREFIX, key), json)])?;
    Ok(current)
}

/// Changes to a peer's settings; `None` leaves a setting as it is (or at its default for a
/// new peer).
#[derive(Clone, Debug, Default)]
pub struct PeerSettings {
    /// `host:port` of the peer's sync service.
    pub endpoint: Option<String>,
    /// Relationship (external unless the operator says internal).
    pub relationship: Option<crate::policy::Relationship>,
    /// TLP ceiling.
    pub tlp_max: Option<crate::policy::Tlp>,
    /// Pull from the peer.
    pub pull: Option<bool>,
    /// Push to the peer.
    pub push: Option<bool>,
    /// Tag include list.
    pub tags_include: Option<Vec<String>>,
    /// Tag exclude list.
    pub tags_exclude: Option<Vec<String>>,
    /// Creator organisation include list.
    pub orgs_include: Option<Vec<Uuid>>,
    /// Creator organisation exclude list.
    pub orgs_exclude: Option<Vec<Uuid>>,
}

impl PeerSettings {
    /// Applies the changes to `peer`.
    pub fn apply(self, peer: &mut Peer) {
        if let Some(endpoint) = self.endpoint {
            peer.endpoint = endpoint;
        }
        if let Some(relationship) = self.relationship {
            peer.rules.relationship = relationship;
        }
        if let Some(tlp_max) = self.tlp_max {
            peer.rules.tlp_max = tlp_max;
        }
        if let Some(pull) = self.pull {
            peer.pull = pull;
        }
        if let Some(push) = self.push {
            peer.push = push;
        }
        if let Some(tags) = self.tags_include {
            peer.rules.tags_include = tags;
        }
        if let Some(tags) = self.tags_exclude {
            peer.rules.tags_exclude = tags;
        }
        if let Some(orgs) = self.orgs_include {
            peer.rules.orgs_include = orgs;
        }
        if let Some(orgs) = self.orgs_exclude {
            peer.rules.orgs_exclude = orgs;
        }
    }
}

/// Why a pairing was refused.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key is already paired.
    #[error("node {0} is already paired (use `peer set` to change it; its card's org key, if any, is bound)")]
    Exists(OriginKey),
    /// The key is this node's own.
    #[error("that card is this node's own")]
    Own,
    /// Too many peers.
    #[error("this node already has {PEERS_MAX} peers, the limit")]
    TooMany,
    /// No such peer.
    #[error("no peer {0}")]
    Unknown(String),
    /// The card's org key contradicts a binding of its organisation.
    #[error(transparent)]
    Identity(#[from] crate::store::BindError),
}

/// Pairs the node described by `card` with `settings` (defaults: relationship external, TLP
/// ceiling amber, pull on, push on).
///
/// A card naming this node's own organisation does not make the peer internal: an org uuid
/// is public (it is the `Orgc` of every event the org shares), so anyone can print it on a
/// card. Only the operator's explicit `relationship` makes a peer internal.
pub fn pair(
    store: &Store,
    own: &OriginKey,
    card: Card,
    settings: PeerSettings,
) -> Result<Peer, PairError> {
    if &card.key == own {
        return Err(PairError::Own);
    }
    // A card binds its organisation to its org key even when the node is paired already
    // (cards re-exchanged after an upgrade); a contradicting binding refuses the pairing.
    if let Some(org_key) = card.org_key {
        store.bind_card(card.org_uuid, org_key, &card.encode(), card.key)?;
    }
    if peer(store, &card.key)?.is_some() {
        return Err(PairError::Exists(card.key));
    }
    if peers(store)?.len() >= PEERS_MAX {
        return Err(PairError::TooMany);
    }
    let mut new = Peer {
        id: 0,
        key: card.key,
        org_uuid: card.org_uuid,
        org_name: card.org_name,
        endpoint: card.endpoint,
        rules: PeerRules {
            relationship: crate::policy::Relationship::External,
            tlp_max: crate::policy::Tlp::Amber,
            tags_include: vec![],
            tags_exclude: vec![],
            orgs_include: vec![],
            orgs_exclude: vec![],
        },
        pull: true,
        push: true,
    };
    settings.apply(&mut new);
    Ok(put_peer(store, new)?)
}

/// The peer named by `reference`: its numeric id, its key, or a unique key prefix.
pub fn find(store: &Store, reference: &str) -> Result<Peer, PairError> {
    let all = peers(store)?;
    let matches: Vec<&Peer> = all
        .iter()
        .filter(|peer| {
            reference.parse::<u64>().ok() == Some(peer.id)
                || (reference.len() >= 8 && peer.key.to_string().starts_with(reference))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(PairError::Unknown(reference.to_string())),
    }
}

/// Releases a quarantined peer so that sync resumes.
pub fn release_quarantine(store: &Store, key: &OriginKey) -> Result<(), StoreError> {
    update_status(store, key, |status| {
        status.quarantined = false;
        status.failures = 0;
        status.failure_window.clear();
        status.state = "idle".into();
    })
    .map(|_| ())
}

/// A peer with its cursor and status, as `peer list` and `/servers/index` show it.
#[derive(Clone, Debug, Serialize)]
pub struct PeerReport {
    /// The peer.
    #[serde(flatten)]
    pub peer: Peer,
    /// Arrival number on the peer's node ingested up to.
    pub cursor: u64,
    /// Entries the peer holds that this node has not ingested yet.
    pub lag_entries: u64,
    /// Seconds between the peer's newest entry and the newest received.
    pub lag_seconds: f64,
    /// Sync status.
    pub status: PeerStatus,
    /// Organisations whose identity conflict (a second org key, SPEC §4.1) came through this
    /// peer; the evidence is in `threatlog log forks` and `GET /audit/alerts`.
    pub identity_conflicts: Vec<Uuid>,
}

/// Every peer with cursor, lag and status.
pub fn reports(store: &Store) -> Result<Vec<PeerReport>, StoreError> {
    let conflicts = store.identity_conflicts()?;
    peers(store)?
        .into_iter()
        .map(|peer| {
            let cursor = cursor(store, &peer.key)?;
            let status = status(store, &peer.key)?;
            let lag_entries = status.remote_head.saturating_sub(cursor);
            let lag_seconds = if lag_entries == 0 {
                0.0
            } else {
                (status.remote_head_time_ms - status.received_time_ms).max(0) as f64 / 1000.0
            };
            let mut identity_conflicts: Vec<Uuid> = conflicts
                .iter()
                .filter(|conflict| conflict.via == Some(peer.key))
                .map(|conflict| conflict.org_uuid)
                .collect();
            identity_conflicts.dedup();
            Ok(PeerReport {
                peer,
                cursor,
                lag_entries,
                lag_seconds,
                status,
                identity_conflicts,
            })
        })
        .collect()
}
