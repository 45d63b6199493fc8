//! `/events/index`: the metadata of the events the caller may see, narrowed by MISP's index
//! filters (PyMISP's `search_index`), sorted and paged.

use std::cmp::Ordering;

use axum::extract::Query as UrlQuery;
use axum::Json;
use serde_json::{json, Map, Value};

use super::landed;
use crate::api::access::EventAccess;
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::request::JsonBody;
use crate::api::search::{self, url_params, IndexRequest};
use crate::api::Call;
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::read;

/// MISP's fields of a minimal index line (`minimal: 1`).
const MINIMAL_FIELDS: [&str; 4] = ["timestamp", "published", "uuid", "orgc_uuid"];

/// The index line of one event: its fields, local id, attribute count, owner organisation and
/// tags (`EventTag`), or only MISP's minimal fields.
fn index_line(node: &Node, event: &EventAccess, minimal: bool) -> Result<Value, ApiError> {
    let views = node.store.views();
    let ids = |kind: RecordKind, key: &[u8]| node.store.local_id(kind, key);
    let mut line = event.record.values();
    line.insert("id".into(), json!(event.id.to_string()));
    if minimal {
        let orgc = line
            .get("Orgc")
            .and_then(|orgc| orgc.get("uuid"))
            .cloned()
            .unwrap_or(Value::Null);
        line.insert("orgc_uuid".into(), orgc);
        line.retain(|name, _| name == "id" || MINIMAL_FIELDS.contains(&name.as_str()));
        return Ok(Value::Object(line));
    }
    let count = read::attribute_count(&views, &event.uuid)?;
    line.insert("attribute_count".into(), json!(count.to_string()));
    if let Some((owner, _)) = event.record.owner {
        let org = read::organisation(&views, &owner, &ids)?;
        line.insert("org_id".into(), org["id"].clone());
        line.insert("Org".into(), org);
    }
    let event_id = event.id.to_string();
    let mut tagged = json!({"Event": {"Tag": read::tags(&views, &event.uuid, &ids)?}});
    node.show_tag_definitions(&mut tagged)?;
    let tags = tagged["Event"]["Tag"].take();
    let links: Vec<Value> = (tags.as_array().into_iter().flatten())
        .map(|tag| {
            json!({"event_id": event_id, "tag_id": tag["id"], "local": tag["local"], "Tag": tag})
        })
        .collect();
    line.insert("EventTag".into(), Value::Array(links));
    let mut line = Value::Object(line);
    landed::show_landed_level(node, &event.uuid, &mut line);
    Ok(line)
}

/// Orders index lines by `field`, numerically when both hold numbers.
fn by_field(field: &str, x: &Value, y: &Value) -> Ordering {
    let text = |line: &Value| match &line[field] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let (x, y) = (text(x), text(y));
    match (x.parse::<f64>(), y.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => x.cmp(&y),
    }
}

/// The index lines the filters `params` select for `caller`, sorted and paged.
fn index_lines(
    node: &Node,
    caller: &Caller,
    params: &Map<String, Value>,
) -> Result<Vec<Value>, ApiError> {
    let (request, events) = search::index_events(node, caller, params)?;
    let IndexRequest {
        minimal,
        sort,
        limit,
        page,
        ..
    } = request;
    let mut lines = Vec::with_capacity(events.len());
    for event in &events {
        crate::turns::pause_point();
        lines.push(index_line(node, event, minimal)?);
    }
    if let Some((field, descending)) = sort {
        lines.sort_by(|x, y| match descending {
            false => by_field(&field, x, y),
            true => by_field(&field, y, x),
        });
    }
    let limit = limit.unwrap_or(usize::MAX);
    let skip = limit.saturating_mul(page - 1);
    Ok(lines.into_iter().skip(skip).take(limit).collect())
}

/// `GET /events/index[?filters]`: the visible events' metadata, as MISP's bare list.
pub async fn index(
    Call { state, caller }: Call,
    UrlQuery(pairs): UrlQuery<Vec<(String, String)>>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let params = url_params(pairs);
    state
        .reply(move |node| index_lines(node, &caller, &params))
        .await
}

/// `POST /events/index`: the same, with the filters in a JSON body.
pub async fn index_post(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Vec<Value>>, ApiError> {
    let params = body.filters("request")?;
    state
        .reply(move |node| index_lines(node, &caller, &params))
        .await
}
