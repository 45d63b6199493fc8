//! Relays and multi-hop (SPEC §6.4) with three real nodes A–B–C over mutual TLS on loopback:
//! A is paired with B and B with C; A and C are not paired.

mod common;
#[path = "common/fed.rs"]
mod fed;

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
    let a = Node::start("Org A", None, &[]);
    let b = Node::start("Org B", None, &[("THREATLOG_TEST_RELAY_ALL", "1")]);
    let c = Node::start("Org C", None, &[]);
    pair(&a, &b, &["--relationship", "external"]);
    pair(&b, &c, &["--relationship", "external"]);

    let connected = add_event(&a, "level two", "2", None);
    wait_for("level 2 on B", || b.event(&connected));
    let report = wait_for("C to record B's violation", || {
        let peer = c.peer_of_org(&b.org);
        (peer["status"]["violations"].as_u64() >= Some(1)).then_some(peer)
    });
    let error = report["status"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("policy violation"), "{report}");
    assert!(error.contains("level 2"), "{report}");
    assert!(
        c.event(&connected).is_none(),
        "{report} {:?} {}",
        c.event(&connected),
        c.peers()
    );
}
