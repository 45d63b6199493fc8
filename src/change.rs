//! Turns validated MISP objects into log drafts: one draft per visibility, split further when
//! a group is over the per-entry limits. Pure.

use prost::bytes::Bytes;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::log::{Draft, ENTRY_BYTES_MAX, OPS_PER_ENTRY_MAX};
use crate::model::{Attribute, Event, MispObject, Organisation, Sighting, Tag};
use crate::proto::{self, op::Op, RecordKind};

/// Bytes of ops put into one draft before starting another; half the entry limit leaves room
/// for the envelope and keeps entries well under [`ENTRY_BYTES_MAX`].
const DRAFT_OPS_BYTES_MAX: usize = ENTRY_BYTES_MAX / 2;

/// Who makes a change: the acting organisation and user on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The organisation on whose behalf the change is made.
    pub org: Uuid,
    /// The user (email, or `system` for node-initiated changes).
    pub user: String,
}

/// A MISP distribution level (SPEC §6.1), stored as its number in JSON fields and in
/// protobuf (`Visibility.distribution`): 0 the owner organisation only, 1 this community,
/// 2 connected communities, 3 all communities, 4 a sharing group, 5 inherit the event's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Distribution(pub u8);

impl Distribution {
    /// 0: the owner organisation only.
    pub const ORGANISATION: Distribution = Distribution(0);
    /// 1: every organisation of this community.
    pub const COMMUNITY: Distribution = Distribution(1);
    /// 2: connected communities (lands as 1 one hop away).
    pub const CONNECTED: Distribution = Distribution(2);
    /// 3: all communities.
    pub const ALL: Distribution = Distribution(3);
    /// 4: the members of a sharing group.
    pub const SHARING_GROUP: Distribution = Distribution(4);
    /// 5: an item inherits its event's distribution.
    pub const INHERIT: Distribution = Distribution(5);

    /// Whether this level inherits the event's (5).
    pub fn inherits(self) -> bool {
        self == Distribution::INHERIT
    }

    /// Whether every organisation with users on a node holding the data sees it (1–3).
    pub fn community_wide(self) -> bool {
        (1..=3).contains(&self.0)
    }

    /// The level as stored.
    pub fn level(self) -> u8 {
        self.0
    }
}

impl From<u8> for Distribution {
    fn from(level: u8) -> Self {
        Distribution(level)
    }
}

/// A visibility: distribution level and, for level 4, the sharing group. The API reads an
/// event's from its record to place changes to the event in the right entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visibility {
    /// The distribution level.
    pub distribution: Distribution,
    /// The sharing group, for level 4 (stored as given otherwise, and ignored there).
    pub sharing_group: Option<Uuid>,
}

impl Visibility {
    /// Level `distribution` with `sharing_group`.
    pub const fn new(distribution: u8, sharing_group: Option<Uuid>) -> Visibility {
        Visibility {
            distribution: Distribution(distribution),
            sharing_group,
        }
    }

    /// The visibility of entries about an item with this own visibility inside a context
    /// whose entries carry `context`: the context's when the item inherits (5), else its own
    /// (the sharing group only for level 4).
    pub fn within(self, context: Visibility) -> Visibility {
        match self.distribution {
            Distribution::INHERIT => context,
            Distribution::SHARING_GROUP => self,
            distribution => Visibility {
                distribution,
                sharing_group: None,
            },
        }
    }
}

/// The visibility of entries about an event and of the items that inherit its distribution:
/// level 5, so that the event's reach when an entry is released decides (SPEC §6.2 evaluates
/// release now), not its reach when the entry was written.
pub const INHERIT: Visibility = Visibility {
    distribution: Distribution::INHERIT,
    sharing_group: None,
};

/// Ops grouped by visibility, in first-use order. Local tag links get groups of their own,
/// because an entry that carries one never leaves the node and must not hold back anything
/// else.
#[derive(Default)]
struct Groups {
    groups: Vec<((Visibility, bool), Vec<proto::Op>)>,
}

impl Groups {
    fn push(&mut self, key: Visibility, op: proto::Op) {
        let local = matches!(&op.op, Some(Op::Tag(link)) if link.local);
        let key = (key, local);
        match self.groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ops)) => ops.push(op),
            None => self.groups.push((key, vec![op])),
        }
    }
}

fn op(op: Op) -> proto::Op {
    proto::Op { op: Some(op) }
}

fn set(
    kind: RecordKind,
    key: &[u8],
    parent: Option<Uuid>,
    fields: &Map<String, Value>,
) -> proto::Op {
    // A JSON map of plain values always serialises.
    set_json(
        kind,
        key,
        parent,
        serde_json::to_vec(fields).expect("fields serialise"),
    )
}

/// [`set`] with the fields already serialised.
fn set_json(kind: RecordKind, key: &[u8], parent: Option<Uuid>, fields_json: Vec<u8>) -> proto::Op {
    op(Op::Set(proto::RecordSet {
        kind: kind as i32,
        key: Bytes::copy_from_slice(key),
        parent: parent
            .map(|uuid| Bytes::copy_from_slice(uuid.as_bytes()))
            .unwrap_or_default(),
        fields_json: Bytes::from(fields_json),
    }))
}

/// The op that records an organisation in the shared directory, marking it local (it has
/// users on this node) or remote.
pub fn organisation_op(org: &Organisation, local: bool) -> proto::Op {
    let mut fields = org.fields();
    fields.insert("local".into(), json!(local));
    set(RecordKind::Organisation, org.uuid.as_bytes(), None, &fields)
}

/// The op that records the name of an organisation named in data (an event's creator),
/// leaving whether it is local to the node's registrations.
fn named_organisation_op(org: &Organisation) -> proto::Op {
    set(
        RecordKind::Organisation,
        org.uuid.as_bytes(),
        None,
        &org.fields(),
    )
}

/// The op that attaches `tag` to `target`. A tag's colour and exportable flag are this node's
/// own settings (`Node::define_tag`), never written by attaching it.
fn tag_op(tag: &Tag, target: &Uuid) -> proto::Op {
    tag_link_op(target, &tag.name, true, tag.local)
}

/// The op that adds a sighting to `attribute`.
pub fn sighting_op(sighting: &Sighting, attribute: &Uuid) -> proto::Op {
    let mut fields = sighting.fields();
    fields.insert("attribute_uuid".into(), json!(attribute.to_string()));
    op(Op::Sighting(proto::SightingAdd {
        uuid: Bytes::copy_from_slice(sighting.uuid.as_bytes()),
        attribute: Bytes::copy_from_slice(attribute.as_bytes()),
        fields_json: Bytes::from(serde_json::to_vec(&fields).expect("fields serialise")),
    }))
}

/// The visibility of an item with its own `distribution` inside a context whose visibility is
/// `inherited` (level 5 inherits).
fn visibility(distribution: u8, group: Option<Uuid>, inherited: Visibility) -> Visibility {
    Visibility::new(distribution, group).within(inherited)
}

fn attribute_ops(
    groups: &mut Groups,
    attribute: &Attribute,
    parent: Option<Uuid>,
    inherited: Visibility,
) {
    let key = visibility(
        attribute.distribution,
        attribute.sharing_group_uuid,
        inherited,
    );
    groups.push(
        key,
        set_json(
            RecordKind::Attribute,
            attribute.uuid.as_bytes(),
            parent,
            attribute.fields_json(),
        ),
    );
    for tag in &attribute.tags {
        groups.push(key, tag_op(tag, &attribute.uuid));
    }
    for sighting in &attribute.sightings {
        groups.push(key, sighting_op(sighting, &attribute.uuid));
    }
}

fn object_ops(groups: &mut Groups, object: &MispObject, inherited: Visibility) {
    let key = visibility(object.distribution, object.sharing_group_uuid, inherited);
    groups.push(
        key,
        set(
            RecordKind::Object,
            object.uuid.as_bytes(),
            None,
            &object.fields(),
        ),
    );
    for attribute in &object.attributes {
        attribute_ops(groups, attribute, Some(object.uuid), key);
    }
    for reference in &object.references {
        groups.push(
            key,
            set(
                RecordKind::Reference,
                reference.uuid.as_bytes(),
                Some(object.uuid),
                &reference.fields(),
            ),
        );
    }
}

/// The drafts that create or update `event` with everything it contains.
pub fn event_drafts(event: &Event, actor: &Actor) -> Vec<Draft> {
    let event_key = INHERIT;
    let mut groups = Groups::default();
    if let Some(orgc) = &event.orgc {
        groups.push(event_key, named_organisation_op(orgc));
    }
    groups.push(
        event_key,
        set(
            RecordKind::Event,
            event.uuid.as_bytes(),
            None,
            &event.fields(),
        ),
    );
    for tag in &event.tags {
        groups.push(event_key, tag_op(tag, &event.uuid));
    }
    for attribute in &event.attributes {
        attribute_ops(&mut groups, attribute, None, event_key);
    }
    for object in &event.objects {
        object_ops(&mut groups, object, event_key);
    }
    for report in &event.reports {
        let key = visibility(report.distribution, report.sharing_group_uuid, event_key);
        groups.push(
            key,
            set(
                RecordKind::EventReport,
                report.uuid.as_bytes(),
                None,
                &report.fields(),
            ),
        );
    }
    drafts(groups, Some(event.uuid), actor)
}

/// Whether `op` sets fields of an event record (which is how publishing is written).
fn sets_event(op: &proto::Op) -> bool {
    matches!(&op.op, Some(Op::Set(set)) if set.kind == RecordKind::Event as i32)
}

/// Splits each visibility group into drafts within the per-entry limits. Ops that set the
/// event record go last, in the last draft: a publish then covers every entry of its change,
/// as peers release entries of an event up to its latest publish (SPEC §6.2).
fn drafts(mut groups: Groups, event: Option<Uuid>, actor: &Actor) -> Vec<Draft> {
    for (_, ops) in &mut groups.groups {
        let (event_sets, others): (Vec<_>, Vec<_>) =
            std::mem::take(ops).into_iter().partition(sets_event);
        *ops = others;
        ops.extend(event_sets);
    }
    groups
        .groups
        .sort_by_key(|(_, ops)| ops.iter().any(sets_event));
    let mut out = Vec::new();
    for ((key, _local), ops) in groups.groups {
        let visibility = proto::Visibility {
            distribution: u32::from(key.distribution.level()),
            sharing_group: key
                .sharing_group
                .map(|uuid| Bytes::copy_from_slice(uuid.as_bytes()))
                .unwrap_or_default(),
        };
        let mut current: Vec<proto::Op> = Vec::new();
        let mut current_bytes = 0;
        for op in ops {
            let bytes = prost::Message::encoded_len(&op);
            if !current.is_empty()
                && (current.len() >= OPS_PER_ENTRY_MAX
                    || current_bytes + bytes > DRAFT_OPS_BYTES_MAX)
            {
                out.push(draft(
                    actor,
                    event,
                    &visibility,
                    std::mem::take(&mut current),
                ));
                current_bytes = 0;
            }
            current_bytes += bytes;
            current.push(op);
        }
        if !current.is_empty() {
            out.push(draft(actor, event, &visibility, current));
        }
    }
    out
}

fn draft(
    actor: &Actor,
    event: Option<Uuid>,
    visibility: &proto::Visibility,
    ops: Vec<proto::Op>,
) -> Draft {
    Draft {
        acting_org: actor.org,
        acting_user: actor.user.clone(),
        event,
        visibility: visibility.clone(),
        ops,
    }
}

/// A draft of directory data (organisations, sharing groups), visible to the community.
pub fn directory_draft(ops: Vec<proto::Op>, actor: &Actor) -> Draft {
    draft(
        actor,
        None,
        &proto::Visibility {
            distribution: u32::from(Distribution::COMMUNITY.level()),
            sharing_group: Bytes::new(),
        },
        ops,
    )
}

/// The op that sets `fields` of the record `kind`/`key` (child of `parent` for object
/// attributes and references), last writer wins per field.
pub fn record_op(
    kind: RecordKind,
    key: &[u8],
    parent: Option<Uuid>,
    fields: &Map<String, Value>,
) -> proto::Op {
    set(kind, key, parent, fields)
}

/// The op that attaches (`attached`) or detaches `name` on `target`.
pub fn tag_link_op(target: &Uuid, name: &str, attached: bool, local: bool) -> proto::Op {
    op(Op::Tag(proto::TagLink {
        target: Bytes::copy_from_slice(target.as_bytes()),
        name: name.to_string(),
        attached,
        local,
    }))
}

/// The op that hard-deletes a record of an event.
pub fn erase_op(kind: RecordKind, key: &[u8]) -> proto::Op {
    op(Op::Erase(proto::Erase {
        kind: kind as i32,
        key: Bytes::copy_from_slice(key),
    }))
}

/// The op that deletes the record `kind`/`key` of an event: erased when `hard`, else marked
/// `deleted` with its timestamp moved to `timestamp` (epoch seconds), as MISP's soft delete.
pub fn delete_op(kind: RecordKind, key: &[u8], hard: bool, timestamp: i64) -> proto::Op {
    if hard {
        return erase_op(kind, key);
    }
    let mut fields = Map::new();
    fields.insert("deleted".into(), json!(true));
    fields.insert("timestamp".into(), json!(timestamp.to_string()));
    record_op(kind, key, None, &fields)
}

/// The op that deletes the entry's whole event.
pub fn tombstone_op(reason: &str) -> proto::Op {
    op(Op::Tombstone(proto::EventTombstone {
        reason: reason.to_string(),
    }))
}

/// The op that unpublishes `event`, as MISP does on every change of its contents; with
/// `timestamp` (epoch seconds) it also moves the event's timestamp to it.
pub fn unpublish_op(event: &Uuid, timestamp: Option<i64>) -> proto::Op {
    let mut fields = Map::new();
    fields.insert("published".into(), json!(false));
    if let Some(timestamp) = timestamp {
        fields.insert("timestamp".into(), json!(timestamp.to_string()));
    }
    record_op(RecordKind::Event, event.as_bytes(), None, &fields)
}

/// The drafts of a change inside `event`: `ops` with `visibility`, then, with the event's own
/// `event_visibility`, the op that unpublishes the event and moves its timestamp to
/// `timestamp`, as MISP does on every change of an event's contents.
pub fn event_change_drafts(
    event: Uuid,
    visibility: Visibility,
    ops: Vec<proto::Op>,
    event_visibility: Visibility,
    timestamp: i64,
    actor: &Actor,
) -> Vec<Draft> {
    let mut drafts = event_ops_drafts(event, visibility, ops, actor);
    drafts.extend(event_ops_drafts(
        event,
        event_visibility,
        vec![unpublish_op(&event, Some(timestamp))],
        actor,
    ));
    drafts
}

/// The drafts that apply `ops` to `event`, all with `visibility`.
pub fn event_ops_drafts(
    event: Uuid,
    visibility: Visibility,
    ops: Vec<proto::Op>,
    actor: &Actor,
) -> Vec<Draft> {
    let mut groups = Groups::default();
    for op in ops {
        groups.push(visibility, op);
    }
    drafts(groups, Some(event), actor)
}

/// The drafts that add or update `attributes` (outside objects) of `event`, whose own
/// visibility is `event_visibility`, followed by `extra` ops with the event's visibility.
pub fn attribute_drafts(
    event: Uuid,
    event_visibility: Visibility,
    attributes: &[Attribute],
    extra: Vec<proto::Op>,
    actor: &Actor,
) -> Vec<Draft> {
    let mut groups = Groups::default();
    for attribute in attributes {
        attribute_ops(&mut groups, attribute, None, event_visibility);
    }
    for op in extra {
        groups.push(event_visibility, op);
    }
    drafts(groups, Some(event), actor)
}

/// The drafts that add or update `objects` (with their attributes and references) of `event`,
/// whose own visibility is `event_visibility`, followed by `extra` ops with the event's
/// visibility.
pub fn object_drafts(
    event: Uuid,
    event_visibility: Visibility,
    objects: &[MispObject],
    extra: Vec<proto::Op>,
    actor: &Actor,
) -> Vec<Draft> {
    let mut groups = Groups::default();
    for object in objects {
        object_ops(&mut groups, object, event_visibility);
    }
    for op in extra {
        groups.push(event_visibility, op);
    }
    drafts(groups, Some(event), actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(draft: &Draft) -> Vec<i32> {
        draft
            .ops
            .iter()
            .filter_map(|op| match &op.op {
                Some(Op::Set(set)) => Some(set.kind),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_item_inherits_only_at_level_5_and_names_a_group_only_at_level_4() {
        let group = Some(Uuid::from_u128(7));
        let event = Visibility::new(3, None);
        assert_eq!(Visibility::new(5, group).within(event), event);
        assert_eq!(
            Visibility::new(4, group).within(event),
            Visibility::new(4, group)
        );
        assert_eq!(
            Visibility::new(1, group).within(event),
            Visibility::new(1, None)
        );
        assert!(Distribution::INHERIT.inherits());
        assert!(!Distribution::SHARING_GROUP.inherits());
        assert!(Distribution::CONNECTED.community_wide());
        assert!(!Distribution::ORGANISATION.community_wide());
    }

    #[test]
    fn an_unpublish_moves_the_timestamp_only_when_given_one() {
        let event = Uuid::from_u128(9);
        let fields = |op: proto::Op| match op.op {
            Some(Op::Set(set)) => serde_json::from_slice::<Value>(&set.fields_json).unwrap(),
            other => panic!("not a set: {other:?}"),
        };
        assert_eq!(
            fields(unpublish_op(&event, Some(1_700_000_000))),
            json!({"published": false, "timestamp": "1700000000"})
        );
        assert_eq!(
            fields(unpublish_op(&event, None)),
            json!({"published": false})
        );
        assert_eq!(
            fields(delete_op(RecordKind::Attribute, event.as_bytes(), false, 5)),
            json!({"deleted": true, "timestamp": "5"})
        );
        assert!(matches!(
            delete_op(RecordKind::Attribute, event.as_bytes(), true, 5).op,
            Some(Op::Erase(_))
        ));
    }

    #[test]
    fn ops_are_grouped_by_visibility_with_the_event_last() {
        let group = "11111111-2222-4333-8444-555555555555";
        let event = Event::from_json(&json!({"Event": {
            "info": "grouping",
            "distribution": "1",
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [
                {"type": "domain", "value": "inherit.example", "distribution": "5"},
                {"type": "domain", "value": "org-only.example", "distribution": "0"},
            ],
            "Object": [{"name": "file", "distribution": "4", "sharing_group_uuid": group,
                        "Attribute": [{"type": "filename", "value": "a.exe", "object_relation": "filename"}]}],
        }}))
        .unwrap();
        let actor = Actor {
            org: Uuid::from_u128(1),
            user: "u".into(),
        };
        let drafts = event_drafts(&event, &actor);
        let visibilities: Vec<(u32, Vec<u8>)> = drafts
            .iter()
            .map(|d| {
                (
                    d.visibility.distribution,
                    d.visibility.sharing_group.to_vec(),
                )
            })
            .collect();
        let group = Uuid::parse_str(group).unwrap().as_bytes().to_vec();
        // Items with their own level keep it; the event and what inherits its level carry 5
        // (the event's level when released), last, with the event's own fields at the very
        // end so that a publish covers the whole change.
        assert_eq!(visibilities, vec![(0, vec![]), (4, group), (5, vec![])]);
        let event_kind = RecordKind::Event as i32;
        let attribute = RecordKind::Attribute as i32;
        assert_eq!(kinds(&drafts[0]), vec![attribute]);
        assert_eq!(
            kinds(&drafts[1]),
            vec![RecordKind::Object as i32, attribute]
        );
        assert_eq!(kinds(&drafts[2]), vec![attribute, event_kind]);
        assert!(drafts.iter().all(|d| d.event == Some(event.uuid)));
    }
}
