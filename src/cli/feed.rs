//! `threatlog feed`: MISP feeds.

use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};

use super::open;

#[derive(Subcommand)]
pub enum FeedCommand {
    /// Add (or replace) a MISP feed: an http:// or https:// URL or a directory holding
    /// manifest.json. https servers are trusted by the system's CA certificates, plus the
    /// feed's --ca-file.
    Add {
        /// Name of the feed on this node.
        name: String,
        /// http:// or https:// URL or directory of the feed.
        source: String,
        /// Distribution level (0-3) given to imported events; default: as in the feed.
        #[arg(long)]
        distribution: Option<u8>,
        /// Tags added to every imported event.
        #[arg(long, num_args = 1..)]
        tags: Vec<String>,
        /// PEM file of CA certificates trusted for the feed's https server besides the
        /// system's (a feed behind a private CA). Read again at each fetch.
        #[arg(long, value_name = "PEM")]
        ca_file: Option<PathBuf>,
        /// Request header sent with every GET of the feed, as `Name: value` (MISP's feed
        /// headers), e.g. `--header 'Authorization: KEY'`; repeat for more. Sent to the feed's
        /// own scheme, host and port only, never to where a redirect leads elsewhere.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// List the feeds.
    List,
    /// Import what is new or newer in a feed.
    Fetch {
        /// The feed's name.
        name: String,
    },
}

/// Runs a `feed` command.
pub fn run(dir: &Path, command: FeedCommand) -> Result<()> {
    use threatlog::interop::io::feeds::{self, FeedSettings};
    let node = open(dir)?;
    match command {
        FeedCommand::Add {
            name,
            source,
            distribution,
            tags,
            ca_file,
            headers,
        } => {
            let settings = FeedSettings {
                name,
                source,
                distribution,
                tags,
                ca_file,
                headers: headers.join("\n"),
            };
            feeds::add(&node, &settings)?;
            println!("feed {} added: {}", settings.name, settings.source);
        }
        FeedCommand::List => {
            println!("{:<20}  {:<4}  {:<40}  TAGS", "NAME", "DIST", "SOURCE");
            for feed in feeds::list(&node)? {
                let distribution = feed
                    .distribution
                    .map_or_else(|| "feed".to_string(), |level| level.to_string());
                println!(
                    "{:<20}  {:<4}  {:<40}  {}",
                    feed.name,
                    distribution,
                    feed.source,
                    feed.tags.join(",")
                );
            }
        }
        FeedCommand::Fetch { name } => {
            let bar = super::output::bar(format!("feed {name}"), 0, "events");
            let report = feeds::fetch_feed(&node, &name, &|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            if report.not_modified {
                println!("feed {name}: not modified since the last fetch");
                return Ok(());
            }
            for (uuid, reason) in &report.failed {
                eprintln!("{uuid}.json: {reason}; nothing of it was imported");
            }
            println!(
                "feed {name}: {} added, {} updated, {} unchanged, {} failed",
                report.added,
                report.updated,
                report.skipped,
                report.failed.len()
            );
            if !report.failed.is_empty() {
                bail!(
                    "{} event files of feed {name} could not be imported",
                    report.failed.len()
                );
            }
        }
    }
    Ok(())
}
