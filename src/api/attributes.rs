//! `/attributes/…`: add (one, a list, or a value list), edit, delete (soft or hard), view.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, DUPLICATE_ATTRIBUTE, INVALID_ATTRIBUTE};
use super::events::{
    editable_event, event_json, event_json_with, now_seconds, stored_timestamp, visible_event,
};
use super::request::{flag_field, parse_ref, JsonBody};
use super::visibility::{event_access, item_entry_visibility, EventAccess};
use super::ApiState;
use crate::change::{self, Visibility};
use crate::model::Attribute;
use crate::node::Node;
use crate::proto::{self, RecordKind};
use crate::view::read::EventOptions;
use crate::view::{read, Record};

/// MISP's name for a refused attribute write.
const NOT_ADDED: &str = "Could not add Attribute";
/// MISP's name for a refused attribute edit.
const NOT_EDITED: &str = "Could not edit Attribute";

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

/// A visible attribute: its uuid, record and event.
struct Found {
    uuid: Uuid,
    record: Record,
    event: EventAccess,
}

/// The attribute named by `text` (id or uuid) if the caller may see it, else MISP's 404.
fn find(node: &Node, caller: &Caller, text: &str) -> Result<Found, ApiError> {
    let missing = || ApiError::not_found(INVALID_ATTRIBUTE);
    let uuid = parse_ref(text)
        .and_then(|reference| reference.resolve(node, RecordKind::Attribute))
        .ok_or_else(missing)?;
    let record = read::record(&node.store.views(), RecordKind::Attribute, uuid.as_bytes())?
        .filter(Record::is_live)
        .ok_or_else(missing)?;
    let event = record.event.ok_or_else(missing)?;
    let event = event_access(node, caller, &event)?.ok_or_else(missing)?;
    let json = event_json(node, caller, &event, true, false)?;
    attribute_in(&json, &uuid).ok_or_else(missing)?;
    Ok(Found {
        uuid,
        record,
        event,
    })
}

/// The op that unpublishes the event and moves its timestamp, as MISP does on every change
/// of its contents.
pub(super) fn touch_event(event: &Uuid) -> proto::Op {
    let mut fields = Map::new();
    fields.insert("published".into(), json!(false));
    fields.insert("timestamp".into(), json!(now_seconds().to_string()));
    change::record_op(RecordKind::Event, event.as_bytes(), None, &fields)
}

/// Appends `ops` at `visibility` and, at the event's own visibility, the op that unpublishes
/// the event and bumps its timestamp, as MISP does on every change inside an event.
pub(super) fn append_touching(
    node: &Node,
    caller: &Caller,
    event: &EventAccess,
    visibility: Visibility,
    ops: Vec<proto::Op>,
) -> Result<(), ApiError> {
    let actor = caller.actor();
    let mut drafts = change::event_ops_drafts(event.uuid, visibility, ops, &actor);
    drafts.extend(change::event_ops_drafts(
        event.uuid,
        event.visibility,
        vec![touch_event(&event.uuid)],
        &actor,
    ));
    node.append(drafts)?;
    Ok(())
}

/// The attributes of an add request: one object, a list, or one object whose `value` is a
/// list (one attribute per value).
fn requested(body: &JsonBody) -> Result<Vec<Value>, ApiError> {
    let missing = || ApiError::validation(NOT_ADDED, "value", "The request has no attribute.");
    match body.0.as_ref().ok_or_else(missing)? {
        Value::Array(items) => Ok(items.clone()),
        Value::Object(_) => {
            let object = body.object("Attribute");
            match object.get("value") {
                Some(Value::Array(values)) => {
                    let expanded = values
                        .iter()
                        .map(|value| {
                            let mut one = object.clone();
                            one.insert("value".into(), value.clone());
                            Value::Object(one)
                        })
                        .collect();
                    Ok(expanded)
                }
                _ => Ok(vec![Value::Object(object)]),
            }
        }
        _ => Err(missing()),
    }
}

/// Refuses attributes whose type, category and value repeat one already in the event (outside
/// objects) or earlier in the request, or whose uuid exists.
fn check_new(node: &Node, existing: &Value, attributes: &[Attribute]) -> Result<(), ApiError> {
    let key = |a: &Value| {
        let field = |name| {
            a.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (field("type"), field("category"), field("value"))
    };
    let mut seen: Vec<(String, String, String)> = existing
        .pointer("/Event/Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a.get("deleted") != Some(&json!(true)))
        .map(key)
        .collect();
    for attribute in attributes {
        let this = (
            attribute.attribute_type_name().to_string(),
            attribute.category.clone(),
            attribute.value.clone(),
        );
        if seen.contains(&this) {
            return Err(ApiError::validation(
                NOT_ADDED,
                "value",
                DUPLICATE_ATTRIBUTE,
            ));
        }
        seen.push(this);
        if read::record(
            &node.store.views(),
            RecordKind::Attribute,
            attribute.uuid.as_bytes(),
        )?
        .is_some()
        {
            return Err(ApiError::validation(
                NOT_ADDED,
                "uuid",
                "An attribute with this uuid already exists.",
            ));
        }
    }
    Ok(())
}

/// `POST /attributes/add/{event}`.
pub async fn add(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<Vec<(String, String)>>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let event_ref = params
        .iter()
        .find(|(name, _)| name == "event")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let json = state
        .blocking(move |node| {
            // MISP looks the event up first: a bad event reference is 404 whatever the body.
            let event = editable_event(node, &caller, &event_ref)?;
            let now = now_seconds();
            let mut attributes = Vec::new();
            for item in requested(&body)? {
                let mut attribute = Attribute::from_json(&item)
                    .map_err(|error| ApiError::model(NOT_ADDED, &error))?;
                attribute.timestamp = Some(attribute.timestamp.unwrap_or(now));
                attributes.push(attribute);
            }
            let existing = event_json(node, &caller, &event, false, false)?;
            check_new(node, &existing, &attributes)?;
            super::taxonomies::check_attributes(node, &attributes, NOT_ADDED)?;
            let extra = vec![touch_event(&event.uuid)];
            let drafts = change::attribute_drafts(
                event.uuid,
                event.visibility,
                &attributes,
                extra,
                &caller.actor(),
            );
            node.append(drafts)?;
            let after = event_json(node, &caller, &event, false, false)?;
            let added: Vec<Value> = attributes
                .iter()
                .filter_map(|attribute| attribute_in(&after, &attribute.uuid))
                .collect();
            // PyMISP reads one attribute as an object, several as a list.
            Ok(match <[Value; 1]>::try_from(added) {
                Ok([one]) => json!({ "Attribute": one }),
                Err(added) => json!({ "Attribute": added }),
            })
        })
        .await?;
    Ok(Json(json))
}

/// `POST /attributes/edit/{id}`: the body's fields replace the attribute's.
pub async fn edit(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let changes = body.object("Attribute");
    let json = state
        .blocking(move |node| {
            let found = find(node, &caller, &id)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            let sent = changes
                .get("timestamp")
                .and_then(|t| t.as_i64().or_else(|| t.as_str()?.parse().ok()));
            let stored = stored_timestamp(node, RecordKind::Attribute, &found.uuid);
            if let (Some(sent), Some(stored)) = (sent, stored) {
                if sent <= stored {
                    return Err(ApiError::validation(
                        NOT_EDITED,
                        "timestamp",
                        "Attribute in the request not newer than the local copy.",
                    ));
                }
            }
            let mut merged = found.record.values();
            merged.extend(changes.clone());
            merged.insert("uuid".into(), json!(found.uuid.to_string()));
            if !changes.contains_key("timestamp") {
                merged.insert("timestamp".into(), json!(now_seconds()));
            }
            let attribute = Attribute::from_json(&Value::Object(merged))
                .map_err(|error| ApiError::model(NOT_EDITED, &error))?;
            super::taxonomies::check_attributes(
                node,
                std::slice::from_ref(&attribute),
                NOT_EDITED,
            )?;
            let drafts = change::attribute_drafts(
                event.uuid,
                event.visibility,
                &[attribute],
                vec![touch_event(&event.uuid)],
                &caller.actor(),
            );
            node.append(drafts)?;
            let after = event_json(node, &caller, &event, true, false)?;
            let attribute = attribute_in(&after, &found.uuid)
                .ok_or_else(|| ApiError::not_found(INVALID_ATTRIBUTE))?;
            Ok(json!({ "Attribute": attribute }))
        })
        .await?;
    Ok(Json(json))
}

/// `POST /attributes/delete/{id}`: soft delete, or erase with `{"hard": 1}`.
pub async fn delete(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let hard = flag_field(&body.object("Attribute"), "hard");
    state
        .blocking(move |node| {
            let found = find(node, &caller, &id)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            let op = if hard {
                change::erase_op(RecordKind::Attribute, found.uuid.as_bytes())
            } else {
                let mut fields = Map::new();
                fields.insert("deleted".into(), json!(true));
                fields.insert("timestamp".into(), json!(now_seconds().to_string()));
                change::record_op(RecordKind::Attribute, found.uuid.as_bytes(), None, &fields)
            };
            let visibility = item_entry_visibility(&found.record, event.visibility);
            append_touching(node, &caller, &event, visibility, vec![op])?;
            Ok(())
        })
        .await?;
    Ok(Json(json!({ "message": "Attribute deleted." })))
}

/// `GET /attributes/view/{id}` (and HEAD).
pub async fn view(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            let found = find(node, &caller, &id)?;
            let event = visible_event(node, &caller, &found.event.uuid.to_string())?;
            let options = EventOptions {
                include_deleted: true,
                correlation_max: node.config.views.correlation_max,
                correlations: false,
                only_attributes: Some([found.uuid].into()),
            };
            let json = event_json_with(node, &caller, &event, options, false)?;
            let mut attribute = attribute_in(&json, &found.uuid)
                .ok_or_else(|| ApiError::not_found(INVALID_ATTRIBUTE))?;
            let related = super::correlations::related_attributes(node, &caller, &attribute)?;
            attribute["RelatedAttribute"] = Value::Array(related);
            Ok(json!({ "Attribute": attribute }))
        })
        .await?;
    Ok(Json(json))
}
