//! The `threatlog audit` subcommands: argument parsing and output around the audit functions.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

use super::output::spinner;
use threatlog::audit::export::{export, ExportOptions};
use threatlog::audit::verify::{verify_bundle, verify_store, Report};
use threatlog::audit::{parse_time_ms, prove, replay, AuditError, Source};
use threatlog::log::{EntryId, OriginKey};
use threatlog::store::Store;

/// `threatlog audit …`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Write a self-contained, versioned bundle (entries, stubs, keys, checkpoints,
    /// cosignatures) of the data directory's log; works on a running node's directory.
    Export {
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// Only this origin (key hex).
        #[arg(long)]
        origin: Option<String>,
        /// Only entries up to this time (ms since the epoch, or 2026-01-31T12:00:00Z).
        #[arg(long)]
        until: Option<String>,
    },
    /// Check every signature, chain link, stub, checkpoint and cosignature of a bundle (or,
    /// without FILE, of the data directory, plus its Merkle tree and views).
    Verify {
        /// A bundle written by `audit export`; the data directory when absent.
        file: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the state at an instant as MISP JSON, replayed from the log.
    Replay {
        /// A bundle; the data directory when absent.
        file: Option<PathBuf>,
        /// The instant: ms since the epoch, or 2026-01-31T12:00:00.000Z.
        #[arg(long)]
        at: String,
        /// Only this event.
        #[arg(long)]
        event: Option<Uuid>,
    },
    /// List every entry that touched an event or attribute: time, origin, org, sequence, what.
    History {
        /// `[FILE] UUID`: a bundle (the data directory when absent) and the event or attribute.
        #[arg(num_args = 1..=2, required = true, value_names = ["FILE", "UUID"])]
        args: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the inclusion proof of an entry (ORIGIN:SEQ), or of every entry that touched an
    /// event or attribute (UUID), in its origin's latest checkpoint, as JSON.
    Prove {
        /// `ORIGIN:SEQ` or a uuid.
        target: String,
    },
}

/// Runs an audit command against the data directory `dir` (or the bundle it names).
pub fn run(dir: &Path, command: AuditCommand) -> Result<(), AuditError> {
    match command {
        AuditCommand::Export { out, origin, until } => export_bundle(dir, &out, origin, until),
        AuditCommand::Verify { file, json } => verify(dir, file, json),
        AuditCommand::Replay { file, at, event } => {
            let at_ms = parse_time_ms(&at)?;
            let state = replay::replay(&source(dir, file)?, at_ms, event)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&state).unwrap_or_default()
            );
            Ok(())
        }
        AuditCommand::History { args, json } => history(dir, &args, json),
        AuditCommand::Prove { target } => prove_target(dir, &target),
    }
}

/// `audit export`: writes the bundle of the data directory's log to `out`.
fn export_bundle(
    dir: &Path,
    out: &Path,
    origin: Option<String>,
    until: Option<String>,
) -> Result<(), AuditError> {
    let store = open(dir)?;
    let origin = origin
        .map(|hex| {
            OriginKey::from_hex(&hex)
                .ok_or_else(|| AuditError::Usage(format!("'{hex}' is not an origin key")))
        })
        .transpose()?;
    let until_ms = until.as_deref().map(parse_time_ms).transpose()?;
    let exporter = threatlog::node::origin_of(dir).unwrap_or(OriginKey([0; 32]));
    let file = std::fs::File::create(out)?;
    let bar = spinner("exporting", "entries");
    let summary = export(
        &store,
        &exporter,
        BufWriter::new(file),
        &ExportOptions { origin, until_ms },
        &|done| bar.set_position(done),
    )?;
    bar.finish_and_clear();
    println!(
        "exported {} entries, {} checkpoints, {} cosignatures of {} origins to {}",
        summary.entries,
        summary.checkpoints,
        summary.cosignatures,
        summary.origins,
        out.display()
    );
    Ok(())
}

/// `audit verify`: checks a bundle, or the data directory when `file` is absent.
fn verify(dir: &Path, file: Option<PathBuf>, json: bool) -> Result<(), AuditError> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let bar = spinner("verifying", "entries");
    let progress = |done| bar.set_position(done);
    let result = match &file {
        Some(path) => {
            let input = BufReader::new(std::fs::File::open(path)?);
            verify_bundle(input, workers, &progress)
        }
        None => verify_store(&open(dir)?, workers, &progress),
    };
    bar.finish_and_clear();
    let mut report = result.map_err(|error| match error {
        AuditError::Failed(what) => AuditError::Failed(format!("verification failed: {what}")),
        other => AuditError::Failed(format!("verification failed: {other}")),
    })?;
    report.peak_rss_kib = threatlog::audit::verify::peak_rss_kib();
    print_report(&report, json);
    Ok(())
}

/// `audit history [FILE] UUID`: who changed the record, when, and what.
fn history(dir: &Path, args: &[String], json: bool) -> Result<(), AuditError> {
    let (file, subject) = match args {
        [subject] => (None, subject),
        [file, subject] => (Some(PathBuf::from(file)), subject),
        _ => return Err(AuditError::Usage("give [FILE] UUID".into())),
    };
    let subject = Uuid::parse_str(subject)
        .map_err(|_| AuditError::Usage(format!("'{subject}' is not a uuid")))?;
    let changes = replay::history(&source(dir, file)?, &subject)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&changes).unwrap_or_default()
        );
        return Ok(());
    }
    if changes.is_empty() {
        return Err(AuditError::Usage(format!("no entry touched {subject}")));
    }
    for change in changes {
        let org = change.org_name.clone().unwrap_or_default();
        println!(
            "{}  {}:{}  org {} ({})  user {}",
            change.time, change.origin, change.sequence, org, change.org, change.user
        );
        for line in change.changes {
            println!("    {line}");
        }
    }
    Ok(())
}

/// `audit prove ORIGIN:SEQ|UUID`: inclusion proofs of one entry or of every entry touching a
/// record.
fn prove_target(dir: &Path, target: &str) -> Result<(), AuditError> {
    let store = open(dir)?;
    let ids = match target.split_once(':') {
        Some((origin, sequence)) => {
            let origin = OriginKey::from_hex(origin)
                .ok_or_else(|| AuditError::Usage(format!("'{origin}' is not an origin key")))?;
            let sequence = sequence
                .parse()
                .map_err(|_| AuditError::Usage(format!("'{sequence}' is not a sequence number")))?;
            vec![EntryId { origin, sequence }]
        }
        None => {
            let subject = Uuid::parse_str(target).map_err(|_| {
                AuditError::Usage(format!("'{target}' is neither ORIGIN:SEQ nor a uuid"))
            })?;
            let ids = threatlog::audit::entries_touching(&store, &subject)?;
            if ids.is_empty() {
                return Err(AuditError::Usage(format!("no entry touched {subject}")));
            }
            ids
        }
    };
    let proofs = ids
        .iter()
        .map(|id| prove(&store, id))
        .collect::<Result<Vec<_>, _>>()?;
    let value = if proofs.len() == 1 {
        serde_json::to_value(&proofs[0])
    } else {
        serde_json::to_value(&proofs)
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&value.unwrap_or_default()).unwrap_or_default()
    );
    Ok(())
}

fn open(dir: &Path) -> Result<Store, AuditError> {
    Ok(Store::open_read_only(dir)?)
}

fn source(dir: &Path, file: Option<PathBuf>) -> Result<Source, AuditError> {
    Ok(match file {
        Some(path) => Source::Bundle(path),
        None => Source::Store(Box::new(open(dir)?)),
    })
}

fn print_report(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    let mut out = std::io::stdout().lock();
    for origin in &report.origins {
        let _ = writeln!(
            out,
            "origin {}: {} entries, {} stubs, tree size {} root {}, {} checkpoints (latest {}), {} cosignatures: ok",
            origin.origin,
            origin.entries,
            origin.stubs,
            origin.tree_size,
            origin.root,
            origin.checkpoints,
            origin.latest_checkpoint.map_or_else(|| "none".to_string(), |s| s.to_string()),
            origin.cosignatures
        );
    }
    let _ = write!(
        out,
        "verified {} entries from {} origins",
        report.entries,
        report.origins.len()
    );
    match &report.views_digest {
        Some(digest) => {
            let _ = writeln!(out, "; views equal a fresh replay (digest {digest})");
        }
        None => {
            let _ = writeln!(out);
        }
    }
}
