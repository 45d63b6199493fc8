//! Secondary index keys derived from a record's state. Each key starts with one tag byte:
//!
//! | tag | key | value |
//! |---|---|---|
//! | `v` | value (case-folded), 0, attribute uuid | event uuid, correlation flag |
//! | `t` | type, 0, attribute uuid | event uuid |
//! | `c` | category, 0, attribute uuid | event uuid |
//! | `g` | tag name, 0, target uuid | event uuid |
//! | `o` | org uuid, event uuid | empty |
//! | `d` | date, 0, event uuid | empty |
//! | `s` | timestamp (big-endian), event uuid | empty |

use uuid::Uuid;

use super::{KeyValue, Record};
use crate::model;
use crate::proto::RecordKind;

/// Index tag of the attribute value index.
pub const VALUE: u8 = b'v';
/// Index tag of the attribute type index.
pub const TYPE: u8 = b't';
/// Index tag of the attribute category index.
pub const CATEGORY: u8 = b'c';
/// Index tag of the tag index.
pub const TAG: u8 = b'g';
/// Index tag of the event org index (owner and creator org).
pub const ORG: u8 = b'o';
/// Index tag of the event date index.
pub const DATE: u8 = b'd';
/// Index tag of the event timestamp index.
pub const TIMESTAMP: u8 = b's';

/// A key made of a tag, a text part, a 0 separator and a uuid.
pub fn text_key(tag: u8, text: &str, uuid: &Uuid) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + text.len() + 16);
    key.push(tag);
    key.extend_from_slice(text.as_bytes());
    key.push(0);
    key.extend_from_slice(uuid.as_bytes());
    key
}

/// A value as the value index holds it: MISP compares attribute values without regard to
/// case, so searches, correlations and sightings by value do too.
pub fn fold_value(value: &str) -> String {
    value.to_lowercase()
}

/// The prefix of every value-index key of `value`, in any case.
pub fn value_prefix(value: &str) -> Vec<u8> {
    text_prefix(VALUE, &fold_value(value))
}

/// The prefix of every key of `tag` with text part `text`.
pub fn text_prefix(tag: u8, text: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + text.len());
    key.push(tag);
    key.extend_from_slice(text.as_bytes());
    key.push(0);
    key
}

/// The index pairs of a record in its current state.
pub fn record_index(kind: RecordKind, uuid: &Uuid, record: &Record) -> Vec<KeyValue> {
    if !record.is_live() {
        return Vec::new();
    }
    match kind {
        RecordKind::Attribute => attribute_index(uuid, record),
        RecordKind::Event => event_index(uuid, record),
        _ => Vec::new(),
    }
}

fn attribute_index(uuid: &Uuid, record: &Record) -> Vec<KeyValue> {
    let event = record.event.unwrap_or_default();
    let event_bytes = event.as_bytes().to_vec();
    let mut pairs = Vec::new();
    let type_name = record.str_field("type").unwrap_or_default();
    let value = record.str_field("value").unwrap_or_default();
    let flag = |name: &str| {
        record
            .field(name)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let (indexed, correlating) = match model::registry().lookup(type_name) {
        Some(ty) => (
            model::index_values(ty, value),
            if flag("disable_correlation") || flag("deleted") {
                Vec::new()
            } else {
                model::correlation_values(ty, value)
            },
        ),
        None => (vec![value.to_string()], Vec::new()),
    };
    for part in indexed {
        let mut entry = event_bytes.clone();
        entry.push(u8::from(correlating.contains(&part)));
        pairs.push((text_key(VALUE, &fold_value(&part), uuid), entry));
    }
    pairs.push((text_key(TYPE, type_name, uuid), event_bytes.clone()));
    if let Some(category) = record.str_field("category") {
        pairs.push((text_key(CATEGORY, category, uuid), event_bytes));
    }
    pairs
}

fn event_index(uuid: &Uuid, record: &Record) -> Vec<KeyValue> {
    let mut pairs = Vec::new();
    let mut orgs: Vec<Uuid> = Vec::new();
    if let Some((owner, _)) = &record.owner {
        orgs.push(*owner);
    }
    let orgc = record
        .field("Orgc")
        .and_then(|orgc| orgc.get("uuid"))
        .and_then(|v| v.as_str())
        .and_then(|text| Uuid::parse_str(text).ok());
    if let Some(orgc) = orgc {
        if !orgs.contains(&orgc) {
            orgs.push(orgc);
        }
    }
    for org in orgs {
        let mut key = vec![ORG];
        key.extend_from_slice(org.as_bytes());
        key.extend_from_slice(uuid.as_bytes());
        pairs.push((key, Vec::new()));
    }
    if let Some(date) = record.str_field("date") {
        pairs.push((text_key(DATE, date, uuid), Vec::new()));
    }
    let timestamp = record
        .str_field("timestamp")
        .and_then(|text| text.parse::<i64>().ok());
    if let Some(timestamp) = timestamp {
        let mut key = vec![TIMESTAMP];
        key.extend_from_slice(&timestamp.to_be_bytes());
        key.extend_from_slice(uuid.as_bytes());
        pairs.push((key, Vec::new()));
    }
    pairs
}

/// The index pairs of a tag link in its current state.
pub fn tag_link_index(target: &Uuid, name: &str, event: Uuid) -> Vec<KeyValue> {
    vec![(text_key(TAG, name, target), event.as_bytes().to_vec())]
}
