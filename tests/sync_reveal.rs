//! Entries withheld while their event was unpublished reach the peer in full once the event
//! is published, even when the stream that withheld them has ended (a restart, a reconnect)
//! in between; an open stream releases each segment under the peer's rules as they are then.
//! Nodes in one process: real RocksDB, the real sync engine on both sides.

mod common;

use common::engine::{card_of, init};
use serde_json::json;
use threatlog::change::{self, Actor};
use threatlog::model::Event;
use threatlog::node::Node;
use threatlog::policy::{Relationship, Tlp};
use threatlog::store::Held;
use threatlog::sync::exchange::{self, Outbox};
use threatlog::sync::memory::Session;
use threatlog::sync::peer::{self, Card, Peer, PeerSettings};
use uuid::Uuid;

fn pair(node: &Node, card: Card) -> Peer {
    let settings = PeerSettings {
        relationship: Some(Relationship::External),
        tlp_max: Some(Tlp::Amber),
        ..PeerSettings::default()
    };
    peer::pair(&node.store, &node.origin(), card, settings).unwrap()
}

/// A, paired with B of another organisation; B pulls from A.
struct Pair {
    a: Node,
    b: Node,
    /// B on A.
    b_on_a: Peer,
    /// A on B.
    a_on_b: Peer,
    /// A's analyst.
    actor: Actor,
    _temp: tempfile::TempDir,
}

impl Pair {
    fn new() -> Pair {
        let temp = tempfile::tempdir().unwrap();
        let a = init(&temp.path().join("a"), "Org A");
        let b = init(&temp.path().join("b"), "Org B");
        Pair {
            b_on_a: pair(&a, card_of(&b)),
            a_on_b: pair(&b, card_of(&a)),
            actor: Actor {
                org: a.org.uuid,
                user: "analyst@a.example".into(),
            },
            a,
            b,
            _temp: temp,
        }
    }
}

/// One stream from `sender` to `receiver`, from the receiver's cursor until it has caught up;
/// returns the most items one segment held.
fn stream(
    sender: &Node,
    receiver_on_sender: &Peer,
    receiver: &Node,
    sender_on_receiver: &Peer,
) -> usize {
    let cursor = peer::cursor(&receiver.store, &sender_on_receiver.key).unwrap();
    let mut outbox = Outbox::new(sender, receiver_on_sender.clone(), cursor);
    let mut largest = 0;
    while let Some(segment) = outbox.next_segment().unwrap() {
        largest = largest.max(segment.items.len());
        exchange::receive(receiver, sender_on_receiver, segment).unwrap();
    }
    largest
}

/// For each entry of `event` on `a`, in arrival order, whether `b` holds it in full (else as
/// a stub).
fn held_in_full(a: &Node, b: &Node, event: &Uuid) -> Vec<bool> {
    a.store
        .event_entries(event)
        .unwrap()
        .iter()
        .map(|id| match b.store.held(id).unwrap() {
            Some(Held::Entry(_)) => true,
            Some(Held::Stub(_)) => false,
            None => panic!("B holds nothing at {id:?}"),
        })
        .collect()
}

/// A level-3 event `uuid` with attributes of `values`, the n-th with uuid `uuid` + n + 1.
fn event(uuid: Uuid, published: bool, values: &[&str]) -> Event {
    let numbered: Vec<(usize, &str)> = values.iter().copied().enumerate().collect();
    event_with(uuid, published, &numbered)
}

/// A level-3 event `uuid` with attributes (n, value), each with uuid `uuid` + n + 1.
fn event_with(uuid: Uuid, published: bool, values: &[(usize, &str)]) -> Event {
    let attributes: Vec<_> = values
        .iter()
        .map(|(at, value)| {
            let attribute = Uuid::from_u128(uuid.as_u128().wrapping_add(1 + *at as u128));
            json!({"uuid": attribute.to_string(), "type": "ip-dst", "value": value})
        })
        .collect();
    Event::from_json(&json!({"Event": {
        "uuid": uuid.to_string(), "info": "published later", "distribution": "3",
        "published": published, "Attribute": attributes}}))
    .unwrap()
}

#[test]
fn entries_withheld_by_an_earlier_stream_arrive_when_their_event_is_published() {
    let Pair {
        a,
        b,
        b_on_a,
        a_on_b,
        actor,
        _temp,
    } = Pair::new();
    let uuid = Uuid::new_v4();
    let drafts =
        |published, values: &[&str]| change::event_drafts(&event(uuid, published, values), &actor);
    a.append(drafts(false, &["192.0.2.1"])).unwrap();
    a.append(drafts(false, &["192.0.2.1", "192.0.2.2"]))
        .unwrap();
    // The first stream withholds both, then ends.
    stream(&a, &b_on_a, &b, &a_on_b);
    assert_eq!(held_in_full(&a, &b, &uuid), [false, false]);
    // Published; the next stream carries the publish and reveals what came before it.
    a.append(drafts(true, &["192.0.2.1", "192.0.2.2"])).unwrap();
    stream(&a, &b_on_a, &b, &a_on_b);
    assert_eq!(held_in_full(&a, &b, &uuid), [true, true, true]);
    // Published again in a later stream: what B already holds comes again and is kept once.
    a.append(drafts(true, &["192.0.2.1", "192.0.2.2"])).unwrap();
    stream(&a, &b_on_a, &b, &a_on_b);
    assert_eq!(b.store.event_entries(&uuid).unwrap().len(), 4);
    let status = peer::status(&b.store, &a_on_b.key).unwrap();
    assert_eq!((status.violations, status.last_error), (0, None));
}

#[test]
fn a_large_event_is_revealed_over_several_segments() {
    let Pair {
        a,
        b,
        b_on_a,
        a_on_b,
        actor,
        _temp,
    } = Pair::new();
    let uuid = Uuid::new_v4();
    // More entries than one segment carries, each adding one attribute, then a stream ends.
    let entries = threatlog::sync::SEGMENT_ITEMS_MAX + 100;
    let values: Vec<String> = (0..entries)
        .map(|n| format!("10.{}.{}.{}", n / 65536, n / 256 % 256, n % 256))
        .collect();
    for (n, value) in values.iter().enumerate() {
        let event = event_with(uuid, false, &[(n, value.as_str())]);
        a.append(change::event_drafts(&event, &actor)).unwrap();
    }
    stream(&a, &b_on_a, &b, &a_on_b);
    let last = values.last().unwrap().as_str();
    let published = event_with(uuid, true, &[(entries - 1, last)]);
    a.append(change::event_drafts(&published, &actor)).unwrap();
    let largest = stream(&a, &b_on_a, &b, &a_on_b);
    assert!(
        largest <= threatlog::sync::SEGMENT_ITEMS_MAX,
        "a segment held {largest} items"
    );
    assert_eq!(held_in_full(&a, &b, &uuid), vec![true; entries + 1]);
    let shown = b.event_json(&uuid).unwrap().unwrap();
    assert_eq!(
        shown["Event"]["Attribute"].as_array().unwrap().len(),
        entries
    );
}

/// A published level-3 event of one attribute, tagged `tlp`.
fn tagged(uuid: Uuid, tlp: &str) -> Event {
    Event::from_json(&json!({"Event": {
        "uuid": uuid.to_string(), "info": "tagged", "distribution": "3", "published": true,
        "Tag": [{"name": tlp}],
        "Attribute": [{"type": "ip-dst", "value": "198.51.100.9"}]}}))
    .unwrap()
}

#[test]
fn an_open_stream_follows_the_peers_rules_as_they_are_now() {
    let Pair {
        a,
        b,
        b_on_a,
        actor,
        _temp,
        ..
    } = Pair::new();
    let first = Uuid::new_v4();
    a.append(change::event_drafts(&tagged(first, "tlp:amber"), &actor))
        .unwrap();
    let mut session = Session::open(&b, &a, 0).unwrap();
    while let Some(segment) = session.next_segment().unwrap() {
        session.deliver(segment).unwrap();
    }
    assert!(held_in_full(&a, &b, &first).iter().all(|full| *full));

    // A's operator lowers B's ceiling to green while the stream is open: the next segment
    // withholds the next amber event.
    let settings = PeerSettings {
        tlp_max: Some(Tlp::Green),
        ..PeerSettings::default()
    };
    let mut lowered = b_on_a.clone();
    settings.apply(&mut lowered);
    peer::put_peer(&a.store, lowered).unwrap();
    let second = Uuid::new_v4();
    a.append(change::event_drafts(&tagged(second, "tlp:amber"), &actor))
        .unwrap();
    let segment = session.next_segment().unwrap().expect("the second event");
    session.deliver(segment).unwrap();
    assert!(held_in_full(&a, &b, &second).iter().all(|full| !full));

    // Quarantined, then unpaired: the open stream ends at its next segment.
    peer::update_status(&a.store, &b_on_a.key, |status| status.quarantined = true).unwrap();
    a.append(change::event_drafts(
        &tagged(Uuid::new_v4(), "tlp:green"),
        &actor,
    ))
    .unwrap();
    let ended = session
        .next_segment()
        .expect_err("a quarantined peer gets nothing more");
    assert!(ended.to_string().contains("quarantined"), "{ended}");
    peer::remove_peer(&a.store, &b_on_a.key).unwrap();
    let ended = session
        .next_segment()
        .expect_err("an unpaired peer gets nothing more");
    assert_eq!(ended.to_string(), "node key is not paired");
}
