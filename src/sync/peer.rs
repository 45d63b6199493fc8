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
const CARD_PREFIX: &str = "threatlog-card:";
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
    /// Consecutive failures.
    pub failures: u32,
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
