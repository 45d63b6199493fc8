//! Who may see and change what (SPEC §6.1 for users of one node): a user sees their own
//! organisation's events always, other organisations' by distribution (0 owner only; 1–3 every
//! organisation with users here; 4 the sharing group's members); site admins see everything.
//! Only the owner organisation changes an event (SPEC §4.2): a site admin of another
//! organisation would sign an entry that every peer refuses.

use serde_json::Value;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::request::truthy;
use crate::change::{self, Visibility};
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::{read, Record};

/// An event the caller may see.
#[derive(Clone, Debug)]
pub struct EventAccess {
    /// The event uuid.
    pub uuid: Uuid,
    /// Its local id.
    pub id: u64,
    /// Its view record.
    pub record: Record,
    /// The visibility entries about the event carry: [`change::INHERIT`], so that the
    /// event's reach when an entry is released decides, not its reach when it was written.
    pub visibility: Visibility,
    /// Whether the caller may change it: its organisation owns the event.
    pub editable: bool,
}

/// The distribution and sharing group stored in a record's fields.
pub fn record_visibility(record: &Record) -> Visibility {
    let level = record
        .str_field("distribution")
        .and_then(|text| text.parse::<u8>().ok())
        .unwrap_or(0);
    let group = record
        .str_field("sharing_group_uuid")
        .and_then(|text| Uuid::parse_str(text).ok());
    (level, group)
}

/// The visibility of the entries that change an item (attribute, object, report) `record` of
/// an event whose entries carry `event`: its own, or the event's when it inherits (5).
pub fn item_entry_visibility(record: &Record, event: Visibility) -> Visibility {
    match record_visibility(record) {
        (5, _) => event,
        own => own,
    }
}

/// Whether `org` is a member of sharing group `group`: listed in its record's
/// `SharingGroupOrg[].Organisation.uuid`, `SharingGroupOrg[].org_uuid` or `organisations`
/// (the uuid list [`super::sharing_groups`] writes), unless the group is deleted.
pub fn is_member(node: &Node, group: &Uuid, org: &Uuid) -> Result<bool, ApiError> {
    let Some(record) = read::record(
        &node.store.views(),
        RecordKind::SharingGroup,
        group.as_bytes(),
    )?
    else {
        return Ok(false);
    };
    // A deleted group (the API sets `deleted`) has no members left.
    if record.field("deleted").and_then(Value::as_bool) == Some(true) {
        return Ok(false);
    }
    let org = org.to_string();
    let listed = |list: Option<&Value>| {
        list.and_then(Value::as_array).is_some_and(|members| {
            members.iter().any(|member| {
                let uuid = member
                    .pointer("/Organisation/uuid")
                    .or_else(|| member.get("org_uuid"))
                    .or_else(|| member.get("uuid"))
                    .or(Some(member));
                uuid.and_then(Value::as_str) == Some(org.as_str())
            })
        })
    };
    Ok(listed(record.field("SharingGroupOrg")) || listed(record.field("organisations")))
}

/// Whether `caller` may see an item with `visibility` in an event owned by `owner` (level 5
/// inherits the event's).
pub fn may_see(
    node: &Node,
    caller: &Caller,
    owner: Option<Uuid>,
    visibility: Visibility,
) -> Result<bool, ApiError> {
    if caller.role.site_admin || owner == Some(caller.org.uuid) {
        return Ok(true);
    }
    Ok(match visibility {
        // Level 5 inherits the event's, which the caller was already checked against.
        (1..=3, _) | (5, _) => true,
        (4, Some(group)) => is_member(node, &group, &caller.org.uuid)?,
        _ => false,
    })
}

/// The event `uuid` if it exists and `caller` may see it.
pub fn event_access(
    node: &Node,
    caller: &Caller,
    uuid: &Uuid,
) -> Result<Option<EventAccess>, ApiError> {
    let Some(record) = read::record(&node.store.views(), RecordKind::Event, uuid.as_bytes())?
    else {
        return Ok(None);
    };
    if !record.is_live() {
        return Ok(None);
    }
    let owner = record.owner.as_ref().map(|(org, _)| *org);
    let visibility = record_visibility(&record);
    if !may_see(node, caller, owner, visibility)? {
        return Ok(None);
    }
    Ok(Some(EventAccess {
        uuid: *uuid,
        id: node
            .store
            .local_id(RecordKind::Event, uuid.as_bytes())
            .unwrap_or(0),
        editable: owner == Some(caller.org.uuid),
        visibility: change::INHERIT,
        record,
    }))
}

/// An item's distribution level as MISP JSON states it: a number or a numeric string; 5
/// (inherit, MISP's default) when absent; 0 when malformed or out of range, so that a value
/// this node cannot read hides the item instead of showing it.
fn item_level(distribution: Option<&Value>) -> u8 {
    let level = match distribution {
        None | Some(Value::Null) => return 5,
        Some(Value::String(text)) => text.trim().parse::<u8>().ok(),
        Some(Value::Number(number)) => number.as_u64().and_then(|n| u8::try_from(n).ok()),
        Some(_) => None,
    };
    level.filter(|level| *level <= 5).unwrap_or(0)
}

/// Whether an item (attribute, object, report) with MISP fields `distribution` and
/// `sharing_group_uuid` is visible to `caller` inside a visible event owned by someone else:
/// its own distribution must allow it too (5 inherits).
fn item_visible_by(
    node: &Node,
    caller: &Caller,
    distribution: Option<&Value>,
    sharing_group_uuid: Option<&Value>,
) -> Result<bool, ApiError> {
    let level = item_level(distribution);
    let group = sharing_group_uuid
        .and_then(Value::as_str)
        .and_then(|text| Uuid::parse_str(text).ok());
    match level {
        5 => Ok(true),
        level => may_see(node, caller, None, (level, group)),
    }
}

/// [`item_visible_by`] of an item as MISP JSON.
fn item_visible(node: &Node, caller: &Caller, item: &Value) -> Result<bool, ApiError> {
    let field = |name: &str| item.get(name);
    item_visible_by(
        node,
        caller,
        field("distribution"),
        field("sharing_group_uuid"),
    )
}

/// Whether `caller` may see the live attribute `record` of the visible event `access`: owners
/// and site admins see all of it; others need the attribute's own distribution and, when it
/// belongs to an object, the object's to allow it too, as [`filter_event`] decides. An object
/// this node does not hold hides its attributes.
pub fn attribute_visible(
    node: &Node,
    caller: &Caller,
    access: &EventAccess,
    record: &Record,
) -> Result<bool, ApiError> {
    if access.editable || caller.role.site_admin {
        return Ok(true);
    }
    let field = |name: &str| record.field(name);
    if !item_visible_by(
        node,
        caller,
        field("distribution"),
        field("sharing_group_uuid"),
    )? {
        return Ok(false);
    }
    let Some(object) = record.parent() else {
        return Ok(true);
    };
    match read::record(&node.store.views(), RecordKind::Object, object.as_bytes())? {
        Some(object) if object.is_live() => {
            let field = |name: &str| object.field(name);
            item_visible_by(
                node,
                caller,
                field("distribution"),
                field("sharing_group_uuid"),
            )
        }
        _ => Ok(false),
    }
}

/// The attribute `attribute` of event `event`, found by correlation, if it is live and
/// `caller` may see it and its event.
pub fn correlated_attribute(
    node: &Node,
    caller: &Caller,
    attribute: &Uuid,
    event: &Uuid,
) -> Result<Option<(EventAccess, Record)>, ApiError> {
    let Some(access) = event_access(node, caller, event)? else {
        return Ok(None);
    };
    let Some(record) = read::record(
        &node.store.views(),
        RecordKind::Attribute,
        attribute.as_bytes(),
    )?
    .filter(Record::is_live) else {
        return Ok(None);
    };
    if record.field("deleted").is_some_and(truthy)
        || !attribute_visible(node, caller, &access, &record)?
    {
        return Ok(None);
    }
    Ok(Some((access, record)))
}

/// Removes from an event's MISP JSON (`{"Event": …}`) the attributes, objects and reports the
/// caller may not see. Owners see all of their event's contents.
pub fn filter_event(
    node: &Node,
    caller: &Caller,
    access: &EventAccess,
    event: &mut Value,
) -> Result<(), ApiError> {
    if access.editable {
        return Ok(());
    }
    for list in ["Attribute", "Object", "EventReport"] {
        if let Some(items) = event
            .pointer_mut(&format!("/Event/{list}"))
            .and_then(Value::as_array_mut)
        {
            let mut kept = Vec::with_capacity(items.len());
            for mut item in std::mem::take(items) {
                if !item_visible(node, caller, &item)? {
                    continue;
                }
                if let Some(inner) = item.get_mut("Attribute").and_then(Value::as_array_mut) {
                    let mut visible = Vec::new();
                    for attribute in std::mem::take(inner) {
                        if item_visible(node, caller, &attribute)? {
                            visible.push(attribute);
                        }
                    }
                    *inner = visible;
                }
                kept.push(item);
            }
            *items = kept;
        }
    }
    Ok(())
}

/// A live attribute the caller may see, with its event's access and the visibility its
/// entries carry (its own, or its event's when it inherits).
pub struct VisibleAttribute {
    /// The attribute's view record.
    pub record: Record,
    /// Its event.
    pub access: EventAccess,
    /// The visibility of entries about the attribute.
    pub visibility: Visibility,
}

/// The attribute `uuid` if it is live and `caller` may see it.
pub fn visible_attribute(
    node: &Node,
    caller: &Caller,
    uuid: &Uuid,
) -> Result<Option<VisibleAttribute>, ApiError> {
    let Some(record) = read::record(&node.store.views(), RecordKind::Attribute, uuid.as_bytes())?
        .filter(Record::is_live)
    else {
        return Ok(None);
    };
    let Some(event) = record.event else {
        return Ok(None);
    };
    let Some(access) = event_access(node, caller, &event)? else {
        return Ok(None);
    };
    if !attribute_visible(node, caller, &access, &record)? {
        return Ok(None);
    }
    let visibility = item_entry_visibility(&record, access.visibility);
    Ok(Some(VisibleAttribute {
        record,
        access,
        visibility,
    }))
}

#[cfg(test)]
mod tests {
    use super::item_level;
    use serde_json::json;

    #[test]
    fn an_item_level_this_node_cannot_read_hides_the_item() {
        assert_eq!(item_level(None), 5);
        assert_eq!(item_level(Some(&json!(null))), 5);
        assert_eq!(item_level(Some(&json!("1"))), 1);
        // Numbers count as the level they are, not as "inherit".
        assert_eq!(item_level(Some(&json!(0))), 0);
        assert_eq!(item_level(Some(&json!(4))), 4);
        for malformed in [
            json!("x"),
            json!(9),
            json!(-1),
            json!(1.5),
            json!([]),
            json!({}),
        ] {
            assert_eq!(item_level(Some(&malformed)), 0, "{malformed}");
        }
    }
}
