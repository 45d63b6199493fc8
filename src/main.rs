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
    },
    /// Run the node: the MISP-compatible REST API (initialising an empty directory first).
    Serve {
        /// Listen address of the REST API (default: `api.listen` of the configuration);
        /// port 0 picks a free port. The bound address is written to DIR/run/api.addr.
        #[arg(long)]
        api_listen: Option<String>,
    },
    /// Manage organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage the node's API users.
    #[command(subcommand)]
    User(UserCommand),
    /// Import, list and show MISP events.
    #[command(subcommand)]
    Event(EventCommand),
    /// Check the signed log.
    #[command(subcommand)]
    Log(LogCommand),
    /// Manage the materialized views.
    #[command(subcommand)]
    Views(ViewsCommand),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(BenchCommand),
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
}

fn main() {
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
        } => init(dir, &org_name, org_uuid, force),
        Command::Serve { api_listen } => serve(dir, api_listen),
        Command::Org(command) => org(dir, command),
        Command::User(command) => user(dir, command),
        Command::Event(EventCommand::Import { files }) => import(dir, &files),
        Command::Event(EventCommand::List) => list(dir),
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
        Command::Bench(BenchCommand::Audit(options)) => threatlog::bench::audit::run(&options),
        Command::Audit(command) => Ok(threatlog::audit::cli::run(dir, command)?),
        Command::AppendLoop { count } => threatlog::bench::append_loop(&open(dir)?, count),
    }
}

fn open(dir: &Path) -> Result<Node> {
    Node::open(dir).with_context(|| format!("cannot open node in {}", dir.display()))
}

fn init(dir: &Path, org_name: &str, org_uuid: Option<Uuid>, force: bool) -> Result<()> {
    if org_name.trim().is_empty() {
        bail!("--org-name must not be empty");
    }
    let report = Node::init(dir, org_name.trim(), org_uuid, force)?;
    println!("initialised node in {}", dir.display());
    println!("  node key:     {}", report.origin);
    println!("  organisation: {} ({})", report.org.name, report.org.uuid);
    println!("  admin user:   {}", report.admin_email);
    println!("  admin key:    {}", report.admin_key);
    println!(
        "The admin key is shown once; it is also in {}/admin.key (mode 0600).",
        dir.display()
    );
    Ok(())
}

fn serve(dir: &Path, api_listen: Option<String>) -> Result<()> {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(threatlog::api::server::serve(node, api_listen, |url| {
        println!("REST API listening on {url}");
    }))?;
    Ok(())
}

fn org(dir: &Path, command: OrgCommand) -> Result<()> {
    let node = open(dir)?;
    match command {
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
