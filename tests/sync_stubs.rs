//! Stubs are authenticated (SPEC §7), with real nodes over real gRPC and mutual TLS: O is an
//! origin, R a relay, and M a peer of theirs driven by this test with its own key. A stub
//! from anyone but its origin is provisional until the origin's signed entry, checkpoint or
//! an inclusion proof vouches for it: M cannot censor O's chain at R by inventing a stub, a
//! stub M relays with O's checkpoint and a valid proof is final at once, one with a proof that
//! does not verify is refused, and M may introduce only so many origins new to R.

mod common;

use common::ok;
use common::server::Server;
use prost::bytes::Bytes;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use threatlog::log::checkpoint::verify_origin_note;
use threatlog::log::{EntryHash, EntryId, NodeKey, OriginKey, Stub, VerifiedEntry};
use threatlog::proto::sync as wire;
use threatlog::sync::connect_as;
use threatlog::sync::peer::Card;
use uuid::Uuid;

/// Longest wait for a condition between nodes.
const WAIT_MAX: Duration = Duration::from_secs(90);
/// Longest a single call to a node's sync service may take.
const CALL_SECONDS_MAX: u64 = 60;

/// A running node with its admin key and node key.
struct Node {
    server: Server,
    admin: String,
    key: OriginKey,
    _temp: tempfile::TempDir,
}

impl Node {
    /// Initialises a node of a new organisation, applies `config` (`(old, new)` text
    /// replacements of its `threatlog.toml`) and starts it, its log written to `log`.
    fn start(org: &str, config: &[(&str, &str)], log: &Path) -> Node {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("node");
        ok(&dir, &["init", "--org-name", org]);
        let file = dir.join("threatlog.toml");
        let mut text = std::fs::read_to_string(&file).unwrap();
        for (old, new) in config {
            assert!(text.contains(old), "the config template has {old}");
            text = text.replacen(old, new, 1);
        }
        std::fs::write(&file, text).unwrap();
        let admin = std::fs::read_to_string(dir.join("admin.key"))
            .unwrap()
            .trim()
            .to_string();
        let server = Server::start_logged(&dir, log);
        let card = ok(&dir, &["peer", "card"]);
        let key = Card::decode(card.trim()).unwrap().key;
        Node {
            server,
            admin,
            key,
            _temp: temp,
        }
    }

    fn dir(&self) -> PathBuf {
        self.server.dir.clone()
    }

    fn card(&self) -> String {
        ok(&self.dir(), &["peer", "card"]).trim().to_string()
    }

    fn sync_addr(&self) -> String {
        std::fs::read_to_string(self.dir().join("run/sync.addr"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let (status, reply) =
            self.server
                .request("POST", path, Some(&self.admin), Some(&body.to_string()));
        assert_eq!(status, 200, "POST {path}: {reply}");
        reply
    }

    fn get(&self, path: &str) -> Option<Value> {
        let (status, reply) = self.server.request("GET", path, Some(&self.admin), None);
        (status == 200).then_some(reply)
    }

    fn event(&self, uuid: &str) -> Option<Value> {
        self.get(&format!("/events/view/{uuid}"))
    }

    /// Adds and publishes an event of one domain at `distribution`; returns its uuid.
    fn publish_event(&self, info: &str, distribution: &str) -> String {
        let reply = self.post(
            "/events/add",
            json!({"Event": {"info": info, "distribution": distribution,
                "threat_level_id": "2", "analysis": "1",
                "Attribute": [{"type": "domain",
                               "value": format!("{}.example", info.replace(' ', "-"))}]}}),
        );
        let uuid = reply["Event"]["uuid"].as_str().unwrap().to_string();
        self.post(&format!("/events/publish/{uuid}"), json!({}));
        uuid
    }

    /// This node's `peer list` report of the peer with key `key`.
    fn report(&self, key: &OriginKey) -> Value {
        let peers: Value =
            serde_json::from_str(&ok(&self.dir(), &["peer", "list", "--json"])).unwrap();
        peers
            .as_array()
            .unwrap()
            .iter()
            .find(|peer| peer["key"] == key.to_string().as_str())
            .cloned()
            .expect("the peer is paired")
    }

    /// Pairs a test-driven peer with this node: it neither pulls from nor pushes to it.
    fn add_driven_peer(&self, key: &NodeKey, org: Uuid, name: &str) {
        let card = Card {
            key: key.origin(),
            org_uuid: org,
            org_name: name.into(),
            endpoint: "127.0.0.1:9".into(),
            // M writes no entries of its own: it only relays and invents stubs.
            org_key: None,
        }
        .encode();
        ok(
            &self.dir(),
            &[
                "peer",
                "add",
                &card,
                "--relationship",
                "external",
                "--no-pull",
                "--no-push",
            ],
        );
    }
}

/// Pairs two nodes both ways as external peers.
fn pair(a: &Node, b: &Node) {
    let (card_a, card_b) = (a.card(), b.card());
    ok(
        &a.dir(),
        &["peer", "add", &card_b, "--relationship", "external"],
    );
    ok(
        &b.dir(),
        &["peer", "add", &card_a, "--relationship", "external"],
    );
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < WAIT_MAX, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The test-driven peer M: its key and a runtime for its gRPC calls.
struct Driven {
    key: NodeKey,
    org: Uuid,
    runtime: tokio::runtime::Runtime,
}

impl Driven {
    fn new() -> Driven {
        Driven {
            key: NodeKey::generate(),
            org: Uuid::new_v4(),
            runtime: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    fn client(
        &self,
        node: &Node,
    ) -> impl std::future::Future<Output = wire::sync_client::SyncClient<tonic::transport::Channel>> + '_
    {
        let (peer, addr) = (node.key, node.sync_addr());
        async move {
            connect_as(&self.key, peer, &addr)
                .await
                .expect("the paired peer connects")
        }
    }

    fn call<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(CALL_SECONDS_MAX), work)
                .await
                .expect("the node answers")
        })
    }

    /// Pushes one segment to `node`: the node's answer, empty when every item was accepted.
    fn push(&self, node: &Node, segment: wire::Segment) -> String {
        self.call(async {
            let mut client = self.client(node).await;
            client
                .push(tokio_stream::iter(vec![segment]))
                .await
                .expect("the push is answered")
                .into_inner()
                .error
        })
    }

    /// Everything `node` releases to M, from the start of its log.
    fn pull(&self, node: &Node) -> Vec<wire::Item> {
        self.pull_segments(node)
            .into_iter()
            .flat_map(|segment| segment.items)
            .collect()
    }

    /// The segments `node` streams to M, from the start of its log.
    fn pull_segments(&self, node: &Node) -> Vec<wire::Segment> {
        self.call(async {
            let mut client = self.client(node).await;
            let mut stream = client
                .pull(wire::PullRequest {
                    cursor: 0,
                    follow: false,
                })
                .await
                .expect("the pull is answered")
                .into_inner();
            let mut segments = Vec::new();
            while let Some(segment) = stream.message().await.expect("segments arrive") {
                segments.push(segment);
            }
            segments
        })
    }

    /// The sequence of `origin`'s last item `node` holds, from its hello.
    fn head_at(&self, node: &Node, origin: &OriginKey) -> u64 {
        self.call(async {
            let mut client = self.client(node).await;
            let hello = client
                .hello(wire::HelloRequest {
                    protocol_version: threatlog::sync::PROTOCOL_VERSION,
                    node: None,
                    checkpoints: vec![],
                })
                .await
                .expect("hello is answered")
                .into_inner();
            hello
                .node
                .unwrap()
                .heads
                .iter()
                .find(|head| head.origin.as_ref() == origin.0)
                .map_or(0, |head| head.sequence)
        })
    }

    /// `node`'s inclusion proof of `origin`'s item `sequence` in its latest checkpoint.
    fn inclusion(&self, node: &Node, origin: &OriginKey, sequence: u64) -> wire::Proof {
        self.call(async {
            let mut client = self.client(node).await;
            client
                .inclusion(wire::InclusionRequest {
                    origin: origin.0.to_vec().into(),
                    sequence,
                    size: 0,
                })
                .await
                .expect("the inclusion proof is answered")
                .into_inner()
        })
    }
}

/// An item's origin, sequence and hash.
fn position(item: &wire::Item) -> (OriginKey, u64, EntryHash) {
    match item.item.as_ref().unwrap() {
        wire::item::Item::Entry(bytes) => {
            let entry = VerifiedEntry::verify(bytes.clone()).unwrap();
            (entry.origin(), entry.sequence(), entry.hash())
        }
        wire::item::Item::Stub(stub) => (
            OriginKey::from_slice(&stub.origin).unwrap(),
            stub.sequence,
            stub.hash.as_ref().try_into().unwrap(),
        ),
    }
}

/// Whether `items` hold an item of `origin` at `sequence`.
fn holds(items: &[wire::Item], origin: &OriginKey, sequence: u64) -> bool {
    items.iter().any(|item| {
        let (at, seq, _) = position(item);
        at == *origin && seq == sequence
    })
}

/// A stub item: `origin`'s position `sequence` after `prev_hash`, claiming `hash`.
fn stub_item(
    origin: &OriginKey,
    sequence: u64,
    prev_hash: EntryHash,
    hash: EntryHash,
) -> wire::Item {
    wire::Item {
        item: Some(wire::item::Item::Stub(wire::Stub {
            origin: origin.0.to_vec().into(),
            sequence,
            prev_hash: prev_hash.to_vec().into(),
            hash: hash.to_vec().into(),
            ..Default::default()
        })),
    }
}

fn segment(items: Vec<wire::Item>) -> wire::Segment {
    wire::Segment {
        items,
        ..Default::default()
    }
}

fn violations(report: &Value) -> u64 {
    report["status"]["violations"].as_u64().unwrap()
}

#[test]
fn a_forged_stub_does_not_stop_the_origins_real_entries() {
    let temp = tempfile::tempdir().unwrap();
    let r_log = temp.path().join("r.log");
    // O signs a checkpoint after every entry, so its next one follows its next event at once.
    let o = Node::start(
        "Org O",
        &[("checkpoint_entries = 1000", "checkpoint_entries = 1")],
        &temp.path().join("o.log"),
    );
    let r = Node::start("Org R", &[], &r_log);
    pair(&o, &r);
    let m = Driven::new();
    r.add_driven_peer(&m.key, m.org, "Org M");

    let first = o.publish_event("first event", "3");
    wait_for("O's first event on R", || r.event(&first));

    // M reads O's chain as R holds it (R releases it to M like to any peer), and pushes a
    // stub of its own invention for O's next position.
    let items = m.pull(&r);
    let (_, head, head_hash) = items
        .iter()
        .map(position)
        .filter(|(origin, _, _)| *origin == o.key)
        .max_by_key(|(_, sequence, _)| *sequence)
        .expect("R holds O's chain");
    assert_eq!(m.head_at(&r, &o.key), head);
    let forged = stub_item(&o.key, head + 1, head_hash, [0x66; 32]);
    assert_eq!(m.push(&r, segment(vec![forged])), "");
    assert_eq!(m.head_at(&r, &o.key), head + 1, "R holds the stub");
    // R does not pass on what nobody vouches for yet.
    assert!(!holds(&m.pull(&r), &o.key, head + 1));

    // O's next event reaches R all the same: its signed entry replaces the forged stub.
    let second = o.publish_event("second event", "3");
    let shown = wait_for("O's second event on R", || r.event(&second));
    assert_eq!(shown["Event"]["info"], "second event");
    // M is charged with a violation; O is not.
    let m_report = wait_for("R to charge M", || {
        let report = r.report(&m.key.origin());
        (violations(&report) == 1).then_some(report)
    });
    let error = m_report["status"]["last_error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "policy violation: stub {}:{} sent by this peer claimed hash {}",
            o.key,
            head + 1,
            "66".repeat(32)
        )),
        "{m_report}"
    );
    assert!(error.ends_with("the stub was replaced"), "{m_report}");
    let o_report = r.report(&o.key);
    assert_eq!(violations(&o_report), 0, "{o_report}");
    assert_eq!(o_report["status"]["last_error"], Value::Null, "{o_report}");

    // O's checkpoint over the replaced position is no split view at R: R cosigns it.
    let covered = wait_for("O's checkpoint past the forged position", || {
        let checkpoint = o.get("/audit/checkpoint")?;
        (checkpoint["size"].as_u64()? > head + 1).then_some(checkpoint["size"].as_u64()?)
    });
    let r_key = r.key.to_string();
    wait_for("R's cosignature over O's checkpoint", || {
        let checkpoint = o.get("/audit/checkpoint")?;
        let cosigned = checkpoint["size"].as_u64()? >= covered
            && checkpoint["cosignatures"]
                .as_array()?
                .iter()
                .any(|c| c["cosigner"] == r_key.as_str());
        cosigned.then_some(())
    });
    let alerts = r.get("/audit/alerts").unwrap();
    assert_eq!(alerts["split_views"], json!([]), "{alerts}");
    // The relay keeps syncing with O, and passes O's real chain on.
    let third = o.publish_event("third event", "3");
    wait_for("O's third event on R", || r.event(&third));
    let relayed = m.pull(&r);
    assert!(holds(&relayed, &o.key, head + 1));
    let (_, _, hash) = relayed
        .iter()
        .map(position)
        .find(|(origin, sequence, _)| *origin == o.key && *sequence == head + 1)
        .unwrap();
    assert_ne!(hash, [0x66; 32]);
    let log = std::fs::read_to_string(&r_log).unwrap();
    assert!(!log.contains("split view"), "{log}");
    assert!(
        !log.contains("entry does not match the stub held for its position"),
        "{log}"
    );
}

#[test]
fn a_relayed_stub_is_final_with_a_valid_proof_and_refused_with_a_bad_one() {
    let temp = tempfile::tempdir().unwrap();
    // O and R are not paired: R learns O's chain only through M.
    let o = Node::start(
        "Org O",
        &[("checkpoint_entries = 1000", "checkpoint_entries = 1")],
        &temp.path().join("o.log"),
    );
    let r = Node::start("Org R", &[], &temp.path().join("r.log"));
    let m = Driven::new();
    o.add_driven_peer(&m.key, m.org, "Org M");
    r.add_driven_peer(&m.key, m.org, "Org M");

    // O's organisation-only events reach M as stubs.
    o.publish_event("kept at home", "0");
    o.publish_event("also kept at home", "0");
    let chain = m.pull(&o);
    let stubs: Vec<usize> = chain
        .iter()
        .enumerate()
        .filter(|(_, item)| matches!(item.item, Some(wire::item::Item::Stub(_))))
        .map(|(index, _)| index)
        .collect();
    assert!(stubs.len() >= 2, "O withheld its events: {stubs:?}");
    let first_stub = stubs[0];
    let (_, first_seq, _) = position(&chain[first_stub]);

    // M relays O's chain up to the first stub, which it sends without a proof: R holds it
    // provisionally and does not pass it on.
    let mut items = chain[..=first_stub].to_vec();
    assert_eq!(m.push(&r, segment(items.clone())), "");
    assert_eq!(m.head_at(&r, &o.key), first_seq);
    assert!(!holds(&m.pull(&r), &o.key, first_seq));

    // The same stub with O's checkpoint and an inclusion proof: final, so R passes it on.
    let proven = |index: usize, bend: bool| -> (wire::Item, String) {
        let (origin, sequence, _) = position(&chain[index]);
        let proof = m.inclusion(&o, &origin, sequence);
        let mut item = chain[index].clone();
        let Some(wire::item::Item::Stub(stub)) = item.item.as_mut() else {
            unreachable!("a stub");
        };
        stub.proof_size = proof.size;
        stub.proof = proof.hashes.clone();
        if bend {
            let mut hash = stub.proof[0].to_vec();
            hash[0] ^= 1;
            stub.proof[0] = Bytes::from(hash);
        }
        (item, proof.checkpoint)
    };
    let (item, note) = proven(first_stub, false);
    assert!(
        note.starts_with(&format!("threatlog/{}\n", o.key)),
        "{note}"
    );
    items.pop();
    items.push(item);
    let mut with_proof = segment(items);
    with_proof.checkpoints = vec![note];
    assert_eq!(m.push(&r, with_proof), "");
    wait_for("R to pass the proven stub on", || {
        holds(&m.pull(&r), &o.key, first_seq).then_some(())
    });

    // The next stub with a proof that does not verify is refused, and M charged.
    let second_stub = first_stub + 1;
    assert!(stubs.contains(&second_stub), "{stubs:?}");
    let (bent, note) = proven(second_stub, true);
    let mut bad = segment(vec![bent]);
    bad.checkpoints = vec![note.clone()];
    let answer = m.push(&r, bad);
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(
        answer,
        format!(
            "rejected undecodable item: policy violation: stub {}:{} carries an inclusion \
             proof that does not verify against its origin's checkpoint of size {size}: proof \
             does not match the root",
            o.key,
            first_seq + 1
        )
    );
    assert_eq!(m.head_at(&r, &o.key), first_seq, "the stub is not held");
    let report = r.report(&m.key.origin());
    assert_eq!(violations(&report), 1, "{report}");

    // With a valid proof it is final at once.
    let (item, note) = proven(second_stub, false);
    let mut good = segment(vec![item]);
    good.checkpoints = vec![note];
    assert_eq!(m.push(&r, good), "");
    wait_for("R to pass the second proven stub on", || {
        holds(&m.pull(&r), &o.key, first_seq + 1).then_some(())
    });
}

#[test]
fn a_peer_may_introduce_only_so_many_new_origins() {
    let temp = tempfile::tempdir().unwrap();
    let r = Node::start(
        "Org R",
        &[("origins_per_peer_max = 1000", "origins_per_peer_max = 2")],
        &temp.path().join("r.log"),
    );
    let m = Driven::new();
    r.add_driven_peer(&m.key, m.org, "Org M");

    // Two invented origins: within the limit.
    let invented: Vec<OriginKey> = (0..3).map(|_| NodeKey::generate().origin()).collect();
    let first_of = |origin: &OriginKey| stub_item(origin, 1, [0; 32], [0x11; 32]);
    let two = vec![first_of(&invented[0]), first_of(&invented[1])];
    assert_eq!(m.push(&r, segment(two)), "");
    // More of an origin it already introduced does not count again.
    let more = stub_item(&invented[0], 2, [0x11; 32], [0x22; 32]);
    assert_eq!(m.push(&r, segment(vec![more])), "");
    assert_eq!(m.head_at(&r, &invented[0]), 2);
    // A third new origin is refused, with the reason recorded.
    let answer = m.push(&r, segment(vec![first_of(&invented[2])]));
    let expected = format!(
        "rejected {}:1: origin is new to this node and this peer already introduced 2 new \
         origins, its limit (sync.origins_per_peer_max)",
        invented[2]
    );
    assert_eq!(answer, expected);
    let report = r.report(&m.key.origin());
    assert_eq!(
        report["status"]["last_error"],
        expected.as_str(),
        "{report}"
    );
    assert_eq!(m.head_at(&r, &invented[2]), 0);
}

#[test]
fn a_relay_proves_the_stubs_it_passes_on_with_the_origins_checkpoint() {
    let temp = tempfile::tempdir().unwrap();
    let o = Node::start(
        "Org O",
        &[("checkpoint_entries = 1000", "checkpoint_entries = 1")],
        &temp.path().join("o.log"),
    );
    let r = Node::start("Org R", &[], &temp.path().join("r.log"));
    pair(&o, &r);
    let m = Driven::new();
    r.add_driven_peer(&m.key, m.org, "Org M");
    // An organisation-only event reaches R as O's stubs, and a public one in full.
    o.publish_event("kept at home", "0");
    let public = o.publish_event("shared", "3");
    wait_for("O's public event on R", || r.event(&public));
    let size = o.get("/audit/checkpoint").unwrap()["size"]
        .as_u64()
        .unwrap();

    // Once R holds O's checkpoint over them, every stub of O that R passes on carries a proof
    // that leads to that checkpoint's root.
    let (segments, proven) = wait_for("R's proven stubs of O", || {
        let segments = m.pull_segments(&r);
        let proven: Vec<(Stub, u64, Vec<[u8; 32]>)> = segments
            .iter()
            .flat_map(|segment| &segment.items)
            .filter_map(|item| match item.item.as_ref()? {
                wire::item::Item::Stub(stub) if stub.origin.as_ref() == o.key.0 => Some(stub),
                _ => None,
            })
            .filter(|stub| stub.proof_size >= size)
            .map(|stub| {
                let decoded = Stub {
                    id: EntryId {
                        origin: o.key,
                        sequence: stub.sequence,
                    },
                    prev_hash: stub.prev_hash.as_ref().try_into().unwrap(),
                    hash: stub.hash.as_ref().try_into().unwrap(),
                };
                let hashes = stub
                    .proof
                    .iter()
                    .map(|hash| hash.as_ref().try_into().unwrap())
                    .collect();
                (decoded, stub.proof_size, hashes)
            })
            .collect();
        (proven.len() >= 2).then_some((segments, proven))
    });
    let notes: Vec<&String> = segments
        .iter()
        .flat_map(|segment| &segment.checkpoints)
        .collect();
    for (stub, proof_size, hashes) in &proven {
        let checkpoint = notes
            .iter()
            .filter_map(|note| verify_origin_note(note, &o.key).ok())
            .find(|checkpoint| checkpoint.size == *proof_size)
            .expect("the segment carries O's checkpoint of the proof's size");
        assert_eq!(stub.verify_inclusion(&checkpoint, hashes), Ok(()));
    }
}
