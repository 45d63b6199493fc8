//! Identity across the federation (SPEC §4.1): a key proves nothing about an organisation
//! until an org key certifies it. Real nodes (real binary, RocksDB, mutual-TLS gRPC) and a
//! hostile peer driven by this test with keys of its own.

mod common;

use common::hostile::segment;
use common::identity::Org;
use common::nodes::{add_event, addresses, pair, wait_for, Peer};
use common::ok;
use common::server::Server;
use prost::bytes::Bytes;
use serde_json::{json, Value};

use threatlog::change;
use threatlog::log::identity::{Certificate, OrgPublicKey};
use threatlog::log::{seal, Draft, Head, NodeKey, OriginKey, VerifiedEntry};
use threatlog::proto::{self, sync as wire};
use threatlog::sync::peer::Card;
use uuid::Uuid;

fn salt() -> [u8; threatlog::log::SALT_BYTES] {
    *Uuid::new_v4().as_bytes()
}

/// Pushes `segment` to the node `to` at `addr` as `key`: the node's answer (empty when every
/// item was accepted) or the refusal status.
fn push(
    key: &NodeKey,
    to: OriginKey,
    addr: &str,
    segment: wire::Segment,
) -> Result<String, String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    common::hostile::push(&runtime, key, to, addr, segment)
}

/// The node key of `node`, from its card.
fn node_key(node: &Peer) -> OriginKey {
    Card::decode(&node.card()).unwrap().key
}

/// The organisation uuid of `node`, from its card.
fn org_of(node: &Peer) -> Uuid {
    Card::decode(&node.card()).unwrap().org_uuid
}

/// A tombstone of `event` sealed by `key` as the first entry of its chain, claiming to be
/// a node of `org` acting for it.
fn forged_tombstone(key: &NodeKey, org: Uuid, event: &str) -> VerifiedEntry {
    let draft = Draft {
        acting_org: org,
        acting_user: "admin@admin.test".into(),
        event: Some(Uuid::parse_str(event).unwrap()),
        visibility: proto::Visibility {
            distribution: 5,
            sharing_group: Bytes::new(),
        },
        ops: vec![change::tombstone_op("deleted by its owner")],
    };
    seal(
        key,
        org,
        &Head::EMPTY,
        draft,
        threatlog::clock::SystemClock.now_ms(),
        salt(),
    )
    .unwrap()
}

/// The report of the peer with node key `key` in `node`'s `peer list --json`.
fn report_of(node: &Peer, key: &OriginKey) -> serde_json::Value {
    node.peers()
        .as_array()
        .unwrap()
        .iter()
        .find(|peer| peer["key"] == key.to_string().as_str())
        .cloned()
        .expect("the peer is paired")
}

/// Asserts that a peer's report shows no refused item and no failure in a row (a transport
/// error from a reconnect may remain as the last error).
fn assert_no_refusal(report: &Value) {
    let error = report["status"]["last_error"].as_str().unwrap_or_default();
    assert!(!error.starts_with("rejected"), "{report}");
    assert_eq!(report["status"]["violations"], 0, "{report}");
    assert_eq!(report["status"]["quarantined"], false, "{report}");
}

/// Pairs a hostile peer's key with `node` (the node neither pulls from nor pushes to it).
fn pair_hostile(node: &Peer, card: &Card) {
    ok(
        node.dir(),
        &[
            "peer",
            "add",
            &card.encode(),
            "--relationship",
            "external",
            "--no-pull",
            "--no-push",
        ],
    );
}

#[test]
fn a_fresh_key_claiming_an_org_cannot_delete_its_events_anywhere() {
    // X owns an event; R relays between X and Y; H is a peer paired with R only.
    let x = Peer::start("Org X");
    let r = Peer::start("Org R");
    let y = Peer::start("Org Y");
    pair(&x, &r, &["--relationship", "external"]);
    pair(&r, &y, &["--relationship", "external"]);
    let event = add_event(&x, "X's published event", 3, &addresses("198.51.100", 2));
    x.publish(&event);
    wait_for("X's event on R", || r.event(&event));
    wait_for("X's event on Y", || y.event(&event));

    let h = NodeKey::generate();
    pair_hostile(&r, &Org::new("Org H").card(&h));

    // A key generated a second ago signs a tombstone of X's event, claiming to be X's node.
    let forger = NodeKey::generate();
    let tombstone = forged_tombstone(&forger, org_of(&x), &event);
    let answer = push(&h, node_key(&r), &r.sync_addr(), segment(&[&tombstone]));
    let expected = format!(
        "rejected {}: identity: origin {} has no node certificate",
        tombstone.id(),
        forger.origin()
    );
    assert_eq!(answer.as_deref(), Ok(expected.as_str()));
    assert_eq!(
        report_of(&r, &h.origin())["status"]["last_error"],
        expected.as_str()
    );

    // The honest nodes go on syncing; X's event survives on every one of them.
    let later = add_event(&x, "after the forgery", 3, &addresses("203.0.113", 2));
    x.publish(&later);
    wait_for("X's later event on Y", || y.event(&later));
    for node in [&x, &r, &y] {
        let shown = node.event(&event).expect("X's event is still there");
        assert_eq!(shown["Event"]["info"], "X's published event");
    }
    assert_no_refusal(&report_of(&r, &node_key(&x)));
}

/// The org key on `node`'s card.
fn org_key_of(node: &Peer) -> OrgPublicKey {
    Card::decode(&node.card())
        .unwrap()
        .org_key
        .expect("cards carry the org key")
}

/// `GET /audit/alerts` of `node`: its identity conflicts.
fn identity_conflicts(node: &Peer) -> Vec<Value> {
    node.get("/audit/alerts")["identity_conflicts"]
        .as_array()
        .expect("alerts list identity conflicts")
        .clone()
}

#[test]
fn a_second_org_key_for_a_bound_org_is_an_identity_conflict_with_evidence() {
    let x = Peer::start("Org X");
    let r = Peer::start("Org R");
    pair(&x, &r, &["--relationship", "external"]);
    let event = add_event(&x, "X's published event", 3, &addresses("198.51.100", 2));
    x.publish(&event);
    wait_for("X's event on R", || r.event(&event));
    let (x_org, x_org_key) = (org_of(&x), org_key_of(&x));

    // H, a peer of R and of X, carries a node certified for org X by an org key of its own.
    let h = NodeKey::generate();
    let h_card = Org::new("Org H").card(&h);
    pair_hostile(&r, &h_card);
    pair_hostile(&x, &h_card);
    let impostor = Org::with_uuid("Org X", x_org);
    let forger = NodeKey::generate();
    let certificate = impostor.certificate_entry(&forger, &Head::EMPTY);
    let mut tombstone = forged_tombstone(&forger, x_org, &event);
    tombstone = seal(
        &forger,
        x_org,
        &Head::after(&certificate),
        tombstone.into_draft(),
        threatlog::clock::SystemClock.now_ms(),
        salt(),
    )
    .unwrap();
    let forged = segment(&[&certificate, &tombstone]);
    let expected = format!(
        "rejected {}: identity conflict: origin {} is certified for org {x_org} by org key {}, \
         but org {x_org} is bound to org key {x_org_key}",
        certificate.id(),
        forger.origin(),
        impostor.key.public()
    );
    // Refused by the relay (bound by X's card) and by X itself (its own organisation).
    for (node, source) in [(&r, "card"), (&x, "own")] {
        let answer = push(&h, node_key(node), &node.sync_addr(), forged.clone());
        assert_eq!(answer.as_deref(), Ok(expected.as_str()));
        let conflicts = identity_conflicts(node);
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        let conflict = &conflicts[0];
        assert_eq!(conflict["org_uuid"], x_org.to_string());
        assert_eq!(conflict["bound_keys"], json!([x_org_key.to_string()]));
        assert_eq!(conflict["bound_source"], source);
        assert_eq!(conflict["received_key"], impostor.key.public().to_string());
        assert_eq!(conflict["node_key"], forger.origin().to_string());
        assert_eq!(conflict["via"], h.origin().to_string());
        // Both statements are kept: the impostor's signed certificate, and what bound X.
        let received =
            Certificate::from_text(conflict["received_statement"].as_str().unwrap()).unwrap();
        assert_eq!(
            (received.org_uuid, received.org_key, received.node_key),
            (x_org, impostor.key.public(), forger.origin())
        );
        let bound = conflict["bound_statement"].as_str().unwrap();
        let bound_key = match source {
            "own" => Certificate::from_text(bound).unwrap().org_key,
            _ => Card::decode(bound).unwrap().org_key.unwrap(),
        };
        assert_eq!(bound_key, x_org_key);
        // `peer list` names the conflict on the peer it came through.
        assert_eq!(
            report_of(node, &h.origin())["identity_conflicts"],
            json!([x_org.to_string()])
        );
        let listed = ok(node.dir(), &["peer", "list"]);
        assert!(
            listed.contains(&format!("IDENTITY CONFLICT for org {x_org}")),
            "{listed}"
        );
    }

    // X's event is intact everywhere, and X and R go on syncing.
    let later = add_event(&x, "after the impostor", 3, &addresses("203.0.113", 2));
    x.publish(&later);
    wait_for("X's later event on R", || r.event(&later));
    for node in [&x, &r] {
        assert_eq!(
            node.event(&event).unwrap()["Event"]["info"],
            "X's published event"
        );
    }

    // `log forks` lists the conflict with the fork proofs.
    let Peer {
        server,
        temp: _r_temp,
        ..
    } = r;
    let dir = server.dir.clone();
    server.stop();
    let alerts: Value = serde_json::from_str(&ok(&dir, &["log", "forks", "--json"])).unwrap();
    assert_eq!(alerts["forks"], json!([]));
    assert_eq!(
        alerts["identity_conflicts"][0]["org_uuid"],
        x_org.to_string()
    );
    let text = ok(&dir, &["log", "forks"]);
    assert!(
        text.contains(&format!(
            "identity conflict: org {x_org} is bound to org key {x_org_key} (pairing card)"
        )),
        "{text}"
    );
}

/// Initialises a node with `init ARGS…` and starts it.
fn start_with_init(args: &[&str]) -> Peer {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("node");
    let mut init = vec!["init"];
    init.extend_from_slice(args);
    ok(&dir, &init);
    let key = std::fs::read_to_string(dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string();
    Peer {
        server: Server::start(&dir),
        key,
        temp,
    }
}

/// The last sequence of `node`'s own entries that touched event `event`.
fn last_sequence(node: &Peer, event: &str) -> u64 {
    let history: Value =
        serde_json::from_str(&ok(node.dir(), &["audit", "history", event, "--json"])).unwrap();
    let own = node_key(node).to_string();
    history
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["origin"] == own.as_str())
        .map(|change| change["sequence"].as_u64().unwrap())
        .max()
        .expect("the node wrote the event")
}

#[test]
fn a_second_node_certified_by_the_org_key_is_accepted_until_it_is_revoked() {
    // X1 holds org X's key; X2 is certified with it and does not keep it.
    let x1 = Peer::start("Org X");
    let x_org = org_of(&x1).to_string();
    let org_key_file = x1.dir().join("org.key");
    let x2 = start_with_init(&[
        "--org-name",
        "Org X",
        "--org-uuid",
        &x_org,
        "--org-key",
        org_key_file.to_str().unwrap(),
    ]);
    assert!(!x2.dir().join("org.key").exists());
    assert_eq!(org_key_of(&x2), org_key_of(&x1));
    let a = Peer::start("Org A");
    pair(&x1, &a, &["--relationship", "external"]);
    pair(&x2, &a, &["--relationship", "external"]);

    // The second node's entries are accepted.
    let before = add_event(&x2, "X2 before revocation", 3, &addresses("198.51.100", 2));
    x2.publish(&before);
    let shown = wait_for("X2's event on A", || a.event(&before));
    assert_eq!(shown["Event"]["Orgc"]["uuid"], x_org.as_str());

    // X1 revokes X2's key from its next entry on; a marker event of X1 follows it.
    let from = last_sequence(&x2, &before) + 1;
    let x2_key = node_key(&x2);
    ok(
        x1.dir(),
        &[
            "org",
            "revoke",
            &x2_key.to_string(),
            "--from-sequence",
            &from.to_string(),
            "--reason",
            "node compromised",
        ],
    );
    let marker = add_event(&x1, "after the revocation", 3, &addresses("192.0.2", 1));
    x1.publish(&marker);
    wait_for("X1's marker on A", || a.event(&marker));

    // B learns of the revocation through A, then pairs with X2 too.
    let b = Peer::start("Org B");
    pair(&a, &b, &["--relationship", "external"]);
    wait_for("X1's marker on B", || b.event(&marker));
    let held = wait_for("X2's earlier event on B", || b.event(&before));
    assert_eq!(held["Event"]["info"], "X2 before revocation");
    pair(&x2, &b, &["--relationship", "external"]);

    // X2's entries from the revocation point are refused by both.
    let after = add_event(&x2, "X2 after revocation", 3, &addresses("203.0.113", 2));
    x2.publish(&after);
    let expected = format!("identity: node key {x2_key} is revoked from sequence {from}");
    for node in [&a, &b] {
        let error = wait_for("X2's refusal", || {
            report_of(node, &x2_key)["status"]["last_error"]
                .as_str()
                .filter(|error| error.contains("revoked"))
                .map(str::to_string)
        });
        // The first full entry at or after the revocation point is refused (an entry the
        // release rules withheld arrives as a stub, which carries nothing to refuse).
        let sequence: u64 = error
            .strip_prefix(&format!("rejected {x2_key}:"))
            .and_then(|rest| rest.split(':').next())
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("{error}"));
        assert!(sequence >= from, "{error}");
        assert_eq!(
            error,
            format!("rejected {x2_key}:{sequence}: {expected} (entry sequence {sequence})")
        );
        assert_eq!(node.event(&after), None);
    }

    // The honest nodes go on syncing.
    let late = add_event(&x1, "X1 later", 3, &addresses("203.0.113", 9));
    x1.publish(&late);
    wait_for("X1's later event on B", || b.event(&late));
    assert_no_refusal(&report_of(&a, &node_key(&x1)));
}

/// A data directory as a build before org keys left it: node key, configuration, host
/// organisation and admin user, and a published level-3 event, in a log with no certificate.
/// Returns the event's uuid.
fn legacy_directory(dir: &std::path::Path, org_name: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    use threatlog::node::{api_key_hash, new_api_key, User};
    std::fs::create_dir_all(dir).unwrap();
    let key = NodeKey::generate();
    let key_file = dir.join("node.key");
    std::fs::write(&key_file, format!("{}\n", hex::encode(key.seed()))).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.join(threatlog::config::FILE_NAME),
        threatlog::config::Config::template(org_name),
    )
    .unwrap();
    let org = threatlog::model::Organisation {
        uuid: Uuid::new_v4(),
        name: org_name.to_string(),
    };
    let store = threatlog::store::Store::open(dir).unwrap();
    // The host organisation's meta record, as `init` wrote it.
    store
        .put_meta(
            b"host_org",
            &serde_json::to_vec(&(org.uuid, &org.name)).unwrap(),
        )
        .unwrap();
    let actor = change::Actor {
        org: org.uuid,
        user: "cli".into(),
    };
    let mut drafts = vec![change::directory_draft(
        vec![change::organisation_op(&org, true)],
        &actor,
    )];
    let event = threatlog::model::Event::from_json(&json!({"Event": {
        "info": "made before org keys", "date": "2026-01-01", "distribution": 3,
        "published": true, "Orgc": {"uuid": org.uuid.to_string(), "name": org_name},
        "Attribute": [{"type": "ip-dst", "value": "192.0.2.77", "to_ids": true}],
    }}))
    .unwrap();
    drafts.extend(change::event_drafts(&event, &actor));
    store
        .append(
            &key,
            org.uuid,
            drafts,
            threatlog::clock::SystemClock.now_ms(),
        )
        .unwrap();
    let api_key = new_api_key();
    let user = User {
        email: "admin@admin.test".into(),
        org: org.uuid,
        role: 1,
        key_hash: api_key_hash(&api_key),
    };
    store
        .put_local(&[
            (
                format!("user/{}", user.email).into_bytes(),
                serde_json::to_vec(&user).unwrap(),
            ),
            (
                format!("apikey/{}", user.key_hash).into_bytes(),
                user.email.as_bytes().to_vec(),
            ),
        ])
        .unwrap();
    std::fs::write(dir.join("admin.key"), format!("{api_key}\n")).unwrap();
    event.uuid.to_string()
}

#[test]
fn an_upgraded_data_directory_gets_an_org_key_and_syncs_with_a_new_node() {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("node");
    let old_event = legacy_directory(&dir, "Org Old");
    assert!(!dir.join("org.key").exists());
    let upgraded = Peer {
        server: Server::start(&dir),
        key: std::fs::read_to_string(dir.join("admin.key"))
            .unwrap()
            .trim()
            .to_string(),
        temp,
    };
    // Opening the directory made the org key, readable by its owner only.
    let mode = std::fs::metadata(dir.join("org.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let org_key = org_key_of(&upgraded);

    // A new node pairs with it: the old entries, which precede the certificate, arrive.
    let fresh = Peer::start("Org New");
    pair(&upgraded, &fresh, &["--relationship", "external"]);
    let shown = wait_for("the pre-upgrade event on the new node", || {
        fresh.event(&old_event)
    });
    assert_eq!(shown["Event"]["info"], "made before org keys");
    let keys: Value = serde_json::from_str(&ok(fresh.dir(), &["org", "keys", "--json"])).unwrap();
    let bound = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|binding| binding["org_uuid"] == org_of(&upgraded).to_string())
        .cloned()
        .expect("the upgraded node's organisation is bound");
    assert_eq!(bound["keys"], json!([org_key.to_string()]));
    assert_eq!(bound["source"], "card");

    // New events go both ways.
    let new_event = add_event(
        &upgraded,
        "after the upgrade",
        3,
        &addresses("198.51.100", 3),
    );
    upgraded.publish(&new_event);
    wait_for("the upgraded node's new event", || fresh.event(&new_event));
    let reply = add_event(&fresh, "from the new node", 3, &addresses("203.0.113", 3));
    fresh.publish(&reply);
    wait_for("the new node's event on the upgraded node", || {
        upgraded.event(&reply)
    });
    for (node, peer) in [(&upgraded, &fresh), (&fresh, &upgraded)] {
        assert_no_refusal(&report_of(node, &node_key(peer)));
    }
}
