//! Checkpoint history, cosignatures and split-view proofs, in column family `checkpoints`:
//!
//! - `c ‖ origin (32) ‖ size (8, big-endian)` → the signed checkpoint note (own or a peer's);
//! - `s ‖ origin ‖ size ‖ cosigner key (32)` → a `tlog-cosignature` line over that checkpoint;
//! - `x ‖ origin ‖ first 8 bytes of SHA-256 of the pair` → JSON `{"a": note, "b": note}`: two
//!   checkpoints of one origin, both validly signed, that are not consistent (a split view).
//!
//! A node never signs a checkpoint that is not consistent with its previous one.

use rocksdb::{Direction, IteratorMode, WriteOptions};
use sha2::{Digest, Sha256};

use super::provisional::ChainChange;
use super::{Store, StoreError, CF_CHECKPOINTS};
use crate::log::checkpoint::{self, Checkpoint, CheckpointError};
use crate::log::merkle;
use crate::log::{NodeKey, OriginKey};

fn prefix(tag: u8, origin: &OriginKey) -> Vec<u8> {
    let mut key = Vec::with_capacity(81);
    key.push(tag);
    key.extend_from_slice(&origin.0);
    key
}

fn checkpoint_key(origin: &OriginKey, size: u64) -> Vec<u8> {
    let mut key = prefix(b'c', origin);
    key.extend_from_slice(&size.to_be_bytes());
    key
}

/// Two signed checkpoints of one origin that cannot both describe one append-only log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitView {
    /// One signed checkpoint note.
    pub a: String,
    /// The other.
    pub b: String,
}

/// Why a peer's checkpoint was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The note is malformed or not signed by the origin it names.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint contradicts another checkpoint of the origin or the entries held; the
    /// proof has been stored.
    #[error("split view of origin {origin}: {reason}")]
    SplitView {
        /// The origin that equivocated.
        origin: OriginKey,
        /// What contradicts what.
        reason: String,
    },
    /// The checkpoint differs from the held tree only where provisional stubs are held (from
    /// `first` on): no split view, since those stubs are unconfirmed claims of peers; the
    /// checkpoint is neither stored nor cosigned.
    #[error(
        "checkpoint of size {size} of origin {origin} differs from the held tree where only \
         unconfirmed stubs are held (from sequence {first}); not cosigned"
    )]
    Unconfirmed {
        /// The origin.
        origin: OriginKey,
        /// The checkpoint's size.
        size: u64,
        /// The first provisional sequence held.
        first: u64,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a checkpoint compares with the held tree of its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Agreement {
    /// The held tree at its size has its root.
    Agrees,
    /// The held tree does not reach its size yet.
    Beyond,
    /// The roots differ, and provisional stubs from `first` are within its size.
    Provisional {
        /// The first provisional sequence.
        first: u64,
    },
    /// The roots differ where every leaf is final: a split view.
    Differs {
        /// Leaves held.
        held: u64,
    },
}

impl Store {
    fn put_sync(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        Ok(self
            .db
            .put_cf_opt(self.cf(CF_CHECKPOINTS), key, value, &options)?)
    }

    fn scan_checkpoints(&self, start: &[u8]) -> Result<Vec<crate::view::KeyValue>, StoreError> {
        Ok(super::views::scan_cf(
            &self.db,
            self.cf(CF_CHECKPOINTS),
            start,
        )?)
    }

    /// Every stored checkpoint of `origin`, by size: (size, note).
    pub fn checkpoints(&self, origin: &OriginKey) -> Result<Vec<(u64, String)>, StoreError> {
        let prefix = prefix(b'c', origin);
        Ok(self
            .scan_checkpoints(&prefix)?
            .into_iter()
            .filter_map(|(key, value)| {
                let size = u64::from_be_bytes(key[33..].try_into().ok()?);
                Some((size, String::from_utf8(value).ok()?))
            })
            .collect())
    }

    /// The latest stored checkpoint of `origin`: (size, note).
    pub fn latest_checkpoint(
        &self,
        origin: &OriginKey,
    ) -> Result<Option<(u64, String)>, StoreError> {
        self.checkpoint_at_most(origin, u64::MAX)
    }

    /// The stored checkpoint of `origin` at `size`.
    pub fn checkpoint_at(
        &self,
        origin: &OriginKey,
        size: u64,
    ) -> Result<Option<String>, StoreError> {
        let value = self
            .db
            .get_cf(self.cf(CF_CHECKPOINTS), checkpoint_key(origin, size))?;
        Ok(value.and_then(|bytes| String::from_utf8(bytes).ok()))
    }

    /// Whether `origin`'s tree has grown by at least `every` entries since its last checkpoint.
    pub fn checkpoint_due(&self, origin: &OriginKey, every: u64) -> Result<bool, StoreError> {
        let last = self.latest_checkpoint(origin)?.map_or(0, |(size, _)| size);
        // Staged: a checkpoint found due waits for pending writes when it is issued.
        Ok(self.staged_tree_size(origin) >= last.saturating_add(every.max(1)))
    }

    /// Signs and stores a checkpoint of `key`'s own log at its current size, after checking
    /// that it is consistent with the previous checkpoint. Returns `None` when the log has not
    /// grown since.
    pub fn issue_checkpoint(&self, key: &NodeKey) -> Result<Option<(u64, String)>, StoreError> {
        let origin = key.origin();
        // Holding the writer keeps the tree from growing between reading and signing.
        let writer = self.writer_lock();
        let size = writer.trees.size(&origin);
        drop(writer);
        let previous = self.latest_checkpoint(&origin)?;
        if size == 0 || previous.as_ref().is_some_and(|(last, _)| *last >= size) {
            return Ok(None);
        }
        let root = self.tree_root(&origin, size)?;
        if let Some((old, note)) = &previous {
            let earlier = checkpoint::verify_origin_note(note, &origin)?;
            let proof = self.consistency_proof(&origin, *old, size)?;
            let consistent = earlier.size == *old
                && merkle::verify_consistency(*old, size, &earlier.root, &root, &proof).is_ok();
            if !consistent {
                tracing::error!(
                    "refusing to sign checkpoint {size}: not consistent with checkpoint {old}"
                );
                return Err(CheckpointError::Inconsistent {
                    old: *old,
                    new: size,
                }
                .into());
            }
        }
        let name = checkpoint::origin_name(&origin);
        let note = Checkpoint {
            origin: name.clone(),
            size,
            root,
        }
        .sign(&name, key);
        self.put_sync(&checkpoint_key(&origin, size), note.as_bytes())?;
        Ok(Some((size, note)))
    }

    /// Verifies a peer's checkpoint note and stores it, unless it contradicts a stored
    /// checkpoint of the same origin or the entries held of it: then the pair is stored as a
    /// split-view proof and refused. A checkpoint that differs from the held tree only where
    /// provisional stubs are held is no split view: it is refused as unconfirmed, and
    /// neither stored nor alarming. One that agrees makes the stubs it covers final.
    pub fn accept_checkpoint(&self, note: &str) -> Result<Checkpoint, AcceptError> {
        let (body, _) = checkpoint::split_note(note)?;
        let claimed = Checkpoint::parse_body(body)?;
        let origin = claimed.origin_key().ok_or_else(|| {
            CheckpointError::Malformed(format!(
                "origin '{}' is not a threatlog log",
                claimed.origin
            ))
        })?;
        let checkpoint = checkpoint::verify_origin_note(note, &origin)?;
        // Only notes verified here or signed by this node are stored, so the one held at
        // this size is compared without checking its signature again.
        if let Some(other) = self.checkpoint_at(&origin, checkpoint.size)? {
            let stored = checkpoint::split_note(&other)
                .and_then(|(body, _)| Checkpoint::parse_body(body))
                .ok();
            if stored.is_some_and(|stored| stored.root != checkpoint.root) {
                self.put_split_view(&origin, &other, note)?;
                return Err(AcceptError::SplitView {
                    origin,
                    reason: format!(
                        "checkpoint of size {} contradicts the one held at that size",
                        checkpoint.size
                    ),
                });
            }
        }
        match self.confirm_with(&origin, &checkpoint)? {
            Agreement::Agrees | Agreement::Beyond => {}
            Agreement::Provisional { first } => {
                return Err(AcceptError::Unconfirmed {
                    origin,
                    size: checkpoint.size,
                    first,
                })
            }
            Agreement::Differs { held } => {
                return Err(AcceptError::SplitView {
                    origin,
                    reason: format!(
                        "checkpoint of size {} does not match the {held} entries held",
                        checkpoint.size
                    ),
                })
            }
        }
        self.put_sync(&checkpoint_key(&origin, checkpoint.size), note.as_bytes())?;
        Ok(checkpoint)
    }

    /// Compares `checkpoint` of `origin` with the held tree and, when it agrees and covers
    /// provisional stubs, makes them final (they get new arrivals, so they are relayed now).
    fn confirm_with(
        &self,
        origin: &OriginKey,
        checkpoint: &Checkpoint,
    ) -> Result<Agreement, StoreError> {
        let mut writer = self.writer_lock();
        self.confirm_locked(&mut writer, origin, checkpoint)
    }

    /// [`Store::confirm_with`] for a caller that holds the writer.
    pub(crate) fn confirm_locked(
        &self,
        writer: &mut super::append::Writer,
        origin: &OriginKey,
        checkpoint: &Checkpoint,
    ) -> Result<Agreement, StoreError> {
        let held = writer.trees.size(origin);
        if checkpoint.size > held {
            return Ok(Agreement::Beyond);
        }
        let first = writer
            .provisional
            .first(origin)
            .filter(|first| *first <= checkpoint.size);
        if self.held_root(&writer.trees, origin, checkpoint.size)? != checkpoint.root {
            return Ok(match first {
                Some(first) => Agreement::Provisional { first },
                None => Agreement::Differs { held },
            });
        }
        if first.is_some() {
            let confirm = super::append::Commit::Chain(ChainChange::Confirm {
                origin: *origin,
                through: checkpoint.size,
            });
            self.commit_items(writer, &[confirm], &[], super::append::Views::Reduce)?;
            tracing::info!(
                %origin,
                size = checkpoint.size,
                "the origin's checkpoint confirms the provisional stubs it covers"
            );
        }
        Ok(Agreement::Agrees)
    }

    /// Confirms `origin`'s provisional stubs against its latest stored checkpoint that the
    /// held chain reaches, if it agrees with them.
    pub(crate) fn confirm_by_stored_checkpoint(
        &self,
        writer: &mut super::append::Writer,
        origin: &OriginKey,
    ) -> Result<(), StoreError> {
        let Some(first) = writer.provisional.first(origin) else {
            return Ok(());
        };
        let held = writer.trees.size(origin);
        let Some((size, note)) = self.checkpoint_at_most(origin, held)? else {
            return Ok(());
        };
        if size < first {
            return Ok(());
        }
        // Stored checkpoints were verified when they were accepted.
        let (body, _) = checkpoint::split_note(&note)?;
        let checkpoint = Checkpoint::parse_body(body)?;
        self.confirm_locked(writer, origin, &checkpoint)?;
        Ok(())
    }

    /// The stored checkpoint of `origin` with the largest size up to `size`: (size, note).
    pub fn checkpoint_at_most(
        &self,
        origin: &OriginKey,
        size: u64,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let start = checkpoint_key(origin, size);
        let mode = IteratorMode::From(&start, Direction::Reverse);
        if let Some(item) = self.db.iterator_cf(self.cf(CF_CHECKPOINTS), mode).next() {
            let (key, value) = item?;
            if key.len() == 41 && key.starts_with(&prefix(b'c', origin)) {
                let size = u64::from_be_bytes(key[33..].try_into().unwrap_or_default());
                let note = String::from_utf8(value.to_vec()).map_err(|_| StoreError::Corrupt {
                    what: "checkpoint",
                    reason: "not UTF-8".into(),
                })?;
                return Ok(Some((size, note)));
            }
        }
        Ok(None)
    }

    /// The checkpoint of `origin` that stubs relayed from here are proven against: the latest
    /// stored one within the final part of the held chain, when the held tree agrees with it.
    /// Returns its size and note.
    pub fn proof_checkpoint(
        &self,
        origin: &OriginKey,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let Some((size, note)) = self.checkpoint_at_most(origin, self.final_length(origin))? else {
            return Ok(None);
        };
        let (body, _) = checkpoint::split_note(&note)?;
        let claimed = Checkpoint::parse_body(body)?;
        let writer = self.writer_lock();
        let agrees = size <= writer.trees.size(origin)
            && self.held_root(&writer.trees, origin, size)? == claimed.root;
        Ok(agrees.then_some((size, note)))
    }

    /// Accepts a peer's checkpoint ([`Store::accept_checkpoint`]) and cosigns it with `key` at
    /// `timestamp` (seconds); the cosignature is stored and returned.
    pub fn cosign_checkpoint(
        &self,
        key: &NodeKey,
        note: &str,
        timestamp: u64,
    ) -> Result<String, AcceptError> {
        let checkpoint = self.accept_checkpoint(note)?;
        let line = checkpoint.cosign(key, timestamp);
        self.store_cosignature(&checkpoint, &key.origin(), &line)?;
        Ok(line)
    }

    /// Verifies and stores `cosigner`'s cosignature line over `origin`'s stored checkpoint of
    /// `size`.
    pub fn put_cosignature(
        &self,
        origin: &OriginKey,
        size: u64,
        cosigner: &OriginKey,
        line: &str,
    ) -> Result<(), StoreError> {
        let note = self.checkpoint_at(origin, size)?.ok_or_else(|| {
            CheckpointError::Malformed(format!("no checkpoint of size {size} of {origin} held"))
        })?;
        let checkpoint = checkpoint::verify_origin_note(&note, origin)?;
        checkpoint.verify_cosignature(line, cosigner)?;
        self.store_cosignature(&checkpoint, cosigner, line)
    }

    fn store_cosignature(
        &self,
        checkpoint: &Checkpoint,
        cosigner: &OriginKey,
        line: &str,
    ) -> Result<(), StoreError> {
        let origin = checkpoint
            .origin_key()
            .ok_or_else(|| CheckpointError::Malformed(format!("origin '{}'", checkpoint.origin)))?;
        let mut key = prefix(b's', &origin);
        key.extend_from_slice(&checkpoint.size.to_be_bytes());
        key.extend_from_slice(&cosigner.0);
        self.put_sync(&key, line.as_bytes())
    }

    /// Every stored cosignature over `origin`'s checkpoints: (size, cosigner, line).
    pub fn cosignatures(
        &self,
        origin: &OriginKey,
    ) -> Result<Vec<(u64, OriginKey, String)>, StoreError> {
        Ok(self
            .scan_checkpoints(&prefix(b's', origin))?
            .into_iter()
            .filter_map(|(key, value)| {
                let size = u64::from_be_bytes(key[33..41].try_into().ok()?);
                let cosigner = OriginKey::from_slice(&key[41..]).ok()?;
                Some((size, cosigner, String::from_utf8(value).ok()?))
            })
            .collect())
    }

    /// Stores two contradicting checkpoints of `origin` as a split-view proof, and alerts.
    pub fn put_split_view(&self, origin: &OriginKey, a: &str, b: &str) -> Result<(), StoreError> {
        tracing::error!("split view: origin {origin} signed two inconsistent checkpoints");
        let digest = Sha256::digest([a.as_bytes(), b.as_bytes()].concat());
        let mut key = prefix(b'x', origin);
        key.extend_from_slice(&digest[..8]);
        let proof = SplitView {
            a: a.to_string(),
            b: b.to_string(),
        };
        self.put_sync(&key, &serde_json::to_vec(&proof).unwrap_or_default())
    }

    /// Every stored split-view proof, by origin.
    pub fn split_views(&self) -> Result<Vec<(OriginKey, SplitView)>, StoreError> {
        Ok(self
            .scan_checkpoints(b"x")?
            .into_iter()
            .filter_map(|(key, value)| {
                let origin = OriginKey::from_slice(&key[1..33]).ok()?;
                Some((origin, serde_json::from_slice(&value).ok()?))
            })
            .collect())
    }
}
