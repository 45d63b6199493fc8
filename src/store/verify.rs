//! Whole-log verification, view rebuild and the stored views' digest.

use prost::bytes::Bytes;
use rocksdb::{IteratorMode, WriteBatch, WriteOptions};
use std::collections::BTreeMap;

use super::views::BatchViews;
use super::{append::decode_head, Store, StoreError, CF_ARRIVAL, CF_HEADS, CF_LOG, CF_STUBS};
use crate::log::{Head, OriginKey, VerifiedEntry};
use crate::view::{self, MemoryViews, Table, ViewDigest};

/// Meta key present while a view rebuild is in progress.
pub(crate) const META_REBUILDING: &[u8] = b"views_rebuilding";

/// Meta key of the views' layout, [`view::VIEWS_FORMAT`].
pub(crate) const META_VIEWS_FORMAT: &[u8] = b"views_format";

/// Entries replayed per write batch during a rebuild, bounding the batch's memory.
const REBUILD_BATCH_ENTRIES: usize = 1024;

/// What a successful verification checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifySummary {
    /// Entries verified.
    pub entries: u64,
    /// Distinct origins.
    pub origins: usize,
    /// Digest of the stored views, equal to a fresh replay's.
    pub digest: ViewDigest,
}

/// The first problem verification found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", match (origin, sequence) {
    (Some(origin), Some(sequence)) => format!("entry {origin}:{sequence}: "),
    (Some(origin), None) => format!("origin {origin}: "),
    _ => String::new(),
})]
pub struct VerifyFailure {
    /// The origin of the bad entry, when one is to blame.
    pub origin: Option<OriginKey>,
    /// The sequence number of the bad entry.
    pub sequence: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl VerifyFailure {
    fn entry(origin: OriginKey, sequence: u64, reason: impl Into<String>) -> Self {
        Self {
            origin: Some(origin),
            sequence: Some(sequence),
            reason: reason.into(),
        }
    }

    fn general(reason: impl Into<String>) -> Self {
        Self {
            origin: None,
            sequence: None,
            reason: reason.into(),
        }
    }
}

impl From<StoreError> for VerifyFailure {
    fn from(error: StoreError) -> Self {
        VerifyFailure::general(error.to_string())
    }
}

fn split_log_key(key: &[u8]) -> Option<(OriginKey, u64)> {
    if key.len() != 40 {
        return None;
    }
    let origin = OriginKey::from_slice(&key[..32]).ok()?;
    let sequence = u64::from_be_bytes(key[32..].try_into().ok()?);
    Some((origin, sequence))
}

impl Store {
    /// Checks every entry's signature and chain link, that each origin's chain reaches its
    /// recorded head without gaps, and that the stored views equal a fresh replay.
    /// `progress(done)` is called as entries are checked.
    pub fn verify(&self, progress: &dyn Fn(u64)) -> Result<VerifySummary, VerifyFailure> {
        let mut heads: BTreeMap<OriginKey, Head> = BTreeMap::new();
        let mut replay = MemoryViews::new();
        let mut count = 0u64;
        for item in self.db.iterator_cf(self.cf(CF_LOG), IteratorMode::Start) {
            let (key, value) = item.map_err(|error| VerifyFailure::general(error.to_string()))?;
            let (origin, sequence) = split_log_key(&key).ok_or_else(|| {
                VerifyFailure::general(format!("malformed log key {}", hex::encode(&key)))
            })?;
            let entry = VerifiedEntry::verify(Bytes::from(value.to_vec()))
                .map_err(|error| VerifyFailure::entry(origin, sequence, error.to_string()))?;
            if entry.origin() != origin || entry.sequence() != sequence {
                return Err(VerifyFailure::entry(
                    origin,
                    sequence,
                    format!(
                        "stored under the wrong position (entry says {})",
                        entry.id()
                    ),
                ));
            }
            let mut head = heads.get(&origin).copied().unwrap_or(Head::EMPTY);
            self.follow_stubs(&origin, &mut head, sequence)?;
            if sequence != head.sequence + 1 {
                return Err(VerifyFailure::entry(
                    origin,
                    head.sequence + 1,
                    format!(
                        "missing: the chain jumps from sequence {} to {sequence}",
                        head.sequence
                    ),
                ));
            }
            head.check_next(&entry)
                .map_err(|error| VerifyFailure::entry(origin, sequence, error.to_string()))?;
            heads.insert(origin, Head::after(&entry));
            view::apply(&mut replay, &entry)
                .map_err(|error| VerifyFailure::entry(origin, sequence, error.to_string()))?;
            count += 1;
            if count.is_multiple_of(256) {
                progress(count);
            }
        }
        progress(count);
        // Stubs may also end a chain, or make all of it (an origin seen only as stubs).
        for item in self.db.iterator_cf(self.cf(CF_HEADS), IteratorMode::Start) {
            let (key, _) = item.map_err(|error| VerifyFailure::general(error.to_string()))?;
            let origin = OriginKey::from_slice(&key)
                .map_err(|error| VerifyFailure::general(error.to_string()))?;
            let mut head = heads.get(&origin).copied().unwrap_or(Head::EMPTY);
            self.follow_stubs(&origin, &mut head, u64::MAX)?;
            if head != Head::EMPTY {
                heads.insert(origin, head);
            }
        }
        self.check_heads(&heads)?;
        let fresh = view::digest(|table, visit| {
            replay
                .iter(table)
                .for_each(|(key, value)| visit(key, value));
            Ok(())
        })
        .map_err(|error| VerifyFailure::general(error.to_string()))?;
        let stored = self.views_digest()?;
        if fresh != stored {
            return Err(VerifyFailure::general(format!(
                "stored views (digest {stored}) differ from a fresh replay of the log (digest \
                 {fresh}); run `threatlog views rebuild`"
            )));
        }
        Ok(VerifySummary {
            entries: count,
            origins: heads.len(),
            digest: stored,
        })
    }

    /// Advances `head` over the stubs held right after it, up to (not including) sequence
    /// `until`, checking each stub's link.
    fn follow_stubs(
        &self,
        origin: &OriginKey,
        head: &mut Head,
        until: u64,
    ) -> Result<(), VerifyFailure> {
        while head.sequence + 1 < until {
            let next = crate::log::EntryId {
                origin: *origin,
                sequence: head.sequence + 1,
            };
            let key = super::log_key(origin, next.sequence);
            let Some(value) = self
                .db
                .get_cf(self.cf(super::CF_STUBS), &key)
                .map_err(|error| VerifyFailure::general(error.to_string()))?
            else {
                return Ok(());
            };
            let stub = crate::log::Stub::decode_value(next, &value)
                .map_err(|error| VerifyFailure::entry(*origin, next.sequence, error.to_string()))?;
            stub.check_next(head).map_err(|error| {
                VerifyFailure::entry(*origin, next.sequence, format!("stub: {error}"))
            })?;
            *head = stub.head();
        }
        Ok(())
    }

    /// Compares the chains found with the recorded heads, to catch entries removed at the end.
    fn check_heads(&self, found: &BTreeMap<OriginKey, Head>) -> Result<(), VerifyFailure> {
        for item in self.db.iterator_cf(self.cf(CF_HEADS), IteratorMode::Start) {
            let (key, value) = item.map_err(|error| VerifyFailure::general(error.to_string()))?;
            let origin = OriginKey::from_slice(&key)
                .map_err(|error| VerifyFailure::general(error.to_string()))?;
            let recorded = decode_head(&value)?;
            let held = found.get(&origin).copied().unwrap_or(Head::EMPTY);
            if held.sequence < recorded.sequence {
                return Err(VerifyFailure::entry(
                    origin,
                    held.sequence + 1,
                    format!(
                        "missing: the log ends at sequence {} but the head records {}",
                        held.sequence, recorded.sequence
                    ),
                ));
            }
            if held != recorded {
                return Err(VerifyFailure::entry(
                    origin,
                    recorded.sequence,
                    "the recorded head does not match the stored entry",
                ));
            }
        }
        Ok(())
    }

    /// The digest of the stored views.
    pub fn views_digest(&self) -> Result<ViewDigest, StoreError> {
        let views = self.views();
        Ok(view::digest(|table, visit| views.for_each(table, visit))?)
    }

    /// Drops every view and replays the log in arrival order. Returns the new digest.
    /// A rebuild interrupted by a crash is finished the next time the store opens.
    pub fn rebuild_views(&self, progress: &dyn Fn(u64)) -> Result<ViewDigest, StoreError> {
        let _writer = self.writer_lock();
        self.put_meta(META_REBUILDING, b"1")?;
        let options = {
            let mut options = WriteOptions::default();
            options.set_sync(true);
            options
        };
        for table in Table::ALL {
            let cf = self.cf(table.name());
            let mut batch = WriteBatch::default();
            for item in self.db.iterator_cf(cf, IteratorMode::Start) {
                let (key, _) = item?;
                batch.delete_cf(cf, key);
            }
            self.db.write_opt(batch, &options)?;
        }
        let mut done = 0u64;
        let mut keys = Vec::with_capacity(REBUILD_BATCH_ENTRIES);
        let arrivals: Vec<Vec<u8>> = self
            .db
            .iterator_cf(self.cf(CF_ARRIVAL), IteratorMode::Start)
            .map(|item| item.map(|(_, value)| value.to_vec()))
            .collect::<Result<_, _>>()?;
        for chunk in arrivals.chunks(REBUILD_BATCH_ENTRIES) {
            keys.clear();
            keys.extend_from_slice(chunk);
            let mut views = BatchViews::new(self);
            for key in &keys {
                let Some(bytes) = self.db.get_cf(self.cf(CF_LOG), key)? else {
                    // A withheld entry's stub arrives like an entry, and has no views.
                    if self.db.get_pinned_cf(self.cf(CF_STUBS), key)?.is_some() {
                        continue;
                    }
                    return Err(StoreError::Corrupt {
                        what: "arrival index",
                        reason: format!("names missing entry {}", hex::encode(key)),
                    });
                };
                let entry = VerifiedEntry::verify(Bytes::from(bytes))?;
                view::apply(&mut views, &entry)?;
            }
            let mut batch = WriteBatch::default();
            views.write_into(&mut batch);
            self.db.write_opt(batch, &options)?;
            done += chunk.len() as u64;
            progress(done);
        }
        self.put_meta(META_VIEWS_FORMAT, view::VIEWS_FORMAT.to_string().as_bytes())?;
        self.db
            .delete_cf(self.cf(super::CF_META), META_REBUILDING)?;
        self.views_digest()
    }
}
