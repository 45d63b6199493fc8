//! Derived release facts kept with the log: the latest publish of each event, which the
//! publish gate of SPEC §6.2 compares entries against. Written in the same batch as the
//! entries that cause them, like the views.

use rocksdb::WriteBatch;
use std::collections::HashMap;
use uuid::Uuid;

use super::{Store, StoreError, CF_LOCAL, CF_RELEASE};
use crate::log::{OriginKey, VerifiedEntry};
use crate::proto::{op::Op, RecordKind};

/// Key prefix of publish markers: `p ‖ event uuid` → [`Publish`].
const PUBLISH_PREFIX: u8 = b'p';

/// Key prefix of release marks in [`CF_LOCAL`]: `released/ ‖ peer node key ‖ event uuid` →
/// nothing. Sync state of this node, never replicated: which peers were sent any entry of
/// an event in full, so that its deletion reaches them all (SPEC §6.2).
const RELEASED_PREFIX: &[u8] = b"released/";

/// The entry that last published an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Its origin.
    pub origin: OriginKey,
    /// Its sequence number.
    pub sequence: u64,
    /// Its origin time.
    pub time_ms: i64,
}

impl Publish {
    /// Whether this publish came after `entry` was written: later in the same origin's chain,
    /// or (for another origin's entry) not earlier in origin time.
    pub fn covers(&self, entry: &VerifiedEntry) -> bool {
        if entry.origin() == self.origin {
            entry.sequence() <= self.sequence
        } else {
            entry.entry().time_ms <= self.time_ms
        }
    }

    fn is_after(&self, other: &Publish) -> bool {
        if self.origin == other.origin {
            self.sequence > other.sequence
        } else {
            self.time_ms > other.time_ms
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = self.origin.0.to_vec();
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Publish, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "publish marker",
            reason: format!("{} bytes, expected 48", bytes.len()),
        };
        if bytes.len() != 48 {
            return Err(corrupt());
        }
        let origin = OriginKey::from_slice(&bytes[..32]).map_err(|_| corrupt())?;
        let sequence = u64::from_be_bytes(bytes[32..40].try_into().map_err(|_| corrupt())?);
        let time_ms = i64::from_be_bytes(bytes[40..48].try_into().map_err(|_| corrupt())?);
        Ok(Publish {
            origin,
            sequence,
            time_ms,
        })
    }

    /// The publish `entry` makes, if it sets its event's `published` flag to true.
    pub fn of(entry: &VerifiedEntry) -> Option<(Uuid, Publish)> {
        let event = entry.event()?;
        let publishes = entry.entry().ops.iter().any(|op| match &op.op {
            Some(Op::Set(set)) if set.kind == RecordKind::Event as i32 => {
                serde_json::from_slice::<serde_json::Value>(&set.fields_json)
                    .ok()
                    .and_then(|fields| fields.get("published").and_then(|v| v.as_bool()))
                    == Some(true)
            }
            _ => false,
        });
        publishes.then(|| {
            (
                event,
                Publish {
                    origin: entry.origin(),
                    sequence: entry.sequence(),
                    time_ms: entry.entry().time_ms,
                },
            )
        })
    }
}

fn released_key(peer: &OriginKey, event: &Uuid) -> Vec<u8> {
    let mut key = RELEASED_PREFIX.to_vec();
    key.extend_from_slice(&peer.0);
    key.extend_from_slice(event.as_bytes());
    key
}

fn publish_key(event: &Uuid) -> Vec<u8> {
    let mut key = vec![PUBLISH_PREFIX];
    key.extend_from_slice(event.as_bytes());
    key
}

/// The publishes of one commit, latest per event.
#[derive(Default)]
pub(crate) struct Publishes {
    latest: HashMap<Uuid, Publish>,
}

impl Publishes {
    /// Notes the publish `entry` makes, if any.
    pub(crate) fn note(&mut self, store: &Store, entry: &VerifiedEntry) -> Result<(), StoreError> {
        let Some((event, publish)) = Publish::of(entry) else {
            return Ok(());
        };
        let current = match self.latest.get(&event) {
            Some(current) => Some(*current),
            None => store.publish_of(&event)?,
        };
        if current.is_none_or(|current| publish.is_after(&current)) {
            self.latest.insert(event, publish);
        }
        Ok(())
    }

    /// Adds the new markers to `batch`.
    pub(crate) fn write_into(&self, store: &Store, batch: &mut WriteBatch) {
        for (event, publish) in &self.latest {
            batch.put_cf(store.cf(CF_RELEASE), publish_key(event), publish.encode());
        }
    }
}

impl Store {
    /// The latest publish of `event` held here.
    pub fn publish_of(&self, event: &Uuid) -> Result<Option<Publish>, StoreError> {
        self.db
            .get_cf(self.cf(CF_RELEASE), publish_key(event))?
            .map(|bytes| Publish::decode(&bytes))
            .transpose()
    }

    /// Notes that peer `peer` was sent an entry of `event` in full.
    pub fn note_released(&self, peer: &OriginKey, event: &Uuid) -> Result<(), StoreError> {
        Ok(self
            .db
            .put_cf(self.cf(CF_LOCAL), released_key(peer, event), [])?)
    }

    /// Whether peer `peer` was ever sent an entry of `event` in full.
    pub fn was_released(&self, peer: &OriginKey, event: &Uuid) -> Result<bool, StoreError> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(CF_LOCAL), released_key(peer, event))?
            .is_some())
    }
}
