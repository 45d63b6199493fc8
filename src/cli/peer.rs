//! `threatlog peer`: pairing and each peer's sync policy.

use anyhow::Result;
use clap::Subcommand;
use std::path::Path;
use uuid::Uuid;

use super::client::server_op;

#[derive(Subcommand)]
pub enum PeerCommand {
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
pub struct PeerPolicyArgs {
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

/// Runs a `peer` command.
pub fn run(dir: &Path, command: PeerCommand) -> Result<()> {
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
