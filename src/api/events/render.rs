//! An event's MISP JSON as a caller may see it: read from the views, filtered to what the
//! caller sees ([`crate::api::access::filter_event`]), with tag definitions, correlations,
//! deleted sightings left out and landed levels shown; and the lookups of one item in it.

use serde_json::{json, Value};
use uuid::Uuid;

use super::correlations::set_related_events;
use super::landed;
use crate::api::access::{filter_event, EventAccess};
use crate::api::auth::Caller;
use crate::api::error::{ApiError, INVALID_EVENT};
use crate::api::sightings::search::drop_deleted;
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::read::{self, EventOptions};

/// The event's MISP JSON as the caller may see it; `metadata` leaves out its contents.
pub fn event_json(
    node: &Node,
    caller: &Caller,
    access: &EventAccess,
    include_deleted: bool,
    metadata: bool,
) -> Result<Value, ApiError> {
    let options = EventOptions {
        include_deleted,
        correlation_max: node.config.views.correlation_max,
        ..EventOptions::default()
    };
    event_json_with(node, caller, access, options, metadata)
}

/// [`event_json`] with explicit read options (search results render only the attributes
/// they list, without correlations).
pub fn event_json_with(
    node: &Node,
    caller: &Caller,
    access: &EventAccess,
    options: EventOptions,
    metadata: bool,
) -> Result<Value, ApiError> {
    let ids = |kind: RecordKind, key: &[u8]| node.store.local_id(kind, key);
    // Correlations are drawn once the event holds only what the caller may see.
    let read_options = EventOptions {
        correlations: false,
        ..options.clone()
    };
    let mut event = read::event(&node.store.views(), &access.uuid, &ids, read_options)?
        .ok_or_else(|| ApiError::not_found(INVALID_EVENT))?;
    filter_event(node, caller, access, &mut event)?;
    node.show_tag_definitions(&mut event)?;
    crate::api::galaxies::show_galaxies(node, &mut event)?;
    if options.correlations {
        set_related_events(node, caller, access, &mut event, options.correlation_max)?;
    }
    drop_deleted(node, &mut event)?;
    landed::show_landed_levels(node, &access.uuid, &mut event);
    if let Some(fields) = event.get_mut("Event").and_then(Value::as_object_mut) {
        if let Some(orgc) = fields.get("Orgc").and_then(|o| o.get("uuid")).cloned() {
            let orgc_id = orgc
                .as_str()
                .and_then(|text| Uuid::parse_str(text).ok())
                .and_then(|uuid| {
                    node.store
                        .local_id(RecordKind::Organisation, uuid.as_bytes())
                });
            let orgc_id = orgc_id.unwrap_or(0).to_string();
            fields.insert("orgc_id".into(), json!(orgc_id));
            if let Some(orgc) = fields.get_mut("Orgc").and_then(Value::as_object_mut) {
                orgc.insert("id".into(), json!(orgc_id));
            }
        }
        if metadata {
            for list in ["Attribute", "Object", "EventReport"] {
                fields.remove(list);
            }
        }
    }
    Ok(event)
}

/// The attribute `uuid` as MISP JSON, found in an event's MISP JSON (also inside objects).
pub fn attribute_in(event: &Value, uuid: &Uuid) -> Option<Value> {
    let uuid = uuid.to_string();
    let top = event.pointer("/Event/Attribute").and_then(Value::as_array);
    let objects = event.pointer("/Event/Object").and_then(Value::as_array);
    let in_objects = objects
        .into_iter()
        .flatten()
        .filter_map(|object| object.get("Attribute").and_then(Value::as_array));
    top.into_iter()
        .chain(in_objects)
        .flatten()
        .find(|attribute| attribute.get("uuid").and_then(Value::as_str) == Some(uuid.as_str()))
        .cloned()
}

/// The `timestamp` of a stored record, if it has one.
pub fn stored_timestamp(node: &Node, kind: RecordKind, uuid: &Uuid) -> Option<i64> {
    let record = read::record(&node.store.views(), kind, uuid.as_bytes()).ok()??;
    record.str_field("timestamp")?.parse().ok()
}
