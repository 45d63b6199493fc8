//! Imports from other formats on real nodes: a STIX 2.1 bundle and freetext through the CLI,
//! freetext through the REST API of a running `threatlog serve`.

mod common;

use common::server::Server;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

const APT1_EVENT: &str = "e33ffe07-2f4c-48d8-b0af-ee2619d765cf";

fn admin_key(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string()
}

fn event(dir: &Path, uuid: &str) -> Value {
    serde_json::from_str(&common::ok(dir, &["event", "show", uuid])).unwrap()
}

fn tags(item: &Value) -> BTreeSet<String> {
    item["Tag"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tag| tag["name"].as_str().unwrap().to_string())
        .collect()
}

fn attributes(event: &Value) -> Vec<Value> {
    event["Event"]["Attribute"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn stix_apt1_bundle_imports_as_one_event_with_indicators_and_actors() {
    let (_temp, dir) = common::node();
    let bundle = common::shared_data().join("stix/apt1.json");
    let out = common::ok(&dir, &["import", "stix", bundle.to_str().unwrap()]);
    assert!(out.contains(APT1_EVENT), "{out}");
    assert!(out.contains("12 attributes"), "{out}");

    let event = event(&dir, APT1_EVENT);
    let fields = &event["Event"];
    assert_eq!(
        fields["info"],
        "APT1: Exposing One of China's Cyber Espionage Units"
    );
    assert_eq!(fields["date"], "2013-02-19");

    let found: BTreeSet<(String, String, bool)> = attributes(&event)
        .iter()
        .map(|a| {
            (
                a["type"].as_str().unwrap().to_string(),
                a["value"].as_str().unwrap().to_string(),
                a["to_ids"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, bool)> = [
        ("ip-dst", "223.166.0.0/15"),
        ("ip-dst", "58.246.0.0/15"),
        ("ip-dst", "112.64.0.0/15"),
        ("ip-dst", "139.226.0.0/15"),
        ("domain", "hugesoft.org"),
        ("domain", "arrowservice.net"),
        ("domain", "msnhome.org"),
        ("md5", "001dd76872d80801692ff942308c64e6"),
        ("md5", "002325a0a67fded0381b5648d7fe9b8e"),
        ("md5", "00dbb9e1c09dbdafb360f3163ba5a3de"),
        (
            "stix2-pattern",
            "[x509-certificate:issuer = 'CN=WEBMAIL' AND x509-certificate:serial_number = '4c:0b:1d:19:74:86:a7:66:b4:1a:bf:40:27:21:76:28']",
        ),
        (
            "stix2-pattern",
            "[x509-certificate:issuer = 'CN=LM-68AB71FBD8F5' AND x509-certificate:serial_number = '0e:97:88:1c:6c:a1:37:96:42:03:bc:45:42:24:75:6c']",
        ),
    ]
    .iter()
    .map(|(ty, value)| (ty.to_string(), value.to_string(), true))
    .collect();
    assert_eq!(found, expected);

    // The indicator keeps its STIX uuid and name; what it indicates becomes its galaxy tag.
    let hugesoft = attributes(&event)
        .into_iter()
        .find(|a| a["value"] == "hugesoft.org")
        .unwrap();
    assert_eq!(hugesoft["uuid"], "3f3ff9f1-bb4e-4392-89e5-1991179042ba");
    assert_eq!(hugesoft["comment"], "FQDN hugesoft.org");
    assert_eq!(
        tags(&hugesoft),
        BTreeSet::from(["misp-galaxy:threat-actor=\"Ugly Gorilla\"".to_string()])
    );

    let event_tags = tags(fields);
    for actor in [
        "APT1",
        "Ugly Gorilla",
        "DOTA",
        "SuperHard",
        "Unit 61398",
        "Communist Party of China",
    ] {
        let tag = format!("misp-galaxy:threat-actor=\"{actor}\"");
        assert!(event_tags.contains(&tag), "{tag} missing: {event_tags:?}");
    }
    assert!(event_tags.contains("misp-galaxy:tool=\"mimikatz\""));
    assert!(event_tags.contains("misp-galaxy:malware=\"AURIGA\""));
    assert_eq!(
        event_tags
            .iter()
            .filter(|t| t.starts_with("misp-galaxy:"))
            .count(),
        6 + 6 + 10 + 7,
        "actors, malware, tools, attack patterns"
    );

    // Relationships that are not indicator → galaxy are kept in the event report.
    let report = &fields["EventReport"][0];
    let content = report["content"].as_str().unwrap();
    assert!(content.starts_with("Since 2004, Mandiant"), "{content:.80}");
    assert!(content.contains("- APT1 (intrusion-set) attributed-to Unit 61398 (threat-actor)"));

    // Importing the same bundle again changes nothing visible, and the log verifies.
    common::ok(&dir, &["import", "stix", bundle.to_str().unwrap()]);
    assert_eq!(attributes(&self::event(&dir, APT1_EVENT)).len(), 12);
    common::ok(&dir, &["log", "verify"]);
}

#[test]
fn stix_import_refuses_what_is_not_a_bundle() {
    let (temp, dir) = common::node();
    let path = temp.path().join("report.json");
    std::fs::write(&path, r#"{"type": "report", "id": "report--x"}"#).unwrap();
    let error = common::fails(&dir, &["import", "stix", path.to_str().unwrap()]);
    assert!(error.contains("not a STIX 2.1 bundle"), "{error}");
}

const TEXT: &str = "Phishing wave, C2 at hxxps://login[.]bad-site[.]net/auth and 203.0.113.7:8443.\n\
Dropper d41d8cd98f00b204e9800998ecf8427e (see report.pdf, version 1.2.3), exploits CVE-2021-44228.\n\
Reply-to: billing[@]bad-site[.]net\n";

fn new_event(server: &Server, key: &str) -> String {
    let (status, body) = server.request(
        "POST",
        "/events/add",
        Some(key),
        Some(r#"{"Event": {"info": "freetext target", "distribution": "1"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    body["Event"]["uuid"].as_str().unwrap().to_string()
}

fn type_values(items: &[Value]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = items
        .iter()
        .map(|a| {
            (
                a["type"].as_str().unwrap_or_default().to_string(),
                a["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn expected_finds() -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = [
        ("url", "https://login.bad-site.net/auth"),
        ("ip-dst|port", "203.0.113.7|8443"),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
        ("filename", "report.pdf"),
        ("vulnerability", "CVE-2021-44228"),
        ("email-src", "billing@bad-site.net"),
    ]
    .iter()
    .map(|(t, v)| (t.to_string(), v.to_string()))
    .collect();
    pairs.sort();
    pairs
}

#[test]
fn freetext_rest_import_adds_the_finds_as_attributes_once() {
    let (_temp, dir) = common::node();
    let key = admin_key(&dir);
    let server = Server::start(&dir);
    let uuid = new_event(&server, &key);
    let path = format!("/events/freeTextImport/{uuid}");

    // returnMetaAttributes: the finds with their places, nothing saved.
    let body = json!({"value": TEXT, "returnMetaAttributes": true}).to_string();
    let (status, meta) = server.request("POST", &path, Some(&key), Some(&body));
    assert_eq!(status, 200, "{meta}");
    let meta = meta.as_array().unwrap().clone();
    let as_attributes: Vec<Value> = meta
        .iter()
        .map(|m| json!({"type": m["default_type"], "value": m["value"]}))
        .collect();
    assert_eq!(type_values(&as_attributes), expected_finds());
    let cve = meta
        .iter()
        .find(|m| m["value"] == "CVE-2021-44228")
        .unwrap();
    assert_eq!(
        (cve["line"].as_u64(), cve["column"].as_u64()),
        (Some(2), Some(84))
    );
    let (_, view) = server.request("GET", &format!("/events/view/{uuid}"), Some(&key), None);
    assert!(attributes(&view).is_empty(), "meta only saves nothing");

    // The import: every find becomes an attribute with the type's default category.
    let body = json!({"value": TEXT, "adhereToWarninglists": false, "distribution": 0}).to_string();
    let (status, added) = server.request("POST", &path, Some(&key), Some(&body));
    assert_eq!(status, 200, "{added}");
    let added = added.as_array().unwrap().clone();
    assert_eq!(type_values(&added), expected_finds());
    let cve = added
        .iter()
        .find(|a| a["value"] == "CVE-2021-44228")
        .unwrap();
    assert_eq!(cve["category"], "External analysis");
    assert_eq!(cve["to_ids"], false);
    assert_eq!(cve["distribution"], "0");
    let url = added.iter().find(|a| a["type"] == "url").unwrap();
    assert_eq!(url["category"], "Network activity");
    assert_eq!(url["to_ids"], true);

    let (_, view) = server.request("GET", &format!("/events/view/{uuid}"), Some(&key), None);
    assert_eq!(type_values(&attributes(&view)), expected_finds());
    assert_eq!(view["Event"]["published"], false);

    // The same text again adds nothing: every find is already in the event.
    let (status, again) = server.request("POST", &path, Some(&key), Some(&body));
    assert_eq!((status, again), (200, json!([])));

    // An unknown event is MISP's 404; a body without text is refused.
    let missing = "/events/freeTextImport/11111111-2222-4333-8444-555555555555";
    let (status, _) = server.request("POST", missing, Some(&key), Some(&body));
    assert_eq!(status, 404);
    let (status, error) = server.request("POST", &path, Some(&key), Some("{}"));
    assert_eq!(status, 403, "{error}");
    assert!(error["errors"]["value"].is_array(), "{error}");
    server.stop();

    // The attributes are signed log entries like any other write.
    common::ok(&dir, &["log", "verify"]);
}

#[test]
fn freetext_cli_import_lists_finds_and_adds_them() {
    let (temp, dir) = common::node();
    let uuid = "5b646415-7b48-40d5-86b4-c0070acd0835".to_string();
    let source = temp.path().join("event.json");
    let event_json = json!({"Event": {"uuid": uuid, "info": "target", "Attribute": [
        {"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e"}]}});
    std::fs::write(&source, event_json.to_string()).unwrap();
    common::ok(&dir, &["event", "import", source.to_str().unwrap()]);
    let before = attributes(&event(&dir, &uuid)).len();
    let file = temp.path().join("report.txt");
    std::fs::write(&file, TEXT).unwrap();
    let file = file.to_str().unwrap();

    let dry = common::ok(
        &dir,
        &["import", "freetext", "--event", &uuid, "--dry-run", file],
    );
    assert!(
        dry.contains("    2:84   vulnerability  CVE-2021-44228"),
        "{dry}"
    );
    assert!(
        dry.contains("(On port") || !dry.contains("On port"),
        "{dry}"
    );
    assert_eq!(attributes(&event(&dir, &uuid)).len(), before);

    let out = common::ok(&dir, &["import", "freetext", "--event", &uuid, file]);
    // The md5 is already in the event (same type, category and value).
    assert!(
        out.contains("found 6 indicators: added 5 attributes to event 5b646415-7b48-40d5-86b4-c0070acd0835, 1 already there"),
        "{out}"
    );
    let after = event(&dir, &uuid);
    assert_eq!(attributes(&after).len(), before + 5);
    let out = common::ok(&dir, &["import", "freetext", "--event", &uuid, file]);
    assert!(out.contains("added 0 attributes"), "{out}");
    assert!(out.contains("6 already there"), "{out}");

    let error = common::fails(
        &dir,
        &[
            "import",
            "freetext",
            "--event",
            "11111111-2222-4333-8444-555555555555",
            file,
        ],
    );
    assert!(
        error.contains("no event 11111111-2222-4333-8444-555555555555"),
        "{error}"
    );
    common::ok(&dir, &["log", "verify"]);
}

#[test]
fn freetext_import_needs_the_right_to_edit_the_event() {
    let (_temp, dir) = common::node();
    common::ok(&dir, &["org", "add", "--name", "Other CERT"]);
    let user = |org: &str, role: &str, email: &str| {
        let out = common::ok(
            &dir,
            &[
                "user", "add", "--org", org, "--role", role, "--email", email,
            ],
        );
        out.rsplit(' ').next().unwrap().trim().to_string()
    };
    let other = user("Other CERT", "user", "other@other.test");
    let reader = user("Test Org", "read-only", "reader@test.test");
    let key = admin_key(&dir);
    let server = Server::start(&dir);
    let uuid = new_event(&server, &key);
    let path = format!("/events/freeTextImport/{uuid}");
    let body = json!({"value": TEXT}).to_string();

    // Another organisation sees the event (distribution 1) but may not change it.
    let (status, _) = server.request("POST", &path, Some(&other), Some(&body));
    assert_eq!(status, 403);
    let meta = json!({"value": TEXT, "returnMetaAttributes": true}).to_string();
    let (status, finds) = server.request("POST", &path, Some(&other), Some(&meta));
    assert_eq!(status, 200);
    assert_eq!(finds.as_array().unwrap().len(), 6);
    // A read-only user of the owner organisation may not write.
    let (status, _) = server.request("POST", &path, Some(&reader), Some(&body));
    assert_eq!(status, 403);
    let (_, view) = server.request("GET", &format!("/events/view/{uuid}"), Some(&key), None);
    assert!(attributes(&view).is_empty());
    server.stop();
}
