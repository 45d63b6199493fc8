//! Searching, listing and deleting sightings: `/sightings/restSearch`, `/sightings/listSightings` and
//! `/sightings/delete/{uuid}`. Sightings are immutable in the log (the earliest copy of a
//! uuid wins), so a deletion is recorded on the sighted attribute's record, as the internal
//! field `__sighting_deleted:<uuid>`; the endpoints here leave such sightings out.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

use crate::api::access::{self, visible_attribute, Action, EventAccess};
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::request::{parse_ref, text_field, JsonBody};
use crate::api::{ApiState, Call};
use crate::change::{self, Visibility};
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::{read, Record, Table, ViewRead};

/// Prefix of the attribute field that marks one of its sightings deleted.
const DELETED_PREFIX: &str = "__sighting_deleted:";
/// MISP's message for a sighting that does not exist or is not the caller's.
const INVALID_SIGHTING: &str = "Invalid sighting.";
/// Most sightings one search returns; a larger result is cut (use `last`/`from`/`to`).
const SIGHTINGS_MAX: usize = 10_000;

/// A visible attribute's context: its event, local ids, the visibility of its entries, and
/// its record (for deletion marks).
struct Context {
    event: Uuid,
    event_id: u64,
    attribute_id: u64,
    visibility: Visibility,
    record: Record,
    /// The attribute's value, for the `value` filter.
    value: String,
    /// The event's access: only its owner writes to the attribute's record, where deletions
    /// are marked.
    access: EventAccess,
}

/// The context of attribute `uuid` if it is live and visible to `caller`.
fn context(node: &Node, caller: &Caller, uuid: &Uuid) -> Result<Option<Context>, ApiError> {
    let Some(found) = visible_attribute(node, caller, uuid)? else {
        return Ok(None);
    };
    Ok(Some(Context {
        event: found.access.uuid,
        event_id: found.access.id,
        attribute_id: node
            .store
            .local_id(RecordKind::Attribute, uuid.as_bytes())
            .unwrap_or(0),
        visibility: found.visibility,
        value: found
            .record
            .str_field("value")
            .unwrap_or_default()
            .to_string(),
        record: found.record,
        access: found.access,
    }))
}

/// What a search asks for.
#[derive(Default)]
struct Filters {
    /// Attribute value.
    value: Option<String>,
    /// Attribute uuids (from `uuid`/`id`, or the `attribute` context).
    attributes: Option<Vec<Uuid>>,
    /// Event uuid (the `event` context).
    event: Option<Uuid>,
    /// Sighting type 0–2.
    kind: Option<String>,
    /// Source, exact.
    source: Option<String>,
    /// Organisation uuid.
    org: Option<Uuid>,
    /// Earliest `date_sighting`, epoch seconds.
    from: Option<i64>,
    /// Latest `date_sighting`, epoch seconds.
    to: Option<i64>,
}

/// Epoch seconds from `1700000000` or `2024-01-31`.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    let mut parts = text.splitn(3, '-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(crate::model::date::days_from_civil(year, month, day) * 86_400)
}

/// Seconds in MISP's `last` (`7d`, `12h`, `30m`, `45s`, or plain seconds).
fn parse_last(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (index, unit) if unit.is_ascii_alphabetic() => (&text[..index], unit),
        _ => (text, 's'),
    };
    let number: i64 = number.parse().ok()?;
    let unit = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    number.checked_mul(unit)
}

/// A filter value as text, or the first of a list.
fn first_text(body: &Map<String, Value>, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::Array(list) => list.iter().find_map(|v| match v {
            Value::String(text) => Some(text.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
        _ => text_field(body, key),
    }
}

/// Resolves an attribute named by id or uuid; an unknown one yields a uuid that matches
/// nothing.
fn attribute_ref(node: &Node, text: &str) -> Uuid {
    parse_ref(text)
        .and_then(|reference| reference.resolve(node, RecordKind::Attribute))
        .unwrap_or(Uuid::nil())
}

fn filters(node: &Node, body: &Map<String, Value>) -> Result<Filters, ApiError> {
    let mut filters = Filters {
        value: first_text(body, "value"),
        kind: first_text(body, "type"),
        source: first_text(body, "source"),
        ..Filters::default()
    };
    let context = text_field(body, "context").unwrap_or_default();
    let named = first_text(body, "uuid").or_else(|| first_text(body, "id"));
    if let Some(named) = named {
        if context == "event" {
            let uuid = parse_ref(&named)
                .and_then(|reference| reference.resolve(node, RecordKind::Event))
                .unwrap_or(Uuid::nil());
            filters.event = Some(uuid);
        } else {
            filters.attributes = Some(vec![attribute_ref(node, &named)]);
        }
    }
    if let Some(org) = first_text(body, "org").or_else(|| first_text(body, "org_id")) {
        let found = node.find_organisation(&org)?;
        filters.org = Some(found.map(|entry| entry.org.uuid).unwrap_or(Uuid::nil()));
    }
    filters.from = first_text(body, "from").and_then(|t| parse_time(&t));
    filters.to = first_text(body, "to").and_then(|t| parse_time(&t));
    if let Some(last) = first_text(body, "last").and_then(|t| parse_last(&t)) {
        let since = node.now_seconds().saturating_sub(last);
        filters.from = Some(filters.from.map_or(since, |from| from.max(since)));
    }
    Ok(filters)
}

/// A field of a stored sighting as text.
fn field_text(fields: &Map<String, Value>, key: &str) -> String {
    text_field(fields, key).unwrap_or_default()
}

/// Whether a sighting matches the filters (the attribute filters are checked by the caller).
fn matches(filters: &Filters, fields: &Map<String, Value>) -> bool {
    let date = field_text(fields, "date_sighting")
        .parse::<i64>()
        .unwrap_or(0);
    let org = fields
        .get("Organisation")
        .and_then(|org| org.get("uuid"))
        .and_then(Value::as_str)
        .and_then(|text| Uuid::parse_str(text).ok());
    filters
        .kind
        .as_ref()
        .is_none_or(|kind| field_text(fields, "type") == *kind)
        && filters
            .source
            .as_ref()
            .is_none_or(|source| field_text(fields, "source") == *source)
        && filters.org.is_none_or(|wanted| org == Some(wanted))
        && filters.from.is_none_or(|from| date >= from)
        && filters.to.is_none_or(|to| date <= to)
}

/// MISP's `Sighting` object: the stored fields plus local ids.
fn sighting_json(node: &Node, fields: &Map<String, Value>, context: &Context) -> Value {
    let mut out = fields.clone();
    out.insert(
        "attribute_id".into(),
        json!(context.attribute_id.to_string()),
    );
    out.insert("event_id".into(), json!(context.event_id.to_string()));
    let org = fields
        .get("Organisation")
        .and_then(|org| org.get("uuid"))
        .and_then(Value::as_str)
        .and_then(|text| Uuid::parse_str(text).ok());
    let org_id = org
        .and_then(|uuid| {
            node.store
                .local_id(RecordKind::Organisation, uuid.as_bytes())
        })
        .unwrap_or(0);
    out.insert("org_id".into(), json!(org_id.to_string()));
    if let Some(org) = out.get_mut("Organisation").and_then(Value::as_object_mut) {
        org.insert("id".into(), json!(org_id.to_string()));
    }
    Value::Object(out)
}

/// Removes sightings marked deleted from the attributes (top-level and in objects) of an
/// event's MISP JSON (`{"Event": …}`).
pub fn drop_deleted(node: &Node, event: &mut Value) -> Result<(), ApiError> {
    let Some(event) = event.get_mut("Event") else {
        return Ok(());
    };
    if let Some(attributes) = event.get_mut("Attribute") {
        drop_deleted_in(node, attributes)?;
    }
    if let Some(Value::Array(objects)) = event.get_mut("Object") {
        for object in objects {
            if let Some(attributes) = object.get_mut("Attribute") {
                drop_deleted_in(node, attributes)?;
            }
        }
    }
    Ok(())
}

/// [`drop_deleted`] for one list of attributes.
fn drop_deleted_in(node: &Node, attributes: &mut Value) -> Result<(), ApiError> {
    for attribute in attributes.as_array_mut().into_iter().flatten() {
        let has_sightings = attribute
            .get("Sighting")
            .and_then(Value::as_array)
            .is_some_and(|list| !list.is_empty());
        let uuid = attribute
            .get("uuid")
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text).ok());
        let (true, Some(uuid)) = (has_sightings, uuid) else {
            continue;
        };
        let Some(record) =
            read::record(&node.store.views(), RecordKind::Attribute, uuid.as_bytes())?
        else {
            continue;
        };
        if let Some(Value::Array(sightings)) = attribute.get_mut("Sighting") {
            sightings.retain(|sighting| {
                let uuid = sighting.get("uuid").and_then(Value::as_str).unwrap_or("");
                record.field(&format!("{DELETED_PREFIX}{uuid}")) != Some(&json!(true))
            });
        }
    }
    Ok(())
}

/// One stored sighting: the attribute it sights, its uuid and fields.
struct Stored {
    attribute: Uuid,
    uuid: Uuid,
    fields: Map<String, Value>,
}

/// Every stored sighting, or those of `attributes`.
fn stored(node: &Node, attributes: Option<&[Uuid]>) -> Result<Vec<Stored>, ApiError> {
    let views = node.store.views();
    let pairs = match attributes {
        Some(list) => {
            let mut pairs = Vec::new();
            for attribute in list {
                pairs.extend(views.scan(Table::Sightings, attribute.as_bytes())?);
            }
            pairs
        }
        None => views.scan(Table::Sightings, &[])?,
    };
    let mut out = Vec::new();
    for (key, bytes) in pairs {
        let (Some(attribute), Some(uuid)) = (
            key.get(..16).and_then(|k| Uuid::from_slice(k).ok()),
            key.get(16..).and_then(|k| Uuid::from_slice(k).ok()),
        ) else {
            continue;
        };
        let stored: Value = serde_json::from_slice(&bytes)
            .map_err(|error| ApiError::internal(&format!("sighting: {error}")))?;
        if let Some(Value::Object(fields)) = stored.get("fields") {
            out.push(Stored {
                attribute,
                uuid,
                fields: fields.clone(),
            });
        }
    }
    Ok(out)
}

/// The visible, not deleted sightings matching `filters`, as MISP `Sighting` objects.
fn search(node: &Node, caller: &Caller, filters: &Filters) -> Result<Vec<Value>, ApiError> {
    let mut contexts: HashMap<Uuid, Option<Context>> = HashMap::new();
    let mut out = Vec::new();
    for sighting in stored(node, filters.attributes.as_deref())? {
        if !matches(filters, &sighting.fields) {
            continue;
        }
        let context = match contexts.entry(sighting.attribute) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(context(node, caller, &sighting.attribute)?)
            }
        };
        let Some(context) = context.as_ref() else {
            continue;
        };
        let deleted = context
            .record
            .field(&format!("{DELETED_PREFIX}{}", sighting.uuid))
            .is_some_and(|flag| flag == &json!(true));
        if deleted
            || filters.event.is_some_and(|event| event != context.event)
            || filters
                .value
                .as_ref()
                .is_some_and(|value| *value != context.value)
        {
            continue;
        }
        out.push(sighting_json(node, &sighting.fields, context));
        if out.len() >= SIGHTINGS_MAX {
            break;
        }
    }
    Ok(out)
}

/// `POST /sightings/restSearch` (and `/sightings/restSearch/{context}`): `{"response":
/// [{"Sighting": …}]}`. Filters: `value`, `uuid`/`id` (of the attribute, or of the event
/// with context `event`), `type`, `source`, `org`, `from`, `to`, `last`.
pub async fn rest_search(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("request");
    state
        .reply(move |node| {
            let filters = filters(node, &body)?;
            let found = search(node, &caller, &filters)?;
            let wrapped: Vec<Value> = found
                .into_iter()
                .map(|sighting| json!({ "Sighting": sighting }))
                .collect();
            Ok(json!({ "response": wrapped }))
        })
        .await
}

/// `POST /sightings/restSearch/{context}` (`attribute` or `event`, with `id`).
pub async fn rest_search_context(
    call: Call,
    Path(context): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut object = body.object("request");
    object.insert("context".into(), json!(context));
    rest_search(call, JsonBody(Some(Value::Object(object)))).await
}

async fn list(
    state: ApiState,
    caller: Caller,
    mut body: Map<String, Value>,
) -> Result<Json<Value>, ApiError> {
    if !body.contains_key("context") {
        body.insert("context".into(), json!("attribute"));
    }
    if !body.contains_key("id") {
        return Err(ApiError::not_found(INVALID_SIGHTING));
    }
    listed(state, caller, body).await
}

/// The sightings `body`'s filters keep, as `[{"Sighting": …}]`.
async fn listed(
    state: ApiState,
    caller: Caller,
    body: Map<String, Value>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let filters = filters(node, &body)?;
            let found = search(node, &caller, &filters)?;
            Ok(Value::Array(
                found
                    .into_iter()
                    .map(|sighting| json!({ "Sighting": sighting }))
                    .collect(),
            ))
        })
        .await
}

/// `POST /sightings/listSightings` with `{"context": "attribute"|"event", "id"}`:
/// `[{"Sighting": …}]`.
pub async fn list_body(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    list(state, caller, body.object("Sighting")).await
}

/// `GET|POST /sightings/listSightings/{id}` (an attribute unless the body says
/// `"context": "event"`).
pub async fn list_path(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut object = body.object("Sighting");
    object.insert("id".into(), json!(id));
    list(state, caller, object).await
}

/// `GET|POST /sightings/listSightings/{id}/{context}`.
pub async fn list_path_context(
    Call { state, caller }: Call,
    Path((id, context)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut object = Map::new();
    object.insert("id".into(), json!(id));
    object.insert("context".into(), json!(context));
    list(state, caller, object).await
}

/// `GET|POST /sightings/index` (PyMISP `sightings()` with no event or attribute): every
/// sighting the caller sees, `[{"Sighting": …}]`; the body may name an `org_id`.
pub async fn index(Call { state, caller }: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    let mut object = body.object("Sighting");
    object.remove("context");
    object.remove("id");
    index_of(state, caller, object).await
}

/// `GET|POST /sightings/index/{event}`: the sightings of one event (by id or uuid).
pub async fn index_event(
    Call { state, caller }: Call,
    Path(event): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut object = body.object("Sighting");
    object.insert("id".into(), json!(event));
    object.insert("context".into(), json!("event"));
    index_of(state, caller, object).await
}

/// The sightings `body`'s filters (`org_id`, and an event as `id` with context `event`) keep,
/// as `[{"Sighting": …}]`.
async fn index_of(
    state: ApiState,
    caller: Caller,
    body: Map<String, Value>,
) -> Result<Json<Value>, ApiError> {
    let unknown = body
        .keys()
        .find(|key| !["id", "context", "org_id", "org"].contains(&key.as_str()));
    if let Some(key) = unknown {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Unknown filter '{key}': sightings/index reads org_id only."),
        ));
    }
    listed(state, caller, body).await
}

/// `POST /sightings/delete/{uuid}`: site admins, or the sighting organisation's users with
/// write access when their organisation owns the event (the mark is a change to the
/// attribute's record, which only the owner may make).
pub async fn delete(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/sightings/delete/{id}");
    state
        .blocking(move |node| {
            let missing = || ApiError::not_found(INVALID_SIGHTING);
            let uuid =
                Uuid::parse_str(id.trim().trim_end_matches(".json")).map_err(|_| missing())?;
            let sighting = stored(node, None)?
                .into_iter()
                .find(|sighting| sighting.uuid == uuid)
                .ok_or_else(missing)?;
            let context = context(node, &caller, &sighting.attribute)?.ok_or_else(missing)?;
            let marker = format!("{DELETED_PREFIX}{uuid}");
            if context.record.field(&marker) == Some(&json!(true)) {
                return Err(missing());
            }
            let org = sighting
                .fields
                .get("Organisation")
                .and_then(|org| org.get("uuid"))
                .and_then(Value::as_str)
                .and_then(|text| Uuid::parse_str(text).ok());
            if !access::allows(&caller, Action::DeleteSighting { sighter: org }) {
                return Err(missing());
            }
            access::require(&caller, Action::Write)?;
            // Peers accept changes to an event's records from its owner organisation only.
            access::require(&caller, Action::ChangeEvent(&context.access))?;
            let mut fields = Map::new();
            fields.insert(marker, json!(true));
            let op = change::record_op(
                RecordKind::Attribute,
                sighting.attribute.as_bytes(),
                None,
                &fields,
            );
            node.append(change::event_ops_drafts(
                context.event,
                context.visibility,
                vec![op],
                &caller.actor(),
            ))?;
            Ok(())
        })
        .await?;
    Ok(crate::api::saved(
        "Sighting successfully deleted.",
        &url,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_periods() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400));
        assert_eq!(parse_time("2024-03-01"), Some(1_709_251_200));
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_time("2024-13-01"), None);
        assert_eq!(parse_last("7d"), Some(604_800));
        assert_eq!(parse_last("2h"), Some(7_200));
        assert_eq!(parse_last("90"), Some(90));
        assert_eq!(parse_last("3w"), None);
    }
}
