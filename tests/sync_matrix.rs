//! The visibility matrix (SPEC §6): one sender A holds one published event per distribution
//! level × TLP; six receivers — three internal (A's organisation) and three external, with TLP
//! ceilings green, amber and red — pull from A over mutual TLS on loopback. Each receiver must
//! hold exactly the events, attributes and objects the table below, written from SPEC §6 and
//! independent of the policy code, allows.

mod common;
#[path = "common/fed.rs"]
mod fed;

use fed::{contents, wait_for, Node};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A distribution as the matrix uses it: levels 0–3, a sharing group that includes every
/// receiver's organisation, one that includes none of them, and (for items) inherit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dist {
    L0,
    L1,
    L2,
    L3,
    GroupIn,
    GroupOut,
    Inherit,
}

const EVENT_DISTS: [Dist; 6] = [
    Dist::L0,
    Dist::L1,
    Dist::L2,
    Dist::L3,
    Dist::GroupIn,
    Dist::GroupOut,
];

/// Attribute distributions inside every event (outside objects).
const ATTRIBUTE_DISTS: [Dist; 6] = [
    Dist::Inherit,
    Dist::L0,
    Dist::L1,
    Dist::L2,
    Dist::L3,
    Dist::GroupIn,
];

/// Object distributions inside every event (each object holds one inheriting attribute).
const OBJECT_DISTS: [Dist; 3] = [Dist::Inherit, Dist::L0, Dist::L3];

/// Event TLP tags; `None` counts as the node's default TLP, green (SPEC §6.3).
const TLPS: [Option<&str>; 6] = [
    None,
    Some("tlp:clear"),
    Some("tlp:green"),
    Some("tlp:amber"),
    Some("tlp:amber+strict"),
    Some("tlp:red"),
];

/// SPEC §6.3's order: clear < green < amber < amber+strict < red; no tag = green.
fn tlp_rank(tlp: Option<&str>) -> u8 {
    match tlp {
        Some("tlp:clear") => 0,
        None | Some("tlp:green") => 1,
        Some("tlp:amber") => 2,
        Some("tlp:amber+strict") => 3,
        Some("tlp:red") => 4,
        other => panic!("unexpected TLP {other:?}"),
    }
}

#[derive(Clone, Copy, Debug)]
struct Receiver {
    internal: bool,
    ceiling: &'static str,
}

/// SPEC §6.1/6.2 rule 2: internal peers (same organisation) get every level; an external,
/// directly paired peer gets levels 2 and 3 and groups listing its organisation; level 0 is
/// organisation only and level 1 never leaves for non-internal peers.
fn distribution_reaches(dist: Dist, receiver: Receiver) -> bool {
    receiver.internal || matches!(dist, Dist::L2 | Dist::L3 | Dist::GroupIn | Dist::Inherit)
}

/// SPEC §6.2 rule 3 / §6.3: the event's TLP must not exceed the peer's ceiling.
fn tlp_allows(tlp: Option<&str>, receiver: Receiver) -> bool {
    let ceiling = match receiver.ceiling {
        "green" => tlp_rank(Some("tlp:green")),
        "amber" => tlp_rank(Some("tlp:amber")),
        "red" => tlp_rank(Some("tlp:red")),
        other => panic!("unexpected ceiling {other}"),
    };
    tlp_rank(tlp) <= ceiling
}

/// Whether the receiver holds the event.
fn expect_event(dist: Dist, tlp: Option<&str>, receiver: Receiver) -> bool {
    tlp_allows(tlp, receiver) && distribution_reaches(dist, receiver)
}

/// Whether the receiver holds an item with its own distribution: the event must reach it and
/// so must the item's own level (two checks, SPEC §6.1).
fn expect_item(event: Dist, tlp: Option<&str>, item: Dist, receiver: Receiver) -> bool {
    expect_event(event, tlp, receiver) && distribution_reaches(item, receiver)
}

fn level(dist: Dist) -> &'static str {
    match dist {
        Dist::L0 => "0",
        Dist::L1 => "1",
        Dist::L2 => "2",
        Dist::L3 => "3",
        Dist::GroupIn | Dist::GroupOut => "4",
        Dist::Inherit => "5",
    }
}

/// One event of the matrix with the uuids of its parts.
struct Cell {
    dist: Dist,
    tlp: Option<&'static str>,
    event: String,
    attributes: Vec<(Dist, String)>,
    objects: Vec<(Dist, String, String)>,
}

struct Groups {
    inside: String,
    outside: String,
}

fn with_group(mut item: Value, dist: Dist, groups: &Groups) -> Value {
    item["distribution"] = json!(level(dist));
    match dist {
        Dist::GroupIn => item["sharing_group_uuid"] = json!(groups.inside),
        Dist::GroupOut => item["sharing_group_uuid"] = json!(groups.outside),
        _ => {}
    }
    item
}

fn add_cell(a: &Node, n: usize, dist: Dist, tlp: Option<&'static str>, groups: &Groups) -> Cell {
    let uuid = || uuid::Uuid::new_v4().to_string();
    let attributes: Vec<(Dist, String)> = ATTRIBUTE_DISTS.iter().map(|d| (*d, uuid())).collect();
    let objects: Vec<(Dist, String, String)> =
        OBJECT_DISTS.iter().map(|d| (*d, uuid(), uuid())).collect();
    let attribute_json: Vec<Value> = attributes
        .iter()
        .enumerate()
        .map(|(i, (d, id))| {
            with_group(
                json!({"uuid": id, "type": "ip-dst", "value": format!("10.{n}.{i}.1")}),
                *d,
                groups,
            )
        })
        .collect();
    let object_json: Vec<Value> = objects
        .iter()
        .enumerate()
        .map(|(i, (d, object, attribute))| {
            with_group(
                json!({"uuid": object, "name": "domain-ip", "meta-category": "network",
                       "Attribute": [{"uuid": attribute, "type": "domain",
                                      "object_relation": "domain", "distribution": "5",
                                      "value": format!("o{i}.cell{n}.example")}]}),
                *d,
                groups,
            )
        })
        .collect();
    let tags: Vec<Value> = tlp.iter().map(|t| json!({"name": t})).collect();
    let event = with_group(
        json!({"info": format!("cell {n}: {dist:?} {tlp:?}"), "threat_level_id": "2",
               "analysis": "1", "Tag": tags, "Attribute": attribute_json,
               "Object": object_json}),
        dist,
        groups,
    );
    let reply = a.post("/events/add", json!({"Event": event}));
    let event = reply["Event"]["uuid"].as_str().unwrap().to_string();
    a.publish(&event);
    Cell {
        dist,
        tlp,
        event,
        attributes,
        objects,
    }
}

#[test]
fn each_receiver_holds_exactly_what_spec_section_6_allows() {
    let a = Node::start("Org A", None, &[]);
    let ceilings = ["green", "amber", "red"];
    let mut receivers: Vec<(Receiver, Node)> = Vec::new();
    for internal in [true, false] {
        for (i, ceiling) in ceilings.into_iter().enumerate() {
            let node = if internal {
                Node::start_internal(&a, &[])
            } else {
                Node::start(&format!("Org X{i}"), None, &[])
            };
            let relationship = if internal { "internal" } else { "external" };
            a.add_peer(
                &node.card(),
                &["--relationship", relationship, "--tlp-max", ceiling],
            );
            node.add_peer(&a.card(), &["--relationship", relationship]);
            receivers.push((Receiver { internal, ceiling }, node));
        }
    }
    let mut inside: Vec<(&str, &str)> = vec![(a.org.as_str(), "Org A")];
    for (receiver, node) in &receivers {
        if !receiver.internal {
            inside.push((node.org.as_str(), node.org_name.as_str()));
        }
    }
    let stranger = uuid::Uuid::new_v4().to_string();
    let groups = Groups {
        inside: a.sharing_group("all receivers", &inside, json!({})),
        outside: a.sharing_group(
            "no receiver",
            &[(a.org.as_str(), "Org A"), (stranger.as_str(), "Org Z")],
            json!({}),
        ),
    };

    let mut cells = Vec::new();
    for dist in EVENT_DISTS {
        for tlp in TLPS {
            cells.push(add_cell(&a, cells.len(), dist, tlp, &groups));
        }
    }
    // A last event every receiver may hold: once it is there, everything before it in A's
    // log has been pulled (a pull follows A's arrival order).
    let sentinel = a.post(
        "/events/add",
        json!({"Event": {"info": "sentinel", "distribution": "3", "Tag": [{"name": "tlp:clear"}],
                         "Attribute": [{"type": "ip-dst", "value": "192.0.2.1"}]}}),
    )["Event"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    a.publish(&sentinel);

    let mut mismatches = Vec::new();
    let mut held_counts = BTreeMap::new();
    for (receiver, node) in &receivers {
        wait_for(&format!("the sentinel on {receiver:?}"), || {
            node.event(&sentinel)
        });
        let mut held = 0;
        for cell in &cells {
            let label = format!("{receiver:?} event {:?}/{:?}", cell.dist, cell.tlp);
            let event = node.event(&cell.event);
            let expected = expect_event(cell.dist, cell.tlp, *receiver);
            if event.is_some() != expected {
                mismatches.push(format!(
                    "{label}: held {} expected {expected}",
                    event.is_some()
                ));
                continue;
            }
            let Some(event) = event else { continue };
            held += 1;
            // Level 2 lands as level 1 at another organisation; internal nodes keep it.
            let shown = match (cell.dist, receiver.internal) {
                (Dist::L2, false) => "1",
                (dist, _) => level(dist),
            };
            if event["Event"]["distribution"] != shown {
                mismatches.push(format!(
                    "{label}: shown at level {} expected {shown}",
                    event["Event"]["distribution"]
                ));
            }
            let (attributes, objects, inner) = contents(&event);
            for (dist, uuid) in &cell.attributes {
                let expected = expect_item(cell.dist, cell.tlp, *dist, *receiver);
                if attributes.contains(uuid) != expected {
                    mismatches.push(format!(
                        "{label}: attribute at {dist:?} held {} expected {expected}",
                        !expected
                    ));
                }
            }
            for (dist, object, attribute) in &cell.objects {
                let expected = expect_item(cell.dist, cell.tlp, *dist, *receiver);
                if objects.contains(object) != expected {
                    mismatches.push(format!(
                        "{label}: object at {dist:?} held {} expected {expected}",
                        !expected
                    ));
                }
                if inner.contains(attribute) != expected {
                    mismatches.push(format!(
                        "{label}: object attribute at {dist:?} held {} expected {expected}",
                        !expected
                    ));
                }
            }
            if attributes.len() + objects.len() + inner.len()
                > cell.attributes.len() + 2 * cell.objects.len()
            {
                mismatches.push(format!("{label}: unexpected extra items"));
            }
        }
        held_counts.insert(format!("{receiver:?}"), held);
        let peer = node.peer_of_org(&a.org);
        if !peer["status"]["last_error"].is_null() {
            mismatches.push(format!("{receiver:?}: last_error {}", peer["status"]));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The table's own totals, as a check that the test exercised both outcomes: internal
    // receivers hold every level (6 distributions × the TLPs under their ceiling), external
    // ones levels 2, 3 and the group that lists them.
    let expected_counts: BTreeMap<String, usize> = receivers
        .iter()
        .map(|(receiver, _)| {
            let tlps = TLPS.iter().filter(|t| tlp_allows(**t, *receiver)).count();
            let dists = if receiver.internal { 6 } else { 3 };
            (format!("{receiver:?}"), tlps * dists)
        })
        .collect();
    assert_eq!(held_counts, expected_counts);
    assert_eq!(expected_counts.values().sum::<usize>(), 3 * (3 + 4 + 6) * 3);
}
