//! `threatlog org`: organisations, org keys, node certificates and rosters.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use uuid::Uuid;

use super::client::identity_op;
use super::open;

#[derive(Subcommand)]
pub enum OrgCommand {
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
pub enum RosterCommand {
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

/// Runs an `org` command.
pub fn run(dir: &Path, command: OrgCommand) -> Result<()> {
    match command {
        OrgCommand::Certify {
            node_key,
            expires_days,
            org_key,
        } => certify(dir, &node_key, expires_days, org_key.as_deref()),
        OrgCommand::Revoke {
            node_key,
            from_sequence,
            reason,
            org_key,
        } => revoke(dir, &node_key, from_sequence, &reason, org_key.as_deref()),
        OrgCommand::Keys { json } => keys(dir, json),
        OrgCommand::Roster(command) => roster(dir, command),
        OrgCommand::InstallCertificate { certificate } => {
            let mut node = open(dir)?;
            let certificate = threatlog::log::identity::Certificate::from_text(&certificate)?;
            node.install_certificate(certificate)?;
            println!(
                "installed the certificate by org key {} as this node's own",
                node.org_key()
            );
            Ok(())
        }
        OrgCommand::Add { name, uuid, remote } => {
            let node = open(dir)?;
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
            Ok(())
        }
        OrgCommand::List => {
            println!("{:>4}  {:<36}  {:<6}  NAME", "ID", "UUID", "KIND");
            for entry in open(dir)?.organisations()? {
                let kind = if entry.local { "local" } else { "remote" };
                println!(
                    "{:>4}  {:<36}  {:<6}  {}",
                    entry.id, entry.org.uuid, kind, entry.org.name
                );
            }
            Ok(())
        }
    }
}

/// `org certify`: prints a certificate for another node of this organisation.
fn certify(
    dir: &Path,
    node_key: &str,
    expires_days: Option<u32>,
    org_key: Option<&Path>,
) -> Result<()> {
    let (org_key, own, store) = org_key_and_certificate(dir, org_key)?;
    let now_ms = store.now_ms();
    let target = threatlog::log::OriginKey::from_hex(node_key)
        .context("the node key must be 64 hex digits")?;
    let expires = expires_days.map(|days| now_ms + i64::from(days) * 86_400_000);
    let certificate = threatlog::log::identity::Certificate::issue(
        &org_key,
        own.org_uuid,
        &own.org_name,
        target,
        now_ms,
        expires,
    )?;
    println!("{}", certificate.to_text());
    Ok(())
}

/// `org revoke`: revokes a node key of this organisation from a sequence number on.
fn revoke(
    dir: &Path,
    node_key: &str,
    from_sequence: u64,
    reason: &str,
    org_key: Option<&Path>,
) -> Result<()> {
    let (org_key, own, store) = org_key_and_certificate(dir, org_key)?;
    let now_ms = store.now_ms();
    drop(store);
    let target = threatlog::log::OriginKey::from_hex(node_key)
        .context("the node key must be 64 hex digits")?;
    let revocation = threatlog::log::identity::Revocation::issue(
        &org_key,
        own.org_uuid,
        target,
        from_sequence,
        now_ms,
        reason,
    )?;
    let mut body = serde_json::Map::new();
    body.insert("revocation".into(), revocation.to_text().into());
    identity_op(dir, "revoke", body)?;
    println!("revoked node key {target} from sequence {from_sequence}");
    Ok(())
}

/// `org keys`: the organisations' bindings to org keys.
fn keys(dir: &Path, json: bool) -> Result<()> {
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
    Ok(())
}

/// `org roster …`.
fn roster(dir: &Path, command: RosterCommand) -> Result<()> {
    let mut body = serde_json::Map::new();
    match command {
        RosterCommand::Export { out, org_key } => {
            let (org_key, _, store) = org_key_and_certificate(dir, org_key.as_deref())?;
            let roster = threatlog::sync::identity::roster(&store, &org_key)?;
            std::fs::write(&out, format!("{}\n", roster.to_text()))
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "roster of {} organisations signed by org key {} written to {}",
                roster.members.len(),
                roster.operator_key,
                out.display()
            );
        }
        RosterCommand::Import { file } => {
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
        }
        RosterCommand::Trust { key, name } => {
            body.insert("key".into(), key.clone().into());
            body.insert("name".into(), name.into());
            identity_op(dir, "roster/trust", body)?;
            println!("rosters signed by {key} are now trusted");
        }
    }
    Ok(())
}
