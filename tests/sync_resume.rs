//! Resuming a pull after a crash: B is killed with SIGKILL in the middle of pulling A's
//! 10,000+ published entries, restarted, and ends with exactly A's releasable set, no
//! duplicates, and a log that verifies.

mod common;

use common::nodes::{pair, wait_for, Peer};
use common::ok;
use common::server::Server;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// Published events imported on A, one attribute each.
const EVENTS: usize = 10_000;
/// Events per import file.
const EVENTS_PER_FILE: usize = 1_000;

/// A's entry count and arrival head as B's peer report sees it: (cursor, lag).
fn progress(b: &Peer) -> (u64, u64) {
    let list = b.get("/servers/index");
    let report = &list[0]["threatlog"];
    (
        report["cursor"].as_u64().unwrap_or(0),
        report["lag_entries"].as_u64().unwrap_or(u64::MAX),
    )
}

/// `event list` rows without the header: (uuid, date, attributes, distribution, published,
/// info), sorted.
fn event_rows(dir: &Path) -> Vec<String> {
    let text = ok(dir, &["event", "list"]);
    let mut rows: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    rows.sort();
    rows
}

/// Every attribute's CSV export row (MISP columns), sorted.
fn attribute_rows(dir: &Path) -> Vec<String> {
    let out = dir.parent().unwrap().join("attributes.csv");
    ok(
        dir,
        &[
            "export",
            "csv",
            "--out",
            out.to_str().unwrap(),
            "--all-attributes",
        ],
    );
    let text = std::fs::read_to_string(&out).unwrap();
    // Without the event_id column: local ids differ between nodes.
    let mut rows: Vec<String> = text
        .lines()
        .skip(1)
        .map(|line| {
            let mut cells: Vec<&str> = line.split(',').collect();
            cells.remove(1);
            cells.join(",")
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_pull_killed_midway_resumes_to_exactly_the_releasable_set() {
    // A: 10,000 published level-3 events, plus events B must never get.
    let a_temp = tempfile::tempdir().unwrap();
    let a_dir = a_temp.path().join("node");
    ok(&a_dir, &["init", "--org-name", "Org A"]);
    let files = a_temp.path().join("import");
    std::fs::create_dir_all(&files).unwrap();
    let mut paths = Vec::new();
    for file in 0..EVENTS / EVENTS_PER_FILE {
        let events: Vec<Value> = (0..EVENTS_PER_FILE)
            .map(|i| {
                let n = file * EVENTS_PER_FILE + i;
                json!({"Event": {
                    "info": format!("resume event {n}"), "date": "2026-01-01",
                    "distribution": 3, "published": true, "threat_level_id": 2, "analysis": 1,
                    "Attribute": [{"type": "ip-dst", "to_ids": true,
                                   "value": format!("10.{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff)}],
                }})
            })
            .collect();
        let path = files.join(format!("events-{file}.json"));
        std::fs::write(&path, serde_json::to_vec(&events).unwrap()).unwrap();
        paths.push(path.to_str().unwrap().to_string());
    }
    let withheld: Vec<Value> = vec![
        json!({"Event": {"info": "organisation only", "date": "2026-01-01", "distribution": 0,
                "published": true, "Attribute": [{"type": "domain", "value": "private.example"}]}}),
        json!({"Event": {"info": "not published", "date": "2026-01-01", "distribution": 3,
                "published": false, "Attribute": [{"type": "domain", "value": "draft.example"}]}}),
    ];
    let path = files.join("withheld.json");
    std::fs::write(&path, serde_json::to_vec(&withheld).unwrap()).unwrap();
    paths.push(path.to_str().unwrap().to_string());
    let mut import = vec!["event", "import"];
    import.extend(paths.iter().map(String::as_str));
    ok(&a_dir, &import);
    let verified = ok(&a_dir, &["log", "verify"]);
    let entries: u64 = verified
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(entries >= 10_000, "A holds {entries} entries: {verified}");
    let a = Peer {
        server: Server::start(&a_dir),
        key: std::fs::read_to_string(a_dir.join("admin.key"))
            .unwrap()
            .trim()
            .to_string(),
        temp: a_temp,
    };

    let mut b = Peer::start("Org B");
    let b_dir = b.dir().to_path_buf();
    pair(&a, &b, &["--relationship", "external"]);

    // Killed in the middle of the pull: some of A's log is held, not all.
    // The cursor is written with each segment and the status (with A's head) just after it,
    // so wait until both show B partway.
    let (cursor, lag) = wait_for("B to be partway through A's log", || {
        let (cursor, lag) = progress(&b);
        (cursor > 0 && lag > 0).then_some((cursor, lag))
    });
    b.server.kill();
    assert!(lag > 0, "B was still pulling when killed (cursor {cursor})");

    b.server = Server::start(&b_dir);
    wait_for("B to catch up after the restart", || {
        let (cursor, lag) = progress(&b);
        (lag == 0 && cursor > 0).then_some(())
    });
    let (a_server, b_server) = (a.server, b.server);
    a_server.stop();
    b_server.stop();
    let a_dir = a.temp.path().join("node");

    // Exactly A's releasable set: A's events less the two withheld ones, each once.
    let a_rows = event_rows(&a_dir);
    let b_rows = event_rows(&b_dir);
    let expected: Vec<String> = a_rows
        .iter()
        .filter(|row| !row.ends_with("organisation only") && !row.ends_with("not published"))
        .cloned()
        .collect();
    assert_eq!(expected.len(), EVENTS);
    assert_eq!(b_rows.len(), EVENTS);
    assert_eq!(b_rows, expected);
    let uuids: BTreeSet<&str> = b_rows.iter().map(|row| &row[..36]).collect();
    assert_eq!(uuids.len(), EVENTS, "no duplicate events");

    let a_attributes: Vec<String> = attribute_rows(&a_dir)
        .into_iter()
        .filter(|row| !row.contains("private.example") && !row.contains("draft.example"))
        .collect();
    let b_attributes = attribute_rows(&b_dir);
    assert_eq!(b_attributes.len(), EVENTS);
    assert_eq!(b_attributes, a_attributes);

    let verify = ok(&b_dir, &["log", "verify"]);
    assert!(verify.contains("from 2 origins"), "{verify}");
}
