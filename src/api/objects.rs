//! MISP objects and their references: `/objects/add/{event}`, `/objects/edit/{id}`,
//! `/objects/delete/{id}` (soft, or erased with `{"hard": 1}`), `/objects/view/{id}` (and
//! HEAD), `/objectReferences/add[/{object}]` and `/objectReferences/delete/{id}[/true]`.
//! Changes go to the entries of the object's own visibility (5 inherits the event's), and
//! every change unpublishes the event and bumps its timestamp, as MISP does.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::access::{editable_event, event_item, EventAccess};
use super::auth::Caller;
use super::error::ApiError;
use super::events::append_to_event;
use super::events::render::event_json;
use super::request::{flag_field, parse_ref, require_new, text_field, JsonBody};
use super::sharing_groups::group::name_by_uuid;
use super::{ApiState, Call};
use crate::change;
use crate::model::{MispObject, ObjectReference};
use crate::node::Node;
use crate::policy::visibility::item_entry_visibility;
use crate::proto::RecordKind;
use crate::view::{read, Record};

/// The routes of `/objects/…` and `/objectReferences/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/objects/add/{event}", post(add))
        .route("/objects/edit/{id}", post(edit))
        .route("/objects/delete/{id}", post(delete))
        .route("/objects/delete/{id}/{hard}", post(delete_hard_path))
        .route("/objects/view/{id}", get(view))
        .route("/objectReferences/add", post(add_ref))
        .route("/objectReferences/add/{object}", post(add_ref_to))
        .route("/objectReferences/delete/{id}", post(delete_ref))
        .route(
            "/objectReferences/delete/{id}/{hard}",
            post(delete_ref_hard_path),
        )
}

/// MISP's message for an object that does not exist or is not visible.
const INVALID_OBJECT: &str = "Invalid object.";
/// MISP's message for a reference that does not exist or is not visible.
const INVALID_REFERENCE: &str = "Invalid object reference.";
/// MISP's validation failure name for an object that could not be saved.
const OBJECT_NOT_SAVED: &str = "Object could not be saved.";
/// MISP's validation failure name for a reference that could not be saved.
const REFERENCE_NOT_SAVED: &str = "Object reference could not be saved.";

/// A record of an event (object or reference) the caller may see.
struct Found {
    uuid: Uuid,
    record: Record,
    event: EventAccess,
}

/// The record of `kind` named by `text` (id or uuid), if its event is visible to the caller.
fn find(
    node: &Node,
    caller: &Caller,
    kind: RecordKind,
    text: &str,
    message: &'static str,
) -> Result<Found, ApiError> {
    let missing = || ApiError::not_found(message);
    let uuid = parse_ref(text)
        .and_then(|reference| reference.resolve(node, kind))
        .ok_or_else(missing)?;
    let item = event_item(node, caller, kind, &uuid)?.ok_or_else(missing)?;
    Ok(Found {
        uuid,
        record: item.record,
        event: item.access,
    })
}

/// The object `uuid` in an event's MISP JSON.
fn object_in(event: &Value, uuid: &Uuid) -> Option<Value> {
    let uuid = uuid.to_string();
    event
        .pointer("/Event/Object")?
        .as_array()?
        .iter()
        .find(|object| object.get("uuid").and_then(Value::as_str) == Some(uuid.as_str()))
        .cloned()
}

/// The reference `uuid` in an event's MISP JSON.
fn reference_in(event: &Value, uuid: &Uuid) -> Option<Value> {
    let uuid = uuid.to_string();
    event
        .pointer("/Event/Object")?
        .as_array()?
        .iter()
        .filter_map(|object| object.get("ObjectReference")?.as_array())
        .flatten()
        .find(|reference| reference.get("uuid").and_then(Value::as_str) == Some(uuid.as_str()))
        .cloned()
}

/// `{"Object": …}` for object `uuid` as the caller sees it (deleted ones included).
fn object_body(
    node: &Node,
    caller: &Caller,
    event: &EventAccess,
    uuid: &Uuid,
) -> Result<Value, ApiError> {
    let json = event_json(node, caller, event, true, false)?;
    let object = object_in(&json, uuid).ok_or_else(|| ApiError::not_found(INVALID_OBJECT))?;
    Ok(json!({ "Object": object }))
}

/// Timestamps unset parts of `object` with `now`.
fn stamp(object: &mut MispObject, now: i64) {
    object.timestamp = Some(object.timestamp.unwrap_or(now));
    for attribute in &mut object.attributes {
        attribute.timestamp = Some(attribute.timestamp.unwrap_or(now));
    }
}

/// Refuses an object whose uuid, or one of whose attributes' or references' uuids, is taken
/// by another record.
fn check_new(node: &Node, object: &MispObject, existing: Option<Uuid>) -> Result<(), ApiError> {
    let views = node.store.views();
    let taken = |kind: RecordKind, uuid: &Uuid| -> Result<bool, ApiError> {
        let record = read::record(&views, kind, uuid.as_bytes())?;
        let Some(record) = record else {
            return Ok(false);
        };
        // An attribute of the object being edited may be updated in place.
        Ok(record.gone.is_some() || existing.is_none() || record.parent() != existing)
    };
    if existing.is_none() {
        require_new(
            node,
            RecordKind::Object,
            &object.uuid,
            (OBJECT_NOT_SAVED, "uuid"),
            "An object with this uuid already exists.",
        )?;
    }
    for attribute in &object.attributes {
        if taken(RecordKind::Attribute, &attribute.uuid)? {
            return Err(ApiError::validation(
                OBJECT_NOT_SAVED,
                "Attribute",
                "An attribute with this uuid already exists.",
            ));
        }
    }
    for reference in &object.references {
        if taken(RecordKind::Reference, &reference.uuid)? {
            return Err(ApiError::validation(
                OBJECT_NOT_SAVED,
                "ObjectReference",
                "An object reference with this uuid already exists.",
            ));
        }
    }
    Ok(())
}

/// `POST /objects/add/{event}` with a MISP object, wrapped (`{"Object": …}`) or bare.
pub async fn add(
    Call { state, caller }: Call,
    Path(event_ref): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let event = editable_event(node, &caller, &event_ref)?;
            let mut value = body.0.unwrap_or(Value::Null);
            if let Some(fields) = value.as_object_mut() {
                name_by_uuid(node, &caller, fields, StatusCode::FORBIDDEN)?;
            }
            let mut object = MispObject::from_json(&value)
                .map_err(|error| ApiError::model(OBJECT_NOT_SAVED, &error))?;
            stamp(&mut object, node.now_seconds());
            check_new(node, &object, None)?;
            let drafts = change::object_drafts(
                event.uuid,
                event.visibility,
                std::slice::from_ref(&object),
                vec![change::unpublish_op(&event.uuid, Some(node.now_seconds()))],
                &caller.actor(),
            );
            node.append(drafts)?;
            object_body(node, &caller, &event, &object.uuid)
        })
        .await
}

/// `POST /objects/edit/{id}`: the body's fields replace the object's; its attributes and
/// references are added, or updated when their uuids are the object's already.
pub async fn edit(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut changes = body.object("Object");
    state
        .reply(move |node| {
            let found = find(node, &caller, RecordKind::Object, &id, INVALID_OBJECT)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            name_by_uuid(node, &caller, &mut changes, StatusCode::FORBIDDEN)?;
            let mut merged = found.record.values();
            merged.extend(changes.clone());
            merged.insert("uuid".into(), json!(found.uuid.to_string()));
            if !changes.contains_key("timestamp") {
                merged.insert("timestamp".into(), json!(node.now_seconds()));
            }
            let mut object = MispObject::from_json(&Value::Object(merged))
                .map_err(|error| ApiError::model(OBJECT_NOT_SAVED, &error))?;
            stamp(&mut object, node.now_seconds());
            check_new(node, &object, Some(found.uuid))?;
            let drafts = change::object_drafts(
                event.uuid,
                event.visibility,
                std::slice::from_ref(&object),
                vec![change::unpublish_op(&event.uuid, Some(node.now_seconds()))],
                &caller.actor(),
            );
            node.append(drafts)?;
            object_body(node, &caller, &event, &found.uuid)
        })
        .await
}

/// The uuids of the object's attributes and references, from the event's JSON.
fn members(json: &Value, object: &Uuid) -> Vec<(RecordKind, Uuid)> {
    let Some(object) = object_in(json, object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (list, kind) in [
        ("Attribute", RecordKind::Attribute),
        ("ObjectReference", RecordKind::Reference),
    ] {
        for item in object
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(uuid) = item
                .get("uuid")
                .and_then(Value::as_str)
                .and_then(|text| Uuid::parse_str(text).ok())
            {
                out.push((kind, uuid));
            }
        }
    }
    out
}

/// `POST /objects/delete/{id}`: soft delete (the object and its attributes get `deleted`),
/// or with `{"hard": 1}` (or `/objects/delete/{id}/1`) erased with its attributes and
/// references.
pub async fn delete(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let hard = flag_field(&body.object("Object"), "hard");
    delete_object(state, caller, id, hard).await
}

/// `POST /objects/delete/{id}/{hard}`.
pub async fn delete_hard_path(
    Call { state, caller }: Call,
    Path((id, hard)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let hard = matches!(hard.as_str(), "1" | "true");
    delete_object(state, caller, id, hard).await
}

async fn delete_object(
    state: ApiState,
    caller: Caller,
    id: String,
    hard: bool,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/objects/delete/{id}");
    let object_id = state
        .blocking(move |node| {
            let found = find(node, &caller, RecordKind::Object, &id, INVALID_OBJECT)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            let json = event_json(node, &caller, &event, true, false)?;
            let object_id = node
                .store
                .local_id(RecordKind::Object, found.uuid.as_bytes())
                .unwrap_or(0);
            let mut targets = members(&json, &found.uuid);
            targets.push((RecordKind::Object, found.uuid));
            let ops = targets
                .iter()
                .filter(|(kind, _)| hard || *kind != RecordKind::Reference)
                .map(|(kind, uuid)| {
                    change::delete_op(*kind, uuid.as_bytes(), hard, node.now_seconds())
                })
                .collect();
            let visibility = item_entry_visibility(&found.record, event.visibility);
            append_to_event(node, &caller, &event, visibility, ops)?;
            Ok(object_id)
        })
        .await?;
    Ok(super::saved(
        "Object deleted",
        &url,
        Some(object_id.to_string()),
    ))
}

/// `GET /objects/view/{id}` (and HEAD): `{"Object": …}`.
pub async fn view(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let found = find(node, &caller, RecordKind::Object, &id, INVALID_OBJECT)?;
            object_body(node, &caller, &found.event, &found.uuid)
        })
        .await
}

/// Adds the reference in `body` to the object named by `object` (or by the body's
/// `object_uuid`/`object_id`).
fn add_reference(
    node: &Node,
    caller: &Caller,
    object: Option<String>,
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let named = object
        .or_else(|| text_field(body, "object_uuid"))
        .or_else(|| text_field(body, "object_id"))
        .unwrap_or_default();
    let found = find(node, caller, RecordKind::Object, &named, INVALID_OBJECT)?;
    let event = editable_event(node, caller, &found.event.uuid.to_string())?;
    let mut body = body.clone();
    body.remove("object_id");
    body.insert("object_uuid".into(), json!(found.uuid.to_string()));
    let mut reference = ObjectReference::from_json(&Value::Object(body))
        .map_err(|error| ApiError::model(REFERENCE_NOT_SAVED, &error))?;
    reference.timestamp = Some(reference.timestamp.unwrap_or_else(|| node.now_seconds()));
    let views = node.store.views();
    require_new(
        node,
        RecordKind::Reference,
        &reference.uuid,
        (REFERENCE_NOT_SAVED, "uuid"),
        "An object reference with this uuid already exists.",
    )?;
    let mut referenced_type = None;
    for (kind, type_id) in [(RecordKind::Attribute, 0), (RecordKind::Object, 1)] {
        let record = read::record(&views, kind, reference.referenced_uuid.as_bytes())?;
        if record.is_some_and(|record| record.is_live()) {
            referenced_type = Some(type_id);
        }
    }
    let Some(referenced_type) = referenced_type else {
        return Err(ApiError::validation(
            REFERENCE_NOT_SAVED,
            "referenced_uuid",
            "Invalid referenced item.",
        ));
    };
    let mut fields = reference.fields();
    fields.insert("referenced_type".into(), json!(referenced_type.to_string()));
    let op = change::record_op(
        RecordKind::Reference,
        reference.uuid.as_bytes(),
        Some(found.uuid),
        &fields,
    );
    let visibility = item_entry_visibility(&found.record, event.visibility);
    append_to_event(node, caller, &event, visibility, vec![op])?;
    let json = event_json(node, caller, &event, true, false)?;
    let reference = reference_in(&json, &reference.uuid)
        .ok_or_else(|| ApiError::not_found(INVALID_REFERENCE))?;
    Ok(json!({ "ObjectReference": reference }))
}

/// `POST /objectReferences/add` with `{"ObjectReference": {"object_uuid", "referenced_uuid",
/// "relationship_type"}}` or the bare object.
pub async fn add_ref(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("ObjectReference");
    state
        .reply(move |node| add_reference(node, &caller, None, &body))
        .await
}

/// `POST /objectReferences/add/{object}`.
pub async fn add_ref_to(
    Call { state, caller }: Call,
    Path(object): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("ObjectReference");
    state
        .reply(move |node| add_reference(node, &caller, Some(object), &body))
        .await
}

async fn delete_reference(
    state: ApiState,
    caller: Caller,
    id: String,
    hard: bool,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/objectReferences/delete/{id}");
    let reference_id = state
        .blocking(move |node| {
            let found = find(node, &caller, RecordKind::Reference, &id, INVALID_REFERENCE)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            let reference_id = node
                .store
                .local_id(RecordKind::Reference, found.uuid.as_bytes())
                .unwrap_or(0);
            let op = change::delete_op(
                RecordKind::Reference,
                found.uuid.as_bytes(),
                hard,
                node.now_seconds(),
            );
            // A reference lives in its object's entries.
            let object_record = found.record.parent().and_then(|parent| {
                read::record(&node.store.views(), RecordKind::Object, parent.as_bytes())
                    .ok()
                    .flatten()
            });
            let visibility = object_record
                .map(|record| item_entry_visibility(&record, event.visibility))
                .unwrap_or(event.visibility);
            append_to_event(node, &caller, &event, visibility, vec![op])?;
            Ok(reference_id)
        })
        .await?;
    Ok(super::saved(
        "ObjectReference deleted",
        &url,
        Some(reference_id.to_string()),
    ))
}

/// `POST /objectReferences/delete/{id}`: soft delete (`{"hard": 1}` erases).
pub async fn delete_ref(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let hard = flag_field(&body.object("ObjectReference"), "hard");
    delete_reference(state, caller, id, hard).await
}

/// `POST /objectReferences/delete/{id}/{hard}` (PyMISP sends `/true` for a hard delete).
pub async fn delete_ref_hard_path(
    Call { state, caller }: Call,
    Path((id, hard)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let hard = matches!(hard.as_str(), "1" | "true");
    delete_reference(state, caller, id, hard).await
}
