//! The API benchmark: events added over HTTP by concurrent keep-alive clients, and value
//! searches (`/attributes/restSearch`) against a node holding many attributes.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::http::Connection;
use super::{figure, rate, JsonOption, Scratch};
use crate::common::workload::{address, synthetic_event};
use threatlog::change;
use threatlog::node::Node;

/// The ingest figure the API is held to: attributes per second over HTTP.
const HTTP_ATTRIBUTES_TARGET_PER_S: f64 = 20_000.0;
/// The search figure the API is held to: 99th-percentile value search latency.
const SEARCH_P99_TARGET_MS: f64 = 10.0;
/// Events appended per write while topping the node up to the search size.
const TOP_UP_EVENTS_PER_WRITE: usize = 20;

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

/// Starts the API for `node` on a free loopback port, on a runtime that lives as long as the
/// returned guard.
fn start_server(node: Arc<Node>) -> Result<(tokio::runtime::Runtime, SocketAddr)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let app = threatlog::api::router(threatlog::api::ApiState::new(node));
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((runtime, addr))
}

/// The `p`th percentile (0–100) of sorted latencies, in milliseconds.
fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted_ms.len() - 1) as f64).round() as usize;
    sorted_ms[rank.min(sorted_ms.len() - 1)]
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

/// Runs the API benchmark: its figures.
pub fn figures(options: &ApiOptions) -> Result<Value> {
    let scratch = Scratch::new("api")?;
    let dir = scratch.0.join("node");
    let key = Node::init(&dir, "Bench Org", None, false)?.admin_key;
    let node = Arc::new(Node::open(&dir)?);
    let (runtime, addr) = start_server(Arc::clone(&node))?;

    let per_event = options.attributes_per_event.max(1);
    let http_seconds = add_over_http(options, addr, &key)?;
    let http_attributes = options.events * per_event;
    // Top up to the search size with direct appends (the searches, not this, are timed).
    let held = top_up(options, &node, http_attributes)?;
    let latencies_ms = time_searches(options, addr, &key, held)?;
    drop(runtime);

    let ingest_rate = rate(http_attributes, http_seconds);
    let p99_ms = percentile(&latencies_ms, 99.0);
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
