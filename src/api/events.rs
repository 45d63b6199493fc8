//! `/events/…`: add, view (and HEAD), edit, delete, publish, unpublish, index.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::correlations::set_related_events;
use super::error::{ApiError, INVALID_EVENT};
use super::request::{parse_ref, truthy, JsonBody};
use super::visibility::{event_access, filter_event, EventAccess};
use super::ApiState;
use crate::change;
use crate::model::{Event, ModelError};
use crate::node::{now_ms, Node, NodeError};
use crate::policy::authority::Refusal;
use crate::proto::RecordKind;
use crate::store::StoreError;
use crate::view::read::{self, EventOptions};

/// MISP's name for a refused event write.
const EVENT_NOT_SAVED: &str = "The event could not be saved.";
/// MISP's message for adding an event whose uuid exists.
const EVENT_EXISTS: &str =
    "Event already exists, if you would like to edit it, use the url in the location header.";
/// Reason recorded in the tombstone of an event deleted through the API.
const DELETE_REASON: &str = "deleted through the REST API";

/// The current time in epoch seconds, MISP's timestamp unit.
pub fn now_seconds() -> i64 {
    now_ms() / 1000
}

/// Whether CakePHP-style named options (`metadata:1/deleted:1`) set `name`.
fn option_set(options: &str, name: &str) -> bool {
    options
        .split('/')
        .filter_map(|part| part.split_once(':'))
        .any(|(key, value)| key == name && !matches!(value, "0" | "false" | ""))
}

/// The visible event named by `text` (id or uuid), or MISP's 404.
pub fn visible_event(node: &Node, caller: &Caller, text: &str) -> Result<EventAccess, ApiError> {
    let uuid = parse_ref(text)
        .and_then(|reference| reference.resolve(node, RecordKind::Event))
        .ok_or_else(|| ApiError::not_found(INVALID_EVENT))?;
    event_access(node, caller, &uuid)?.ok_or_else(|| ApiError::not_found(INVALID_EVENT))
}

/// The visible event named by `text` that the caller may change.
pub fn editable_event(node: &Node, caller: &Caller, text: &str) -> Result<EventAccess, ApiError> {
    caller.require_write()?;
    let access = visible_event(node, caller, text)?;
    if !access.editable {
        return Err(ApiError::forbidden());
    }
    Ok(access)
}

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
    if options.correlations {
        set_related_events(node, caller, access, &mut event, options.correlation_max)?;
    }
    super::sighting_admin::drop_deleted(node, &mut event)?;
    super::landed::show_landed_levels(node, &access.uuid, &mut event);
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

/// Fills what the API sets on every written event: Orgc (the caller's organisation unless a
/// site admin or sync user names another), timestamps, and `published` only for publishers.
fn stamp_event(event: &mut Event, caller: &Caller) {
    let now = now_seconds();
    let may_set_orgc = caller.role.site_admin || caller.role.sync;
    if event.orgc.is_none() || !may_set_orgc {
        event.orgc = Some(caller.org.clone());
    }
    event.timestamp = Some(event.timestamp.unwrap_or(now).max(1));
    if event.published && caller.role.publish {
        event.publish_timestamp = Some(now);
    } else {
        event.published = false;
    }
    let timestamp = event.timestamp;
    for attribute in &mut event.attributes {
        attribute.timestamp = attribute.timestamp.or(timestamp);
    }
    for object in &mut event.objects {
        object.timestamp = object.timestamp.or(timestamp);
        for attribute in &mut object.attributes {
            attribute.timestamp = attribute.timestamp.or(timestamp);
        }
    }
}

/// The `timestamp` of a stored record, if it has one.
pub(super) fn stored_timestamp(node: &Node, kind: RecordKind, uuid: &Uuid) -> Option<i64> {
    let record = read::record(&node.store.views(), kind, uuid.as_bytes()).ok()??;
    record.str_field("timestamp")?.parse().ok()
}

/// MISP's edit rule, last writer wins on `timestamp`: an attribute sent with a timestamp no
/// newer than the stored copy's is unchanged and left out of the edit; one sent without a
/// timestamp is an edit made now.
fn drop_unchanged(node: &Node, event: &mut Event) {
    let newer = |uuid: &Uuid, sent: Option<i64>| match sent {
        Some(sent) => {
            stored_timestamp(node, RecordKind::Attribute, uuid).is_none_or(|stored| sent > stored)
        }
        None => true,
    };
    event.attributes.retain(|a| newer(&a.uuid, a.timestamp));
    for object in &mut event.objects {
        object.attributes.retain(|a| newer(&a.uuid, a.timestamp));
    }
}

fn parse_event(value: &Value) -> Result<Event, ApiError> {
    Event::from_json(value).map_err(|error| match error {
        ModelError::NotAnEvent => ApiError::validation(EVENT_NOT_SAVED, "info", error.to_string()),
        error => ApiError::model(EVENT_NOT_SAVED, &error),
    })
}

async fn add_event(
    state: ApiState,
    caller: Caller,
    body: JsonBody,
    metadata: bool,
) -> Result<Json<Value>, ApiError> {
    caller.require_write()?;
    let value = body
        .0
        .ok_or_else(|| ApiError::bad_request("The request has no event in its body."))?;
    let mut event = parse_event(&value)?;
    stamp_event(&mut event, &caller);
    let json = state
        .blocking(move |node| {
            if let Some(record) = read::record(
                &node.store.views(),
                RecordKind::Event,
                event.uuid.as_bytes(),
            )? {
                if record.gone.is_some() {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "An event with this uuid was deleted and cannot be created again.",
                    ));
                }
                return Err(ApiError::new(StatusCode::FORBIDDEN, EVENT_EXISTS));
            }
            super::taxonomies::check_event(node, &event, EVENT_NOT_SAVED)?;
            // The check above reads before appending; the append decides under the writer
            // lock, so of two organisations creating one uuid at once only the first stores.
            node.append(change::event_drafts(&event, &caller.actor()))
                .map_err(|error| match error {
                    NodeError::Store(StoreError::Refused(Refusal::EventOwner { .. })) => {
                        ApiError::new(StatusCode::FORBIDDEN, EVENT_EXISTS)
                    }
                    error => error.into(),
                })?;
            let access = event_access(node, &caller, &event.uuid)?
                .ok_or_else(|| ApiError::not_found(INVALID_EVENT))?;
            event_json(node, &caller, &access, false, metadata)
        })
        .await?;
    Ok(Json(json))
}

/// `POST /events/add`.
pub async fn add(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    add_event(state, caller, body, false).await
}

/// `POST /events/add/metadata:1` (and other named options).
pub async fn add_with_options(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(options): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    add_event(state, caller, body, option_set(&options, "metadata")).await
}

async fn view_event(
    state: ApiState,
    caller: Caller,
    id: String,
    include_deleted: bool,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            let access = visible_event(node, &caller, &id)?;
            event_json(node, &caller, &access, include_deleted, false)
        })
        .await?;
    Ok(Json(json))
}

/// `GET /events/view/{id}` (and HEAD: 200 or 404).
pub async fn view(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    view_event(state, caller, id, false).await
}

/// `GET /events/view/{id}/deleted:1/…`.
pub async fn view_with_options(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((id, options)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    view_event(state, caller, id, option_set(&options, "deleted")).await
}

/// `POST /events/view/{id}` with `{"deleted": …}`, as PyMISP's `get_event(deleted=…)` sends.
pub async fn view_post(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let deleted = body.object("Event").get("deleted").is_some_and(truthy);
    view_event(state, caller, id, deleted).await
}

async fn edit_event(
    state: ApiState,
    caller: Caller,
    id: String,
    body: JsonBody,
    metadata: bool,
) -> Result<Json<Value>, ApiError> {
    let changes = body.object("Event");
    let json = state
        .blocking(move |node| {
            let access = editable_event(node, &caller, &id)?;
            let mut merged: Map<String, Value> = access.record.values();
            merged.extend(changes.clone());
            merged.insert("uuid".into(), json!(access.uuid.to_string()));
            if !changes.contains_key("timestamp") {
                merged.remove("timestamp");
            }
            if !changes.contains_key("published") {
                merged.insert("published".into(), json!(false));
            }
            let stored_orgc = access.record.field("Orgc").cloned();
            let mut event = parse_event(&Value::Object(merged))?;
            drop_unchanged(node, &mut event);
            stamp_event(&mut event, &caller);
            if !(caller.role.site_admin || caller.role.sync) {
                // Editing keeps the creator organisation.
                if let Some(orgc) = stored_orgc {
                    event.orgc = crate::model::Organisation::from_json(&orgc).ok();
                }
            }
            super::taxonomies::check_event(node, &event, EVENT_NOT_SAVED)?;
            node.append(change::event_drafts(&event, &caller.actor()))?;
            event_json(node, &caller, &access, false, metadata)
        })
        .await?;
    Ok(Json(json))
}

/// `POST /events/edit/{id}`: the body's fields replace the event's; contents it lists are
/// added or updated.
pub async fn edit(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    edit_event(state, caller, id, body, false).await
}

/// `POST /events/edit/{id}/metadata:1`.
pub async fn edit_with_options(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((id, options)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    edit_event(state, caller, id, body, option_set(&options, "metadata")).await
}

/// `POST|DELETE /events/delete/{id}`: appends the event's tombstone.
pub async fn delete(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let event_id = state
        .blocking(move |node| {
            let access = editable_event(node, &caller, &id)?;
            let ops = vec![change::tombstone_op(DELETE_REASON)];
            // The tombstone states the event's level: once the event is gone, nothing else
            // tells which peers held it.
            let visibility = super::visibility::record_visibility(&access.record);
            let drafts = change::event_ops_drafts(access.uuid, visibility, ops, &caller.actor());
            node.append(drafts)?;
            Ok(access.id)
        })
        .await?;
    Ok(super::saved(
        "Event deleted.",
        uri.path(),
        Some(event_id.to_string()),
    ))
}

/// Sets the event's `published` flag (publishing needs a publishing role).
async fn set_published(
    state: ApiState,
    caller: Caller,
    id: String,
    published: bool,
) -> Result<u64, ApiError> {
    state
        .blocking(move |node| {
            if published && !caller.role.publish {
                return Err(ApiError::forbidden());
            }
            let access = editable_event(node, &caller, &id)?;
            let mut fields = Map::new();
            fields.insert("published".into(), json!(published));
            if published {
                fields.insert("publish_timestamp".into(), json!(now_seconds().to_string()));
                // The publish states the event's level in its fields too, so that a peer
                // that holds nothing else of the event yet can judge what follows it.
                for name in ["distribution", "sharing_group_uuid"] {
                    if let Some(value) = access.record.field(name) {
                        fields.insert(name.into(), value.clone());
                    }
                }
            }
            let ops = vec![change::record_op(
                RecordKind::Event,
                access.uuid.as_bytes(),
                None,
                &fields,
            )];
            // A publish states the event's level: the event's old entries go no further than
            // it allows until the next publish, whatever the event is widened to meanwhile.
            let visibility = match published {
                true => super::visibility::record_visibility(&access.record),
                false => access.visibility,
            };
            node.append(change::event_ops_drafts(
                access.uuid,
                visibility,
                ops,
                &caller.actor(),
            ))?;
            Ok(access.id)
        })
        .await
}

/// `POST /events/publish/{id}`.
pub async fn publish(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let event_id = set_published(state, caller, id, true).await?;
    Ok(super::saved(
        "Event published without alerts",
        uri.path(),
        Some(event_id.to_string()),
    ))
}

/// `POST /events/unpublish/{id}`.
pub async fn unpublish(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let event_id = set_published(state, caller, id, false).await?;
    Ok(super::saved(
        "Event unpublished.",
        uri.path(),
        Some(event_id.to_string()),
    ))
}
