//! Provisional stubs (SPEC §7, "stubs are authenticated"). A stub is only a claim about a
//! withheld entry's hash unless something its origin signed vouches for it. A stub is
//! **final** when it came from its origin itself (the sender is authenticated by mutual TLS),
//! with an inclusion proof in a checkpoint its origin signed, when a validly signed entry of
//! the origin chains right after it (the entry's signed `prev_hash`), or when a checkpoint of
//! the origin agrees with the held tree covering it. A signed entry vouches for one position
//! only: a stub's `prev_hash` is not covered by its hash, so an entry that would follow two or
//! more provisional stubs waits (is refused without blame) until they are confirmed or
//! replaced. Anything else is **provisional**, kept with the peer that sent it in column
//! family `provisional`:
//!
//! `origin (32) ‖ sequence (8, big-endian)` → `sender key (32) ‖ arrival (8, big-endian)`.
//!
//! Finality is prefix-closed: an origin's provisional stubs are always the end of its chain
//! (an entry placed after them makes them final), so a provisional region is just the first
//! provisional sequence. Provisional stubs are never relayed; when they become final they
//! get a new arrival number, so that producers send them then, in chain order. An
//! authenticated item at a provisional position with another hash **replaces** the stub: the
//! provisional end of the chain from there is dropped (stubs, marks, arrivals and the Merkle
//! subtrees over them), and the peer that sent the stub is charged.

use rocksdb::{IteratorMode, WriteBatch};
use std::collections::{HashMap, HashSet};

use super::merkle::{TreeBatch, Trees};
use super::{log_key, Store, StoreError, CF_ARRIVAL, CF_PROVISIONAL, CF_STUBS};
use crate::log::{EntryHash, EntryId, Head, OriginKey};

/// Most provisional stubs held from one peer at a time. Past it, the peer's unauthenticated
/// stubs wait (are refused without blame) until earlier ones become final or are replaced:
/// an honest relay's unproven stubs become final within a checkpoint interval of their
/// origin, while a peer inventing stubs cannot grow this node's storage without bound.
pub const PROVISIONAL_STUBS_PER_PEER_MAX: u64 = 100_000;

/// Local key prefix of the count of origins each peer introduced: `introduced/ ‖ key hex` →
/// count (8, big-endian).
const LOCAL_INTRODUCED: &str = "introduced/";

/// Bytes of a provisional mark: sender key then arrival number.
const MARK_BYTES: usize = 40;

/// Who sent the items of an ingest, and what authenticates its stubs.
#[derive(Clone, Debug)]
pub struct Source {
    /// The sending peer, authenticated by mutual TLS: its stubs of its own origin are final,
    /// it is remembered with its provisional stubs and charged when one proves false.
    pub peer: OriginKey,
    /// Positions whose stub came with an inclusion proof that verified against a checkpoint
    /// its origin signed.
    pub proven: HashSet<EntryId>,
    /// Most origins new to this node the peer may introduce (`sync.origins_per_peer_max`);
    /// its own origin is not counted.
    pub origins_max: u64,
}

impl Source {
    /// A source that proved nothing, with no room for new origins but its own.
    pub fn peer(peer: OriginKey) -> Source {
        Source {
            peer,
            proven: HashSet::new(),
            origins_max: 0,
        }
    }
}

/// A peer whose provisional stub turned out false: an authenticated item with another hash
/// replaced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    /// The peer that sent the stub.
    pub peer: OriginKey,
    /// The stub's position.
    pub id: EntryId,
    /// The hash the stub claimed.
    pub claimed: EntryHash,
    /// The hash of the authenticated item that replaced it.
    pub authentic: EntryHash,
}

/// What a provisional mark records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// The peer that sent the stub.
    pub sender: OriginKey,
    /// The stub's arrival number.
    pub arrival: u64,
}

impl Mark {
    fn encode(&self) -> [u8; MARK_BYTES] {
        let mut out = [0u8; MARK_BYTES];
        out[..32].copy_from_slice(&self.sender.0);
        out[32..].copy_from_slice(&self.arrival.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Mark, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "provisional mark",
            reason: format!("{} bytes, expected {MARK_BYTES}", bytes.len()),
        };
        if bytes.len() != MARK_BYTES {
            return Err(corrupt());
        }
        Ok(Mark {
            sender: OriginKey::from_slice(&bytes[..32]).map_err(|_| corrupt())?,
            arrival: u64::from_be_bytes(bytes[32..].try_into().map_err(|_| corrupt())?),
        })
    }
}

/// The writer's view of provisional stubs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Provisional {
    /// The first provisional sequence of each origin that has one; everything from there to
    /// the origin's head is provisional too.
    first: HashMap<OriginKey, u64>,
    /// Provisional stubs held per sender.
    per_sender: HashMap<OriginKey, u64>,
}

impl Provisional {
    /// Reads every mark (a short list: marks go as stubs become final).
    pub(crate) fn load(store: &Store) -> Result<Provisional, StoreError> {
        let mut state = Provisional::default();
        for item in store
            .db
            .iterator_cf(store.cf(CF_PROVISIONAL), IteratorMode::Start)
        {
            let (key, value) = item?;
            let id = super::decode_log_key(&key)?;
            let mark = Mark::decode(&value)?;
            let first = state.first.entry(id.origin).or_insert(id.sequence);
            *first = (*first).min(id.sequence);
            *state.per_sender.entry(mark.sender).or_default() += 1;
        }
        Ok(state)
    }

    /// The first provisional sequence of `origin`, if it has any.
    pub(crate) fn first(&self, origin: &OriginKey) -> Option<u64> {
        self.first.get(origin).copied()
    }

    /// Provisional stubs held from `sender`.
    pub(crate) fn count(&self, sender: &OriginKey) -> u64 {
        self.per_sender.get(sender).copied().unwrap_or(0)
    }

    /// Takes the changes of a committed batch.
    pub(crate) fn apply(&mut self, batch: ProvisionalBatch) {
        for (origin, first) in batch.first {
            match first {
                Some(first) => self.first.insert(origin, first),
                None => self.first.remove(&origin),
            };
        }
        for (sender, count) in batch.per_sender {
            match count {
                0 => self.per_sender.remove(&sender),
                count => self.per_sender.insert(sender, count),
            };
        }
    }
}

/// The provisional changes one commit makes, copied on first touch so that a failed write
/// leaves the writer's state as it was.
#[derive(Debug, Default)]
pub(crate) struct ProvisionalBatch {
    /// New first provisional sequence of each touched origin (`None`: none left).
    first: HashMap<OriginKey, Option<u64>>,
    /// New count of each touched sender.
    per_sender: HashMap<OriginKey, u64>,
    /// Marks written by this batch, which the database does not hold yet.
    marks: HashMap<EntryId, Mark>,
}

impl ProvisionalBatch {
    fn first(&self, base: &Provisional, origin: &OriginKey) -> Option<u64> {
        match self.first.get(origin) {
            Some(first) => *first,
            None => base.first(origin),
        }
    }

    fn add(&mut self, base: &Provisional, sender: OriginKey, delta: i64) {
        let count = self
            .per_sender
            .entry(sender)
            .or_insert_with(|| base.count(&sender));
        *count = count.saturating_add_signed(delta);
    }
}

/// A change to an origin's chain that is not an item: see [`super::append::Commit`].
pub(crate) enum ChainChange {
    /// The provisional stubs of `origin` up to `through` became final.
    Confirm {
        /// The origin.
        origin: OriginKey,
        /// The last sequence confirmed.
        through: u64,
    },
    /// The provisional end of `origin`'s chain after `head` is dropped.
    Rewind {
        /// The origin.
        origin: OriginKey,
        /// The head kept.
        head: Head,
    },
}

/// What a chain change needs of the commit being prepared.
pub(crate) struct Preparing<'a> {
    /// The batch.
    pub batch: &'a mut WriteBatch,
    /// The arrival number the next stored item gets.
    pub next_arrival: &'a mut u64,
    /// Heads changed by the commit so far.
    pub heads: &'a mut HashMap<OriginKey, Head>,
    /// The writer's heads before the commit.
    pub base_heads: &'a HashMap<OriginKey, Head>,
    /// Tree frontiers changed by the commit so far.
    pub trees: &'a mut TreeBatch,
    /// The writer's trees before the commit.
    pub base_trees: &'a Trees,
    /// Provisional changes of the commit so far.
    pub provisional: &'a mut ProvisionalBatch,
    /// The writer's provisional state before the commit.
    pub base_provisional: &'a Provisional,
}

impl Preparing<'_> {
    fn head(&self, origin: &OriginKey) -> Head {
        self.heads
            .get(origin)
            .or_else(|| self.base_heads.get(origin))
            .copied()
            .unwrap_or(Head::EMPTY)
    }
}

impl Store {
    /// Whether the stub at `id` is provisional (never relayed until it is final).
    pub fn is_provisional(&self, id: &EntryId) -> Result<bool, StoreError> {
        let key = log_key(&id.origin, id.sequence);
        Ok(self
            .db
            .get_pinned_cf(self.cf(CF_PROVISIONAL), key)?
            .is_some())
    }

    /// How many of `origin`'s first entries are held final (entries and authenticated stubs):
    /// its head, unless provisional stubs end its chain.
    pub fn final_length(&self, origin: &OriginKey) -> u64 {
        let writer = self.writer_lock();
        match writer.provisional.first(origin) {
            Some(first) => first - 1,
            None => writer.heads.get(origin).map_or(0, |head| head.sequence),
        }
    }

    /// The peer that sent the provisional stub at `id`, if it is one.
    pub(crate) fn provisional_mark(&self, id: &EntryId) -> Result<Option<Mark>, StoreError> {
        let key = log_key(&id.origin, id.sequence);
        self.db
            .get_cf(self.cf(CF_PROVISIONAL), key)?
            .map(|bytes| Mark::decode(&bytes))
            .transpose()
    }

    /// How many origins new to this node `peer` has introduced.
    pub fn origins_introduced(&self, peer: &OriginKey) -> Result<u64, StoreError> {
        Ok(self
            .local(&introduced_key(peer))?
            .and_then(|bytes| bytes.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Marks the stub just stored at `id` (with arrival `arrival`) provisional, sent by
    /// `sender`.
    pub(crate) fn mark_provisional(
        &self,
        preparing: &mut Preparing<'_>,
        id: EntryId,
        sender: OriginKey,
        arrival: u64,
    ) {
        let mark = Mark { sender, arrival };
        let key = log_key(&id.origin, id.sequence);
        preparing
            .batch
            .put_cf(self.cf(CF_PROVISIONAL), key, mark.encode());
        let base = preparing.base_provisional;
        let batch = &mut *preparing.provisional;
        if batch.first(base, &id.origin).is_none() {
            batch.first.insert(id.origin, Some(id.sequence));
        }
        batch.add(base, sender, 1);
        batch.marks.insert(id, mark);
    }

    /// Removes the mark of `id`, if it has one, with the arrival it was stored under (its
    /// entry, just revealed, has a new one). Returns the mark.
    pub(crate) fn unmark(
        &self,
        preparing: &mut Preparing<'_>,
        id: EntryId,
    ) -> Result<Option<Mark>, StoreError> {
        let mark = match preparing.provisional.marks.remove(&id) {
            Some(mark) => Some(mark),
            None => self.provisional_mark(&id)?,
        };
        if let Some(mark) = mark {
            let key = log_key(&id.origin, id.sequence);
            preparing
                .batch
                .delete_cf(self.cf(CF_ARRIVAL), mark.arrival.to_be_bytes());
            preparing.batch.delete_cf(self.cf(CF_PROVISIONAL), key);
            preparing
                .provisional
                .add(preparing.base_provisional, mark.sender, -1);
        }
        Ok(mark)
    }

    /// Adds `change` to the commit being prepared.
    pub(crate) fn prepare_chain_change(
        &self,
        preparing: &mut Preparing<'_>,
        change: &ChainChange,
    ) -> Result<(), StoreError> {
        match *change {
            ChainChange::Confirm { origin, through } => self.confirm(preparing, origin, through),
            ChainChange::Rewind { origin, head } => self.rewind(preparing, origin, head),
        }
    }

    /// Makes `origin`'s provisional stubs up to `through` final: their marks go, and each
    /// gets a new arrival, in chain order, so that producers now send them.
    fn confirm(
        &self,
        preparing: &mut Preparing<'_>,
        origin: OriginKey,
        through: u64,
    ) -> Result<(), StoreError> {
        let Some(first) = preparing
            .provisional
            .first(preparing.base_provisional, &origin)
        else {
            return Ok(());
        };
        let head = preparing.head(&origin).sequence;
        let through = through.min(head);
        for sequence in first..=through {
            let id = EntryId { origin, sequence };
            if self.unmark(preparing, id)?.is_none() {
                return Err(missing_mark(&id));
            }
            let arrival = *preparing.next_arrival;
            *preparing.next_arrival += 1;
            preparing.batch.put_cf(
                self.cf(CF_ARRIVAL),
                arrival.to_be_bytes(),
                log_key(&origin, sequence),
            );
        }
        let remaining = (through < head).then_some(through.max(first - 1) + 1);
        preparing.provisional.first.insert(origin, remaining);
        Ok(())
    }

    /// Drops `origin`'s chain after `head` (only provisional stubs can be there): stubs,
    /// marks, their arrivals and every stored Merkle subtree over them; the tree's right edge
    /// is read again from the subtrees kept.
    fn rewind(
        &self,
        preparing: &mut Preparing<'_>,
        origin: OriginKey,
        head: Head,
    ) -> Result<(), StoreError> {
        let old = preparing.head(&origin).sequence;
        for sequence in head.sequence + 1..=old {
            let id = EntryId { origin, sequence };
            if self.unmark(preparing, id)?.is_none() {
                return Err(missing_mark(&id));
            }
            preparing
                .batch
                .delete_cf(self.cf(CF_STUBS), log_key(&origin, sequence));
        }
        self.merkle_rewind(
            preparing.batch,
            preparing.trees,
            preparing.base_trees,
            origin,
            head.sequence,
        )?;
        let first = preparing
            .provisional
            .first(preparing.base_provisional, &origin)
            .filter(|first| *first <= head.sequence);
        preparing.provisional.first.insert(origin, first);
        preparing.heads.insert(origin, head);
        Ok(())
    }
}

/// The local key of the count of origins `peer` introduced.
pub(crate) fn introduced_key(peer: &OriginKey) -> Vec<u8> {
    format!("{LOCAL_INTRODUCED}{peer}").into_bytes()
}

fn missing_mark(id: &EntryId) -> StoreError {
    StoreError::Corrupt {
        what: "provisional mark",
        reason: format!("{id} is in an origin's provisional end but has no mark"),
    }
}
