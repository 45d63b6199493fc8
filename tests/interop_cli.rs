//! `threatlog export FORMAT` on a real data directory: the line formats, filters, the IDS
//! defaults (to_ids and published), STIX to standard output, and precise errors.

mod common;

use common::{fails, ok};
use serde_json::{json, Value};

const PUBLISHED: &str = "6a0c0000-0000-4000-8000-000000000001";
const DRAFT: &str = "6a0c0000-0000-4000-8000-000000000002";

fn events() -> Value {
    let attribute = |n: u32, ty: &str, value: &str, to_ids: bool| {
        json!({"uuid": format!("6a0c0000-0000-4000-8000-1000000000{n:02}"), "type": ty,
               "category": if ty == "domain" { "Network activity" } else { "Payload delivery" },
               "value": value, "to_ids": to_ids, "timestamp": "1700000000",
               "comment": if n == 1 { "first, \"quoted\"" } else { "" }})
    };
    json!({"response": [
        {"Event": {"uuid": PUBLISHED, "info": "published", "date": "2023-11-14",
                   "published": true, "timestamp": "1700000000", "distribution": "1",
                   "Tag": [{"name": "tlp:green"}],
                   "Attribute": [
                       attribute(1, "md5", "0749bae92ca336a02c83d126e04ec628", true),
                       attribute(2, "filename|sha256", "a.exe|b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68", true),
                       attribute(3, "domain", "evil-example.test", true),
                       attribute(4, "sha1", "77b0c41b7d340b8a3d903f21347bbf06aa766b5b", false)]}},
        {"Event": {"uuid": DRAFT, "info": "draft", "date": "2023-11-15", "published": false,
                   "timestamp": "1700000000", "distribution": "1",
                   "Attribute": [attribute(5, "md5", "d41d8cd98f00b204e9800998ecf8427e", true)]}}
    ]})
}

fn node_with_events() -> (tempfile::TempDir, std::path::PathBuf) {
    let (temp, dir) = common::node();
    let path = temp.path().join("events.json");
    std::fs::write(&path, events().to_string()).unwrap();
    ok(&dir, &["event", "import", path.to_str().unwrap()]);
    (temp, dir)
}

fn export(dir: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["export"];
    all.extend(args);
    all.extend(["--out", "-"]);
    ok(dir, &all)
}

#[test]
fn line_formats_and_filters() {
    let (_temp, dir) = node_with_events();
    // hashes is an IDS format: to_ids attributes of published events, hash halves too.
    assert_eq!(
        export(&dir, &["hashes"]),
        "0749bae92ca336a02c83d126e04ec628\n\
         b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68\n"
    );
    let all = export(&dir, &["hashes", "--all-attributes"]);
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(all.contains("77b0c41b7d340b8a3d903f21347bbf06aa766b5b"));
    assert!(all.contains("d41d8cd98f00b204e9800998ecf8427e"));
    // text lists every attribute value, filtered by type and event.
    assert_eq!(
        export(&dir, &["text", "--type", "domain", "md5"]),
        "0749bae92ca336a02c83d126e04ec628\nevil-example.test\nd41d8cd98f00b204e9800998ecf8427e\n"
    );
    assert_eq!(
        export(&dir, &["text", "--event", DRAFT]),
        "d41d8cd98f00b204e9800998ecf8427e\n"
    );
    assert_eq!(
        export(&dir, &["text", "--tags", "tlp:green"])
            .lines()
            .count(),
        4
    );
    assert_eq!(export(&dir, &["text", "--published"]).lines().count(), 4);
    // csv: MISP's columns, quoting.
    let csv = export(&dir, &["csv", "--type", "md5", "--event", PUBLISHED]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "uuid,event_id,category,type,value,comment,to_ids,date,object_relation,attribute_tag,\
         object_uuid,object_name,object_meta_category"
    );
    assert_eq!(
        lines[1],
        "6a0c0000-0000-4000-8000-100000000001,1,Payload delivery,md5,\
         0749bae92ca336a02c83d126e04ec628,\"first, \"\"quoted\"\"\",1,20231114,,,,,"
    );
    assert_eq!(lines.len(), 2);
    // json: MISP's search response.
    let document: Value = serde_json::from_str(&export(&dir, &["json"])).unwrap();
    assert_eq!(document["response"].as_array().unwrap().len(), 2);
    assert_eq!(document["response"][0]["Event"]["uuid"], PUBLISHED);
}

#[test]
fn stix_and_rules_to_files_and_errors() {
    let (temp, dir) = node_with_events();
    let bundle: Value =
        serde_json::from_str(&export(&dir, &["stix2", "--event", PUBLISHED])).unwrap();
    let objects = bundle["objects"].as_array().unwrap();
    let pattern = |uuid: &str| {
        objects
            .iter()
            .find(|object| object["id"] == format!("indicator--{uuid}"))
            .map(|object| object["pattern"].as_str().unwrap().to_string())
    };
    assert_eq!(
        pattern("6a0c0000-0000-4000-8000-100000000003").as_deref(),
        Some("[domain-name:value = 'evil-example.test']")
    );
    assert!(objects
        .iter()
        .any(|object| object["id"] == "observed-data--6a0c0000-0000-4000-8000-100000000004"));
    let report = objects.iter().find(|o| o["type"] == "report").unwrap();
    assert_eq!(
        report["object_marking_refs"],
        json!(["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"])
    );

    let out = temp.path().join("rules.txt");
    ok(
        &dir,
        &[
            "export",
            "suricata",
            "--sid-base",
            "100",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let rules = std::fs::read_to_string(&out).unwrap();
    // The domain attribute has local id 3: sids 100 + 10 × 3 + 1 and + 2.
    assert!(
        rules.contains("sid:131;") && rules.contains("sid:132;"),
        "{rules}"
    );
    assert!(rules.contains("msg:\"MISP e1 [tlp:green] Domain: evil-example.test\""));

    let error = fails(&dir, &["export", "xml", "--out", "-"]);
    assert!(
        error.contains(
            "unknown export format 'xml': use one of json, csv, text, hashes, suricata, snort, stix2, feed"
        ),
        "{error}"
    );
}

#[test]
fn feed_settings_are_checked() {
    let (temp, dir) = node_with_events();
    let feed = temp.path().join("feed");
    ok(&dir, &["export", "feed", "--out", feed.to_str().unwrap()]);
    let names: Vec<String> = std::fs::read_dir(&feed)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for name in [
        "manifest.json",
        "hashes.csv",
        &format!("{PUBLISHED}.json"),
        &format!("{DRAFT}.json"),
    ] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    let feed = feed.to_str().unwrap();
    let error = fails(&dir, &["feed", "add", "a/b", feed]);
    assert!(
        error.contains("feed name 'a/b' must be 1-64 letters"),
        "{error}"
    );
    let error = fails(
        &dir,
        &["feed", "add", "secure", "https://feeds.example/misp"],
    );
    assert!(
        error.contains("neither an http:// URL nor an existing directory"),
        "{error}"
    );
    let error = fails(&dir, &["feed", "add", "wide", feed, "--distribution", "4"]);
    assert!(error.contains("--distribution must be 0-3"), "{error}");
    let error = fails(&dir, &["feed", "fetch", "missing"]);
    assert!(error.contains("no feed named 'missing'"), "{error}");
    let error = fails(&dir, &["export", "feed", "--out", "-"]);
    assert!(error.contains("a feed is a directory"), "{error}");
    ok(&dir, &["feed", "add", "mine", feed, "--tags", "a", "b"]);
    let listed = ok(&dir, &["feed", "list"]);
    let line = listed.lines().nth(1).expect("one feed");
    assert!(
        line.starts_with("mine") && line.ends_with("a,b"),
        "{listed}"
    );
    // The node's own events come back unchanged.
    let out = ok(&dir, &["feed", "fetch", "mine"]);
    assert_eq!(
        out.trim(),
        "feed mine: 0 added, 0 updated, 2 unchanged, 0 failed"
    );
}
