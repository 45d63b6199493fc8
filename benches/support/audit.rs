//! The audit benchmark: `audit verify` of an exported bundle of a large log, in entries
//! per second, against the raw rate of the verification it does, strict ed25519 verification
//! of each signature (`verify_strict`), over the same signatures on the same number of threads,
//! measured in the same run; and the verifier's peak memory.

use anyhow::{bail, Context, Result};
use prost::bytes::Bytes;
use prost::Message;
use serde_json::{json, Value};
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use super::{figure, rate, JsonOption, Scratch};
use crate::common::workload::{synthetic_event, tag_draft};
use threatlog::audit::bundle::{self, Record};
use threatlog::audit::export::{export, ExportOptions};
use threatlog::audit::verify::{peak_rss_kib, verify_bundle, CHUNK_ENTRIES};
use threatlog::change;
use threatlog::node::Node;

/// The figure `audit verify` is held to: this share of the raw strict-verification rate.
const VERIFY_VS_RAW_TARGET: f64 = 0.70;
/// Alternating rounds of raw and audit verification; the best of each is kept, so that other
/// load on the machine during one round does not decide the ratio.
const ROUNDS: usize = 3;
/// Entries appended per durable write while building the log.
const BUILD_ENTRIES_PER_WRITE: usize = 1000;

/// Options of the audit benchmark.
#[derive(Clone, Debug, clap::Parser)]
pub struct AuditOptions {
    /// Entries in the log verified.
    #[arg(long, default_value_t = 200_000)]
    pub entries: usize,
    /// Signature threads (default: the machine's cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Print one JSON object with every figure instead of text.
    #[arg(long)]
    pub json: bool,
}

impl JsonOption for AuditOptions {
    fn json(&self) -> bool {
        self.json
    }
}

/// The (message, signature, key) triples of every entry of a bundle.
type Triples = Vec<(Bytes, ed25519_dalek::Signature, ed25519_dalek::VerifyingKey)>;

/// The (message, signature, key) triples of the entries of the bundle at `path`.
fn signatures_of(path: &Path) -> Result<Triples> {
    let mut reader = bundle::Reader::new(BufReader::new(std::fs::File::open(path)?))?;
    let mut out = Vec::new();
    while let Some(record) = reader.next_record()? {
        if let Record::Entry { data, .. } = record {
            let bytes = bundle::decode_data(&data).context("entry data")?;
            let signed = threatlog::proto::SignedEntry::decode(Bytes::from(bytes))?;
            let entry = threatlog::proto::Entry::decode(signed.entry.clone())?;
            let key: [u8; 32] = entry.origin_key.as_ref().try_into()?;
            out.push((
                signed.entry,
                ed25519_dalek::Signature::from_slice(&signed.signature)?,
                ed25519_dalek::VerifyingKey::from_bytes(&key)?,
            ));
        }
    }
    Ok(out)
}

/// Verifies every triple strictly, one signature at a time as `audit verify` does, in
/// chunks of [`CHUNK_ENTRIES`] on `workers` threads; returns signatures per second.
fn raw_strict_rate(triples: &Triples, workers: usize) -> Result<f64> {
    let chunks: Vec<&[_]> = triples.chunks(CHUNK_ENTRIES).collect();
    let start = Instant::now();
    let failed = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let chunks = &chunks;
                scope.spawn(move || {
                    chunks.iter().skip(worker).step_by(workers).any(|chunk| {
                        chunk.iter().any(|(message, signature, key)| {
                            key.verify_strict(message, signature).is_err()
                        })
                    })
                })
            })
            .collect();
        handles.into_iter().any(|h| h.join().unwrap_or(true))
    });
    if failed {
        bail!("a signature of the bench log does not verify");
    }
    Ok(rate(triples.len(), start.elapsed().as_secs_f64()))
}

/// The log built for the benchmark: its size and how long it took.
struct Built {
    /// Entries appended by tag drafts (after the first event's).
    appended: usize,
    /// Seconds the appends took.
    seconds: f64,
    /// Checkpoints in the exported bundle.
    checkpoints: u64,
}

/// Builds a log of `entries` entries in a node in `dir` through the store (views, tree and
/// checkpoints included) and exports it to `bundle_path`.
fn build_and_export(entries: usize, dir: &Path, bundle_path: &Path) -> Result<Built> {
    Node::init(dir, "Bench Org", None, false)?;
    let node = Node::open(dir)?;
    let actor = node.system_actor();
    let event = synthetic_event(0, 16)?;
    node.append(change::event_drafts(&event, &actor))?;
    let targets: Vec<_> = event.attributes.iter().map(|a| a.uuid).collect();
    let build = Instant::now();
    let mut done = 0;
    while node.store.tree_size(&node.origin()) < entries as u64 {
        let left = entries as u64 - node.store.tree_size(&node.origin());
        let count = BUILD_ENTRIES_PER_WRITE.min(left as usize).max(1);
        let drafts = (done..done + count)
            .map(|i| tag_draft(&actor, event.uuid, targets[i % targets.len()], i))
            .collect();
        node.append(drafts)?;
        done += count;
    }
    let seconds = build.elapsed().as_secs_f64();
    let file = std::io::BufWriter::new(std::fs::File::create(bundle_path)?);
    let exported = export(
        &node.store,
        &node.origin(),
        file,
        &ExportOptions::default(),
        &|_| {},
    )?;
    Ok(Built {
        appended: done,
        seconds,
        checkpoints: exported.checkpoints,
    })
}

/// The peak memory of a separate `threatlog audit verify` process (its VmHWM) verifying the
/// bundle at `path` of the node in `dir`, in KiB.
fn verifier_peak_rss_kib(dir: &Path, path: &Path) -> Result<u64> {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_threatlog"))
        .arg("--data")
        .arg(dir)
        .args(["audit", "verify", "--json"])
        .arg(path)
        .output()?;
    if !child.status.success() {
        bail!(
            "audit verify of the bench bundle failed: {}",
            String::from_utf8_lossy(&child.stderr)
        );
    }
    let child_report: Value = serde_json::from_slice(&child.stdout)?;
    Ok(child_report["peak_rss_kib"].as_u64().unwrap_or(0))
}

/// Best rates over [`ROUNDS`] alternating rounds of raw and audit verification.
struct Verified {
    /// Entries `audit verify` checked.
    entries: u64,
    /// Best audit verification rate, entries per second.
    verify_per_s: f64,
    /// Best raw strict verification rate, signatures per second.
    raw_per_s: f64,
    /// Shortest audit verification, in seconds.
    verify_seconds: f64,
}

/// Times raw strict verification of `triples` and `audit verify` of the bundle at `path`,
/// alternately, [`ROUNDS`] times each on `workers` threads.
fn verify_rounds(path: &Path, triples: &Triples, workers: usize) -> Result<Verified> {
    let mut best = Verified {
        entries: 0,
        verify_per_s: 0.0,
        raw_per_s: 0.0,
        verify_seconds: f64::MAX,
    };
    for _ in 0..ROUNDS {
        best.raw_per_s = best.raw_per_s.max(raw_strict_rate(triples, workers)?);
        let start = Instant::now();
        let report = verify_bundle(BufReader::new(std::fs::File::open(path)?), workers, &|_| {})?;
        let seconds = start.elapsed().as_secs_f64();
        best.verify_seconds = best.verify_seconds.min(seconds);
        best.entries = report.entries;
        best.verify_per_s = best
            .verify_per_s
            .max(rate(report.entries as usize, seconds));
    }
    Ok(best)
}

/// Runs the audit benchmark: builds a log of `options.entries` entries, exports it, and times
/// `audit verify` of the bundle; its figures.
pub fn figures(options: &AuditOptions) -> Result<Value> {
    let workers = options
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let scratch = Scratch::new("audit")?;
    let dir = scratch.0.join("node");
    let path = scratch.0.join("log.bundle");
    let built = build_and_export(options.entries, &dir, &path)?;
    let bundle_bytes = std::fs::metadata(&path)?.len();
    let verify_peak_rss_kib = verifier_peak_rss_kib(&dir, &path)?;

    let triples = signatures_of(&path)?;
    let verified = verify_rounds(&path, &triples, workers)?;
    let raw_one_thread_per_s = raw_strict_rate(&triples, 1)?;
    let peak_after_verify_kib = peak_rss_kib().unwrap_or(0);
    Ok(json!({
        "entries": verified.entries,
        "rounds": ROUNDS,
        "checkpoints": built.checkpoints,
        "bundle_bytes": bundle_bytes,
        "workers": workers,
        "build_entries_per_s": rate(built.appended, built.seconds),
        "verify_seconds": verified.verify_seconds,
        "verify_entries_per_s": verified.verify_per_s,
        "raw_strict_verify_per_s": verified.raw_per_s,
        "raw_strict_verify_one_thread_per_s": raw_one_thread_per_s,
        "verify_vs_raw_strict": verified.verify_per_s / verified.raw_per_s,
        "verify_vs_raw_strict_target": VERIFY_VS_RAW_TARGET,
        "verify_peak_rss_kib": verify_peak_rss_kib,
        "bench_peak_rss_kib": peak_after_verify_kib,
    }))
}

/// Prints the figures of [`figures`] as text.
pub fn text(_: &AuditOptions, figures: &Value) {
    let f = |name: &str| figure(figures, name);
    println!(
        "log: {} entries, {} checkpoints, bundle {:.1} MiB; {} signature threads",
        figures["entries"],
        figures["checkpoints"],
        f("bundle_bytes") / 1_048_576.0,
        figures["workers"]
    );
    println!(
        "  audit verify entries/s        {:>12.0}",
        f("verify_entries_per_s")
    );
    println!(
        "  raw ed25519 verify_strict/s   {:>12.0}  (ratio {:.3}, target {VERIFY_VS_RAW_TARGET})",
        f("raw_strict_verify_per_s"),
        f("verify_vs_raw_strict")
    );
    println!(
        "  raw verify_strict/s, 1 thread {:>12.0}",
        f("raw_strict_verify_one_thread_per_s")
    );
    println!(
        "  audit verify peak RSS         {:>9.1} MiB",
        f("verify_peak_rss_kib") / 1024.0
    );
}
