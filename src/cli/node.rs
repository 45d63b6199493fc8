//! `threatlog init` and `serve`, and the append loop the crash-safety test drives.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

use super::open;
use threatlog::change;
use threatlog::log::VerifiedEntry;
use threatlog::model::Event;
use threatlog::node::{InitReport, Node};

/// `threatlog init`: creates the node in `dir`.
pub fn init(
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
    print_init_report(dir, &report);
    Ok(())
}

/// What a new node is: its keys, organisation and admin user, with the admin key shown once.
fn print_init_report(dir: &Path, report: &InitReport) {
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
}

/// `threatlog serve`: runs the node in `dir`, initialising an empty directory first.
pub fn serve(dir: &Path, api_listen: Option<String>, sync_listen: Option<String>) -> Result<()> {
    if let Some(report) = threatlog::run::init_if_empty(dir)? {
        print_init_report(dir, &report);
    }
    let node = open(dir)?;
    for line in threatlog::interop::io::catalog::load_configured(&node)? {
        println!("{line}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(threatlog::run::serve(
        node,
        api_listen,
        sync_listen,
        |url| {
            println!("REST API listening on {url}");
        },
    ))?;
    Ok(())
}

/// The `index`th event of the append loop: one ip-dst attribute, TLP green, community only.
fn loop_event(index: u64) -> Result<Event> {
    let document = json!({"Event": {
        "info": format!("append loop event {index}"),
        "date": "2026-01-01",
        "distribution": 1,
        "Tag": [{"name": "tlp:green"}],
        "Attribute": [{
            "type": "ip-dst",
            "value": format!("10.{}.{}.{}", (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff),
        }],
    }});
    Ok(Event::from_json(&document)?)
}

/// `threatlog append-loop` (test support): appends one small event per durable write,
/// printing `acked EVENT ORIGIN:SEQ` after each write returns; stops after `count` appends
/// (0: never).
pub fn append_loop(node: &Node, count: u64) -> Result<()> {
    let actor = node.system_actor();
    let stdout = std::io::stdout();
    let mut index = 0u64;
    while count == 0 || index < count {
        let event = loop_event(index)?;
        let appended = node.append(change::event_drafts(&event, &actor))?;
        let last = appended.entries.last().map(VerifiedEntry::id);
        if let Some(id) = last {
            let mut out = stdout.lock();
            writeln!(out, "acked {} {id}", event.uuid)?;
            out.flush()?;
        }
        index += 1;
    }
    Ok(())
}
