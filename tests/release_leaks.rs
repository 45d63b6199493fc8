//! Paths that once released more than SPEC §6 allows, each tried with real nodes (real binary,
//! RocksDB, mutual-TLS gRPC): TLP tags written in another case.

mod common;

use common::nodes::{addresses, pair, wait_for, Peer};
use serde_json::{json, Value};

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
