//! Write authority on ingest (SPEC §4.2) with real nodes: B is paired with an honest node A and
//! with H, a peer driven by these tests over real gRPC and mutual TLS. H pushes entries that
//! write what it does not own: its organisation into A's sharing group, the `local` flag on A's
//! organisation record (and then an edit acting for A), A's attribute into H's own event, and
//! an entry dated a day ahead. B refuses each with its reason, the group's content never
//! reaches H, nothing of A's changes, the future entry is not charged as a failure and goes
//! through once dated now, and B keeps syncing with A after each attack.

mod common;

use common::hostile::{pull, push, segment, set_op, Hostile};
use common::nodes::{add_event, addresses, pair, wait_for, Peer};
use common::ok;
use serde_json::{json, Value};
use threatlog::log::{OriginKey, VerifiedEntry};
use threatlog::proto::{op::Op, RecordKind};
use threatlog::store::Incoming;
use threatlog::sync::peer::Card;
use uuid::Uuid;

/// How far ahead H dates its entry from the future: a day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A, B and H, with A's published level-3 event and H's own event on B.
struct Federation {
    a: Peer,
    b: Peer,
    a_org: Uuid,
    b_org: Uuid,
    b_key: OriginKey,
    b_addr: String,
    h: Hostile,
    runtime: tokio::runtime::Runtime,
    /// A's event.
    x: Uuid,
    /// H's event.
    h_event: Uuid,
}

impl Federation {
    fn start() -> Federation {
        let a = Peer::start("Org A");
        let b = Peer::start("Org B");
        pair(&a, &b, &["--relationship", "external"]);
        let a_card = Card::decode(&a.card()).unwrap();
        let b_card = Card::decode(&b.card()).unwrap();
        // H pairs with B like any node; B does not dial it, H pushes and pulls.
        let h = Hostile::new();
        let card = h.card();
        let policy = ["--relationship", "external", "--no-pull", "--no-push"];
        ok(b.dir(), &[&["peer", "add", &card][..], &policy].concat());
        let x = add_event(&a, "org A's event", 3, &addresses("198.51.100", 1));
        a.publish(&x);
        wait_for("A's event on B", || b.event(&x));
        let mut federation = Federation {
            b_addr: b.sync_addr(),
            a,
            b,
            a_org: a_card.org_uuid,
            b_org: b_card.org_uuid,
            b_key: b_card.key,
            h,
            runtime: tokio::runtime::Runtime::new().unwrap(),
            x: Uuid::parse_str(&x).unwrap(),
            h_event: Uuid::nil(),
        };
        let (h_event, entries) = federation.h.own_event("H's own event");
        assert_eq!(
            federation.push(&entries.iter().collect::<Vec<_>>()),
            Ok(String::new())
        );
        wait_for("H's event on B", || {
            federation.b.event(&h_event.to_string())
        });
        federation.h_event = h_event;
        federation
    }

    /// Pushes `entries` to B as H; B's answer.
    fn push(&self, entries: &[&VerifiedEntry]) -> Result<String, String> {
        let key = self.h.key_copy();
        push(
            &self.runtime,
            &key,
            self.b_key,
            &self.b_addr,
            segment(entries),
        )
    }

    /// Asserts that B refuses `entry` from H, starting its answer with `rejected ID: reason`.
    fn assert_refused(&self, entry: &VerifiedEntry, reason: &str) {
        let expected = format!("rejected {}: {reason}", entry.id());
        let answer = self.push(&[entry]).expect("B answers the push");
        assert!(
            answer.starts_with(&expected),
            "{answer}\nexpected {expected}…"
        );
    }

    /// H's sync status on B (`peer list --json`).
    fn h_status(&self) -> Value {
        let key = self.h.key.origin().to_string();
        self.b
            .peers()
            .as_array()
            .unwrap()
            .iter()
            .find(|peer| peer["key"] == key.as_str())
            .map(|peer| peer["status"].clone())
            .expect("H is paired on B")
    }

    /// A publishes a new event and B receives it: honest sync goes on.
    fn a_still_reaches_b(&self) {
        let info = format!("honest event {}", Uuid::new_v4());
        let uuid = add_event(&self.a, &info, 3, &addresses("203.0.113", 1));
        self.a.publish(&uuid);
        let arrived = wait_for(&info, || self.b.event(&uuid));
        assert_eq!(arrived["Event"]["info"], info.as_str());
        let peers = self.b.peers();
        let a_status = peers
            .as_array()
            .unwrap()
            .iter()
            .find(|peer| peer["org_name"] == "Org A")
            .expect("A is paired on B");
        assert_eq!(a_status["status"]["last_error"], Value::Null, "{a_status}");
    }

    /// Stops B and verifies its log: the stored views equal a fresh replay.
    fn verify_b(self) {
        let Peer {
            server,
            temp: _b_temp,
            ..
        } = self.b;
        let dir = server.dir.clone();
        server.stop();
        ok(&dir, &["log", "verify"]);
    }
}

/// The member organisations of sharing group `group` on `node`, sorted.
fn members(node: &Peer, group: &Uuid) -> Vec<String> {
    let shown = node.get(&format!("/sharing_groups/view/{group}"));
    let mut out: Vec<String> = shown["SharingGroupOrg"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["Organisation"]["uuid"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn uuid_of(value: &Value) -> Uuid {
    Uuid::parse_str(value.as_str().unwrap()).unwrap()
}

#[test]
fn a_peer_adding_its_org_to_another_orgs_sharing_group_is_refused_and_gets_none_of_it() {
    let fed = Federation::start();
    let (a_org, b_org, h_org) = (fed.a_org, fed.b_org, fed.h.org);
    // A shares an event with B through a roaming sharing group (which any member may relay).
    let group = uuid_of(
        &fed.a.post(
            "/sharing_groups/add",
            json!({"SharingGroup": {"name": "A and B", "releasability": "tests", "roaming": true},
                   "SharingGroupOrg": [{"Organisation": {"uuid": b_org, "name": "Org B"}}]}),
        )["SharingGroup"]["uuid"],
    );
    let grouped = uuid_of(
        &fed.a.post(
            "/events/add",
            json!({"Event": {"info": "for A and B only", "distribution": "4",
                             "sharing_group_uuid": group,
                             "Attribute": [{"type": "ip-dst", "value": "198.51.100.200"}]}}),
        )["Event"]["uuid"],
    );
    fed.a.publish(&grouped.to_string());
    wait_for("A's grouped event on B", || {
        fed.b.event(&grouped.to_string())
    });
    let mut a_and_b = vec![a_org.to_string(), b_org.to_string()];
    a_and_b.sort();
    assert_eq!(members(&fed.b, &group), a_and_b);

    let join = fed.h.seal(fed.h.draft(
        h_org,
        None,
        vec![set_op(
            RecordKind::SharingGroup,
            &group,
            json!({"organisations": [a_org, b_org, h_org]}),
        )],
    ));
    fed.assert_refused(
        &join,
        &format!("write authority: sharing group {group} belongs to org {a_org}"),
    );
    assert_eq!(members(&fed.b, &group), a_and_b);
    // What B releases to H holds nothing of the group: neither its definition nor its event.
    let key = fed.h.key_copy();
    let received = pull(&fed.runtime, &key, fed.b_key, &fed.b_addr);
    let full: Vec<&VerifiedEntry> = received
        .iter()
        .filter_map(|item| match item {
            Incoming::Entry(entry) => Some(entry),
            Incoming::Stub(_) => None,
        })
        .collect();
    assert!(full.iter().any(|entry| entry.event() == Some(fed.x)));
    for entry in &full {
        assert_ne!(entry.event(), Some(grouped), "{:?}", entry.id());
        let names_group =
            entry.entry().ops.iter().any(
                |op| matches!(&op.op, Some(Op::Set(set)) if set.key.as_ref() == group.as_bytes()),
            );
        assert!(!names_group, "{:?} names the group", entry.id());
    }
    fed.a_still_reaches_b();
    fed.verify_b();
}

#[test]
fn a_peer_setting_local_on_another_orgs_record_is_refused_and_cannot_act_for_it() {
    let fed = Federation::start();
    let (a_org, x) = (fed.a_org, fed.x);
    let register = fed.h.seal(fed.h.draft(
        fed.h.org,
        None,
        vec![set_op(
            RecordKind::Organisation,
            &a_org,
            json!({"uuid": a_org, "name": "Org A", "local": true}),
        )],
    ));
    fed.assert_refused(
        &register,
        &format!(
            "write authority: organisation {a_org} is bound to an org key: only its own nodes \
             write its record; node {} may only name it",
            fed.h.key.origin()
        ),
    );
    // Acting for A on A's event is refused too.
    let as_a = fed.h.seal(fed.h.draft(
        a_org,
        Some(x),
        vec![set_op(
            RecordKind::Event,
            &x,
            json!({"info": "rewritten as A"}),
        )],
    ));
    fed.assert_refused(
        &as_a,
        &format!(
            "write authority: node of org {} acts for org {a_org}, which it has not registered",
            fed.h.org
        ),
    );
    assert_eq!(
        fed.b.event(&x.to_string()).unwrap()["Event"]["info"],
        "org A's event"
    );
    let status = fed.h_status();
    assert_eq!(
        (&status["failures"], &status["quarantined"]),
        (&json!(2), &json!(false))
    );
    fed.a_still_reaches_b();
    fed.verify_b();
}

#[test]
fn a_peer_moving_another_events_attribute_into_its_event_is_refused() {
    let fed = Federation::start();
    let (x, h_event) = (fed.x, fed.h_event);
    let shown = fed.b.event(&x.to_string()).unwrap();
    let attribute = uuid_of(&shown["Event"]["Attribute"][0]["uuid"]);
    let moved = fed.h.seal(fed.h.draft(
        fed.h.org,
        Some(h_event),
        vec![set_op(
            RecordKind::Attribute,
            &attribute,
            json!({"type": "ip-dst", "category": "Network activity", "value": "203.0.113.66"}),
        )],
    ));
    fed.assert_refused(
        &moved,
        &format!(
            "foreign item: attribute {attribute} belongs to event {x}, not to event {h_event}"
        ),
    );
    let kept = fed.b.event(&x.to_string()).unwrap();
    assert_eq!(kept["Event"]["Attribute"][0]["uuid"], attribute.to_string());
    assert_eq!(kept["Event"]["Attribute"][0]["value"], "198.51.100.0");
    let own = fed.b.event(&h_event.to_string()).unwrap();
    let values = common::nodes::values(&own);
    assert_eq!(values, ["192.0.2.66"], "{own}");
    fed.a_still_reaches_b();
    fed.verify_b();
}

#[test]
fn an_entry_dated_a_day_ahead_is_refused_for_now_without_charging_the_peer() {
    let mut fed = Federation::start();
    let h_event = fed.h_event;
    let edit = |info: &str| vec![set_op(RecordKind::Event, &h_event, json!({"info": info}))];
    let tomorrow = fed.h.seal_at(
        fed.h.draft(fed.h.org, Some(h_event), edit("from tomorrow")),
        threatlog::clock::SystemClock.now_ms() + DAY_MS,
    );
    let answer = fed.push(&[&tomorrow]).expect("B answers the push");
    assert!(
        answer.starts_with(&format!("rejected {}: clock skew: ", tomorrow.id()))
            && answer.contains("ahead of this node's clock")
            && answer.contains("sync.clock_skew_max_s (600 s)"),
        "{answer}"
    );
    let status = fed.h_status();
    assert_eq!(
        (
            &status["failures"],
            &status["violations"],
            &status["quarantined"]
        ),
        (&json!(0), &json!(0), &json!(false)),
        "{status}"
    );
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("clock skew"),
        "{status}"
    );
    let shown = fed.b.event(&h_event.to_string()).unwrap();
    assert_eq!(shown["Event"]["info"], "H's own event");
    // The same position dated now is accepted.
    let today = fed
        .h
        .append(fed.h.draft(fed.h.org, Some(h_event), edit("from today")));
    assert_eq!(fed.push(&[&today]), Ok(String::new()));
    let shown = fed.b.event(&h_event.to_string()).unwrap();
    assert_eq!(shown["Event"]["info"], "from today");
    // The deferral is no longer shown once the peer's next segment went through.
    assert_eq!(fed.h_status()["last_error"], Value::Null);
    fed.a_still_reaches_b();
    fed.verify_b();
}
