//! Federation between real nodes: `threatlog serve` processes paired with `peer card` and
//! `peer add`, replicating over gRPC with mutual TLS on loopback.

mod common;

use common::nodes::{add_event, addresses, pair, values, wait_for, Peer};
use common::{ok, threatlog};
use serde_json::{json, Value};
use std::path::PathBuf;

#[test]
fn published_events_replicate_and_withheld_ones_are_revealed_after_widening() {
    let a = Peer::start("Org A");
    let b = Peer::start("Org B");
    pair(&a, &b, &["--relationship", "external"]);

    let shared = add_event(&a, "all communities", 3, &addresses("198.51.100", 3));
    let private = add_event(&a, "organisation only", 0, &addresses("203.0.113", 50));
    a.post(&format!("/events/publish/{shared}"), json!({}));
    a.post(&format!("/events/publish/{private}"), json!({}));

    let replicated = wait_for("the shared event on B", || b.event(&shared));
    assert_eq!(values(&replicated), addresses("198.51.100", 3));
    assert_eq!(replicated["Event"]["Orgc"]["name"], "Org A");
    // Level 0 reaches B as stubs only: B's chain of A is complete, the event invisible.
    wait_for("B to catch up", || {
        let peers = b.peers();
        (peers[0]["lag_entries"] == 0 && peers[0]["cursor"].as_u64() > Some(0)).then_some(())
    });
    assert!(b.event(&private).is_none());

    // Widened to level 3 and republished: B receives all 50 attributes, each checked
    // against the stub it held.
    a.post(
        &format!("/events/edit/{private}"),
        json!({"Event": {"distribution": "3"}}),
    );
    a.post(&format!("/events/publish/{private}"), json!({}));
    let revealed = wait_for("the widened event on B", || {
        b.event(&private)
            .filter(|event| event["Event"]["Attribute"].as_array().map(Vec::len) == Some(50))
    });
    assert_eq!(values(&revealed), addresses("203.0.113", 50));
    let peers = b.peers();
    assert_eq!(peers[0]["status"]["last_error"], Value::Null, "{peers}");
    // B's copy of A's chain verifies offline: entries, revealed entries and links.
    let Peer {
        server,
        temp: _temp,
        ..
    } = b;
    let dir = server.dir.clone();
    server.stop();
    let verify = ok(&dir, &["log", "verify"]);
    assert!(verify.contains("from 2 origins"), "{verify}");
}

#[test]
fn unpaired_keys_are_refused_at_the_handshake() {
    let a = Peer::start("Org A");
    let b = Peer::start("Org B");
    // B pairs A, but A never pairs B: B's client certificate is refused by A's server.
    ok(b.dir(), &["peer", "add", &a.card()]);
    let shared = add_event(&a, "not for strangers", 3, &addresses("192.0.2", 1));
    a.post(&format!("/events/publish/{shared}"), json!({}));
    let error = wait_for("B to record the refusal", || {
        b.peers()[0]["status"]["last_error"]
            .as_str()
            .map(str::to_string)
    });
    assert!(b.event(&shared).is_none());
    assert!(!error.is_empty());
}

#[test]
fn peers_are_managed_while_stopped_and_cards_are_checked() {
    let temp = tempfile::tempdir().unwrap();
    let dir: PathBuf = temp.path().join("node");
    ok(&dir, &["init", "--org-name", "Org A"]);
    let card = ok(&dir, &["peer", "card"]);
    assert!(card.starts_with("threatlog-card:"));
    let refused = threatlog(&dir, &["peer", "add", card.trim()]);
    assert!(!refused.status.success(), "pairing with itself is refused");
    let garbage = threatlog(&dir, &["peer", "add", "threatlog-card:!!!"]);
    assert!(!garbage.status.success());
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("pairing card"));

    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().join("node");
    ok(&other_dir, &["init", "--org-name", "Org B"]);
    let other_card = ok(&other_dir, &["peer", "card"]);
    ok(
        &dir,
        &[
            "peer",
            "add",
            other_card.trim(),
            "--tlp-max",
            "red",
            "--no-push",
        ],
    );
    let list: Value = serde_json::from_str(&ok(&dir, &["peer", "list", "--json"])).unwrap();
    assert_eq!(list[0]["org_name"], "Org B");
    assert_eq!(list[0]["rules"]["relationship"], "external");
    assert_eq!(list[0]["rules"]["tlp_max"], "red");
    assert_eq!(list[0]["push"], false);
    ok(&dir, &["peer", "set", "1", "--tlp-max", "green"]);
    let list: Value = serde_json::from_str(&ok(&dir, &["peer", "list", "--json"])).unwrap();
    assert_eq!(list[0]["rules"]["tlp_max"], "green");
    ok(&dir, &["peer", "remove", "1"]);
    let list: Value = serde_json::from_str(&ok(&dir, &["peer", "list", "--json"])).unwrap();
    assert_eq!(list, json!([]));
}

/// A card with a fresh node key claiming organisation `org_uuid`.
fn card_claiming(org_uuid: uuid::Uuid, org_name: &str) -> String {
    threatlog::sync::peer::Card {
        key: threatlog::log::NodeKey::generate().origin(),
        org_uuid,
        org_name: org_name.into(),
        endpoint: "127.0.0.1:9".into(),
        org_key: None,
    }
    .encode()
}

#[test]
fn a_card_naming_our_organisation_is_external_unless_the_operator_says_internal() {
    let temp = tempfile::tempdir().unwrap();
    let dir: PathBuf = temp.path().join("node");
    ok(&dir, &["init", "--org-name", "Org A"]);
    let own = threatlog::sync::peer::Card::decode(&ok(&dir, &["peer", "card"])).unwrap();
    // Our org uuid is public (the Orgc of every event we share): anyone can put it on a card.
    let claimed = card_claiming(own.org_uuid, "Org A");
    ok(&dir, &["peer", "add", &claimed, "--no-pull", "--no-push"]);
    let chosen = card_claiming(own.org_uuid, "Org A");
    ok(
        &dir,
        &[
            "peer",
            "add",
            &chosen,
            "--relationship",
            "internal",
            "--no-pull",
            "--no-push",
        ],
    );
    let list: Value = serde_json::from_str(&ok(&dir, &["peer", "list", "--json"])).unwrap();
    let relationships: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|peer| &peer["rules"]["relationship"])
        .collect();
    assert_eq!(relationships, [&json!("external"), &json!("internal")]);

    // The REST API: MISP's `/servers/add` without a relationship, with `relationship`, and
    // with MISP's own `internal` flag.
    let admin = std::fs::read_to_string(dir.join("admin.key")).unwrap();
    let server = common::server::Server::start(&dir);
    let add = |server_fields: Value| -> Value {
        let (status, reply) = server.request(
            "POST",
            "/servers/add",
            Some(admin.trim()),
            Some(&json!({ "Server": server_fields }).to_string()),
        );
        assert_eq!(status, 200, "{reply}");
        reply
    };
    let plain =
        add(json!({"authkey": card_claiming(own.org_uuid, "Org A"), "pull": false, "push": false}));
    assert_eq!(plain["Server"]["internal"], false, "{plain}");
    assert_eq!(plain["threatlog"]["rules"]["relationship"], "external");
    let internal = add(json!({"authkey": card_claiming(own.org_uuid, "Org A"),
                              "relationship": "internal", "pull": false, "push": false}));
    assert_eq!(internal["Server"]["internal"], true, "{internal}");
    let flagged = add(json!({"authkey": card_claiming(own.org_uuid, "Org A"),
                             "internal": true, "pull": false, "push": false}));
    assert_eq!(flagged["Server"]["internal"], true, "{flagged}");
    let unflagged = add(json!({"authkey": card_claiming(own.org_uuid, "Org A"),
                               "internal": false, "pull": false, "push": false}));
    assert_eq!(unflagged["Server"]["internal"], false, "{unflagged}");
}
