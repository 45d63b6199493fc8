//! The load test: one node serving its API over HTTPS and its sync service, attacked on every
//! front at once ([`attack::FULL`]: 500 slowloris connections, 100 idle TLS connections, 25
//! clients flooding `%` searches and 25 oversized bodies, 40 follow-pulls of a paired peer and
//! a peer that never reads), while an honest PyMISP client adds and searches events. Every
//! honest call must succeed and the node's peak memory stay under [`RSS_MAX_MIB`]; the honest
//! client's latencies with and without the attack are printed.
//!
//! It needs PyMISP: `make test-load` (part of `make test`) runs it with
//! `THREATLOG_PYMISP_PYTHON` naming the test virtualenv's python.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::attack::{self, percentile, Attack, SyncTarget, Target};
use common::hostile::Hostile;
use common::identity::Org;
use common::server::Server;
use common::{accounts, ok};
use serde_json::{json, Value};
use tokio_rustls::rustls;

/// Bound on the node's peak resident memory over the whole test, in MiB: the node holding
/// [`ATTRIBUTES_HELD`] attributes with every connection and stream of the attack open, with
/// room for the allocator's caches.
const RSS_MAX_MIB: u64 = 512;
/// Attributes the node holds, so that each `%` search reads a sizeable value index.
const ATTRIBUTES_HELD: usize = 20_000;
/// Rounds (an add and a search each) of the honest client, without and with the attack.
const HONEST_ROUNDS: usize = 30;
/// How long the attack runs before the honest client starts, so that every attacker is on.
const RAMP: Duration = Duration::from_secs(5);
/// Shortest attack: longer than the node's handshake and idle timeouts (10 and 15 s), so that
/// the connections it holds are seen cut.
const ATTACK_MIN: Duration = Duration::from_secs(20);

/// One run of the honest PyMISP client: its latencies (sorted, ms) and failures.
struct Honest {
    latencies_ms: Vec<f64>,
    failures: Vec<String>,
}

impl Honest {
    fn run(python: &str, url: &str, key: &str, ca: &Path, label: &str) -> Honest {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/load/honest_client.py");
        let out = Command::new(python)
            .arg(script)
            .args([
                url,
                key,
                ca.to_str().unwrap(),
                &HONEST_ROUNDS.to_string(),
                label,
            ])
            .output()
            .expect("the honest client runs");
        assert!(
            out.status.success(),
            "the honest client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("the client's JSON");
        let mut latencies_ms: Vec<f64> = report["latencies_ms"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        latencies_ms.sort_by(f64::total_cmp);
        let failures = report["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|failure| failure.as_str().unwrap_or_default().to_string())
            .collect();
        Honest {
            latencies_ms,
            failures,
        }
    }

    fn line(&self, label: &str) -> String {
        format!(
            "{label:<15} {} calls  p50 {:>8.1} ms  p99 {:>8.1} ms",
            self.latencies_ms.len(),
            percentile(&self.latencies_ms, 50.0),
            percentile(&self.latencies_ms, 99.0)
        )
    }
}

/// `der` as a PEM block labelled `label`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Makes the node in `dir` serve HTTPS with a fresh self-signed certificate for 127.0.0.1;
/// returns the certificate's path and a client configuration trusting it.
fn serve_https(dir: &Path) -> (std::path::PathBuf, Arc<rustls::ClientConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dir.join("api.crt");
    let key = dir.join("api.key");
    std::fs::write(&cert, pem("CERTIFICATE", certified.cert.der())).unwrap();
    std::fs::write(
        &key,
        pem("PRIVATE KEY", &certified.signing_key.serialize_der()),
    )
    .unwrap();
    let config = dir.join("threatlog.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "# tls_cert = \"/etc/threatlog/api.crt\"",
            &format!("tls_cert = \"{}\"", cert.display()),
        )
        .replace(
            "# tls_key = \"/etc/threatlog/api.key\"",
            &format!("tls_key = \"{}\"", key.display()),
        );
    std::fs::write(&config, text).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    (cert, Arc::new(client))
}

/// Imports one event of [`ATTRIBUTES_HELD`] attributes, shared with every community.
fn hold_attributes(dir: &Path) {
    let attributes: Vec<Value> = (0..ATTRIBUTES_HELD)
        .map(|n| json!({"type": "ip-dst", "value": common::workload::address(n)}))
        .collect();
    let event = json!({"Event": {"info": "held for the load test", "distribution": 3,
        "Attribute": attributes}});
    let path = dir.join("held.json");
    std::fs::write(&path, event.to_string()).unwrap();
    ok(dir, &["event", "import", path.to_str().unwrap()]);
}

/// Pairs a new peer of organisation `org` that neither pulls from nor pushes to the node;
/// its key's seed.
fn pair_peer(dir: &Path, org: &str) -> [u8; 32] {
    let peer = Hostile::of(Org::new(org));
    ok(
        dir,
        &[
            "peer",
            "add",
            &peer.card(),
            "--relationship",
            "external",
            "--no-pull",
            "--no-push",
        ],
    );
    peer.key.seed()
}

#[test]
#[ignore = "needs PyMISP: run by `make test-load`"]
fn an_honest_pymisp_client_is_served_while_the_node_is_attacked_on_every_front() {
    let python = std::env::var("THREATLOG_PYMISP_PYTHON")
        .expect("THREATLOG_PYMISP_PYTHON names a python with PyMISP (make test-load sets it)");
    let (_temp, dir) = common::node();
    let (ca, tls) = serve_https(&dir);
    let flood_key = accounts::org_member(&dir, "Flood Org", "read-only", "flood@flood.example");
    hold_attributes(&dir);
    let follower = pair_peer(&dir, "Follower Org");
    let staller = pair_peer(&dir, "Staller Org");
    let card = ok(&dir, &["peer", "card"]);
    let node_key = threatlog::sync::peer::Card::decode(card.trim())
        .unwrap()
        .key;
    let server = Server::start(&dir);
    let key = accounts::admin_key(&dir);
    let url = format!("https://{}", server.addr);
    let target = Target {
        api: server.addr.parse().unwrap(),
        tls: Some(tls),
        key: flood_key,
        oversized: threatlog::config::API_BODY_BYTES_MAX + 1,
        sync: Some(SyncTarget {
            addr: std::fs::read_to_string(dir.join("run/sync.addr"))
                .unwrap()
                .trim()
                .to_string(),
            node: node_key,
            follower,
            staller,
        }),
    };

    let quiet = Honest::run(&python, &url, &key, &ca, "quiet");
    let attack = Attack::start(&target, attack::FULL);
    let started = std::time::Instant::now();
    std::thread::sleep(RAMP);
    let attacked = Honest::run(&python, &url, &key, &ca, "attacked");
    std::thread::sleep(ATTACK_MIN.saturating_sub(started.elapsed()));
    let tally = attack.tally.figures();
    drop(attack);
    let peak_mib = attack::peak_rss_mib(server.pid());

    println!("honest PyMISP client ({HONEST_ROUNDS} adds and searches each):");
    println!("  {}", quiet.line("without attack"));
    println!("  {}", attacked.line("under attack"));
    println!("what the node did to the attackers:");
    for (name, count) in &tally {
        println!("  {name:<32} {count}");
    }
    println!("node peak memory: {peak_mib} MiB (bound {RSS_MAX_MIB} MiB)");

    assert_eq!(quiet.failures, Vec::<String>::new());
    assert_eq!(attacked.failures, Vec::<String>::new());
    assert_eq!(attacked.latencies_ms.len(), 2 * HONEST_ROUNDS);
    assert!(
        peak_mib > 0 && peak_mib < RSS_MAX_MIB,
        "peak {peak_mib} MiB"
    );
    // The attack was real: every front met its limit.
    let count = |name: &str| tally.iter().find(|(n, _)| *n == name).unwrap().1;
    assert!(count("slowloris connections cut") > 0);
    assert!(count("idle connections cut") > 0);
    assert!(count("% searches answered") + count("% searches refused (400)") > 0);
    assert!(count("oversized bodies refused (413)") > 0);
    assert!(count("requests over a budget (429)") > 0);
    assert!(count("follow-pulls opened") >= threatlog::sync::PULLS_PER_PEER_MAX as u64);
    assert!(count("follow-pulls refused") > 0);
}
