//! Checkpoints across nodes (SPEC §8): peers cosign each other's checkpoints during sync, and
//! a node that shows different histories to different peers is caught by the checkpoints its
//! peers relay to each other.

mod common;

use common::forge::{entry_item, Forger};
use common::ok;
use common::server::Server;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A node directory with its key and admin key.
struct Dir {
    path: PathBuf,
    node_key: String,
    admin_key: String,
    _temp: tempfile::TempDir,
}

/// Initialises a node that signs a checkpoint after every entry.
fn init(org: &str) -> Dir {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("node");
    let printed = ok(&path, &["init", "--org-name", org]);
    let node_key = printed
        .lines()
        .find_map(|line| line.trim().strip_prefix("node key:"))
        .expect("init prints the node key")
        .trim()
        .to_string();
    let config = path.join("threatlog.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("checkpoint_entries = 1000"));
    std::fs::write(
        &config,
        text.replace("checkpoint_entries = 1000", "checkpoint_entries = 1"),
    )
    .unwrap();
    let admin_key = std::fs::read_to_string(path.join("admin.key"))
        .unwrap()
        .trim()
        .to_string();
    Dir {
        path,
        node_key,
        admin_key,
        _temp: temp,
    }
}

fn pair(a: &Path, b: &Path) {
    let (card_a, card_b) = (
        ok(a, &["peer", "card"]).trim().to_string(),
        ok(b, &["peer", "card"]).trim().to_string(),
    );
    ok(a, &["peer", "add", &card_b, "--relationship", "external"]);
    ok(b, &["peer", "add", &card_a, "--relationship", "external"]);
}

fn get(server: &Server, key: &str, path: &str) -> Value {
    let (status, body) = server.request("GET", path, Some(key), None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn publish_event(server: &Server, key: &str) {
    let body = json!({"Event": {"info": "checkpointed", "distribution": "3",
        "Attribute": [{"type": "domain", "value": "checkpoint.example"}]}});
    let (status, reply) = server.request("POST", "/events/add", Some(key), Some(&body.to_string()));
    assert_eq!(status, 200, "{reply}");
    let uuid = reply["Event"]["uuid"].as_str().unwrap().to_string();
    let (status, _) = server.request(
        "POST",
        &format!("/events/publish/{uuid}"),
        Some(key),
        Some("{}"),
    );
    assert_eq!(status, 200);
}

#[test]
fn paired_nodes_cosign_each_others_checkpoints() {
    let a = init("Org A");
    let b = init("Org B");
    // Cards name the bound sync address, so pair once the nodes run.
    let server_a = Server::start(&a.path);
    let _server_b = Server::start(&b.path);
    pair(&a.path, &b.path);
    publish_event(&server_a, &a.admin_key);
    let cosigned = wait_for("B's cosignature on A's checkpoint", || {
        let checkpoint = get(&server_a, &a.admin_key, "/audit/checkpoint");
        let cosigners: Vec<String> = checkpoint["cosignatures"]
            .as_array()?
            .iter()
            .filter_map(|c| c["cosigner"].as_str().map(str::to_string))
            .collect();
        cosigners.contains(&b.node_key).then_some(checkpoint)
    });
    assert!(cosigned["note"]
        .as_str()
        .unwrap()
        .starts_with(&format!("threatlog/{}\n", a.node_key)));
}

#[test]
fn a_node_showing_two_histories_is_caught_by_its_peers() {
    // M is played by this test with its own key. It shows B its log and the true checkpoint
    // of it, and shows C a checkpoint of the same size with another root, both validly
    // signed. B relays M's checkpoint to C in its hellos; C then holds two signed
    // checkpoints of one size that contradict each other: a split-view proof.
    let b = init("Org B");
    let c = init("Org C");
    let server_b = Server::start(&b.path);
    let server_c = Server::start(&c.path);
    pair(&b.path, &c.path);
    let mut m = Forger::new("Org M");
    for dir in [&b, &c] {
        ok(
            &dir.path,
            &[
                "peer",
                "add",
                &m.card(),
                "--relationship",
                "external",
                "--no-pull",
                "--no-push",
            ],
        );
    }
    let (_, entries) = m.own_event("M's event");
    let (true_note, forged_note) = (m.checkpoint(false), m.checkpoint(true));
    let sync_addr = |dir: &Dir| {
        std::fs::read_to_string(dir.path.join("run/sync.addr"))
            .unwrap()
            .trim()
            .to_string()
    };
    let key = |dir: &Dir| threatlog::log::OriginKey::from_hex(&dir.node_key).unwrap();
    // C gets the forged checkpoint before any of M's entries: nothing contradicts it yet.
    m.hello(key(&c), &sync_addr(&c), vec![forged_note.clone()]);
    let items = entries.iter().map(entry_item).collect();
    assert_eq!(m.push(key(&b), &sync_addr(&b), items), "");
    m.hello(key(&b), &sync_addr(&b), vec![true_note.clone()]);

    let alert = wait_for("a split-view proof on C", || {
        let alerts = get(&server_c, &c.admin_key, "/audit/alerts");
        alerts["split_views"].as_array()?.first().cloned()
    });
    assert_eq!(alert["origin"], m.origin().to_string());
    let mut notes = [
        alert["a"].as_str().unwrap().to_string(),
        alert["b"].as_str().unwrap().to_string(),
    ];
    notes.sort();
    let mut expected = [true_note, forged_note];
    expected.sort();
    assert_eq!(notes, expected);
    // The honest nodes never accuse each other.
    for (server, key) in [(&server_b, &b.admin_key), (&server_c, &c.admin_key)] {
        let alerts = get(server, key, "/audit/alerts");
        for proof in alerts["split_views"].as_array().unwrap() {
            assert_eq!(proof["origin"], m.origin().to_string());
        }
    }
}

#[test]
fn paired_peers_get_inclusion_and_consistency_proofs_over_grpc() {
    let a = init("Org A");
    let server_a = Server::start(&a.path);
    publish_event(&server_a, &a.admin_key);
    // An auditor's tool pairs its own key with A and asks over the sync service.
    let auditor = threatlog::log::NodeKey::generate();
    let card = threatlog::sync::peer::Card {
        key: auditor.origin(),
        org_uuid: uuid::Uuid::new_v4(),
        org_name: "Auditors".into(),
        endpoint: "127.0.0.1:9".into(),
        org_key: None,
    };
    ok(
        &a.path,
        &["peer", "add", &card.encode(), "--no-pull", "--no-push"],
    );
    let origin = threatlog::log::OriginKey::from_hex(&a.node_key).unwrap();
    let endpoint = std::fs::read_to_string(a.path.join("run/sync.addr")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (inclusion, consistency) = runtime.block_on(async {
        let mut client = threatlog::sync::connect_as(&auditor, origin, endpoint.trim())
            .await
            .expect("the paired auditor connects");
        let inclusion = client
            .inclusion(threatlog::proto::sync::InclusionRequest {
                origin: origin.0.to_vec().into(),
                sequence: 1,
                size: 0,
            })
            .await
            .expect("inclusion proof")
            .into_inner();
        let consistency = client
            .consistency(threatlog::proto::sync::ConsistencyRequest {
                origin: origin.0.to_vec().into(),
                old_size: 1,
                new_size: inclusion.size,
            })
            .await
            .expect("consistency proof")
            .into_inner();
        (inclusion, consistency)
    });
    let hash = |bytes: &[u8]| -> [u8; 32] { bytes.try_into().unwrap() };
    let root = hash(&inclusion.root);
    assert!(
        inclusion.size >= 3,
        "init, event and publish are in the tree"
    );
    let hashes: Vec<[u8; 32]> = inclusion.hashes.iter().map(|h| hash(h)).collect();
    threatlog::log::merkle::verify_inclusion(
        0,
        inclusion.size,
        &hash(&inclusion.leaf_or_old_root),
        &hashes,
        &root,
    )
    .expect("the inclusion proof verifies against the root");
    // The root is the one A signed in its checkpoint of that size.
    let signed = threatlog::log::checkpoint::verify_origin_note(&inclusion.checkpoint, &origin)
        .expect("the checkpoint verifies");
    assert_eq!(signed.root, root);
    let hashes: Vec<[u8; 32]> = consistency.hashes.iter().map(|h| hash(h)).collect();
    threatlog::log::merkle::verify_consistency(
        1,
        consistency.size,
        &hash(&consistency.leaf_or_old_root),
        &root,
        &hashes,
    )
    .expect("the consistency proof verifies");
}
