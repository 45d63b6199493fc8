//! Paths that once released more than SPEC §6 allows, each tried with real nodes (real binary,
//! RocksDB, mutual-TLS gRPC): TLP tags written in another case, a deleted event's history, a
//! deletion held back from a peer that holds the event, an event widened but not published
//! again, a local tag that displaced the global one, and tag definitions rewritten by
//! attaching a tag.

mod common;

use common::forge::{holds_event, Forger};
use common::nodes::{add_event, addresses, pair, wait_for, Peer};
use common::ok;
use serde_json::{json, Value};
use threatlog::proto::sync as wire;
use threatlog::sync::peer::Card;

/// Adds a published level-3 event with `tags` on `node`; returns its uuid.
fn tagged_event(node: &Peer, info: &str, tags: &[&str], values: &[String]) -> String {
    let attributes: Vec<Value> = values
        .iter()
        .map(|value| json!({"type": "ip-dst", "value": value, "to_ids": true}))
        .collect();
    let tags: Vec<Value> = tags.iter().map(|name| json!({"name": name})).collect();
    let reply = node.post(
        "/events/add",
        json!({"Event": {"info": info, "distribution": "3", "threat_level_id": "2",
                         "analysis": "1", "Attribute": attributes, "Tag": tags}}),
    );
    let uuid = reply["Event"]["uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("event added: {reply}"))
        .to_string();
    node.publish(&uuid);
    uuid
}

#[test]
fn tlp_tags_count_in_any_case() {
    let a = Peer::start("Org A");
    let b = Peer::start("Org B");
    let c = Peer::start("Org C");
    // B may receive up to amber (the default), C up to green.
    pair(&a, &b, &["--relationship", "external"]);
    pair(
        &a,
        &c,
        &["--relationship", "external", "--tlp-max", "green"],
    );
    let red = tagged_event(
        &a,
        "red in capitals",
        &["TLP:RED"],
        &addresses("192.0.2", 1),
    );
    let amber = tagged_event(
        &a,
        "amber, mixed case",
        &["Tlp:Amber"],
        &addresses("198.51.100", 1),
    );
    let strict = tagged_event(
        &a,
        "amber+strict, mixed case",
        &["tLp:AmBeR+StRiCt"],
        &addresses("203.0.113", 1),
    );
    let clear = tagged_event(&a, "clear", &["TLP:CLEAR"], &addresses("192.0.2", 9));
    // The last event reaches both: everything before it has been decided by then.
    wait_for("the clear event on B", || b.event(&clear));
    wait_for("the clear event on C", || c.event(&clear));
    assert!(b.event(&red).is_none(), "TLP:RED reached an amber peer");
    assert!(
        b.event(&strict).is_none(),
        "amber+strict reached an amber peer"
    );
    let on_b = b.event(&amber).expect("Tlp:Amber reaches an amber peer");
    assert_eq!(on_b["Event"]["info"], "amber, mixed case");
    for event in [&red, &amber, &strict] {
        assert!(c.event(event).is_none(), "{event} reached a green peer");
    }
}

/// F, a node of another organisation played by the test, paired with `node` as an external
/// peer (the node neither pulls from nor pushes to it; F pulls).
fn external_puller(node: &Peer) -> Forger {
    let f = Forger::new("Org F");
    ok(
        node.dir(),
        &[
            "peer",
            "add",
            &f.card(),
            "--relationship",
            "external",
            "--no-pull",
            "--no-push",
        ],
    );
    f
}

/// Everything `node` releases to `f` from the start of its log.
fn pull(f: &Forger, node: &Peer) -> Vec<wire::Item> {
    f.pull(Card::decode(&node.card()).unwrap().key, &node.sync_addr())
}

#[test]
fn a_deleted_event_keeps_its_level_for_its_old_entries() {
    let a = Peer::start("Org A");
    let secret = add_event(&a, "organisation only", 0, &addresses("192.0.2", 2));
    a.publish(&secret);
    a.post(&format!("/events/delete/{secret}"), json!({}));
    assert!(a.event(&secret).is_none());
    let shared = add_event(&a, "all communities", 3, &addresses("198.51.100", 1));
    a.publish(&shared);
    // A peer paired after the deletion pulls A's log from the start.
    let f = external_puller(&a);
    let items = pull(&f, &a);
    let shared_uuid = uuid::Uuid::parse_str(&shared).unwrap();
    assert!(
        holds_event(&items, shared_uuid),
        "the level-3 event is released"
    );
    let secret_uuid = uuid::Uuid::parse_str(&secret).unwrap();
    assert!(
        !holds_event(&items, secret_uuid),
        "an entry of the deleted level-0 event was released"
    );
}

#[test]
fn a_deletion_reaches_every_peer_that_was_sent_the_event() {
    let a = Peer::start("Org A");
    let b = Peer::start("Org B");
    pair(&a, &b, &["--relationship", "external"]);
    let gone = tagged_event(&a, "deleted later", &[], &addresses("192.0.2", 1));
    wait_for("the event on B", || b.event(&gone));
    // A raises the event to tlp:red, over B's amber ceiling, publishes, then deletes it.
    assert_eq!(attach(&a, &a.key, &gone, "tlp:red", false).0, 200);
    a.publish(&gone);
    a.post(&format!("/events/delete/{gone}"), json!({}));
    // Another event B holds is narrowed to A's organisation, then deleted: its tombstone
    // states level 0, and still goes to B, which accepts it from its origin.
    let narrowed = tagged_event(
        &a,
        "narrowed, then deleted",
        &[],
        &addresses("203.0.113", 1),
    );
    wait_for("the second event on B", || b.event(&narrowed));
    a.post(
        &format!("/events/edit/{narrowed}"),
        json!({"Event": {"distribution": "0"}}),
    );
    a.post(&format!("/events/delete/{narrowed}"), json!({}));
    let after = tagged_event(&a, "after the deletion", &[], &addresses("198.51.100", 1));
    wait_for("the later event on B", || b.event(&after));
    assert!(
        b.event(&gone).is_none(),
        "B still holds an event its origin deleted"
    );
    assert!(
        b.event(&narrowed).is_none(),
        "B still holds the narrowed event its origin deleted"
    );
    let report = b.peers()[0].clone();
    assert_eq!(report["status"]["violations"], 0, "{report}");
    assert_eq!(report["status"]["last_error"], Value::Null, "{report}");
}

#[test]
fn a_widened_event_releases_its_old_entries_only_after_the_next_publish() {
    let a = Peer::start("Org A");
    let b = Peer::start("Org B");
    pair(&a, &b, &["--relationship", "external"]);
    let event = add_event(&a, "widened later", 0, &addresses("192.0.2", 2));
    a.publish(&event);
    // Widened to all communities, not published again.
    a.post(
        &format!("/events/edit/{event}"),
        json!({"Event": {"distribution": "3"}}),
    );
    let sentinel = add_event(&a, "sentinel", 3, &addresses("203.0.113", 1));
    a.publish(&sentinel);
    wait_for("the sentinel on B", || b.event(&sentinel));
    let f = external_puller(&a);
    let uuid = uuid::Uuid::parse_str(&event).unwrap();
    assert!(
        !holds_event(&pull(&f, &a), uuid),
        "an old entry of the widened event was released before the next publish"
    );
    assert!(b.event(&event).is_none());
    // B, the honest receiver, recorded nothing against A.
    let report = b.peers()[0].clone();
    assert_eq!(report["status"]["violations"], 0, "{report}");
    assert_eq!(report["status"]["last_error"], Value::Null, "{report}");

    // Published again: now everything of it goes, to both.
    a.publish(&event);
    let arrived = wait_for("the widened event on B", || b.event(&event));
    assert_eq!(arrived["Event"]["distribution"], "3");
    assert_eq!(common::nodes::values(&arrived), addresses("192.0.2", 2));
    assert!(holds_event(&pull(&f, &a), uuid));
    let report = b.peers()[0].clone();
    assert_eq!(report["status"]["violations"], 0, "{report}");
}

/// The tags of an event as the REST API shows them: (name, local), in order.
fn event_tags(event: &Value) -> Vec<(String, bool)> {
    event["Event"]["Tag"]
        .as_array()
        .unwrap_or_else(|| panic!("Tag in {event}"))
        .iter()
        .map(|tag| {
            let name = tag["name"].as_str().unwrap().to_string();
            (name, tag["local"].as_bool().unwrap())
        })
        .collect()
}

/// Attaches tag `name` to `uuid` with `key`; returns the HTTP status and reply.
fn attach(node: &Peer, key: &str, uuid: &str, name: &str, local: bool) -> (u16, Value) {
    let body = json!({"uuid": uuid, "tag": name, "local": local});
    node.server.request(
        "POST",
        "/tags/attachTagToObject",
        Some(key),
        Some(&body.to_string()),
    )
}

#[test]
fn a_local_tag_leaves_the_global_tag_of_the_same_name_in_force() {
    let a = Peer::start("Org A");
    let other = a.org_user("Org X", "analyst@x.example");
    let red = tagged_event(&a, "red", &["tlp:red"], &addresses("192.0.2", 1));
    // The owner's own user and another organisation's user each tag it tlp:red locally.
    assert_eq!(attach(&a, &a.key, &red, "tlp:red", true).0, 200);
    let (status, reply) = attach(&a, &other, &red, "tlp:red", true);
    assert_eq!(status, 200, "{reply}");
    let tags = event_tags(&a.event(&red).unwrap());
    assert_eq!(
        tags,
        vec![
            ("tlp:red".to_string(), false),
            ("tlp:red".to_string(), true)
        ]
    );
    // The other organisation's local tag goes when it removes it; the global one stays.
    let body = json!({"uuid": red, "tag": "tlp:red"}).to_string();
    let (status, reply) = a.server.request(
        "POST",
        "/tags/removeTagFromObject",
        Some(&other),
        Some(&body),
    );
    assert_eq!(
        (status, &reply["check_publish"]),
        (200, &json!(false)),
        "{reply}"
    );
    let clear = tagged_event(&a, "clear", &["tlp:clear"], &addresses("198.51.100", 1));
    let f = external_puller(&a);
    let items = pull(&f, &a);
    assert!(holds_event(&items, uuid::Uuid::parse_str(&clear).unwrap()));
    assert!(
        !holds_event(&items, uuid::Uuid::parse_str(&red).unwrap()),
        "a tlp:red event reached an amber peer once a local tlp:red was added"
    );
    assert_eq!(
        event_tags(&a.event(&red).unwrap()),
        vec![
            ("tlp:red".to_string(), false),
            ("tlp:red".to_string(), true)
        ],
        "the owner's local tag and the global tag stay"
    );
}

#[test]
fn tag_definitions_stay_on_their_node_and_attaching_never_rewrites_them() {
    let a = Peer::start("Org A");
    let b = Peer::start("Org B");
    pair(&a, &b, &["--relationship", "external"]);
    a.post(
        "/tags/add",
        json!({"Tag": {"name": "acme:internal", "exportable": false}}),
    );
    b.post(
        "/tags/add",
        json!({"Tag": {"name": "acme:shared", "colour": "#ff0000"}}),
    );
    let add = |info: &str, tags: Value| {
        let reply = a.post(
            "/events/add",
            json!({"Event": {"info": info, "distribution": "3", "Tag": tags,
                "Attribute": [{"type": "ip-dst", "value": "203.0.113.50"}]}}),
        );
        let uuid = reply["Event"]["uuid"].as_str().unwrap().to_string();
        a.publish(&uuid);
        uuid
    };
    // Tagging with the admin's non-exportable tag leaves it non-exportable.
    let internal = add("internal", json!([{"name": "acme:internal"}]));
    let definition = a.get("/tags/view/acme:internal");
    assert_eq!(definition["Tag"]["exportable"], false, "{definition}");
    // A request's own colour and exportable flag define nothing, here or on the peer.
    let shared = add(
        "shared",
        json!([{"name": "acme:shared", "colour": "#00ff00"},
               {"name": "acme:other", "exportable": false}]),
    );
    let other = a.get("/tags/view/acme:other");
    assert_eq!(
        (&other["Tag"]["exportable"], &other["Tag"]["colour"]),
        (&json!(true), &json!("#ffffff"))
    );
    let arrived = wait_for("the shared event on B", || b.event(&shared));
    let mut names: Vec<(String, bool)> = event_tags(&arrived);
    names.sort();
    assert_eq!(
        names,
        vec![
            ("acme:other".to_string(), false),
            ("acme:shared".to_string(), false)
        ]
    );
    let on_b = b.get("/tags/view/acme:shared");
    assert_eq!(on_b["Tag"]["colour"], "#ff0000", "{on_b}");
    let shown = &arrived["Event"]["Tag"];
    assert!(
        shown
            .as_array()
            .unwrap()
            .iter()
            .any(|tag| tag["name"] == "acme:shared" && tag["colour"] == "#ff0000"),
        "B shows the tag with its own colour: {shown}"
    );
    assert!(
        b.event(&internal).is_none(),
        "an event carrying a non-exportable tag reached an external peer"
    );
}

#[test]
fn a_relay_cannot_pass_on_entries_of_an_event_the_receiver_does_not_hold_as_inherited() {
    use threatlog::log::{EntryId, Stub};
    use threatlog::store::Held;
    use threatlog::sync::exchange;
    use threatlog::sync::peer::{self, PeerSettings};

    let temp = tempfile::tempdir().unwrap();
    let a = common::engine::init(&temp.path().join("a"), "Org A");
    let b = common::engine::init(&temp.path().join("b"), "Org B");
    // A's event for its own organisation, then an attribute added to it: an entry that
    // inherits the event's level and does not state it.
    let actor = threatlog::change::Actor {
        org: a.org.uuid,
        user: "analyst@a.example".into(),
    };
    let event = threatlog::model::Event::from_json(&json!({"Event": {
        "info": "A only", "distribution": "0",
        "Attribute": [{"type": "ip-dst", "value": "192.0.2.77"}]}}))
    .unwrap();
    a.append(threatlog::change::event_drafts(&event, &actor))
        .unwrap();
    let attribute = common::hostile::set_op(
        threatlog::proto::RecordKind::Attribute,
        &uuid::Uuid::new_v4(),
        json!({"type": "ip-dst", "category": "Network activity", "value": "192.0.2.78"}),
    );
    let added = a
        .append(threatlog::change::event_ops_drafts(
            event.uuid,
            threatlog::change::INHERIT,
            vec![attribute],
            &actor,
        ))
        .unwrap();
    let inherited = added.entries.last().unwrap().clone();
    // H, an external peer of B, relays it after A's earlier entries, those of the event as
    // stubs.
    let h = common::hostile::Hostile::new();
    let card = Card::decode(&h.card()).unwrap();
    let h_on_b = peer::pair(&b.store, &b.origin(), card, PeerSettings::default()).unwrap();
    let mut items = Vec::new();
    for sequence in 1..inherited.sequence() {
        let id = EntryId {
            origin: a.origin(),
            sequence,
        };
        let Some(Held::Entry(entry)) = a.store.held(&id).unwrap() else {
            panic!("A holds its own entry {sequence}");
        };
        // A's directory entries in full, the event's own as stubs.
        items.push(match entry.event() == Some(event.uuid) {
            false => threatlog::sync::release::Released::Entry(entry),
            true => threatlog::sync::release::Released::Stub(Stub::of(&entry)),
        });
    }
    items.push(threatlog::sync::release::Released::Entry(inherited.clone()));
    let segment = common::hostile::segment_of(threatlog::sync::encode_items(&items));
    let answer = exchange::receive(&b, &h_on_b, segment);
    let error = answer.expect_err("B accepted a level-0 event's entry from a relay");
    assert!(error.to_string().contains("policy violation"), "{error}");
    assert!(!matches!(
        b.store.held(&inherited.id()).unwrap(),
        Some(Held::Entry(_))
    ));
    assert_eq!(peer::status(&b.store, &h_on_b.key).unwrap().violations, 1);
}
