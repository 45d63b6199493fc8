//! Ingesting other origins' entries and stubs (SPEC §7), and reading the log in arrival order
//! for peers. Chain links, duplicates, late reveals and equivocation are decided here, under
//! the writer lock; policy checks that need the views are the caller's, run against the
//! views as they will be after the items before.

use rocksdb::{Direction, IteratorMode};
use std::collections::HashMap;

use super::append::{Commit, Views};
use super::views::BatchViews;
use super::{log_key, Store, StoreError, CF_ARRIVAL, CF_LOG, CF_META, CF_STUBS};
use crate::log::{EntryId, Head, LogError, OriginKey, Stub, VerifiedEntry};
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
    /// The caller's policy check refused the entry.
    #[error("{0}")]
    Policy(String),
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

/// A policy check run on each new or revealed entry, against the views as the items before it
/// left them.
pub type IngestCheck<'a> = dyn FnMut(&VerifiedEntry, &dyn ViewRead) -> Result<(), String> + 'a;

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

impl Store {
    /// Stores `items` in order, stopping at the first refused one; `local` pairs (a peer's
    /// cursor) are written with them only when every item is accepted. `check` runs on each
    /// entry that would change the views.
    pub fn ingest(
        &self,
        items: &[Incoming],
        local: &[(Vec<u8>, Vec<u8>)],
        check: &mut IngestCheck<'_>,
    ) -> Result<Ingested, StoreError> {
        let mut writer = self.writer_lock();
        let mut report = Ingested::default();
        let mut heads = writer.heads.clone();
        let mut accepted: Vec<(usize, bool)> = Vec::new();
        let mut views = BatchViews::new(self);
        // Items placed by this call, which the database does not hold yet.
        let mut placed: HashMap<EntryId, Held> = HashMap::new();
        // What each applied entry created, by item index; the overlay is committed as is
        // unless an entry failed half-way through applying.
        let mut touched: HashMap<usize, view::Touched> = HashMap::new();
        let mut overlay_clean = true;
        for (index, item) in items.iter().enumerate() {
            let id = item.id();
            let head = heads.get(&id.origin).copied().unwrap_or(Head::EMPTY);
            let outcome = self.place(item, &head, &placed).and_then(|placement| {
                let Incoming::Entry(entry) = item else {
                    return Ok(placement);
                };
                if matches!(placement, Placement::Held) {
                    return Ok(placement);
                }
                check(entry, &views).map_err(Rejection::Policy)?;
                match view::apply(&mut views, entry) {
                    Ok(created) => {
                        touched.insert(index, created);
                        Ok(placement)
                    }
                    Err(error) => {
                        overlay_clean = false;
                        Err(Rejection::Policy(error.to_string()))
                    }
                }
            });
            if matches!(outcome, Ok(Placement::Next | Placement::Reveal)) {
                let held = match item {
                    Incoming::Entry(entry) => Held::Entry(entry.clone()),
                    Incoming::Stub(stub) => Held::Stub(*stub),
                };
                placed.insert(id, held);
            }
            match outcome {
                Ok(Placement::Held) => report.duplicates += 1,
                Ok(Placement::Next) => {
                    let head = match item {
                        Incoming::Entry(entry) => Head::after(entry),
                        Incoming::Stub(stub) => stub.head(),
                    };
                    heads.insert(id.origin, head);
                    match item {
                        Incoming::Entry(_) => report.entries += 1,
                        Incoming::Stub(_) => report.stubs += 1,
                    }
                    accepted.push((index, false));
                }
                Ok(Placement::Reveal) => {
                    report.revealed += 1;
                    accepted.push((index, true));
                }
                Err(Rejection::Fork) => {
                    if let Incoming::Entry(entry) = item {
                        self.store_fork_proof(entry)?;
                    }
                    report.rejected = Some(Rejected {
                        id,
                        reason: Rejection::Fork,
                    });
                    break;
                }
                Err(reason) => {
                    report.rejected = Some(Rejected { id, reason });
                    break;
                }
            }
        }
        // The views overlay served the checks and holds exactly the accepted entries'
        // changes: the commit writes it.
        let applied = overlay_clean.then(|| {
            let created = accepted
                .iter()
                .filter(|(index, _)| matches!(items[*index], Incoming::Entry(_)))
                .map(|(index, _)| touched.remove(index).unwrap_or_default())
                .collect();
            Views::Applied(Box::new(views), created)
        });
        let commits: Vec<Commit<'_>> = accepted
            .iter()
            .map(|(index, reveal)| match (&items[*index], reveal) {
                (Incoming::Entry(entry), true) => Commit::Reveal(entry),
                (Incoming::Entry(entry), false) => Commit::Entry(entry),
                (Incoming::Stub(stub), _) => Commit::Stub(stub),
            })
            .collect();
        let local = if report.rejected.is_none() {
            local
        } else {
            &[]
        };
        if !commits.is_empty() || !local.is_empty() {
            let views = applied.unwrap_or(Views::Reduce(Vec::new()));
            self.commit_items(&mut writer, &commits, local, views)?;
        }
        Ok(report)
    }

    /// Where `item` goes relative to its origin's chain ending at `head`.
    fn place(
        &self,
        item: &Incoming,
        head: &Head,
        placed: &HashMap<EntryId, Held>,
    ) -> Result<Placement, Rejection> {
        let id = item.id();
        if self.is_refused(&id.origin) {
            return Err(Rejection::OriginRefused);
        }
        if id.sequence > head.sequence {
            if self.own_origin.get() == Some(&id.origin) {
                return Err(Rejection::OwnKey);
            }
            match item {
                Incoming::Entry(entry) => head.check_next(entry),
                Incoming::Stub(stub) => stub.check_next(head),
            }
            .map_err(Rejection::Chain)?;
            return Ok(Placement::Next);
        }
        let held = match placed.get(&id) {
            Some(held) => Some(held.clone()),
            None => self
                .held(&id)
                .map_err(|error| Rejection::Policy(error.to_string()))?,
        };
        match (held, item) {
            (Some(Held::Entry(held)), Incoming::Entry(entry)) if held.hash() == entry.hash() => {
                Ok(Placement::Held)
            }
            (Some(Held::Entry(_)), Incoming::Entry(_)) => Err(Rejection::Fork),
            (Some(Held::Entry(held)), Incoming::Stub(stub)) if held.hash() == stub.hash => {
                Ok(Placement::Held)
            }
            (Some(Held::Stub(held)), Incoming::Stub(stub)) if held.hash == stub.hash => {
                Ok(Placement::Held)
            }
            (Some(Held::Stub(held)), Incoming::Entry(entry)) if held.hash == entry.hash() => {
                Ok(Placement::Reveal)
            }
            (Some(_), _) => Err(Rejection::StubMismatch),
            (None, _) => Err(Rejection::Chain(LogError::Sequence {
                expected_after: head.sequence,
                got: id.sequence,
            })),
        }
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
            detected_ms: crate::node::now_ms(),
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
    /// Extends the chain.
    Next,
    /// Replaces a stub with its entry.
    Reveal,
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
