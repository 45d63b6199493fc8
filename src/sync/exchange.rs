//! What a sync session exchanges, without its transport: the segments this node sends a peer, and what it
//! does with a segment a peer sends. Blocking (it reads and writes RocksDB): the gRPC transport
//! runs it on blocking threads, and nodes in one process can be driven with it directly.

use std::collections::HashMap;
use std::ops::Deref;
use uuid::Uuid;

use super::peer::{self, Peer};
use super::reach::stated_event_level;
use super::release::{Released, Releaser};
use super::{check, encode_proven_items, wire};
use crate::log::{EntryId, OriginKey};
use crate::node::Node;
use crate::policy::Party;
use crate::store::{Held, Incoming, Ingested, Publish, Rejection, Source, StoreError};

/// Withheld entries an outbox remembers, so that a publish later in the same stream can
/// reveal them at once. Past it, a publish looks up every earlier entry of its event.
const STUBS_REMEMBERED_MAX: usize = 100_000;

/// Why an exchange with a peer stopped: a received segment not wholly stored, or a peer this
/// node no longer serves.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The peer sent something this node refuses (recorded in the peer's status), or is no
    /// longer paired, or is quarantined.
    #[error("{0}")]
    Peer(String),
    /// An item cannot be judged yet, through no fault of the peer (dated ahead of this node's
    /// clock, waiting for its origin's checkpoint): it comes again later.
    #[error("{0}")]
    Deferred(String),
}

/// The party a peer is in release and check decisions.
pub fn party(peer: &Peer) -> Party {
    Party {
        node: peer.key,
        org: peer.org_uuid,
    }
}

/// The party this node is.
pub fn own_party(node: &Node) -> Party {
    Party {
        node: node.origin(),
        org: node.org.uuid,
    }
}

/// What this node sends one peer: its log in arrival order after a cursor, each entry
/// released, withheld (a stub with its inclusion proof) or revealed as the peer's rules say.
pub struct Outbox<N: Deref<Target = Node> + Clone> {
    /// The node: a reference, or an `Arc` for an outbox that moves between threads.
    node: N,
    /// The peer.
    peer: Peer,
    /// The peer's release decisions.
    releaser: Releaser<N>,
    /// Entries sent as stubs so far, with their arrival numbers, by event, to reveal when
    /// the event is published.
    stubbed: HashMap<Uuid, Vec<(u64, EntryId)>>,
    /// How many ids `stubbed` holds.
    remembered: usize,
    /// A stub was not remembered, for `STUBS_REMEMBERED_MAX`.
    forgot: bool,
    /// The arrival position the stream started after: what came before went in earlier
    /// streams, as entries or stubs.
    started: u64,
    /// Entries of a published event still to reveal, newest last: a segment reveals what
    /// fits, the next ones the rest.
    revealing: Vec<EntryId>,
    /// The arrival position sent up to.
    cursor: u64,
}

impl<N: Deref<Target = Node> + Clone> Outbox<N> {
    /// The outbox to `peer` after arrival position `cursor`.
    pub fn new(node: N, peer: Peer, cursor: u64) -> Self {
        Outbox {
            releaser: Releaser::new(node.clone(), party(&peer), peer.rules.clone()),
            node,
            peer,
            stubbed: HashMap::new(),
            remembered: 0,
            forgot: false,
            started: cursor,
            revealing: Vec::new(),
            cursor,
        }
    }

    /// The entries of `event` before arrival position `before` that the peer may hold only as
    /// stubs, in arrival order: those this stream withheld, and those earlier streams sent
    /// (or every earlier one, once this stream has forgotten some). Entries the peer already
    /// holds in full may be among them; it keeps one copy.
    fn withheld_before(&mut self, event: &Uuid, before: u64) -> Result<Vec<EntryId>, StoreError> {
        let remembered = self.stubbed.remove(event).unwrap_or_default();
        self.remembered -= remembered.len();
        if self.started == 0 && !self.forgot {
            return Ok(remembered.into_iter().map(|(_, id)| id).collect());
        }
        let mut earlier: Vec<(u64, EntryId)> = self
            .node
            .store
            .event_arrivals(event)?
            .into_iter()
            .filter(|(at, id)| {
                *at < before && (self.forgot || *at <= self.started) && id.origin != self.peer.key
            })
            .collect();
        earlier.extend(remembered);
        earlier.sort();
        earlier.dedup();
        Ok(earlier.into_iter().map(|(_, id)| id).collect())
    }

    /// The next segment, or `None` when the peer has been sent everything that arrived so
    /// far. A segment may hold no items (all it covered was withheld from the peer
    /// altogether); its cursor still moves on. Each segment is released under the peer's
    /// rules as they are now; a peer unpaired or quarantined since the last segment gets an
    /// [`ExchangeError::Peer`] instead, which ends its stream.
    pub fn next_segment(&mut self) -> Result<Option<wire::Segment>, ExchangeError> {
        let current = served_peer(&self.node, &self.peer.key)?;
        if current.rules != self.peer.rules {
            self.releaser.set_rules(current.rules.clone());
        }
        self.peer = current;
        self.releaser.refresh();
        let mut items = Vec::new();
        let mut bytes = 0usize;
        self.reveal(&mut items, &mut bytes)?;
        let positions = match self.revealing.is_empty() {
            true => self
                .node
                .store
                .arrivals_after(self.cursor, super::SEGMENT_ITEMS_MAX)?,
            false => Vec::new(),
        };
        if positions.is_empty() && items.is_empty() {
            return Ok(None);
        }
        let node = self.node.clone();
        let mut prover = Prover::new(&node, &self.peer.key);
        for (arrival, id) in positions {
            crate::turns::pause_point();
            self.cursor = arrival;
            let Some(held) = self.node.store.held(&id)? else {
                continue;
            };
            // A provisional stub is a peer's unconfirmed claim: passing it on would make this
            // node answer for it. It arrives again once final (or is replaced).
            if matches!(held, Held::Stub(_)) && self.node.store.is_provisional(&id)? {
                continue;
            }
            let event = match &held {
                Held::Entry(entry) => entry.event(),
                Held::Stub(_) => None,
            };
            let released = self.releaser.release(held)?;
            match &released {
                Released::Entry(entry) => {
                    bytes += entry.stored().len();
                    if let Some((event, _)) = Publish::of(entry) {
                        items.push(released.clone());
                        self.revealing = self.withheld_before(&event, arrival)?;
                        self.reveal(&mut items, &mut bytes)?;
                        if !self.revealing.is_empty() {
                            break;
                        }
                        continue;
                    }
                }
                Released::Stub(stub) => {
                    bytes += prover.prove(stub)?;
                    if let Some(event) = event {
                        if stub.id.origin != self.peer.key {
                            if self.remembered < STUBS_REMEMBERED_MAX {
                                self.stubbed
                                    .entry(event)
                                    .or_default()
                                    .push((arrival, stub.id));
                                self.remembered += 1;
                            } else {
                                self.forgot = true;
                            }
                        }
                    }
                }
            }
            items.push(released);
            if bytes >= super::SEGMENT_BYTES_MAX {
                break;
            }
        }
        if let Some(note) = self.own_checkpoint_for(&items)? {
            prover.notes.push(note);
        }
        let (certificates, revocations) =
            super::identity::attach(&self.node.store, &items, &self.peer.key)?;
        let segment = wire::Segment {
            items: encode_proven_items(&items, &prover.proofs),
            cursor: self.cursor,
            head_cursor: self.node.store.last_arrival(),
            head_time_ms: self.node.store.now_ms(),
            certificates,
            revocations,
            checkpoints: prover.notes,
        };
        Ok(Some(segment))
    }

    /// Adds to `items` the entries still to reveal that the peer may have now, newest first
    /// (the receiver judges each revealed entry by the event's latest state, which the newer
    /// entries carry), while the segment has room.
    fn reveal(&mut self, items: &mut Vec<Released>, bytes: &mut usize) -> Result<(), StoreError> {
        while *bytes < super::SEGMENT_BYTES_MAX && items.len() < super::SEGMENT_ITEMS_MAX {
            let Some(id) = self.revealing.pop() else {
                break;
            };
            if let Some(Held::Entry(entry)) = self.node.store.held(&id)? {
                if self.releaser.decide(&entry)?.is_ok() {
                    *bytes += entry.stored().len();
                    items.push(Released::Entry(entry));
                }
            }
        }
        Ok(())
    }

    /// A checkpoint of this node's own log covering its own stubs among `items`, signed now
    /// if the latest does not reach them. The peer holds those stubs as final (they come from
    /// their origin); with the checkpoint it can prove them to its own peers, which otherwise
    /// hold them as provisional claims (SPEC §7).
    fn own_checkpoint_for(&self, items: &[Released]) -> Result<Option<String>, StoreError> {
        let own = self.node.origin();
        let last = items
            .iter()
            .filter_map(|item| match item {
                Released::Stub(stub) if stub.id.origin == own => Some(stub.id.sequence),
                _ => None,
            })
            .max();
        let Some(last) = last else {
            return Ok(None);
        };
        let covering = |checkpoint: Option<(u64, String)>| {
            checkpoint.and_then(|(size, note)| (size >= last).then_some(note))
        };
        if let Some(note) = covering(self.node.store.latest_checkpoint(&own)?) {
            return Ok(Some(note));
        }
        Ok(covering(self.node.store.issue_checkpoint(self.node.key())?))
    }
}

/// Inclusion proofs for the stubs of one segment to one peer (SPEC §7): a stub of another
/// origin than the peer's and this node's is proven against the origin's checkpoint that
/// this node holds and agrees with, so that the peer can hold it as final.
struct Prover<'a> {
    /// The node.
    node: &'a Node,
    /// The peer: it holds its own entries.
    peer: OriginKey,
    /// The checkpoint each origin's stubs are proven against in this segment, if any.
    checkpoints: HashMap<OriginKey, Option<u64>>,
    /// The proofs, by stub.
    proofs: HashMap<EntryId, super::StubProof>,
    /// The checkpoint notes the proofs lead to.
    notes: Vec<String>,
}

impl<'a> Prover<'a> {
    fn new(node: &'a Node, peer: &OriginKey) -> Self {
        Prover {
            node,
            peer: *peer,
            checkpoints: HashMap::new(),
            proofs: HashMap::new(),
            notes: Vec::new(),
        }
    }

    /// Proves `stub` when a checkpoint covers it; returns the bytes that adds to the segment.
    fn prove(&mut self, stub: &crate::log::Stub) -> Result<usize, StoreError> {
        let origin = stub.id.origin;
        if origin == self.peer || origin == self.node.origin() {
            // The peer holds its own entries, and this node's own stubs are its word.
            return Ok(0);
        }
        let mut bytes = 0;
        let size = match self.checkpoints.get(&origin) {
            Some(size) => *size,
            None => {
                let chosen = self.node.store.proof_checkpoint(&origin)?;
                let size = chosen.map(|(size, note)| {
                    bytes += note.len();
                    self.notes.push(note);
                    size
                });
                self.checkpoints.insert(origin, size);
                size
            }
        };
        let Some(size) = size.filter(|size| stub.id.sequence <= *size) else {
            return Ok(bytes);
        };
        let hashes = self
            .node
            .store
            .inclusion_proof(&origin, stub.id.sequence, size)?;
        bytes += hashes.len() * 32;
        self.proofs.insert(stub.id, (size, hashes));
        Ok(bytes)
    }
}

/// Decodes, checks and stores one segment from `peer`, advancing its cursor when every item
/// is accepted. Rejections are recorded in the peer's status.
pub fn receive(
    node: &Node,
    peer: &Peer,
    segment: wire::Segment,
) -> Result<Ingested, ExchangeError> {
    let decoded = super::decode_segment(segment.items, &segment.checkpoints);
    let (items, decode_error) = (decoded.items, decoded.error);
    let sender = party(peer);
    let receiver = own_party(node);
    let cursor = if decode_error.is_none() && segment.cursor > 0 {
        vec![peer::cursor_pair(&peer.key, segment.cursor)]
    } else {
        vec![]
    };
    let clock = check::Clock {
        now_ms: node.store.now_ms(),
        skew_max_ms: i64::try_from(node.config.sync.clock_skew_max_s.saturating_mul(1000))
            .unwrap_or(i64::MAX),
    };
    // Certificates and revocations first: the entries are judged by them.
    if let Err(error) = super::identity::receive(
        &node.store,
        peer.key,
        &segment.certificates,
        &segment.revocations,
        &items,
    ) {
        let text = format!("rejected identity statement: {error}");
        record_failure(node, peer, &text)?;
        return Err(ExchangeError::Peer(text));
    }
    let mut judge = super::identity::Judge::new(&node.store);
    let source = Source {
        peer: peer.key,
        proven: decoded.proven,
        origins_max: node.config.sync.origins_per_peer_max,
    };
    let report = node
        .store
        .ingest(&items, &source, &cursor, &mut |entry, views| {
            judge.check(entry).map_err(Rejection::Policy)?;
            check::check_entry(sender, receiver, entry, views, clock)
        })?;
    charge(node, &report.charges);
    // The checkpoints the proofs led to are the origins' word: learn them as from a hello.
    for note in &decoded.checkpoints {
        super::checkpoints::accept_relayed(node, &peer.key, note);
    }
    let deferred = report
        .rejected
        .as_ref()
        .is_some_and(|rejected| rejected.reason.is_deferred());
    let last_time = items.iter().rev().find_map(|item| match item {
        Incoming::Entry(entry) => Some(entry.entry().time_ms),
        Incoming::Stub(_) => None,
    });
    let failure = match (&report.rejected, &decode_error) {
        (Some(rejected), _) => Some(format!("rejected {rejected}")),
        (None, Some(error)) => Some(format!("rejected undecodable item: {error}")),
        (None, None) => None,
    };
    let status = peer::update_status(&node.store, &peer.key, |status| {
        status.received += (report.entries + report.stubs + report.revealed) as u64;
        status.remote_head = status.remote_head.max(segment.head_cursor);
        status.remote_head_time_ms = segment.head_time_ms;
        if let Some(time) = last_time {
            status.received_time_ms = time;
        }
        match &failure {
            // Not the peer's fault (an entry dated ahead of this node's clock, a stub waiting
            // for its proof): shown, not counted, and the segment is sent again later.
            Some(text) if deferred => status.last_error = Some(text.clone()),
            Some(text) => count_failure(status, text, clock.now_ms),
            None => {
                // A deferral is shown only until the peer's next segment goes through; the
                // failures stay counted in their window.
                status.failures = status
                    .failure_window
                    .count(clock.now_ms, super::QUARANTINE_WINDOW_MS);
                if status.failures == 0 {
                    status.last_error = None;
                }
            }
        }
    })?;
    match failure {
        Some(text) if deferred => Err(ExchangeError::Deferred(text)),
        Some(text) => {
            tracing::warn!(peer = %peer.key, org = %peer.org_name, quarantined = status.quarantined, "{text}");
            Err(ExchangeError::Peer(text))
        }
        None => Ok(report),
    }
}

/// Counts one failure caused by the peer at `now_ms`: the last error, violations, and
/// quarantine after [`super::QUARANTINE_FAILURES`] within [`super::QUARANTINE_WINDOW_MS`].
fn count_failure(status: &mut peer::PeerStatus, text: &str, now_ms: i64) {
    if text.contains(check::VIOLATION) {
        status.violations += 1;
    }
    let (window, max) = (super::QUARANTINE_WINDOW_MS, super::QUARANTINE_FAILURES);
    let quarantine = status.failure_window.record(now_ms, window, max);
    status.failures = status.failure_window.count(now_ms, window);
    status.last_error = Some(text.to_string());
    if quarantine {
        status.quarantined = true;
        status.state = "quarantined".into();
    }
}

/// Charges the peers whose provisional stubs an authenticated item replaced with a policy
/// violation each (SPEC §7): they sent a stub for a position whose real entry differs.
fn charge(node: &Node, charges: &[crate::store::Charge]) {
    for charge in charges {
        let text = format!(
            "{}: stub {} sent by this peer claimed hash {}, but the origin's authenticated item \
             there has hash {}; the stub was replaced",
            check::VIOLATION,
            charge.id,
            hex::encode(charge.claimed),
            hex::encode(charge.authentic)
        );
        match peer::peer(&node.store, &charge.peer) {
            Ok(Some(peer)) => {
                if let Err(error) = record_failure(node, &peer, &text) {
                    tracing::error!(peer = %charge.peer, "recording a violation failed: {error}");
                }
            }
            // No longer paired: the stub is gone all the same.
            Ok(None) => tracing::warn!(peer = %charge.peer, "unpaired peer: {text}"),
            Err(error) => tracing::error!(peer = %charge.peer, "reading the peer failed: {error}"),
        }
    }
}

/// Records a failure caused by `peer` outside a segment's items, and logs it.
pub fn record_failure(node: &Node, peer: &Peer, text: &str) -> Result<(), StoreError> {
    let now_ms = node.store.now_ms();
    let status = peer::update_status(&node.store, &peer.key, |status| {
        count_failure(status, text, now_ms)
    })?;
    tracing::warn!(peer = %peer.key, org = %peer.org_name, quarantined = status.quarantined, "{text}");
    Ok(())
}

/// Stores the answer to this node's reveal request. The reveal is a head start: what it
/// cannot place yet (waiting for a checkpoint or a publish) the pull that follows brings, so
/// a deferral is not a failure; a refusal is.
pub fn receive_reveal(
    node: &Node,
    peer: &Peer,
    segment: wire::Segment,
) -> Result<(), ExchangeError> {
    match receive(node, peer, segment) {
        Ok(_) | Err(ExchangeError::Deferred(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The peer with node key `key` that this node serves: paired, and not quarantined.
pub fn served_peer(node: &Node, key: &OriginKey) -> Result<Peer, ExchangeError> {
    let peer = peer::peer(&node.store, key)?
        .ok_or_else(|| ExchangeError::Peer("node key is not paired".into()))?;
    if peer::status(&node.store, key)?.quarantined {
        return Err(ExchangeError::Peer(
            "this node has quarantined you after repeated failures".into(),
        ));
    }
    Ok(peer)
}

/// What this node tells a peer about itself in a hello: key, organisation and heads.
pub fn node_info(node: &Node) -> wire::NodeInfo {
    wire::NodeInfo {
        node_key: node.origin().0.to_vec().into(),
        org_uuid: node.org.uuid.as_bytes().to_vec().into(),
        org_name: node.org.name.clone(),
        heads: node
            .store
            .heads()
            .into_iter()
            .map(|(origin, sequence)| wire::OriginHead {
                origin: origin.0.to_vec().into(),
                sequence,
            })
            .collect(),
    }
}

/// The hello this node opens a session with: who it is and the checkpoints it holds.
pub fn hello_request(node: &Node) -> Result<wire::HelloRequest, StoreError> {
    Ok(wire::HelloRequest {
        protocol_version: super::PROTOCOL_VERSION,
        node: Some(node_info(node)),
        checkpoints: super::checkpoints::outgoing(node)?,
    })
}

/// Answers `peer`'s hello carrying checkpoint `notes`: this node's identity, heads and
/// checkpoints, and its cosignatures over the peer's checkpoints it agrees with.
pub fn answer_hello(
    node: &Node,
    peer: &Peer,
    notes: &[String],
) -> Result<wire::HelloResponse, StoreError> {
    let cosignatures = super::checkpoints::receive(node, &peer.key, notes);
    Ok(wire::HelloResponse {
        protocol_version: super::PROTOCOL_VERSION,
        node: Some(node_info(node)),
        head_cursor: node.store.last_arrival(),
        pulls_from_you: peer.pull,
        cursor_for_you: peer::cursor(&node.store, &peer.key)?,
        checkpoints: super::checkpoints::outgoing(node)?,
        cosignatures,
    })
}

/// Takes in `peer`'s answer to this node's hello: the cosignatures it made over this node's
/// checkpoints, and its own checkpoints (whose cosignatures travel back in the next hello).
pub fn hello_answered(node: &Node, peer: &Peer, response: &wire::HelloResponse) {
    super::checkpoints::store_cosignatures(node, &peer.key, &response.cosignatures);
    super::checkpoints::receive(node, &peer.key, &response.checkpoints);
}

/// The stubs this node asks a peer to reveal at the start of a session, up to
/// [`super::REVEAL_IDS_MAX`]; `None` when it holds none.
pub fn reveal_request(node: &Node) -> Result<Option<wire::RevealRequest>, StoreError> {
    let stubs = node.store.stubs(super::REVEAL_IDS_MAX)?;
    if stubs.is_empty() {
        return Ok(None);
    }
    let ids = stubs
        .iter()
        .map(|id| wire::EntryRef {
            origin: id.origin.0.to_vec().into(),
            sequence: id.sequence,
        })
        .collect();
    Ok(Some(wire::RevealRequest { ids }))
}

/// Answers `peer`'s reveal request: a segment of the asked entries this node holds and may
/// release to the peer now, newest first as in a pull stream's reveals, except that those
/// stating their event's level come first; the rest are left out. The caller bounds the number of ids ([`super::REVEAL_IDS_MAX`]).
pub fn answer_reveal(
    node: &Node,
    peer: &Peer,
    ids: Vec<wire::EntryRef>,
) -> Result<wire::Segment, StoreError> {
    let mut asked: Vec<EntryId> = ids
        .iter()
        .filter_map(|id| {
            let origin = OriginKey::from_slice(&id.origin).ok()?;
            Some(EntryId {
                origin,
                sequence: id.sequence,
            })
        })
        .collect();
    asked.sort_unstable();
    asked.dedup();
    let mut releaser = Releaser::new(node, party(peer), peer.rules.clone());
    let mut entries = Vec::new();
    for id in asked {
        let Some(Held::Entry(entry)) = node.store.held(&id)? else {
            continue;
        };
        if entry.origin() == peer.key || releaser.decide(&entry)?.is_err() {
            continue;
        }
        entries.push(entry);
    }
    // The peer judges a relayed entry by its event's level, which it may not hold yet: the
    // entries that state their event's level go first, so that the rest can be judged.
    entries.sort_by_cached_key(|entry| {
        let states_level = entry
            .event()
            .is_some_and(|event| stated_event_level(entry, &event).is_some());
        std::cmp::Reverse((entry.origin(), states_level, entry.sequence()))
    });
    let items: Vec<Released> = entries.into_iter().map(Released::Entry).collect();
    let (certificates, revocations) = super::identity::attach(&node.store, &items, &peer.key)?;
    Ok(wire::Segment {
        items: super::encode_items(&items),
        cursor: 0,
        head_cursor: node.store.last_arrival(),
        head_time_ms: node.store.now_ms(),
        certificates,
        revocations,
        checkpoints: Vec::new(),
    })
}
