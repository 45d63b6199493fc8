//! `threatlog bench api`: events added over HTTP by concurrent keep-alive clients, and value
//! searches (`/attributes/restSearch`) against a node holding many attributes.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::http::Connection;
use super::{rate, synthetic_event, Scratch};
use crate::change;
use crate::node::Node;

/// The ingest figure the API is held to: attributes per second over HTTP.
const HTTP_ATTRIBUTES_TARGET_PER_S: f64 = 20_000.0;
/// The search figure the API is held to: 99th-percentile value search latency.
const SEARCH_P99_TARGET_MS: f64 = 10.0;

/// Options of `threatlog bench api`.
#[derive(Clone, Debug, clap::Args)]
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

/// The body of an `/events/add` request: `count` ip-dst attributes numbered from `first`.
fn event_body(index: usize, first: usize, count: usize) -> Vec<u8> {
    let attributes: Vec<serde_json::Value> = (first..first + count)
        .map(|n| json!({"type": "ip-dst", "value": value(n)}))
        .collect();
    json!({"Event": {"info": format!("bench api event {index}"), "distribution": 1,
        "Attribute": attributes}})
    .to_string()
    .into_bytes()
}

/// The value of the `n`th attribute, the same as [`synthetic_event`] gives it.
fn value(n: usize) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// Starts the API for `node` on a free loopback port, on a runtime that lives as long as the
/// returned guard.
fn start_server(node: Arc<Node>) -> Result<(tokio::runtime::Runtime, SocketAddr)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let app = crate::api::router(crate::api::ApiState::new(node));
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

/// Runs the API benchmark and prints its figures.
pub fn run(options: &ApiOptions) -> Result<()> {
    let scratch = Scratch::new("api")?;
    let dir = scratch.0.join("node");
    let key = Node::init(&dir, "Bench Org", None, false)?.admin_key;
    let node = Arc::new(Node::open(&dir)?);
    let (runtime, addr) = start_server(Arc::clone(&node))?;

    let per_event = options.attributes_per_event.max(1);
    let clients = options.clients.max(1);
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let key = key.clone();
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
    let http_seconds = start.elapsed().as_secs_f64();
    let http_attributes = options.events * per_event;

    // Top up to the search size with direct appends (the searches, not this, are timed).
    let actor = node.system_actor();
    let mut held = http_attributes;
    let mut event_index = options.events;
    while held < options.search_attributes {
        let mut drafts = Vec::new();
        for _ in 0..20 {
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

    let mut connection = Connection::open(addr, &key)?;
    let mut latencies_ms = Vec::with_capacity(options.searches);
    for search in 0..options.searches {
        let n = (search.wrapping_mul(2_654_435_761)) % held.max(1);
        let body = json!({"value": value(n), "returnFormat": "json"}).to_string();
        let started = Instant::now();
        let (status, response) = connection.post("/attributes/restSearch", body.as_bytes())?;
        latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let found: serde_json::Value =
            serde_json::from_slice(&response).context("search response")?;
        let hits = found["response"]["Attribute"]
            .as_array()
            .map_or(0, Vec::len);
        if status != 200 || hits != 1 {
            bail!(
                "search for {} answered {status} with {hits} attributes, expected 1",
                value(n)
            );
        }
    }
    drop(runtime);
    latencies_ms.sort_by(f64::total_cmp);

    let ingest_rate = rate(http_attributes, http_seconds);
    let (p50_ms, p99_ms) = (
        percentile(&latencies_ms, 50.0),
        percentile(&latencies_ms, 99.0),
    );
    let ingest_ratio = ingest_rate / HTTP_ATTRIBUTES_TARGET_PER_S;
    let search_ratio = p99_ms / SEARCH_P99_TARGET_MS;
    let figures = json!({
        "http_events": options.events,
        "attributes_per_event": per_event,
        "clients": clients,
        "http_attributes_per_s": ingest_rate,
        "http_attributes_target_per_s": HTTP_ATTRIBUTES_TARGET_PER_S,
        "http_attributes_vs_target": ingest_ratio,
        "search_attributes_held": held,
        "searches": options.searches,
        "search_p50_ms": p50_ms,
        "search_p99_ms": p99_ms,
        "search_p99_target_ms": SEARCH_P99_TARGET_MS,
        "search_p99_vs_target": search_ratio,
    });
    if options.json {
        println!("{figures}");
        return Ok(());
    }
    println!(
        "HTTP ingest: {} events x {per_event} attributes, {clients} keep-alive clients",
        options.events
    );
    println!(
        "  attributes/s      {:>10.0}  (target >= {HTTP_ATTRIBUTES_TARGET_PER_S}, ratio {ingest_ratio:.2})",
        ingest_rate
    );
    println!(
        "value search: {} searches, node holding {held} attributes",
        options.searches
    );
    println!("  p50 ms            {p50_ms:>10.2}");
    println!(
        "  p99 ms            {:>10.2}  (target <= {SEARCH_P99_TARGET_MS}, ratio {search_ratio:.2})",
        p99_ms
    );
    Ok(())
}

/// A synthetic event whose attribute values are numbered from `first`.
fn synthetic_event_from(index: usize, first: usize, count: usize) -> Result<crate::model::Event> {
    let mut event = synthetic_event(index, 0)?;
    for n in first..first + count {
        let attribute =
            crate::model::Attribute::from_json(&json!({"type": "ip-dst", "value": value(n)}))?;
        event.attributes.push(attribute);
    }
    Ok(event)
}
