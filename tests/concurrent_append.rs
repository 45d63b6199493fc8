//! Appends from several threads at once: while one append's batch is being written, the
//! next is sealed and reduced on top of it. Every append lands, the views equal a fresh
//! replay of the log, and records the appends share get one local id, not one per thread.
//! An append whose chain moved while it was being sealed is sealed again on the stored head.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::workload::synthetic_event;
use threatlog::change;
use threatlog::log::{seal, Draft, Head, NodeKey};
use threatlog::node::Node;
use threatlog::proto::RecordKind;
use threatlog::store::{Incoming, Source, Store};
use uuid::Uuid;

const THREADS: usize = 4;
const APPENDS_PER_THREAD: usize = 40;
const ATTRIBUTES_PER_EVENT: usize = 5;

#[test]
fn concurrent_appends_all_land_and_share_records_correctly() {
    let dir = tempfile::tempdir().unwrap();
    Node::init(dir.path(), "Concurrent Org", None, false).unwrap();
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let actor = node.system_actor();

    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (node, actor) = (Arc::clone(&node), actor.clone());
            std::thread::spawn(move || {
                (0..APPENDS_PER_THREAD)
                    .map(|append| {
                        let index = thread * APPENDS_PER_THREAD + append;
                        // Every event carries the tag `tlp:green`: all threads write its
                        // definition record while others' writes are still under way.
                        let event = synthetic_event(index, ATTRIBUTES_PER_EVENT).unwrap();
                        node.append(change::event_drafts(&event, &actor)).unwrap();
                        event
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let events: Vec<_> = threads
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    assert_eq!(events.len(), THREADS * APPENDS_PER_THREAD);

    // Every event and attribute is there, each attribute with an id of its own that leads
    // back to it.
    let held: HashSet<_> = node
        .events()
        .unwrap()
        .into_iter()
        .map(|event| event.uuid)
        .collect();
    let mut ids = HashSet::new();
    for event in &events {
        assert!(held.contains(&event.uuid), "event {} missing", event.uuid);
        for attribute in &event.attributes {
            let key = attribute.uuid.as_bytes();
            let id = node
                .store
                .local_id(RecordKind::Attribute, key)
                .unwrap_or_else(|| panic!("attribute {} has no id", attribute.uuid));
            assert!(ids.insert(id), "id {id} given twice");
            assert_eq!(
                node.store.key_of_id(RecordKind::Attribute, id).as_deref(),
                Some(&key[..])
            );
        }
    }
    assert_eq!(
        ids.len(),
        THREADS * APPENDS_PER_THREAD * ATTRIBUTES_PER_EVENT
    );

    // The shared tag definition was created once: exactly one tag id leads to it.
    let tag = b"tlp:green";
    let tag_id = node.store.local_id(RecordKind::Tag, tag).unwrap();
    let tag_ids: Vec<u64> = (1..)
        .map_while(|id| Some((id, node.store.key_of_id(RecordKind::Tag, id)?)))
        .filter(|(_, key)| key == tag)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(tag_ids, vec![tag_id]);

    // Chains, signatures and views all check out against a fresh replay.
    let summary = node.store.verify(&|_| {}).unwrap();
    assert_eq!(summary.origins, 1);
    assert_eq!(
        node.store.views_digest().unwrap(),
        summary.digest,
        "stored views differ from a replay of the log"
    );
}

/// The organisation of the node in [`an_append_after_its_chain_moved_elsewhere_extends_the_stored_head`].
const ORG: Uuid = Uuid::from_u128(7);

/// A directory-data draft (no event), as organisation and sharing group changes are, acting
/// for the node's own organisation (a node acts for no other it has not registered).
fn draft(user: &str) -> Draft {
    Draft {
        acting_org: ORG,
        acting_user: user.to_string(),
        ..Draft::default()
    }
}

#[test]
fn an_append_after_its_chain_moved_elsewhere_extends_the_stored_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (key, org) = (NodeKey::generate(), ORG);
    let first = store.append(&key, org, vec![draft("first")], 1000).unwrap();
    // The second entry of the same chain is sealed elsewhere and arrives as a peer's entry
    // would, so the head the store sealed last is no longer the chain's head.
    let second = seal(
        &key,
        org,
        &Head::after(&first.entries[0]),
        draft("second"),
        1001,
        [2; 16],
    )
    .unwrap();
    let ingested = store
        .ingest(
            &[Incoming::Entry(second.clone())],
            &Source::peer(key.origin()),
            &[],
            &mut |_, _| Ok(()),
        )
        .unwrap();
    assert_eq!((ingested.entries, ingested.rejected), (1, None));

    let third = store.append(&key, org, vec![draft("third")], 1002).unwrap();
    let third = &third.entries[0];
    assert_eq!(third.sequence(), 3);
    assert_eq!(third.entry().prev_hash.as_ref(), second.hash());
    assert_eq!(third.entry().acting_user, "third");
    // And the append after it continues from there.
    let fourth = store
        .append(&key, org, vec![draft("fourth")], 1003)
        .unwrap();
    assert_eq!(fourth.entries[0].entry().prev_hash.as_ref(), third.hash());
    let summary = store.verify(&|_| {}).unwrap();
    assert_eq!((summary.entries, summary.origins), (4, 1));
}
