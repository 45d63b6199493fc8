//! `threatlog audit replay` (the state at an instant, as MISP JSON) and `threatlog audit
//! history` (every entry that touched an event or attribute).

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use super::{format_time_ms, AuditError, Source};
use crate::log::VerifiedEntry;
use crate::proto::{op::Op, RecordKind};
use crate::view::read::{self, EventOptions};
use crate::view::{self, MemoryViews};

/// The state as of `at_ms`: every entry with an origin time at or before it, replayed into
/// fresh views. Returns `{"Event": …}` for one event (an error if it did not exist then), or
/// `{"response": [{"Event": …}, …]}` for every event.
pub fn replay(source: &Source, at_ms: i64, event: Option<Uuid>) -> Result<Value, AuditError> {
    let mut views = MemoryViews::new();
    source.for_each_entry(&mut |entry| {
        if entry.entry().time_ms <= at_ms {
            view::apply(&mut views, &entry).map_err(|e| AuditError::Failed(e.to_string()))?;
        }
        Ok(true)
    })?;
    // Replayed views have no local numeric ids: those are a node's, not the log's.
    let ids = |_: RecordKind, _: &[u8]| None;
    let options = || EventOptions {
        correlations: false,
        ..EventOptions::default()
    };
    let render = |uuid: &Uuid| -> Result<Option<Value>, AuditError> {
        read::event(&views, uuid, &ids, options()).map_err(|e| AuditError::Failed(e.to_string()))
    };
    match event {
        Some(uuid) => match render(&uuid)? {
            Some(value) => Ok(value),
            None => Err(AuditError::Usage(format!(
                "event {uuid} did not exist (or was deleted) at {}",
                format_time_ms(at_ms)
            ))),
        },
        None => {
            let mut events = Vec::new();
            for summary in read::events(&views).map_err(|e| AuditError::Failed(e.to_string()))? {
                if let Some(value) = render(&summary.uuid)? {
                    events.push(value);
                }
            }
            Ok(json!({ "response": events }))
        }
    }
}

/// One entry that touched the subject of a history.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Change {
    /// Origin time, ms since the Unix epoch.
    pub time_ms: i64,
    /// The same time in RFC 3339.
    pub time: String,
    /// Origin key hex.
    pub origin: String,
    /// Sequence in the origin's log.
    pub sequence: u64,
    /// Acting organisation uuid.
    pub org: Uuid,
    /// Its name, when the log names it.
    pub org_name: Option<String>,
    /// Acting user.
    pub user: String,
    /// What changed, one line per op that concerns the subject.
    pub changes: Vec<String>,
}

fn uuid_of(bytes: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(bytes).ok()
}

fn kind_name(kind: i32) -> &'static str {
    match RecordKind::try_from(kind).unwrap_or(RecordKind::Unspecified) {
        RecordKind::Event => "event",
        RecordKind::Attribute => "attribute",
        RecordKind::Object => "object",
        RecordKind::Reference => "reference",
        RecordKind::EventReport => "event report",
        RecordKind::SharingGroup => "sharing group",
        RecordKind::Organisation => "organisation",
        RecordKind::Tag => "tag",
        RecordKind::Unspecified => "record",
    }
}

fn fields(json: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Map<String, Value>>(json) {
        Ok(map) => map
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => format!("{key}={text:?}"),
                other => format!("{key}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(_) => "(unreadable fields)".into(),
    }
}

/// What each op of `entry` did to `subject` (all ops when the subject is the entry's event;
/// the deletion of an event that `subject` belongs to, per `events`, which this extends).
fn describe(entry: &VerifiedEntry, subject: &Uuid, events: &mut HashSet<Uuid>) -> Vec<String> {
    let whole_event = entry.event() == Some(*subject);
    let mut out = Vec::new();
    for op in entry.entry().ops.iter().filter_map(|op| op.op.as_ref()) {
        let (concerns, text) = match op {
            Op::Set(set) => {
                let key = uuid_of(&set.key);
                let concerns = key == Some(*subject) || uuid_of(&set.parent) == Some(*subject);
                let name = key.map_or_else(
                    || String::from_utf8_lossy(&set.key).into_owned(),
                    |k| k.to_string(),
                );
                (
                    concerns,
                    format!(
                        "set {} {name}: {}",
                        kind_name(set.kind),
                        fields(&set.fields_json)
                    ),
                )
            }
            Op::Tag(tag) => (
                uuid_of(&tag.target) == Some(*subject),
                format!(
                    "{} tag {}{} {} {}",
                    if tag.attached { "attached" } else { "detached" },
                    tag.name,
                    if tag.local { " (local)" } else { "" },
                    if tag.attached { "to" } else { "from" },
                    uuid_of(&tag.target)
                        .map(|u| u.to_string())
                        .unwrap_or_default()
                ),
            ),
            Op::Sighting(sighting) => (
                uuid_of(&sighting.attribute) == Some(*subject),
                format!(
                    "sighting {} on attribute {}: {}",
                    uuid_of(&sighting.uuid)
                        .map(|u| u.to_string())
                        .unwrap_or_default(),
                    uuid_of(&sighting.attribute)
                        .map(|u| u.to_string())
                        .unwrap_or_default(),
                    fields(&sighting.fields_json)
                ),
            ),
            Op::Erase(erase) => (
                uuid_of(&erase.key) == Some(*subject),
                format!(
                    "erased {} {}",
                    kind_name(erase.kind),
                    uuid_of(&erase.key)
                        .map(|u| u.to_string())
                        .unwrap_or_default()
                ),
            ),
            Op::Tombstone(tombstone) => (
                entry.event().is_some_and(|event| events.contains(&event)),
                format!("deleted the event (reason: {:?})", tombstone.reason),
            ),
            // Identity statements name no event or attribute.
            Op::Certificate(_) | Op::Revocation(_) => (false, String::new()),
        };
        if whole_event || concerns {
            out.push(text);
            if let Some(event) = entry.event() {
                events.insert(event);
            }
        }
    }
    out
}

/// Every entry that touched event or attribute `subject`, in time order (then origin and
/// sequence).
pub fn history(source: &Source, subject: &Uuid) -> Result<Vec<Change>, AuditError> {
    let mut org_names: HashMap<Uuid, String> = HashMap::new();
    let mut events = HashSet::new();
    let mut out = Vec::new();
    source.for_each_entry(&mut |entry| {
        for op in entry.entry().ops.iter().filter_map(|op| op.op.as_ref()) {
            if let Op::Set(set) = op {
                if set.kind == RecordKind::Organisation as i32 {
                    let name = serde_json::from_slice::<Value>(&set.fields_json)
                        .ok()
                        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string));
                    if let (Some(uuid), Some(name)) = (uuid_of(&set.key), name) {
                        org_names.insert(uuid, name);
                    }
                }
            }
        }
        let changes = describe(&entry, subject, &mut events);
        if !changes.is_empty() {
            out.push(Change {
                time_ms: entry.entry().time_ms,
                time: format_time_ms(entry.entry().time_ms),
                origin: entry.origin().to_string(),
                sequence: entry.sequence(),
                org: entry.acting_org(),
                org_name: None,
                user: entry.entry().acting_user.clone(),
                changes,
            });
        }
        Ok(true)
    })?;
    for change in &mut out {
        change.org_name = org_names.get(&change.org).cloned();
    }
    out.sort_by(|a, b| (a.time_ms, &a.origin, a.sequence).cmp(&(b.time_ms, &b.origin, b.sequence)));
    Ok(out)
}
