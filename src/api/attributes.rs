//! `/attributes/…`: add (one, a list, or a value list), edit, delete (soft or hard), restore
//! (undo a soft delete), view, the index of every attribute the caller may see, and MISP's
//! type registry (`describeTypes.json`). Search is [`super::search`]'s.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use uuid::Uuid;

use super::access::{editable_event, event_item, visible_event, EventAccess};
use super::auth::Caller;
use super::error::{ApiError, DUPLICATE_ATTRIBUTE, INVALID_ATTRIBUTE};
use super::events::append_to_event;
use super::events::render::{attribute_in, event_json, event_json_with, stored_timestamp};
use super::request::{flag_field, parse_ref, require_new, truthy, JsonBody};
use super::sharing_groups::group::name_by_uuid;
use super::{ApiState, Call};
use crate::change;
use crate::model::{self, Attribute};
use crate::node::Node;
use crate::policy::visibility::item_entry_visibility;
use crate::proto::RecordKind;
use crate::view::read::{self, EventOptions};
use crate::view::Record;

/// The routes of `/attributes/…` (restSearch is [`super::search`]'s).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/attributes/describeTypes.json", get(describe_types))
        .route("/attributes/add/{event}", post(add))
        .route("/attributes/add/{event}/{*options}", post(add))
        .route("/attributes/edit/{id}", post(edit))
        .route("/attributes/delete/{id}", post(delete))
        .route("/attributes/restore/{id}", post(restore))
        .route("/attributes/view/{id}", get(view))
        .route("/attributes/index", get(index))
}

/// MISP's name for a refused attribute write.
const NOT_ADDED: &str = "Could not add Attribute";
/// MISP's name for a refused attribute edit.
const NOT_EDITED: &str = "Could not edit Attribute";

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
    let item = event_item(node, caller, RecordKind::Attribute, &uuid)?.ok_or_else(missing)?;
    let json = event_json(node, caller, &item.access, true, false)?;
    attribute_in(&json, &uuid).ok_or_else(missing)?;
    Ok(Found {
        uuid,
        record: item.record,
        event: item.access,
    })
}

/// Appends `attributes` (added, or updated in place) of `event` outside objects, with the
/// event's unpublish, and answers them as the caller now sees them (MISP JSON; deleted ones
/// too with `include_deleted`). `attributes/add`, `attributes/edit` and the freetext import
/// write through here.
pub fn append_attributes(
    node: &Node,
    caller: &Caller,
    event: &EventAccess,
    attributes: &[Attribute],
    include_deleted: bool,
) -> Result<Vec<Value>, ApiError> {
    node.append(change::attribute_drafts(
        event.uuid,
        event.visibility,
        attributes,
        vec![change::unpublish_op(&event.uuid, Some(node.now_seconds()))],
        &caller.actor(),
    ))?;
    let after = event_json(node, caller, event, include_deleted, false)?;
    Ok(attributes
        .iter()
        .filter_map(|attribute| attribute_in(&after, &attribute.uuid))
        .collect())
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
        require_new(
            node,
            RecordKind::Attribute,
            &attribute.uuid,
            (NOT_ADDED, "uuid"),
            "An attribute with this uuid already exists.",
        )?;
    }
    Ok(())
}

/// `POST /attributes/add/{event}`.
pub async fn add(
    Call { state, caller }: Call,
    Path(params): Path<Vec<(String, String)>>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let event_ref = params
        .iter()
        .find(|(name, _)| name == "event")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    state
        .reply(move |node| {
            // MISP looks the event up first: a bad event reference is 404 whatever the body.
            let event = editable_event(node, &caller, &event_ref)?;
            let now = node.now_seconds();
            let mut attributes = Vec::new();
            for mut item in requested(&body)? {
                if let Some(fields) = item.as_object_mut() {
                    name_by_uuid(node, &caller, fields, StatusCode::FORBIDDEN)?;
                }
                let mut attribute = Attribute::from_json(&item)
                    .map_err(|error| ApiError::model(NOT_ADDED, &error))?;
                attribute.timestamp = Some(attribute.timestamp.unwrap_or(now));
                attributes.push(attribute);
            }
            let existing = event_json(node, &caller, &event, false, false)?;
            check_new(node, &existing, &attributes)?;
            super::taxonomies::check_attributes(node, &attributes, NOT_ADDED)?;
            let added = append_attributes(node, &caller, &event, &attributes, false)?;
            // PyMISP reads one attribute as an object, several as a list.
            Ok(match <[Value; 1]>::try_from(added) {
                Ok([one]) => json!({ "Attribute": one }),
                Err(added) => json!({ "Attribute": added }),
            })
        })
        .await
}

/// `POST /attributes/edit/{id}`: the body's fields replace the attribute's.
pub async fn edit(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut changes = body.object("Attribute");
    state
        .reply(move |node| {
            let found = find(node, &caller, &id)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            name_by_uuid(node, &caller, &mut changes, StatusCode::FORBIDDEN)?;
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
                merged.insert("timestamp".into(), json!(node.now_seconds()));
            }
            let attribute = Attribute::from_json(&Value::Object(merged))
                .map_err(|error| ApiError::model(NOT_EDITED, &error))?;
            super::taxonomies::check_attributes(
                node,
                std::slice::from_ref(&attribute),
                NOT_EDITED,
            )?;
            let attribute = append_attributes(node, &caller, &event, &[attribute], true)?
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::not_found(INVALID_ATTRIBUTE))?;
            Ok(json!({ "Attribute": attribute }))
        })
        .await
}

/// `POST /attributes/delete/{id}`: soft delete, or erase with `{"hard": 1}`.
pub async fn delete(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let hard = flag_field(&body.object("Attribute"), "hard");
    state
        .blocking(move |node| {
            let found = find(node, &caller, &id)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            let op = change::delete_op(
                RecordKind::Attribute,
                found.uuid.as_bytes(),
                hard,
                node.now_seconds(),
            );
            let visibility = item_entry_visibility(&found.record, event.visibility);
            append_to_event(node, &caller, &event, visibility, vec![op])?;
            Ok(())
        })
        .await?;
    Ok(Json(json!({ "message": "Attribute deleted." })))
}

/// `POST /attributes/restore/{id}`: undoes a soft delete, as an edit of the caller's
/// organisation's event that sets `deleted` back to false (with a new timestamp and the
/// event's unpublish); answers the attribute as `attributes/view` does. An attribute that is
/// not deleted is answered as it is, nothing written.
pub async fn restore(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let found = find(node, &caller, &id)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            if found.record.field("deleted").is_some_and(truthy) {
                let mut fields = serde_json::Map::new();
                fields.insert("deleted".into(), json!(false));
                fields.insert("timestamp".into(), json!(node.now_seconds().to_string()));
                let op =
                    change::record_op(RecordKind::Attribute, found.uuid.as_bytes(), None, &fields);
                let visibility = item_entry_visibility(&found.record, event.visibility);
                append_to_event(node, &caller, &event, visibility, vec![op])?;
            }
            Ok(json!({ "Attribute": viewed(node, &caller, &found)? }))
        })
        .await
}

/// The attribute `found` as `attributes/view` answers it: deleted or not, with the
/// attributes it correlates with as `RelatedAttribute`.
fn viewed(node: &Node, caller: &Caller, found: &Found) -> Result<Value, ApiError> {
    let event = visible_event(node, caller, &found.event.uuid.to_string())?;
    let options = EventOptions {
        include_deleted: true,
        correlation_max: node.config.views.correlation_max,
        correlations: false,
        only_attributes: Some([found.uuid].into()),
    };
    let json = event_json_with(node, caller, &event, options, false)?;
    let mut attribute =
        attribute_in(&json, &found.uuid).ok_or_else(|| ApiError::not_found(INVALID_ATTRIBUTE))?;
    let related = super::events::correlations::related_attributes(node, caller, &attribute)?;
    attribute["RelatedAttribute"] = Value::Array(related);
    Ok(attribute)
}

/// `GET /attributes/view/{id}` (and HEAD).
pub async fn view(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let found = find(node, &caller, &id)?;
            Ok(json!({ "Attribute": viewed(node, &caller, &found)? }))
        })
        .await
}

/// `GET /attributes/index` (PyMISP's `attributes()`): every attribute that is not deleted and
/// that the caller may see, objects' included, as MISP's list of `{"Attribute": …}`, in event
/// id order. More than `api.search_rows_max` is refused with 400 as soon as the count passes
/// it, before the rest is rendered.
pub async fn index(Call { state, caller }: Call) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let rows_max = node.config.api.search_rows_max;
            let (_, events) = super::search::index_events(node, &caller, &serde_json::Map::new())?;
            // Rendering reads every attribute of each event, hidden ones too: bounded like a
            // search's examined entries.
            let examined_max = node.config.api.search_examined_max;
            let mut examined = 0u64;
            for event in &events {
                let keys = read::attribute_keys(&node.store.views(), &event.uuid)?;
                examined = examined.saturating_add(keys as u64);
                if examined > examined_max {
                    return Err(ApiError::bad_request(format!(
                        "The index would read more than the {examined_max} entries a search \
                         may examine (api.search_examined_max); search the attributes with \
                         attributes/restSearch and filters."
                    )));
                }
            }
            let options = EventOptions {
                correlations: false,
                ..EventOptions::default()
            };
            let mut rows = Vec::new();
            for event in &events {
                crate::turns::pause_point();
                let json = event_json_with(node, &caller, event, options.clone(), false)?;
                let top = json.pointer("/Event/Attribute").and_then(Value::as_array);
                let objects = json.pointer("/Event/Object").and_then(Value::as_array);
                let in_objects = objects
                    .into_iter()
                    .flatten()
                    .filter_map(|object| object.get("Attribute").and_then(Value::as_array));
                for attribute in top.into_iter().chain(in_objects).flatten() {
                    if rows.len() == rows_max {
                        return Err(ApiError::bad_request(format!(
                            "The index would hold more than the {rows_max} attributes this \
                             node answers at once (api.search_rows_max); search them with \
                             attributes/restSearch, with filters or limit and page."
                        )));
                    }
                    rows.push(json!({ "Attribute": attribute }));
                }
            }
            Ok(Value::Array(rows))
        })
        .await
}

/// `GET /attributes/describeTypes.json`.
pub async fn describe_types() -> Json<Value> {
    Json(model::registry().describe_types_json())
}
