//! `/sightings/…`: adding a sighting of one attribute (by id or uuid), or of every visible
//! attribute with a given value; searching, listing and deleting them is [`search`]'s.

pub mod search;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::access::{self, visible_attribute, Action};
use super::auth::Caller;
use super::error::ApiError;
use super::request::{parse_ref, text_field, JsonBody};
use super::{ApiState, Call};
use crate::change::{self, Visibility};
use crate::model::Sighting;
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::index::value_prefix;
use crate::view::{Table, ViewRead};

/// The routes of `/sightings/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/sightings/add", post(add))
        .route("/sightings/add/{id}", post(add_to))
        .route("/sightings/restSearch", post(search::rest_search))
        .route(
            "/sightings/restSearch/{context}",
            post(search::rest_search_context),
        )
        .route("/sightings/listSightings", post(search::list_body))
        .route(
            "/sightings/listSightings/{id}",
            get(search::list_path).post(search::list_path),
        )
        .route(
            "/sightings/listSightings/{id}/{context}",
            get(search::list_path_context).post(search::list_path_context),
        )
        .route("/sightings/delete/{id}", post(search::delete))
        .route("/sightings/index", get(search::index).post(search::index))
        .route(
            "/sightings/index/{event}",
            get(search::index_event).post(search::index_event),
        )
}

/// MISP's message when no attribute matches.
const NO_ATTRIBUTES: &str =
    "Could not add the Sighting. Reason: No valid attributes found that match the given criteria.";
/// Most attributes one by-value sighting request touches; a value matching more is refused
/// rather than turned into one enormous append.
const SIGHTED_ATTRIBUTES_MAX: usize = 10_000;
/// Most values in one by-value request (`values` list).
const SIGHTING_VALUES_MAX: usize = 1_000;

/// An attribute the caller may sight: its uuid, its event (uuid and local id) and the
/// visibility of the entries that sight it.
struct Sightable {
    uuid: Uuid,
    event: Uuid,
    event_id: u64,
    visibility: Visibility,
}

/// The attribute `uuid` if it is live, not deleted and visible to the caller.
fn sightable(node: &Node, caller: &Caller, uuid: &Uuid) -> Result<Option<Sightable>, ApiError> {
    let Some(found) = visible_attribute(node, caller, uuid)? else {
        return Ok(None);
    };
    if found.record.field("deleted") == Some(&json!(true)) {
        return Ok(None);
    }
    Ok(Some(Sightable {
        uuid: *uuid,
        event: found.access.uuid,
        event_id: found.access.id,
        visibility: found.visibility,
    }))
}

/// The uuids of attributes whose indexed value is `value`, in any case.
fn attributes_with_value(node: &Node, value: &str) -> Result<Vec<Uuid>, ApiError> {
    let prefix = value_prefix(value);
    let pairs = node.store.views().scan(Table::Index, &prefix)?;
    Ok(pairs
        .iter()
        .filter_map(|(key, _)| Uuid::from_slice(key.get(prefix.len()..)?).ok())
        .collect())
}

/// Appends one sighting per attribute and returns the last as MISP JSON.
fn add_sightings(
    node: &Node,
    caller: &Caller,
    body: &Map<String, Value>,
    attributes: Vec<Sightable>,
) -> Result<Value, ApiError> {
    let date = text_field(body, "date_sighting")
        .or_else(|| text_field(body, "timestamp"))
        .and_then(|text| text.trim().parse::<i64>().ok())
        .unwrap_or_else(|| node.now_seconds());
    let mut drafts = Vec::new();
    let mut last = Value::Null;
    for attribute in &attributes {
        let input = json!({
            "type": text_field(body, "type").unwrap_or_else(|| "0".into()),
            "source": text_field(body, "source").unwrap_or_default(),
            "date_sighting": date,
            "attribute_uuid": attribute.uuid.to_string(),
            "Organisation": {"uuid": caller.org.uuid.to_string(), "name": caller.org.name},
        });
        let sighting = Sighting::from_json(&input)
            .map_err(|error| ApiError::model("Could not add the Sighting.", &error))?;
        let op = change::sighting_op(&sighting, &attribute.uuid);
        drafts.extend(change::event_ops_drafts(
            attribute.event,
            attribute.visibility,
            vec![op],
            &caller.actor(),
        ));
        let mut fields = sighting.fields();
        let attribute_id = node
            .store
            .local_id(RecordKind::Attribute, attribute.uuid.as_bytes())
            .unwrap_or(0);
        fields.insert("attribute_id".into(), json!(attribute_id.to_string()));
        fields.insert("event_id".into(), json!(attribute.event_id.to_string()));
        last = Value::Object(fields);
    }
    node.append(drafts)?;
    Ok(json!({ "Sighting": last }))
}

fn no_attributes() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, NO_ATTRIBUTES)
}

/// `POST /sightings/add` with `{"id"|"uuid"}` of an attribute, or `{"value"}`/`{"values"}`.
pub async fn add(Call { state, caller }: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    let body = body.object("Sighting");
    state
        .reply(move |node| {
            access::require(&caller, Action::Write)?;
            let named = text_field(&body, "uuid").or_else(|| text_field(&body, "id"));
            let mut found = Vec::new();
            if let Some(named) = named {
                let uuid = parse_ref(&named)
                    .and_then(|reference| reference.resolve(node, RecordKind::Attribute))
                    .ok_or_else(no_attributes)?;
                found.extend(sightable(node, &caller, &uuid)?);
            } else {
                let mut values: Vec<String> = match body.get("values") {
                    Some(Value::Array(list)) => list
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                };
                values.extend(text_field(&body, "value"));
                if values.len() > SIGHTING_VALUES_MAX {
                    return Err(ApiError::bad_request(format!(
                        "At most {SIGHTING_VALUES_MAX} values per sighting request."
                    )));
                }
                for value in values {
                    for uuid in attributes_with_value(node, value.trim())? {
                        found.extend(sightable(node, &caller, &uuid)?);
                        if found.len() > SIGHTED_ATTRIBUTES_MAX {
                            return Err(ApiError::bad_request(format!(
                                "The values match more than {SIGHTED_ATTRIBUTES_MAX} attributes."
                            )));
                        }
                    }
                }
            }
            if found.is_empty() {
                return Err(no_attributes());
            }
            add_sightings(node, &caller, &body, found)
        })
        .await
}

/// `POST /sightings/add/{attribute id or uuid}`.
pub async fn add_to(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut object = body.object("Sighting");
    object.insert("uuid".into(), json!(id));
    object.remove("id");
    add(
        Call { state, caller },
        JsonBody(Some(Value::Object(object))),
    )
    .await
}
