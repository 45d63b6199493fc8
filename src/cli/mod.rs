//! The command line: the clap types of the top level here, each command group in its own
//! file with its arguments, `client` for a running node and `output` for progress.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use uuid::Uuid;

use threatlog::node::Node;

mod audit;
mod catalog;
mod client;
mod events;
mod feed;
mod log;
mod node;
mod org;
mod output;
mod peer;
mod user;

use catalog::{GalaxyCommand, TaxonomyCommand};
use events::{EventCommand, ExportArgs, ImportCommand};
use feed::FeedCommand;
use log::{LogCommand, ViewsCommand};
use org::OrgCommand;
use peer::PeerCommand;
use user::UserCommand;

/// A MISP-compatible threat-intelligence node built on an append-only signed log.
#[derive(Parser)]
#[command(name = "threatlog", version, about, long_about = None)]
pub struct Cli {
    /// Data directory of the node.
    #[arg(long, global = true, env = "THREATLOG_DATA", default_value = "./data")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a node: signing key, configuration, host organisation and admin user.
    Init {
        /// Name of the organisation that runs this node.
        #[arg(long)]
        org_name: String,
        /// Uuid of the organisation (a new one by default).
        #[arg(long)]
        org_uuid: Option<Uuid>,
        /// Re-initialise an existing directory, discarding its key, log and views.
        #[arg(long)]
        force: bool,
        /// Certify the node with this org key file (another node of an organisation that has
        /// one; needs --org-uuid). The key is not copied into the data directory. Without it
        /// a new org key is written to DIR/org.key.
        #[arg(long, requires = "org_uuid")]
        org_key: Option<PathBuf>,
    },
    /// Run the node: the MISP-compatible REST API (initialising an empty directory first).
    Serve {
        /// Listen address of the REST API (default: `api.listen` of the configuration);
        /// port 0 picks a free port. The bound address is written to DIR/run/api.addr.
        #[arg(long)]
        api_listen: Option<String>,
        /// Listen address of the gRPC sync service (default: `sync.listen`, 127.0.0.1:7443);
        /// port 0 picks a free port. The bound address is written to DIR/run/sync.addr.
        #[arg(long)]
        sync_listen: Option<String>,
    },
    /// Pair with other nodes and manage their sync policy (works on a running node too).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Manage organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage the node's API users.
    #[command(subcommand)]
    User(UserCommand),
    /// Import, list and show MISP events.
    #[command(subcommand)]
    Event(EventCommand),
    /// Import indicators from other formats: freetext, STIX 2.1 bundles.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Load and list taxonomies (misp-taxonomies layout); node-local, never replicated.
    #[command(subcommand)]
    Taxonomy(TaxonomyCommand),
    /// Load and list galaxies and their clusters (misp-galaxy layout); node-local.
    #[command(subcommand)]
    Galaxy(GalaxyCommand),
    /// Check the signed log.
    #[command(subcommand)]
    Log(LogCommand),
    /// Manage the materialized views.
    #[command(subcommand)]
    Views(ViewsCommand),
    /// Export events: json, csv, text, hashes, suricata, snort, stix2, hosts, netfilter, rpz,
    /// cache, or a MISP feed.
    Export(ExportArgs),
    /// Manage and fetch MISP feeds.
    #[command(subcommand)]
    Feed(FeedCommand),
    /// Audit the log: export a bundle, verify, replay, history, inclusion proofs.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Test support: append in a loop, printing each acknowledged entry.
    #[command(hide = true)]
    AppendLoop {
        /// Stop after this many appends (0 = until killed).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
}

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> Result<()> {
    let dir = cli.data.as_path();
    match cli.command {
        Command::Init {
            org_name,
            org_uuid,
            force,
            org_key,
        } => node::init(dir, &org_name, org_uuid, force, org_key.as_deref()),
        Command::Serve {
            api_listen,
            sync_listen,
        } => node::serve(dir, api_listen, sync_listen),
        Command::Peer(command) => peer::run(dir, command),
        Command::Org(command) => org::run(dir, command),
        Command::User(command) => user::run(dir, command),
        Command::Event(command) => events::event(dir, command),
        Command::Import(command) => events::import_other(dir, command),
        Command::Export(args) => events::export(dir, &args),
        Command::Taxonomy(command) => catalog::taxonomy(dir, command),
        Command::Galaxy(command) => catalog::galaxy(dir, command),
        Command::Log(command) => log::log(dir, command),
        Command::Views(command) => log::views(dir, command),
        Command::Feed(command) => feed::run(dir, command),
        Command::Audit(command) => Ok(audit::run(dir, command)?),
        Command::AppendLoop { count } => node::append_loop(&open(dir)?, count),
    }
}

/// Opens the node in `dir`, saying which directory failed.
pub fn open(dir: &Path) -> Result<Node> {
    Node::open(dir).with_context(|| format!("cannot open node in {}", dir.display()))
}
