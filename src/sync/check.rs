//! The receiver's checks on each entry from a peer (SPEC §7), beyond signature and chain
//! (which decoding and the store do): write authority, event ownership and hop rules.

use serde_json::Value;
use uuid::Uuid;

use super::release::{entry_reach, event_reach, reach};
use crate::log::VerifiedEntry;
use crate::policy::{check_arrival, Party, Reach};
use crate::proto::{op::Op, RecordKind};
use crate::view::{read, ViewRead};

/// Prefix of rejection reasons that are policy violations by the sending peer.
pub const VIOLATION: &str = "policy violation";

/// Checks `entry`, sent by `sender` to `receiver`, against the views `views`.
pub fn check_entry(
    sender: Party,
    receiver: Party,
    entry: &VerifiedEntry,
    views: &dyn ViewRead,
) -> Result<(), String> {
    let kv = |error: crate::view::KvError| error.to_string();
    let acting = entry.acting_org();
    let origin = Party {
        node: entry.origin(),
        org: entry.origin_org(),
    };
    if acting != origin.org && !is_registered_local(views, &acting).map_err(kv)? {
        return Err(format!(
            "write authority: node of org {} acts for org {acting}, which it has not registered",
            origin.org
        ));
    }
    let Some(event) = entry.event() else {
        // Directory data (organisations, tag definitions, sharing groups) is released to
        // every peer by the directory rule; it has no hop limit to check.
        return Ok(());
    };
    let ops = &entry.entry().ops;
    let only_sightings =
        !ops.is_empty() && ops.iter().all(|op| matches!(op.op, Some(Op::Sighting(_))));
    let record = read::record(views, RecordKind::Event, event.as_bytes()).map_err(kv)?;
    if let Some((owner, _)) = record.as_ref().and_then(|record| record.owner.as_ref()) {
        if *owner != acting && !only_sightings {
            return Err(format!(
                "ownership conflict: event {event} is owned by org {owner}; entry acts for org {acting}"
            ));
        }
    }
    // The event's level as held here (the latest write wins, so a revealed old entry is
    // judged by the event's level now); for an event not held yet, or held only in part (a
    // publish revealed before its event's fields), the level the entry itself sets.
    let event_level = match record.filter(|record| record.field("distribution").is_some()) {
        Some(record) => event_reach(views, &record).map_err(kv)?,
        None => stated_event_reach(views, entry, &event)
            .map_err(kv)?
            .unwrap_or(Reach::Inherit),
    };
    let item = entry_reach(views, entry).map_err(kv)?;
    for level in [&event_level, &item] {
        check_arrival(sender, receiver, origin, level)
            .map_err(|violation| format!("{VIOLATION}: {}", violation.reason))?;
    }
    Ok(())
}

/// Whether `org` is recorded as an organisation with users on its node (registered local).
fn is_registered_local(views: &dyn ViewRead, org: &Uuid) -> Result<bool, crate::view::KvError> {
    Ok(
        read::record(views, RecordKind::Organisation, org.as_bytes())?
            .is_some_and(|record| record.field("local").and_then(Value::as_bool) == Some(true)),
    )
}

/// The event distribution an entry itself sets, if it sets one.
fn stated_event_reach(
    views: &dyn ViewRead,
    entry: &VerifiedEntry,
    event: &Uuid,
) -> Result<Option<Reach>, crate::view::KvError> {
    for op in &entry.entry().ops {
        let Some(Op::Set(set)) = &op.op else { continue };
        if set.kind != RecordKind::Event as i32 || set.key.as_ref() != event.as_bytes() {
            continue;
        }
        let Ok(fields) = serde_json::from_slice::<Value>(&set.fields_json) else {
            continue;
        };
        let level = fields.get("distribution").and_then(|value| match value {
            Value::String(text) => text.parse::<u32>().ok(),
            other => other.as_u64().map(|n| n as u32),
        });
        if let Some(level) = level {
            let group = fields
                .get("sharing_group_uuid")
                .and_then(Value::as_str)
                .and_then(|text| Uuid::parse_str(text).ok());
            return Ok(Some(reach(views, level, group)?));
        }
    }
    Ok(None)
}
