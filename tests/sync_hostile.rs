//! A hostile peer: node B is paired with an honest node A and with H, a peer driven by this
//! test over real gRPC and mutual TLS with its own key. H pushes hand-built segments: a bad
//! signature, a broken chain, another organisation's event edited, an organisation it may
//! not act for, an oversized message, garbage bytes and an equivocation. B refuses each with
//! its reason, records it, keeps syncing with A, stores the fork proof and quarantines H.

mod common;

use common::hostile::{entry_item, push, segment_of as segment, Hostile};
use common::nodes::{add_event, addresses, pair, wait_for, Peer};
use common::ok;
use prost::bytes::Bytes;
use prost::Message;
use serde_json::{json, Value};
use threatlog::log::{Head, NodeKey, OriginKey, VerifiedEntry};
use threatlog::proto::{self, sync as wire};
use uuid::Uuid;

/// H's entry in B's `peer list --json`.
fn hostile_report(b: &Peer, h: &OriginKey) -> Value {
    let key = h.to_string();
    b.peers()
        .as_array()
        .unwrap()
        .iter()
        .find(|peer| peer["key"] == key.as_str())
        .cloned()
        .expect("H is paired on B")
}

fn last_error(b: &Peer, h: &OriginKey) -> String {
    hostile_report(b, h)["status"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_hostile_peer_is_refused_recorded_and_quarantined_while_honest_sync_goes_on() {
    let temp = tempfile::tempdir().unwrap();
    let b_log = temp.path().join("b.log");
    let a = Peer::start("Org A");
    let b = Peer::start_logged("Org B", &b_log);
    pair(&a, &b, &["--relationship", "external"]);
    let b_key = threatlog::sync::peer::Card::decode(&b.card()).unwrap().key;
    let b_addr = b.sync_addr();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // H pairs with B like any node: B adds H's card (B neither pulls from nor pushes to H; H
    // pushes).
    let mut h = Hostile::new();
    let h_origin = h.key.origin();
    let card = h.card();
    ok(
        b.dir(),
        &[
            "peer",
            "add",
            &card,
            "--relationship",
            "external",
            "--no-pull",
            "--no-push",
        ],
    );
    let h_key = h.key_copy();
    let push_h = |segment: wire::Segment| push(&runtime, &h_key, b_key, &b_addr, segment);

    // A strange key is refused at the TLS handshake.
    let stranger = NodeKey::generate();
    let refused = push(&runtime, &stranger, b_key, &b_addr, segment(vec![]));
    assert!(refused.is_err(), "an unpaired key is refused: {refused:?}");

    // Org A's event reaches B through A.
    let x = add_event(&a, "org A's event", 3, &addresses("198.51.100", 2));
    a.publish(&x);
    wait_for("A's event on B", || b.event(&x));

    // H's own event is accepted.
    let (h_event, entries) = h.own_event("H's honest-looking event");
    let items = entries
        .iter()
        .map(|entry| entry_item(entry.stored().clone()))
        .collect();
    assert_eq!(
        push(&runtime, &h.key, b_key, &b_addr, segment(items)),
        Ok(String::new())
    );
    let shown = wait_for("H's event on B", || b.event(&h_event.to_string()));
    assert_eq!(shown["Event"]["info"], "H's honest-looking event");

    // 1. A bad signature.
    let next = h.seal_after(
        &h.head(),
        h.edit_draft(h.org, h_event, json!({"info": "forged"})),
    );
    let mut signed = proto::SignedEntry::decode(next.stored().clone()).unwrap();
    let mut signature = signed.signature.to_vec();
    signature[7] ^= 0x40;
    signed.signature = Bytes::from(signature);
    let answer = push_h(segment(vec![entry_item(Bytes::from(
        signed.encode_to_vec(),
    ))]));
    assert!(
        answer
            .as_deref()
            .unwrap()
            .contains("signature does not verify"),
        "{answer:?}"
    );
    assert_eq!(
        last_error(&b, &h_origin),
        "rejected undecodable item: signature does not verify"
    );

    // 2. A broken chain: the right sequence, a wrong previous-entry hash.
    let head = h.head();
    let broken = h.seal_after(
        &Head {
            sequence: head.sequence,
            hash: [7; 32],
        },
        h.edit_draft(h.org, h_event, json!({"info": "detached"})),
    );
    let answer = push_h(segment(vec![entry_item(broken.stored().clone())]));
    let expected = format!(
        "rejected {}: previous-entry hash does not match the hash of sequence {}",
        broken.id(),
        head.sequence
    );
    assert_eq!(answer.as_deref(), Ok(expected.as_str()));
    assert_eq!(last_error(&b, &h_origin), expected);

    // 3. Org A's event edited by H's node: an ownership conflict.
    let x_uuid = Uuid::parse_str(&x).unwrap();
    let hijack = h.seal_after(
        &h.head(),
        h.edit_draft(h.org, x_uuid, json!({"info": "hijacked"})),
    );
    let answer = push_h(segment(vec![entry_item(hijack.stored().clone())]));
    let expected = format!(
        "rejected {}: ownership conflict: event {x} is owned by org {}; entry acts for org {}",
        hijack.id(),
        org_of(&b, &x),
        h.org
    );
    assert_eq!(answer.as_deref(), Ok(expected.as_str()));
    assert_eq!(last_error(&b, &h_origin), expected);

    // 4. An entry acting for an organisation that is neither H's nor registered on H.
    let stranger_org = Uuid::new_v4();
    let usurp = h.seal_after(
        &h.head(),
        h.edit_draft(
            stranger_org,
            Uuid::new_v4(),
            json!({"info": "usurped", "distribution": "3"}),
        ),
    );
    let answer = push_h(segment(vec![entry_item(usurp.stored().clone())]));
    let expected = format!(
        "rejected {}: write authority: node of org {} acts for org {stranger_org}, which it has not registered",
        usurp.id(),
        h.org
    );
    assert_eq!(answer.as_deref(), Ok(expected.as_str()));
    assert_eq!(last_error(&b, &h_origin), expected);
    let report = hostile_report(&b, &h_origin);
    assert_eq!(report["status"]["failures"], 4, "{report}");
    assert_eq!(report["status"]["quarantined"], false, "{report}");

    // A valid segment between failures does not wipe them out: they count within their
    // window, so a peer alternating good and bad segments is quarantined all the same.
    let (h_second, entries) = h.own_event("H's second event");
    let items = entries
        .iter()
        .map(|entry| entry_item(entry.stored().clone()))
        .collect();
    assert_eq!(push_h(segment(items)), Ok(String::new()));
    wait_for("H's second event on B", || b.event(&h_second.to_string()));
    let report = hostile_report(&b, &h_origin);
    assert_eq!(report["status"]["failures"], 4, "{report}");
    assert_eq!(report["status"]["quarantined"], false, "{report}");

    // 5. A message over the gRPC limit is refused by the transport, and recorded.
    let oversized = vec![0x5a; threatlog::sync::MESSAGE_BYTES_MAX + 1024];
    let answer = push_h(segment(vec![entry_item(Bytes::from(oversized))]));
    assert!(answer.is_err(), "{answer:?}");
    let error = wait_for("the oversized message recorded", || {
        let error = last_error(&b, &h_origin);
        error.starts_with("refused push message").then_some(error)
    });
    assert!(error.contains("too large"), "{error}");
    // The fifth failure within the window: quarantined, until the operator releases H, whose
    // count then starts afresh.
    let report = hostile_report(&b, &h_origin);
    assert_eq!(report["status"]["failures"], 5, "{report}");
    assert_eq!(report["status"]["quarantined"], true, "{report}");
    let refused = push_h(segment(vec![]));
    assert!(refused.expect_err("quarantined").contains("quarantined"));
    let id = report["id"].to_string();
    b.post(
        &format!("/servers/pull/{}", id.trim_matches('"')),
        json!({}),
    );
    let report = hostile_report(&b, &h_origin);
    assert_eq!(report["status"]["failures"], 0, "{report}");
    assert_eq!(report["status"]["quarantined"], false, "{report}");

    // 6. Garbage where an entry's bytes belong.
    let answer = push_h(segment(vec![entry_item(Bytes::from_static(
        b"\xff\xfenot a signed entry at all",
    ))]));
    assert!(
        answer
            .as_deref()
            .unwrap()
            .starts_with("rejected undecodable item: entry does not decode"),
        "{answer:?}"
    );
    assert!(
        last_error(&b, &h_origin).starts_with("rejected undecodable item: entry does not decode")
    );

    // 7. Equivocation: a second, different, validly signed entry at H's last position.
    let held = h.chain.last().unwrap().clone();
    let before = h.chain[h.chain.len() - 2].clone();
    let fork = h.seal_after(
        &Head::after(&before),
        h.edit_draft(h.org, h_second, json!({"info": "the other story"})),
    );
    assert_eq!(fork.id(), held.id());
    assert_ne!(fork.hash(), held.hash());
    let answer = push_h(segment(vec![entry_item(fork.stored().clone())]));
    let expected = format!(
        "rejected {}: equivocation: a different entry with this origin and sequence is held (fork proof stored)",
        fork.id()
    );
    assert_eq!(answer.as_deref(), Ok(expected.as_str()));
    assert_eq!(last_error(&b, &h_origin), expected);
    // H's origin is refused from now on, even with a correct next entry.
    let after = h.seal_after(
        &h.head(),
        h.edit_draft(h.org, h_second, json!({"info": "later"})),
    );
    let answer = push_h(segment(vec![entry_item(after.stored().clone())]));
    assert_eq!(
        answer.as_deref(),
        Ok(format!(
            "rejected {}: origin is refused after equivocating",
            after.id()
        )
        .as_str())
    );
    // What B already holds of the refused origin, sent again (as an honest relay sends back
    // what it received), is a duplicate: neither an error nor a failure charged to the sender.
    let failures = hostile_report(&b, &h_origin)["status"]["failures"].clone();
    let answer = push_h(segment(vec![entry_item(held.stored().clone())]));
    assert_eq!(answer.as_deref(), Ok(""));
    assert_eq!(
        hostile_report(&b, &h_origin)["status"]["failures"],
        failures
    );

    // B went on syncing with A all along.
    let late = add_event(&a, "after the attacks", 3, &addresses("203.0.113", 3));
    a.publish(&late);
    let arrived = wait_for("A's later event on B", || b.event(&late));
    assert_eq!(common::nodes::values(&arrived), addresses("203.0.113", 3));
    let a_report = b.peers()[0].clone();
    assert_eq!(a_report["org_name"], "Org A");
    assert_eq!(a_report["status"]["last_error"], Value::Null, "{a_report}");

    // Five failures within the window: quarantined, and further pushes are refused outright.
    assert_eq!(hostile_report(&b, &h_origin)["status"]["failures"], 3);
    for failures in [4, 5] {
        let answer = push_h(segment(vec![entry_item(Bytes::from_static(b"\x00"))]));
        assert!(
            answer
                .as_deref()
                .unwrap()
                .starts_with("rejected undecodable item"),
            "{answer:?}"
        );
        let report = hostile_report(&b, &h_origin);
        assert_eq!(report["status"]["failures"], failures, "{report}");
        assert_eq!(report["status"]["quarantined"], failures == 5, "{report}");
    }
    let report = hostile_report(&b, &h_origin);
    assert_eq!(report["status"]["failures"], 5, "{report}");
    assert_eq!(report["status"]["quarantined"], true, "{report}");
    assert_eq!(report["status"]["state"], "quarantined", "{report}");
    let refused = push_h(segment(vec![entry_item(after.stored().clone())]));
    let refusal = refused.expect_err("a quarantined peer's push is refused");
    assert!(refusal.contains("quarantined"), "{refusal}");
    // Nothing of H's attacks reached B's views.
    assert_eq!(b.event(&x).unwrap()["Event"]["info"], "org A's event");
    assert_eq!(
        b.event(&h_second.to_string()).unwrap()["Event"]["info"],
        "H's second event"
    );

    // B's log output names every refusal.
    let Peer {
        server,
        temp: _b_temp,
        ..
    } = b;
    let dir = server.dir.clone();
    server.stop();
    let log = std::fs::read_to_string(&b_log).unwrap();
    for needle in [
        "signature does not verify",
        "previous-entry hash does not match",
        "ownership conflict",
        "write authority",
        "refused push message",
        "entry does not decode",
        "equivocation",
        "quarantined=true",
    ] {
        assert!(log.contains(needle), "B's log mentions {needle}:\n{log}");
    }

    // The fork proof holds both signed entries.
    let alerts: Value = serde_json::from_str(&ok(&dir, &["log", "forks", "--json"])).unwrap();
    assert_eq!(alerts["identity_conflicts"], json!([]), "{alerts}");
    let forks = alerts["forks"].as_array().unwrap();
    assert_eq!(forks.len(), 1, "{forks:?}");
    assert_eq!(forks[0]["origin"], h_origin.to_string());
    assert_eq!(forks[0]["sequence"], held.sequence());
    use base64::Engine;
    let decode = |field: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(forks[0][field].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(decode("held"), held.stored().to_vec());
    assert_eq!(decode("received"), fork.stored().to_vec());
    // Both verify under H's key: the proof convinces anyone.
    for bytes in [decode("held"), decode("received")] {
        assert_eq!(
            VerifiedEntry::verify(Bytes::from(bytes)).unwrap().origin(),
            h_origin
        );
    }
    let text = ok(&dir, &["log", "forks"]);
    assert!(text.contains(&h_origin.to_string()), "{text}");
    // B's log still verifies.
    ok(&dir, &["log", "verify"]);
}

/// The uuid of the organisation that owns event `uuid` on `node`.
fn org_of(node: &Peer, uuid: &str) -> String {
    node.event(uuid).unwrap()["Event"]["Orgc"]["uuid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A peer opening follow-pulls one after another gets at most
/// `threatlog::sync::PULLS_PER_PEER_MAX` of them; the next is refused until one ends, and
/// each open one goes on receiving the node's new entries.
#[test]
fn a_peer_holds_at_most_a_few_pull_streams_and_they_keep_flowing() {
    let b = Peer::start("Org B");
    let b_key = threatlog::sync::peer::Card::decode(&b.card()).unwrap().key;
    let b_addr = b.sync_addr();
    let h = Hostile::new();
    ok(
        b.dir(),
        &[
            "peer",
            "add",
            &h.card(),
            "--relationship",
            "external",
            "--no-pull",
            "--no-push",
        ],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let open = |key: &NodeKey| {
        runtime.block_on(async {
            let mut client = threatlog::sync::connect_as(key, b_key, &b_addr)
                .await
                .unwrap();
            client
                .pull(wire::PullRequest {
                    cursor: 0,
                    follow: true,
                })
                .await
                .map(tonic::Response::into_inner)
        })
    };
    let mut streams: Vec<_> = (0..threatlog::sync::PULLS_PER_PEER_MAX)
        .map(|_| open(&h.key).expect("a pull within the cap"))
        .collect();
    let refused = open(&h.key).expect_err("a pull past the cap");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        format!(
            "you have {} pull streams open, the most this node serves one peer",
            threatlog::sync::PULLS_PER_PEER_MAX
        )
    );
    // Every open stream sends B's published event, written after they opened.
    let x = add_event(&b, "B's event for followers", 3, &addresses("203.0.113", 1));
    b.publish(&x);
    for stream in &mut streams {
        let found = runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(60), async {
                loop {
                    let segment = stream.message().await.unwrap().expect("the stream follows");
                    for item in segment.items {
                        if let Ok(threatlog::store::Incoming::Entry(entry)) =
                            threatlog::sync::decode_item(item)
                        {
                            if entry.event() == Some(Uuid::parse_str(&x).unwrap()) {
                                return;
                            }
                        }
                    }
                }
            })
            .await
        });
        assert!(found.is_ok(), "an open follow-pull carries the new event");
    }
    // Ending one stream frees its place (once B sees it closed).
    streams.pop();
    let started = std::time::Instant::now();
    while open(&h.key).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "a place freed by an ended stream"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
