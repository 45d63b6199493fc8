//! Gathering, from the views, the facts the release policy needs about an entry now
//! (SPEC §6.2), and turning each held log item into what a peer receives: the entry or its
//! stub.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

use crate::log::{OriginKey, Stub, VerifiedEntry};
use crate::node::Node;
use crate::policy::{self, EntryFacts, Gate, Group, Party, PeerRules, Reach, Tlp};
use crate::proto::{op::Op, RecordKind};
use crate::store::{Held, StoreError};
use crate::view::{read, KvError, Record, Table, TagLinkState, ViewRead};

/// A sharing group's members as the policy needs them, from its view record.
pub fn group_of(record: &Record) -> Group {
    let mut group = Group {
        roaming: record.field("roaming").and_then(Value::as_bool) == Some(true),
        ..Group::default()
    };
    if record.field("deleted").and_then(Value::as_bool) == Some(true) {
        return group;
    }
    let uuid_of = |member: &Value| {
        member
            .pointer("/Organisation/uuid")
            .or_else(|| member.get("org_uuid"))
            .or_else(|| member.get("uuid"))
            .or(Some(member))
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text).ok())
    };
    for field in ["SharingGroupOrg", "organisations"] {
        if let Some(members) = record.field(field).and_then(Value::as_array) {
            group.orgs.extend(members.iter().filter_map(uuid_of));
        }
    }
    if let Some(nodes) = record.field("nodes").and_then(Value::as_array) {
        group.nodes.extend(
            nodes
                .iter()
                .filter_map(Value::as_str)
                .filter_map(OriginKey::from_hex),
        );
    }
    group
}

/// The reach of a distribution level and sharing group read from the views.
pub fn reach(views: &dyn ViewRead, level: u32, group: Option<Uuid>) -> Result<Reach, KvError> {
    Ok(match level {
        5 => Reach::Inherit,
        4 => Reach::Group(match group {
            Some(uuid) => read::record(views, RecordKind::SharingGroup, uuid.as_bytes())?
                .map(|r| group_of(&r)),
            None => None,
        }),
        level => Reach::Level(level.min(4) as u8),
    })
}

/// The reach an event record states.
pub fn event_reach(views: &dyn ViewRead, record: &Record) -> Result<Reach, KvError> {
    let level = record
        .str_field("distribution")
        .and_then(|text| text.parse::<u32>().ok())
        .unwrap_or(0);
    let group = record
        .str_field("sharing_group_uuid")
        .and_then(|text| Uuid::parse_str(text).ok());
    reach(views, level, group)
}

/// The reach an entry's own visibility states.
pub fn entry_reach(views: &dyn ViewRead, entry: &VerifiedEntry) -> Result<Reach, KvError> {
    let visibility = entry.entry().visibility.clone().unwrap_or_default();
    let group = Uuid::from_slice(&visibility.sharing_group).ok();
    reach(views, visibility.distribution, group)
}

/// Names of the tags attached to `target`, with whether each is local.
fn tags_of(views: &dyn ViewRead, target: &Uuid) -> Result<Vec<(String, bool)>, KvError> {
    let mut out = Vec::new();
    for (key, value) in views.scan(Table::TagLinks, target.as_bytes())? {
        let Ok(state) = serde_json::from_slice::<TagLinkState>(&value) else {
            continue;
        };
        if state.attached {
            out.push((
                String::from_utf8_lossy(&key[16..]).into_owned(),
                state.local,
            ));
        }
    }
    Ok(out)
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

/// Decides, for one peer, what each held log item becomes on the wire.
pub struct Releaser<'a> {
    node: &'a Node,
    sender: Party,
    peer: Party,
    rules: PeerRules,
    default_tlp: Tlp,
    /// Facts per event, valid for the current segment.
    events: HashMap<Uuid, EventFacts>,
    /// Tag exportability, by tag name.
    exportable: HashMap<String, bool>,
}

impl<'a> Releaser<'a> {
    /// A releaser from `node` to `peer` with `rules`.
    pub fn new(node: &'a Node, peer: Party, rules: PeerRules) -> Self {
        let default_tlp = node.config.node.default_tlp.parse().unwrap_or(Tlp::Green);
        Releaser {
            sender: Party {
                node: node.origin(),
                org: node.org.uuid,
            },
            node,
            peer,
            rules,
            default_tlp,
            events: HashMap::new(),
            exportable: HashMap::new(),
        }
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
        Ok(policy::release(
            self.sender,
            self.peer,
            &self.rules,
            &facts,
            self.default_tlp,
        ))
    }

    /// The facts about `event` (SPEC §6.2). A deleted event keeps the reach its tombstone
    /// states (level 0 when that is not known here); its tags are gone. Old entries go no
    /// further than the latest publish allowed, as that publish states the event's reach.
    fn event_facts(&mut self, event: &Uuid) -> Result<EventFacts, StoreError> {
        if let Some(cached) = self.events.get(event) {
            return Ok(cached.clone());
        }
        let views = self.node.store.views();
        let record = read::record(&views, RecordKind::Event, event.as_bytes())?;
        let publish = self.node.store.publish_of(event)?;
        let reach_published = match publish {
            Some(publish) => self
                .stated_reach(&views, event, publish.origin, publish.sequence)?
                .unwrap_or(Reach::Inherit),
            None => Reach::Inherit,
        };
        let facts = match record {
            Some(record) if record.is_live() => {
                let tags: Vec<String> = tags_of(&views, event)?
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
                    reach: event_reach(&views, &record)?,
                    reach_published,
                    tlp: Tlp::strictest(tags.iter().map(String::as_str)),
                    tags,
                    creator,
                    publish,
                }
            }
            gone => {
                let tombstone = gone.and_then(|record| record.gone).and_then(|stamp| {
                    OriginKey::from_hex(&stamp.1).map(|origin| (origin, stamp.2))
                });
                let reach = match tombstone {
                    Some((origin, sequence)) => {
                        self.stated_reach(&views, event, origin, sequence)?
                    }
                    None => None,
                };
                EventFacts {
                    reach: reach
                        .filter(|reach| *reach != Reach::Inherit)
                        .unwrap_or(Reach::Level(0)),
                    reach_published,
                    tlp: None,
                    tags: Vec::new(),
                    creator: None,
                    publish,
                }
            }
        };
        self.events.insert(*event, facts.clone());
        Ok(facts)
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
        let Some(Held::Entry(entry)) = self.node.store.held(&id)? else {
            return Ok(None);
        };
        if let Some(reach) = super::check::stated_event_reach(views, &entry, event)? {
            return Ok(Some(reach));
        }
        Ok(Some(entry_reach(views, &entry)?))
    }

    fn is_exportable(&mut self, name: &str) -> Result<bool, StoreError> {
        if let Some(known) = self.exportable.get(name) {
            return Ok(*known);
        }
        let views = self.node.store.views();
        let exportable = read::record(&views, RecordKind::Tag, name.as_bytes())?
            .and_then(|record| record.field("exportable").and_then(Value::as_bool))
            .unwrap_or(true);
        self.exportable.insert(name.to_string(), exportable);
        Ok(exportable)
    }

    /// The facts about `entry` now.
    pub fn facts(&mut self, entry: &VerifiedEntry) -> Result<EntryFacts, StoreError> {
        let origin = Party {
            node: entry.origin(),
            org: entry.origin_org(),
        };
        let views = self.node.store.views();
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
                    item_tags.insert(link.name.clone());
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
            for (name, local) in tags_of(&views, target)? {
                if !local && Tlp::of_tag(&name).is_some() {
                    item_tags.insert(name);
                }
            }
        }
        let Some(event) = entry.event() else {
            return self.directory_facts(entry, origin);
        };
        let item = entry_reach(&views, entry)?;
        let gate = if ops.iter().any(|op| matches!(op.op, Some(Op::Tombstone(_)))) {
            Gate::Tombstone
        } else if !ops.is_empty() && ops.iter().all(|op| matches!(op.op, Some(Op::Sighting(_)))) {
            Gate::Sighting
        } else {
            Gate::Publish
        };
        let event_facts = self.event_facts(&event)?;
        let item_tlp = Tlp::strictest(item_tags.iter().map(String::as_str));
        let publish = event_facts.publish;
        Ok(EntryFacts {
            origin,
            event: event_facts.reach,
            event_published: event_facts.reach_published,
            item,
            gate,
            published_after: publish.is_some_and(|publish| publish.covers(entry)),
            published_ever: publish.is_some(),
            event_tags: event_facts.tags,
            tlp: event_facts.tlp.max(item_tlp),
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
        let views = self.node.store.views();
        let mut event = Reach::Inherit;
        let mut gate = Gate::Directory;
        for op in &entry.entry().ops {
            if let Some(Op::Set(set)) = &op.op {
                if set.kind == RecordKind::SharingGroup as i32 {
                    let record = read::record(&views, RecordKind::SharingGroup, &set.key)?;
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
            published_ever: true,
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
