//! The `threatlog` command: parses the command line, loads the node, runs the command.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use uuid::Uuid;

use threatlog::node::{ImportCounts, Node};

/// A MISP-compatible threat-intelligence node built on an append-only signed log.
#[derive(Parser)]
#[command(name = "threatlog", version, about, long_about = None)]
struct Cli {
    /// Data directory of the node.
    #[arg(long, global = true, env = "THREATLOG_DATA", default_value = "./data")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Measure throughput.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Export events: json, csv, text, hashes, suricata, snort, stix2, or a MISP feed.
    Export(ExportArgs),
    /// Manage and fetch MISP feeds.
    #[command(subcommand)]
    Feed(FeedCommand),
    /// Audit the log: export a bundle, verify, replay, history, inclusion proofs.
    #[command(subcommand)]
    Audit(threatlog::audit::cli::AuditCommand),
    /// Test support: append in a loop, printing each acknowledged entry.
    #[command(hide = true)]
    AppendLoop {
        /// Stop after this many appends (0 = until killed).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
}

#[derive(clap::Args)]
struct ExportArgs {
    /// json, csv, text, hashes, suricata, snort, stix2, or feed (a MISP feed directory).
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
enum FeedCommand {
    /// Add (or replace) a MISP feed: an http:// URL or a directory holding manifest.json.
    Add {
        /// Name of the feed on this node.
        name: String,
        /// http:// URL or directory of the feed.
        source: String,
        /// Distribution level (0-3) given to imported events; default: as in the feed.
        #[arg(long)]
        distribution: Option<u8>,
        /// Tags added to every imported event.
        #[arg(long, num_args = 1..)]
        tags: Vec<String>,
    },
    /// List the feeds.
    List,
    /// Import what is new or newer in a feed.
    Fetch {
        /// The feed's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum PeerCommand {
    /// Print this node's pairing card (node key, organisation, sync endpoint) for the other
    /// side's `peer add`.
    Card,
    /// Pair with the node whose card is given.
    Add {
        /// The card printed by `threatlog peer card` on the other node.
        card: String,
        #[command(flatten)]
        policy: PeerPolicyArgs,
    },
    /// List peers: state, cursor, lag, last error, quarantine.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a peer's policy (by id or key prefix).
    Set {
        /// The peer's id (from `peer list`) or a prefix of its key.
        peer: String,
        #[command(flatten)]
        policy: PeerPolicyArgs,
        /// Release the peer from quarantine.
        #[arg(long)]
        release: bool,
    },
    /// Unpair a peer.
    Remove {
        /// The peer's id or a prefix of its key.
        peer: String,
    },
}

/// Policy options of `peer add` and `peer set`.
#[derive(clap::Args)]
struct PeerPolicyArgs {
    /// internal (a node of this organisation: receives everything not kept local) or
    /// external (the default for `peer add`, even when the card names this organisation).
    #[arg(long)]
    relationship: Option<threatlog::policy::Relationship>,
    /// Strictest TLP released to the peer: clear, green, amber, amber+strict or red
    /// (default amber).
    #[arg(long)]
    tlp_max: Option<threatlog::policy::Tlp>,
    /// Do not pull the peer's log.
    #[arg(long)]
    no_pull: bool,
    /// Pull the peer's log again (peer set).
    #[arg(long, conflicts_with = "no_pull")]
    pull: bool,
    /// Do not push to the peer.
    #[arg(long)]
    no_push: bool,
    /// Push to the peer again (peer set).
    #[arg(long, conflicts_with = "no_push")]
    push: bool,
    /// Release only events with one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tags_include: Option<Vec<String>>,
    /// Withhold events with any of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tags_exclude: Option<Vec<String>>,
    /// Release only events created by these organisations (uuids, comma-separated).
    #[arg(long, value_delimiter = ',')]
    orgs_include: Option<Vec<Uuid>>,
    /// Withhold events created by these organisations (uuids, comma-separated).
    #[arg(long, value_delimiter = ',')]
    orgs_exclude: Option<Vec<Uuid>>,
    /// The peer's sync endpoint `host:port`, replacing the card's (for example the peer's
    /// host name inside a container network).
    #[arg(long)]
    endpoint: Option<String>,
}

impl PeerPolicyArgs {
    /// The policy as a `/servers` request body.
    fn body(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut body = serde_json::Map::new();
        let mut put = |key: &str, value: serde_json::Value| {
            body.insert(key.into(), value);
        };
        if let Some(relationship) = self.relationship {
            put("relationship", relationship.to_string().into());
        }
        if let Some(tlp) = self.tlp_max {
            put("tlp_max", tlp.to_string().into());
        }
        if let Some(endpoint) = &self.endpoint {
            put("url", endpoint.clone().into());
        }
        if self.no_pull || self.pull {
            put("pull", self.pull.into());
        }
        if self.no_push || self.push {
            put("push", self.push.into());
        }
        for (key, list) in [
            ("tags_include", &self.tags_include),
            ("tags_exclude", &self.tags_exclude),
        ] {
            if let Some(list) = list {
                put(key, serde_json::json!(list));
            }
        }
        for (key, list) in [
            ("orgs_include", &self.orgs_include),
            ("orgs_exclude", &self.orgs_exclude),
        ] {
            if let Some(list) = list {
                put(key, serde_json::json!(list));
            }
        }
        body
    }
}

#[derive(Subcommand)]
enum EventCommand {
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
enum ImportCommand {
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

#[derive(Subcommand)]
enum TaxonomyCommand {
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
enum GalaxyCommand {
    /// Load galaxies/*.json and clusters/*.json under DIR (a misp-galaxy checkout).
    Load {
        /// The directory.
        dir: PathBuf,
    },
    /// List loaded galaxies: id, type, clusters, name.
    List,
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Record an organisation in the directory (a log entry).
    Add {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Uuid (a new one by default).
        #[arg(long)]
        uuid: Option<Uuid>,
        /// The organisation has no users on this node (it is known from peers).
        #[arg(long)]
        remote: bool,
    },
    /// List organisations: id, uuid, local or remote, name.
    List,
    /// Print a certificate for another node of this organisation, signed by the org key, to
    /// install there with `org install-certificate`.
    Certify {
        /// The node key (64 hex digits) to certify.
        node_key: String,
        /// The certificate expires this many days from now (default: never).
        #[arg(long)]
        expires_days: Option<u32>,
        /// The org key file (default: DIR/org.key).
        #[arg(long)]
        org_key: Option<PathBuf>,
    },
    /// Make a certificate printed by `org certify` this node's own (appended to its log).
    InstallCertificate {
        /// The certificate text (threatlog-certificate:…).
        certificate: String,
    },
    /// Revoke a node key of this organisation from a sequence on; published as this node's
    /// next entry, so peers refuse the revoked node's entries from that sequence.
    Revoke {
        /// The node key (64 hex digits) to revoke.
        node_key: String,
        /// First sequence of that node's log that is no longer valid (1: all of it).
        #[arg(long)]
        from_sequence: u64,
        /// Why, for operators and auditors.
        #[arg(long, default_value = "")]
        reason: String,
        /// The org key file (default: DIR/org.key).
        #[arg(long)]
        org_key: Option<PathBuf>,
    },
    /// List the organisation bindings: org uuid, org keys, where each binding came from.
    Keys {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Community rosters: org uuid → org keys, signed by an operator's org key.
    #[command(subcommand)]
    Roster(RosterCommand),
}

#[derive(Subcommand)]
enum RosterCommand {
    /// Write a roster of this node's organisation and the organisations bound by pairing
    /// cards, signed by this organisation's org key, for members to import.
    Export {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// The org key file (default: DIR/org.key).
        #[arg(long)]
        org_key: Option<PathBuf>,
    },
    /// Bind the organisations of a roster signed by a trusted operator.
    Import {
        /// The roster file.
        file: PathBuf,
    },
    /// Trust an operator's org key (64 hex digits, from its card) to sign rosters.
    Trust {
        /// The operator's org key.
        key: String,
        /// A name to remember it by.
        #[arg(long, default_value = "")]
        name: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print their API key (shown once).
    Add {
        /// The user's organisation: uuid, id or name.
        #[arg(long)]
        org: String,
        /// Role: id 1-6 or name (admin, org-admin, user, publisher, sync, read-only).
        #[arg(long)]
        role: String,
        /// Login email.
        #[arg(long)]
        email: String,
    },
    /// List users: id, email, role, organisation.
    List,
}

#[derive(Subcommand)]
enum LogCommand {
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
enum ViewsCommand {
    /// Drop the views and replay the whole log; print the new digest.
    Rebuild,
    /// Print the digest of the stored views.
    Digest,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Append events into log and views in a scratch directory and compare with raw ed25519
    /// signing and RocksDB write rates measured in the same run.
    Ingest(threatlog::bench::IngestOptions),
    /// Add events over HTTP with concurrent keep-alive clients, then time value searches
    /// against a node holding many attributes.
    Api(threatlog::bench::api::ApiOptions),
    /// Build a large log, export it, and time `audit verify` of the bundle against raw
    /// ed25519 batch verification of the same signatures; report peak memory.
    Audit(threatlog::bench::audit::AuditOptions),
    /// Pull a node's published events into a second node (its own process) over gRPC with
    /// mutual TLS, compared with raw signature verification and raw tonic streaming.
    Sync(threatlog::bench::sync::SyncOptions),
}

/// The heap allocator of Rust allocations: mimalloc keeps freed blocks per thread and size
/// class, where glibc's malloc spent a sixth of ingest time in its free lists.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Heap arenas of the allocator: one per core. The default (eight per core) lets every
/// thread that ever ingested a segment keep megabytes of freed memory of its own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Allocations at least this large are mapped on their own and returned to the system when
/// freed. Fixed, because glibc otherwise raises the threshold after the first large free and
/// keeps every later write batch and segment buffer in the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;

/// Bounds the memory the allocator keeps: large, short-lived buffers (write batches, views
/// overlays, segments) would otherwise stay resident after a bulk pull.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES);
    }
}

fn main() {
    tune_allocator();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let dir = cli.data.as_path();
    match cli.command {
        Command::Init {
            org_name,
            org_uuid,
            force,
            org_key,
        } => init(dir, &org_name, org_uuid, force, org_key.as_deref()),
        Command::Serve {
            api_listen,
            sync_listen,
        } => serve(dir, api_listen, sync_listen),
        Command::Peer(command) => peer(dir, command),
        Command::Org(command) => org(dir, command),
        Command::User(command) => user(dir, command),
        Command::Event(EventCommand::Import { files }) => import(dir, &files),
        Command::Event(EventCommand::List) => list(dir),
        Command::Import(command) => import_other(dir, command),
        Command::Taxonomy(command) => taxonomy(dir, command),
        Command::Galaxy(command) => galaxy(dir, command),
        Command::Event(EventCommand::Show { uuid }) => {
            let node = open(dir)?;
            let event = node
                .event_json(&uuid)?
                .with_context(|| format!("no event {uuid} in {}", dir.display()))?;
            println!("{}", serde_json::to_string_pretty(&event)?);
            Ok(())
        }
        Command::Log(LogCommand::Verify) => {
            let node = open(dir)?;
            let summary = with_progress("verifying", |bar| node.store.verify(bar))?;
            println!(
                "verified {} entries from {} origins, views digest {}",
                summary.entries, summary.origins, summary.digest
            );
            Ok(())
        }
        Command::Log(LogCommand::Forks { json }) => {
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
        Command::Views(ViewsCommand::Rebuild) => {
            let node = open(dir)?;
            let digest = with_progress("replaying", |bar| node.store.rebuild_views(bar))?;
            println!("views rebuilt, digest {digest}");
            Ok(())
        }
        Command::Views(ViewsCommand::Digest) => {
            println!("{}", open(dir)?.store.views_digest()?);
            Ok(())
        }
        Command::Bench(BenchCommand::Ingest(options)) => threatlog::bench::ingest(&options),
        Command::Bench(BenchCommand::Api(options)) => threatlog::bench::api::run(&options),
        Command::Bench(BenchCommand::Sync(options)) => threatlog::bench::sync::run(&options),
        Command::Export(args) => export(dir, &args),
        Command::Feed(command) => feed(dir, command),
        Command::Bench(BenchCommand::Audit(options)) => threatlog::bench::audit::run(&options),
        Command::Audit(command) => Ok(threatlog::audit::cli::run(dir, command)?),
        Command::AppendLoop { count } => threatlog::bench::append_loop(&open(dir)?, count),
    }
}

fn open(dir: &Path) -> Result<Node> {
    Node::open(dir).with_context(|| format!("cannot open node in {}", dir.display()))
}

fn init(
    dir: &Path,
    org_name: &str,
    org_uuid: Option<Uuid>,
    force: bool,
    org_key: Option<&Path>,
) -> Result<()> {
    if org_name.trim().is_empty() {
        bail!("--org-name must not be empty");
    }
    let org_key = org_key.map(threatlog::node::read_org_key).transpose()?;
    let report = Node::init_with(dir, org_name.trim(), org_uuid, force, org_key)?;
    println!("initialised node in {}", dir.display());
    println!("  node key:     {}", report.origin);
    println!("  organisation: {} ({})", report.org.name, report.org.uuid);
    println!("  org key:      {}", report.org_key);
    println!("  admin user:   {}", report.admin_email);
    println!("  admin key:    {}", report.admin_key);
    println!(
        "The admin key is shown once; it is also in {}/admin.key (mode 0600).",
        dir.display()
    );
    Ok(())
}

fn serve(dir: &Path, api_listen: Option<String>, sync_listen: Option<String>) -> Result<()> {
    if let Some(report) = threatlog::api::server::init_if_empty(dir)? {
        println!("initialised node in {}", dir.display());
        println!("  organisation: {} ({})", report.org.name, report.org.uuid);
        println!("  admin user:   {}", report.admin_email);
        println!("  admin key:    {}", report.admin_key);
        println!(
            "The admin key is shown once; it is also in {}/admin.key (mode 0600).",
            dir.display()
        );
    }
    let node = open(dir)?;
    for line in threatlog::interop::catalog::load_configured(&node)? {
        println!("{line}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(threatlog::api::server::serve(
        node,
        api_listen,
        sync_listen,
        |url| {
            println!("REST API listening on {url}");
        },
    ))?;
    Ok(())
}

/// Runs a peer operation on the node in `dir`: directly when it is stopped, through its
/// admin API (`DIR/admin.key`, `DIR/run/api.addr`) when it runs.
fn server_op(
    dir: &Path,
    op: threatlog::api::servers::ServerOp,
    id: &str,
    body: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value> {
    use threatlog::api::servers::ServerOp;
    match Node::open(dir) {
        Ok(node) => threatlog::api::servers::run(&node, op, id, &body)
            .map_err(|error| anyhow::anyhow!("{}", describe_failure(&error.body("/servers")))),
        Err(threatlog::node::NodeError::Store(threatlog::store::StoreError::Busy { .. })) => {
            let path = match op {
                ServerOp::Index => "/servers/index".to_string(),
                ServerOp::Add => "/servers/add".to_string(),
                ServerOp::Edit => format!("/servers/edit/{id}"),
                ServerOp::Delete => format!("/servers/delete/{id}"),
                ServerOp::SyncNow => format!("/servers/pull/{id}"),
                ServerOp::Card => "/servers/card".to_string(),
            };
            post_to_running_node(dir, &path, serde_json::json!({ "Server": body }))
        }
        Err(error) => Err(error).with_context(|| format!("cannot open node in {}", dir.display())),
    }
}

/// Posts `body` to `path` of the node running on `dir`, as its admin (`DIR/admin.key`, at
/// `DIR/run/api.addr`); a MISP error answer becomes the error.
fn post_to_running_node(
    dir: &Path,
    path: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let addr = std::fs::read_to_string(dir.join("run").join("api.addr"))
        .context("the node is running but DIR/run/api.addr is missing")?;
    let addr = addr.trim().trim_start_matches("http://");
    let key = std::fs::read_to_string(dir.join(threatlog::node::ADMIN_KEY_FILE))
        .context("cannot read the admin key to reach the running node")?;
    let addr = addr
        .parse()
        .with_context(|| format!("DIR/run/api.addr holds '{addr}', not an address"))?;
    let mut connection = threatlog::bench::http::Connection::open(addr, key.trim())?;
    let (status, response) = connection.post(path, &serde_json::to_vec(&body)?)?;
    let value: serde_json::Value = serde_json::from_slice(&response)
        .with_context(|| format!("the node answered {status} with a body that is not JSON"))?;
    if status >= 400 {
        bail!("{}", describe_failure(&value));
    }
    Ok(value)
}

/// A MISP error body as one line: the message, then each field's errors.
fn describe_failure(body: &serde_json::Value) -> String {
    let mut text = body["message"]
        .as_str()
        .unwrap_or("the node refused the request")
        .to_string();
    if let Some(errors) = body["errors"].as_object() {
        for (field, messages) in errors {
            let messages: Vec<&str> = messages
                .as_array()
                .map(|list| list.iter().filter_map(|m| m.as_str()).collect())
                .unwrap_or_default();
            text.push_str(&format!(": {field}: {}", messages.join("; ")));
        }
    }
    text
}

fn peer(dir: &Path, command: PeerCommand) -> Result<()> {
    use threatlog::api::servers::ServerOp;
    let none = serde_json::Map::new;
    match command {
        PeerCommand::Card => {
            let card = server_op(dir, ServerOp::Card, "", none())?;
            println!("{}", card["card"].as_str().unwrap_or_default());
        }
        PeerCommand::Add { card, policy } => {
            let mut body = policy.body();
            body.insert("card".into(), card.into());
            let chosen = policy.relationship.is_some();
            let added = server_op(dir, ServerOp::Add, "", body)?;
            let peer = &added["threatlog"];
            println!(
                "paired with {} ({}) at {} as peer {}: {}, TLP up to {}",
                peer["org_name"].as_str().unwrap_or_default(),
                peer["key"].as_str().unwrap_or_default(),
                peer["endpoint"].as_str().unwrap_or_default(),
                peer["id"],
                peer["rules"]["relationship"].as_str().unwrap_or_default(),
                peer["rules"]["tlp_max"].as_str().unwrap_or_default(),
            );
            let own = server_op(dir, ServerOp::Card, "", none())?;
            if !chosen && peer["org_uuid"] == own["org_uuid"] {
                eprintln!(
                    "note: the card names this node's own organisation, but anyone can print \
                     that on a card; the peer is external. If it is a node of your \
                     organisation, run `threatlog peer set {} --relationship internal`.",
                    peer["id"]
                );
            }
        }
        PeerCommand::List { json } => {
            let list = server_op(dir, ServerOp::Index, "", none())?;
            let reports: Vec<&serde_json::Value> = list
                .as_array()
                .map(|items| items.iter().map(|item| &item["threatlog"]).collect())
                .unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
                return Ok(());
            }
            if reports.is_empty() {
                println!("no peers; pair with `threatlog peer add CARD`");
            }
            for peer in reports {
                let status = &peer["status"];
                println!(
                    "{:>3}  {}  {:<20} {:<22} {:<8} tlp<={:<12} state={:<11} cursor={} lag={} entries/{:.1}s{}{}{}",
                    peer["id"],
                    &peer["key"].as_str().unwrap_or_default()[..16.min(peer["key"].as_str().unwrap_or_default().len())],
                    peer["org_name"].as_str().unwrap_or_default(),
                    peer["endpoint"].as_str().unwrap_or_default(),
                    peer["rules"]["relationship"].as_str().unwrap_or_default(),
                    peer["rules"]["tlp_max"].as_str().unwrap_or_default(),
                    status["state"].as_str().filter(|s| !s.is_empty()).unwrap_or("idle"),
                    peer["cursor"],
                    peer["lag_entries"],
                    peer["lag_seconds"].as_f64().unwrap_or(0.0),
                    if status["quarantined"] == true { "  QUARANTINED" } else { "" },
                    peer["identity_conflicts"]
                        .as_array()
                        .filter(|orgs| !orgs.is_empty())
                        .map(|orgs| format!(
                            "  IDENTITY CONFLICT for org {}",
                            orgs.iter().filter_map(|org| org.as_str()).collect::<Vec<_>>().join(", ")
                        ))
                        .unwrap_or_default(),
                    status["last_error"]
                        .as_str()
                        .map(|error| format!("  last error: {error}"))
                        .unwrap_or_default(),
                );
            }
        }
        PeerCommand::Set {
            peer,
            policy,
            release,
        } => {
            let mut body = policy.body();
            if release {
                body.insert("release".into(), true.into());
            }
            server_op(dir, ServerOp::Edit, &peer, body)?;
            println!("peer {peer} updated");
        }
        PeerCommand::Remove { peer } => {
            server_op(dir, ServerOp::Delete, &peer, none())?;
            println!("peer {peer} removed");
        }
    }
    Ok(())
}

/// The org key from `file` (default `DIR/org.key`) and this node's own certificate, which
/// it must have signed: read without opening the node, so a running node's directory works.
fn org_key_and_certificate(
    dir: &Path,
    file: Option<&Path>,
) -> Result<(
    threatlog::log::identity::OrgKey,
    threatlog::log::identity::Certificate,
    threatlog::store::Store,
)> {
    let path = file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(threatlog::node::ORG_KEY_FILE));
    let org_key = threatlog::node::read_org_key(&path)?;
    let store = threatlog::store::Store::open_read_only(dir)?;
    let own = store
        .own_certificate()?
        .context("this node has no certificate yet; start it once to issue it")?;
    if own.org_key != org_key.public() {
        bail!(
            "{} holds org key {}, but this node is certified by {}",
            path.display(),
            org_key.public(),
            own.org_key
        );
    }
    Ok((org_key, own, store))
}

/// Runs an identity operation on the node in `dir`: directly when it is stopped, through its
/// admin API when it runs (as [`server_op`] does for peers).
fn identity_op(
    dir: &Path,
    op: &str,
    body: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value> {
    match Node::open(dir) {
        Ok(node) => threatlog::api::identity::run(&node, op, &body)
            .map_err(|error| anyhow::anyhow!("{}", describe_failure(&error.body("/identity")))),
        Err(threatlog::node::NodeError::Store(threatlog::store::StoreError::Busy { .. })) => {
            post_to_running_node(
                dir,
                &format!("/identity/{op}"),
                serde_json::json!({ "Identity": body }),
            )
        }
        Err(error) => Err(error).with_context(|| format!("cannot open node in {}", dir.display())),
    }
}

fn org(dir: &Path, command: OrgCommand) -> Result<()> {
    let mut body = serde_json::Map::new();
    match command {
        OrgCommand::Certify {
            node_key,
            expires_days,
            org_key,
        } => {
            let (org_key, own, _) = org_key_and_certificate(dir, org_key.as_deref())?;
            let target = threatlog::log::OriginKey::from_hex(&node_key)
                .context("the node key must be 64 hex digits")?;
            let expires =
                expires_days.map(|days| threatlog::node::now_ms() + i64::from(days) * 86_400_000);
            let certificate = threatlog::log::identity::Certificate::issue(
                &org_key,
                own.org_uuid,
                &own.org_name,
                target,
                threatlog::node::now_ms(),
                expires,
            )?;
            println!("{}", certificate.to_text());
            return Ok(());
        }
        OrgCommand::Revoke {
            node_key,
            from_sequence,
            reason,
            org_key,
        } => {
            let (org_key, own, store) = org_key_and_certificate(dir, org_key.as_deref())?;
            drop(store);
            let target = threatlog::log::OriginKey::from_hex(&node_key)
                .context("the node key must be 64 hex digits")?;
            let revocation = threatlog::log::identity::Revocation::issue(
                &org_key,
                own.org_uuid,
                target,
                from_sequence,
                threatlog::node::now_ms(),
                &reason,
            )?;
            body.insert("revocation".into(), revocation.to_text().into());
            identity_op(dir, "revoke", body)?;
            println!("revoked node key {target} from sequence {from_sequence}");
            return Ok(());
        }
        OrgCommand::Keys { json } => {
            let bindings = threatlog::store::Store::open_read_only(dir)?.bindings()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&bindings)?);
                return Ok(());
            }
            for binding in bindings {
                let keys: Vec<String> = binding.keys.iter().map(ToString::to_string).collect();
                println!(
                    "{}  {}  ({})",
                    binding.org_uuid,
                    keys.join(","),
                    binding.source
                );
            }
            return Ok(());
        }
        OrgCommand::Roster(RosterCommand::Export { out, org_key }) => {
            let (org_key, _, store) = org_key_and_certificate(dir, org_key.as_deref())?;
            let roster = threatlog::node::roster(&store, &org_key)?;
            std::fs::write(&out, format!("{}\n", roster.to_text()))
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "roster of {} organisations signed by org key {} written to {}",
                roster.members.len(),
                roster.operator_key,
                out.display()
            );
            return Ok(());
        }
        OrgCommand::Roster(RosterCommand::Import { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            body.insert("roster".into(), text.trim().into());
            let answer = identity_op(dir, "roster/import", body)?;
            println!(
                "bound {} of {} organisations from the roster of operator {}",
                answer["bound"],
                answer["members"],
                answer["operator"].as_str().unwrap_or_default()
            );
            return Ok(());
        }
        OrgCommand::Roster(RosterCommand::Trust { key, name }) => {
            body.insert("key".into(), key.clone().into());
            body.insert("name".into(), name.into());
            identity_op(dir, "roster/trust", body)?;
            println!("rosters signed by {key} are now trusted");
            return Ok(());
        }
        _ => {}
    }
    let node = open(dir)?;
    match command {
        OrgCommand::InstallCertificate { certificate } => {
            let mut node = node;
            let certificate = threatlog::log::identity::Certificate::from_text(&certificate)?;
            node.install_certificate(certificate)?;
            println!(
                "installed the certificate by org key {} as this node's own",
                node.org_key()
            );
        }
        OrgCommand::Add { name, uuid, remote } => {
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            if node.find_organisation(name.trim())?.is_some() {
                bail!("an organisation named '{}' already exists", name.trim());
            }
            let org = threatlog::model::Organisation {
                uuid: uuid.unwrap_or_else(Uuid::new_v4),
                name: name.trim().to_string(),
            };
            node.add_organisation(&org, !remote)?;
            println!("{} {}", org.uuid, org.name);
        }
        OrgCommand::List => {
            println!("{:>4}  {:<36}  {:<6}  NAME", "ID", "UUID", "KIND");
            for entry in node.organisations()? {
                let kind = if entry.local { "local" } else { "remote" };
                println!(
                    "{:>4}  {:<36}  {:<6}  {}",
                    entry.id, entry.org.uuid, kind, entry.org.name
                );
            }
        }
        // Handled above without opening the node.
        OrgCommand::Certify { .. }
        | OrgCommand::Revoke { .. }
        | OrgCommand::Keys { .. }
        | OrgCommand::Roster(_) => {}
    }
    Ok(())
}

fn user(dir: &Path, command: UserCommand) -> Result<()> {
    use threatlog::api::auth::Role;
    let node = open(dir)?;
    match command {
        UserCommand::Add { org, role, email } => {
            let email = email.trim();
            if email.is_empty() || !email.contains('@') {
                bail!("--email must be an email address");
            }
            let Some(role) = Role::parse(&role) else {
                bail!("unknown role '{role}': use 1-6 or admin, org-admin, user, publisher, sync, read-only");
            };
            let Some(entry) = node.find_organisation(&org)? else {
                bail!("no organisation '{org}'; add it with `threatlog org add --name NAME`");
            };
            if node
                .users()?
                .iter()
                .any(|(_, user)| user.email.eq_ignore_ascii_case(email))
            {
                bail!("a user with email {email} already exists");
            }
            let key = node.add_user(email, entry.org.uuid, role.id)?;
            println!("user {email} ({}, {})", role.name, entry.org.name);
            println!("API key (shown once): {key}");
        }
        UserCommand::List => {
            println!("{:>4}  {:<32}  {:<12}  ORGANISATION", "ID", "EMAIL", "ROLE");
            for (id, user) in node.users()? {
                let role = Role::by_id(user.role).map_or("?", |role| role.name);
                let org = node
                    .organisation(&user.org)?
                    .map_or_else(|| user.org.to_string(), |entry| entry.org.name);
                println!("{id:>4}  {:<32}  {role:<12}  {org}", user.email);
            }
        }
    }
    Ok(())
}

/// Runs `work` with a progress callback that drives a bar on a terminal.
fn with_progress<T>(message: &'static str, work: impl FnOnce(&dyn Fn(u64)) -> T) -> T {
    let bar = progress_bar(message);
    let result = work(&|done| bar.set_position(done));
    bar.finish_and_clear();
    result
}

/// A progress bar on a terminal; hidden otherwise, so logs and pipes stay plain.
fn progress_bar(message: &'static str) -> indicatif::ProgressBar {
    if !std::io::stdout().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} entries ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar
}

fn import(dir: &Path, files: &[PathBuf]) -> Result<()> {
    let node = open(dir)?;
    let mut total = ImportCounts::default();
    let mut failed = 0;
    let bar = if std::io::stdout().is_terminal() && files.len() > 1 {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
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

fn export(dir: &Path, args: &ExportArgs) -> Result<()> {
    use threatlog::interop::{export, feed_fetch};
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
        let count = feed_fetch::write_feed(&args.out, &events)?;
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

fn import_other(dir: &Path, command: ImportCommand) -> Result<()> {
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

fn feed(dir: &Path, command: FeedCommand) -> Result<()> {
    use threatlog::interop::feed_fetch::{self, FeedSettings};
    let node = open(dir)?;
    match command {
        FeedCommand::Add {
            name,
            source,
            distribution,
            tags,
        } => {
            let settings = FeedSettings {
                name,
                source,
                distribution,
                tags,
            };
            feed_fetch::add(&node, &settings)?;
            println!("feed {} added: {}", settings.name, settings.source);
        }
        FeedCommand::List => {
            println!("{:<20}  {:<4}  {:<40}  TAGS", "NAME", "DIST", "SOURCE");
            for feed in feed_fetch::list(&node)? {
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
            let bar = if std::io::stdout().is_terminal() {
                let bar = indicatif::ProgressBar::new(0).with_message(format!("feed {name}"));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg}: {bar:40} {pos}/{len} events ({eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            } else {
                indicatif::ProgressBar::hidden()
            };
            let report = feed_fetch::fetch_feed(&node, &name, &|done, total| {
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

fn taxonomy(dir: &Path, command: TaxonomyCommand) -> Result<()> {
    use threatlog::interop::catalog;
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

fn galaxy(dir: &Path, command: GalaxyCommand) -> Result<()> {
    use threatlog::interop::catalog;
    let node = open(dir)?;
    match command {
        GalaxyCommand::Load { dir: source } => {
            let bar = if std::io::stdout().is_terminal() {
                indicatif::ProgressBar::new_spinner()
            } else {
                indicatif::ProgressBar::hidden()
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} storing clusters: {pos}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
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
