//! `threatlog taxonomy` and `galaxy`: node-local catalogues.

use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};

use super::open;

#[derive(Subcommand)]
pub enum TaxonomyCommand {
    /// Load every <namespace>/machinetag.json under DIR (a misp-taxonomies checkout); loading
    /// again updates them and keeps their ids and enabled flags.
    Load {
        /// The directory.
        dir: PathBuf,
    },
    /// List loaded taxonomies: id, enabled, exclusive, tags, namespace.
    List,
    /// Enable a loaded taxonomy (by namespace or id).
    Enable {
        /// Namespace (e.g. tlp) or id.
        taxonomy: String,
    },
    /// Disable a loaded taxonomy (by namespace or id); its exclusivity still holds.
    Disable {
        /// Namespace or id.
        taxonomy: String,
    },
}

#[derive(Subcommand)]
pub enum GalaxyCommand {
    /// Load galaxies/*.json and clusters/*.json under DIR (a misp-galaxy checkout).
    Load {
        /// The directory.
        dir: PathBuf,
    },
    /// List loaded galaxies: id, type, clusters, name.
    List,
}

pub fn taxonomy(dir: &Path, command: TaxonomyCommand) -> Result<()> {
    use threatlog::interop::io::catalog;
    let node = open(dir)?;
    match command {
        TaxonomyCommand::Load { dir: source } => {
            let (taxonomies, tags) = catalog::load_taxonomies(&node.store, &source)?;
            println!(
                "loaded {taxonomies} taxonomies ({tags} tags) from {}",
                source.display()
            );
        }
        TaxonomyCommand::Enable { ref taxonomy } | TaxonomyCommand::Disable { ref taxonomy } => {
            let enable = matches!(command, TaxonomyCommand::Enable { .. });
            let Some(stored) = catalog::set_taxonomy_enabled(&node.store, taxonomy, enable)? else {
                bail!("no taxonomy '{taxonomy}'; list them with `threatlog taxonomy list`");
            };
            let state = if enable { "enabled" } else { "disabled" };
            println!(
                "taxonomy {} ({}) {state}",
                stored.taxonomy.namespace, stored.id
            );
        }
        TaxonomyCommand::List => {
            println!(
                "{:>4}  {:<7}  {:<9}  {:>6}  NAMESPACE",
                "ID", "ENABLED", "EXCLUSIVE", "TAGS"
            );
            for stored in catalog::taxonomies(&node.store)? {
                let taxonomy = &stored.taxonomy;
                println!(
                    "{:>4}  {:<7}  {:<9}  {:>6}  {}",
                    stored.id,
                    if stored.enabled { "yes" } else { "no" },
                    if taxonomy.exclusive { "yes" } else { "no" },
                    taxonomy.tags().len(),
                    taxonomy.namespace
                );
            }
        }
    }
    Ok(())
}

pub fn galaxy(dir: &Path, command: GalaxyCommand) -> Result<()> {
    use threatlog::interop::io::catalog;
    let node = open(dir)?;
    match command {
        GalaxyCommand::Load { dir: source } => {
            let bar = super::output::spinner("storing", "clusters");
            let result =
                catalog::load_galaxies(&node.store, &source, &|done| bar.set_position(done));
            bar.finish_and_clear();
            let (galaxies, clusters) = result?;
            println!(
                "loaded {galaxies} galaxies ({clusters} clusters) from {}",
                source.display()
            );
        }
        GalaxyCommand::List => {
            println!("{:>4}  {:<24}  {:>8}  NAME", "ID", "TYPE", "CLUSTERS");
            for stored in catalog::galaxies(&node.store)? {
                println!(
                    "{:>4}  {:<24}  {:>8}  {}",
                    stored.id,
                    stored.galaxy.galaxy_type,
                    stored.cluster_ids.len(),
                    stored.galaxy.name
                );
            }
        }
    }
    Ok(())
}
