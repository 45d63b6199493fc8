//! `threatlog audit export` and `audit verify` on real data directories with the real binary:
//! an intact bundle verifies; each kind of tampering makes verify fail, exit non-zero and name
//! what is wrong.

mod common;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use base64::Engine;

/// A node with a checkpoint every 3 entries and a dozen imported events.
fn node_with_log(temp: &Path, name: &str) -> PathBuf {
    let dir = temp.join(name);
    common::ok(&dir, &["init", "--org-name", name]);
    let config = dir.join("threatlog.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("checkpoint_entries = 1000", "checkpoint_entries = 3"),
    )
    .unwrap();
    for index in 0..12 {
        let path = temp.join(format!("{name}-{index}.json"));
        std::fs::write(
            &path,
            format!(
                r#"{{"Event": {{"info": "event {index}", "Attribute": [{{"type": "ip-dst", "value": "192.0.2.{index}"}}]}}}}"#
            ),
        )
        .unwrap();
        common::ok(&dir, &["event", "import", path.to_str().unwrap()]);
    }
    dir
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Writes `records` (header first) as a bundle with a correct trailer, so that verify has to
/// find the tampering itself rather than a trailer mismatch.
fn write_bundle(path: &Path, records: &[Value]) {
    let mut text = String::new();
    for record in records.iter().filter(|r| r["type"] != "end") {
        text.push_str(&serde_json::to_string(record).unwrap());
        text.push('\n');
    }
    let trailer = serde_json::json!({
        "type": "end",
        "records": records.iter().filter(|r| r["type"] != "end").count() - 1,
        "sha256": hex::encode(Sha256::digest(text.as_bytes())),
    });
    text.push_str(&serde_json::to_string(&trailer).unwrap());
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn position(records: &[Value], kind: &str, seq_or_size: u64) -> usize {
    let field = if kind == "checkpoint" { "size" } else { "seq" };
    records
        .iter()
        .position(|r| r["type"] == kind && r[field] == seq_or_size)
        .unwrap_or_else(|| panic!("no {kind} {seq_or_size}"))
}

fn edit_data(record: &mut Value, edit: impl FnOnce(&mut Vec<u8>)) {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(record["data"].as_str().unwrap()).unwrap();
    edit(&mut bytes);
    record["data"] = Value::String(engine.encode(bytes));
}

#[test]
fn tampered_bundles_fail_and_name_what() {
    let temp = tempfile::tempdir().unwrap();
    let dir = node_with_log(temp.path(), "A");
    let bundle = temp.path().join("a.bundle");
    let out = common::ok(
        &dir,
        &["audit", "export", "--out", bundle.to_str().unwrap()],
    );
    assert!(out.contains("exported"), "{out}");
    let summary = common::ok(&dir, &["audit", "verify", bundle.to_str().unwrap()]);
    let origin = lines(&bundle)[1]["origin"].as_str().unwrap().to_string();
    assert!(
        summary.contains(&format!("origin {origin}: 13 entries")),
        "{summary}"
    );
    assert!(summary.contains("4 checkpoints (latest 12)"), "{summary}");
    // The data directory verifies too: chains, checkpoints, tree and views.
    let summary = common::ok(&dir, &["audit", "verify"]);
    assert!(summary.contains("views equal a fresh replay"), "{summary}");

    let records = lines(&bundle);
    let check = |name: &str, records: Vec<Value>, expected: &[&str]| {
        let path = temp.path().join(format!("{name}.bundle"));
        write_bundle(&path, &records);
        let error = common::fails(&dir, &["audit", "verify", path.to_str().unwrap()]);
        for part in expected {
            assert!(error.contains(part), "{name}: expected {part:?} in {error}");
        }
    };

    // One payload byte: inside the signed entry bytes, so the signature no longer holds.
    let mut tampered = records.clone();
    let at = position(&tampered, "entry", 3);
    edit_data(&mut tampered[at], |bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
    });
    check(
        "payload",
        tampered,
        &["verification failed", &format!("entry {origin}:3")],
    );

    // One signature byte (the signature is the envelope's last field).
    let mut tampered = records.clone();
    let at = position(&tampered, "entry", 4);
    edit_data(&mut tampered[at], |bytes| {
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
    });
    check(
        "signature",
        tampered,
        &[&format!("entry {origin}:4"), "signature does not verify"],
    );

    // A sequence gap: entry 5 left out.
    let mut tampered = records.clone();
    tampered.remove(position(&tampered, "entry", 5));
    check(
        "gap",
        tampered,
        &[
            &format!("entry {origin}:6"),
            "out of sequence",
            "expected sequence 5",
        ],
    );

    // Two entries swapped.
    let mut tampered = records.clone();
    let (a, b) = (
        position(&tampered, "entry", 7),
        position(&tampered, "entry", 8),
    );
    tampered.swap(a, b);
    check(
        "swapped",
        tampered,
        &[
            &format!("entry {origin}:8"),
            "out of sequence",
            "expected sequence 7",
        ],
    );

    // A checkpoint from another node in place of the origin's.
    let other_dir = node_with_log(temp.path(), "B");
    let other_bundle = temp.path().join("b.bundle");
    common::ok(
        &other_dir,
        &["audit", "export", "--out", other_bundle.to_str().unwrap()],
    );
    let foreign = lines(&other_bundle)
        .into_iter()
        .find(|r| r["type"] == "checkpoint" && r["size"] == 6)
        .unwrap();
    let mut tampered = records.clone();
    let at = position(&tampered, "checkpoint", 6);
    tampered[at]["note"] = foreign["note"].clone();
    check(
        "foreign-checkpoint",
        tampered,
        &[
            &format!("checkpoint of size 6 of origin {origin}"),
            &format!("no signature by threatlog/{origin}"),
        ],
    );

    // A truncated file: cut in the middle of a line, and at a line boundary.
    let text = std::fs::read(&bundle).unwrap();
    for (name, cut) in [
        ("truncated-mid-line", text.len() / 2),
        (
            "truncated-at-line",
            text[..text.len() - 1]
                .iter()
                .rposition(|&b| b == b'\n')
                .unwrap()
                + 1,
        ),
    ] {
        let path = temp.path().join(format!("{name}.bundle"));
        std::fs::write(&path, &text[..cut]).unwrap();
        let error = common::fails(&dir, &["audit", "verify", path.to_str().unwrap()]);
        assert!(error.contains("truncated bundle"), "{name}: {error}");
    }

    // `--until` exports a prefix that verifies on its own, and `--origin` an unknown origin
    // is refused.
    let half = temp.path().join("half.bundle");
    common::ok(
        &dir,
        &[
            "audit",
            "export",
            "--out",
            half.to_str().unwrap(),
            "--until",
            "1970-01-02T00:00:00Z",
        ],
    );
    let summary = common::ok(&dir, &["audit", "verify", half.to_str().unwrap()]);
    assert!(summary.contains("verified 0 entries"), "{summary}");
    let error = common::fails(
        &dir,
        &[
            "audit",
            "export",
            "--out",
            half.to_str().unwrap(),
            "--origin",
            &"ab".repeat(32),
        ],
    );
    assert!(error.contains("no entries of origin"), "{error}");
}

#[test]
fn bench_audit_prints_every_figure_as_json() {
    let temp = tempfile::tempdir().unwrap();
    let out = common::ok(
        temp.path(),
        &["bench", "audit", "--entries", "1500", "--json"],
    );
    let figures: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(figures["entries"], 1500);
    assert_eq!(figures["checkpoints"], 1, "one checkpoint per 1000 entries");
    for name in [
        "verify_entries_per_s",
        "raw_batch_verify_per_s",
        "raw_batch_verify_one_thread_per_s",
        "verify_vs_raw_batch",
        "verify_peak_rss_kib",
    ] {
        assert!(
            figures[name].as_f64().is_some_and(|v| v > 0.0),
            "{name} in {figures}"
        );
    }
}
