//! Write authority against views built by the real reducer: each rule of SPEC §4.2, with the
//! attempts to get around it.

use prost::bytes::Bytes;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::log::{seal, Draft, Head, NodeKey};
use crate::proto::{self, RecordSet};
use crate::view::{apply, MemoryViews};

/// A node of one organisation signing its own chain.
struct Node {
    key: NodeKey,
    org: Uuid,
    head: Head,
    time_ms: i64,
}

impl Node {
    fn new(seed: u8, org: u128) -> Node {
        Node {
            key: NodeKey::from_seed(&[seed; 32]),
            org: Uuid::from_u128(org),
            head: Head::EMPTY,
            time_ms: 1_000,
        }
    }

    /// Seals the next entry acting for `acting` about `event` (`None`: directory data).
    fn entry(&mut self, acting: Uuid, event: Option<Uuid>, ops: Vec<proto::Op>) -> VerifiedEntry {
        let draft = Draft {
            acting_org: acting,
            acting_user: "test".into(),
            event,
            visibility: proto::Visibility::default(),
            ops,
        };
        self.time_ms += 1;
        let entry = seal(
            &self.key,
            self.org,
            &self.head,
            draft,
            self.time_ms,
            [9; 16],
        )
        .unwrap();
        self.head = Head::after(&entry);
        entry
    }

    /// Seals the next entry acting for its own organisation.
    fn own(&mut self, event: Option<Uuid>, ops: Vec<proto::Op>) -> VerifiedEntry {
        self.entry(self.org, event, ops)
    }
}

fn set(kind: RecordKind, key: Uuid, parent: Option<Uuid>, fields: Value) -> proto::Op {
    proto::Op {
        op: Some(Op::Set(RecordSet {
            kind: kind as i32,
            key: Bytes::copy_from_slice(key.as_bytes()),
            parent: parent
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .unwrap_or_default(),
            fields_json: Bytes::from(fields.to_string()),
        })),
    }
}

fn tag(target: Uuid, name: &str, local: bool) -> proto::Op {
    proto::Op {
        op: Some(Op::Tag(TagLink {
            target: Bytes::copy_from_slice(target.as_bytes()),
            name: name.into(),
            attached: true,
            local,
        })),
    }
}

fn sighting(attribute: Uuid) -> proto::Op {
    proto::Op {
        op: Some(Op::Sighting(proto::SightingAdd {
            uuid: Bytes::copy_from_slice(Uuid::new_v4().as_bytes()),
            attribute: Bytes::copy_from_slice(attribute.as_bytes()),
            fields_json: Bytes::from(json!({"type": "0"}).to_string()),
        })),
    }
}

fn organisation(uuid: Uuid, fields: Value) -> proto::Op {
    set(RecordKind::Organisation, uuid, None, fields)
}

fn check(views: &MemoryViews, entry: &VerifiedEntry) -> Result<(), Refusal> {
    match authorize(entry, views, &NoOrgKeys) {
        Ok(()) => Ok(()),
        Err(AuthorityError::Refused(refusal)) => Err(refusal),
        Err(AuthorityError::Views(error)) => panic!("views: {error}"),
    }
}

/// Checks `entry` and, when it is allowed, applies it, as the store does.
fn write(views: &mut MemoryViews, entry: &VerifiedEntry) -> Result<(), Refusal> {
    check(views, entry)?;
    apply(views, entry).unwrap();
    Ok(())
}

/// Every org key bound: no organisation may be hosted.
struct AllBound;

impl OrgKeys for AllBound {
    fn is_bound(&self, _org: &Uuid) -> Result<bool, KvError> {
        Ok(true)
    }
}

#[test]
fn a_node_acts_only_for_its_org_and_the_orgs_it_hosts() {
    let mut views = MemoryViews::new();
    let (mut x_node, mut hub, mut other_hub) =
        (Node::new(1, 0x1), Node::new(2, 0x2), Node::new(3, 0x3));
    let member = Uuid::from_u128(0x4);
    let x = x_node.org;
    // X's own node marks its organisation local; the hub registers a member it hosts.
    write(
        &mut views,
        &x_node.own(
            None,
            vec![organisation(x, json!({"name": "X", "local": true}))],
        ),
    )
    .unwrap();
    let register = hub.own(
        None,
        vec![organisation(member, json!({"name": "M", "local": true}))],
    );
    write(&mut views, &register).unwrap();

    // The hub acts for the member it registered, and writes its record.
    let event = Uuid::from_u128(0xE);
    let info = set(RecordKind::Event, event, None, json!({"info": "for M"}));
    write(
        &mut views,
        &hub.entry(member, Some(event), vec![info.clone()]),
    )
    .unwrap();
    write(
        &mut views,
        &hub.own(
            None,
            vec![organisation(
                member,
                json!({"name": "M2", "date_modified": "1"}),
            )],
        ),
    )
    .unwrap();
    // With the member bound to an org key, it could not.
    let as_member = hub.entry(member, Some(event), vec![info.clone()]);
    assert!(matches!(
        authorize(&as_member, &views, &AllBound),
        Err(AuthorityError::Refused(Refusal::ActingOrg { .. }))
    ));

    // Another hub can neither register the member again, nor act for it, nor for X.
    let refused = check(
        &views,
        &other_hub.own(None, vec![organisation(member, json!({"local": true}))]),
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!(
            "write authority: organisation {member} is registered by node {}: only it writes its record; node {} may only name it",
            hub.key.origin(),
            other_hub.key.origin()
        )
    );
    for acting in [member, x] {
        let refused = check(
            &views,
            &other_hub.entry(acting, Some(event), vec![info.clone()]),
        );
        assert_eq!(
            refused,
            Err(Refusal::ActingOrg {
                node_org: other_hub.org,
                acting
            })
        );
    }
    // Setting `local` on X's record: X has a node of its own.
    let refused = check(
        &views,
        &hub.own(
            None,
            vec![organisation(x, json!({"name": "X", "local": true}))],
        ),
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!(
            "write authority: organisation {x} has nodes of its own: only they write its record; node {} may only name it",
            hub.key.origin()
        )
    );
    // X's own registration of its org never gave anyone else authority, and a bound
    // organisation cannot be registered at all.
    let fresh = Uuid::from_u128(0x5);
    let register = other_hub.own(
        None,
        vec![organisation(fresh, json!({"name": "F", "local": true}))],
    );
    assert!(matches!(
        authorize(&register, &views, &AllBound),
        Err(AuthorityError::Refused(Refusal::Organisation { .. }))
    ));
    // Anyone may name an organisation, as events name their creator.
    write(
        &mut views,
        &other_hub.own(
            None,
            vec![organisation(x, json!({"name": "Renamed", "uuid": x}))],
        ),
    )
    .unwrap();
    let record = read::record(&views, RecordKind::Organisation, x.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(
        record.str_field("name"),
        Some("X"),
        "the own node's name outranks others'"
    );
}

#[test]
fn only_the_owner_changes_an_event_others_add_sightings_and_local_tags() {
    let mut views = MemoryViews::new();
    let (mut a, mut b) = (Node::new(1, 0xA), Node::new(2, 0xB));
    let (event, attribute) = (Uuid::from_u128(0xE), Uuid::from_u128(0xE1));
    let ip = json!({"type": "ip-dst", "category": "Network activity", "value": "198.51.100.1"});
    write(
        &mut views,
        &a.own(
            Some(event),
            vec![
                set(RecordKind::Attribute, attribute, None, ip.clone()),
                tag(event, "tlp:amber", false),
                set(RecordKind::Event, event, None, json!({"info": "A's"})),
            ],
        ),
    )
    .unwrap();
    let conflict = Err(Refusal::EventOwner {
        event,
        owner: a.org,
        acting: b.org,
    });
    for op in [
        set(RecordKind::Event, event, None, json!({"info": "B's"})),
        set(
            RecordKind::Attribute,
            attribute,
            None,
            json!({"value": "203.0.113.1"}),
        ),
        set(
            RecordKind::Attribute,
            Uuid::from_u128(0xB1),
            None,
            ip.clone(),
        ),
        tag(attribute, "tlp:clear", false),
        proto::Op {
            op: Some(Op::Tombstone(proto::EventTombstone { reason: "x".into() })),
        },
    ] {
        assert_eq!(check(&views, &b.own(Some(event), vec![op])), conflict);
    }
    // Sightings, local tags (kept apart from the owner's global tag of the same name) and
    // tag names are anyone's.
    let definition = set(
        RecordKind::Tag,
        Uuid::nil(),
        None,
        json!({"colour": "#000"}),
    );
    write(
        &mut views,
        &b.own(
            Some(event),
            vec![
                sighting(attribute),
                tag(attribute, "b:seen", true),
                tag(event, "tlp:amber", true),
                definition,
            ],
        ),
    )
    .unwrap();
    let global = crate::view::tag_link_key(&event, "tlp:amber", None);
    let global: crate::view::TagLinkState =
        serde_json::from_slice(&views.get(Table::TagLinks, &global).unwrap().unwrap()).unwrap();
    assert!(global.attached && !global.local, "{global:?}");
    // The owner goes on editing.
    write(
        &mut views,
        &a.own(
            Some(event),
            vec![set(
                RecordKind::Event,
                event,
                None,
                json!({"info": "A's 2"}),
            )],
        ),
    )
    .unwrap();
}

#[test]
fn an_entry_may_not_name_an_item_of_another_event_even_its_owners() {
    let mut views = MemoryViews::new();
    let mut a = Node::new(1, 0xA);
    let (first, second) = (Uuid::from_u128(0xE1), Uuid::from_u128(0xE2));
    let (attribute, object) = (Uuid::from_u128(0xA1), Uuid::from_u128(0x0B));
    write(
        &mut views,
        &a.own(
            Some(first),
            vec![
                set(RecordKind::Object, object, None, json!({"name": "file"})),
                set(
                    RecordKind::Attribute,
                    attribute,
                    None,
                    json!({"value": "x"}),
                ),
                set(RecordKind::Event, first, None, json!({"info": "first"})),
            ],
        ),
    )
    .unwrap();
    write(
        &mut views,
        &a.own(
            Some(second),
            vec![set(
                RecordKind::Event,
                second,
                None,
                json!({"info": "second"}),
            )],
        ),
    )
    .unwrap();
    let foreign = |kind, item| {
        Err(Refusal::ForeignItem {
            kind,
            item,
            home: first,
            event: second,
        })
    };
    let erase = |kind: RecordKind, key: Uuid| proto::Op {
        op: Some(Op::Erase(proto::Erase {
            kind: kind as i32,
            key: Bytes::copy_from_slice(key.as_bytes()),
        })),
    };
    for (op, kind, item) in [
        (
            set(
                RecordKind::Attribute,
                attribute,
                None,
                json!({"value": "y"}),
            ),
            "attribute",
            attribute,
        ),
        (
            set(RecordKind::Object, object, None, json!({"name": "moved"})),
            "object",
            object,
        ),
        (
            set(
                RecordKind::Attribute,
                Uuid::from_u128(0xA9),
                Some(object),
                json!({"value": "z"}),
            ),
            "object",
            object,
        ),
        (
            erase(RecordKind::Attribute, attribute),
            "attribute",
            attribute,
        ),
        (tag(attribute, "tlp:red", false), "attribute", attribute),
        (tag(first, "tlp:red", false), "event", first),
        (sighting(attribute), "attribute", attribute),
    ] {
        assert_eq!(
            check(&views, &a.own(Some(second), vec![op])),
            foreign(kind, item)
        );
    }
    assert_eq!(
        foreign("attribute", attribute).unwrap_err().to_string(),
        format!(
            "foreign item: attribute {attribute} belongs to event {first}, not to event {second}"
        )
    );
}

#[test]
fn a_sharing_group_is_its_creators_and_extended_only_by_members_it_marks() {
    let mut views = MemoryViews::new();
    let (mut owner, mut extender, mut member) =
        (Node::new(1, 0xA), Node::new(2, 0xB), Node::new(3, 0xC));
    let (a, b, c, outsider) = (owner.org, extender.org, member.org, Uuid::from_u128(0xD));
    let group = Uuid::from_u128(0x56);
    let group_op = |fields: Value| set(RecordKind::SharingGroup, group, None, fields);

    // Creating a group names its creator: the acting organisation, nobody else.
    let forged = extender.own(None, vec![group_op(json!({"name": "g", "org_uuid": a}))]);
    assert_eq!(
        check(&views, &forged),
        Err(Refusal::GroupCreator { group, acting: b })
    );
    write(
        &mut views,
        &owner.own(
            None,
            vec![group_op(
                json!({"name": "g", "org_uuid": a, "organisations": [a, b, c], "extend": [b]}),
            )],
        ),
    )
    .unwrap();

    // A member not marked extend adds no one, itself included.
    let join = member.own(
        None,
        vec![group_op(json!({"organisations": [a, b, c, outsider]}))],
    );
    assert_eq!(
        check(&views, &join),
        Err(Refusal::GroupOwner {
            group,
            owner: a,
            acting: c
        })
    );
    // A member marked extend adds organisations and nodes, and does nothing else.
    write(
        &mut views,
        &extender.own(
            None,
            vec![group_op(
                json!({"organisations": [a, b, c, outsider], "modified": "2"}),
            )],
        ),
    )
    .unwrap();
    let refused = check(
        &views,
        &extender.own(
            None,
            vec![group_op(json!({"organisations": [a, b, outsider]}))],
        ),
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!(
            "write authority: org {b} may extend sharing group {group}, not remove org {c} from it"
        )
    );
    for fields in [
        json!({"extend": [b, c]}),
        json!({"name": "mine"}),
        json!({"org_uuid": b}),
        json!({"deleted": true}),
    ] {
        let refused = check(&views, &extender.own(None, vec![group_op(fields)]));
        assert!(
            matches!(refused, Err(Refusal::GroupExtend { .. })),
            "{refused:?}"
        );
    }
    // The owner changes anything but its creator.
    write(
        &mut views,
        &owner.own(
            None,
            vec![group_op(json!({"organisations": [a, b], "extend": []}))],
        ),
    )
    .unwrap();
    assert_eq!(
        check(
            &views,
            &owner.own(None, vec![group_op(json!({"org_uuid": b}))])
        ),
        Err(Refusal::GroupCreator { group, acting: a })
    );
    // An extender the owner unmarked is an ordinary member again.
    let refused = check(
        &views,
        &extender.own(None, vec![group_op(json!({"organisations": [a, b, c]}))]),
    );
    assert_eq!(
        refused,
        Err(Refusal::GroupOwner {
            group,
            owner: a,
            acting: b
        })
    );
}
