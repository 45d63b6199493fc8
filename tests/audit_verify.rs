//! `threatlog audit export` and `audit verify` on real data directories with the real binary:
//! an intact bundle verifies; each kind of tampering makes verify fail, exit non-zero and name
//! what is wrong.

mod common;
// The audit benchmark (benches/), run here on a small log to check its figures.
#[path = "../benches/support/mod.rs"]
mod bench;

use clap::Parser;

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
        // The node's certificate, its organisation and twelve events.
        summary.contains(&format!("origin {origin}: 14 entries")),
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
    let options = bench::audit::AuditOptions::parse_from(["audit", "--entries", "1500", "--json"]);
    let figures = bench::audit::figures(&options).unwrap();
    assert_eq!(figures["entries"], 1500);
    assert_eq!(figures["checkpoints"], 1, "one checkpoint per 1000 entries");
    for name in [
        "verify_entries_per_s",
        "raw_strict_verify_per_s",
        "raw_strict_verify_one_thread_per_s",
        "verify_vs_raw_strict",
        "verify_peak_rss_kib",
    ] {
        assert!(
            figures[name].as_f64().is_some_and(|v| v > 0.0),
            "{name} in {figures}"
        );
    }
}

/// Most nonces tried for a torsion signature that ed25519 batch verification accepts: each
/// try succeeds with probability 1/8 (the order of the torsion point), so failing them all
/// has probability (7/8)^256, below 2^-49.
const TORSION_TRIES_MAX: u32 = 256;

/// An ed25519 signature by the key of `seed` over `message` whose R is `r·B + T`, with T a
/// point of order 8 and `r` derived from `nonce`: `s = r + k·a` with `k = H(R ‖ A ‖ M)` as in
/// an honest signature. The cofactorless check `s·B = R + k·A` fails by T, so strict
/// verification refuses it; a random linear combination of many such checks loses T whenever
/// its coefficient for this signature is a multiple of 8.
fn torsion_signature(seed: &[u8; 32], message: &[u8], nonce: u32) -> [u8; 64] {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::Sha512;
    let expanded = Sha512::digest(seed);
    let mut secret: [u8; 32] = expanded[..32].try_into().unwrap();
    secret[0] &= 248;
    secret[31] &= 127;
    secret[31] |= 64;
    let a = Scalar::from_bytes_mod_order(secret);
    let public = (ED25519_BASEPOINT_POINT * a).compress();
    let wide = |parts: &[&[u8]]| -> Scalar {
        let mut hasher = Sha512::new();
        for part in parts {
            hasher.update(part);
        }
        Scalar::from_bytes_mod_order_wide(&hasher.finalize().into())
    };
    let r = wide(&[&expanded[32..], &nonce.to_be_bytes(), message]);
    let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1]).compress();
    let k = wide(&[big_r.as_bytes(), public.as_bytes(), message]);
    let s = r + k * a;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(big_r.as_bytes());
    signature[32..].copy_from_slice(s.as_bytes());
    signature
}

#[test]
fn a_torsion_signature_is_refused_by_audit_verify_as_by_ingest() {
    use prost::Message;
    use threatlog::log::{seal, Draft, Head, NodeKey, VerifiedEntry};
    use threatlog::proto::{self, op::Op, RecordKind};
    let temp = tempfile::tempdir().unwrap();
    // A node with a few events any peer may receive.
    let dir = temp.path().join("A");
    common::ok(&dir, &["init", "--org-name", "A"]);
    for index in 0..3 {
        let path = temp.path().join(format!("event-{index}.json"));
        let event = serde_json::json!({"Event": {"info": format!("event {index}"),
            "distribution": "3", "published": true,
            "Attribute": [{"type": "ip-dst", "value": format!("192.0.2.{index}")}]}});
        std::fs::write(&path, event.to_string()).unwrap();
        common::ok(&dir, &["event", "import", path.to_str().unwrap()]);
    }
    let bundle = temp.path().join("a.bundle");
    common::ok(
        &dir,
        &["audit", "export", "--out", bundle.to_str().unwrap()],
    );
    let mut records = lines(&bundle);
    let engine = base64::engine::general_purpose::STANDARD;
    let entries: Vec<VerifiedEntry> = records
        .iter()
        .filter(|record| record["type"] == "entry")
        .map(|record| {
            let bytes = engine.decode(record["data"].as_str().unwrap()).unwrap();
            VerifiedEntry::verify(bytes.into()).unwrap()
        })
        .collect();
    let last = entries.last().unwrap().clone();

    // The node's key holder signs one more entry, an edit of its own last event, with a
    // torsion component in R.
    let seed: [u8; 32] = hex::decode(
        std::fs::read_to_string(dir.join("node.key"))
            .unwrap()
            .trim(),
    )
    .unwrap()
    .try_into()
    .unwrap();
    let key = NodeKey::from_seed(&seed);
    assert_eq!(key.origin(), last.origin());
    let event = last.event().unwrap();
    let draft = Draft {
        acting_org: last.origin_org(),
        acting_user: "admin@a.example".into(),
        event: Some(event),
        visibility: proto::Visibility {
            distribution: 5,
            sharing_group: Default::default(),
        },
        ops: vec![proto::Op {
            op: Some(Op::Set(proto::RecordSet {
                kind: RecordKind::Event as i32,
                key: event.as_bytes().to_vec().into(),
                parent: Default::default(),
                fields_json: br#"{"info": "signed with a torsion component"}"#.to_vec().into(),
            })),
        }],
    };
    let honest = seal(
        &key,
        last.origin_org(),
        &Head::after(&last),
        draft,
        threatlog::clock::SystemClock.now_ms(),
        [9; threatlog::log::SALT_BYTES],
    )
    .unwrap();
    let message = honest.signed_bytes().clone();
    let dalek = |entry: &VerifiedEntry| {
        let signed = proto::SignedEntry::decode(entry.stored().clone()).unwrap();
        ed25519_dalek::Signature::from_slice(&signed.signature).unwrap()
    };
    let public = ed25519_dalek::VerifyingKey::from_bytes(&key.origin().0).unwrap();
    // The nonce is chosen so that ed25519 batch verification of all the bundle's entries in
    // one batch accepts it: a verifier that trusted the batch equation would pass the bundle.
    let (forged, signature) = (0..TORSION_TRIES_MAX)
        .find_map(|nonce| {
            let signature = torsion_signature(&seed, &message, nonce);
            let forged = proto::SignedEntry {
                entry: message.clone(),
                signature: signature.to_vec().into(),
            }
            .encode_to_vec();
            let mut messages: Vec<&[u8]> =
                entries.iter().map(|e| e.signed_bytes().as_ref()).collect();
            messages.push(message.as_ref());
            let mut signatures: Vec<_> = entries.iter().map(dalek).collect();
            signatures.push(ed25519_dalek::Signature::from_bytes(&signature));
            let keys = vec![public; signatures.len()];
            ed25519_dalek::verify_batch(&messages, &signatures, &keys)
                .is_ok()
                .then_some((forged, signature))
        })
        .expect("a nonce whose torsion signature passes batch verification");
    // Strict verification, which ingest uses, refuses it.
    assert!(public
        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .is_err());
    assert_eq!(
        key.origin().verify_strict(&message, &signature),
        Err(threatlog::log::LogError::BadSignature)
    );

    // Ingest refuses it: a real node B, to which A's key pushes its chain over gRPC.
    let (_b_temp, b_dir) = common::node();
    let b = common::server::Server::start(&b_dir);
    let a_card = common::ok(&dir, &["peer", "card"]);
    common::ok(
        &b_dir,
        &["peer", "add", a_card.trim(), "--no-pull", "--no-push"],
    );
    let b_card =
        threatlog::sync::peer::Card::decode(&common::ok(&b_dir, &["peer", "card"])).unwrap();
    let b_addr = std::fs::read_to_string(b_dir.join("run/sync.addr")).unwrap();
    let item = |bytes: prost::bytes::Bytes| proto::sync::Item {
        item: Some(proto::sync::item::Item::Entry(bytes)),
    };
    let segment = |items: Vec<proto::sync::Item>| proto::sync::Segment {
        items,
        ..Default::default()
    };
    let honest_items = entries.iter().map(|e| item(e.stored().clone())).collect();
    let segments = vec![
        segment(honest_items),
        segment(vec![item(forged.clone().into())]),
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime.block_on(async {
        let mut client = threatlog::sync::connect_as(&key, b_card.key, b_addr.trim())
            .await
            .unwrap();
        client
            .push(tokio_stream::iter(segments))
            .await
            .unwrap()
            .into_inner()
    });
    // Every honest entry is taken; the torsion-signed one is refused.
    assert_eq!(answer.accepted, entries.len() as u64, "{answer:?}");
    assert_eq!(
        answer.error,
        "rejected undecodable item: signature does not verify"
    );
    drop(b);

    // Audit verify refuses it too, and names the entry.
    let origin = key.origin().to_string();
    let sequence = last.sequence() + 1;
    let at = records
        .iter()
        .rposition(|record| record["type"] == "entry")
        .unwrap();
    records.insert(
        at + 1,
        serde_json::json!({"type": "entry", "origin": origin, "seq": sequence,
                           "data": engine.encode(&forged)}),
    );
    let path = temp.path().join("torsion.bundle");
    write_bundle(&path, &records);
    let error = common::fails(&dir, &["audit", "verify", path.to_str().unwrap()]);
    assert!(
        error.contains(&format!("entry {origin}:{sequence}")),
        "{error}"
    );
    assert!(error.contains("signature does not verify"), "{error}");
}
