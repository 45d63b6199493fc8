//! `/events/…`: add, view (and HEAD), edit, delete, publish, unpublish; the index
//! ([`index`]), the event JSON as a caller sees it ([`render`]) with its correlations
//! ([`correlations`]) and landed levels ([`landed`]), and the freetext import ([`freetext`]).

pub mod correlations;
pub mod freetext;
pub mod index;
pub mod landed;
pub mod render;

use axum::extract::Path;
use axum::http::{StatusCode, Uri};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::access::{self, editable_event, event_access, visible_event, Action, EventAccess};
use super::auth::Caller;
use super::error::{ApiError, INVALID_EVENT};
use super::request::{option_set, truthy, JsonBody};
use super::sharing_groups::group::name_by_uuid;
use super::{ApiState, Call};
use crate::change::{self, Visibility};
use crate::model::{Event, ModelError};
use crate::node::{Node, NodeError};
use crate::policy::authority::Refusal;
use crate::policy::visibility::record_visibility;
use crate::proto::{self, RecordKind};
use crate::store::StoreError;
use crate::view::read;
use render::{event_json, stored_timestamp};

/// The routes of `/events/…` (restSearch is [`super::search`]'s).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/events/add", post(add))
        .route("/events/add/{*options}", post(add_with_options))
        .route(
            "/events/view/{id}",
            axum::routing::get(view).post(view_post),
        )
        .route(
            "/events/view/{id}/{*options}",
            axum::routing::get(view_with_options),
        )
        .route("/events/edit/{id}", post(edit).put(edit))
        .route("/events/edit/{id}/{*options}", post(edit_with_options))
        .route("/events/delete/{id}", post(delete).delete(delete))
        .route("/events/freeTextImport/{event}", post(freetext::import))
        .route("/events/publish/{id}", post(publish))
        .route("/events/unpublish/{id}", post(unpublish))
        .route(
            "/events/index",
            axum::routing::get(index::index).post(index::index_post),
        )
        .route("/events", axum::routing::get(index::index))
}

/// MISP's name for a refused event write.
const EVENT_NOT_SAVED: &str = "The event could not be saved.";
/// MISP's message for adding an event whose uuid exists.
const EVENT_EXISTS: &str =
    "Event already exists, if you would like to edit it, use the url in the location header.";
/// Reason recorded in the tombstone of an event deleted through the API.
const DELETE_REASON: &str = "deleted through the REST API";

/// Appends `ops` about an item of `event` with `visibility` and, with the event's own
/// visibility, the op that unpublishes the event and bumps its timestamp, as MISP does on every
/// change inside an event ([`change::event_change_drafts`]).
pub fn append_to_event(
    node: &Node,
    caller: &Caller,
    event: &EventAccess,
    visibility: Visibility,
    ops: Vec<proto::Op>,
) -> Result<(), ApiError> {
    node.append(change::event_change_drafts(
        event.uuid,
        visibility,
        ops,
        event.visibility,
        node.now_seconds(),
        &caller.actor(),
    ))?;
    Ok(())
}

/// Fills what the API sets on every written event: Orgc (the caller's organisation unless a
/// site admin or sync user names another), timestamps (`now`), and `published` only for
/// publishers.
fn stamp_event(event: &mut Event, caller: &Caller, now: i64) {
    let may_set_orgc = access::allows(caller, Action::SetCreator);
    if event.orgc.is_none() || !may_set_orgc {
        event.orgc = Some(caller.org.clone());
    }
    event.timestamp = Some(event.timestamp.unwrap_or(now).max(1));
    if event.published && access::allows(caller, Action::Publish) {
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

/// [`name_by_uuid`] for an event's body, refused as MISP refuses an event's group.
fn name_groups_by_uuid(
    node: &Node,
    caller: &Caller,
    fields: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    name_by_uuid(node, caller, fields, StatusCode::METHOD_NOT_ALLOWED)
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
    access::require(&caller, Action::Write)?;
    let mut value = body
        .0
        .ok_or_else(|| ApiError::bad_request("The request has no event in its body."))?;
    state
        .reply(move |node| {
            if let Some(fields) = value.as_object_mut() {
                name_groups_by_uuid(node, &caller, fields)?;
            }
            let mut event = parse_event(&value)?;
            stamp_event(&mut event, &caller, node.now_seconds());
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
        .await
}

/// `POST /events/add`.
pub async fn add(Call { state, caller }: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    add_event(state, caller, body, false).await
}

/// `POST /events/add/metadata:1` (and other named options).
pub async fn add_with_options(
    Call { state, caller }: Call,
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
    state
        .reply(move |node| {
            let access = visible_event(node, &caller, &id)?;
            event_json(node, &caller, &access, include_deleted, false)
        })
        .await
}

/// `GET /events/view/{id}` (and HEAD: 200 or 404).
pub async fn view(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    view_event(state, caller, id, false).await
}

/// `GET /events/view/{id}/deleted:1/…`.
pub async fn view_with_options(
    Call { state, caller }: Call,
    Path((id, options)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    view_event(state, caller, id, option_set(&options, "deleted")).await
}

/// `POST /events/view/{id}` with `{"deleted": …}`, as PyMISP's `get_event(deleted=…)` sends.
pub async fn view_post(
    Call { state, caller }: Call,
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
    let mut changes = body.object("Event");
    state
        .reply(move |node| {
            let access = editable_event(node, &caller, &id)?;
            name_groups_by_uuid(node, &caller, &mut changes)?;
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
            stamp_event(&mut event, &caller, node.now_seconds());
            if !access::allows(&caller, Action::SetCreator) {
                // Editing keeps the creator organisation.
                if let Some(orgc) = stored_orgc {
                    event.orgc = crate::model::Organisation::from_json(&orgc).ok();
                }
            }
            super::taxonomies::check_event(node, &event, EVENT_NOT_SAVED)?;
            node.append(change::event_drafts(&event, &caller.actor()))?;
            event_json(node, &caller, &access, false, metadata)
        })
        .await
}

/// `POST /events/edit/{id}`: the body's fields replace the event's; contents it lists are
/// added or updated.
pub async fn edit(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    edit_event(state, caller, id, body, false).await
}

/// `POST /events/edit/{id}/metadata:1`.
pub async fn edit_with_options(
    Call { state, caller }: Call,
    Path((id, options)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    edit_event(state, caller, id, body, option_set(&options, "metadata")).await
}

/// `POST|DELETE /events/delete/{id}`: appends the event's tombstone.
pub async fn delete(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let event_id = state
        .blocking(move |node| {
            let access = editable_event(node, &caller, &id)?;
            let ops = vec![change::tombstone_op(DELETE_REASON)];
            // The tombstone states the event's level: once the event is gone, nothing else
            // tells which peers held it.
            let visibility = record_visibility(&access.record);
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
            if published {
                access::require(&caller, Action::Publish)?;
            }
            let access = editable_event(node, &caller, &id)?;
            let op = if published {
                let mut fields = Map::new();
                fields.insert("published".into(), json!(true));
                fields.insert(
                    "publish_timestamp".into(),
                    json!(node.now_seconds().to_string()),
                );
                // The publish states the event's level in its fields too, so that a peer
                // that holds nothing else of the event yet can judge what follows it.
                for name in ["distribution", "sharing_group_uuid"] {
                    if let Some(value) = access.record.field(name) {
                        fields.insert(name.into(), value.clone());
                    }
                }
                change::record_op(RecordKind::Event, access.uuid.as_bytes(), None, &fields)
            } else {
                change::unpublish_op(&access.uuid, None)
            };
            let ops = vec![op];
            // A publish states the event's level: the event's old entries go no further than
            // it allows until the next publish, whatever the event is widened to meanwhile.
            let visibility = match published {
                true => record_visibility(&access.record),
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
    Call { state, caller }: Call,
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
    Call { state, caller }: Call,
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
