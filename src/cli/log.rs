//! `threatlog log` and `views`: checking the signed log and rebuilding the views.

use anyhow::Result;
use clap::Subcommand;
use std::path::Path;

use super::open;
use super::output::with_progress;

#[derive(Subcommand)]
pub enum LogCommand {
    /// Check every signature and chain link, and that the views equal a fresh replay.
    Verify,
    /// List the fork proofs stored when an origin equivocated (two signed entries at one
    /// position); the origin is refused from then on.
    Forks {
        /// Print the proofs as JSON, with both entries' stored bytes in base64.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ViewsCommand {
    /// Drop the views and replay the whole log; print the new digest.
    Rebuild,
    /// Print the digest of the stored views.
    Digest,
}

/// Runs a `log` command.
pub fn log(dir: &Path, command: LogCommand) -> Result<()> {
    match command {
        LogCommand::Verify => {
            let node = open(dir)?;
            let summary = with_progress("verifying", |bar| node.store.verify(bar))?;
            println!(
                "verified {} entries from {} origins, views digest {}",
                summary.entries, summary.origins, summary.digest
            );
            Ok(())
        }
        LogCommand::Forks { json } => {
            let node = open(dir)?;
            let proofs = node.store.fork_proofs()?;
            let conflicts = node.store.identity_conflicts()?;
            if json {
                let alerts = serde_json::json!({"forks": proofs, "identity_conflicts": conflicts});
                println!("{}", serde_json::to_string_pretty(&alerts)?);
                return Ok(());
            }
            if proofs.is_empty() && conflicts.is_empty() {
                println!("no fork proofs and no identity conflicts");
            }
            for proof in &proofs {
                println!(
                    "origin {} equivocated at sequence {} (detected at {} ms); origin refused",
                    proof.origin, proof.sequence, proof.detected_ms
                );
            }
            for conflict in &conflicts {
                println!(
                    "identity conflict: org {} is bound to org key {} ({}), and a {} named org key {}{}{} (detected at {} ms); its entries are refused",
                    conflict.org_uuid,
                    conflict.bound_keys[0],
                    conflict.bound_source,
                    match conflict.received_source {
                        threatlog::store::BindingSource::FirstUse => "certificate",
                        threatlog::store::BindingSource::Roster => "roster",
                        _ => "pairing card",
                    },
                    conflict.received_key,
                    conflict.node_key.map(|key| format!(" for node {key}")).unwrap_or_default(),
                    conflict.via.map(|key| format!(" via peer {key}")).unwrap_or_default(),
                    conflict.detected_ms
                );
            }
            Ok(())
        }
    }
}

/// Runs a `views` command.
pub fn views(dir: &Path, command: ViewsCommand) -> Result<()> {
    match command {
        ViewsCommand::Rebuild => {
            let node = open(dir)?;
            let digest = with_progress("replaying", |bar| node.store.rebuild_views(bar))?;
            println!("views rebuilt, digest {digest}");
            Ok(())
        }
        ViewsCommand::Digest => {
            println!("{}", open(dir)?.store.views_digest()?);
            Ok(())
        }
    }
}
