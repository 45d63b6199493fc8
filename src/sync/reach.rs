//! The reach of events and entries (SPEC §6.1), read from the views: a distribution level and,
//! for level 4, the sharing group's members. What both the release policy (what a peer may
//! receive) and the receiver's checks (what arrived further than it may) start from.

use serde_json::Value;
use uuid::Uuid;

use crate::log::{OriginKey, VerifiedEntry};
use crate::policy::authority::directory::member_org;
use crate::policy::{Group, Reach};
use crate::proto::{op::Op, RecordKind};
use crate::view::{read, KvError, Record, ViewRead};

/// A sharing group's members as the policy needs them, from its view record.
pub fn group_of(record: &Record) -> Group {
    let mut group = Group {
        roaming: record.field("roaming").and_then(Value::as_bool) == Some(true),
        ..Group::default()
    };
    if record.field("deleted").and_then(Value::as_bool) == Some(true) {
        return group;
    }
    for field in ["SharingGroupOrg", "organisations"] {
        if let Some(members) = record.field(field).and_then(Value::as_array) {
            group.orgs.extend(members.iter().filter_map(member_org));
        }
    }
    if let Some(nodes) = record.field("nodes").and_then(Value::as_array) {
        group.nodes.extend(
            nodes
                .iter()
                .filter_map(Value::as_str)
                .filter_map(OriginKey::from_hex),
        );
    }
    group
}

/// The reach of a distribution level and sharing group read from the views.
pub fn reach(views: &dyn ViewRead, level: u32, group: Option<Uuid>) -> Result<Reach, KvError> {
    Ok(match level {
        5 => Reach::Inherit,
        4 => Reach::Group(match group {
            Some(uuid) => read::record(views, RecordKind::SharingGroup, uuid.as_bytes())?
                .map(|r| group_of(&r)),
            None => None,
        }),
        level => Reach::Level(level.min(4) as u8),
    })
}

/// The reach an event record states.
pub fn event_reach(views: &dyn ViewRead, record: &Record) -> Result<Reach, KvError> {
    let level = record
        .str_field("distribution")
        .and_then(|text| text.parse::<u32>().ok())
        .unwrap_or(0);
    let group = record
        .str_field("sharing_group_uuid")
        .and_then(|text| Uuid::parse_str(text).ok());
    reach(views, level, group)
}

/// The reach an entry's own visibility states.
pub fn entry_reach(views: &dyn ViewRead, entry: &VerifiedEntry) -> Result<Reach, KvError> {
    let visibility = entry.entry().visibility.clone().unwrap_or_default();
    let group = Uuid::from_slice(&visibility.sharing_group).ok();
    reach(views, visibility.distribution, group)
}

/// The event distribution an entry itself sets, if it sets one.
pub fn stated_event_reach(
    views: &dyn ViewRead,
    entry: &VerifiedEntry,
    event: &Uuid,
) -> Result<Option<Reach>, KvError> {
    match stated_event_level(entry, event) {
        Some((level, group)) => Ok(Some(reach(views, level, group)?)),
        None => Ok(None),
    }
}

/// The distribution level and sharing group `entry` sets on `event`, if it sets a level.
pub fn stated_event_level(entry: &VerifiedEntry, event: &Uuid) -> Option<(u32, Option<Uuid>)> {
    entry.entry().ops.iter().find_map(|op| {
        let Some(Op::Set(set)) = &op.op else {
            return None;
        };
        if set.kind != RecordKind::Event as i32 || set.key.as_ref() != event.as_bytes() {
            return None;
        }
        let fields = serde_json::from_slice::<Value>(&set.fields_json).ok()?;
        let level = fields.get("distribution").and_then(|value| match value {
            Value::String(text) => text.parse::<u32>().ok(),
            other => other.as_u64().map(|n| n as u32),
        })?;
        let group = fields
            .get("sharing_group_uuid")
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text).ok());
        Some((level, group))
    })
}
