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

fn base64_hash(value: &Value) -> [u8; 32] {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn auditors_get_checkpoints_and_proofs_over_rest_and_the_cli() {
    use threatlog::log::{checkpoint, merkle, OriginKey};
    let (_temp, dir) = common::node();
    let config = dir.join("threatlog.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("checkpoint_entries = 1000", "checkpoint_entries = 1"),
    )
    .unwrap();
    let key_of = |output: String| {
        output
            .lines()
            .last()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    let auditor = key_of(common::ok(
        &dir,
        &[
            "user",
            "add",
            "--org",
            "Test Org",
            "--role",
            "read-only",
            "--email",
            "auditor@test.test",
        ],
    ));
    let user = key_of(common::ok(
        &dir,
        &[
            "user",
            "add",
            "--org",
            "Test Org",
            "--role",
            "user",
            "--email",
            "user@test.test",
        ],
    ));
    let server = Server::start(&dir);
    let (status, created) = server.request(
        "POST",
        "/events/add",
        Some(&user),
        Some(r#"{"Event": {"info": "Prove me", "Attribute": [{"type": "ip-dst", "value": "203.0.113.9"}]}}"#),
    );
    assert_eq!(status, 200, "{created}");
    let event = created["Event"]["uuid"].as_str().unwrap().to_string();

    let (status, _) = server.request("GET", "/audit/checkpoint", Some(&user), None);
    assert_eq!(status, 403, "a plain user is not an auditor");
    let (status, body) = server.request("GET", "/audit/checkpoint", Some(&auditor), None);
    assert_eq!(status, 200, "{body}");
    let origin = OriginKey::from_hex(body["origin"].as_str().unwrap()).unwrap();
    let size = body["size"].as_u64().unwrap();
    assert!(size >= 2, "init entries and the event: {body}");
    let signed = checkpoint::verify_origin_note(body["note"].as_str().unwrap(), &origin).unwrap();
    assert_eq!(signed.size, size);
    assert_eq!(signed.root, base64_hash(&body["root"]));

    for sequence in 1..=size {
        let (status, proof) = server.request(
            "GET",
            &format!("/audit/proof/inclusion/{origin}/{sequence}"),
            Some(&auditor),
            None,
        );
        assert_eq!(status, 200, "{proof}");
        let hashes: Vec<[u8; 32]> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(base64_hash)
            .collect();
        merkle::verify_inclusion(
            sequence - 1,
            size,
            &base64_hash(&proof["leaf_hash"]),
            &hashes,
            &signed.root,
        )
        .unwrap();
    }
    let (status, missing) = server.request(
        "GET",
        &format!("/audit/proof/inclusion/{origin}/{}", size + 1),
        Some(&auditor),
        None,
    );
    assert_eq!(status, 404, "{missing}");
    let (status, consistency) = server.request(
        "GET",
        &format!("/audit/proof/consistency/{origin}/1/{size}"),
        Some(&auditor),
        None,
    );
    assert_eq!(status, 200, "{consistency}");
    let hashes: Vec<[u8; 32]> = consistency["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(base64_hash)
        .collect();
    merkle::verify_consistency(
        1,
        size,
        &base64_hash(&consistency["old_root"]),
        &signed.root,
        &hashes,
    )
    .unwrap();

    // The CLI proves the event's entries from the running node's directory.
    let proof = common::ok(&dir, &["audit", "prove", &event]);
    let proof: Value = serde_json::from_str(&proof).unwrap();
    let proof = if proof.is_array() {
        proof[0].clone()
    } else {
        proof
    };
    assert_eq!(proof["origin"], origin.to_string());
    assert_eq!(proof["tree_size"], size);
    let by_position = common::ok(&dir, &["audit", "prove", &format!("{origin}:1")]);
    let by_position: Value = serde_json::from_str(&by_position).unwrap();
    assert_eq!(by_position["sequence"], 1);
    server.stop();
}
