//! Property: the views are a function of the set of entries. Entries from three origins applied
//! in any interleaving that keeps each origin's order give the same view digest.

use proptest::prelude::*;
use prost::bytes::Bytes;
use serde_json::json;
use threatlog::log::{seal, Draft, Head, NodeKey, VerifiedEntry};
use threatlog::proto::{self, op::Op, RecordKind};
use threatlog::view::{self, MemoryViews, ViewDigest};
use uuid::Uuid;

const EVENTS: [u128; 2] = [0xE1, 0xE2];
const ATTRIBUTES: [u128; 4] = [0xA1, 0xA2, 0xA3, 0xA4];

/// One generated op, before it is bound to uuids.
#[derive(Clone, Debug)]
enum GenOp {
    EventInfo(u8),
    Attribute {
        attribute: usize,
        value: u8,
        in_object: bool,
    },
    Tag {
        attribute: Option<usize>,
        name: u8,
        attached: bool,
    },
    Sighting {
        attribute: usize,
        sighting: u8,
    },
    Erase(usize),
    Tombstone,
}

fn gen_op() -> impl Strategy<Value = GenOp> {
    prop_oneof![
        3 => any::<u8>().prop_map(|v| GenOp::EventInfo(v % 4)),
        4 => (0..ATTRIBUTES.len(), any::<u8>(), any::<bool>())
            .prop_map(|(attribute, value, in_object)| GenOp::Attribute { attribute, value: value % 5, in_object }),
        3 => (proptest::option::of(0..ATTRIBUTES.len()), any::<u8>(), any::<bool>())
            .prop_map(|(attribute, name, attached)| GenOp::Tag { attribute, name: name % 3, attached }),
        2 => (0..ATTRIBUTES.len(), any::<u8>())
            .prop_map(|(attribute, sighting)| GenOp::Sighting { attribute, sighting: sighting % 3 }),
        1 => (0..ATTRIBUTES.len()).prop_map(GenOp::Erase),
        1 => Just(GenOp::Tombstone),
    ]
}

/// (event index, origin time, ops) of one entry.
type GenEntry = (usize, i64, Vec<GenOp>);

fn gen_entry() -> impl Strategy<Value = GenEntry> {
    (
        0..EVENTS.len(),
        0i64..6,
        proptest::collection::vec(gen_op(), 1..4),
    )
}

fn set(kind: RecordKind, key: Uuid, parent: Option<Uuid>, fields: serde_json::Value) -> proto::Op {
    proto::Op {
        op: Some(Op::Set(proto::RecordSet {
            kind: kind as i32,
            key: Bytes::copy_from_slice(key.as_bytes()),
            parent: parent
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .unwrap_or_default(),
            fields_json: Bytes::from(fields.to_string()),
        })),
    }
}

/// Binds a generated op to uuids. Record uuids belong to one event (as MISP's do), so the
/// attribute and object uuids are derived from the event's.
fn bind(op: &GenOp, event: Uuid) -> proto::Op {
    let base = event.as_u128() << 16;
    let attribute_uuid = |index: usize| Uuid::from_u128(base + ATTRIBUTES[index]);
    let op = match op {
        GenOp::EventInfo(info) => {
            return set(
                RecordKind::Event,
                event,
                None,
                json!({"info": format!("info {info}"), "date": "2026-01-01", "timestamp": info.to_string()}),
            )
        }
        GenOp::Attribute {
            attribute,
            value,
            in_object,
        } => {
            return set(
                RecordKind::Attribute,
                attribute_uuid(*attribute),
                in_object.then(|| Uuid::from_u128(base + 0x0B)),
                json!({"type": "ip-dst", "category": "Network activity", "value": format!("10.0.0.{value}")}),
            )
        }
        GenOp::Tag {
            attribute,
            name,
            attached,
        } => Op::Tag(proto::TagLink {
            target: Bytes::copy_from_slice(
                attribute.map(attribute_uuid).unwrap_or(event).as_bytes(),
            ),
            name: format!("tag:{name}"),
            attached: *attached,
            local: false,
        }),
        GenOp::Sighting {
            attribute,
            sighting,
        } => Op::Sighting(proto::SightingAdd {
            uuid: Bytes::copy_from_slice(
                Uuid::from_u128(base + 0x5000 + u128::from(*sighting)).as_bytes(),
            ),
            attribute: Bytes::copy_from_slice(attribute_uuid(*attribute).as_bytes()),
            fields_json: Bytes::from(
                json!({"type": "0", "source": format!("s{sighting}")}).to_string(),
            ),
        }),
        GenOp::Erase(attribute) => Op::Erase(proto::Erase {
            kind: RecordKind::Attribute as i32,
            key: Bytes::copy_from_slice(attribute_uuid(*attribute).as_bytes()),
        }),
        GenOp::Tombstone => Op::Tombstone(proto::EventTombstone {
            reason: "test".into(),
        }),
    };
    proto::Op { op: Some(op) }
}

/// Seals each origin's generated entries into its chain.
fn seal_chains(origins: &[Vec<GenEntry>]) -> Vec<Vec<VerifiedEntry>> {
    origins
        .iter()
        .enumerate()
        .map(|(index, entries)| {
            let key = NodeKey::from_seed(&[index as u8 + 1; 32]);
            let org = Uuid::from_u128(0x100 + index as u128);
            let mut head = Head::EMPTY;
            entries
                .iter()
                .map(|(event, time, ops)| {
                    let event = Uuid::from_u128(EVENTS[*event]);
                    let draft = Draft {
                        acting_org: org,
                        acting_user: "prop".into(),
                        event: Some(event),
                        visibility: proto::Visibility {
                            distribution: 1,
                            sharing_group: Bytes::new(),
                        },
                        ops: ops.iter().map(|op| bind(op, event)).collect(),
                    };
                    let entry = seal(&key, org, &head, draft, *time, [index as u8; 16]).unwrap();
                    head = Head::after(&entry);
                    entry
                })
                .collect()
        })
        .collect()
}

fn digest_of(entries: &[&VerifiedEntry]) -> ViewDigest {
    let mut views = MemoryViews::new();
    for entry in entries {
        view::apply(&mut views, entry).unwrap();
    }
    view::digest(|table, visit| {
        views.iter(table).for_each(|(k, v)| visit(k, v));
        Ok(())
    })
    .unwrap()
}

/// Interleaves the chains following `schedule` (each pick names an origin; exhausted origins
/// are skipped), keeping each origin's order.
fn interleave<'a>(chains: &'a [Vec<VerifiedEntry>], schedule: &[usize]) -> Vec<&'a VerifiedEntry> {
    let mut next = vec![0; chains.len()];
    let mut out = Vec::new();
    let mut picks = schedule.iter().cycle();
    while out.len() < chains.iter().map(Vec::len).sum() {
        let origin = picks.next().copied().unwrap_or(0) % chains.len();
        let origin = (0..chains.len())
            .map(|offset| (origin + offset) % chains.len())
            .find(|o| next[*o] < chains[*o].len())
            .unwrap();
        out.push(&chains[origin][next[origin]]);
        next[origin] += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_interleaving_gives_the_same_digest(
        origins in proptest::collection::vec(proptest::collection::vec(gen_entry(), 1..8), 3..=4),
        schedule_a in proptest::collection::vec(0usize..4, 1..40),
        schedule_b in proptest::collection::vec(0usize..4, 1..40),
    ) {
        let chains = seal_chains(&origins);
        let sequential: Vec<&VerifiedEntry> = chains.iter().flatten().collect();
        let expected = digest_of(&sequential);
        prop_assert_eq!(digest_of(&interleave(&chains, &schedule_a)), expected);
        prop_assert_eq!(digest_of(&interleave(&chains, &schedule_b)), expected);
        let reversed: Vec<&VerifiedEntry> = chains.iter().rev().flatten().collect();
        prop_assert_eq!(digest_of(&reversed), expected);
    }
}

#[test]
fn different_entries_give_different_digests() {
    let one = seal_chains(&[vec![(0, 1, vec![GenOp::EventInfo(1)])]]);
    let two = seal_chains(&[vec![(0, 1, vec![GenOp::EventInfo(2)])]]);
    assert_ne!(digest_of(&[&one[0][0]]), digest_of(&[&two[0][0]]));
}
