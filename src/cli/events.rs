//! `threatlog event`, `import` and `export`: MISP events in and out.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use uuid::Uuid;

use super::open;
use threatlog::node::ImportCounts;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// json, csv, text, hashes, suricata, snort, stix2, hosts, netfilter, rpz, cache, or feed
    /// (a MISP feed directory).
    format: String,
    /// Output file (a directory for `feed`); `-` writes to standard output.
    #[arg(long)]
    out: PathBuf,
    /// Only events or attributes with one of these tags (`!TAG` excludes).
    #[arg(long, num_args = 1..)]
    tags: Vec<String>,
    /// Only attributes of these types (`!TYPE` excludes).
    #[arg(long = "type", num_args = 1..)]
    types: Vec<String>,
    /// Only these events.
    #[arg(long = "event", num_args = 1..)]
    events: Vec<Uuid>,
    /// Only published events.
    #[arg(long)]
    published: bool,
    /// IDS formats (suricata, snort, hashes): also attributes without to_ids and unpublished
    /// events.
    #[arg(long)]
    all_attributes: bool,
    /// First sid of suricata and snort rules (attribute N gets base + 10 N + 1…).
    #[arg(long)]
    sid_base: Option<u64>,
}

#[derive(Subcommand)]
pub enum EventCommand {
    /// Import MISP JSON files (one event, wrapped or bare, or a {"response": [...]} list).
    Import {
        /// The files; a bad file is reported and skipped, the others continue.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List events: uuid, date, info, attribute count, distribution, published.
    List,
    /// Print one event as MISP JSON.
    Show {
        /// The event uuid.
        uuid: Uuid,
    },
}

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Find indicators (IPs, domains, URLs, hashes, emails, CVEs, …) in a text file, refanging
    /// defanged ones, and add them to an event as attributes.
    Freetext {
        /// The event to add to (uuid).
        #[arg(long)]
        event: Uuid,
        /// Distribution of the new attributes, 0-5 (default 5: inherit the event's).
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=5))]
        distribution: Option<u8>,
        /// Only list what would be added; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The text file ('-' for standard input).
        file: PathBuf,
    },
    /// Import a STIX 2.1 bundle as one MISP event (indicators, observables, actors, malware,
    /// tools as galaxy tags, the report as event info and report).
    Stix {
        /// The bundle (JSON).
        file: PathBuf,
    },
}

/// Runs an `event` command.
pub fn event(dir: &Path, command: EventCommand) -> Result<()> {
    match command {
        EventCommand::Import { files } => import(dir, &files),
        EventCommand::List => list(dir),
        EventCommand::Show { uuid } => {
            let node = open(dir)?;
            let event = node
                .event_json(&uuid)?
                .with_context(|| format!("no event {uuid} in {}", dir.display()))?;
            println!("{}", serde_json::to_string_pretty(&event)?);
            Ok(())
        }
    }
}

fn import(dir: &Path, files: &[PathBuf]) -> Result<()> {
    let node = open(dir)?;
    let mut total = ImportCounts::default();
    let mut failed = 0;
    let bar = match files.len() {
        0 | 1 => indicatif::ProgressBar::hidden(),
        count => super::output::bar("importing", count as u64, "files"),
    };
    for file in files {
        let result = node.import_file(file);
        match result {
            Ok(counts) => total += counts,
            Err(error) => {
                failed += 1;
                bar.suspend(|| {
                    eprintln!("{}: {error:#}; nothing of it was imported", file.display())
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "imported {} events ({} attributes, {} objects) as {} log entries from {} files; {} files failed",
        total.events,
        total.attributes,
        total.objects,
        total.entries,
        files.len() - failed,
        failed
    );
    if failed > 0 {
        bail!("{failed} of {} files could not be imported", files.len());
    }
    Ok(())
}

fn list(dir: &Path) -> Result<()> {
    let node = open(dir)?;
    let events = node.events()?;
    println!(
        "{:<36}  {:<10}  {:>5}  {:<4}  {:<9}  INFO",
        "UUID", "DATE", "ATTRS", "DIST", "PUBLISHED"
    );
    for event in &events {
        println!(
            "{:<36}  {:<10}  {:>5}  {:<4}  {:<9}  {}",
            event.uuid,
            event.date,
            event.attribute_count,
            event.distribution,
            if event.published { "yes" } else { "no" },
            event.info
        );
    }
    Ok(())
}

pub fn export(dir: &Path, args: &ExportArgs) -> Result<()> {
    use threatlog::interop::{export, io::feeds};
    let node = open(dir)?;
    let filters = export::Filters {
        tags: args.tags.clone(),
        types: args.types.clone(),
        events: args.events.clone(),
        published: args.published,
        all_attributes: args.all_attributes,
    };
    if args.format.eq_ignore_ascii_case("feed") {
        if args.out.as_os_str() == "-" {
            bail!("a feed is a directory: give --out DIR");
        }
        let events = export::select(&node, &export::query(export::Format::Json, &filters))?;
        let count = feeds::write_feed(&args.out, &events)?;
        eprintln!("wrote a feed of {count} events to {}", args.out.display());
        return Ok(());
    }
    let Some(format) = export::Format::parse(&args.format) else {
        let names: Vec<&str> = export::Format::ALL.iter().map(|f| f.name()).collect();
        bail!(
            "unknown export format '{}': use one of {}, feed",
            args.format,
            names.join(", ")
        );
    };
    let events = export::select(&node, &export::query(format, &filters))?;
    let text = export::render(format, &events, &export::node_options(&node, args.sid_base));
    if args.out.as_os_str() == "-" {
        print!("{text}");
    } else {
        std::fs::write(&args.out, text)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        eprintln!(
            "exported {} events as {} to {}",
            events.len(),
            format.name(),
            args.out.display()
        );
    }
    Ok(())
}

pub fn import_other(dir: &Path, command: ImportCommand) -> Result<()> {
    use threatlog::interop::{freetext, intake};
    let node = open(dir)?;
    match command {
        ImportCommand::Freetext {
            event,
            distribution,
            dry_run,
            file,
        } => {
            let bytes = if file.as_os_str() == "-" {
                let max_bytes = node.config.limits.import_file_bytes_max;
                let mut bytes = Vec::new();
                let mut limited = std::io::Read::take(std::io::stdin(), max_bytes + 1);
                std::io::Read::read_to_end(&mut limited, &mut bytes)?;
                if bytes.len() as u64 > max_bytes {
                    bail!("standard input is over the import limit of {max_bytes} bytes (limits.import_file_bytes_max)");
                }
                bytes
            } else {
                intake::read_input(&node, &file)?
            };
            let text =
                String::from_utf8(bytes).map_err(|_| intake::IntakeError::NotText(file.clone()))?;
            let (finds, summary) = if dry_run {
                let finds = freetext::extract(&text)?;
                let summary = format!(
                    "found {} indicators; nothing changed (--dry-run)",
                    finds.len()
                );
                (finds, summary)
            } else {
                let report = intake::import_freetext(&node, &event, &text, distribution)?;
                let summary = format!(
                    "found {} indicators: added {} attributes to event {event}, {} already there",
                    report.finds.len(),
                    report.added,
                    report.duplicates
                );
                (report.finds, summary)
            };
            for find in &finds {
                let note = find
                    .comment
                    .as_deref()
                    .map(|c| format!("  ({c})"))
                    .unwrap_or_default();
                println!(
                    "{:>5}:{:<4} {:<14} {}{note}",
                    find.line, find.column, find.type_name, find.value
                );
            }
            println!("{summary}");
        }
        ImportCommand::Stix { file } => {
            let bytes = intake::read_input(&node, &file)?;
            let converted = threatlog::interop::stix_import::convert(&bytes)
                .with_context(|| format!("cannot import {}", file.display()))?;
            for skipped in &converted.skipped {
                eprintln!("skipped {skipped}");
            }
            let (uuid, counts) = intake::import_stix(&node, &converted)?;
            println!(
                "imported event {uuid} ({} attributes, {} objects) as {} log entries; {} STIX objects skipped",
                counts.attributes,
                counts.objects,
                counts.entries,
                converted.skipped.len()
            );
        }
    }
    Ok(())
}
