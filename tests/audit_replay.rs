//! Replay and history against a real `threatlog serve`: a scripted history (create, edit,
//! tag, untag, delete) through the REST API, with the time and the REST state recorded after
//! each step; `audit replay --at` each of the five instants gives that state, and `audit
//! history` lists every change of the attribute in order with origin and org. The audit
//! commands run read-only on the running node's directory.

mod common;

use common::server::Server;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The fields of an event a user relies on: info, tags, and each attribute's identity, value,
/// type, category, comment, to_ids and tags.
fn meaningful(event: &Value) -> Value {
    let event = event.get("Event").unwrap_or(event);
    let tags = |value: &Value| -> Vec<String> {
        let mut names: Vec<String> = value["Tag"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .map(|t| t["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let attributes: Vec<Value> = event["Attribute"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            serde_json::json!({
                "uuid": a["uuid"], "type": a["type"], "category": a["category"],
                "value": a["value"], "comment": a["comment"], "to_ids": a["to_ids"],
                "deleted": a["deleted"], "Tag": tags(a),
            })
        })
        .collect();
    serde_json::json!({
        "uuid": event["uuid"], "info": event["info"], "distribution": event["distribution"],
        "Tag": tags(event), "Attribute": attributes,
    })
}

#[test]
fn replay_at_five_instants_equals_the_rest_state_and_history_lists_every_change() {
    let (_temp, dir) = common::node();
    let key = std::fs::read_to_string(dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string();
    let server = Server::start(&dir);
    let call = |method: &str, path: &str, body: Option<&str>| {
        let (status, value) = server.request(method, path, Some(&key), body);
        assert_eq!(status, 200, "{method} {path}: {value}");
        value
    };
    let mut instants: Vec<(i64, Option<Value>)> = Vec::new();
    let mut record = |event: &str| {
        let (status, value) =
            server.request("GET", &format!("/events/view/{event}"), Some(&key), None);
        let state = (status == 200).then(|| meaningful(&value));
        std::thread::sleep(Duration::from_millis(30));
        instants.push((now_ms(), state));
        std::thread::sleep(Duration::from_millis(30));
    };

    // 1. create
    let created = call(
        "POST",
        "/events/add",
        Some(
            r#"{"Event": {"info": "Replay me", "distribution": 1, "Attribute": [{"type": "domain", "value": "first.example.test", "comment": "original"}]}}"#,
        ),
    );
    let event = created["Event"]["uuid"].as_str().unwrap().to_string();
    let attribute = created["Event"]["Attribute"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    record(&event);
    // 2. edit
    call(
        "POST",
        &format!("/attributes/edit/{attribute}"),
        Some(r#"{"Attribute": {"value": "second.example.test", "comment": "edited"}}"#),
    );
    record(&event);
    // 3. tag
    call(
        "POST",
        "/tags/attachTagToObject",
        Some(&format!(r#"{{"uuid": "{attribute}", "tag": "tlp:amber"}}"#)),
    );
    record(&event);
    // 4. untag
    call(
        "POST",
        "/tags/removeTagFromObject",
        Some(&format!(r#"{{"uuid": "{attribute}", "tag": "tlp:amber"}}"#)),
    );
    record(&event);
    // 5. delete
    call("POST", &format!("/events/delete/{event}"), None);
    record(&event);

    assert_eq!(instants.len(), 5);
    assert_eq!(
        instants[0].1.as_ref().unwrap()["Attribute"][0]["value"],
        "first.example.test"
    );
    assert_eq!(
        instants[1].1.as_ref().unwrap()["Attribute"][0]["comment"],
        "edited"
    );
    assert_eq!(
        instants[2].1.as_ref().unwrap()["Attribute"][0]["Tag"][0],
        "tlp:amber"
    );
    assert!(
        instants[4].1.is_none(),
        "the event is gone after the delete"
    );

    // Replay each instant from the running node's directory, read-only.
    for (step, (at, state)) in instants.iter().enumerate() {
        let output = common::threatlog(
            &dir,
            &[
                "audit",
                "replay",
                "--at",
                &at.to_string(),
                "--event",
                &event,
            ],
        );
        match state {
            Some(expected) => {
                assert!(
                    output.status.success(),
                    "step {}: {}",
                    step + 1,
                    String::from_utf8_lossy(&output.stderr)
                );
                let replayed: Value = serde_json::from_slice(&output.stdout).unwrap();
                assert_eq!(&meaningful(&replayed), expected, "step {}", step + 1);
            }
            None => {
                assert!(
                    !output.status.success(),
                    "step {}: event still there",
                    step + 1
                );
                let error = String::from_utf8_lossy(&output.stderr);
                assert!(error.contains("did not exist"), "{error}");
            }
        }
    }
    // Before the first step the event did not exist; the whole state lists it at step 1.
    let all = common::ok(
        &dir,
        &["audit", "replay", "--at", &instants[0].0.to_string()],
    );
    let all: Value = serde_json::from_str(&all).unwrap();
    assert!(all["response"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["Event"]["uuid"] == event.as_str()));

    // History of the attribute: create, edit, tag, untag, event deletion, in order.
    let history = common::ok(&dir, &["audit", "history", &attribute, "--json"]);
    let history: Vec<Value> = serde_json::from_str(&history).unwrap();
    let origin = {
        let verify = common::ok(&dir, &["audit", "verify", "--json"]);
        let report: Value = serde_json::from_str(&verify).unwrap();
        report["origins"][0]["origin"].as_str().unwrap().to_string()
    };
    assert_eq!(history.len(), 5, "{history:#?}");
    let expected = [
        "set attribute",
        "set attribute",
        "attached tag tlp:amber",
        "detached tag tlp:amber",
        "deleted the event",
    ];
    let mut last = (0, 0);
    for (change, expected) in history.iter().zip(expected) {
        let text = change["changes"][0].as_str().unwrap();
        assert!(
            text.starts_with(expected),
            "{text} should start with {expected}"
        );
        assert_eq!(change["origin"], origin.as_str());
        assert_eq!(change["org_name"], "Test Org");
        assert_eq!(change["user"], "admin@admin.test");
        let position = (
            change["time_ms"].as_i64().unwrap(),
            change["sequence"].as_u64().unwrap(),
        );
        assert!(position > last, "in order");
        last = position;
    }
    assert!(history[0]["changes"][0]
        .as_str()
        .unwrap()
        .contains("first.example.test"));
    assert!(history[1]["changes"][0]
        .as_str()
        .unwrap()
        .contains("second.example.test"));
    // The text form names the same entries.
    let text = common::ok(&dir, &["audit", "history", &attribute]);
    assert_eq!(text.matches("org Test Org").count(), 5, "{text}");

    // A bundle exported from the running node answers the same history.
    let bundle = dir.parent().unwrap().join("live.bundle");
    common::ok(
        &dir,
        &["audit", "export", "--out", bundle.to_str().unwrap()],
    );
    let from_bundle = common::ok(
        &dir,
        &[
            "audit",
            "history",
            bundle.to_str().unwrap(),
            &attribute,
            "--json",
        ],
    );
    let from_bundle: Vec<Value> = serde_json::from_str(&from_bundle).unwrap();
    assert_eq!(from_bundle, history);
    server.stop();
}
