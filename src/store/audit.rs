//! Reads of the raw log for auditors: stored entry bytes in chain order, and the entries that
//! touched an event.

use rocksdb::{Direction, IteratorMode};
use uuid::Uuid;

use super::{log_key, Store, StoreError, CF_EVENT_LOG, CF_LOG};
use crate::log::{EntryId, OriginKey};

/// A visitor of stored entries: (origin, sequence, stored bytes) → continue?
pub type StoredVisitor<'a> = dyn FnMut(OriginKey, u64, &[u8]) -> Result<bool, StoreError> + 'a;

impl Store {
    /// The stored bytes of `origin`'s entry `sequence`, if held.
    pub fn stored_entry(
        &self,
        origin: &OriginKey,
        sequence: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_LOG), log_key(origin, sequence))?)
    }

    /// Visits the stored entries of `origin` (every origin when `None`), grouped by origin in
    /// key order and in sequence order within one, as (origin, sequence, stored bytes), until
    /// `visit` returns `false`.
    pub fn for_each_stored(
        &self,
        origin: Option<&OriginKey>,
        visit: &mut StoredVisitor<'_>,
    ) -> Result<(), StoreError> {
        let start = origin.map(|origin| log_key(origin, 0)).unwrap_or_default();
        let mode = IteratorMode::From(&start, Direction::Forward);
        for item in self.db.iterator_cf(self.cf(CF_LOG), mode) {
            let (key, value) = item?;
            if origin.is_some_and(|origin| !key.starts_with(&origin.0)) {
                break;
            }
            let (Ok(found), Ok(sequence)) = (
                OriginKey::from_slice(&key[..key.len().min(32)]),
                <[u8; 8]>::try_from(&key[key.len().min(32)..]),
            ) else {
                return Err(StoreError::Corrupt {
                    what: "log key",
                    reason: hex::encode(&key),
                });
            };
            if !visit(found, u64::from_be_bytes(sequence), &value)? {
                break;
            }
        }
        Ok(())
    }

    /// The entries that changed `event`, in arrival order.
    pub fn event_entries(&self, event: &Uuid) -> Result<Vec<EntryId>, StoreError> {
        Ok(self
            .event_arrivals(event)?
            .into_iter()
            .map(|(_, id)| id)
            .collect())
    }

    /// The entries that changed `event` with their arrival numbers, in arrival order.
    pub fn event_arrivals(&self, event: &Uuid) -> Result<Vec<(u64, EntryId)>, StoreError> {
        let mut out = Vec::new();
        for (key, value) in
            super::views::scan_cf(&self.db, self.cf(CF_EVENT_LOG), event.as_bytes())?
        {
            let arrival = key
                .get(16..24)
                .and_then(|bytes| bytes.try_into().ok())
                .map(u64::from_be_bytes);
            if let (Some(arrival), 40) = (arrival, value.len()) {
                let origin = OriginKey::from_slice(&value[..32])?;
                let sequence = u64::from_be_bytes(value[32..].try_into().unwrap_or_default());
                out.push((arrival, EntryId { origin, sequence }));
            }
        }
        Ok(out)
    }
}
