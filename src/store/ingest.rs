//! Ingesting other origins' entries and stubs (SPEC §7), and reading the log in arrival order
//! for peers. Chain links, duplicates, late reveals and equivocation are decided here, under
//! the writer lock; policy checks that need the views are the caller's, run against the
//! views as they will be after the items before.

use rocksdb::{Direction, IteratorMode};
use std::collections::HashMap;

use super::append::{Commit, Views, Writer};
use super::provisional::{ChainChange, Charge, Mark, Provisional, Source};
use super::views::BatchViews;
use super::{
    log_key, Store, StoreError, CF_ARRIVAL, CF_LOG, CF_META, CF_STUBS,
    PROVISIONAL_STUBS_PER_PEER_MAX,
};
use crate::log::{EntryId, Head, LogError, OriginKey, Stub, VerifiedEntry};
use crate::policy::authority::{self, AuthorityError};
use crate::view::{self, ViewRead};

/// Meta key prefix of fork proofs: `fork/ ‖ origin` → [`ForkProof`] JSON.
const META_FORK: &[u8] = b"fork/";

/// An item received from a peer.
// Entries are moved and matched far more often than stubs are held; boxing them would cost
// an allocation per item on the sync path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Incoming {
    /// A full entry, verified.
    Entry(VerifiedEntry),
    /// A withheld entry's stub.
    Stub(Stub),
}

impl Incoming {
    /// The item's origin and sequence.
    pub fn id(&self) -> EntryId {
        match self {
            Incoming::Entry(entry) => entry.id(),
            Incoming::Stub(stub) => stub.id,
        }
    }
}

/// Why an item was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The item does not link to the origin's chain.
    #[error("{0}")]
    Chain(LogError),
    /// A full entry's hash differs from the stub held for its position.
    #[error("entry does not match the stub held for its position")]
    StubMismatch,
    /// The item cannot be placed yet, through no fault of the sender shown: for example a
    /// stub conflicting with a provisional one held for its position, where neither is
    /// authenticated, or an entry dated ahead of this node's clock by more than
    /// `sync.clock_skew_max_s`. It is offered again later, when it can be placed.
    #[error("{0}")]
    Deferred(String),
    /// The item's origin is new to this node and the sender already introduced as many new
    /// origins as it may.
    #[error(
        "origin is new to this node and this peer already introduced {max} new origins, its \
         limit (sync.origins_per_peer_max)"
    )]
    OriginLimit {
        /// The limit.
        max: u64,
    },
    /// Two validly signed entries with one origin and sequence: a fork proof was stored.
    #[error(
        "equivocation: a different entry with this origin and sequence is held (fork proof stored)"
    )]
    Fork,
    /// The origin equivocated before; nothing more of it is accepted.
    #[error("origin is refused after equivocating")]
    OriginRefused,
    /// An entry claims this node's own key but is not one of its entries.
    #[error("entry claims this node's own key")]
    OwnKey,
    /// Write authority (SPEC §4.2) refused the entry: its origin wrote what it may not.
    #[error("{0}")]
    Authority(crate::policy::authority::Refusal),
    /// The caller's policy check refused the entry.
    #[error("{0}")]
    Policy(String),
}

impl Rejection {
    /// Whether the sender is not to blame: the item waits for something else to arrive.
    pub fn is_deferred(&self) -> bool {
        matches!(self, Rejection::Deferred(_))
    }
}

/// A refused item and why.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{id}: {reason}")]
pub struct Rejected {
    /// The item.
    pub id: EntryId,
    /// Why.
    pub reason: Rejection,
}

/// What an ingest did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// New entries stored.
    pub entries: usize,
    /// Stubs replaced by their full entries.
    pub revealed: usize,
    /// New stubs stored.
    pub stubs: usize,
    /// Items already held.
    pub duplicates: usize,
    /// Provisional stubs replaced by an authenticated item with another hash.
    pub replaced: usize,
    /// The peers whose provisional stubs were replaced, to be charged with a violation.
    pub charges: Vec<Charge>,
    /// The item that stopped the ingest, if any; everything before it was stored.
    pub rejected: Option<Rejected>,
}

/// Two validly signed, different entries of one origin at one sequence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ForkProof {
    /// The origin (hex).
    pub origin: String,
    /// The sequence both entries claim.
    pub sequence: u64,
    /// The entry held first, base64 of its stored bytes.
    pub held: String,
    /// The conflicting entry, base64 of its stored bytes.
    pub received: String,
    /// When the fork was detected (ms since the epoch).
    pub detected_ms: i64,
}

/// A policy check run on each new or revealed entry that write authority allows, against the
/// views as the items before it left them.
pub type IngestCheck<'a> = dyn FnMut(&VerifiedEntry, &dyn ViewRead) -> Result<(), Rejection> + 'a;

/// What the log holds at one position.
// Entries are moved and matched far more often than stubs are held; boxing them would cost
// an allocation per item on the sync path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Held {
    /// The full entry.
    Entry(VerifiedEntry),
    /// Only its stub.
    Stub(Stub),
}

impl Held {
    fn hash(&self) -> [u8; 32] {
        match self {
            Held::Entry(entry) => entry.hash(),
            Held::Stub(stub) => stub.hash,
        }
    }
}

/// How an accepted item is committed.
#[derive(Clone, Copy)]
enum Mode {
    /// Extends its chain (an entry, or a final stub).
    New,
    /// Replaces the stub held for its position.
    Reveal,
    /// A stub extending its chain that nothing authenticated yet.
    Provisional,
}

/// One step of an ingest's commit, in order.
enum Step {
    /// Item `index` of the ingest.
    Item(usize, Mode),
    /// A change to a chain's provisional end.
    Chain(ChainChange),
}

/// The provisional ends of the chains an ingest touches and the source's counts, as the
/// items so far leave them.
struct Chains<'a> {
    /// Who sent the items.
    source: &'a Source,
    /// The writer's provisional state before the ingest.
    base: &'a Provisional,
    /// First provisional sequence of each origin the ingest touched (`None`: none).
    first: HashMap<OriginKey, Option<u64>>,
    /// Provisional stubs held from the source.
    from_source: u64,
    /// Origins new to this node the source introduced.
    introduced: u64,
}

impl Chains<'_> {
    fn first(&self, origin: &OriginKey) -> Option<u64> {
        match self.first.get(origin) {
            Some(first) => *first,
            None => self.base.first(origin),
        }
    }

    /// Whether `item` is authenticated by itself: an entry is signed; a stub is when its
    /// origin sent it or it came with a proof.
    fn authenticated(&self, item: &Incoming) -> bool {
        match item {
            Incoming::Entry(_) => true,
            Incoming::Stub(stub) => {
                stub.id.origin == self.source.peer || self.source.proven.contains(&stub.id)
            }
        }
    }

    /// Whether `item` vouches for the position before it: an entry's `prev_hash` is signed,
    /// and an origin's stub is its own word. It says nothing about earlier positions: a
    /// stub's own `prev_hash` is not covered by its hash.
    fn vouches_before(&self, item: &Incoming) -> bool {
        matches!(item, Incoming::Entry(_)) || item.id().origin == self.source.peer
    }

    /// Refuses for now an authenticated `item` that would confirm its origin's provisional
    /// stubs from `first` on, when they reach further back than the position before it:
    /// nothing signed vouches for those (SPEC §7), so they stay claims and the item waits
    /// until the origin's checkpoint confirms them or its entries replace them.
    fn waits_for_run(&self, item: &Incoming, first: Option<u64>) -> Result<(), Rejection> {
        let sequence = item.id().sequence;
        match first {
            Some(first) if first.saturating_add(1) < sequence => Err(Rejection::Deferred(format!(
                "unconfirmed stubs of its origin from sequence {first} come before it, and it \
                 vouches only for sequence {}; it waits until its origin's checkpoint confirms \
                 them or its entries replace them",
                sequence - 1
            ))),
            _ => Ok(()),
        }
    }
}

/// An ingest in progress: what its accepted items did so far.
struct Batch<'a> {
    /// The ingest's items.
    items: &'a [Incoming],
    /// The report so far.
    report: Ingested,
    /// Every origin's head as the items so far leave it.
    heads: HashMap<OriginKey, Head>,
    /// Provisional ends and the source's counts.
    chains: Chains<'a>,
    /// What the commit will do, in order.
    steps: Vec<Step>,
    /// Items placed by this call, which the database does not hold yet.
    placed: HashMap<EntryId, Held>,
}

impl<'a> Batch<'a> {
    /// Records item `index`, accepted at `placement`.
    fn accept(&mut self, index: usize, placement: Placement) {
        let item = &self.items[index];
        let id = item.id();
        let first = self.chains.first(&id.origin);
        let vouches = self.chains.vouches_before(item);
        match placement {
            Placement::Held => {
                self.report.duplicates += 1;
                // A duplicate that is authenticated makes its provisional twin final.
                if let Some(first) = first.filter(|first| id.sequence >= *first) {
                    let proven_next = self.chains.authenticated(item) && first == id.sequence;
                    // Its word reaches back one position only.
                    let vouched = vouches && first.saturating_add(1) >= id.sequence;
                    if vouched || proven_next {
                        self.confirm(&id.origin, id.sequence);
                    }
                }
            }
            Placement::Reveal => {
                self.report.revealed += 1;
                if first.is_some_and(|first| id.sequence >= first) {
                    self.confirm(&id.origin, id.sequence);
                }
                self.steps.push(Step::Item(index, Mode::Reveal));
                self.placed.insert(id, held(item));
            }
            Placement::Next { provisional } => {
                if !self.heads.contains_key(&id.origin) && id.origin != self.chains.source.peer {
                    self.chains.introduced += 1;
                }
                if !provisional && first.is_some() {
                    let head = self.head(&id.origin).sequence;
                    self.confirm(&id.origin, head);
                }
                self.extend(index, provisional);
            }
            Placement::Replace {
                kept,
                claimed,
                mark,
                provisional,
            } => {
                self.report.replaced += 1;
                self.report.charges.push(Charge {
                    peer: mark.sender,
                    id,
                    claimed,
                    authentic: held(item).hash(),
                });
                self.drop_from(&id);
                if vouches && first.is_some_and(|first| first < id.sequence) {
                    self.confirm(&id.origin, kept.sequence);
                }
                self.steps.push(Step::Chain(ChainChange::Rewind {
                    origin: id.origin,
                    head: kept,
                }));
                let still = self
                    .chains
                    .first(&id.origin)
                    .filter(|first| *first <= kept.sequence);
                self.chains.first.insert(id.origin, still);
                self.extend(index, provisional);
            }
        }
    }

    fn head(&self, origin: &OriginKey) -> Head {
        self.heads.get(origin).copied().unwrap_or(Head::EMPTY)
    }

    /// Makes `origin`'s provisional stubs up to `through` final.
    fn confirm(&mut self, origin: &OriginKey, through: u64) {
        self.steps.push(Step::Chain(ChainChange::Confirm {
            origin: *origin,
            through,
        }));
        let head = self.head(origin).sequence;
        let rest = (through < head).then_some(through + 1);
        self.chains.first.insert(*origin, rest);
    }

    /// Forgets this ingest's items at `id`'s position and after it (provisional stubs only:
    /// an entry would have made the position final).
    fn drop_from(&mut self, id: &EntryId) {
        let items = self.items;
        let dropped = |step: &Step| match step {
            Step::Item(other, _) => {
                let other = items[*other].id();
                other.origin == id.origin && other.sequence >= id.sequence
            }
            Step::Chain(_) => false,
        };
        let gone = self.steps.iter().filter(|step| dropped(step)).count();
        self.steps.retain(|step| !dropped(step));
        self.placed
            .retain(|other, _| other.origin != id.origin || other.sequence < id.sequence);
        self.report.stubs = self.report.stubs.saturating_sub(gone);
        self.chains.from_source = self.chains.from_source.saturating_sub(gone as u64);
    }

    /// Places item `index` at the end of its chain: final or provisional.
    fn extend(&mut self, index: usize, provisional: bool) {
        let item = &self.items[index];
        let id = item.id();
        if provisional {
            self.chains.from_source += 1;
            let first = self.chains.first(&id.origin).unwrap_or(id.sequence);
            self.chains.first.insert(id.origin, Some(first));
            self.steps.push(Step::Item(index, Mode::Provisional));
        } else {
            self.chains.first.insert(id.origin, None);
            self.steps.push(Step::Item(index, Mode::New));
        }
        match item {
            Incoming::Entry(_) => self.report.entries += 1,
            Incoming::Stub(_) => self.report.stubs += 1,
        }
        self.heads.insert(id.origin, after(item));
        self.placed.insert(id, held(item));
    }

    /// The commit's items, in order, with the views' `created` lists of its entries.
    fn commits(
        &mut self,
        touched: &mut HashMap<usize, view::Touched>,
    ) -> (Vec<Commit<'a>>, Vec<view::Touched>) {
        let items = self.items;
        let sender = self.chains.source.peer;
        let mut created = Vec::new();
        let commits = self
            .steps
            .drain(..)
            .map(|step| match step {
                Step::Item(index, mode) => {
                    if matches!(items[index], Incoming::Entry(_)) {
                        created.push(touched.remove(&index).unwrap_or_default());
                    }
                    match (&items[index], mode) {
                        (Incoming::Entry(entry), Mode::Reveal) => Commit::Reveal(entry),
                        (Incoming::Entry(entry), _) => Commit::Entry(entry),
                        (Incoming::Stub(stub), Mode::Provisional) => {
                            Commit::Provisional(stub, sender)
                        }
                        (Incoming::Stub(stub), _) => Commit::Stub(stub),
                    }
                }
                Step::Chain(change) => Commit::Chain(change),
            })
            .collect();
        (commits, created)
    }
}

/// The views overlay of an ingest: the accepted entries applied in order.
struct Overlay<'s> {
    /// The views as the accepted entries left them.
    views: BatchViews<'s>,
    /// What each applied entry created, by item index.
    touched: HashMap<usize, view::Touched>,
    /// Whether the overlay holds exactly the accepted entries' changes, so that the commit
    /// writes it as is: false once an entry failed half-way through applying.
    clean: bool,
}

/// What the log holds once `item` is placed.
fn held(item: &Incoming) -> Held {
    match item {
        Incoming::Entry(entry) => Held::Entry(entry.clone()),
        Incoming::Stub(stub) => Held::Stub(*stub),
    }
}

impl Store {
    /// Stores `items` from `source` in order, stopping at the first refused one; `local`
    /// pairs (a peer's cursor) are written with them only when every item is accepted.
    /// Each entry that would change the views must pass write authority (SPEC §4.2), then
    /// `check`. Stubs are final or provisional as `provisional.rs` describes; an
    /// authenticated item replaces a provisional stub with another hash, and the report names
    /// the peer to charge.
    pub fn ingest(
        &self,
        items: &[Incoming],
        source: &Source,
        local: &[(Vec<u8>, Vec<u8>)],
        check: &mut IngestCheck<'_>,
    ) -> Result<Ingested, StoreError> {
        let mut writer = self.writer_lock();
        let base = writer.provisional.clone();
        let introduced_before = self.origins_introduced(&source.peer)?;
        let mut batch = Batch {
            items,
            report: Ingested::default(),
            heads: writer.heads.clone(),
            chains: Chains {
                source,
                base: &base,
                first: HashMap::new(),
                from_source: base.count(&source.peer),
                introduced: introduced_before,
            },
            steps: Vec::new(),
            placed: HashMap::new(),
        };
        let mut overlay = Overlay {
            views: BatchViews::new(self),
            touched: HashMap::new(),
            clean: true,
        };
        for (index, item) in items.iter().enumerate() {
            let id = item.id();
            match self.admit(index, item, &batch, &mut overlay, check) {
                Ok(placement) => batch.accept(index, placement),
                Err(reason) => {
                    if let (Rejection::Fork, Incoming::Entry(entry)) = (&reason, item) {
                        self.store_fork_proof(entry)?;
                    }
                    batch.report.rejected = Some(Rejected { id, reason });
                    break;
                }
            }
        }
        self.commit_ingested(&mut writer, batch, overlay, local, introduced_before)
    }

    /// Places item `index` on its chain as `batch` has it so far; an entry that changes the
    /// views must then pass write authority (SPEC §4.2) and `check`, and is applied to the
    /// overlay.
    fn admit(
        &self,
        index: usize,
        item: &Incoming,
        batch: &Batch<'_>,
        overlay: &mut Overlay<'_>,
        check: &mut IngestCheck<'_>,
    ) -> Result<Placement, Rejection> {
        let head = batch.head(&item.id().origin);
        let placement = self.place(item, &head, &batch.placed, &batch.chains)?;
        let Incoming::Entry(entry) = item else {
            return Ok(placement);
        };
        if matches!(placement, Placement::Held) {
            return Ok(placement);
        }
        authority::authorize(entry, &overlay.views, self.org_keys()).map_err(
            |error| match error {
                AuthorityError::Refused(refusal) => Rejection::Authority(refusal),
                AuthorityError::Views(error) => Rejection::Policy(error.to_string()),
            },
        )?;
        check(entry, &overlay.views)?;
        match view::apply(&mut overlay.views, entry) {
            Ok(created) => {
                overlay.touched.insert(index, created);
                Ok(placement)
            }
            Err(error) => {
                overlay.clean = false;
                Err(Rejection::Policy(error.to_string()))
            }
        }
    }

    /// Commits what `batch` accepted in one write: its items with the overlay's view changes
    /// (reduced afresh if the overlay is not clean), the `local` pairs only when no item was
    /// refused, and the count of origins the source introduced when it changed from
    /// `introduced_before`. Then a stored checkpoint that agrees with a provisional end makes
    /// it final.
    fn commit_ingested(
        &self,
        writer: &mut Writer,
        mut batch: Batch<'_>,
        mut overlay: Overlay<'_>,
        local: &[(Vec<u8>, Vec<u8>)],
        introduced_before: u64,
    ) -> Result<Ingested, StoreError> {
        let introduced = batch.chains.introduced;
        let provisional: Vec<OriginKey> = batch
            .chains
            .first
            .iter()
            .filter(|(_, first)| first.is_some())
            .map(|(origin, _)| *origin)
            .collect();
        let (commits, created) = batch.commits(&mut overlay.touched);
        // The views overlay served the checks and holds exactly the accepted entries'
        // changes: the commit writes it.
        let views = match overlay.clean {
            true => Views::Applied(Box::new(overlay.views), created),
            false => Views::Reduce,
        };
        let mut local = match batch.report.rejected {
            None => local.to_vec(),
            Some(_) => Vec::new(),
        };
        if introduced != introduced_before {
            local.push((
                super::provisional::introduced_key(&batch.chains.source.peer),
                introduced.to_be_bytes().to_vec(),
            ));
        }
        if !commits.is_empty() || !local.is_empty() {
            self.commit_items(writer, &commits, &local, views)?;
        }
        // A stored checkpoint that now agrees with a provisional end makes it final.
        for origin in provisional {
            self.confirm_by_stored_checkpoint(writer, &origin)?;
        }
        Ok(batch.report)
    }

    /// Where `item` goes relative to its origin's chain ending at `head`.
    fn place(
        &self,
        item: &Incoming,
        head: &Head,
        placed: &HashMap<EntryId, Held>,
        chains: &Chains<'_>,
    ) -> Result<Placement, Rejection> {
        let id = item.id();
        if self.is_refused(&id.origin) {
            // What is held already changes nothing when seen again (an honest relay may send
            // it back); anything else of a refused origin is refused.
            let hash = match item {
                Incoming::Entry(entry) => entry.hash(),
                Incoming::Stub(stub) => stub.hash,
            };
            return match self.held(&id) {
                Ok(Some(held)) if held.hash() == hash => Ok(Placement::Held),
                _ => Err(Rejection::OriginRefused),
            };
        }
        let first = chains.first(&id.origin);
        if id.sequence > head.sequence {
            if self.own_origin.get() == Some(&id.origin) {
                return Err(Rejection::OwnKey);
            }
            match item {
                Incoming::Entry(entry) => head.check_next(entry),
                Incoming::Stub(stub) => stub.check_next(head),
            }
            .map_err(Rejection::Chain)?;
            let source = chains.source;
            let new_origin = *head == Head::EMPTY && id.origin != source.peer;
            if new_origin && chains.introduced >= source.origins_max {
                return Err(Rejection::OriginLimit {
                    max: source.origins_max,
                });
            }
            // It vouches for the position right before it only: earlier unconfirmed stubs
            // stay claims, so it waits until those are confirmed or replaced.
            if chains.vouches_before(item) {
                chains.waits_for_run(item, first)?;
            }
            // Final when it vouches for the chain before it, or is authenticated and follows
            // a final chain.
            let is_final =
                chains.vouches_before(item) || chains.authenticated(item) && first.is_none();
            let provisional = !is_final;
            if provisional && chains.from_source >= PROVISIONAL_STUBS_PER_PEER_MAX {
                return Err(Rejection::Deferred(format!(
                    "this peer already has {PROVISIONAL_STUBS_PER_PEER_MAX} unconfirmed stubs \
                     held here, the limit; its next stub waits until earlier ones are confirmed \
                     by their origins"
                )));
            }
            return Ok(Placement::Next { provisional });
        }
        let storage = |error: StoreError| Rejection::Policy(error.to_string());
        let in_call = placed.get(&id);
        let held = match in_call {
            Some(held) => Some(held.clone()),
            None => self.held(&id).map_err(storage)?,
        };
        let Some(held) = held else {
            return Err(Rejection::Chain(LogError::Sequence {
                expected_after: head.sequence,
                got: id.sequence,
            }));
        };
        let hash = match item {
            Incoming::Entry(entry) => entry.hash(),
            Incoming::Stub(stub) => stub.hash,
        };
        match (&held, item) {
            (Held::Entry(_), Incoming::Entry(_)) if held.hash() == hash => Ok(Placement::Held),
            (Held::Entry(_), Incoming::Entry(_)) => Err(Rejection::Fork),
            (_, Incoming::Stub(_)) if held.hash() == hash => Ok(Placement::Held),
            (Held::Stub(_), Incoming::Entry(_)) if held.hash() == hash => {
                chains.waits_for_run(item, first)?;
                Ok(Placement::Reveal)
            }
            (Held::Entry(_), _) => Err(Rejection::StubMismatch),
            (Held::Stub(claimed), _) => {
                let provisional = first.is_some_and(|first| id.sequence >= first);
                if !provisional || in_call.is_some() {
                    return Err(Rejection::StubMismatch);
                }
                if !chains.authenticated(item) {
                    return Err(Rejection::Deferred(
                        "stub conflicts with an unconfirmed stub held for its position and \
                         neither is authenticated; it waits for its origin's entry, checkpoint \
                         or a proven stub"
                            .into(),
                    ));
                }
                self.replacement(item, placed, chains, claimed.hash)
            }
        }
    }

    /// The replacement of the provisional stub at `item`'s position, whose hash was
    /// `claimed`, by `item`, which is authenticated: it must link to the chain before.
    fn replacement(
        &self,
        item: &Incoming,
        placed: &HashMap<EntryId, Held>,
        chains: &Chains<'_>,
        claimed: [u8; 32],
    ) -> Result<Placement, Rejection> {
        let storage = |error: StoreError| Rejection::Policy(error.to_string());
        let id = item.id();
        let kept = match id.sequence.saturating_sub(1) {
            0 => Head::EMPTY,
            previous => {
                let before = EntryId {
                    origin: id.origin,
                    sequence: previous,
                };
                let held = match placed.get(&before) {
                    Some(held) => Some(held.clone()),
                    None => self.held(&before).map_err(storage)?,
                };
                let held = held.ok_or(Rejection::Chain(LogError::Sequence {
                    expected_after: 0,
                    got: id.sequence,
                }))?;
                Head {
                    sequence: previous,
                    hash: held.hash(),
                }
            }
        };
        match item {
            Incoming::Entry(entry) => kept.check_next(entry),
            Incoming::Stub(stub) => stub.check_next(&kept),
        }
        .map_err(Rejection::Chain)?;
        let mark = self
            .provisional_mark(&id)
            .map_err(storage)?
            .ok_or(Rejection::StubMismatch)?;
        let first = chains.first(&id.origin);
        if chains.vouches_before(item) {
            chains.waits_for_run(item, first)?;
        }
        let provisional = !chains.vouches_before(item) && first.is_some_and(|f| f < id.sequence);
        Ok(Placement::Replace {
            kept,
            claimed,
            mark,
            provisional,
        })
    }

    /// What the log holds at `id`.
    pub fn held(&self, id: &EntryId) -> Result<Option<Held>, StoreError> {
        let key = log_key(&id.origin, id.sequence);
        self.held_at_key(&key, id)
    }

    fn held_at_key(&self, key: &[u8], id: &EntryId) -> Result<Option<Held>, StoreError> {
        if let Some(bytes) = self.db.get_cf(self.cf(CF_LOG), key)? {
            let entry =
                VerifiedEntry::from_store(bytes.into()).map_err(|error| StoreError::Corrupt {
                    what: "log entry",
                    reason: error.to_string(),
                })?;
            return Ok(Some(Held::Entry(entry)));
        }
        match self.db.get_cf(self.cf(CF_STUBS), key)? {
            Some(bytes) => Ok(Some(Held::Stub(Stub::decode_value(*id, &bytes).map_err(
                |error| StoreError::Corrupt {
                    what: "stub",
                    reason: error.to_string(),
                },
            )?))),
            None => Ok(None),
        }
    }

    /// Up to `limit` log positions after arrival number `cursor`: (arrival, origin, sequence).
    pub fn arrivals_after(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(u64, EntryId)>, StoreError> {
        let start = (cursor + 1).to_be_bytes();
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(CF_ARRIVAL),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item?;
            out.push((decode_arrival(&key)?, decode_log_key(&value)?));
        }
        Ok(out)
    }

    /// The last arrival number (0 when the log is empty).
    pub fn last_arrival(&self) -> u64 {
        *self.arrivals.borrow()
    }

    /// A receiver that changes whenever entries arrive, holding the last arrival number.
    pub fn subscribe_arrivals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.arrivals.subscribe()
    }

    /// The stub held at `id`, if the entry there was withheld.
    pub fn stub(&self, id: &EntryId) -> Result<Option<Stub>, StoreError> {
        let key = log_key(&id.origin, id.sequence);
        match self.db.get_cf(self.cf(CF_STUBS), key)? {
            Some(bytes) => Ok(Some(Stub::decode_value(*id, &bytes).map_err(|error| {
                StoreError::Corrupt {
                    what: "stub",
                    reason: error.to_string(),
                }
            })?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` positions held only as stubs, in key order.
    pub fn stubs(&self, limit: usize) -> Result<Vec<EntryId>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_STUBS), IteratorMode::Start) {
            if out.len() >= limit {
                break;
            }
            let (key, _) = item?;
            out.push(decode_log_key(&key)?);
        }
        Ok(out)
    }

    /// Whether `origin` equivocated and is refused.
    pub fn is_refused(&self, origin: &OriginKey) -> bool {
        let mut key = META_FORK.to_vec();
        key.extend_from_slice(&origin.0);
        matches!(self.db.get_cf(self.cf(CF_META), key), Ok(Some(_)))
    }

    /// Every stored fork proof.
    pub fn fork_proofs(&self) -> Result<Vec<ForkProof>, StoreError> {
        super::views::scan_cf(&self.db, self.cf(CF_META), META_FORK)?
            .into_iter()
            .map(|(_, value)| {
                serde_json::from_slice(&value).map_err(|error| StoreError::Corrupt {
                    what: "fork proof",
                    reason: error.to_string(),
                })
            })
            .collect()
    }

    fn store_fork_proof(&self, received: &VerifiedEntry) -> Result<(), StoreError> {
        use base64::Engine;
        let Some(Held::Entry(held)) = self.held(&received.id())? else {
            return Ok(());
        };
        let encode = |entry: &VerifiedEntry| {
            base64::engine::general_purpose::STANDARD.encode(entry.stored())
        };
        let proof = ForkProof {
            origin: received.origin().to_string(),
            sequence: received.sequence(),
            held: encode(&held),
            received: encode(received),
            detected_ms: self.now_ms(),
        };
        tracing::error!(
            origin = %received.origin(),
            sequence = received.sequence(),
            "equivocation: two different signed entries at one position; fork proof stored, origin refused"
        );
        let mut key = META_FORK.to_vec();
        key.extend_from_slice(&received.origin().0);
        // A proof serialises: it is strings and numbers.
        self.put_meta(&key, &serde_json::to_vec(&proof).expect("proof serialises"))
    }
}

/// Where an item goes.
enum Placement {
    /// Already held.
    Held,
    /// Extends the chain; a stub nothing authenticated yet is provisional.
    Next {
        /// Whether the stub is provisional.
        provisional: bool,
    },
    /// Replaces a stub with its entry.
    Reveal,
    /// Replaces a provisional stub with another hash: the provisional end of the chain from
    /// its position is dropped first.
    Replace {
        /// The head of the chain kept, just before the position.
        kept: Head,
        /// The hash the provisional stub claimed.
        claimed: [u8; 32],
        /// Who sent it.
        mark: Mark,
        /// Whether the replacing item, a proven stub after provisional ones, is provisional
        /// itself.
        provisional: bool,
    },
}

/// The head of a chain after `item`.
fn after(item: &Incoming) -> Head {
    match item {
        Incoming::Entry(entry) => Head::after(entry),
        Incoming::Stub(stub) => stub.head(),
    }
}

fn decode_arrival(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what: "arrival key",
        reason: format!("{} bytes, expected 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

/// Decodes `origin ‖ sequence`.
pub fn decode_log_key(bytes: &[u8]) -> Result<EntryId, StoreError> {
    let corrupt = || StoreError::Corrupt {
        what: "log key",
        reason: format!("{} bytes, expected 40", bytes.len()),
    };
    if bytes.len() != 40 {
        return Err(corrupt());
    }
    Ok(EntryId {
        origin: OriginKey::from_slice(&bytes[..32]).map_err(|_| corrupt())?,
        sequence: u64::from_be_bytes(bytes[32..].try_into().map_err(|_| corrupt())?),
    })
}
