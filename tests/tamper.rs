//! Tampering with the stored log is caught by `log verify`, which names the bad entry.

mod common;

use common::open_db;

use std::path::Path;

/// (key, value) of every stored entry, in log order.
fn entries(db: &rocksdb::DB) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iterator_cf(db.cf_handle("log").unwrap(), rocksdb::IteratorMode::Start)
        .map(|item| {
            let (key, value) = item.unwrap();
            (key.to_vec(), value.to_vec())
        })
        .collect()
}

/// `origin:sequence` as `log verify` names an entry.
fn name(key: &[u8]) -> String {
    format!(
        "{}:{}",
        hex::encode(&key[..32]),
        u64::from_be_bytes(key[32..].try_into().unwrap())
    )
}

fn node_with_events() -> (tempfile::TempDir, std::path::PathBuf) {
    let (temp, dir) = common::node();
    let events = common::shared_data().join("events");
    for file in ["misp_event.json", "sighting_1.json", "japanese_test.json"] {
        common::ok(
            &dir,
            &["event", "import", events.join(file).to_str().unwrap()],
        );
    }
    (temp, dir)
}

/// Writes `value` under `key` in the log column family, as an attacker with disk access would.
fn overwrite(dir: &Path, key: &[u8], value: &[u8]) {
    let db = open_db(dir);
    db.put_cf(db.cf_handle("log").unwrap(), key, value).unwrap();
}

#[test]
fn changing_any_byte_of_an_entry_is_named() {
    let (_temp, dir) = node_with_events();
    let summary = common::ok(&dir, &["log", "verify"]);
    assert!(
        // The node's certificate, its organisation and three events.
        summary.starts_with("verified 5 entries from 1 origins, views digest "),
        "{summary}"
    );
    let stored = entries(&open_db(&dir));
    let (key, original) = &stored[2];
    // Flip bytes across the entry: the envelope, the signed body and the signature.
    for index in [
        0,
        1,
        5,
        original.len() / 2,
        original.len() - 70,
        original.len() - 1,
    ] {
        let mut tampered = original.clone();
        tampered[index] ^= 0x20;
        overwrite(&dir, key, &tampered);
        let error = common::fails(&dir, &["log", "verify"]);
        assert!(
            error.contains(&format!("entry {}", name(key))),
            "byte {index}: {error}"
        );
    }
    overwrite(&dir, key, original);
    common::ok(&dir, &["log", "verify"]);
}

#[test]
fn removing_an_entry_names_the_gap() {
    let (_temp, dir) = node_with_events();
    let stored = {
        let db = open_db(&dir);
        let stored = entries(&db);
        db.delete_cf(db.cf_handle("log").unwrap(), &stored[1].0)
            .unwrap();
        stored
    };
    let error = common::fails(&dir, &["log", "verify"]);
    assert!(
        error.contains(&format!("entry {}", name(&stored[1].0))),
        "{error}"
    );
    assert!(error.contains("missing"), "{error}");
}

#[test]
fn removing_the_last_entry_names_it() {
    let (_temp, dir) = node_with_events();
    let last = {
        let db = open_db(&dir);
        let stored = entries(&db);
        let last = stored.last().unwrap().0.clone();
        db.delete_cf(db.cf_handle("log").unwrap(), &last).unwrap();
        last
    };
    let error = common::fails(&dir, &["log", "verify"]);
    assert!(error.contains(&format!("entry {}", name(&last))), "{error}");
}

#[test]
fn views_that_differ_from_the_log_are_reported_and_rebuilt() {
    let (_temp, dir) = node_with_events();
    {
        let db = open_db(&dir);
        let records = db.cf_handle("view_records").unwrap();
        let (key, _) = db
            .iterator_cf(records, rocksdb::IteratorMode::Start)
            .next()
            .unwrap()
            .unwrap();
        db.put_cf(records, &key, b"{}").unwrap();
    }
    let error = common::fails(&dir, &["log", "verify"]);
    assert!(error.contains("differ from a fresh replay"), "{error}");
    let rebuilt = common::ok(&dir, &["views", "rebuild"]);
    let verified = common::ok(&dir, &["log", "verify"]);
    let digest = rebuilt.trim().rsplit(' ').next().unwrap();
    assert!(verified.trim().ends_with(digest), "{rebuilt} / {verified}");
    assert_eq!(common::ok(&dir, &["views", "digest"]).trim(), digest);
}
