//! The ingest benchmark: end-to-end throughput of appends into log and views, compared with
//! the raw rates of the two costs underneath (ed25519 signing, RocksDB batch writes) measured
//! on the same bytes in the same run.

use anyhow::Result;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;
use uuid::Uuid;

use super::{figure, rate, JsonOption, Scratch};
use crate::common::workload::{synthetic_event, tag_draft};
use threatlog::change;
use threatlog::log::{Draft, NodeKey, VerifiedEntry};
use threatlog::model::Event;
use threatlog::node::Node;

/// Writes' worth of drafts prepared ahead of the writer.
const DRAFTS_QUEUED: usize = 2;

/// Options of the ingest benchmark.
#[derive(Clone, Debug, clap::Parser)]
pub struct IngestOptions {
    /// Events to append.
    #[arg(long, default_value_t = 200)]
    pub events: usize,
    /// Attributes per event.
    #[arg(long, default_value_t = 100)]
    pub attributes_per_event: usize,
    /// Events committed per durable write (group commit).
    #[arg(long, default_value_t = 20)]
    pub events_per_write: usize,
    /// Threads appending concurrently, as concurrent API requests do: while one thread's
    /// batch is being written, the next one's is sealed and reduced.
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    /// Single-op entries to append.
    #[arg(long, default_value_t = 20_000)]
    pub single_entries: usize,
    /// Single-op entries committed per durable write.
    #[arg(long, default_value_t = 1000)]
    pub entries_per_write: usize,
    /// Print one JSON object with every figure instead of text.
    #[arg(long)]
    pub json: bool,
}

impl JsonOption for IngestOptions {
    fn json(&self) -> bool {
        self.json
    }
}

/// Signs each entry's bytes again with a fresh key: the raw signing cost of the same bytes.
fn raw_sign_rate(entries: &[VerifiedEntry]) -> f64 {
    let key = NodeKey::generate();
    let start = Instant::now();
    for entry in entries {
        std::hint::black_box(key.sign(entry.signed_bytes()));
    }
    rate(entries.len(), start.elapsed().as_secs_f64())
}

/// Writes the same stored bytes under the same keys into a bare RocksDB, `per_write` entries
/// per synced WriteBatch: the raw storage cost without signing or views.
fn raw_write_rate(entries: &[VerifiedEntry], per_write: usize, dir: &Path) -> Result<f64> {
    let mut options = rocksdb::Options::default();
    options.create_if_missing(true);
    let db = rocksdb::DB::open(&options, dir.join("raw"))?;
    let mut write = rocksdb::WriteOptions::default();
    write.set_sync(true);
    let start = Instant::now();
    for chunk in entries.chunks(per_write.max(1)) {
        let mut batch = rocksdb::WriteBatch::default();
        for entry in chunk {
            batch.put(
                threatlog::store::log_key(&entry.origin(), entry.sequence()),
                entry.stored(),
            );
        }
        db.write_opt(batch, &write)?;
    }
    Ok(rate(entries.len(), start.elapsed().as_secs_f64()))
}

/// Appends each batch of drafts from `writers` threads at once, while one more thread
/// prepares the batches, as request handlers prepare them outside the writer lock. Returns
/// the entries stored.
fn append_concurrently(
    node: &Node,
    writers: usize,
    batches: impl Iterator<Item = Vec<Draft>> + Send,
) -> Result<Vec<VerifiedEntry>> {
    let panicked = || anyhow::anyhow!("a writer thread panicked");
    let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Draft>>(DRAFTS_QUEUED);
    let receive = Mutex::new(receive);
    let entries = Mutex::new(Vec::new());
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            for batch in batches {
                if send.send(batch).is_err() {
                    return;
                }
            }
        });
        let writers: Vec<_> = (0..writers.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let next = receive.lock().map_err(|_| panicked())?.recv();
                        let Ok(drafts) = next else {
                            return Ok(());
                        };
                        let appended = node.append(drafts)?.entries;
                        entries.lock().map_err(|_| panicked())?.extend(appended);
                    }
                })
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(|writer| writer.join()).collect();
        // Writers that stopped on an error leave batches queued: take them, so the preparing
        // thread can finish.
        if let Ok(receive) = receive.lock() {
            while receive.recv().is_ok() {}
        }
        for result in results {
            result.map_err(|_| panicked())??;
        }
        Ok(())
    })?;
    entries.into_inner().map_err(|_| panicked())
}

/// What the two timed phases appended and how long each took.
struct Appended {
    /// The node appended to, still open while the raw rates are measured.
    node: Node,
    /// The synthetic events appended in the first phase.
    events: Vec<Event>,
    /// The entries of those events.
    event_entries: Vec<VerifiedEntry>,
    /// Seconds the events took.
    event_seconds: f64,
    /// The single-op entries of the second phase.
    single_entries: Vec<VerifiedEntry>,
    /// Seconds the single-op entries took.
    single_seconds: f64,
}

/// Appends the events, then the single-op entries, into a fresh node in `scratch`, timing
/// each phase.
fn append_both(options: &IngestOptions, scratch: &Scratch) -> Result<Appended> {
    Node::init(&scratch.0.join("node"), "Bench Org", None, false)?;
    let node = Node::open(&scratch.0.join("node"))?;
    let actor = node.system_actor();
    let events: Vec<Event> = (0..options.events.max(1))
        .map(|index| synthetic_event(index, options.attributes_per_event))
        .collect::<Result<_, _>>()?;

    let start = Instant::now();
    let event_entries = append_concurrently(
        &node,
        options.writers,
        events.chunks(options.events_per_write.max(1)).map(|chunk| {
            chunk
                .iter()
                .flat_map(|e| change::event_drafts(e, &actor))
                .collect()
        }),
    )?;
    let event_seconds = start.elapsed().as_secs_f64();

    let first = &events[0];
    let targets: Vec<Uuid> = first.attributes.iter().map(|a| a.uuid).collect();
    let per_write = options.entries_per_write.max(1);
    let start = Instant::now();
    let single_entries = append_concurrently(
        &node,
        options.writers,
        (0..options.single_entries).step_by(per_write).map(|done| {
            (done..(done + per_write).min(options.single_entries))
                .map(|i| tag_draft(&actor, first.uuid, targets[i % targets.len().max(1)], i))
                .collect()
        }),
    )?;
    let single_seconds = start.elapsed().as_secs_f64();
    Ok(Appended {
        node,
        events,
        event_entries,
        event_seconds,
        single_entries,
        single_seconds,
    })
}

/// Runs the ingest benchmark: its figures.
pub fn figures(options: &IngestOptions) -> Result<Value> {
    let scratch = Scratch::new("ingest")?;
    let appended = append_both(options, &scratch)?;
    let (events, event_entries) = (&appended.events, &appended.event_entries);
    let single_entries = &appended.single_entries;
    let attributes = events.len() * options.attributes_per_event;
    let writes = events.len().div_ceil(options.events_per_write.max(1));
    let event_entries_per_write = event_entries.len().div_ceil(writes.max(1));
    let raw_dir = Scratch::new("raw")?;
    let mut figures = json!({
        "events": events.len(),
        "attributes_per_event": options.attributes_per_event,
        "events_per_write": options.events_per_write,
        "writers": options.writers.max(1),
        "attributes_per_s": rate(attributes, appended.event_seconds),
        "event_entries_per_s": rate(event_entries.len(), appended.event_seconds),
        "event_raw_sign_per_s": raw_sign_rate(event_entries),
        "event_raw_write_per_s": raw_write_rate(event_entries, event_entries_per_write, &raw_dir.0.join("events"))?,
        "single_entries": single_entries.len(),
        "entries_per_write": options.entries_per_write,
        "single_entries_per_s": rate(single_entries.len(), appended.single_seconds),
        "single_raw_sign_per_s": raw_sign_rate(single_entries),
        "single_raw_write_per_s": raw_write_rate(single_entries, options.entries_per_write, &raw_dir.0.join("single"))?,
    });
    for (ratio, measured, raw) in [
        (
            "event_entries_vs_raw_sign",
            "event_entries_per_s",
            "event_raw_sign_per_s",
        ),
        (
            "event_entries_vs_raw_write",
            "event_entries_per_s",
            "event_raw_write_per_s",
        ),
        (
            "single_entries_vs_raw_sign",
            "single_entries_per_s",
            "single_raw_sign_per_s",
        ),
        (
            "single_entries_vs_raw_write",
            "single_entries_per_s",
            "single_raw_write_per_s",
        ),
    ] {
        figures[ratio] = json!(figure(&figures, measured) / figure(&figures, raw));
    }
    drop(appended.node);
    Ok(figures)
}

/// Prints the figures of [`figures`] as text.
pub fn text(options: &IngestOptions, figures: &Value) {
    let f = |name: &str| figure(figures, name);
    println!(
        "events: {} x {} attributes, {} events per write, {} writers",
        figures["events"],
        options.attributes_per_event,
        options.events_per_write,
        options.writers.max(1)
    );
    println!("  attributes/s          {:>12.0}", f("attributes_per_s"));
    println!("  entries/s             {:>12.0}", f("event_entries_per_s"));
    println!(
        "  raw ed25519 signs/s   {:>12.0}  (ratio {:.3})",
        f("event_raw_sign_per_s"),
        f("event_entries_vs_raw_sign")
    );
    println!(
        "  raw RocksDB writes/s  {:>12.0}  (ratio {:.3})",
        f("event_raw_write_per_s"),
        f("event_entries_vs_raw_write")
    );
    println!(
        "single-op entries: {}, {} per write",
        figures["single_entries"], options.entries_per_write
    );
    println!(
        "  entries/s             {:>12.0}",
        f("single_entries_per_s")
    );
    println!(
        "  raw ed25519 signs/s   {:>12.0}  (ratio {:.3})",
        f("single_raw_sign_per_s"),
        f("single_entries_vs_raw_sign")
    );
    println!(
        "  raw RocksDB writes/s  {:>12.0}  (ratio {:.3})",
        f("single_raw_write_per_s"),
        f("single_entries_vs_raw_write")
    );
}
