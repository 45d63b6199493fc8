//! Gathering, from the views, the facts the release policy needs about an entry now
//! (SPEC §6.2), and turning each held log item into what a peer receives: the entry or its
//! stub.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Deref;
use uuid::Uuid;

use super::reach::{entry_reach, event_reach, group_of};
use crate::log::{EntryId, OriginKey, Stub, VerifiedEntry};
use crate::node::Node;
use crate::policy::{self, EntryFacts, Gate, Group, Party, PeerRules, Reach, Tlp};
use crate::proto::{op::Op, RecordKind};
use crate::store::{Held, Publish, StoreError};
use crate::view::{read, tag_links, KvError, Stamp, ViewRead};

/// Names of the tags attached to `target`, with whether each is local.
fn tags_of(views: &dyn ViewRead, target: &Uuid) -> Result<Vec<(String, bool)>, KvError> {
    Ok(tag_links(views, target)?
        .into_iter()
        .filter(|link| link.state.attached)
        .map(|link| (link.name, link.local_org.is_some()))
        .collect())
}

/// What the policy needs about one event, computed once per event per segment.
#[derive(Clone, Debug)]
struct EventFacts {
    /// Its reach now; for a deleted event, the reach its tombstone states.
    reach: Reach,
    /// Its reach as its latest publish states it.
    reach_published: Reach,
    tags: Vec<String>,
    tlp: Option<Tlp>,
    creator: Option<Uuid>,
    publish: Option<crate::store::Publish>,
}

/// What release reads of the sender's log, views and tag definitions: a node's store, or
/// anything else that holds them (in memory).
pub trait ReleaseFacts {
    /// The views.
    fn views(&self) -> Box<dyn ViewRead + '_>;
    /// The latest publish of `event`, if any.
    fn publish_of(&self, event: &Uuid) -> Result<Option<Publish>, StoreError>;
    /// The ids of the entries of `event` held, in arrival order.
    fn event_entries(&self, event: &Uuid) -> Result<Vec<EntryId>, StoreError>;
    /// A held log item.
    fn held(&self, id: &EntryId) -> Result<Option<Held>, StoreError>;
    /// Whether `peer` has been sent an entry of `event` in full.
    fn was_released(&self, peer: &OriginKey, event: &Uuid) -> Result<bool, StoreError>;
    /// Notes that `peer` has been sent an entry of `event` in full.
    fn note_released(&self, peer: &OriginKey, event: &Uuid) -> Result<(), StoreError>;
    /// Whether the tag `name` may leave this node (its definition's `exportable`, default
    /// true).
    fn tag_exportable(&self, name: &str) -> Result<bool, StoreError>;
}

impl ReleaseFacts for Node {
    fn views(&self) -> Box<dyn ViewRead + '_> {
        Box::new(self.store.views())
    }

    fn publish_of(&self, event: &Uuid) -> Result<Option<Publish>, StoreError> {
        self.store.publish_of(event)
    }

    fn event_entries(&self, event: &Uuid) -> Result<Vec<EntryId>, StoreError> {
        self.store.event_entries(event)
    }

    fn held(&self, id: &EntryId) -> Result<Option<Held>, StoreError> {
        self.store.held(id)
    }

    fn was_released(&self, peer: &OriginKey, event: &Uuid) -> Result<bool, StoreError> {
        self.store.was_released(peer, event)
    }

    fn note_released(&self, peer: &OriginKey, event: &Uuid) -> Result<(), StoreError> {
        self.store.note_released(peer, event)
    }

    fn tag_exportable(&self, name: &str) -> Result<bool, StoreError> {
        let definition = self.tag_definition(name)?;
        Ok(definition
            .get("exportable")
            .and_then(Value::as_bool)
            .unwrap_or(true))
    }
}

/// Decides, for one peer, what each held log item becomes on the wire.
pub struct Releaser<F> {
    /// What it reads: a handle to a node, or to other [`ReleaseFacts`].
    facts: F,
    sender: Party,
    peer: Party,
    rules: PeerRules,
    default_tlp: Tlp,
    /// Facts per event, valid for the current segment.
    events: HashMap<Uuid, EventFacts>,
    /// Tag exportability, by tag name.
    exportable: HashMap<String, bool>,
    /// An event's global tags as of one of its entries (its latest publish or its tombstone),
    /// with how many entries of the event were held when they were replayed.
    tags_then: HashMap<(Uuid, EntryId), (usize, Vec<String>)>,
    /// Events an entry of which this releaser has sent the peer in full.
    released: HashSet<Uuid>,
}

impl<N: Deref<Target = Node> + Clone> Releaser<N> {
    /// A releaser from `node` to `peer` with `rules`.
    pub fn new(node: N, peer: Party, rules: PeerRules) -> Self {
        let default_tlp = node.config.node.default_tlp.parse().unwrap_or(Tlp::Green);
        let sender = Party {
            node: node.origin(),
            org: node.org.uuid,
        };
        Releaser::over(node, sender, default_tlp, peer, rules)
    }
}

impl<F> Releaser<F>
where
    F: Deref + Clone,
    F::Target: ReleaseFacts,
{
    /// A releaser from `sender`, whose log and views `facts` reads and whose events without a
    /// TLP tag count as `default_tlp`, to `peer` with `rules`.
    pub fn over(facts: F, sender: Party, default_tlp: Tlp, peer: Party, rules: PeerRules) -> Self {
        Releaser {
            facts,
            sender,
            peer,
            rules,
            default_tlp,
            events: HashMap::new(),
            exportable: HashMap::new(),
            tags_then: HashMap::new(),
            released: HashSet::new(),
        }
    }

    /// Releases by `rules` from now on (the operator changed the peer's policy).
    pub fn set_rules(&mut self, rules: PeerRules) {
        self.rules = rules;
    }

    /// Forgets cached event facts (call between segments: events change).
    pub fn refresh(&mut self) {
        self.events.clear();
        self.exportable.clear();
    }

    /// What the peer receives for `held`: the entry, or a stub.
    pub fn release(&mut self, held: Held) -> Result<Released, StoreError> {
        match held {
            Held::Stub(stub) => Ok(Released::Stub(stub)),
            Held::Entry(entry) => {
                if entry.origin() == self.peer.node {
                    // The peer's own entries: it holds them; a stub keeps its chain view
                    // aligned without resending.
                    return Ok(Released::Stub(Stub::of(&entry)));
                }
                // Certificates and revocations are never withheld (SPEC §4.1): receivers
                // need them to judge the origin's entries, and they reveal no content.
                if crate::log::identity::is_identity_entry(&entry) {
                    return Ok(Released::Entry(entry));
                }
                match self.decide(&entry)? {
                    Ok(()) => Ok(Released::Entry(entry)),
                    Err(_) => Ok(Released::Stub(Stub::of(&entry))),
                }
            }
        }
    }

    /// The policy's decision for `entry`.
    pub fn decide(
        &mut self,
        entry: &VerifiedEntry,
    ) -> Result<Result<(), policy::Withheld>, StoreError> {
        let facts = self.facts(entry)?;
        let decision = self.judge(&facts);
        let Some(event) = entry.event() else {
            return Ok(decision);
        };
        match (facts.gate, &decision) {
            // A deletion also goes to every peer that was sent any of the event, which must
            // learn that it is gone (SPEC §6.2).
            (Gate::Tombstone, Err(_)) if self.facts.was_released(&self.peer.node, &event)? => {
                return Ok(Ok(()));
            }
            (Gate::Directory, _) | (_, Err(_)) => {}
            (_, Ok(())) => {
                if self.released.insert(event) {
                    self.facts.note_released(&self.peer.node, &event)?;
                }
            }
        }
        Ok(decision)
    }

    fn judge(&self, facts: &EntryFacts) -> Result<(), policy::Withheld> {
        policy::release(self.sender, self.peer, &self.rules, facts, self.default_tlp)
    }

    /// The facts about `event` (SPEC §6.2). A deleted event keeps the reach its tombstone
    /// states (level 0 when that is not known here) and the tags it had. Old entries go no
    /// further than the latest publish allowed: that publish states the event's reach, and
    /// the event's TLP then counts as well as its TLP now.
    fn event_facts(&mut self, event: &Uuid) -> Result<EventFacts, StoreError> {
        if let Some(cached) = self.events.get(event) {
            return Ok(cached.clone());
        }
        // A handle of its own: the views borrow it while `self` changes.
        let facts = self.facts.clone();
        let views = facts.views();
        let record = read::record(&*views, RecordKind::Event, event.as_bytes())?;
        let publish = self.facts.publish_of(event)?;
        let (reach_published, tags_published) = match publish {
            Some(publish) => (
                self.stated_reach(&*views, event, publish.origin, publish.sequence)?
                    .unwrap_or(Reach::Inherit),
                self.tags_then(
                    event,
                    EntryId {
                        origin: publish.origin,
                        sequence: publish.sequence,
                    },
                )?,
            ),
            None => (Reach::Inherit, Vec::new()),
        };
        let tlp_published = Tlp::strictest(tags_published.iter().map(String::as_str));
        let facts = match record {
            Some(record) if record.is_live() => {
                let tags: Vec<String> = tags_of(&*views, event)?
                    .into_iter()
                    .filter(|(_, local)| !local)
                    .map(|(name, _)| name)
                    .collect();
                let creator = record
                    .field("Orgc")
                    .and_then(|orgc| orgc.get("uuid"))
                    .and_then(Value::as_str)
                    .and_then(|text| Uuid::parse_str(text).ok())
                    .or(record.owner.as_ref().map(|(org, _)| *org));
                EventFacts {
                    reach: event_reach(&*views, &record)?,
                    reach_published,
                    tlp: Tlp::strictest(tags.iter().map(String::as_str)).max(tlp_published),
                    tags,
                    creator,
                    publish,
                }
            }
            gone => {
                let tombstone = gone.and_then(|record| record.gone).and_then(|stamp| {
                    OriginKey::from_hex(&stamp.1).map(|origin| (origin, stamp.2))
                });
                let (reach, tags) = match tombstone {
                    Some((origin, sequence)) => (
                        self.stated_reach(&*views, event, origin, sequence)?,
                        self.tags_then(event, EntryId { origin, sequence })?,
                    ),
                    None => (None, Vec::new()),
                };
                EventFacts {
                    reach: reach
                        .filter(|reach| *reach != Reach::Inherit)
                        .unwrap_or(Reach::Level(0)),
                    reach_published,
                    tlp: Tlp::strictest(tags.iter().map(String::as_str)).max(tlp_published),
                    tags,
                    creator: None,
                    publish,
                }
            }
        };
        self.events.insert(*event, facts.clone());
        Ok(facts)
    }

    /// The global tags `event` had as of its entry `until`, replayed in stamp order from the
    /// event's entries this node holds (entries it holds only as stubs add nothing).
    fn tags_then(&mut self, event: &Uuid, until: EntryId) -> Result<Vec<String>, StoreError> {
        let ids = self.facts.event_entries(event)?;
        if let Some((count, tags)) = self.tags_then.get(&(*event, until)) {
            if *count == ids.len() {
                return Ok(tags.clone());
            }
        }
        let mut entries = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(Held::Entry(entry)) = self.facts.held(id)? {
                entries.push((Stamp::of(&entry), entry));
            }
        }
        let last = entries
            .iter()
            .find(|(_, entry)| entry.id() == until)
            .map(|(stamp, _)| stamp.clone());
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut tags = BTreeSet::new();
        for (_, entry) in entries
            .iter()
            .take_while(|(stamp, _)| Some(stamp) <= last.as_ref())
        {
            for op in &entry.entry().ops {
                let Some(Op::Tag(link)) = &op.op else {
                    continue;
                };
                if link.local || link.target.as_ref() != event.as_bytes() {
                    continue;
                }
                match link.attached {
                    true => tags.insert(link.name.clone()),
                    false => tags.remove(&link.name),
                };
            }
        }
        let tags: Vec<String> = tags.into_iter().collect();
        self.tags_then
            .insert((*event, until), (ids.len(), tags.clone()));
        Ok(tags)
    }

    /// The event reach that entry `origin`/`sequence` of `event` states, if this node holds
    /// it: the distribution it sets on the event, else its own visibility.
    fn stated_reach(
        &self,
        views: &dyn ViewRead,
        event: &Uuid,
        origin: OriginKey,
        sequence: u64,
    ) -> Result<Option<Reach>, StoreError> {
        let id = crate::log::EntryId { origin, sequence };
        let Some(Held::Entry(entry)) = self.facts.held(&id)? else {
            return Ok(None);
        };
        if let Some(reach) = super::reach::stated_event_reach(views, &entry, event)? {
            return Ok(Some(reach));
        }
        Ok(Some(entry_reach(views, &entry)?))
    }

    fn is_exportable(&mut self, name: &str) -> Result<bool, StoreError> {
        if let Some(known) = self.exportable.get(name) {
            return Ok(*known);
        }
        let exportable = self.facts.tag_exportable(name)?;
        self.exportable.insert(name.to_string(), exportable);
        Ok(exportable)
    }

    /// The facts about `entry` now.
    pub fn facts(&mut self, entry: &VerifiedEntry) -> Result<EntryFacts, StoreError> {
        let origin = Party {
            node: entry.origin(),
            org: entry.origin_org(),
        };
        // A handle of its own: the views borrow it while `self` changes.
        let facts = self.facts.clone();
        let views = facts.views();
        let ops = &entry.entry().ops;
        let mut has_local_tag = false;
        let mut has_unexportable_tag = false;
        let mut item_tags: BTreeSet<String> = BTreeSet::new();
        let mut targets: BTreeSet<Uuid> = BTreeSet::new();
        for op in ops {
            match &op.op {
                Some(Op::Tag(link)) => {
                    has_local_tag |= link.local;
                    has_unexportable_tag |= !self.is_exportable(&link.name)?;
                    // A tag on the event counts through the event's facts (now and at its
                    // last publish), a tag on an item as the item's.
                    if entry
                        .event()
                        .is_none_or(|event| link.target.as_ref() != event.as_bytes())
                    {
                        item_tags.insert(link.name.clone());
                    }
                }
                Some(Op::Set(set))
                    if set.kind == RecordKind::Attribute as i32
                        || set.kind == RecordKind::Object as i32 =>
                {
                    if let Ok(uuid) = Uuid::from_slice(&set.key) {
                        targets.insert(uuid);
                    }
                }
                _ => {}
            }
        }
        for target in &targets {
            // An entry may set thousands of attributes: each one's tags are a read.
            crate::turns::pause_point();
            for (name, local) in tags_of(&*views, target)? {
                if !local && Tlp::of_tag(&name).is_some() {
                    item_tags.insert(name);
                }
            }
        }
        let Some(event) = entry.event() else {
            return self.directory_facts(entry, origin);
        };
        let item = entry_reach(&*views, entry)?;
        let gate = if entry.is_tombstone() {
            Gate::Tombstone
        } else if !ops.is_empty() && ops.iter().all(|op| matches!(op.op, Some(Op::Sighting(_)))) {
            Gate::Sighting
        } else {
            Gate::Publish
        };
        let event_facts = self.event_facts(&event)?;
        let item_tlp = Tlp::strictest(item_tags.iter().map(String::as_str));
        let publish = event_facts.publish;
        // A deletion is judged by the facts at its deletion (and, in `decide`, by whether
        // the peer was sent any of the event); the others also by the latest publish's.
        let (event_published, event_tlp) = match gate {
            Gate::Tombstone => (
                Reach::Inherit,
                Tlp::strictest(event_facts.tags.iter().map(String::as_str)),
            ),
            _ => (event_facts.reach_published, event_facts.tlp),
        };
        Ok(EntryFacts {
            origin,
            event: event_facts.reach,
            event_published,
            item,
            gate,
            published_after: publish.is_some_and(|publish| publish.covers(entry)),
            event_tags: event_facts.tags,
            tlp: event_tlp.max(item_tlp),
            creator: event_facts.creator,
            has_local_tag,
            has_unexportable_tag,
        })
    }

    /// Directory entries (organisations, tag definitions, sharing groups): a sharing group
    /// goes to its members (any member may pass its definition on), the rest to every peer.
    fn directory_facts(
        &self,
        entry: &VerifiedEntry,
        origin: Party,
    ) -> Result<EntryFacts, StoreError> {
        // A handle of its own: the views borrow it while `self` changes.
        let facts = self.facts.clone();
        let views = facts.views();
        let mut event = Reach::Inherit;
        let mut gate = Gate::Directory;
        for op in &entry.entry().ops {
            if let Some(Op::Set(set)) = &op.op {
                if set.kind == RecordKind::SharingGroup as i32 {
                    let record = read::record(&*views, RecordKind::SharingGroup, &set.key)?;
                    event = Reach::Group(record.map(|record| Group {
                        roaming: true,
                        ..group_of(&record)
                    }));
                    gate = Gate::Publish;
                }
            }
        }
        Ok(EntryFacts {
            origin,
            event,
            event_published: Reach::Inherit,
            item: Reach::Inherit,
            gate,
            published_after: true,
            event_tags: vec![],
            tlp: None,
            creator: None,
            has_local_tag: false,
            has_unexportable_tag: false,
        })
    }
}

/// What a peer receives for one log position.
// Entries are moved and matched far more often than stubs are held; boxing them would cost
// an allocation per item on the sync path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Released {
    /// The full entry.
    Entry(VerifiedEntry),
    /// Its stub.
    Stub(Stub),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{self, Actor};
    use crate::log::{seal, Draft, Head, NodeKey};
    use crate::policy::Relationship;
    use crate::view::{apply, MemoryViews};
    use serde_json::json;
    use std::cell::RefCell;

    /// A sender's log, views and release marks, in memory.
    #[derive(Default)]
    struct Memory {
        views: MemoryViews,
        entries: Vec<VerifiedEntry>,
        released: RefCell<HashSet<(OriginKey, Uuid)>>,
    }

    impl ReleaseFacts for Memory {
        fn views(&self) -> Box<dyn ViewRead + '_> {
            Box::new(self.views.clone())
        }

        fn publish_of(&self, event: &Uuid) -> Result<Option<Publish>, StoreError> {
            Ok(self
                .entries
                .iter()
                .filter_map(Publish::of)
                .filter(|(of, _)| of == event)
                .map(|(_, publish)| publish)
                .last())
        }

        fn event_entries(&self, event: &Uuid) -> Result<Vec<EntryId>, StoreError> {
            Ok(self
                .entries
                .iter()
                .filter(|entry| entry.event() == Some(*event))
                .map(VerifiedEntry::id)
                .collect())
        }

        fn held(&self, id: &EntryId) -> Result<Option<Held>, StoreError> {
            let found = self.entries.iter().find(|entry| entry.id() == *id);
            Ok(found.map(|entry| Held::Entry(entry.clone())))
        }

        fn was_released(&self, peer: &OriginKey, event: &Uuid) -> Result<bool, StoreError> {
            Ok(self.released.borrow().contains(&(*peer, *event)))
        }

        fn note_released(&self, peer: &OriginKey, event: &Uuid) -> Result<(), StoreError> {
            self.released.borrow_mut().insert((*peer, *event));
            Ok(())
        }

        fn tag_exportable(&self, _name: &str) -> Result<bool, StoreError> {
            Ok(true)
        }
    }

    /// A sender writing its own chain into [`Memory`].
    struct Sender {
        key: NodeKey,
        actor: Actor,
        head: Head,
        time_ms: i64,
        memory: Memory,
    }

    impl Sender {
        fn write(&mut self, drafts: Vec<Draft>) -> Vec<VerifiedEntry> {
            let mut written = Vec::new();
            for draft in drafts {
                self.time_ms += 1;
                let entry = seal(
                    &self.key,
                    self.actor.org,
                    &self.head,
                    draft,
                    self.time_ms,
                    [7; 16],
                )
                .unwrap();
                self.head = Head::after(&entry);
                apply(&mut self.memory.views, &entry).unwrap();
                self.memory.entries.push(entry.clone());
                written.push(entry);
            }
            written
        }

        /// A new unpublished event of `level` with one attribute and the tags `tags`.
        fn event(&mut self, level: u8, tags: &[&str]) -> (Uuid, Vec<VerifiedEntry>) {
            let uuid = Uuid::new_v4();
            let tags: Vec<Value> = tags.iter().map(|name| json!({"name": name})).collect();
            let event = crate::model::Event::from_json(&json!({"Event": {
                "uuid": uuid.to_string(), "info": "in memory", "date": "2026-01-01",
                "distribution": level.to_string(), "published": false, "Tag": tags,
                "Attribute": [{"type": "ip-dst", "value": "192.0.2.7"}],
            }}))
            .unwrap();
            let drafts = change::event_drafts(&event, &self.actor);
            (uuid, self.write(drafts))
        }

        fn publish(&mut self, event: Uuid, level: u8) -> Vec<VerifiedEntry> {
            let mut fields = serde_json::Map::new();
            fields.insert("published".into(), json!(true));
            fields.insert("distribution".into(), json!(level.to_string()));
            let op = change::record_op(RecordKind::Event, event.as_bytes(), None, &fields);
            let drafts = change::event_ops_drafts(
                event,
                change::Visibility::new(level, None),
                vec![op],
                &self.actor,
            );
            self.write(drafts)
        }
    }

    /// What `releaser` makes of each of `entries`: true for the full entry.
    fn released<F>(releaser: &mut Releaser<F>, entries: &[VerifiedEntry]) -> Vec<bool>
    where
        F: std::ops::Deref + Clone,
        F::Target: ReleaseFacts,
    {
        releaser.refresh();
        entries
            .iter()
            .map(|entry| {
                let held = Held::Entry(entry.clone());
                matches!(releaser.release(held).unwrap(), Released::Entry(_))
            })
            .collect()
    }

    #[test]
    fn release_runs_over_a_log_and_views_held_in_memory() {
        let key = NodeKey::from_seed(&[3; 32]);
        let mut sender = Sender {
            actor: Actor {
                org: Uuid::from_u128(1),
                user: "analyst@a.example".into(),
            },
            head: Head::EMPTY,
            time_ms: 1_000,
            memory: Memory::default(),
            key,
        };
        let (shared, created) = sender.event(3, &["tlp:green"]);
        let (red, red_created) = sender.event(3, &["tlp:red"]);
        let (own, own_created) = sender.event(0, &[]);
        let party = Party {
            node: sender.key.origin(),
            org: sender.actor.org,
        };
        let peer = Party {
            node: NodeKey::from_seed(&[4; 32]).origin(),
            org: Uuid::from_u128(2),
        };
        let rules = PeerRules {
            relationship: Relationship::External,
            tlp_max: Tlp::Amber,
            tags_include: vec![],
            tags_exclude: vec![],
            orgs_include: vec![],
            orgs_exclude: vec![],
        };
        // Nothing leaves before a publish.
        let mut releaser = Releaser::over(&sender.memory, party, Tlp::Green, peer, rules.clone());
        assert!(released(&mut releaser, &created).iter().all(|full| !full));
        drop(releaser);
        let published = sender.publish(shared, 3);
        let red_published = sender.publish(red, 3);
        let own_published = sender.publish(own, 0);
        let mut releaser = Releaser::over(&sender.memory, party, Tlp::Green, peer, rules);
        // Published at level 3 and green: everything, and the release is marked.
        let all = [created, published].concat();
        assert_eq!(released(&mut releaser, &all), vec![true; all.len()]);
        assert!(sender
            .memory
            .released
            .borrow()
            .contains(&(peer.node, shared)));
        // Red is over the peer's amber ceiling; level 0 stays with the organisation.
        let held_back = [red_created, red_published, own_created, own_published].concat();
        assert_eq!(
            released(&mut releaser, &held_back),
            vec![false; held_back.len()]
        );
        let marks = sender.memory.released.borrow().len();
        assert_eq!(marks, 1);
    }
}
