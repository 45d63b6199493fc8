//! Whatever hostile peers interleave with honest traffic (entries of forged organisations,
//! items carrying another event's uuids, edits acting for another organisation, forged stubs,
//! entries dated a day ahead), an honest node ends with exactly the views it would hold had it
//! received the honest traffic alone.
//!
//! Real nodes (RocksDB in temp dirs) driven in one process through the sync engine
//! ([`threatlog::sync::exchange`]), the code the gRPC transport runs for each segment: honest
//! nodes A and C send their segments to B; hostile peers H1 and H2, paired with B and certified
//! by their own org keys, push hand-built attacks in between. R is a copy of B taken before any
//! sync and receives the honest segments only, in the same order. B's view digest must equal
//! R's, every honest segment must be accepted on both, and every hostile entry refused.

mod common;

use common::engine::{card_of, init};

use common::hostile::{entry_item, segment_of, Hostile};
use proptest::prelude::*;
use serde_json::json;
use std::path::Path;
use threatlog::change::{self, Actor};
use threatlog::log::{seal, EntryId, Head, NodeKey, Stub, VerifiedEntry};
use threatlog::node::Node;
use threatlog::proto::sync as wire;
use threatlog::sync::exchange::{self, Outbox};
use threatlog::sync::peer::{self, Card, Peer, PeerSettings};
use threatlog::sync::{encode_items, release::Released};
use uuid::Uuid;

/// How far ahead an entry from the future is dated: a day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Hostile peers.
const HOSTILES: usize = 2;

/// An honest origin: its node and what it created.
struct Honest {
    node: Node,
    /// Its events, and their attributes' uuids.
    events: Vec<(Uuid, Vec<Uuid>)>,
    /// Its segments to B, in order.
    segments: Vec<wire::Segment>,
}

/// One attack, pushed to B by one of the hostile peers.
#[derive(Clone, Debug)]
enum Attack {
    /// A fresh key signs an edit of an honest event, claiming the honest organisation.
    ForgedOrg { victim: usize },
    /// The hostile peer's new event carries an honest attribute's uuid.
    ForeignUuid { victim: usize },
    /// The hostile peer's certified node edits an honest event, acting for its organisation.
    ActAsOther { victim: usize },
    /// A stub for an honest origin's position with a made-up hash.
    ForgedStub { victim: usize, sequence: u64 },
    /// The hostile peer's own new event, dated a day ahead.
    Future,
}

/// One delivery to B: the next segment of an honest origin, or an attack by a hostile peer.
#[derive(Clone, Debug)]
enum Step {
    Honest(usize),
    Hostile { by: usize, attack: Attack },
}

fn attack() -> impl Strategy<Value = Attack> {
    prop_oneof![
        (0..2usize).prop_map(|victim| Attack::ForgedOrg { victim }),
        (0..2usize).prop_map(|victim| Attack::ForeignUuid { victim }),
        (0..2usize).prop_map(|victim| Attack::ActAsOther { victim }),
        (0..2usize, 1..12u64)
            .prop_map(|(victim, sequence)| Attack::ForgedStub { victim, sequence }),
        Just(Attack::Future),
    ]
}

/// What the honest origins create: per origin, per batch, an event's distribution level and
/// whether it is published. Each batch becomes its own segment.
fn contents() -> impl Strategy<Value = Vec<Vec<(u8, bool)>>> {
    prop::collection::vec(prop::collection::vec((0..4u8, any::<bool>()), 1..4), 2..=2)
}

fn pair(node: &Node, card: Card) -> Peer {
    peer::pair(&node.store, &node.origin(), card, PeerSettings::default()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A new event of `org` at `level`, with two attributes.
fn event(level: u8, published: bool, values: &str) -> threatlog::model::Event {
    threatlog::model::Event::from_json(&json!({"Event": {
        "info": format!("event {values}"), "date": "2026-01-01",
        "distribution": level, "published": published,
        "Attribute": [
            {"type": "ip-dst", "value": format!("{values}.1"), "to_ids": true},
            {"type": "ip-dst", "value": format!("{values}.2"), "to_ids": true},
        ],
    }}))
    .unwrap()
}

/// A hash no entry has.
fn made_up_hash() -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    hash[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    hash
}

fn stub_segment(stub: Stub) -> wire::Segment {
    segment_of(encode_items(&[Released::Stub(stub)]))
}

/// The honest origins, B, R and the hostile peers, all paired and with the honest content
/// created; B and R are identical so far.
struct World {
    honest: Vec<Honest>,
    b: Node,
    r: Node,
    /// A's and C's peer records on B (the same on R).
    honest_on_b: Vec<Peer>,
    hostiles: Vec<Hostile>,
    /// The hostile peers' records on B.
    hostile_on_b: Vec<Peer>,
    _temp: tempfile::TempDir,
}

fn world(contents: &[Vec<(u8, bool)>]) -> World {
    let temp = tempfile::tempdir().unwrap();
    let b = init(&temp.path().join("b"), "Org B");
    let mut honest = Vec::new();
    let mut honest_on_b = Vec::new();
    for (index, batches) in contents.iter().enumerate() {
        let node = init(
            &temp.path().join(format!("h{index}")),
            &format!("Org {index}"),
        );
        honest_on_b.push(pair(&b, card_of(&node)));
        let b_on_node = pair(&node, card_of(&b));
        let actor = Actor {
            org: node.org.uuid,
            user: format!("analyst@{index}.example"),
        };
        let mut outbox = Outbox::new(&node, b_on_node, 0);
        let mut segments = Vec::new();
        let mut events = Vec::new();
        for (batch, (level, published)) in batches.iter().enumerate() {
            let event = event(*level, *published, &format!("10.{index}.{batch}"));
            events.push((
                event.uuid,
                event
                    .attributes
                    .iter()
                    .map(|attribute| attribute.uuid)
                    .collect(),
            ));
            node.append(change::event_drafts(&event, &actor)).unwrap();
            while let Some(segment) = outbox.next_segment().unwrap() {
                segments.push(segment);
            }
        }
        drop(outbox);
        honest.push(Honest {
            node,
            events,
            segments,
        });
    }
    let mut hostiles = Vec::new();
    let mut hostile_on_b = Vec::new();
    for _ in 0..HOSTILES {
        let mut hostile = Hostile::new();
        let certificate = hostile
            .identity
            .certificate_entry(&hostile.key, &Head::EMPTY);
        hostile.chain.push(certificate.clone());
        let on_b = pair(&b, hostile.identity.card(&hostile.key));
        // Its certificate is honest traffic: on B before the copy, so R holds it too.
        exchange::receive(
            &b,
            &on_b,
            segment_of(vec![entry_item(certificate.stored().clone())]),
        )
        .unwrap();
        hostiles.push(hostile);
        hostile_on_b.push(on_b);
    }
    let b_dir = b.store.dir().to_path_buf();
    drop(b);
    let r_dir = temp.path().join("r");
    copy_dir(&b_dir, &r_dir);
    World {
        honest,
        b: Node::open(&b_dir).unwrap(),
        r: Node::open(&r_dir).unwrap(),
        honest_on_b,
        hostiles,
        hostile_on_b,
        _temp: temp,
    }
}

impl World {
    /// The segment `attack` pushes as hostile peer `by`, if it applies now.
    fn attack(&self, by: usize, attack: &Attack) -> Option<wire::Segment> {
        let hostile = &self.hostiles[by];
        let entry =
            |entry: VerifiedEntry| Some(segment_of(vec![entry_item(entry.stored().clone())]));
        match *attack {
            Attack::ForgedOrg { victim } => {
                let victim = &self.honest[victim % self.honest.len()];
                let org = victim.node.org.uuid;
                let draft = hostile.edit_draft(org, victim.events[0].0, json!({"info": "forged"}));
                let key = NodeKey::generate();
                entry(
                    seal(
                        &key,
                        org,
                        &Head::EMPTY,
                        draft,
                        threatlog::clock::SystemClock.now_ms(),
                        *Uuid::new_v4().as_bytes(),
                    )
                    .unwrap(),
                )
            }
            Attack::ForeignUuid { victim } => {
                let victim = &self.honest[victim % self.honest.len()];
                // Only uuids B holds: the first event to hold an item owns it (SPEC §4.2), so
                // a uuid B has not seen yet is not another event's there.
                self.b.event_json(&victim.events[0].0).unwrap()?;
                let mut event = event(3, true, "192.0.2");
                event.attributes[0].uuid = victim.events[0].1[0];
                let actor = Actor {
                    org: hostile.org,
                    user: "mallory@h.example".into(),
                };
                let mut drafts = change::event_drafts(&event, &actor);
                assert_eq!(drafts.len(), 1);
                entry(hostile.seal(drafts.remove(0)))
            }
            Attack::ActAsOther { victim } => {
                let victim = &self.honest[victim % self.honest.len()];
                entry(hostile.seal(hostile.edit_draft(
                    victim.node.org.uuid,
                    victim.events[0].0,
                    json!({"info": "hijacked"}),
                )))
            }
            Attack::ForgedStub { victim, sequence } => {
                let victim = &self.honest[victim % self.honest.len()];
                Some(stub_segment(Stub {
                    id: EntryId {
                        origin: victim.node.origin(),
                        sequence,
                    },
                    prev_hash: made_up_hash(),
                    hash: made_up_hash(),
                }))
            }
            Attack::Future => {
                let event = event(3, true, "198.51.100");
                let actor = Actor {
                    org: hostile.org,
                    user: "mallory@h.example".into(),
                };
                let mut drafts = change::event_drafts(&event, &actor);
                entry(hostile.seal_at(
                    drafts.remove(0),
                    threatlog::clock::SystemClock.now_ms() + DAY_MS,
                ))
            }
        }
    }
}

/// Interleaves every honest segment, in each origin's order, with `attacks`: `slots` says
/// where each attack goes among the honest steps.
fn interleave(world: &World, attacks: &[(usize, Attack, usize)]) -> Vec<Step> {
    let mut honest: Vec<Step> = Vec::new();
    let mut next = vec![0usize; world.honest.len()];
    // Round-robin over origins keeps each origin's order.
    while next
        .iter()
        .zip(&world.honest)
        .any(|(at, origin)| *at < origin.segments.len())
    {
        for (index, origin) in world.honest.iter().enumerate() {
            if next[index] < origin.segments.len() {
                honest.push(Step::Honest(index));
                next[index] += 1;
            }
        }
    }
    let mut steps = honest;
    for (by, attack, slot) in attacks {
        let at = slot % (steps.len() + 1);
        steps.insert(
            at,
            Step::Hostile {
                by: by % HOSTILES,
                attack: attack.clone(),
            },
        );
    }
    steps
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn hostile_segments_never_change_an_honest_nodes_views(
        contents in contents(),
        attacks in prop::collection::vec((0..HOSTILES, attack(), any::<usize>()), 1..10),
    ) {
        let world = world(&contents);
        let steps = interleave(&world, &attacks);
        let mut next = vec![0usize; world.honest.len()];
        for step in &steps {
            match step {
                Step::Honest(index) => {
                    let segment = &world.honest[*index].segments[next[*index]];
                    next[*index] += 1;
                    let on_b = &world.honest_on_b[*index];
                    let b = exchange::receive(&world.b, on_b, segment.clone());
                    prop_assert!(b.is_ok(), "B refused an honest segment: {:?}", b.err());
                    let r = exchange::receive(&world.r, on_b, segment.clone());
                    prop_assert!(r.is_ok(), "R refused an honest segment: {:?}", r.err());
                }
                Step::Hostile { by, attack } => {
                    let Some(segment) = world.attack(*by, attack) else {
                        continue;
                    };
                    let answer = exchange::receive(&world.b, &world.hostile_on_b[*by], segment);
                    if !matches!(attack, Attack::ForgedStub { .. }) {
                        prop_assert!(answer.is_err(), "B accepted {attack:?}");
                    }
                }
            }
        }
        let b = world.b.store.views_digest().unwrap();
        let r = world.r.store.views_digest().unwrap();
        prop_assert_eq!(b, r, "B's views differ from the honest replay after {:?}", steps);
        for (index, on_b) in world.honest_on_b.iter().enumerate() {
            let status = peer::status(&world.b.store, &on_b.key).unwrap();
            prop_assert_eq!(status.failures, 0, "honest origin {} charged: {:?}", index, status);
            prop_assert!(!status.quarantined);
        }
        // Every published level-3 event reached B as its origin holds it.
        for (origin, batches) in world.honest.iter().zip(&contents) {
            for ((event, _), (level, published)) in origin.events.iter().zip(batches) {
                if *level == 3 && *published {
                    let on_origin = origin.node.event_json(event).unwrap().unwrap();
                    let on_b = world.b.event_json(event).unwrap();
                    prop_assert_eq!(
                        on_b.as_ref().map(|event| &event["Event"]["info"]),
                        Some(&on_origin["Event"]["info"])
                    );
                }
            }
        }
    }
}
