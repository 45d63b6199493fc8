//! The REST API of the real `threatlog serve` binary over loopback: MISP's error bodies and
//! status codes for bad input (none of which changes the log), and an event's life cycle.

mod common;

use common::accounts::admin_key;
use common::server::{raw, Server};

use serde_json::{json, Value};
use std::path::Path;

const AUTH_FAILED: &str = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.";

fn entry_count(dir: &Path) -> u64 {
    let summary = common::ok(dir, &["log", "verify"]);
    summary
        .trim_start_matches("verified ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn error_body(message: &str, url: &str) -> Value {
    json!({"name": message, "message": message, "url": url})
}

const EVENT: &str = r#"{"Event": {"info": "api test", "distribution": 0, "Attribute": [
    {"type": "ip-dst", "value": "198.51.100.7"}, {"type": "domain", "value": "Example.COM"}]}}"#;

#[test]
fn bad_requests_get_misp_errors_and_append_nothing() {
    let (_temp, dir) = common::node();
    let config = dir.join("threatlog.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("body_bytes_max = 52428800", "body_bytes_max = 1000"),
    )
    .unwrap();
    let other = common::ok(&dir, &["org", "add", "--name", "Other CERT"]);
    assert!(other.contains("Other CERT"), "{other}");
    let added = common::ok(
        &dir,
        &[
            "user",
            "add",
            "--org",
            "Other CERT",
            "--role",
            "publisher",
            "--email",
            "p@other.test",
        ],
    );
    let other_key = added.rsplit(' ').next().unwrap().trim().to_string();
    assert_eq!(other_key.len(), 40, "{added}");

    let server = Server::start(&dir);
    let key = admin_key(&dir);
    let (status, event) = server.request("POST", "/events/add", Some(&key), Some(EVENT));
    assert_eq!(status, 200, "{event}");
    let id = event["Event"]["id"].as_str().unwrap().to_string();
    server.stop();
    let before = entry_count(&dir);

    let server = Server::start(&dir);
    // Missing and wrong keys.
    for key in [None, Some("x".repeat(40))] {
        let (status, body) = server.request("GET", "/events/index", key.as_deref(), None);
        assert_eq!(
            (status, body),
            (403, error_body(AUTH_FAILED, "/events/index"))
        );
    }
    // X-MISP-AUTH works as well as Authorization.
    let request = format!("GET /servers/getVersion HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-MISP-AUTH: {key}\r\n\r\n");
    let (status, body) = raw(&server.addr, request.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(body["version"], "2.5.0");

    // Not JSON.
    let (status, body) = server.request(
        "POST",
        "/events/add",
        Some(&key),
        Some("{\"Event\": {\"info\": "),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Malformed JSON"),
        "{body}"
    );
    assert_eq!(body["url"], "/events/add");

    // Over the configured limit, declared or chunked.
    let big = format!(r#"{{"Event": {{"info": "{}"}}}}"#, "x".repeat(2000));
    let (status, body) = server.request("POST", "/events/add", Some(&key), Some(&big));
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("1000 bytes"),
        "{body}"
    );
    let chunked = format!("POST /events/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {key}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let (status, body) = raw(&server.addr, chunked.as_bytes());
    assert_eq!(
        (status, body["url"].clone()),
        (413, json!("/events/add")),
        "{body}"
    );

    // Unknown attribute type, in an event and on its own.
    let bad_type =
        r#"{"Event": {"info": "x", "Attribute": [{"type": "ip-dest", "value": "1.2.3.4"}]}}"#;
    let (status, body) = server.request("POST", "/events/add", Some(&key), Some(bad_type));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["errors"]["type"][0]
            .as_str()
            .unwrap()
            .contains("unknown attribute type 'ip-dest'"),
        "{body}"
    );
    let (status, body) = server.request(
        "POST",
        &format!("/attributes/add/{id}"),
        Some(&key),
        Some(r#"{"type": "ip-dest", "value": "1.2.3.4"}"#),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["name"], "Could not add Attribute");
    assert!(body["errors"]["type"].is_array(), "{body}");

    // Duplicate value, type and category in one event.
    let (status, body) = server.request(
        "POST",
        &format!("/attributes/add/{id}"),
        Some(&key),
        Some(r#"{"type": "domain", "value": "example.com"}"#),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["errors"]["value"],
        json!(["A similar attribute already exists for this event."])
    );

    // Malformed or unknown ids and uuids in paths.
    for path in [
        "/events/view/abc",
        "/events/view/99999",
        "/events/view/5b646415-7b48-40d5-86b4-c0070acd0835",
        "/events/view/5b646415-zzzz",
    ] {
        let (status, body) = server.request("GET", path, Some(&key), None);
        assert_eq!((status, body), (404, error_body("Invalid event.", path)));
    }
    for (method, path) in [
        ("POST", "/events/delete/x1"),
        ("POST", "/events/publish/-3"),
        ("POST", "/attributes/add/nope"),
        ("GET", "/attributes/view/not-a-uuid"),
        ("POST", "/attributes/delete/77777"),
    ] {
        let (status, body) = server.request(method, path, Some(&key), Some("{}"));
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["url"], path);
    }
    let (status, _) = server.request("HEAD", "/events/view/abc", Some(&key), None);
    assert_eq!(status, 404);

    // Another organisation neither sees nor changes an organisation-only event.
    let path = format!("/events/view/{id}");
    let (status, body) = server.request("GET", &path, Some(&other_key), None);
    assert_eq!((status, body), (404, error_body("Invalid event.", &path)));
    let (status, _) = server.request(
        "POST",
        &format!("/events/publish/{id}"),
        Some(&other_key),
        None,
    );
    assert_eq!(status, 404);
    let (status, index) = server.request("GET", "/events/index", Some(&other_key), None);
    assert_eq!((status, index), (200, json!([])));
    server.stop();

    assert_eq!(
        entry_count(&dir),
        before,
        "no bad request appended an entry"
    );
}

#[test]
fn events_round_trip_through_the_api() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("node");
    // serve initialises an empty directory itself.
    let server = Server::start(&dir);
    let key = admin_key(&dir);
    let (status, me) = server.request("GET", "/users/view/me", Some(&key), None);
    assert_eq!(status, 200);
    assert_eq!(me["Role"]["perm_site_admin"], true);
    assert_eq!(me["UserSetting"], json!([]));
    assert_eq!(me["User"]["email"], "admin@admin.test");
    let (status, types) = server.request("GET", "/attributes/describeTypes.json", Some(&key), None);
    assert_eq!(status, 200);
    assert_eq!(types["result"]["types"].as_array().unwrap().len(), 194);

    let (status, added) = server.request("POST", "/events/add", Some(&key), Some(EVENT));
    assert_eq!(status, 200, "{added}");
    let event = &added["Event"];
    let (id, uuid) = (
        event["id"].as_str().unwrap(),
        event["uuid"].as_str().unwrap(),
    );
    assert_eq!(event["Attribute"].as_array().unwrap().len(), 2);
    assert_eq!(event["Orgc"]["name"], event["Org"]["name"]);
    for reference in [id, uuid] {
        let (status, viewed) = server.request(
            "GET",
            &format!("/events/view/{reference}"),
            Some(&key),
            None,
        );
        assert_eq!(status, 200);
        assert_eq!(viewed["Event"]["uuid"], uuid);
        assert_eq!(viewed["Event"]["info"], "api test");
        let values: Vec<&str> = viewed["Event"]["Attribute"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["value"].as_str().unwrap())
            .collect();
        assert_eq!(values.len(), 2);
        assert!(values.contains(&"example.com"), "{values:?}");
        let (status, _) = server.request(
            "HEAD",
            &format!("/events/view/{reference}"),
            Some(&key),
            None,
        );
        assert_eq!(status, 200);
    }

    let (status, attribute) = server.request(
        "POST",
        &format!("/attributes/add/{id}"),
        Some(&key),
        Some(r#"{"type": "md5", "value": "D41D8CD98F00B204E9800998ECF8427E"}"#),
    );
    assert_eq!(status, 200, "{attribute}");
    assert_eq!(
        attribute["Attribute"]["value"],
        "d41d8cd98f00b204e9800998ecf8427e"
    );
    let (status, published) =
        server.request("POST", &format!("/events/publish/{id}"), Some(&key), None);
    assert_eq!(status, 200, "{published}");
    let (_, viewed) = server.request("GET", &format!("/events/view/{id}"), Some(&key), None);
    assert_eq!(viewed["Event"]["published"], true);

    let (status, deleted) =
        server.request("POST", &format!("/events/delete/{id}"), Some(&key), None);
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["message"], "Event deleted.");
    let (status, _) = server.request("HEAD", &format!("/events/view/{uuid}"), Some(&key), None);
    assert_eq!(status, 404);
    let path = format!("/events/view/{id}");
    let (status, body) = server.request("GET", &path, Some(&key), None);
    assert_eq!((status, body), (404, error_body("Invalid event.", &path)));
    server.stop();
    // Init (2: organisation, admin is local), add, attribute add, publish, tombstone.
    assert!(entry_count(&dir) >= 5);
}
