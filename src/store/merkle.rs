//! The stored Merkle tree of every origin (SPEC §8): the hash of every complete subtree, kept
//! in column family `merkle` under `origin (32) ‖ level (1) ‖ index (8, big-endian)`, written
//! in the same `WriteBatch` as the entries (and stubs) that are its leaves. A proof is then
//! O(log n) point reads. The writer keeps each origin's right edge ([`Frontier`]) in memory,
//! loaded at open. View rebuilds never touch this family.

use rocksdb::{IteratorMode, WriteBatch};
use std::collections::HashMap;

use super::{Store, StoreError, CF_LOG, CF_MERKLE};
use crate::log::merkle::{self, Frontier, Hash, HashSource, ProofError};
use crate::log::{EntryHash, Head, OriginKey};

/// Leaves committed per write batch while building the tree of a directory written before
/// the tree existed, bounding that batch's memory.
const BUILD_BATCH_LEAVES: usize = 4096;

/// The key of complete subtree `index` at `level` of `origin`'s tree.
fn node_key(origin: &OriginKey, level: u8, index: u64) -> [u8; 41] {
    let mut key = [0u8; 41];
    key[..32].copy_from_slice(&origin.0);
    key[32] = level;
    key[33..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Every origin's right edge, held by the writer.
#[derive(Debug, Default)]
pub(crate) struct Trees {
    /// The frontier of each origin's tree.
    frontiers: HashMap<OriginKey, Frontier>,
}

impl Trees {
    /// Leaves in `origin`'s tree.
    pub(crate) fn size(&self, origin: &OriginKey) -> u64 {
        self.frontiers.get(origin).map_or(0, Frontier::size)
    }

    /// Takes the frontiers a committed batch advanced.
    pub(crate) fn apply(&mut self, batch: TreeBatch) {
        self.frontiers.extend(batch.touched);
    }
}

/// The frontiers one commit advances, copied on first touch so a failed write leaves the
/// writer's state as it was.
#[derive(Debug, Default)]
pub(crate) struct TreeBatch {
    /// Advanced frontiers by origin.
    touched: HashMap<OriginKey, Frontier>,
}

/// One origin's stored tree as a [`HashSource`].
struct StoredTree<'a> {
    /// The store read.
    store: &'a Store,
    /// The origin whose tree it is.
    origin: OriginKey,
}

impl HashSource for StoredTree<'_> {
    fn perfect(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        let key = node_key(&self.origin, level, index);
        let value = self
            .store
            .db
            .get_cf(self.store.cf(CF_MERKLE), key)
            .map_err(|error| ProofError::Source(error.to_string()))?
            .ok_or_else(|| {
                ProofError::Source(format!("no stored subtree {index} at level {level}"))
            })?;
        value
            .as_slice()
            .try_into()
            .map_err(|_| ProofError::HashLength(value.len()))
    }
}

impl Store {
    /// Adds the leaf for `origin`'s entry or stub `sequence` with hash `hash` to the origin's
    /// tree: every complete subtree it finishes goes into `batch`. Call once per stored entry
    /// or stub, in chain order, inside the commit that stores it.
    pub(crate) fn merkle_append(
        &self,
        batch: &mut WriteBatch,
        trees: &mut TreeBatch,
        base: &Trees,
        origin: OriginKey,
        sequence: u64,
        hash: EntryHash,
    ) -> Result<(), StoreError> {
        let frontier = trees
            .touched
            .entry(origin)
            .or_insert_with(|| base.frontiers.get(&origin).cloned().unwrap_or_default());
        if sequence != frontier.size() + 1 {
            return Err(StoreError::Corrupt {
                what: "merkle tree",
                reason: format!(
                    "origin {origin}: leaf for sequence {sequence} after {} leaves",
                    frontier.size()
                ),
            });
        }
        let cf = self.cf(CF_MERKLE);
        frontier.push(merkle::leaf_hash(&hash), &mut |(level, index, node)| {
            batch.put_cf(cf, node_key(&origin, level, index), node);
        });
        Ok(())
    }

    /// Rewinds `origin`'s tree, as this commit leaves it, to its first `keep` leaves: every
    /// stored subtree over a later leaf is deleted in `batch`, and the right edge is read
    /// again from the stored subtrees kept (written before this commit: only the provisional
    /// end of a chain is ever rewound, and it ends at the stored head).
    pub(crate) fn merkle_rewind(
        &self,
        batch: &mut WriteBatch,
        trees: &mut TreeBatch,
        base: &Trees,
        origin: OriginKey,
        keep: u64,
    ) -> Result<(), StoreError> {
        let size = trees
            .touched
            .get(&origin)
            .map_or_else(|| base.size(&origin), Frontier::size);
        let cf = self.cf(CF_MERKLE);
        for (level, range) in merkle::rewound_subtrees(size, keep) {
            batch.delete_range_cf(
                cf,
                node_key(&origin, level, range.start),
                node_key(&origin, level, range.end),
            );
        }
        let frontier = Frontier::load(&self.tree(&origin), keep)?;
        trees.touched.insert(origin, frontier);
        Ok(())
    }

    /// The root of `origin`'s tree at `size` leaves, for a caller that holds the writer with
    /// `trees`, its frontiers.
    pub(crate) fn held_root(
        &self,
        trees: &Trees,
        origin: &OriginKey,
        size: u64,
    ) -> Result<Hash, StoreError> {
        let held = trees.size(origin);
        if size > held {
            return Err(ProofError::Bounds(format!(
                "origin {origin} has {held} entries, not {size}"
            ))
            .into());
        }
        Ok(merkle::root(&self.tree(origin), size)?)
    }

    /// Loads every origin's frontier for the writer; an origin whose tree is behind its
    /// head (a directory written before trees were stored) gets its tree built from the log
    /// first, unless the store is read-only.
    pub(crate) fn load_trees(&self, heads: &HashMap<OriginKey, Head>) -> Result<Trees, StoreError> {
        let mut trees = Trees::default();
        for (origin, head) in heads {
            let source = StoredTree {
                store: self,
                origin: *origin,
            };
            let frontier = match Frontier::load(&source, head.sequence) {
                Ok(frontier) => frontier,
                Err(_) if !self.read_only => self.build_tree(origin)?,
                Err(error) => {
                    return Err(StoreError::Corrupt {
                        what: "merkle tree",
                        reason: format!(
                            "origin {origin}: not built yet ({error}); run `threatlog log \
                             verify` once, with no node running, to build it"
                        ),
                    })
                }
            };
            trees.frontiers.insert(*origin, frontier);
        }
        Ok(trees)
    }

    /// Builds `origin`'s tree from its stored entries.
    fn build_tree(&self, origin: &OriginKey) -> Result<Frontier, StoreError> {
        tracing::info!("building the Merkle tree of origin {origin} from its log");
        let mut frontier = Frontier::default();
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_MERKLE);
        let start = super::log_key(origin, 1);
        let mode = IteratorMode::From(&start, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(self.cf(CF_LOG), mode) {
            let (key, value) = item?;
            if !key.starts_with(&origin.0) {
                break;
            }
            let hash = crate::log::entry_hash(&value);
            frontier.push(merkle::leaf_hash(&hash), &mut |(level, index, node)| {
                batch.put_cf(cf, node_key(origin, level, index), node);
            });
            if frontier.size().is_multiple_of(BUILD_BATCH_LEAVES as u64) {
                self.db.write(std::mem::take(&mut batch))?;
            }
        }
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options)?;
        Ok(frontier)
    }

    /// Leaves in `origin`'s tree: its entries and stubs held, without gaps.
    pub fn tree_size(&self, origin: &OriginKey) -> u64 {
        self.writer_lock().trees.size(origin)
    }

    /// Leaves in `origin`'s tree counting batches still being written: at least
    /// [`Store::tree_size`], and cheap to ask after every append because it does not wait
    /// for those writes.
    pub(crate) fn staged_tree_size(&self, origin: &OriginKey) -> u64 {
        self.writer_lock_pipelined().trees.size(origin)
    }

    /// The root of `origin`'s tree at `size` leaves (at most [`Store::tree_size`]).
    pub fn tree_root(&self, origin: &OriginKey, size: u64) -> Result<Hash, StoreError> {
        self.check_size(origin, size)?;
        Ok(merkle::root(&self.tree(origin), size)?)
    }

    /// The leaf hash of `origin`'s entry `sequence`.
    pub fn tree_leaf(&self, origin: &OriginKey, sequence: u64) -> Result<Hash, StoreError> {
        self.check_size(origin, sequence)?;
        Ok(self.tree(origin).perfect(0, sequence.saturating_sub(1))?)
    }

    /// The inclusion proof of `origin`'s entry `sequence` (leaf `sequence - 1`) in its tree
    /// of `size` leaves.
    pub fn inclusion_proof(
        &self,
        origin: &OriginKey,
        sequence: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.check_size(origin, size)?;
        if sequence == 0 || sequence > size {
            return Err(ProofError::Bounds(format!(
                "sequence {sequence} is not in a tree of {size} entries"
            ))
            .into());
        }
        Ok(merkle::inclusion_proof(
            &self.tree(origin),
            sequence - 1,
            size,
        )?)
    }

    /// The consistency proof of `origin`'s tree from `old` to `new` leaves.
    pub fn consistency_proof(
        &self,
        origin: &OriginKey,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.check_size(origin, new)?;
        Ok(merkle::consistency_proof(&self.tree(origin), old, new)?)
    }

    fn tree(&self, origin: &OriginKey) -> StoredTree<'_> {
        StoredTree {
            store: self,
            origin: *origin,
        }
    }

    fn check_size(&self, origin: &OriginKey, size: u64) -> Result<(), StoreError> {
        let held = self.tree_size(origin);
        if size > held {
            return Err(ProofError::Bounds(format!(
                "origin {origin} has {held} entries, not {size}"
            ))
            .into());
        }
        Ok(())
    }
}
