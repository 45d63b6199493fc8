//! The reducer never moves an item between events (SPEC §4.2): an entry of one event that
//! names an attribute, object, reference, report, tag target or sighting target of another
//! event changes nothing of it, even when such an entry is in a log.

use prost::bytes::Bytes;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::log::{seal, Draft, Head, NodeKey, VerifiedEntry};
use crate::proto::{self, op::Op, RecordKind};
use crate::view::{self, read, MemoryViews, Table, ViewDigest, ViewRead};

const EVENT_A: u128 = 0xA0;
const EVENT_B: u128 = 0xB0;
const ATTRIBUTE: u128 = 0xA1;
const OBJECT: u128 = 0xA2;
const OBJECT_ATTRIBUTE: u128 = 0xA3;
const REFERENCE: u128 = 0xA4;
const REPORT: u128 = 0xA5;

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn set(kind: RecordKind, key: u128, parent: Option<u128>, fields: Value) -> proto::Op {
    proto::Op {
        op: Some(Op::Set(proto::RecordSet {
            kind: kind as i32,
            key: Bytes::copy_from_slice(uuid(key).as_bytes()),
            parent: parent
                .map(|p| Bytes::copy_from_slice(uuid(p).as_bytes()))
                .unwrap_or_default(),
            fields_json: Bytes::from(fields.to_string()),
        })),
    }
}

fn tag(target: u128, name: &str, attached: bool) -> proto::Op {
    proto::Op {
        op: Some(Op::Tag(proto::TagLink {
            target: Bytes::copy_from_slice(uuid(target).as_bytes()),
            name: name.into(),
            attached,
            local: false,
        })),
    }
}

fn sighting(attribute: u128, sighting: u128) -> proto::Op {
    proto::Op {
        op: Some(Op::Sighting(proto::SightingAdd {
            uuid: Bytes::copy_from_slice(uuid(sighting).as_bytes()),
            attribute: Bytes::copy_from_slice(uuid(attribute).as_bytes()),
            fields_json: Bytes::from(json!({"type": "0", "source": "b"}).to_string()),
        })),
    }
}

fn erase(kind: RecordKind, key: u128) -> proto::Op {
    proto::Op {
        op: Some(Op::Erase(proto::Erase {
            kind: kind as i32,
            key: Bytes::copy_from_slice(uuid(key).as_bytes()),
        })),
    }
}

/// An entry of `key` (a node of `org`) about `event`, first of its chain, at `time_ms`.
fn entry(
    key: &NodeKey,
    org: u128,
    event: u128,
    time_ms: i64,
    ops: Vec<proto::Op>,
) -> VerifiedEntry {
    let draft = Draft {
        acting_org: uuid(org),
        acting_user: "test".into(),
        event: Some(uuid(event)),
        visibility: proto::Visibility {
            distribution: 3,
            sharing_group: Bytes::new(),
        },
        ops,
    };
    seal(key, uuid(org), &Head::EMPTY, draft, time_ms, [7; 16]).unwrap()
}

/// Org A's event: an attribute, an object with an attribute and a reference, a report, a tag
/// on the attribute and a sighting of it.
fn org_a_event(key: &NodeKey) -> VerifiedEntry {
    let ip = json!({"type": "ip-dst", "category": "Network activity", "value": "198.51.100.7"});
    entry(
        key,
        0xA,
        EVENT_A,
        1_000,
        vec![
            set(RecordKind::Attribute, ATTRIBUTE, None, ip.clone()),
            set(RecordKind::Object, OBJECT, None, json!({"name": "file"})),
            set(
                RecordKind::Attribute,
                OBJECT_ATTRIBUTE,
                Some(OBJECT),
                json!({"type": "filename", "category": "Payload delivery", "value": "a.exe", "object_relation": "filename"}),
            ),
            set(
                RecordKind::Reference,
                REFERENCE,
                Some(OBJECT),
                json!({"relationship_type": "drops", "referenced_uuid": uuid(ATTRIBUTE).to_string()}),
            ),
            set(
                RecordKind::EventReport,
                REPORT,
                None,
                json!({"name": "report", "content": "A's"}),
            ),
            tag(ATTRIBUTE, "tlp:amber", true),
            sighting(ATTRIBUTE, 0x51),
            set(
                RecordKind::Event,
                EVENT_A,
                None,
                json!({"info": "A's event", "distribution": "3"}),
            ),
        ],
    )
}

/// Org B's event, written after A's, whose entry also names every item of A's event.
fn org_b_hostile(key: &NodeKey) -> VerifiedEntry {
    entry(
        key,
        0xB,
        EVENT_B,
        2_000,
        vec![
            set(
                RecordKind::Event,
                EVENT_B,
                None,
                json!({"info": "B's event", "distribution": "3"}),
            ),
            set(
                RecordKind::Attribute,
                ATTRIBUTE,
                None,
                json!({"type": "ip-dst", "category": "Network activity", "value": "203.0.113.66"}),
            ),
            set(RecordKind::Object, OBJECT, None, json!({"name": "moved"})),
            set(
                RecordKind::Attribute,
                OBJECT_ATTRIBUTE,
                Some(OBJECT),
                json!({"value": "evil.exe"}),
            ),
            set(
                RecordKind::Reference,
                REFERENCE,
                Some(OBJECT),
                json!({"comment": "moved"}),
            ),
            set(
                RecordKind::EventReport,
                REPORT,
                None,
                json!({"content": "B's"}),
            ),
            tag(ATTRIBUTE, "tlp:amber", false),
            tag(ATTRIBUTE, "tlp:clear", true),
            tag(EVENT_A, "tlp:clear", true),
            sighting(ATTRIBUTE, 0x52),
            sighting(ATTRIBUTE, 0x51),
            erase(RecordKind::Attribute, OBJECT_ATTRIBUTE),
            erase(RecordKind::EventReport, REPORT),
        ],
    )
}

/// The same entry of B with only the op that belongs to B's event.
fn org_b_honest(key: &NodeKey) -> VerifiedEntry {
    entry(
        key,
        0xB,
        EVENT_B,
        2_000,
        vec![set(
            RecordKind::Event,
            EVENT_B,
            None,
            json!({"info": "B's event", "distribution": "3"}),
        )],
    )
}

fn digest(views: &MemoryViews) -> ViewDigest {
    view::digest(|table, visit| {
        views.iter(table).for_each(|(k, v)| visit(k, v));
        Ok(())
    })
    .unwrap()
}

fn apply_all(entries: &[&VerifiedEntry]) -> MemoryViews {
    let mut views = MemoryViews::new();
    for entry in entries {
        view::apply(&mut views, entry).unwrap();
    }
    views
}

#[test]
fn an_entry_of_another_event_naming_its_items_changes_nothing_of_them() {
    let (a, b) = (NodeKey::from_seed(&[1; 32]), NodeKey::from_seed(&[2; 32]));
    let a_event = org_a_event(&a);
    let hostile = apply_all(&[&a_event, &org_b_hostile(&b)]);
    let honest = apply_all(&[&a_event, &org_b_honest(&b)]);

    // Every item stays in A's event with A's values.
    let attribute = read::record(&hostile, RecordKind::Attribute, uuid(ATTRIBUTE).as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(attribute.event, Some(uuid(EVENT_A)));
    assert_eq!(attribute.str_field("value"), Some("198.51.100.7"));
    let object = read::record(&hostile, RecordKind::Object, uuid(OBJECT).as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(
        (object.event, object.str_field("name")),
        (Some(uuid(EVENT_A)), Some("file"))
    );
    let inner = read::record(
        &hostile,
        RecordKind::Attribute,
        uuid(OBJECT_ATTRIBUTE).as_bytes(),
    )
    .unwrap()
    .unwrap();
    assert!(inner.is_live(), "the erase of another event was ignored");
    assert_eq!(inner.str_field("value"), Some("a.exe"));
    let report = read::record(&hostile, RecordKind::EventReport, uuid(REPORT).as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(report.str_field("content"), Some("A's"));
    // B's event lists none of them, and A's tag and sighting are untouched.
    assert_eq!(
        hostile
            .scan(Table::Children, uuid(EVENT_B).as_bytes())
            .unwrap(),
        vec![]
    );
    let mut link = uuid(ATTRIBUTE).as_bytes().to_vec();
    link.extend_from_slice(b"tlp:amber");
    let link: crate::view::TagLinkState =
        serde_json::from_slice(&hostile.get(Table::TagLinks, &link).unwrap().unwrap()).unwrap();
    assert_eq!((link.attached, link.event), (true, uuid(EVENT_A)));
    let mut sighted = uuid(ATTRIBUTE).as_bytes().to_vec();
    sighted.extend_from_slice(uuid(0x52).as_bytes());
    assert_eq!(hostile.get(Table::Sightings, &sighted).unwrap(), None);

    // Nothing at all differs from the entry without the ops naming A's items.
    assert_eq!(digest(&hostile), digest(&honest));
}
