//! Appending own entries and committing verified entries with their view changes.

use rand::RngCore;
use rocksdb::{IteratorMode, WriteBatch, WriteOptions};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use uuid::Uuid;

use super::pipeline::{Layer, WriteFailure};
use super::views::{write_layer, BatchViews};
use super::{
    log_key, Store, StoreError, CF_ARRIVAL, CF_EVENT_LOG, CF_HEADS, CF_IDS, CF_LOCAL, CF_LOG,
    CF_META, CF_STUBS,
};
use crate::log::{seal, Draft, EntryId, Head, NodeKey, OriginKey, Stub, VerifiedEntry, SALT_BYTES};
use crate::policy::authority;
use crate::proto::RecordKind;
use crate::view;

/// Meta key prefix of the next local id per record kind.
const META_NEXT_ID: &[u8] = b"next_id/";

/// Write batch bytes reserved per stored entry byte: the entry itself, its arrival and
/// index keys, and the view records and index pairs applying it usually adds.
const BATCH_BYTES_PER_ENTRY_BYTE: usize = 4;

/// Write batch bytes reserved for the heads, counters and markers every commit writes.
const BATCH_BYTES_BASE: usize = 4096;

/// The writer's state: everything an append needs that would otherwise be re-read each time.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    /// The last entry of each origin held.
    pub heads: HashMap<OriginKey, Head>,
    /// Arrival number the next stored entry gets.
    next_arrival: u64,
    /// The next local id per record kind.
    next_ids: HashMap<u8, u64>,
    /// Every origin's Merkle tree frontier.
    pub trees: super::merkle::Trees,
    /// Provisional stubs: where each origin's begin, how many each peer sent.
    pub provisional: super::provisional::Provisional,
    /// Tag names given a local id since the state was read: batches still in the pipeline
    /// are not readable yet, and a tag is named by many of them. One entry per distinct tag.
    numbered_tags: foldhash::HashSet<Vec<u8>>,
}

impl Writer {
    /// The head of `origin`'s chain as stored, or as being stored.
    fn head(&self, origin: &OriginKey) -> Head {
        self.heads.get(origin).copied().unwrap_or(Head::EMPTY)
    }

    /// The last arrival number given (0 before the first entry).
    pub(crate) fn last_arrival(&self) -> u64 {
        self.next_arrival.saturating_sub(1)
    }

    /// Reads the writer state from the database.
    pub(crate) fn load(store: &Store) -> Result<Writer, StoreError> {
        let mut writer = Writer {
            next_arrival: 1,
            ..Writer::default()
        };
        for item in store
            .db
            .iterator_cf(store.cf(CF_HEADS), IteratorMode::Start)
        {
            let (key, value) = item?;
            let origin = OriginKey::from_slice(&key).map_err(|error| StoreError::Corrupt {
                what: "head key",
                reason: error.to_string(),
            })?;
            writer.heads.insert(origin, decode_head(&value)?);
        }
        if let Some(item) = store
            .db
            .iterator_cf(store.cf(CF_ARRIVAL), IteratorMode::End)
            .next()
        {
            let (key, _) = item?;
            writer.next_arrival = decode_u64(&key, "arrival key")? + 1;
        }
        for (key, value) in super::views::scan_cf(&store.db, store.cf(CF_META), META_NEXT_ID)? {
            let kind = key[META_NEXT_ID.len()..].first().copied().unwrap_or(0);
            writer.next_ids.insert(kind, decode_u64(&value, "next id")?);
        }
        writer.provisional = super::provisional::Provisional::load(store)?;
        Ok(writer)
    }
}

/// Seals `drafts` as the chain of `key` after `head`, each with a fresh salt.
fn seal_chain(
    key: &NodeKey,
    origin_org: Uuid,
    mut head: Head,
    drafts: Vec<Draft>,
    time_ms: i64,
) -> Result<Vec<VerifiedEntry>, StoreError> {
    let mut rng = rand::thread_rng();
    let mut entries = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let mut salt = [0u8; SALT_BYTES];
        rng.fill_bytes(&mut salt);
        let entry = seal(key, origin_org, &head, draft, time_ms, salt)?;
        head = Head::after(&entry);
        entries.push(entry);
    }
    Ok(entries)
}

/// Heads of chains as sealed ahead of the writer: an append seals on the head the previous
/// append sealed, which the writer state reaches only once that one is reduced.
#[derive(Debug, Default)]
pub(crate) struct Sealer {
    /// Each origin's head after the last sealed batch, with the seal generation it was
    /// sealed in; an entry of an older generation is read again from the writer.
    heads: HashMap<OriginKey, (Head, u64)>,
}

fn decode_u64(bytes: &[u8], what: &'static str) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what,
        reason: format!("{} bytes, expected 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

/// Decodes a stored head: sequence (8) then hash (32).
pub(crate) fn decode_head(bytes: &[u8]) -> Result<Head, StoreError> {
    if bytes.len() != 40 {
        return Err(StoreError::Corrupt {
            what: "head",
            reason: format!("{} bytes, expected 40", bytes.len()),
        });
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes[8..]);
    Ok(Head {
        sequence: decode_u64(&bytes[..8], "head sequence")?,
        hash,
    })
}

fn encode_head(head: &Head) -> Vec<u8> {
    let mut out = head.sequence.to_be_bytes().to_vec();
    out.extend_from_slice(&head.hash);
    out
}

/// One item of a commit.
pub(crate) enum Commit<'a> {
    /// A new entry extending its origin's chain.
    Entry(&'a VerifiedEntry),
    /// A withheld entry now received in full; its stub is replaced.
    Reveal(&'a VerifiedEntry),
    /// A withheld entry's stub extending its origin's chain.
    Stub(&'a Stub),
    /// A stub extending its origin's chain that nothing authenticated yet, sent by the peer
    /// with this key.
    Provisional(&'a Stub, OriginKey),
    /// A change to a chain's provisional end (see `provisional.rs`).
    Chain(super::provisional::ChainChange),
}

/// What an append stored.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The entries, in chain order.
    pub entries: Vec<VerifiedEntry>,
}

impl Appended {
    /// Origin and sequence of each entry.
    pub fn ids(&self) -> Vec<EntryId> {
        self.entries.iter().map(VerifiedEntry::id).collect()
    }
}

/// How a commit's entries reach the views.
pub(crate) enum Views<'a> {
    /// This node's own entries: each is authorized (write authority, SPEC §4.2, against the
    /// views as the entries before it left them) and reduced as the commit is prepared, with
    /// the fields of the entry items parsed ahead, in order.
    Append(Vec<view::ParsedFields>),
    /// Entries already authorized on ingest, reduced as the commit is prepared.
    Reduce,
    /// Already reduced into this overlay, exactly the items' entries in order from the
    /// current state, with what each created: it is written instead.
    Applied(Box<BatchViews<'a>>, Vec<view::Touched>),
}

/// A batch prepared under the writer mutex and handed to the pipeline.
struct Prepared {
    /// Its place in the pipeline.
    ticket: u64,
    /// Everything it stores but the view changes.
    batch: WriteBatch,
    /// The view changes, added to the batch outside the writer mutex.
    views: Arc<Layer>,
    /// Layers of earlier batches the reducer read through, released outside the mutex.
    read_through: Vec<Arc<Layer>>,
    /// The arrival number of its last item.
    last_arrival: u64,
}

/// Where the view changes of a commit's entries come from (see [`Views`]).
enum Reduction {
    /// Reduced already: what each entry created, in order.
    Applied(std::vec::IntoIter<view::Touched>),
    /// Own entries: authorized, then reduced with their fields parsed ahead, in order.
    Append(std::vec::IntoIter<view::ParsedFields>),
    /// Reduced as the commit is prepared.
    Reduce,
}

/// The write batch a commit is building and the writer state it advances, applied to the
/// writer only once every item is in the batch.
struct Pending {
    /// Everything the commit stores but the view changes.
    batch: WriteBatch,
    /// The arrival number the next stored item gets.
    next_arrival: u64,
    /// The next local id per record kind.
    next_ids: HashMap<u8, u64>,
    /// Heads changed by the commit so far.
    heads: HashMap<OriginKey, Head>,
    /// Records given a local id by the commit so far.
    new_ids: foldhash::HashSet<Vec<u8>>,
    /// Publishes of the commit's entries.
    publishes: super::release::Publishes,
    /// Tree frontiers changed by the commit so far.
    trees: super::merkle::TreeBatch,
    /// Provisional changes of the commit so far.
    provisional: super::provisional::ProvisionalBatch,
}

impl Pending {
    /// The pending batch as the provisional-chain steps take it, over `writer`'s state.
    fn preparing<'a>(&'a mut self, writer: &'a Writer) -> super::provisional::Preparing<'a> {
        super::provisional::Preparing {
            batch: &mut self.batch,
            next_arrival: &mut self.next_arrival,
            heads: &mut self.heads,
            base_heads: &writer.heads,
            trees: &mut self.trees,
            base_trees: &writer.trees,
            provisional: &mut self.provisional,
            base_provisional: &writer.provisional,
        }
    }
}

/// Bytes reserved up front for the batch of `items` with `views`: growing a batch of
/// megabytes copies it again at each doubling.
fn batch_capacity_bytes(items: &[Commit<'_>], views: &BatchViews<'_>) -> usize {
    let entry_bytes: usize = items
        .iter()
        .map(|item| match item {
            Commit::Entry(entry) | Commit::Reveal(entry) => entry.stored().len(),
            Commit::Stub(_) | Commit::Provisional(..) | Commit::Chain(_) => 0,
        })
        .sum();
    entry_bytes * BATCH_BYTES_PER_ENTRY_BYTE + views.bytes() + BATCH_BYTES_BASE
}

impl Store {
    /// Seals `drafts` as the next entries of `key`'s chain and stores them, with their view
    /// changes, in one durable write: all or none. Each entry must pass write authority
    /// (SPEC §4.2), decided under the writer mutex against the views as every batch before
    /// it left them, so that of two concurrent writes only the one the rules allow is
    /// stored; otherwise nothing is stored and [`StoreError::Refused`] says why. Three stages
    /// overlap across concurrent
    /// appends: sealing (signing) under the sealer mutex, on the head the previous batch
    /// sealed; reducing under the writer mutex, which a batch takes before it releases the
    /// sealer, so batches are reduced in the order they were sealed; and the write, in that
    /// same order, outside both.
    pub fn append(
        &self,
        key: &NodeKey,
        origin_org: Uuid,
        drafts: Vec<Draft>,
        time_ms: i64,
    ) -> Result<Appended, StoreError> {
        let origin = key.origin();
        let parsed = drafts
            .iter()
            .map(|draft| view::ParsedFields::of(&draft.ops))
            .collect();
        let (entries, prepared) = {
            let mut sealer = self.sealer.lock().unwrap_or_else(PoisonError::into_inner);
            let generation = self.seal_generation.load(Ordering::Acquire);
            let base = match sealer.heads.get(&origin) {
                Some((head, sealed_in)) if *sealed_in == generation => *head,
                _ => self.writer_lock_pipelined().head(&origin),
            };
            let mut entries = seal_chain(key, origin_org, base, drafts, time_ms)?;
            // Taken before the sealer is released, so batches reach the writer in the order
            // they were sealed.
            let mut writer = self.writer_lock_pipelined();
            let sealed_head = entries.last().map(Head::after).unwrap_or(base);
            sealer.heads.insert(origin, (sealed_head, generation));
            drop(sealer);
            if self.pipeline.failed() {
                self.settle(&mut writer);
                if self.pipeline.failed() {
                    return Err(StoreError::EarlierWriteFailed);
                }
            }
            let head = writer.head(&origin);
            if head != base {
                // The chain is not where it was when sealing began: an earlier batch was
                // not stored, or entries of this origin arrived another way. Seal again on
                // the stored head, and make the next append read it too.
                self.seal_generation.fetch_add(1, Ordering::AcqRel);
                let drafts = entries.into_iter().map(VerifiedEntry::into_draft).collect();
                entries = seal_chain(key, origin_org, head, drafts, time_ms)?;
            }
            let items: Vec<Commit<'_>> = entries.iter().map(Commit::Entry).collect();
            match self.prepare(&mut writer, &items, &[], &[], Views::Append(parsed)) {
                Ok(prepared) => (entries, prepared),
                Err(error) => {
                    // Nothing was stored: the next append seals on the stored head, not on
                    // the one this batch sealed.
                    self.seal_generation.fetch_add(1, Ordering::AcqRel);
                    return Err(error);
                }
            }
        };
        self.write_prepared(prepared)?;
        Ok(Appended { entries })
    }

    /// Stores `items` (new entries, revealed entries that replace their stubs, and stubs) and
    /// the node-local pairs `local`, with every view change, in one synced write.
    pub(crate) fn commit_items(
        &self,
        writer: &mut Writer,
        items: &[Commit<'_>],
        local: &[(Vec<u8>, Vec<u8>)],
        views: Views<'_>,
    ) -> Result<(), StoreError> {
        let prepared = self.prepare(writer, items, local, &[], views)?;
        self.write_prepared(prepared)
    }

    /// Writes the node-local pairs `local` and gives the record `kind`/`key` a local id if it
    /// has none, in one synced write in turn with appends; returns the id. Node-local records
    /// (tag definitions) are numbered in the same series as the records of the log.
    pub fn put_local_numbered(
        &self,
        kind: RecordKind,
        key: &[u8],
        local: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<u64, StoreError> {
        let mut writer = self.writer_lock();
        let prepared = self.prepare(&mut writer, &[], local, &[(kind, key)], Views::Reduce)?;
        drop(writer);
        self.write_prepared(prepared)?;
        self.local_id(kind, key).ok_or(StoreError::Corrupt {
            what: "local id",
            reason: "a numbered write left no id".into(),
        })
    }

    /// Builds the write batch of `items` (see [`Store::commit_items`]), advances the writer
    /// state past them and hands the batch to the pipeline. If its write fails, the pipeline
    /// is marked failed and the writer state is reloaded before the writer is next used.
    fn prepare(
        &self,
        writer: &mut Writer,
        items: &[Commit<'_>],
        local: &[(Vec<u8>, Vec<u8>)],
        number: &[(RecordKind, &[u8])],
        views: Views<'_>,
    ) -> Result<Prepared, StoreError> {
        let (mut views, mut reduction) = match views {
            Views::Applied(views, touched) => (*views, Reduction::Applied(touched.into_iter())),
            Views::Append(parsed) => (BatchViews::new(self), Reduction::Append(parsed.into_iter())),
            Views::Reduce => (BatchViews::new(self), Reduction::Reduce),
        };
        let mut pending = Pending {
            batch: WriteBatch::with_capacity_bytes(batch_capacity_bytes(items, &views)),
            next_arrival: writer.next_arrival,
            next_ids: writer.next_ids.clone(),
            heads: HashMap::new(),
            new_ids: foldhash::HashSet::default(),
            publishes: super::release::Publishes::default(),
            trees: super::merkle::TreeBatch::default(),
            provisional: super::provisional::ProvisionalBatch::default(),
        };
        for item in items {
            self.prepare_item(writer, &mut pending, &mut views, &mut reduction, item)?;
        }
        for (kind, key) in number {
            let numbered = match kind {
                RecordKind::Tag => self.is_numbered(writer, key),
                _ => self.local_id(*kind, key).is_some(),
            };
            if !numbered {
                self.assign_id(
                    &mut pending.batch,
                    &mut pending.next_ids,
                    &mut pending.new_ids,
                    *kind,
                    key,
                );
            }
        }
        Ok(self.finish(writer, pending, local, views))
    }

    /// Adds `item` to the pending batch: its arrival, its chain head and Merkle leaf (unless
    /// it reveals a position the chain has), and the item itself; an entry with its view
    /// changes ([`Store::prepare_entry`]).
    fn prepare_item(
        &self,
        writer: &mut Writer,
        pending: &mut Pending,
        views: &mut BatchViews<'_>,
        reduction: &mut Reduction,
        item: &Commit<'_>,
    ) -> Result<(), StoreError> {
        let (id, head) = match item {
            Commit::Entry(entry) | Commit::Reveal(entry) => (entry.id(), Head::after(entry)),
            Commit::Stub(stub) | Commit::Provisional(stub, _) => (stub.id, stub.head()),
            Commit::Chain(change) => {
                return self.prepare_chain_change(&mut pending.preparing(writer), change);
            }
        };
        let key = log_key(&id.origin, id.sequence);
        let arrival = pending.next_arrival.to_be_bytes();
        pending.next_arrival += 1;
        pending.batch.put_cf(self.cf(CF_ARRIVAL), arrival, &key);
        // A reveal fills a position the chain (and the Merkle tree) already has.
        if !matches!(item, Commit::Reveal(_)) {
            pending.heads.insert(id.origin, head);
            self.merkle_append(
                &mut pending.batch,
                &mut pending.trees,
                &writer.trees,
                id.origin,
                id.sequence,
                head.hash,
            )?;
        }
        let entry = match item {
            Commit::Stub(stub) => {
                pending
                    .batch
                    .put_cf(self.cf(CF_STUBS), &key, stub.encode_value());
                return Ok(());
            }
            Commit::Provisional(stub, sender) => {
                pending
                    .batch
                    .put_cf(self.cf(CF_STUBS), &key, stub.encode_value());
                let arrival = pending.next_arrival - 1;
                self.mark_provisional(&mut pending.preparing(writer), id, *sender, arrival);
                return Ok(());
            }
            Commit::Reveal(entry) => {
                pending.batch.delete_cf(self.cf(CF_STUBS), &key);
                entry
            }
            Commit::Entry(entry) => entry,
            Commit::Chain(_) => return Ok(()),
        };
        self.prepare_entry(writer, pending, views, reduction, entry, &key, &arrival)
    }

    /// Adds `entry`, stored under `key` with `arrival`, to the pending batch: the entry and
    /// its event index, after the write-authority check when the commit asks for it; then its
    /// publish, its view changes and a local id for every record it creates.
    #[allow(clippy::too_many_arguments)]
    fn prepare_entry(
        &self,
        writer: &mut Writer,
        pending: &mut Pending,
        views: &mut BatchViews<'_>,
        reduction: &mut Reduction,
        entry: &VerifiedEntry,
        key: &[u8],
        arrival: &[u8; 8],
    ) -> Result<(), StoreError> {
        pending.batch.put_cf(self.cf(CF_LOG), key, entry.stored());
        if let Some(event) = entry.event() {
            let mut event_key = event.as_bytes().to_vec();
            event_key.extend_from_slice(arrival);
            pending.batch.put_cf(self.cf(CF_EVENT_LOG), event_key, key);
        }
        if matches!(reduction, Reduction::Append(_)) {
            authority::authorize(entry, views, self.org_keys())?;
        }
        pending.publishes.note(self, entry)?;
        let touched = match reduction {
            Reduction::Applied(applied) => applied.next().unwrap_or_default(),
            Reduction::Append(parsed) => match parsed.next() {
                Some(fields) => view::apply_parsed(views, entry, fields)?,
                None => view::apply(views, entry)?,
            },
            Reduction::Reduce => view::apply(views, entry)?,
        };
        for (kind, record) in touched.records {
            // A tag is named again and again; other records are new when touched.
            if kind == RecordKind::Tag && self.is_numbered(writer, &record) {
                continue;
            }
            self.assign_id(
                &mut pending.batch,
                &mut pending.next_ids,
                &mut pending.new_ids,
                kind,
                &record,
            );
        }
        Ok(())
    }

    /// Completes the pending batch (publishes, one head per origin, the id counters, the
    /// node-local pairs `local`), advances the writer state past it and hands it with its
    /// view changes to the pipeline.
    fn finish(
        &self,
        writer: &mut Writer,
        mut pending: Pending,
        local: &[(Vec<u8>, Vec<u8>)],
        views: BatchViews<'_>,
    ) -> Prepared {
        let batch = &mut pending.batch;
        pending.publishes.write_into(self, batch);
        // One head per origin: the last item's, as items extend chains in order.
        for (origin, head) in &pending.heads {
            batch.put_cf(self.cf(CF_HEADS), origin.0, encode_head(head));
        }
        for (kind, next) in &pending.next_ids {
            let mut key = META_NEXT_ID.to_vec();
            key.push(*kind);
            batch.put_cf(self.cf(CF_META), key, next.to_be_bytes());
        }
        for (key, value) in local {
            batch.put_cf(self.cf(CF_LOCAL), key, value);
        }
        writer.next_arrival = pending.next_arrival;
        writer.next_ids = pending.next_ids;
        writer.heads.extend(pending.heads);
        writer.trees.apply(pending.trees);
        writer.provisional.apply(pending.provisional);
        let (layer, read_through) = views.into_layer();
        let (ticket, views) = self.pipeline.hand_over(layer);
        Prepared {
            ticket,
            batch: pending.batch,
            views,
            read_through,
            last_arrival: pending.next_arrival - 1,
        }
    }

    /// Writes a prepared batch, synced, in its turn; then wakes live-tail streams.
    fn write_prepared(&self, prepared: Prepared) -> Result<(), StoreError> {
        let Prepared {
            ticket,
            mut batch,
            views,
            read_through,
            last_arrival,
        } = prepared;
        drop(read_through);
        write_layer(self, &views, &mut batch);
        self.pipeline
            .write(ticket, || {
                let mut options = WriteOptions::default();
                options.set_sync(true);
                self.db.write_opt(batch, &options)?;
                // In turn, so the announced arrival never goes back; no receiver is not an
                // error.
                self.arrivals.send_replace(last_arrival);
                Ok(())
            })
            .map_err(|failure| match failure {
                WriteFailure::Write(error) => error,
                WriteFailure::Earlier => StoreError::EarlierWriteFailed,
            })
    }

    /// Whether the tag `name` has a local id, stored or in a batch still in the pipeline;
    /// if not, notes it as numbered by the batch being prepared.
    fn is_numbered(&self, writer: &mut Writer, name: &[u8]) -> bool {
        if writer.numbered_tags.contains(name) || self.local_id(RecordKind::Tag, name).is_some() {
            return true;
        }
        writer.numbered_tags.insert(name.to_vec());
        false
    }

    /// Gives a record its local numeric id when it is created.
    fn assign_id(
        &self,
        batch: &mut WriteBatch,
        next_ids: &mut HashMap<u8, u64>,
        new_ids: &mut foldhash::HashSet<Vec<u8>>,
        kind: RecordKind,
        record: &[u8],
    ) {
        let mut id_key = vec![kind as u8];
        id_key.extend_from_slice(record);
        // Only records new to the views get here, and a record never leaves the views once
        // created (erasures and tombstones keep it buried, and a tombstoned event's children
        // cannot come back), so it has no id yet unless this batch gave it one.
        if new_ids.contains(&id_key) {
            return;
        }
        let next = next_ids.entry(kind as u8).or_insert(1);
        let id = *next;
        *next += 1;
        let mut reverse = vec![b'#', kind as u8];
        reverse.extend_from_slice(&id.to_be_bytes());
        batch.put_cf(self.cf(CF_IDS), &id_key, id.to_be_bytes());
        batch.put_cf(self.cf(CF_IDS), reverse, record);
        new_ids.insert(id_key);
    }
}
