//! Provisional stubs in a real store (RocksDB in a temp dir): a stub a peer sends for another
//! origin is provisional until something its origin signed vouches for it; a signed entry with
//! another hash replaces it, rewinding the chain and its Merkle tree, and names the peer to
//! charge; a checkpoint of the origin confirms provisional stubs it agrees with.

use threatlog::log::checkpoint::{origin_name, Checkpoint};
use threatlog::log::merkle::{leaf_hash, MemoryTree};
use threatlog::log::{seal, Draft, EntryId, Head, NodeKey, OriginKey, Stub, VerifiedEntry};
use threatlog::store::{AcceptError, Charge, Held, Incoming, Ingested, Rejection, Source, Store};
use uuid::Uuid;

/// O's chain of `count` directory entries (no event), each after the previous.
fn chain(key: &NodeKey, org: Uuid, count: u64) -> Vec<VerifiedEntry> {
    let mut head = Head::EMPTY;
    let mut out = Vec::new();
    for n in 0..count {
        let draft = Draft {
            acting_org: org,
            acting_user: format!("user{n}@o.example"),
            ..Draft::default()
        };
        let entry = seal(key, org, &head, draft, 1_000 + n as i64, [n as u8; 16]).unwrap();
        head = Head::after(&entry);
        out.push(entry);
    }
    out
}

/// A source that may introduce a few origins.
fn from(peer: OriginKey) -> Source {
    Source {
        origins_max: 10,
        ..Source::peer(peer)
    }
}

fn ingest(store: &Store, items: Vec<Incoming>, source: &Source) -> Ingested {
    store
        .ingest(&items, source, &[], &mut |_, _| Ok(()))
        .unwrap()
}

fn entry(entry: &VerifiedEntry) -> Incoming {
    Incoming::Entry(entry.clone())
}

fn stub(entry: &VerifiedEntry) -> Incoming {
    Incoming::Stub(Stub::of(entry))
}

/// A stub at `entry`'s position, linked like it, claiming `hash`.
fn forged(entry: &VerifiedEntry, hash: [u8; 32]) -> Stub {
    Stub {
        hash,
        ..Stub::of(entry)
    }
}

/// The root of the tree over `entries`' hashes.
fn root_of(entries: &[VerifiedEntry]) -> [u8; 32] {
    let mut tree = MemoryTree::new();
    for entry in entries {
        tree.push(leaf_hash(&entry.hash()));
    }
    tree.root()
}

fn id(origin: OriginKey, sequence: u64) -> EntryId {
    EntryId { origin, sequence }
}

/// The positions of `origin` in arrival order.
fn arrivals(store: &Store, origin: &OriginKey) -> Vec<u64> {
    store
        .arrivals_after(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|(_, id)| id.origin == *origin)
        .map(|(_, id)| id.sequence)
        .collect()
}

/// A store holding the first two of `count` entries of origin O, and two other peers M and N.
struct Scene {
    dir: tempfile::TempDir,
    store: Store,
    o_key: NodeKey,
    o: OriginKey,
    m: OriginKey,
    n: OriginKey,
    entries: Vec<VerifiedEntry>,
}

impl Scene {
    fn new(count: u64) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let o_key = NodeKey::generate();
        let o = o_key.origin();
        let entries = chain(&o_key, Uuid::from_u128(7), count);
        ingest(
            &store,
            vec![entry(&entries[0]), entry(&entries[1])],
            &from(o),
        );
        Scene {
            dir,
            store,
            o_key,
            o,
            m: NodeKey::generate().origin(),
            n: NodeKey::generate().origin(),
            entries,
        }
    }
}

#[test]
fn a_signed_entry_replaces_a_forged_stub_and_rewinds_the_tree() {
    let Scene {
        dir,
        store,
        o_key,
        o,
        m,
        n,
        entries,
    } = Scene::new(8);

    // M invents O's third and fourth entries.
    let third = forged(&entries[2], [0x33; 32]);
    let fourth = Stub {
        id: id(o, 4),
        prev_hash: third.hash,
        hash: [0x44; 32],
    };
    let report = ingest(
        &store,
        vec![Incoming::Stub(third), Incoming::Stub(fourth)],
        &from(m),
    );
    assert_eq!((report.stubs, report.rejected), (2, None));
    assert_eq!(store.tree_size(&o), 4);
    assert!(store.is_provisional(&id(o, 3)).unwrap());
    assert!(store.is_provisional(&id(o, 4)).unwrap());
    assert_eq!(store.final_length(&o), 2);

    // Another unauthenticated claim for the third position waits, blaming nobody.
    let other = ingest(
        &store,
        vec![Incoming::Stub(forged(&entries[2], [0x35; 32]))],
        &from(n),
    );
    let rejected = other.rejected.unwrap();
    assert!(rejected.reason.is_deferred(), "{rejected}");
    assert_eq!(other.charges, vec![]);

    // O's signed third entry, relayed by N: M's stubs go, M is charged, N is not.
    let report = ingest(&store, vec![entry(&entries[2])], &from(n));
    assert_eq!((report.entries, report.replaced), (1, 1));
    assert_eq!(
        report.charges,
        vec![Charge {
            peer: m,
            id: id(o, 3),
            claimed: [0x33; 32],
            authentic: entries[2].hash(),
        }]
    );
    assert_eq!(store.tree_size(&o), 3);
    assert_eq!(store.tree_root(&o, 3).unwrap(), root_of(&entries[..3]));
    assert!(matches!(
        store.held(&id(o, 3)).unwrap(),
        Some(Held::Entry(_))
    ));
    assert!(store.held(&id(o, 4)).unwrap().is_none());
    assert!(!store.is_provisional(&id(o, 3)).unwrap());
    assert_eq!(store.heads(), vec![(o, 3)]);
    // The chain grows on from the real entry, and the dropped stubs left no arrivals.
    let report = ingest(&store, vec![entry(&entries[3])], &from(n));
    assert_eq!((report.entries, report.rejected), (1, None));
    assert_eq!(store.tree_root(&o, 4).unwrap(), root_of(&entries[..4]));
    assert_eq!(arrivals(&store, &o), vec![1, 2, 3, 4]);

    // A true stub M relays is provisional until O's next entry chains after it; then it
    // arrives again, before that entry.
    let report = ingest(&store, vec![stub(&entries[4])], &from(m));
    assert_eq!(report.stubs, 1);
    assert!(store.is_provisional(&id(o, 5)).unwrap());
    let report = ingest(&store, vec![entry(&entries[5])], &from(n));
    assert_eq!((report.entries, report.charges.len()), (1, 0));
    assert!(!store.is_provisional(&id(o, 5)).unwrap());
    assert_eq!(arrivals(&store, &o), vec![1, 2, 3, 4, 5, 6]);

    // O's checkpoint confirms a true provisional stub; over a forged one it is no split view.
    let checkpoint = |size: usize| {
        Checkpoint {
            origin: origin_name(&o),
            size: size as u64,
            root: root_of(&entries[..size]),
        }
        .sign(&origin_name(&o), &o_key)
    };
    ingest(&store, vec![stub(&entries[6])], &from(m));
    assert!(store.is_provisional(&id(o, 7)).unwrap());
    store.accept_checkpoint(&checkpoint(7)).unwrap();
    assert!(!store.is_provisional(&id(o, 7)).unwrap());
    ingest(
        &store,
        vec![Incoming::Stub(forged(&entries[7], [0x88; 32]))],
        &from(m),
    );
    let refused = store.accept_checkpoint(&checkpoint(8)).unwrap_err();
    assert!(
        matches!(
            refused,
            AcceptError::Unconfirmed {
                size: 8,
                first: 8,
                ..
            }
        ),
        "{refused}"
    );
    assert_eq!(store.split_views().unwrap(), vec![]);
    assert_eq!(store.latest_checkpoint(&o).unwrap().unwrap().0, 7);

    // The state survives reopening, and the log verifies.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tree_size(&o), 8);
    assert_eq!(store.final_length(&o), 7);
    assert!(store.is_provisional(&id(o, 8)).unwrap());
    let report = ingest(&store, vec![entry(&entries[7])], &from(n));
    assert_eq!(report.charges.len(), 1);
    assert_eq!(store.tree_root(&o, 8).unwrap(), root_of(&entries));
    assert_eq!(store.final_length(&o), 8);
    store.verify(&|_| {}).unwrap();
}

#[test]
fn a_signed_entry_vouches_only_for_the_stub_right_before_it() {
    let Scene {
        dir: _dir,
        store,
        o,
        m,
        n,
        entries,
        ..
    } = Scene::new(5);

    // M knows the true hash of O's fourth entry (every peer of O receives its stubs) and
    // invents the third, linking the true fourth after it.
    let third = forged(&entries[2], [0x33; 32]);
    let fourth = Stub {
        prev_hash: third.hash,
        ..Stub::of(&entries[3])
    };
    let report = ingest(
        &store,
        vec![Incoming::Stub(third), Incoming::Stub(fourth)],
        &from(m),
    );
    assert_eq!((report.stubs, report.rejected), (2, None));

    // O's fifth entry signs the fourth's hash, but nothing O signed says what the third is:
    // it waits, and neither invented nor true positions become final.
    let report = ingest(&store, vec![entry(&entries[4])], &from(m));
    let rejected = report.rejected.expect("the fifth entry waits");
    assert!(rejected.reason.is_deferred(), "{rejected}");
    assert_eq!(report.entries, 0);
    assert!(store.is_provisional(&id(o, 3)).unwrap());
    assert!(store.is_provisional(&id(o, 4)).unwrap());
    assert_eq!(store.final_length(&o), 2);

    // O's true third entry replaces the invented stub, M is charged, and the chain goes on.
    let report = ingest(
        &store,
        vec![entry(&entries[2]), entry(&entries[3]), entry(&entries[4])],
        &from(n),
    );
    assert_eq!(report.rejected, None);
    assert_eq!((report.entries, report.replaced), (3, 1));
    assert_eq!(report.charges.len(), 1);
    assert_eq!(report.charges[0].peer, m);
    assert_eq!(report.charges[0].claimed, [0x33; 32]);
    assert_eq!(store.final_length(&o), 5);
    assert_eq!(store.tree_root(&o, 5).unwrap(), root_of(&entries[..5]));

    store.verify(&|_| {}).unwrap();
}

#[test]
fn a_stub_from_its_origin_is_final_and_new_origins_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (o_key, org) = (NodeKey::generate(), Uuid::from_u128(8));
    let o = o_key.origin();
    let entries = chain(&o_key, org, 2);
    // O's own stub of a withheld entry is its word.
    let report = ingest(&store, vec![stub(&entries[0])], &from(o));
    assert_eq!(report.stubs, 1);
    assert!(!store.is_provisional(&id(o, 1)).unwrap());
    // A stub that conflicts with a final one is a mismatch, whoever sends it.
    let m = NodeKey::generate().origin();
    let mismatch = ingest(
        &store,
        vec![Incoming::Stub(forged(&entries[0], [1; 32]))],
        &from(m),
    );
    assert_eq!(mismatch.rejected.unwrap().reason, Rejection::StubMismatch);

    // A peer with room for one new origin: its own origin is free, the second new one is not.
    let limited = Source {
        origins_max: 1,
        ..Source::peer(m)
    };
    let (x, y) = (NodeKey::generate().origin(), NodeKey::generate().origin());
    let first = |origin: OriginKey| {
        Incoming::Stub(Stub {
            id: id(origin, 1),
            prev_hash: [0; 32],
            hash: [9; 32],
        })
    };
    let report = ingest(&store, vec![first(m), first(x), first(y)], &limited);
    assert_eq!(report.stubs, 2);
    assert_eq!(
        report.rejected.unwrap().reason,
        Rejection::OriginLimit { max: 1 }
    );
    assert_eq!(store.origins_introduced(&m).unwrap(), 1);
}

#[test]
fn views_rebuild_over_a_log_that_holds_stubs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (o_key, org) = (NodeKey::generate(), Uuid::from_u128(9));
    let o = o_key.origin();
    let entries = chain(&o_key, org, 3);
    // The first entry withheld, the others received in full.
    let items = vec![stub(&entries[0]), entry(&entries[1]), entry(&entries[2])];
    assert_eq!(ingest(&store, items, &from(o)).entries, 2);
    let digest = store.views_digest().unwrap();
    assert_eq!(store.rebuild_views(&|_| {}).unwrap(), digest);
    store.verify(&|_| {}).unwrap();
}
