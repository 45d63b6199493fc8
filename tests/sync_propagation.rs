//! What propagates between paired nodes after the first replication: tag removal, attribute
//! soft deletion, edits (only once published again) and whole-event deletion; and what never
//! leaves: local tags.

mod common;

use common::nodes::{add_event, addresses, pair, values, wait_for, Peer};
use serde_json::{json, Value};

fn tag_names(event: &Value) -> Vec<String> {
    let mut names: Vec<String> = event["Event"]["Tag"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|tag| tag["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn attribute_uuid(event: &Value, value: &str) -> String {
    event["Event"]["Attribute"]
        .as_array()
        .unwrap()
        .iter()
        .find(|attribute| attribute["value"] == value)
        .and_then(|attribute| attribute["uuid"].as_str())
        .unwrap()
        .to_string()
}

fn tag(node: &Peer, uuid: &str, name: &str, local: bool) {
    node.post(
        "/tags/attachTagToObject",
        json!({"uuid": uuid, "tag": name, "local": if local { 1 } else { 0 }}),
    );
}

fn cursor(node: &Peer) -> u64 {
    node.peers()[0]["cursor"].as_u64().unwrap_or(0)
}

#[test]
fn removals_deletions_and_later_edits_propagate_and_local_tags_never_leave() {
    let a = Peer::start("Org A");
    let b = Peer::start("Org B");
    pair(&a, &b, &["--relationship", "external"]);

    let event = add_event(&a, "propagation", 3, &addresses("198.51.100", 3));
    tag(&a, &event, "tlp:green", false);
    tag(&a, &event, "campaign:one", false);
    tag(&a, &event, "workflow:state=\"incomplete\"", true);
    let on_a = a.event(&event).unwrap();
    assert_eq!(
        tag_names(&on_a),
        ["campaign:one", "tlp:green", "workflow:state=\"incomplete\""]
    );
    a.publish(&event);

    // The event and its global tags arrive; the local tag does not.
    let on_b = wait_for("the event on B", || b.event(&event));
    assert_eq!(values(&on_b), addresses("198.51.100", 3));
    assert_eq!(tag_names(&on_b), ["campaign:one", "tlp:green"]);

    // A tag removed and an attribute soft-deleted on A, then published.
    a.post(
        "/tags/removeTagFromObject",
        json!({"uuid": event, "tag": "campaign:one"}),
    );
    let deleted = attribute_uuid(&on_a, "198.51.100.0");
    a.post(&format!("/attributes/delete/{deleted}"), json!({}));
    a.publish(&event);
    let on_a = a.event(&event).unwrap();
    assert_eq!(values(&on_a), ["198.51.100.1", "198.51.100.2"]);
    let on_b = wait_for("the removal and deletion on B", || {
        b.event(&event)
            .filter(|on_b| tag_names(on_b) == ["tlp:green"] && values(on_b) == values(&on_a))
    });
    assert_eq!(values(&on_b), ["198.51.100.1", "198.51.100.2"]);
    assert_eq!(
        tag_names(&a.event(&event).unwrap()),
        ["tlp:green", "workflow:state=\"incomplete\""],
        "the local tag stays on A"
    );

    // An edit without a publish: B holds it as a stub only and shows the old value.
    let before = cursor(&b);
    let edited = attribute_uuid(&on_a, "198.51.100.1");
    a.post(
        &format!("/attributes/edit/{edited}"),
        json!({"Attribute": {"value": "198.51.100.99"}}),
    );
    assert_eq!(
        values(&a.event(&event).unwrap()),
        ["198.51.100.2", "198.51.100.99"]
    );
    wait_for("B to receive the edit's position", || {
        (cursor(&b) > before && b.peers()[0]["lag_entries"] == 0).then_some(())
    });
    assert_eq!(
        values(&b.event(&event).unwrap()),
        ["198.51.100.1", "198.51.100.2"],
        "an unpublished edit is not shown on B"
    );
    a.publish(&event);
    wait_for("the published edit on B", || {
        b.event(&event)
            .filter(|on_b| values(on_b) == ["198.51.100.2", "198.51.100.99"])
    });

    // The whole event deleted on A: the tombstone removes it on B.
    let (status, reply) = a.server.request(
        "POST",
        &format!("/events/delete/{event}"),
        Some(&a.key),
        Some("{}"),
    );
    assert_eq!(status, 200, "{reply}");
    assert!(a.event(&event).is_none());
    wait_for("the deletion on B", || {
        b.event(&event).is_none().then_some(())
    });
    let peers = b.peers();
    assert_eq!(peers[0]["status"]["last_error"], Value::Null, "{peers}");
}
