//! The release policy against a reference model of SPEC §6: random changes by several
//! organisations (create, edit, attribute levels, sharing groups, global and local tags of
//! every TLP in mixed case, non-exportable tags, sightings, publish, unpublish, widen, narrow,
//! delete) on one node, synced in rounds among them to peers of every relationship and TLP
//! ceiling. Everything a peer receives in full, and everything a newly paired peer would pull,
//! must be allowed by the model at the time it is released; no honest sender is ever charged
//! with a violation; after a final publish, every allowed entry has arrived.
//!
//! Real nodes (RocksDB in temp dirs) driven in one process through the sync engine
//! ([`threatlog::sync::exchange`]), the code the gRPC transport runs for each segment. The
//! model below is written from SPEC §6 alone and shares no code with the release path.
//!
//! `PROPTEST_CASES` sets the number of cases (default [`CASES`]).

mod common;

use common::engine::{card_of, init, temp_dir};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use threatlog::change::{self, Actor, Visibility};
use threatlog::log::{EntryId, VerifiedEntry};
use threatlog::model::Organisation;
use threatlog::node::Node;
use threatlog::policy::{Relationship, Tlp};
use threatlog::proto::{op::Op, RecordKind};
use threatlog::store::{Held, Incoming};
use threatlog::sync::decode_segment;
use threatlog::sync::exchange::{self, Outbox};
use threatlog::sync::peer::{self, Card, Peer, PeerSettings};
use uuid::Uuid;

/// Cases run by `make test`.
const CASES: u32 = 1_000;
/// Changes (and sync rounds) in one case.
const CHANGES_MAX: usize = 16;
/// The TLP tags the changes use, in the model's order (clear is white's new name).
const TLPS: [&str; 6] = [
    "tlp:clear",
    "tlp:white",
    "tlp:green",
    "tlp:amber",
    "tlp:amber+strict",
    "tlp:red",
];
/// A tag the sender's admin defined as not exportable.
const INTERNAL_TAG: &str = "acme:internal";

// ---------------------------------------------------------------------------------------------
// The reference model (SPEC §6).

/// A TLP's rank: clear/white 0, green 1, amber 2, amber+strict 3, red 4; other tags none.
fn tlp_rank(tag: &str) -> Option<u8> {
    match tag.to_ascii_lowercase().as_str() {
        "tlp:clear" | "tlp:white" => Some(0),
        "tlp:green" => Some(1),
        "tlp:amber" => Some(2),
        "tlp:amber+strict" => Some(3),
        "tlp:red" => Some(4),
        _ => None,
    }
}

/// The rank of the node's `default_tlp` (green), for events without a TLP tag.
const DEFAULT_TLP_RANK: u8 = 1;

/// What decides an event's release at one moment: its level (4 = the sharing group) and its
/// global tags.
#[derive(Clone, Debug)]
struct Facts {
    level: u8,
    tags: BTreeSet<String>,
}

impl Facts {
    fn tlp(&self) -> u8 {
        self.tags
            .iter()
            .filter_map(|tag| tlp_rank(tag))
            .max()
            .unwrap_or(DEFAULT_TLP_RANK)
    }
}

/// A peer as the model sees it.
#[derive(Clone, Copy, Debug)]
struct PeerModel {
    internal: bool,
    ceiling: u8,
    /// Its organisation is a member of the sharing group.
    member: bool,
}

impl PeerModel {
    /// Whether a level lets the origin send to this peer directly (SPEC §6.1; 5 inherits).
    fn reached_by(&self, level: u8) -> bool {
        match level {
            2 | 3 | 5 => true,
            4 => self.member,
            _ => false,
        }
    }

    fn allows(&self, facts: &Facts) -> bool {
        (self.internal || self.reached_by(facts.level)) && facts.tlp() <= self.ceiling
    }
}

/// What kind of entry, for the gates of SPEC §6.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ordinary,
    Sighting,
    Tombstone,
}

/// One entry the sender wrote, as the model records it when writing it.
#[derive(Clone, Debug)]
struct Written {
    event: Uuid,
    kind: Kind,
    /// The level of the items it carries (5: the event's).
    item_level: u8,
    local_tag: bool,
    unexportable_tag: bool,
}

/// An event in the model.
#[derive(Clone, Debug)]
struct EventModel {
    facts: Facts,
    /// (sequence of the publish entry, facts then), in order.
    publishes: Vec<(u64, Facts)>,
    /// The facts when it was deleted.
    deleted: Option<Facts>,
}

impl EventModel {
    /// Whether the model lets `peer` have `entry` (sequence `sequence`) now; `received_any`
    /// says whether the peer already holds an entry of the event in full. A deletion may go
    /// to every peer that holds any of the event, and to every peer that may see it as it
    /// was deleted.
    fn allows(&self, entry: &Written, sequence: u64, peer: &PeerModel, received_any: bool) -> bool {
        match entry.kind {
            Kind::Tombstone => received_any || self.visible_deletion(entry, peer),
            _ => self.released(entry, sequence, peer),
        }
    }

    /// Whether a deletion `entry` shows the peer nothing the event's facts at its deletion
    /// hide from it.
    fn visible_deletion(&self, entry: &Written, peer: &PeerModel) -> bool {
        let facts = self.deleted.as_ref().unwrap_or(&self.facts);
        peer.allows(facts) && (peer.internal || peer.reached_by(entry.item_level))
    }

    /// Whether `peer` must have received `entry` once everything is synced: what the model
    /// allows of a live event, and a deletion wherever the peer holds some of the event.
    fn owed(&self, entry: &Written, sequence: u64, peer: &PeerModel, received_any: bool) -> bool {
        match entry.kind {
            Kind::Tombstone => received_any,
            // An entry held back while the event was narrower (or, for a sighting, while
            // it was hidden) waits for the next publish to reveal it, which a deleted event
            // never has: what the peer is owed of it is its deletion.
            _ if self.deleted.is_some() => false,
            _ => self.released(entry, sequence, peer),
        }
    }

    /// SPEC §6.2 for an entry other than a deletion.
    fn released(&self, entry: &Written, sequence: u64, peer: &PeerModel) -> bool {
        if entry.local_tag || (entry.unexportable_tag && !peer.internal) {
            return false;
        }
        let now = self.deleted.as_ref().unwrap_or(&self.facts);
        let mut judged = vec![now];
        match entry.kind {
            Kind::Tombstone | Kind::Sighting => {}
            Kind::Ordinary => {
                match self.publishes.iter().rev().find(|(at, _)| *at >= sequence) {
                    // Old entries: also judged by the facts of the last publish.
                    Some(_) => judged.push(&self.publishes.last().unwrap().1),
                    None => return false,
                }
            }
        }
        judged.iter().all(|facts| peer.allows(facts))
            && (peer.internal || peer.reached_by(entry.item_level))
    }
}

// ---------------------------------------------------------------------------------------------
// The changes.

#[derive(Clone, Debug)]
enum Change {
    Create {
        level: u8,
        tlp: Option<(usize, u8)>,
        attribute_level: u8,
    },
    Edit {
        event: usize,
        level: u8,
    },
    AddAttribute {
        event: usize,
        level: u8,
    },
    /// Replaces the event's global TLP tag.
    Tlp {
        event: usize,
        tlp: usize,
        case: u8,
    },
    Untag {
        event: usize,
    },
    LocalTag {
        event: usize,
        tlp: usize,
        case: u8,
        other_org: bool,
    },
    InternalTag {
        event: usize,
    },
    Sighting {
        event: usize,
        other_org: bool,
    },
    Publish {
        event: usize,
    },
    Unpublish {
        event: usize,
    },
    Delete {
        event: usize,
    },
    /// A sync round: every peer receives what it is owed so far.
    Sync,
}

fn change() -> impl Strategy<Value = Change> {
    let event = 0..4usize;
    prop_oneof![
        3 => (0..5u8, prop::option::of((0..TLPS.len(), any::<u8>())), 0..6u8).prop_map(
            |(level, tlp, attribute_level)| Change::Create { level, tlp, attribute_level }
        ),
        2 => (event.clone(), 0..5u8).prop_map(|(event, level)| Change::Edit { event, level }),
        1 => (event.clone(), 0..6u8).prop_map(|(event, level)| Change::AddAttribute { event, level }),
        2 => (event.clone(), 0..TLPS.len(), any::<u8>())
            .prop_map(|(event, tlp, case)| Change::Tlp { event, tlp, case }),
        1 => event.clone().prop_map(|event| Change::Untag { event }),
        1 => (event.clone(), 0..TLPS.len(), any::<u8>(), any::<bool>()).prop_map(
            |(event, tlp, case, other_org)| Change::LocalTag { event, tlp, case, other_org }
        ),
        1 => event.clone().prop_map(|event| Change::InternalTag { event }),
        1 => (event.clone(), any::<bool>())
            .prop_map(|(event, other_org)| Change::Sighting { event, other_org }),
        3 => event.clone().prop_map(|event| Change::Publish { event }),
        1 => event.clone().prop_map(|event| Change::Unpublish { event }),
        1 => event.prop_map(|event| Change::Delete { event }),
        4 => Just(Change::Sync),
    ]
}

/// `name` with each letter's case taken from the bits of `case`.
fn mixed_case(name: &str, case: u8) -> String {
    name.chars()
        .enumerate()
        .map(|(at, c)| match (case >> (at % 8)) & 1 {
            1 => c.to_ascii_uppercase(),
            _ => c,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The nodes.

/// A receiving peer: its node, its records on each side and the model of it.
struct Receiver {
    node: Node,
    /// The sender's record of it (relationship, ceiling).
    on_sender: Peer,
    /// Its record of the sender.
    sender_on_it: Peer,
    model: PeerModel,
}

/// The sender, its peers and what the cases wrote; shared by every case, each of which works
/// on events of its own.
struct World {
    sender: Node,
    owner: Actor,
    other: Actor,
    group: Uuid,
    receivers: Vec<Receiver>,
    /// Every entry the cases wrote.
    written: RefCell<BTreeMap<EntryId, Written>>,
    /// Every event the cases created, by uuid.
    events: RefCell<BTreeMap<Uuid, EventModel>>,
    /// (receiver, event) pairs where the receiver holds an entry of the event in full.
    received: RefCell<BTreeSet<(usize, Uuid)>>,
    _temp: tempfile::TempDir,
}

fn pair(node: &Node, card: Card, relationship: Relationship, tlp_max: Tlp) -> Peer {
    let settings = PeerSettings {
        relationship: Some(relationship),
        tlp_max: Some(tlp_max),
        ..PeerSettings::default()
    };
    peer::pair(&node.store, &node.origin(), card, settings).unwrap()
}

fn world() -> World {
    let temp = temp_dir();
    let sender = init(&temp.path().join("sender"), "Org A");
    let owner = Actor {
        org: sender.org.uuid,
        user: "analyst@a.example".into(),
    };
    // Another organisation hosted on the sender: its users tag locally and sight.
    let other_org = Organisation::from_json(&json!({
        "uuid": Uuid::new_v4().to_string(), "name": "Org X"
    }))
    .unwrap();
    sender.add_organisation(&other_org, true).unwrap();
    let other = Actor {
        org: other_org.uuid,
        user: "analyst@x.example".into(),
    };
    let mut definition = Map::new();
    definition.insert("exportable".into(), json!(false));
    sender.define_tag(INTERNAL_TAG, &definition).unwrap();

    // An internal node of the sender's organisation, and external peers of every ceiling;
    // the last one's organisation is in the sharing group.
    let org_key = sender.load_org_key(None).unwrap();
    let internal_dir = temp.path().join("internal");
    Node::init_with(
        &internal_dir,
        "Org A",
        Some(sender.org.uuid),
        false,
        Some(org_key),
    )
    .unwrap();
    let mut nodes = vec![(
        Node::open(&internal_dir).unwrap(),
        Relationship::Internal,
        Tlp::Amber,
    )];
    for (name, ceiling) in [
        ("Org Green", Tlp::Green),
        ("Org Amber", Tlp::Amber),
        ("Org Red", Tlp::Red),
        ("Org Member", Tlp::Amber),
    ] {
        let dir = temp.path().join(name.replace(' ', "-"));
        nodes.push((init(&dir, name), Relationship::External, ceiling));
    }
    let member = nodes.last().unwrap().0.org.uuid;
    let group = Uuid::new_v4();
    let mut fields = Map::new();
    fields.insert("name".into(), json!("Model group"));
    fields.insert("org_uuid".into(), json!(sender.org.uuid.to_string()));
    fields.insert(
        "organisations".into(),
        json!([sender.org.uuid.to_string(), member.to_string()]),
    );
    fields.insert("roaming".into(), json!(false));
    sender
        .append(vec![change::directory_draft(
            vec![change::record_op(
                RecordKind::SharingGroup,
                group.as_bytes(),
                None,
                &fields,
            )],
            &owner,
        )])
        .unwrap();
    let receivers = nodes
        .into_iter()
        .map(|(node, relationship, ceiling)| {
            let on_sender = pair(&sender, card_of(&node), relationship, ceiling);
            let sender_on_it = pair(&node, card_of(&sender), relationship, Tlp::Amber);
            let model = PeerModel {
                internal: relationship == Relationship::Internal,
                ceiling: tlp_rank(&format!("tlp:{ceiling}")).unwrap(),
                member: node.org.uuid == member,
            };
            Receiver {
                node,
                on_sender,
                sender_on_it,
                model,
            }
        })
        .collect();
    World {
        sender,
        owner,
        other,
        group,
        receivers,
        written: RefCell::new(BTreeMap::new()),
        events: RefCell::new(BTreeMap::new()),
        received: RefCell::new(BTreeSet::new()),
        _temp: temp,
    }
}

/// A case's events, in creation order.
#[derive(Default)]
struct Case {
    events: Vec<Uuid>,
}

impl World {
    /// Appends `drafts`, recording each entry for the model.
    fn write(
        &self,
        drafts: Vec<threatlog::log::Draft>,
        event: Uuid,
        kind: Kind,
    ) -> Vec<VerifiedEntry> {
        let appended = self.sender.append(drafts).unwrap();
        let mut written = self.written.borrow_mut();
        for entry in &appended.entries {
            let ops = &entry.entry().ops;
            let tag = |wanted: &dyn Fn(&threatlog::proto::TagLink) -> bool| {
                ops.iter()
                    .any(|op| matches!(&op.op, Some(Op::Tag(link)) if wanted(link)))
            };
            let visibility = entry.entry().visibility.clone().unwrap_or_default();
            written.insert(
                entry.id(),
                Written {
                    event,
                    kind,
                    item_level: visibility.distribution as u8,
                    local_tag: tag(&|link| link.local),
                    unexportable_tag: tag(&|link| link.name == INTERNAL_TAG),
                },
            );
        }
        appended.entries
    }

    fn visibility(&self, level: u8) -> Visibility {
        Visibility::new(level, (level == 4).then_some(self.group))
    }

    /// Ops on event `uuid` with `visibility`, followed by the unpublish every change of an
    /// event's contents brings, as REST writes them.
    fn touch(
        &self,
        uuid: Uuid,
        visibility: Visibility,
        mut ops: Vec<threatlog::proto::Op>,
        actor: &Actor,
    ) -> Vec<threatlog::log::Draft> {
        let mut fields = Map::new();
        fields.insert("published".into(), json!(false));
        let unpublish = change::record_op(RecordKind::Event, uuid.as_bytes(), None, &fields);
        let mut drafts =
            change::event_ops_drafts(uuid, visibility, std::mem::take(&mut ops), actor);
        drafts.extend(change::event_ops_drafts(
            uuid,
            change::INHERIT,
            vec![unpublish],
            actor,
        ));
        drafts
    }

    fn apply(&self, case: &mut Case, change: &Change) {
        let pick = |event: usize| {
            (!case.events.is_empty()).then(|| case.events[event % case.events.len()])
        };
        let inherit = change::INHERIT;
        match *change {
            Change::Create {
                level,
                tlp,
                attribute_level,
            } => {
                let tags: Vec<String> = tlp
                    .map(|(tlp, case)| mixed_case(TLPS[tlp], case))
                    .into_iter()
                    .collect();
                let uuid = Uuid::new_v4();
                let mut attribute = json!({"type": "ip-dst", "value": "192.0.2.1", "distribution": attribute_level.to_string()});
                if attribute_level == 4 {
                    attribute["sharing_group_uuid"] = json!(self.group.to_string());
                }
                let mut event = json!({"Event": {
                    "uuid": uuid.to_string(), "info": "model", "date": "2026-01-01",
                    "distribution": level.to_string(), "published": false,
                    "Tag": tags.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
                    "Attribute": [attribute],
                }});
                if level == 4 {
                    event["Event"]["sharing_group_uuid"] = json!(self.group.to_string());
                }
                let event = threatlog::model::Event::from_json(&event).unwrap();
                case.events.push(uuid);
                let model = EventModel {
                    facts: Facts {
                        level,
                        tags: tags.into_iter().collect(),
                    },
                    publishes: Vec::new(),
                    deleted: None,
                };
                self.events.borrow_mut().insert(uuid, model);
                self.write(
                    change::event_drafts(&event, &self.owner),
                    uuid,
                    Kind::Ordinary,
                );
            }
            _ => {
                let Some(uuid) = pick(event_of(change)) else {
                    return;
                };
                let mut events = self.events.borrow_mut();
                let model = events.get_mut(&uuid).unwrap();
                if model.deleted.is_some() {
                    return;
                }
                let (drafts, kind) = match *change {
                    Change::Create { .. } | Change::Sync => unreachable!(),
                    Change::Edit { level, .. } => {
                        let mut fields = Map::new();
                        fields.insert("distribution".into(), json!(level.to_string()));
                        let group = (level == 4).then(|| self.group.to_string());
                        fields.insert("sharing_group_uuid".into(), json!(group));
                        model.facts.level = level;
                        let op =
                            change::record_op(RecordKind::Event, uuid.as_bytes(), None, &fields);
                        (
                            self.touch(uuid, inherit, vec![op], &self.owner),
                            Kind::Ordinary,
                        )
                    }
                    Change::AddAttribute { level, .. } => {
                        let mut fields = Map::new();
                        fields.insert("type".into(), json!("ip-dst"));
                        fields.insert("category".into(), json!("Network activity"));
                        fields.insert("value".into(), json!("198.51.100.1"));
                        fields.insert("distribution".into(), json!(level.to_string()));
                        if level == 4 {
                            fields
                                .insert("sharing_group_uuid".into(), json!(self.group.to_string()));
                        }
                        let attribute = Uuid::new_v4();
                        let op = change::record_op(
                            RecordKind::Attribute,
                            attribute.as_bytes(),
                            None,
                            &fields,
                        );
                        let visibility = match level {
                            5 => inherit,
                            level => self.visibility(level),
                        };
                        (
                            self.touch(uuid, visibility, vec![op], &self.owner),
                            Kind::Ordinary,
                        )
                    }
                    Change::Tlp {
                        tlp, case: letters, ..
                    } => {
                        let mut ops = detach_tlp(&uuid, &model.facts.tags);
                        let name = mixed_case(TLPS[tlp], letters);
                        ops.push(change::tag_link_op(&uuid, &name, true, false));
                        model.facts.tags.retain(|tag| tlp_rank(tag).is_none());
                        model.facts.tags.insert(name);
                        (self.touch(uuid, inherit, ops, &self.owner), Kind::Ordinary)
                    }
                    Change::Untag { .. } => {
                        let ops = detach_tlp(&uuid, &model.facts.tags);
                        if ops.is_empty() {
                            return;
                        }
                        model.facts.tags.retain(|tag| tlp_rank(tag).is_none());
                        (self.touch(uuid, inherit, ops, &self.owner), Kind::Ordinary)
                    }
                    Change::LocalTag {
                        tlp,
                        case: letters,
                        other_org,
                        ..
                    } => {
                        let name = mixed_case(TLPS[tlp], letters);
                        let op = change::tag_link_op(&uuid, &name, true, true);
                        let actor = if other_org { &self.other } else { &self.owner };
                        (
                            change::event_ops_drafts(uuid, inherit, vec![op], actor),
                            Kind::Ordinary,
                        )
                    }
                    Change::InternalTag { .. } => {
                        let op = change::tag_link_op(&uuid, INTERNAL_TAG, true, false);
                        model.facts.tags.insert(INTERNAL_TAG.into());
                        (
                            self.touch(uuid, inherit, vec![op], &self.owner),
                            Kind::Ordinary,
                        )
                    }
                    Change::Sighting { other_org, .. } => {
                        let actor = if other_org { &self.other } else { &self.owner };
                        let Some((attribute, level)) = self.first_attribute(&uuid) else {
                            return;
                        };
                        let sighting = threatlog::model::Sighting::from_json(&json!({
                            "type": "0", "source": "model", "date_sighting": "1767225600",
                            "attribute_uuid": attribute.to_string(),
                            "Organisation": {"uuid": actor.org.to_string(), "name": "x"},
                        }))
                        .unwrap();
                        let op = change::sighting_op(&sighting, &attribute);
                        // A sighting carries its attribute's level, as REST writes it.
                        let visibility = match level {
                            5 => inherit,
                            level => self.visibility(level),
                        };
                        (
                            change::event_ops_drafts(uuid, visibility, vec![op], actor),
                            Kind::Sighting,
                        )
                    }
                    Change::Publish { .. } | Change::Unpublish { .. } => {
                        let published = matches!(change, Change::Publish { .. });
                        let mut fields = Map::new();
                        fields.insert("published".into(), json!(published));
                        if published {
                            let visibility = self.visibility(model.facts.level);
                            let (level, group) =
                                (visibility.distribution.0, visibility.sharing_group);
                            fields.insert("distribution".into(), json!(level.to_string()));
                            let group = group.map(|group| group.to_string());
                            fields.insert("sharing_group_uuid".into(), json!(group));
                        }
                        let op =
                            change::record_op(RecordKind::Event, uuid.as_bytes(), None, &fields);
                        // A publish states the event's level, as REST writes it.
                        let visibility = match published {
                            true => self.visibility(model.facts.level),
                            false => inherit,
                        };
                        let drafts =
                            change::event_ops_drafts(uuid, visibility, vec![op], &self.owner);
                        let entries = self.write(drafts, uuid, Kind::Ordinary);
                        if published {
                            let at = entries.last().unwrap().id().sequence;
                            model.publishes.push((at, model.facts.clone()));
                        }
                        return;
                    }
                    Change::Delete { .. } => {
                        model.deleted = Some(model.facts.clone());
                        let op = change::tombstone_op("deleted by the model");
                        let visibility = self.visibility(model.facts.level);
                        (
                            change::event_ops_drafts(uuid, visibility, vec![op], &self.owner),
                            Kind::Tombstone,
                        )
                    }
                };
                drop(events);
                self.write(drafts, uuid, kind);
            }
        }
    }

    /// The event's first attribute and its level.
    fn first_attribute(&self, event: &Uuid) -> Option<(Uuid, u8)> {
        let json = self.sender.event_json(event).unwrap()?;
        let attribute = &json["Event"]["Attribute"][0];
        let level = attribute["distribution"].as_str()?.parse().ok()?;
        Some((Uuid::parse_str(attribute["uuid"].as_str()?).ok()?, level))
    }
}

fn event_of(change: &Change) -> usize {
    match *change {
        Change::Create { .. } | Change::Sync => 0,
        Change::Edit { event, .. }
        | Change::AddAttribute { event, .. }
        | Change::Tlp { event, .. }
        | Change::Untag { event }
        | Change::LocalTag { event, .. }
        | Change::InternalTag { event }
        | Change::Sighting { event, .. }
        | Change::Publish { event }
        | Change::Unpublish { event }
        | Change::Delete { event } => event,
    }
}

/// The ops that detach every global TLP tag of `tags` from `event`.
fn detach_tlp(event: &Uuid, tags: &BTreeSet<String>) -> Vec<threatlog::proto::Op> {
    tags.iter()
        .filter(|tag| tlp_rank(tag).is_some())
        .map(|tag| change::tag_link_op(event, tag, false, false))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sync and the checks.

/// Why a case failed.
fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

impl World {
    /// Whether the model lets receiver `index` have the entry `id` now; entries the cases did
    /// not write (the sharing group, the hosted organisation) are directory data.
    fn model_allows(&self, index: usize, id: &EntryId) -> bool {
        self.model(index, id, EventModel::allows)
    }

    /// Whether the model says receiver `index` must hold entry `id` by now.
    fn model_owes(&self, index: usize, id: &EntryId) -> bool {
        self.model(index, id, EventModel::owed)
    }

    fn model(
        &self,
        index: usize,
        id: &EntryId,
        rule: fn(&EventModel, &Written, u64, &PeerModel, bool) -> bool,
    ) -> bool {
        let written = self.written.borrow();
        let Some(entry) = written.get(id) else {
            return true;
        };
        let events = self.events.borrow();
        let received = self.received.borrow().contains(&(index, entry.event));
        rule(
            &events[&entry.event],
            entry,
            id.sequence,
            &self.receivers[index].model,
            received,
        )
    }

    /// Checks each entry `outbox` releases in full against the model, and delivers each
    /// segment to `receiver` when there is one; returns how many full entries went.
    fn drain(
        &self,
        index: usize,
        outbox: &mut Outbox<&Node>,
        deliver: bool,
    ) -> Result<usize, TestCaseError> {
        let mut full = 0;
        while let Some(segment) = outbox.next_segment().unwrap() {
            let decoded = decode_segment(segment.items.clone(), &segment.checkpoints);
            if let Some(error) = decoded.error {
                return Err(fail(format!(
                    "the sender's segment does not decode: {error}"
                )));
            }
            for item in decoded.items {
                let Incoming::Entry(entry) = item else {
                    continue;
                };
                let id = entry.id();
                if !self.model_allows(index, &id) {
                    let written = self.written.borrow().get(&id).cloned();
                    let event = written
                        .as_ref()
                        .and_then(|w| self.events.borrow().get(&w.event).cloned());
                    return Err(fail(format!(
                        "released to {:?} against the model: {written:?} of {event:?}",
                        self.receivers[index].model
                    )));
                }
                full += 1;
                if let Some(written) = self.written.borrow().get(&id) {
                    if deliver {
                        self.received.borrow_mut().insert((index, written.event));
                    }
                }
            }
            if deliver {
                let receiver = &self.receivers[index];
                if let Err(error) =
                    exchange::receive(&receiver.node, &receiver.sender_on_it, segment)
                {
                    // "rejected ORIGIN:SEQUENCE: reason" names the entry.
                    let text = error.to_string();
                    let sequence = text
                        .split(':')
                        .nth(1)
                        .and_then(|number| number.trim().parse::<u64>().ok());
                    let written = sequence.and_then(|sequence| {
                        let id = EntryId {
                            origin: self.sender.origin(),
                            sequence,
                        };
                        let written = self.written.borrow().get(&id).cloned()?;
                        let event = self.events.borrow().get(&written.event).cloned();
                        Some(format!("{written:?} of {event:?}"))
                    });
                    return Err(fail(format!(
                        "{:?} refused an honest segment: {text}; the entry: {written:?}",
                        receiver.model
                    )));
                }
            }
        }
        Ok(full)
    }

    /// One sync round: each receiver gets what its outbox holds, and has charged the sender
    /// with nothing.
    fn sync(&self, outboxes: &[RefCell<Outbox<&Node>>]) -> Result<(), TestCaseError> {
        for (index, outbox) in outboxes.iter().enumerate() {
            self.drain(index, &mut outbox.borrow_mut(), true)?;
            let receiver = &self.receivers[index];
            let status = peer::status(&receiver.node.store, &receiver.sender_on_it.key).unwrap();
            if status.failures != 0 || status.quarantined || status.last_error.is_some() {
                return Err(fail(format!("the honest sender was charged: {status:?}")));
            }
        }
        Ok(())
    }

    /// Runs one case: its changes, a sync after each, a final publish of every live event,
    /// then the checks of a newly paired peer and of arrival.
    fn run(
        &self,
        outboxes: &[RefCell<Outbox<&Node>>],
        changes: &[Change],
    ) -> Result<(), TestCaseError> {
        let start = self.sender.store.last_arrival();
        let mut case = Case::default();
        for change in changes {
            match change {
                Change::Sync => self.sync(outboxes)?,
                change => self.apply(&mut case, change),
            }
        }
        for event in 0..case.events.len() {
            self.apply(&mut case, &Change::Publish { event });
        }
        self.sync(outboxes)?;
        // A peer paired now pulls the case's entries from the start.
        for (index, receiver) in self.receivers.iter().enumerate() {
            let mut late = Outbox::new(&self.sender, receiver.on_sender.clone(), start);
            self.drain(index, &mut late, false)?;
        }
        // Every entry the model allows has arrived in full.
        let written: Vec<(EntryId, Uuid)> = self
            .written
            .borrow()
            .iter()
            .filter(|(_, w)| case.events.contains(&w.event))
            .map(|(id, w)| (*id, w.event))
            .collect();
        for (id, event) in written {
            for (index, receiver) in self.receivers.iter().enumerate() {
                if !self.model_owes(index, &id) {
                    continue;
                }
                let held = receiver.node.store.held(&id).unwrap();
                if !matches!(held, Some(Held::Entry(_))) {
                    let w = self.written.borrow()[&id].clone();
                    let model = self.events.borrow()[&event].clone();
                    let facts = world_decision(self, index, &id);
                    return Err(fail(format!(
                        "{:?} never received an allowed entry {id:?} (holds {:?}; the sender \
                         decides {facts}): {w:?} of {model:?}",
                        receiver.model,
                        held.map(|held| matches!(held, Held::Entry(_)))
                    )));
                }
            }
        }
        Ok(())
    }
}

#[test]
fn every_release_is_allowed_by_the_reference_model() {
    let world = world();
    let outboxes: Vec<RefCell<Outbox<&Node>>> = world
        .receivers
        .iter()
        .map(|receiver| RefCell::new(Outbox::new(&world.sender, receiver.on_sender.clone(), 0)))
        .collect();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(CASES);
    // No shrinking: the peers' streams live across cases, and a failed case leaves them
    // mid-segment, so the first failure is the one to read.
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 0,
        ..Config::default()
    });
    let changes = prop::collection::vec(change(), 1..=CHANGES_MAX);
    let result = runner.run(&changes, |changes| world.run(&outboxes, &changes));
    if let Err(error) = result {
        panic!("{error}");
    }
    // The cases did reach every kind of peer with something.
    for (index, receiver) in world.receivers.iter().enumerate() {
        let held = world
            .received
            .borrow()
            .iter()
            .filter(|(at, _)| *at == index)
            .count();
        assert!(
            held > 0,
            "{:?} received no event in {cases} cases",
            receiver.model
        );
    }
}

/// The sender's own decision for receiver `index` and entry `id`, for failure reports.
fn world_decision(world: &World, index: usize, id: &EntryId) -> String {
    let node = &world.sender;
    let mut releaser = threatlog::sync::release::Releaser::new(
        node,
        exchange::party(&world.receivers[index].on_sender),
        world.receivers[index].on_sender.rules.clone(),
    );
    match node.store.held(id).unwrap() {
        Some(Held::Entry(entry)) => format!(
            "{:?} from {:?}; the event shows tags {}",
            releaser.decide(&entry).unwrap(),
            releaser.facts(&entry).unwrap(),
            node.event_json(&entry.event().unwrap())
                .unwrap()
                .map(|e| e["Event"]["Tag"].to_string())
                .unwrap_or_default()
        ),
        other => format!("nothing to decide: {}", other.is_some()),
    }
}
