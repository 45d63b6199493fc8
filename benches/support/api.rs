//! The API benchmark: events added over HTTP by concurrent keep-alive clients, value searches
//! (`/attributes/restSearch`) against a node holding many attributes, and an honest client's
//! adds and searches without and then under the load test's attack
//! ([`crate::common::attack`]).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::http::Connection;
use super::{figure, rate, JsonOption, Scratch};
use crate::common::attack::{self, percentile, Attack, SyncTarget, Target};
use crate::common::hostile::Hostile;
use crate::common::identity::Org;
use crate::common::workload::{address, synthetic_event};
use threatlog::change;
use threatlog::node::Node;
use threatlog::sync::peer::{self, PeerSettings};

/// The ingest figure the API is held to: attributes per second over HTTP.
const HTTP_ATTRIBUTES_TARGET_PER_S: f64 = 20_000.0;
/// The search figure the API is held to: 99th-percentile value search latency.
const SEARCH_P99_TARGET_MS: f64 = 10.0;
/// Events appended per write while topping the node up to the search size.
const TOP_UP_EVENTS_PER_WRITE: usize = 20;
/// The honest client's throughput under attack, as a share of its unattacked throughput, the
/// API is held to.
const ATTACKED_THROUGHPUT_TARGET: f64 = 0.5;
/// The honest client's p99 latency under attack, as a multiple of its unattacked p99, the API
/// is held to.
const ATTACKED_P99_TARGET: f64 = 5.0;

/// Options of the API benchmark.
#[derive(Clone, Debug, clap::Parser)]
pub struct ApiOptions {
    /// Events added over HTTP.
    #[arg(long, default_value_t = 40)]
    pub events: usize,
    /// Attributes per event added over HTTP.
    #[arg(long, default_value_t = 1000)]
    pub attributes_per_event: usize,
    /// Concurrent HTTP clients, each on one keep-alive connection.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Attributes the node holds before the searches (topped up directly, not over HTTP).
    #[arg(long, default_value_t = 1_000_000)]
    pub search_attributes: usize,
    /// Value searches to time.
    #[arg(long, default_value_t = 1000)]
    pub searches: usize,
    /// Rounds (an add and a search each) of the honest client: before, under and after the
    /// attack (enough for the attack's steady state, after the peer's pulls caught up, to
    /// weigh on the figures).
    #[arg(long, default_value_t = 1000)]
    pub honest_rounds: usize,
    /// Size of the attack, in percent of the load test's (500 slowloris, 100 idle, 25 `%`
    /// searchers, 25 oversized bodies, 40 follow-pulls and a stalled pull).
    #[arg(long, default_value_t = 100)]
    pub attack_percent: usize,
    /// Seconds the attack runs before the honest client starts.
    #[arg(long, default_value_t = 5)]
    pub attack_ramp_s: u64,
    /// Print one JSON object with every figure instead of text.
    #[arg(long)]
    pub json: bool,
}

impl JsonOption for ApiOptions {
    fn json(&self) -> bool {
        self.json
    }
}

/// The body of an `/events/add` request: `count` ip-dst attributes numbered from `first`.
fn event_body(index: usize, first: usize, count: usize) -> Vec<u8> {
    let attributes: Vec<Value> = (first..first + count)
        .map(|n| json!({"type": "ip-dst", "value": address(n)}))
        .collect();
    json!({"Event": {"info": format!("bench api event {index}"), "distribution": 1,
        "Attribute": attributes}})
    .to_string()
    .into_bytes()
}

/// The node's listeners in the benchmark: the API and the sync service on free loopback
/// ports, on runtimes (as `threatlog serve` has them) that live as long as this.
struct Served {
    runtime: tokio::runtime::Runtime,
    sync_runtime: tokio::runtime::Runtime,
    api: SocketAddr,
    sync: SocketAddr,
}

/// Starts the API (with its connection limits, as `threatlog serve` does) and the sync
/// service for `node`.
fn start_server(node: Arc<Node>) -> Result<Served> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("node")
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let api = listener.local_addr()?;
    let limits = threatlog::api::connections::Limits::of(&node.config.api);
    let app = threatlog::api::router(threatlog::api::ApiState::new(Arc::clone(&node)));
    runtime.spawn(threatlog::api::connections::serve(
        listener,
        None,
        app,
        limits,
        std::future::pending(),
    ));
    let (bound, sync) = std::sync::mpsc::channel();
    let service = threatlog::sync::serve(
        node,
        "127.0.0.1:0".into(),
        std::future::pending(),
        move |addr| {
            let _ = bound.send(addr);
        },
    );
    let sync_runtime = threatlog::sync::runtime()?;
    sync_runtime.spawn(async move {
        if let Err(error) = service.await {
            eprintln!("sync service: {error}");
        }
    });
    let sync = sync.recv().context("the sync service's address")?;
    Ok(Served {
        runtime,
        sync_runtime,
        api,
        sync,
    })
}

/// Adds `options.events` events over HTTP from `options.clients` keep-alive clients at once;
/// returns the seconds it took.
fn add_over_http(options: &ApiOptions, addr: SocketAddr, key: &str) -> Result<f64> {
    let per_event = options.attributes_per_event.max(1);
    let clients = options.clients.max(1);
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let key = key.to_string();
            let events: Vec<usize> = (client..options.events).step_by(clients).collect();
            std::thread::spawn(move || -> Result<()> {
                let mut connection = Connection::open(addr, &key)?;
                for index in events {
                    let body = event_body(index, index * per_event, per_event);
                    let (status, response) = connection.post("/events/add", &body)?;
                    if status != 200 {
                        bail!(
                            "events/add answered {status}: {}",
                            String::from_utf8_lossy(&response)
                        );
                    }
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Appends events directly until the node holds `options.search_attributes` attributes
/// (`held` already); returns how many it holds.
fn top_up(options: &ApiOptions, node: &Node, mut held: usize) -> Result<usize> {
    let per_event = options.attributes_per_event.max(1);
    let actor = node.system_actor();
    let mut event_index = options.events;
    while held < options.search_attributes {
        let mut drafts = Vec::new();
        for _ in 0..TOP_UP_EVENTS_PER_WRITE {
            if held >= options.search_attributes {
                break;
            }
            let count = per_event.min(options.search_attributes - held);
            let event = synthetic_event_from(event_index, held, count)?;
            drafts.extend(change::event_drafts(&event, &actor));
            held += count;
            event_index += 1;
        }
        node.append(drafts)?;
    }
    Ok(held)
}

/// Times `options.searches` value searches, each for one of the `held` values; returns the
/// latencies in milliseconds, sorted.
fn time_searches(
    options: &ApiOptions,
    addr: SocketAddr,
    key: &str,
    held: usize,
) -> Result<Vec<f64>> {
    let mut connection = Connection::open(addr, key)?;
    let mut latencies_ms = Vec::with_capacity(options.searches);
    for search in 0..options.searches {
        let n = (search.wrapping_mul(2_654_435_761)) % held.max(1);
        let body = json!({"value": address(n), "returnFormat": "json"}).to_string();
        let started = Instant::now();
        let (status, response) = connection.post("/attributes/restSearch", body.as_bytes())?;
        latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let found: Value = serde_json::from_slice(&response).context("search response")?;
        let hits = found["response"]["Attribute"]
            .as_array()
            .map_or(0, Vec::len);
        if status != 200 || hits != 1 {
            bail!(
                "search for {} answered {status} with {hits} attributes, expected 1",
                address(n)
            );
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    Ok(latencies_ms)
}

/// What the honest client measured: how long its calls took in all, and each one's latency in
/// milliseconds, sorted.
struct HonestRun {
    seconds: f64,
    latencies_ms: Vec<f64>,
}

impl HonestRun {
    /// Calls per second.
    fn calls_per_s(&self) -> f64 {
        rate(self.latencies_ms.len(), self.seconds)
    }

    /// Two runs as one: the calls of both over the time of both, every latency.
    fn pooled(mut self, other: HonestRun) -> HonestRun {
        self.latencies_ms.extend(other.latencies_ms);
        self.latencies_ms.sort_by(f64::total_cmp);
        HonestRun {
            seconds: self.seconds + other.seconds,
            latencies_ms: self.latencies_ms,
        }
    }
}

/// The honest client: `rounds` times, adds an event of one new attribute and searches for it,
/// on one keep-alive connection; every call must succeed.
fn honest_client(addr: SocketAddr, key: &str, rounds: usize, label: &str) -> Result<HonestRun> {
    let mut connection = Connection::open(addr, key)?;
    let mut latencies_ms = Vec::with_capacity(2 * rounds);
    let started = Instant::now();
    for round in 0..rounds {
        let value = format!("honest-{label}-{round}.example.org");
        let add = json!({"Event": {"info": format!("honest {label} {round}"),
            "Attribute": [{"type": "domain", "value": value}]}});
        let search = json!({"value": value, "returnFormat": "json"});
        for (path, body) in [("/events/add", add), ("/attributes/restSearch", search)] {
            let call = Instant::now();
            let (status, response) = connection.post(path, body.to_string().as_bytes())?;
            latencies_ms.push(call.elapsed().as_secs_f64() * 1000.0);
            if status != 200 {
                bail!(
                    "honest {path} answered {status}: {}",
                    String::from_utf8_lossy(&response)
                );
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);
    Ok(HonestRun {
        seconds,
        latencies_ms,
    })
}

/// Who attacks the benchmark's node: a flooding read-only user of another organisation, and
/// two paired peers (a follower and a staller) that the node neither pulls from nor pushes to.
struct Attackers {
    /// The flooding user's API key.
    key: String,
    /// Seed of the peer opening follow-pulls.
    follower: [u8; 32],
    /// Seed of the peer that never reads its pull.
    staller: [u8; 32],
}

impl Attackers {
    /// Adds the attackers to `node`, before its sync service starts (it reads the peers once).
    fn add(node: &Node) -> Result<Attackers> {
        let flood_org = threatlog::model::Organisation {
            uuid: uuid::Uuid::new_v4(),
            name: "Flood Org".into(),
        };
        node.add_organisation(&flood_org, false)?;
        let key = node.add_user("flood@flood.example", flood_org.uuid, 6)?;
        let pair = |org: &str| -> Result<[u8; 32]> {
            let peer = Hostile::of(Org::new(org));
            let card = threatlog::sync::peer::Card::decode(&peer.card())?;
            let settings = PeerSettings {
                pull: Some(false),
                push: Some(false),
                ..PeerSettings::default()
            };
            peer::pair(&node.store, &node.origin(), card, settings)?;
            Ok(peer.key.seed())
        };
        Ok(Attackers {
            key,
            follower: pair("Follower Org")?,
            staller: pair("Staller Org")?,
        })
    }

    /// The attack on `node` served by `served`.
    fn target(&self, node: &Node, served: &Served) -> Target {
        Target {
            api: served.api,
            tls: None,
            key: self.key.clone(),
            oversized: node.config.api.body_bytes_max + 1,
            sync: Some(SyncTarget {
                addr: served.sync.to_string(),
                node: node.origin(),
                follower: self.follower,
                staller: self.staller,
            }),
        }
    }
}

/// Most time the node is given to finish the attackers' work still under way once they are
/// gone (their searches run to their end).
const SETTLE_MAX: std::time::Duration = std::time::Duration::from_secs(120);

/// Waits until `node` has run no work for a second (or [`SETTLE_MAX`] passed).
fn settle(node: &Node) {
    let started = Instant::now();
    let mut idle_since = Instant::now();
    while started.elapsed() < SETTLE_MAX && idle_since.elapsed().as_secs() < 1 {
        if node.turns.held(threatlog::turns::Tenant::Node).0 > 0 {
            idle_since = Instant::now();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Runs the API benchmark: its figures.
pub fn figures(options: &ApiOptions) -> Result<Value> {
    let scratch = Scratch::new("api")?;
    let dir = scratch.0.join("node");
    let key = Node::init(&dir, "Bench Org", None, false)?.admin_key;
    let node = Arc::new(Node::open(&dir)?);
    let attackers = Attackers::add(&node)?;
    let served = start_server(Arc::clone(&node))?;
    let target = attackers.target(&node, &served);
    let addr = served.api;

    let per_event = options.attributes_per_event.max(1);
    let http_seconds = add_over_http(options, addr, &key)?;
    let http_attributes = options.events * per_event;
    // Top up to the search size with direct appends (the searches, not this, are timed).
    let held = top_up(options, &node, http_attributes)?;
    let latencies_ms = time_searches(options, addr, &key, held)?;

    // The unattacked figures pool a run before the attack and one after it, so that what
    // changes with time alone (compactions, a growing log) weighs on both sides alike.
    let before = honest_client(addr, &key, options.honest_rounds, "quiet")?;
    let attack = Attack::start(&target, attack::FULL.scaled(options.attack_percent));
    std::thread::sleep(std::time::Duration::from_secs(options.attack_ramp_s));
    let attacked = honest_client(addr, &key, options.honest_rounds, "attacked");
    let tally = attack.tally.figures();
    drop(attack);
    let attacked = attacked?;
    settle(&node);
    let after = honest_client(addr, &key, options.honest_rounds, "after")?;
    let quiet = before.pooled(after);
    drop(served.runtime);
    drop(served.sync_runtime);

    let ingest_rate = rate(http_attributes, http_seconds);
    let p99_ms = percentile(&latencies_ms, 99.0);
    let quiet_p99 = percentile(&quiet.latencies_ms, 99.0);
    let attacked_p99 = percentile(&attacked.latencies_ms, 99.0);
    let attacked_tally: serde_json::Map<String, Value> = tally
        .into_iter()
        .map(|(name, count)| (name.to_string(), json!(count)))
        .collect();
    Ok(json!({
        "http_events": options.events,
        "attributes_per_event": per_event,
        "clients": options.clients.max(1),
        "http_attributes_per_s": ingest_rate,
        "http_attributes_target_per_s": HTTP_ATTRIBUTES_TARGET_PER_S,
        "http_attributes_vs_target": ingest_rate / HTTP_ATTRIBUTES_TARGET_PER_S,
        "search_attributes_held": held,
        "searches": options.searches,
        "search_p50_ms": percentile(&latencies_ms, 50.0),
        "search_p99_ms": p99_ms,
        "search_p99_target_ms": SEARCH_P99_TARGET_MS,
        "search_p99_vs_target": p99_ms / SEARCH_P99_TARGET_MS,
        "honest_calls": quiet.latencies_ms.len(),
        "honest_calls_per_s": quiet.calls_per_s(),
        "honest_p50_ms": percentile(&quiet.latencies_ms, 50.0),
        "honest_p99_ms": quiet_p99,
        "attack_percent": options.attack_percent,
        "attacked_calls_per_s": attacked.calls_per_s(),
        "attacked_p50_ms": percentile(&attacked.latencies_ms, 50.0),
        "attacked_p99_ms": attacked_p99,
        "attacked_throughput_ratio": attacked.calls_per_s() / quiet.calls_per_s().max(1e-9),
        "attacked_throughput_target": ATTACKED_THROUGHPUT_TARGET,
        "attacked_p99_ratio": attacked_p99 / quiet_p99.max(1e-9),
        "attacked_p99_target": ATTACKED_P99_TARGET,
        "attack": attacked_tally,
    }))
}

/// Prints the figures of [`figures`] as text.
pub fn text(options: &ApiOptions, figures: &Value) {
    let f = |name: &str| figure(figures, name);
    println!(
        "HTTP ingest: {} events x {} attributes, {} keep-alive clients",
        options.events, figures["attributes_per_event"], figures["clients"]
    );
    println!(
        "  attributes/s      {:>10.0}  (target >= {HTTP_ATTRIBUTES_TARGET_PER_S}, ratio {:.2})",
        f("http_attributes_per_s"),
        f("http_attributes_vs_target")
    );
    println!(
        "value search: {} searches, node holding {} attributes",
        options.searches, figures["search_attributes_held"]
    );
    println!("  p50 ms            {:>10.2}", f("search_p50_ms"));
    println!(
        "  p99 ms            {:>10.2}  (target <= {SEARCH_P99_TARGET_MS}, ratio {:.2})",
        f("search_p99_ms"),
        f("search_p99_vs_target")
    );
    println!(
        "honest client: {} adds and searches without the attack (before and after it), and as many under the load test's attack ({}%)",
        figures["honest_calls"], figures["attack_percent"]
    );
    println!(
        "  calls/s           {:>10.1}  under attack {:>10.1}  (ratio {:.2}, target >= {ATTACKED_THROUGHPUT_TARGET})",
        f("honest_calls_per_s"),
        f("attacked_calls_per_s"),
        f("attacked_throughput_ratio")
    );
    println!(
        "  p50 ms            {:>10.2}  under attack {:>10.2}",
        f("honest_p50_ms"),
        f("attacked_p50_ms")
    );
    println!(
        "  p99 ms            {:>10.2}  under attack {:>10.2}  (ratio {:.2}, target <= {ATTACKED_P99_TARGET})",
        f("honest_p99_ms"),
        f("attacked_p99_ms"),
        f("attacked_p99_ratio")
    );
    if let Some(attack) = figures["attack"].as_object() {
        println!("what the node did to the attackers:");
        for (name, count) in attack {
            println!("  {name:<32} {count}");
        }
    }
}

/// A synthetic event whose attribute values are numbered from `first`.
fn synthetic_event_from(
    index: usize,
    first: usize,
    count: usize,
) -> Result<threatlog::model::Event> {
    let mut event = synthetic_event(index, 0)?;
    for n in first..first + count {
        let attribute = threatlog::model::Attribute::from_json(
            &json!({"type": "ip-dst", "value": address(n)}),
        )?;
        event.attributes.push(attribute);
    }
    Ok(event)
}
