//! The sync benchmark: node A holds published events, node B (a separate `threatlog serve`
//! process, so that its peak RSS means something) pulls all of A's log over gRPC with mutual
//! TLS on loopback. Compared, in the same run, with the raw rate of strictly verifying the same
//! stored entries and of streaming the same bytes over tonic without processing.

use anyhow::{bail, Context, Result};
use prost::bytes::Bytes;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{figure, rate, JsonOption, Scratch};
use crate::common::engine::card_of;
use crate::common::server::Server;
use crate::common::workload::synthetic_event;
use threatlog::change;
use threatlog::log::{EntryId, OriginKey, VerifiedEntry};
use threatlog::node::Node;
use threatlog::proto::sync as wire;
use threatlog::proto::RecordKind;
use threatlog::store::Held;
use threatlog::sync::peer::{self, Card, PeerSettings};
use threatlog::sync::{SEGMENT_BYTES_MAX, SEGMENT_ITEMS_MAX};
use threatlog::view::Table;

/// Longest the pull may take before the benchmark gives up.
const PULL_SECONDS_MAX: u64 = 3_600;
/// Interval between progress polls of B.
const POLL_MS: u64 = 100;
/// Distribution of A's events: all communities, so that every entry reaches B in full.
const DISTRIBUTION_ALL: u8 = 3;
/// Longest A's sync service may take to start.
const START_SECONDS_MAX: u64 = 60;

/// Options of the sync benchmark.
#[derive(Clone, Debug, clap::Parser)]
pub struct SyncOptions {
    /// Published events on A.
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
    /// Attributes per event.
    #[arg(long, default_value_t = 100)]
    pub attributes: usize,
    /// Events committed per durable write while filling A.
    #[arg(long, default_value_t = 20)]
    pub events_per_write: usize,
    /// Print one JSON object with every figure instead of text.
    #[arg(long)]
    pub json: bool,
}

impl JsonOption for SyncOptions {
    fn json(&self) -> bool {
        self.json
    }
}

/// Fills A with `options.events` published events directly through the node API; returns the
/// seconds it took.
fn fill(a: &Node, options: &SyncOptions) -> Result<f64> {
    let actor = a.system_actor();
    let fill_start = Instant::now();
    let mut index = 0;
    while index < options.events {
        let count = options.events_per_write.max(1).min(options.events - index);
        let mut drafts = Vec::new();
        for i in index..index + count {
            let mut event = synthetic_event(i, options.attributes)?;
            // Level 3 and TLP green: released in full to B, an external peer.
            event.distribution = DISTRIBUTION_ALL;
            event.published = true;
            drafts.extend(change::event_drafts(&event, &actor));
        }
        a.append(drafts)?;
        index += count;
    }
    Ok(fill_start.elapsed().as_secs_f64())
}

/// Pairs A (serving at `a_addr`) and B (stopped, in `b_dir`): B pulls from A, A neither
/// pulls from nor pushes to B.
fn pair(a: &Node, a_addr: SocketAddr, b_dir: &Path) -> Result<()> {
    let b = Node::open(b_dir)?;
    peer::pair(
        &a.store,
        &a.origin(),
        card_of(&b),
        PeerSettings {
            pull: Some(false),
            push: Some(false),
            ..PeerSettings::default()
        },
    )?;
    a.notify_peers_changed();
    peer::pair(
        &b.store,
        &b.origin(),
        Card {
            endpoint: a_addr.to_string(),
            ..card_of(a)
        },
        PeerSettings {
            pull: Some(true),
            push: Some(false),
            ..PeerSettings::default()
        },
    )?;
    Ok(())
}

/// What B's pull measured.
struct Pulled {
    /// Seconds from B's start until it caught up with A.
    seconds: f64,
    /// B's peak RSS in KiB, when /proc tells.
    peak_rss_kib: Option<u64>,
}

/// Serves A's sync on loopback, starts B as its own `threatlog serve` process and waits
/// until B's cursor on A reaches A's head; also streams A's stored entries raw over tonic on
/// the same runtime. Returns the pull and the raw stream rate.
fn pull_into_b(a: &Arc<Node>, b_dir: &Path, stored: &[Bytes]) -> Result<(Pulled, f64)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_send, ready) = std::sync::mpsc::channel();
    let serve_node = Arc::clone(a);
    let server = runtime.spawn(async move {
        threatlog::sync::serve(
            serve_node,
            "127.0.0.1:0".into(),
            async move {
                let _ = stopped.await;
            },
            move |addr| {
                let _ = ready_send.send(addr);
            },
        )
        .await
    });
    let a_addr = ready
        .recv_timeout(Duration::from_secs(START_SECONDS_MAX))
        .context("A's sync service did not start")?;
    pair(a, a_addr, b_dir)?;
    let head = a.store.last_arrival();

    // B pulls everything, as its own process.
    let pull_start = Instant::now();
    let b = Server::start(b_dir);
    let caught_up = wait_caught_up(&b, head);
    let seconds = pull_start.elapsed().as_secs_f64();
    let peak_rss_kib = peak_rss_kib(b.pid());
    b.stop();
    caught_up?;
    let _ = stop.send(());
    let _ = runtime.block_on(server);
    let stream_per_s = runtime.block_on(stream_rate(stored))?;
    Ok((
        Pulled {
            seconds,
            peak_rss_kib,
        },
        stream_per_s,
    ))
}

/// Runs the sync benchmark: its figures.
pub fn figures(options: &SyncOptions) -> Result<Value> {
    let scratch = Scratch::new("sync")?;
    let (a_dir, b_dir) = (scratch.0.join("a"), scratch.0.join("b"));
    Node::init(&a_dir, "Bench Org A", None, false)?;
    Node::init(&b_dir, "Bench Org B", None, false)?;
    let a = Arc::new(Node::open(&a_dir)?);
    let fill_seconds = fill(&a, options)?;
    let stored = stored_entries(&a)?;
    let attributes = options.events * options.attributes;

    let (pulled, stream_per_s) = pull_into_b(&a, &b_dir, &stored)?;
    let (b_entries, b_attributes) = held_by_b(&b_dir, &a.origin(), stored.len() as u64)?;
    if b_entries != stored.len() as u64 || b_attributes != attributes as u64 {
        bail!(
            "B holds {b_entries} of A's {} entries in full and {b_attributes} of {attributes} \
             attributes: the figures would not measure a full pull",
            stored.len()
        );
    }

    let verify_per_s = verify_rate(&stored)?;
    let entries = stored.len();
    let bytes: usize = stored.iter().map(Bytes::len).sum();
    let entries_per_s = rate(entries, pulled.seconds);
    Ok(json!({
        "events": options.events,
        "attributes_per_event": options.attributes,
        "attributes": attributes,
        "b_attributes": b_attributes,
        "entries": entries,
        "bytes": bytes,
        "fill_seconds": fill_seconds,
        "pull_seconds": pulled.seconds,
        "attributes_per_s": rate(attributes, pulled.seconds),
        "entries_per_s": entries_per_s,
        "raw_verify_entries_per_s": verify_per_s,
        "raw_stream_entries_per_s": stream_per_s,
        "entries_vs_raw_verify": entries_per_s / verify_per_s.max(1e-9),
        "entries_vs_raw_stream": entries_per_s / stream_per_s.max(1e-9),
        "b_peak_rss_mib": pulled.peak_rss_kib.map(|kib| kib as f64 / 1024.0),
    }))
}

/// Prints the figures of [`figures`] as text.
pub fn text(options: &SyncOptions, figures: &Value) {
    let f = |name: &str| figure(figures, name);
    println!(
        "A: {} published events x {} attributes = {} entries ({:.1} MiB), filled in {:.1}s",
        options.events,
        options.attributes,
        figures["entries"],
        f("bytes") / (1024.0 * 1024.0),
        f("fill_seconds")
    );
    println!(
        "B pulled everything in {:.2}s and holds all {} attributes",
        f("pull_seconds"),
        figures["b_attributes"]
    );
    println!("  attributes/s            {:>12.0}", f("attributes_per_s"));
    println!("  entries/s               {:>12.0}", f("entries_per_s"));
    println!(
        "  raw strict verifies/s   {:>12.0}  (ratio {:.3})",
        f("raw_verify_entries_per_s"),
        f("entries_vs_raw_verify")
    );
    println!(
        "  raw tonic stream/s      {:>12.0}  (ratio {:.3})",
        f("raw_stream_entries_per_s"),
        f("entries_vs_raw_stream")
    );
    if figures["b_peak_rss_mib"].is_null() {
        println!("  B peak RSS              unknown (no /proc)");
    } else {
        println!(
            "  B peak RSS              {:>12.1} MiB",
            f("b_peak_rss_mib")
        );
    }
}

/// Every stored entry of A, in arrival order.
fn stored_entries(node: &Node) -> Result<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        let batch = node.store.arrivals_after(cursor, 4096)?;
        let Some((last, _)) = batch.last() else {
            return Ok(out);
        };
        cursor = *last;
        for (_, id) in batch {
            if let Some(Held::Entry(entry)) = node.store.held(&id)? {
                out.push(entry.stored().clone());
            }
        }
    }
}

/// How many of `origin`'s first `count` entries B holds in full (not as stubs), and how many
/// attributes its views hold.
fn held_by_b(b_dir: &Path, origin: &OriginKey, count: u64) -> Result<(u64, u64)> {
    let b = Node::open(b_dir)?;
    let mut entries = 0;
    for sequence in 1..=count {
        let id = EntryId {
            origin: *origin,
            sequence,
        };
        if let Some(Held::Entry(_)) = b.store.held(&id)? {
            entries += 1;
        }
    }
    let mut attributes = 0;
    b.store.views().for_each(Table::Records, &mut |key, _| {
        if key.first() == Some(&(RecordKind::Attribute as u8)) {
            attributes += 1;
        }
    })?;
    Ok((entries, attributes))
}

/// Polls B's REST API until its cursor on A reaches `head`.
fn wait_caught_up(b: &Server, head: u64) -> Result<()> {
    let started = Instant::now();
    let key = std::fs::read_to_string(b.dir.join(threatlog::node::ADMIN_KEY_FILE))?;
    loop {
        if started.elapsed() > Duration::from_secs(PULL_SECONDS_MAX) {
            bail!("B did not catch up within {PULL_SECONDS_MAX}s");
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
        let (200, list) = b.request("POST", "/servers/index", Some(key.trim()), Some("{}")) else {
            continue;
        };
        let report = &list[0]["threatlog"];
        if let Some(error) = report["status"]["last_error"].as_str() {
            if report["status"]["quarantined"] == true {
                bail!("B quarantined A: {error}");
            }
        }
        if report["cursor"].as_u64() >= Some(head) {
            return Ok(());
        }
    }
}

/// VmHWM of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Strict verification of every stored entry: entries per second.
fn verify_rate(stored: &[Bytes]) -> Result<f64> {
    let start = Instant::now();
    for bytes in stored {
        std::hint::black_box(VerifiedEntry::verify(bytes.clone())?);
    }
    Ok(rate(stored.len(), start.elapsed().as_secs_f64()))
}

/// Segments of the stored bytes, cut like a pull stream's.
fn segments(stored: &[Bytes]) -> Vec<wire::Segment> {
    let mut out = Vec::new();
    let mut items = Vec::new();
    let mut bytes = 0;
    for entry in stored {
        items.push(wire::Item {
            item: Some(wire::item::Item::Entry(entry.clone())),
        });
        bytes += entry.len();
        if items.len() >= SEGMENT_ITEMS_MAX || bytes >= SEGMENT_BYTES_MAX {
            out.push(segment(std::mem::take(&mut items)));
            bytes = 0;
        }
    }
    if !items.is_empty() {
        out.push(segment(items));
    }
    out
}

/// One segment of `items`, its cursors left at zero.
fn segment(items: Vec<wire::Item>) -> wire::Segment {
    wire::Segment {
        items,
        cursor: 0,
        head_cursor: 0,
        head_time_ms: 0,
        ..Default::default()
    }
}

/// A sync service whose pull streams fixed segments and does nothing else.
struct RawStream {
    segments: Arc<Vec<wire::Segment>>,
}

#[tonic::async_trait]
impl wire::sync_server::Sync for RawStream {
    async fn hello(
        &self,
        _: Request<wire::HelloRequest>,
    ) -> Result<Response<wire::HelloResponse>, Status> {
        Err(Status::unimplemented("raw stream only"))
    }

    type PullStream = ReceiverStream<Result<wire::Segment, Status>>;

    async fn pull(
        &self,
        _: Request<wire::PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let (sender, receiver) = mpsc::channel(threatlog::sync::SEGMENTS_IN_FLIGHT_MAX);
        let segments = Arc::clone(&self.segments);
        tokio::spawn(async move {
            for segment in segments.iter() {
                if sender.send(Ok(segment.clone())).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn push(
        &self,
        _: Request<Streaming<wire::Segment>>,
    ) -> Result<Response<wire::PushResponse>, Status> {
        Err(Status::unimplemented("raw stream only"))
    }

    async fn reveal(
        &self,
        _: Request<wire::RevealRequest>,
    ) -> Result<Response<wire::Segment>, Status> {
        Err(Status::unimplemented("raw stream only"))
    }

    async fn inclusion(
        &self,
        _: Request<wire::InclusionRequest>,
    ) -> Result<Response<wire::Proof>, Status> {
        Err(Status::unimplemented("raw stream only"))
    }

    async fn consistency(
        &self,
        _: Request<wire::ConsistencyRequest>,
    ) -> Result<Response<wire::Proof>, Status> {
        Err(Status::unimplemented("raw stream only"))
    }
}

/// Streams the stored bytes over tonic on loopback (plain HTTP/2, same message limits and
/// windows as sync) and only counts them: entries per second.
async fn stream_rate(stored: &[Bytes]) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (connections, incoming) = mpsc::channel::<std::io::Result<tokio::net::TcpStream>>(4);
    let accept = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            if connections.send(Ok(tcp)).await.is_err() {
                return;
            }
        }
    });
    let service = wire::sync_server::SyncServer::new(RawStream {
        segments: Arc::new(segments(stored)),
    })
    .max_decoding_message_size(threatlog::sync::MESSAGE_BYTES_MAX)
    .max_encoding_message_size(threatlog::sync::MESSAGE_BYTES_MAX);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .initial_stream_window_size(threatlog::sync::STREAM_WINDOW_BYTES)
            .initial_connection_window_size(threatlog::sync::CONNECTION_WINDOW_BYTES)
            .add_service(service)
            .serve_with_incoming(ReceiverStream::new(incoming)),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .initial_stream_window_size(threatlog::sync::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(threatlog::sync::CONNECTION_WINDOW_BYTES)
        .connect()
        .await?;
    let mut client = wire::sync_client::SyncClient::new(channel)
        .max_decoding_message_size(threatlog::sync::MESSAGE_BYTES_MAX);
    let start = Instant::now();
    let mut stream = client
        .pull(wire::PullRequest {
            cursor: 0,
            follow: false,
        })
        .await?
        .into_inner();
    let mut received = 0;
    while let Some(segment) = stream.message().await? {
        received += segment.items.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    server.abort();
    accept.abort();
    if received != stored.len() {
        bail!(
            "raw stream delivered {received} of {} entries",
            stored.len()
        );
    }
    Ok(rate(received, seconds))
}
