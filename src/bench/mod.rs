//! `threatlog bench`: end-to-end throughput of appends into log and views, compared with the
//! raw rates of the two costs underneath (ed25519 signing, RocksDB batch writes) measured on
//! the same bytes in the same run. Also the append loop the crash-safety test drives.

pub mod api;
pub mod audit;
pub mod http;
pub mod sync;

use anyhow::{Context, Result};
use prost::bytes::Bytes;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;
use uuid::Uuid;

use crate::change::{self, Actor};
use crate::log::{Draft, NodeKey, VerifiedEntry};
use crate::model::Event;
use crate::node::Node;
use crate::proto::{self, op::Op};

/// Writes' worth of drafts prepared ahead of the writer.
const DRAFTS_QUEUED: usize = 2;

/// Options of `threatlog bench ingest`.
#[derive(Clone, Debug, clap::Args)]
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

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!(
            "threatlog-bench-{name}-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A synthetic event of `attributes` ip-dst attributes with distinct values.
pub fn synthetic_event(index: usize, attributes: usize) -> Result<Event> {
    let values: Vec<serde_json::Value> = (0..attributes)
        .map(|a| {
            let n = index * attributes + a;
            json!({
                "type": "ip-dst",
                "value": format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff),
                "comment": "bench",
            })
        })
        .collect();
    let document = json!({"Event": {
        "info": format!("bench event {index}"),
        "date": "2026-01-01",
        "distribution": 1,
        "Tag": [{"name": "tlp:green"}],
        "Attribute": values,
    }});
    Ok(Event::from_json(&document)?)
}

fn rate(count: usize, seconds: f64) -> f64 {
    count as f64 / seconds.max(1e-9)
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
                crate::store::log_key(&entry.origin(), entry.sequence()),
                entry.stored(),
            );
        }
        db.write_opt(batch, &write)?;
    }
    Ok(rate(entries.len(), start.elapsed().as_secs_f64()))
}

fn tag_draft(actor: &Actor, event: Uuid, target: Uuid, index: usize) -> Draft {
    Draft {
        acting_org: actor.org,
        acting_user: actor.user.clone(),
        event: Some(event),
        visibility: proto::Visibility {
            distribution: 1,
            sharing_group: Bytes::new(),
        },
        ops: vec![proto::Op {
            op: Some(Op::Tag(proto::TagLink {
                target: Bytes::copy_from_slice(target.as_bytes()),
                name: format!("bench:tag=\"{}\"", index % 64),
                attached: index.is_multiple_of(2),
                local: false,
            })),
        }],
    }
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

/// Runs the ingest benchmark and prints its figures.
pub fn ingest(options: &IngestOptions) -> Result<()> {
    let scratch = Scratch::new("ingest")?;
    Node::init(&scratch.0.join("node"), "Bench Org", None, false)?;
    let node = Node::open(&scratch.0.join("node"))?;
    let actor = node.system_actor();
    let events: Vec<Event> = (0..options.events.max(1))
        .map(|index| synthetic_event(index, options.attributes_per_event))
        .collect::<Result<_>>()?;

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
    let attributes = events.len() * options.attributes_per_event;

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

    let writes = events.len().div_ceil(options.events_per_write.max(1));
    let event_entries_per_write = event_entries.len().div_ceil(writes.max(1));
    let raw_dir = Scratch::new("raw")?;
    let figures = json!({
        "events": events.len(),
        "attributes_per_event": options.attributes_per_event,
        "events_per_write": options.events_per_write,
        "writers": options.writers.max(1),
        "attributes_per_s": rate(attributes, event_seconds),
        "event_entries_per_s": rate(event_entries.len(), event_seconds),
        "event_raw_sign_per_s": raw_sign_rate(&event_entries),
        "event_raw_write_per_s": raw_write_rate(&event_entries, event_entries_per_write, &raw_dir.0.join("events"))?,
        "single_entries": single_entries.len(),
        "entries_per_write": options.entries_per_write,
        "single_entries_per_s": rate(single_entries.len(), single_seconds),
        "single_raw_sign_per_s": raw_sign_rate(&single_entries),
        "single_raw_write_per_s": raw_write_rate(&single_entries, options.entries_per_write, &raw_dir.0.join("single"))?,
    });
    let get = |name: &str| figures[name].as_f64().unwrap_or(0.0);
    let mut figures = figures.clone();
    figures["event_entries_vs_raw_sign"] =
        json!(get("event_entries_per_s") / get("event_raw_sign_per_s"));
    figures["event_entries_vs_raw_write"] =
        json!(get("event_entries_per_s") / get("event_raw_write_per_s"));
    figures["single_entries_vs_raw_sign"] =
        json!(get("single_entries_per_s") / get("single_raw_sign_per_s"));
    figures["single_entries_vs_raw_write"] =
        json!(get("single_entries_per_s") / get("single_raw_write_per_s"));
    if options.json {
        println!("{figures}");
        return Ok(());
    }
    let f = |name: &str| figures[name].as_f64().unwrap_or(0.0);
    println!(
        "events: {} x {} attributes, {} events per write, {} writers",
        events.len(),
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
        single_entries.len(),
        options.entries_per_write
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
    Ok(())
}

/// Appends one small event per durable write, printing `acked EVENT ORIGIN:SEQ` after each
/// write returns; stops after `count` appends (0: never).
pub fn append_loop(node: &Node, count: u64) -> Result<()> {
    let actor = node.system_actor();
    let stdout = std::io::stdout();
    let mut index = 0u64;
    while count == 0 || index < count {
        let event = synthetic_event(index as usize, 1)?;
        let appended = node.append(change::event_drafts(&event, &actor))?;
        let last = appended.entries.last().map(VerifiedEntry::id);
        if let Some(id) = last {
            let mut out = stdout.lock();
            writeln!(out, "acked {} {id}", event.uuid)?;
            out.flush()?;
        }
        index += 1;
    }
    Ok(())
}
