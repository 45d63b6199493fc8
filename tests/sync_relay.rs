//! Relays and multi-hop (SPEC §6.4) with three real nodes A–B–C over mutual TLS on loopback:
//! A is paired with B and B with C; A and C are not paired.

mod common;
#[path = "common/fed.rs"]
mod fed;

use common::forge::{holds_event, Forger};
use fed::{pair, wait_for, Node};
use serde_json::{json, Value};

fn add_event(a: &Node, info: &str, distribution: &str, group: Option<&str>) -> String {
    let mut event = json!({"info": info, "distribution": distribution, "threat_level_id": "2",
                           "analysis": "1",
                           "Attribute": [{"type": "domain", "value": format!("{}.example",
                               info.replace(' ', "-"))}]});
    if let Some(group) = group {
        event["sharing_group_uuid"] = json!(group);
    }
    let reply = a.post("/events/add", json!({ "Event": event }));
    let uuid = reply["Event"]["uuid"].as_str().unwrap().to_string();
    a.publish(&uuid);
    uuid
}

fn chain() -> (Node, Node, Node) {
    let a = Node::start("Org A", None, &[]);
    let b = Node::start("Org B", None, &[]);
    let c = Node::start("Org C", None, &[]);
    pair(&a, &b, &["--relationship", "external"]);
    pair(&b, &c, &["--relationship", "external"]);
    (a, b, c)
}

#[test]
fn levels_and_sharing_groups_travel_as_far_as_they_allow() {
    let (a, b, c) = chain();
    let abc = [
        (a.org.as_str(), "Org A"),
        (b.org.as_str(), "Org B"),
        (c.org.as_str(), "Org C"),
    ];
    let ac = a.sharing_group(
        "A and C",
        &[(a.org.as_str(), "Org A"), (c.org.as_str(), "Org C")],
        json!({}),
    );
    let fixed = a.sharing_group("all three, no relay", &abc, json!({}));
    let roaming = a.sharing_group("all three, roaming", &abc, json!({"roaming": true}));
    // B is A's server 1: MISP's SharingGroupServer names it by id.
    let via_b = a.sharing_group("all three, relayed by B", &abc, json!({}));
    let edited = a.post(
        &format!("/sharing_groups/edit/{via_b}"),
        json!({"SharingGroup": {}, "SharingGroupServer": [{"Server": {"id": "1"}}]}),
    );
    assert_eq!(
        edited["SharingGroupServer"][0]["Server"]["node_key"],
        b.node_key(),
        "{edited}"
    );
    // The threatlog `nodes` list names nodes by key.
    let by_key = a.sharing_group(
        "all three, nodes by key",
        &abc,
        json!({"nodes": [b.node_key()]}),
    );

    let all = add_event(&a, "level three", "3", None);
    let connected = add_event(&a, "level two", "2", None);
    let only_ac = add_event(&a, "group of A and C", "4", Some(&ac));
    let not_relayed = add_event(&a, "group not roaming", "4", Some(&fixed));
    let roams = add_event(&a, "group roaming", "4", Some(&roaming));
    let listed = add_event(&a, "group listing B", "4", Some(&via_b));
    let listed_by_key = add_event(&a, "group listing B by key", "4", Some(&by_key));
    let sentinel = add_event(&a, "sentinel", "3", None);

    wait_for("the sentinel on B", || b.event(&sentinel));
    wait_for("the sentinel on C", || c.event(&sentinel));

    // Level 3 travels on.
    assert!(b.event(&all).is_some());
    assert_eq!(c.event(&all).unwrap()["Event"]["distribution"], "3");
    // Level 2 lands on B as level 1 and stops there.
    let on_b = b.event(&connected).expect("level 2 on B");
    assert_eq!(on_b["Event"]["distribution"], "1", "{on_b}");
    assert_eq!(on_b["Event"]["Attribute"][0]["distribution"], "5");
    assert_eq!(a.event(&connected).unwrap()["Event"]["distribution"], "2");
    let index = b.get("/events/index").unwrap();
    let line = index
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["uuid"] == connected.as_str())
        .cloned()
        .unwrap();
    assert_eq!(line["distribution"], "1", "{line}");
    assert!(c.event(&connected).is_none());
    // A group of A and C never passes B.
    assert!(b.event(&only_ac).is_none());
    assert!(c.event(&only_ac).is_none());
    // A group of all three: B holds it; C only when the group roams or lists B.
    for event in [&not_relayed, &roams, &listed, &listed_by_key] {
        assert!(b.event(event).is_some(), "{event} on B");
    }
    assert!(c.event(&not_relayed).is_none());
    assert!(c.event(&roams).is_some());
    assert!(c.event(&listed).is_some());
    assert!(c.event(&listed_by_key).is_some());

    // No hop broke a rule, and the receiving directions ended without errors.
    for (node, name) in [(&a, "A"), (&b, "B"), (&c, "C")] {
        for peer in node.peers().as_array().unwrap() {
            assert_eq!(peer["status"]["violations"], 0, "{name}: {peer}");
        }
    }
    for (node, sender) in [(&b, &a), (&c, &b)] {
        let peer = node.peer_of_org(&sender.org);
        assert_eq!(peer["status"]["last_error"], Value::Null, "{peer}");
    }
}

#[test]
fn a_relay_that_forwards_level_two_is_rejected_and_recorded() {
    // R is a relay played by this test: paired with A and with C like any node, it pulls what
    // A releases to it and pushes all of it to C, level 2 included.
    let a = Node::start("Org A", None, &[]);
    let c = Node::start("Org C", None, &[]);
    let relay = Forger::new("Org R");
    for node in [&a, &c] {
        node.add_peer(
            &relay.card(),
            &["--relationship", "external", "--no-pull", "--no-push"],
        );
    }
    let connected = add_event(&a, "level two", "2", None);
    let connected_uuid = uuid::Uuid::parse_str(&connected).unwrap();
    let items = wait_for("level 2 released to R", || {
        let items = relay.pull(key_of(&a), &sync_addr(&a));
        holds_event(&items, connected_uuid).then_some(items)
    });

    let answer = relay.push(key_of(&c), &sync_addr(&c), items);
    assert!(answer.contains("policy violation"), "{answer}");
    assert!(answer.contains("level 2"), "{answer}");
    let report = c.peer_of_org(&relay.peer.org.to_string());
    assert_eq!(report["status"]["violations"], 1, "{report}");
    let error = report["status"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("policy violation"), "{report}");
    assert!(error.contains("level 2"), "{report}");
    assert!(c.event(&connected).is_none(), "{:?}", c.event(&connected));
}

#[test]
fn a_node_does_not_honour_the_old_test_switches() {
    // These variables once made a node relay everything and forge checkpoints. A node started
    // with them now behaves like any other: B withholds A's level 2 from C, and C records no
    // violation by B.
    let switches = [
        ("THREATLOG_TEST_RELAY_ALL", "1"),
        ("THREATLOG_TEST_SPLIT_VIEW", "1"),
    ];
    let a = Node::start("Org A", None, &[]);
    let b = Node::start("Org B", None, &switches);
    let c = Node::start("Org C", None, &[]);
    pair(&a, &b, &["--relationship", "external"]);
    pair(&b, &c, &["--relationship", "external"]);
    let connected = add_event(&a, "level two", "2", None);
    wait_for("level 2 on B", || b.event(&connected));
    let sentinel = add_event(&a, "sentinel", "3", None);
    // Whichever comes first: the later event reaching C through B, or C catching B relaying.
    wait_for("the sentinel on C, or a violation recorded by C", || {
        let caught = c.peer_of_org(&b.org)["status"]["violations"].as_u64() > Some(0);
        (caught || c.event(&sentinel).is_some()).then_some(())
    });
    let report = c.peer_of_org(&b.org);
    assert_eq!(report["status"]["violations"], 0, "{report}");
    assert_eq!(report["status"]["last_error"], Value::Null, "{report}");
    assert!(c.event(&sentinel).is_some());
    assert!(c.event(&connected).is_none());

    // Nor does the binary carry the switches' names at all.
    let binary = std::fs::read(env!("CARGO_BIN_EXE_threatlog")).unwrap();
    for (name, _) in switches {
        assert_eq!(
            memchr::memmem::find(&binary, name.as_bytes()),
            None,
            "the binary mentions {name}"
        );
    }
}

/// The node key on `node`'s card.
fn key_of(node: &Node) -> threatlog::log::OriginKey {
    threatlog::log::OriginKey::from_hex(&node.node_key()).unwrap()
}

/// The bound sync address of `node`.
fn sync_addr(node: &Node) -> String {
    std::fs::read_to_string(node.dir().join("run/sync.addr"))
        .unwrap()
        .trim()
        .to_string()
}
