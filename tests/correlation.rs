//! Correlation from the value index, with MISP's rules: exact match of either half of a
//! composite (first half only for `|port` types), across different events only, never for
//! non-correlating types or attributes with correlation disabled. Values match in any case,
//! as MISP's do.

mod common;

use serde_json::{json, Value};
use std::collections::BTreeSet;

fn import(dir: &std::path::Path, temp: &std::path::Path, name: &str, event: Value) {
    let path = temp.join(name);
    std::fs::write(&path, event.to_string()).unwrap();
    common::ok(dir, &["event", "import", path.to_str().unwrap()]);
}

fn related(dir: &std::path::Path, uuid: &str) -> BTreeSet<String> {
    let shown: Value = serde_json::from_str(&common::ok(dir, &["event", "show", uuid])).unwrap();
    shown["Event"]["RelatedEvent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Event"]["uuid"].as_str().unwrap().to_string())
        .collect()
}

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const C: &str = "cccccccc-0000-4000-8000-000000000003";
const D: &str = "dddddddd-0000-4000-8000-000000000004";
const E: &str = "eeeeeeee-0000-4000-8000-000000000005";

#[test]
fn events_correlate_by_misp_rules() {
    let (temp, dir) = common::node();
    let event = |uuid: &str, attributes: Value| json!({"Event": {"uuid": uuid, "info": uuid, "Attribute": attributes}});
    import(
        &dir,
        temp.path(),
        "a.json",
        event(
            A,
            json!([
                {"type": "ip-dst", "value": "203.0.113.9"},
                {"type": "comment", "value": "shared words"},
                {"type": "domain", "value": "self.example"},
                {"type": "domain", "value": "self.example", "category": "Payload delivery"},
            ]),
        ),
    );
    // B shares the IP through the first half of ip-dst|port.
    import(
        &dir,
        temp.path(),
        "b.json",
        event(
            B,
            json!([{"type": "ip-dst|port", "value": "203.0.113.9|443"}]),
        ),
    );
    // C shares only a comment (non-correlating) and a port half (never correlates).
    import(
        &dir,
        temp.path(),
        "c.json",
        event(
            C,
            json!([
                {"type": "comment", "value": "shared words"},
                {"type": "ip-src|port", "value": "198.51.100.1|443"},
            ]),
        ),
    );
    // D shares the IP but has correlation disabled.
    import(
        &dir,
        temp.path(),
        "d.json",
        event(
            D,
            json!([{"type": "ip-src", "value": "203.0.113.9", "disable_correlation": true}]),
        ),
    );
    // E shares the second half of domain|ip.
    import(
        &dir,
        temp.path(),
        "e.json",
        event(
            E,
            json!([{"type": "domain|ip", "value": "other.example|203.0.113.9"}]),
        ),
    );

    assert_eq!(
        related(&dir, A),
        BTreeSet::from([B.to_string(), E.to_string()])
    );
    assert_eq!(
        related(&dir, B),
        BTreeSet::from([A.to_string(), E.to_string()])
    );
    assert_eq!(related(&dir, C), BTreeSet::new());
    assert_eq!(related(&dir, D), BTreeSet::new());
    assert_eq!(
        related(&dir, E),
        BTreeSet::from([A.to_string(), B.to_string()])
    );
}

#[test]
fn over_correlating_values_are_reported_not_listed() {
    let (temp, dir) = common::node();
    let config = dir.join("threatlog.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("correlation_max = 100", "correlation_max = 2"),
    )
    .unwrap();
    for uuid in [A, B, C] {
        import(
            &dir,
            temp.path(),
            &format!("{uuid}.json"),
            json!({"Event": {"uuid": uuid, "info": "x",
            "Attribute": [{"type": "ip-dst", "value": "192.0.2.1"}]}}),
        );
    }
    let shown: Value = serde_json::from_str(&common::ok(&dir, &["event", "show", A])).unwrap();
    assert_eq!(shown["Event"]["RelatedEvent"], json!([]));
    assert_eq!(
        shown["Event"]["OverCorrelatingValues"],
        json!(["192.0.2.1"])
    );
}

#[test]
fn values_correlate_in_any_case_also_after_an_upgrade() {
    let (temp, dir) = common::node();
    let file = |uuid: &str, value: &str| {
        json!({"Event": {"uuid": uuid, "info": uuid,
            "Attribute": [{"type": "filename", "value": value}]}})
    };
    import(&dir, temp.path(), "a.json", file(A, "Dropper.EXE"));
    import(&dir, temp.path(), "b.json", file(B, "dropper.exe"));
    assert_eq!(related(&dir, A), BTreeSet::from([B.to_string()]));

    // Views of the earlier layout: values indexed as written, and no layout marker.
    {
        let db = common::open_db(&dir);
        let index = db.cf_handle("view_index").unwrap();
        let folded: Vec<Vec<u8>> = db
            .prefix_iterator_cf(index, b"vdropper.exe\0")
            .map(|item| item.unwrap().0.to_vec())
            .take_while(|key| key.starts_with(b"vdropper.exe\0"))
            .collect();
        assert_eq!(folded.len(), 2);
        for (key, written) in folded.iter().zip(["Dropper.EXE", "dropper.exe"]) {
            let value = db.get_cf(index, key).unwrap().unwrap();
            db.delete_cf(index, key).unwrap();
            let mut old = format!("v{written}\0").into_bytes();
            old.extend_from_slice(&key[key.len() - 16..]);
            db.put_cf(index, old, value).unwrap();
        }
        db.delete_cf(db.cf_handle("meta").unwrap(), b"views_format")
            .unwrap();
    }
    // The next command that opens the store rebuilds the views in this build's layout.
    let out = common::threatlog(&dir, &["event", "show", A]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "built with layout 1, this build uses {}; rebuilding the views",
        threatlog::view::VIEWS_FORMAT
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(related(&dir, A), BTreeSet::from([B.to_string()]));
    let verified = common::ok(&dir, &["log", "verify"]);
    let digest = common::ok(&dir, &["views", "digest"]);
    assert!(
        verified.trim_end().ends_with(digest.trim()),
        "{verified} / {digest}"
    );
}
