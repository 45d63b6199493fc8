//! The CLI's behaviour on bad input, initialisation and a busy data directory.

mod common;
// The benchmarks (benches/), run here on small workloads to check their figures.
#[path = "../benches/support/mod.rs"]
mod bench;

use clap::Parser;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn entry_count(dir: &Path) -> String {
    let summary = common::ok(dir, &["log", "verify"]);
    summary.split(" entries").next().unwrap().to_string()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn bad_files_give_clear_errors_and_import_nothing() {
    let (temp, dir) = common::node();
    let before = entry_count(&dir);
    let good_attribute = r#"{"type": "ip-dst", "value": "198.51.100.7"}"#;
    let cases = [
        (
            "malformed.json",
            r#"{"Event": {"info": "x", "Attribute": [}"#.to_string(),
            "malformed JSON",
        ),
        (
            "unknown-type.json",
            format!(
                r#"{{"Event": {{"info": "x", "Attribute": [{good_attribute}, {{"type": "ip-dest", "value": "1.2.3.4"}}]}}}}"#
            ),
            "unknown attribute type 'ip-dest'",
        ),
        (
            "mismatch.json",
            format!(
                r#"{{"Event": {{"info": "x", "Attribute": [{good_attribute}, {{"type": "md5", "category": "Network activity", "value": "d41d8cd98f00b204e9800998ecf8427e"}}]}}}}"#
            ),
            "category 'Network activity' is not allowed for type 'md5'",
        ),
        (
            "bad-ip.json",
            format!(
                r#"{{"Event": {{"info": "x", "Attribute": [{good_attribute}, {{"type": "ip-dst", "value": "999.1.1.1"}}]}}}}"#
            ),
            "invalid value '999.1.1.1' for type 'ip-dst'",
        ),
    ];
    for (name, contents, expected) in cases {
        let path = write(temp.path(), name, &contents);
        let error = common::fails(&dir, &["event", "import", &path]);
        assert!(error.contains(name), "{name}: {error}");
        assert!(
            error.contains(expected),
            "{name}: expected {expected:?} in {error}"
        );
        assert!(
            error.contains("nothing of it was imported"),
            "{name}: {error}"
        );
    }
    // Over the size limit (lowered in the config so the test file stays small).
    let config = dir.join("threatlog.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "import_file_bytes_max = 52428800",
            "import_file_bytes_max = 1000",
        ),
    )
    .unwrap();
    let big = format!(r#"{{"Event": {{"info": "{}"}}}}"#, "x".repeat(2000));
    let path = write(temp.path(), "big.json", &big);
    let error = common::fails(&dir, &["event", "import", &path]);
    assert!(
        error.contains("over the import limit of 1000 bytes"),
        "{error}"
    );

    assert_eq!(entry_count(&dir), before, "no entry was appended");
    let listed = common::ok(&dir, &["event", "list"]);
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");
}

#[test]
fn a_bad_file_does_not_stop_the_others() {
    let (temp, dir) = common::node();
    let bad = write(temp.path(), "bad.json", "not json");
    let good = write(
        temp.path(),
        "good.json",
        r#"{"info": "good event", "Attribute": [{"type": "domain", "value": "Example.COM"}]}"#,
    );
    let output = common::threatlog(&dir, &["event", "import", &bad, &good]);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("imported 1 events (1 attributes, 0 objects)"),
        "{stdout}"
    );
    assert!(stdout.contains("1 files failed"), "{stdout}");
    let listed = common::ok(&dir, &["event", "list"]);
    assert!(listed.contains("good event"), "{listed}");
    let uuid = listed.lines().nth(1).unwrap()[..36].to_string();
    let shown: serde_json::Value =
        serde_json::from_str(&common::ok(&dir, &["event", "show", &uuid])).unwrap();
    assert_eq!(shown["Event"]["Attribute"][0]["value"], "example.com");
    assert_eq!(
        shown["Event"]["Attribute"][0]["category"],
        "Network activity"
    );
}

#[test]
fn init_creates_private_keys_and_refuses_to_overwrite() {
    let (_temp, dir) = common::node();
    for file in ["node.key", "admin.key"] {
        let mode = std::fs::metadata(dir.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let key = std::fs::read_to_string(dir.join("admin.key")).unwrap();
    assert_eq!(key.trim().len(), 40);
    assert!(key.trim().chars().all(|c| c.is_ascii_alphanumeric()));
    let config = std::fs::read_to_string(dir.join("threatlog.toml")).unwrap();
    assert!(config.contains("org_name = \"Test Org\""), "{config}");

    let error = common::fails(&dir, &["init", "--org-name", "Other"]);
    assert!(
        error.contains("already initialised") && error.contains("--force"),
        "{error}"
    );
    let output = common::ok(&dir, &["init", "--org-name", "Other", "--force"]);
    assert!(output.contains("organisation: Other"), "{output}");
    let new_key = std::fs::read_to_string(dir.join("admin.key")).unwrap();
    assert_ne!(new_key, key);
}

#[test]
fn a_world_readable_key_is_refused() {
    let (_temp, dir) = common::node();
    std::fs::set_permissions(dir.join("node.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = common::fails(&dir, &["event", "list"]);
    assert!(
        error.contains("readable by other users") && error.contains("chmod 600"),
        "{error}"
    );
}

#[test]
fn a_busy_directory_names_its_holder() {
    let (_temp, dir) = common::node();
    let node = threatlog::node::Node::open(&dir).unwrap();
    let error = common::fails(&dir, &["event", "list"]);
    assert!(error.contains("in use by another process"), "{error}");
    assert!(
        error.contains(&format!("pid {}", std::process::id())),
        "{error}"
    );
    drop(node);
    common::ok(&dir, &["event", "list"]);
}

#[test]
fn a_newer_storage_format_is_refused() {
    let (_temp, dir) = common::node();
    {
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.join("db")).unwrap();
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.join("db"), names).unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), b"format_version", b"99")
            .unwrap();
    }
    let error = common::fails(&dir, &["event", "list"]);
    assert!(
        error.contains("storage format 99") && error.contains("upgrade threatlog"),
        "{error}"
    );
}

#[test]
fn an_uninitialised_directory_says_how_to_start() {
    let temp = tempfile::tempdir().unwrap();
    let error = common::fails(&temp.path().join("none"), &["event", "list"]);
    assert!(error.contains("threatlog init --org-name"), "{error}");
}

#[test]
fn bench_ingest_reports_every_figure_as_json() {
    let options = bench::ingest::IngestOptions::parse_from([
        "ingest",
        "--events",
        "3",
        "--attributes-per-event",
        "4",
        "--events-per-write",
        "2",
        "--single-entries",
        "10",
        "--entries-per-write",
        "4",
        "--json",
    ]);
    let figures = bench::ingest::figures(&options).unwrap();
    assert_eq!(figures["events"], 3);
    assert_eq!(figures["attributes_per_event"], 4);
    assert_eq!(figures["single_entries"], 10);
    for name in [
        "attributes_per_s",
        "event_entries_per_s",
        "event_raw_sign_per_s",
        "event_raw_write_per_s",
        "single_entries_per_s",
        "single_raw_sign_per_s",
        "single_raw_write_per_s",
        "event_entries_vs_raw_sign",
        "event_entries_vs_raw_write",
        "single_entries_vs_raw_sign",
        "single_entries_vs_raw_write",
    ] {
        assert!(
            figures[name].as_f64().is_some_and(|v| v > 0.0),
            "{name}: {figures}"
        );
    }
}

#[test]
fn bench_api_reports_every_figure_as_json() {
    let options = bench::api::ApiOptions::parse_from([
        "api",
        "--events",
        "4",
        "--attributes-per-event",
        "5",
        "--clients",
        "2",
        "--search-attributes",
        "50",
        "--searches",
        "10",
        "--honest-rounds",
        "5",
        "--attack-percent",
        "2",
        "--attack-ramp-s",
        "1",
        "--json",
    ]);
    let figures = bench::api::figures(&options).unwrap();
    // 5 rounds of an add and a search before the attack, and 5 after it.
    assert_eq!(figures["honest_calls"], 20);
    assert_eq!(figures["attack_percent"], 2);
    assert_eq!(figures["http_events"], 4);
    assert_eq!(figures["search_attributes_held"], 50);
    assert_eq!(figures["searches"], 10);
    for name in [
        "http_attributes_per_s",
        "http_attributes_vs_target",
        "search_p50_ms",
        "search_p99_ms",
        "search_p99_vs_target",
        "honest_calls_per_s",
        "honest_p99_ms",
        "attacked_calls_per_s",
        "attacked_p99_ms",
        "attacked_throughput_ratio",
        "attacked_p99_ratio",
    ] {
        assert!(
            figures[name].as_f64().is_some_and(|v| v > 0.0),
            "{name}: {figures}"
        );
    }
}
