//! The distribution a record or a MISP item states (SPEC §6.1), read the one way every reader
//! needs it: the REST API's visibility checks, the CLI's imports, and the entries a change of
//! an item goes into. Pure: it reads the records and JSON it is given.

use serde_json::Value;
use uuid::Uuid;

use crate::change::{Distribution, Visibility};
use crate::view::Record;

/// The distribution and sharing group stored in a record's fields (level 0, the most
/// restrictive, when the field is absent or unreadable).
pub fn record_visibility(record: &Record) -> Visibility {
    let level = record
        .str_field("distribution")
        .and_then(|text| text.parse::<u8>().ok())
        .unwrap_or(0);
    let group = record
        .str_field("sharing_group_uuid")
        .and_then(|text| Uuid::parse_str(text).ok());
    Visibility::new(level, group)
}

/// The visibility of the entries that change an item (attribute, object, report) `record` of
/// an event whose entries carry `event`: its own, or the event's when it inherits (5).
pub fn item_entry_visibility(record: &Record, event: Visibility) -> Visibility {
    let own = record_visibility(record);
    if own.distribution.inherits() {
        event
    } else {
        own
    }
}

/// An item's distribution level as MISP JSON states it: a number or a numeric string; 5
/// (inherit, MISP's default) when absent; 0 when malformed or out of range, so that a value
/// this node cannot read hides the item instead of showing it.
pub fn item_level(distribution: Option<&Value>) -> Distribution {
    let level = match distribution {
        None | Some(Value::Null) => return Distribution::INHERIT,
        Some(Value::String(text)) => text.trim().parse::<u8>().ok(),
        Some(Value::Number(number)) => number.as_u64().and_then(|n| u8::try_from(n).ok()),
        Some(_) => None,
    };
    Distribution(
        level
            .filter(|level| *level <= Distribution::INHERIT.level())
            .unwrap_or(0),
    )
}

/// The visibility an item states in MISP JSON fields `distribution` and `sharing_group_uuid`.
pub fn item_visibility(
    distribution: Option<&Value>,
    sharing_group_uuid: Option<&Value>,
) -> Visibility {
    Visibility {
        distribution: item_level(distribution),
        sharing_group: sharing_group_uuid
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::item_level;
    use crate::change::Distribution;
    use serde_json::json;

    #[test]
    fn an_item_level_this_node_cannot_read_hides_the_item() {
        assert_eq!(item_level(None), Distribution(5));
        assert_eq!(item_level(Some(&json!(null))), Distribution(5));
        assert_eq!(item_level(Some(&json!("1"))), Distribution(1));
        // Numbers count as the level they are, not as "inherit".
        assert_eq!(item_level(Some(&json!(0))), Distribution(0));
        assert_eq!(item_level(Some(&json!(4))), Distribution(4));
        for malformed in [
            json!("x"),
            json!(9),
            json!(-1),
            json!(1.5),
            json!([]),
            json!({}),
        ] {
            assert_eq!(item_level(Some(&malformed)), Distribution(0), "{malformed}");
        }
    }
}
