//! `/events/restSearch` and `/attributes/restSearch` (PyMISP's `search()`): MISP's filter
//! parameters parsed into a [`Query`], answered by [`search::search`] over the views, then
//! cut to what the caller may see ([`visibility`](super::visibility), exactly as
//! `events/view`), paged, and written as JSON, CSV or text.

use std::collections::BTreeMap;

use axum::extract::{Query as UrlQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::correlations::related_attributes;
use super::error::ApiError;
use super::events::{event_json, event_json_with, now_seconds};
use super::request::{parse_ref, truthy, JsonBody};
use super::visibility::{attribute_visible, event_access, EventAccess};
use super::ApiState;
use crate::model::date::{civil_from_days, days_from_civil};
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::read::{self, EventOptions};
use crate::view::search::{self, Deleted, Hit, OneOf, Query, Range, Scope, TagQuery};

/// The event columns CSV's `include_context` appends.
const CSV_CONTEXT_COLUMNS: [&str; 9] = [
    "event_info",
    "event_member_org",
    "event_source_org",
    "event_distribution",
    "event_threat_level_id",
    "event_analysis",
    "event_date",
    "event_tag",
    "event_timestamp",
];

/// Seconds in a day.
const DAY_SECONDS: i64 = 86_400;

/// The output formats served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Text,
    /// An interchange export (hashes, suricata, snort, stix2), see [`crate::interop::export`].
    Export(crate::interop::export::Format),
}

/// A parsed request: the query and the output options.
#[derive(Clone, Debug)]
struct Request {
    query: Query,
    format: Format,
    /// Results per page (`None`: all).
    limit: Option<usize>,
    /// Page number from 1.
    page: usize,
    metadata: bool,
    correlations: bool,
    context: bool,
    headerless: bool,
    columns: Vec<String>,
}

/// A filter's terms: a string, a number, a list, or `{"OR": …, "AND": …, "NOT": …}`, with
/// `!` marking a negation. Returns (or, and, not).
fn terms(value: Option<&Value>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    let text = |item: &Value| match item {
        Value::String(text) => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    let add = |item: &Value, group: u8, out: &mut (Vec<_>, Vec<_>, Vec<_>)| {
        let Some(text) = text(item).filter(|text| !text.is_empty()) else {
            return;
        };
        match (text.strip_prefix('!'), group) {
            (Some(negated), _) => out.2.push(negated.to_string()),
            (None, 2) => out.2.push(text),
            (None, 1) => out.1.push(text),
            (None, _) => out.0.push(text),
        }
    };
    let list = |value: Option<&Value>, group: u8, out: &mut (Vec<_>, Vec<_>, Vec<_>)| match value {
        Some(Value::Array(items)) => items.iter().for_each(|item| add(item, group, out)),
        Some(item) => add(item, group, out),
        None => {}
    };
    match value {
        Some(Value::Object(groups)) => {
            for (name, group) in [("OR", 0), ("AND", 1), ("NOT", 2)] {
                let value = groups
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value);
                list(value, group, &mut out);
            }
        }
        other => list(other, 0, &mut out),
    }
    out
}

/// Terms as an OR list with negations (AND terms count as OR for single-valued fields).
fn one_of(value: Option<&Value>) -> OneOf<String> {
    let (mut include, and, exclude) = terms(value);
    include.extend(and);
    OneOf { include, exclude }
}

/// `YYYY-MM-DD` (optionally followed by a time, which is ignored) as (y, m, d).
fn parse_date(text: &str) -> Option<(i64, i64, i64)> {
    let date = text.get(..10)?;
    let mut parts = date.split('-');
    let year = parts.next()?.parse().ok()?;
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some((year, month, day))
}

/// A point in time as epoch seconds: an epoch (number or digits), a relative age (`5d`,
/// `12h`, `30m`, `10s`, `2w` before `now`), or a date (its midnight UTC).
fn epoch(value: &Value, now: i64) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_f64().map(|seconds| seconds.floor() as i64),
        Value::String(text) => {
            let text = text.trim();
            if let Ok(seconds) = text.parse::<f64>() {
                return Some(seconds.floor() as i64);
            }
            let unit = match text.chars().last()? {
                's' => Some(1),
                'm' => Some(60),
                'h' => Some(3600),
                'd' => Some(DAY_SECONDS),
                'w' => Some(7 * DAY_SECONDS),
                _ => None,
            };
            if let Some(unit) = unit {
                if let Ok(count) = text[..text.len() - 1].parse::<i64>() {
                    // An age past the representable reaches back to the earliest time.
                    return Some(now.saturating_sub(count.saturating_mul(unit)));
                }
            }
            parse_date(text).map(|(y, m, d)| days_from_civil(y, m, d) * DAY_SECONDS)
        }
        _ => None,
    }
}

/// A time filter: one point (a lower bound) or a two-element range.
fn range(value: Option<&Value>, now: i64) -> Range {
    match value {
        Some(Value::Array(items)) => (
            items.first().and_then(|item| epoch(item, now)),
            items.get(1).and_then(|item| epoch(item, now)),
        ),
        Some(value) => (epoch(value, now), None),
        None => (None, None),
    }
}

/// An event date bound: a date as given, or the UTC date of a point in time.
fn date_bound(value: Option<&Value>, now: i64) -> Option<String> {
    let value = value?;
    if let Some((y, m, d)) = value.as_str().and_then(parse_date) {
        return Some(format!("{y:04}-{m:02}-{d:02}"));
    }
    let (y, m, d) = civil_from_days(epoch(value, now)?.div_euclid(DAY_SECONDS));
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// A tri-state MISP flag: absent or both (`[0, 1]`) is no filter.
fn flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Array(items) if items.len() != 1 => None,
        Value::Array(items) => Some(truthy(&items[0])),
        Value::String(text) if text.trim().is_empty() => None,
        other => Some(truthy(other)),
    }
}

fn number(value: Option<&Value>) -> Option<usize> {
    match value? {
        Value::Number(number) => number.as_u64().map(|n| n as usize),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Parses the request parameters; names (organisations, event ids) are resolved on `node`.
fn parse(node: &Node, scope: Scope, params: &Map<String, Value>) -> Result<Request, ApiError> {
    let params = match params.get("request") {
        Some(Value::Object(inner)) => inner,
        _ => params,
    };
    let get = |name: &str| params.get(name).filter(|value| !value.is_null());
    let now = now_seconds();
    let format = match get("returnFormat")
        .and_then(Value::as_str)
        .unwrap_or("json")
    {
        "json" => Format::Json,
        "csv" => Format::Csv,
        "text" => Format::Text,
        other => match crate::interop::export::Format::parse(other) {
            Some(format) => Format::Export(format),
            None => {
                return Err(ApiError::bad_request(format!(
                    "Invalid return format: {other}. Supported: json, csv, text, hashes, \
                     suricata, snort, stix2."
                )))
            }
        },
    };
    // IDS formats default to IDS attributes of published events, as MISP's do.
    let ids = matches!(format, Format::Export(format) if format.is_ids());
    let (any, all, none) = terms(get("tags"));
    let (event_any, event_all, event_none) = terms(get("event_tags"));
    let tags = TagQuery {
        any: any.into_iter().chain(event_any).collect(),
        all: all.into_iter().chain(event_all).collect(),
        none: none.into_iter().chain(event_none).collect(),
    };
    // Unknown names match nothing: the nil uuid names no organisation or event.
    let org_terms = one_of(get("org"));
    let resolve_org = |text: &String| -> Result<Uuid, ApiError> {
        Ok(node
            .find_organisation(text)?
            .map(|entry| entry.org.uuid)
            .unwrap_or(Uuid::nil()))
    };
    let orgs = OneOf {
        include: org_terms
            .include
            .iter()
            .map(resolve_org)
            .collect::<Result<_, _>>()?,
        exclude: org_terms
            .exclude
            .iter()
            .map(resolve_org)
            .collect::<Result<_, _>>()?,
    };
    let events = one_of(get("eventid"))
        .include
        .iter()
        .map(|text| {
            parse_ref(text)
                .and_then(|reference| reference.resolve(node, RecordKind::Event))
                .unwrap_or(Uuid::nil())
        })
        .collect();
    let uuids = one_of(get("uuid"))
        .include
        .iter()
        .map(|text| Uuid::parse_str(text).unwrap_or(Uuid::nil()))
        .collect();
    let deleted = match get("deleted") {
        Some(Value::Array(items)) if items.len() > 1 => Deleted::Both,
        Some(Value::Array(items)) if items.first().is_some_and(truthy) => Deleted::Only,
        Some(Value::String(text)) if text == "only" => Deleted::Only,
        Some(value) if !value.is_array() && truthy(value) => Deleted::Only,
        _ => Deleted::Live,
    };
    let text = |name: &str| {
        get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(String::from)
    };
    let publish_timestamp = match get("last") {
        Some(last) => range(Some(last), now),
        None => range(get("publish_timestamp"), now),
    };
    let query = Query {
        scope,
        values: one_of(get("value")),
        types: one_of(get("type")),
        categories: one_of(get("category")),
        tags,
        orgs,
        events,
        uuids,
        published: flag(get("published")).or(ids.then_some(true)),
        to_ids: flag(get("to_ids")).or(ids.then_some(true)),
        deleted,
        date: (
            date_bound(get("from").or(get("date_from")), now),
            date_bound(get("to").or(get("date_to")), now),
        ),
        timestamp: range(get("timestamp"), now),
        event_timestamp: range(get("event_timestamp"), now),
        publish_timestamp,
        event_info: text("eventinfo"),
        searchall: text("searchall").or_else(|| text("quickFilter")),
    };
    let on = |name: &str| get(name).is_some_and(truthy);
    let columns = match get("requested_attributes") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::String(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Request {
        query,
        format,
        limit: number(get("limit")).filter(|limit| *limit > 0),
        page: number(get("page")).unwrap_or(1).max(1),
        metadata: on("metadata"),
        correlations: on("includeCorrelations") || on("include_correlations"),
        context: on("includeContext") || on("include_context"),
        headerless: on("headerless"),
        columns,
    })
}

/// A visible event hit with the caller's view of the event.
struct Found {
    access: EventAccess,
    hit: Hit,
}

/// The hits the caller may see, in event id order. A hit's matched attributes are narrowed
/// to those the caller sees, and a hit whose matches are all hidden is dropped: a search must
/// not tell a user that an event holds a value they may not see.
fn visible_hits(node: &Node, caller: &Caller, query: &Query) -> Result<Vec<Found>, ApiError> {
    let views = node.store.views();
    let hits = search::search(&views, query)?;
    let mut found = Vec::new();
    for mut hit in hits {
        let Some(access) = event_access(node, caller, &hit.event)? else {
            continue;
        };
        if !hit.attributes.is_empty() {
            let mut visible = Vec::with_capacity(hit.attributes.len());
            for uuid in hit.attributes {
                let record = read::record(&views, RecordKind::Attribute, uuid.as_bytes())?;
                if let Some(record) = record {
                    if attribute_visible(node, caller, &access, &record)? {
                        visible.push(uuid);
                    }
                }
            }
            if visible.is_empty() {
                continue;
            }
            hit.attributes = visible;
        }
        found.push(Found { access, hit });
    }
    found.sort_by_key(|found| found.access.id);
    Ok(found)
}

/// An attribute of an event's JSON with the object holding it, if any.
struct Listed {
    attribute: Value,
    object: Option<Value>,
}

/// The attributes of an event's MISP JSON (top-level, then in objects), by uuid.
fn listed_attributes(event: &Value) -> BTreeMap<String, Listed> {
    let mut out = BTreeMap::new();
    let uuid_of = |item: &Value| {
        item.get("uuid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for attribute in event
        .pointer("/Event/Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let listed = Listed {
            attribute: attribute.clone(),
            object: None,
        };
        out.insert(uuid_of(attribute), listed);
    }
    for object in event
        .pointer("/Event/Object")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut meta = object.clone();
        if let Some(fields) = meta.as_object_mut() {
            fields.remove("Attribute");
            fields.remove("ObjectReference");
        }
        for attribute in object
            .get("Attribute")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let listed = Listed {
                attribute: attribute.clone(),
                object: Some(meta.clone()),
            };
            out.insert(uuid_of(attribute), listed);
        }
    }
    out
}

/// An attribute with the event (and object) it sits in, as listed in results.
struct Row {
    attribute: Value,
    object: Option<Value>,
    event: Value,
}

/// The event JSON with its contents left out, for context.
fn event_meta(event: &Value) -> Value {
    let mut meta = event.get("Event").cloned().unwrap_or_else(|| json!({}));
    if let Some(fields) = meta.as_object_mut() {
        for list in ["Attribute", "Object", "EventReport", "RelatedEvent"] {
            fields.remove(list);
        }
    }
    meta
}

/// The page of attribute rows: the hits' attributes the caller sees, in event id then
/// attribute id order. In the events scope a hit without matched attributes lists all.
fn attribute_rows(
    node: &Node,
    caller: &Caller,
    request: &Request,
    found: &[Found],
) -> Result<Vec<Row>, ApiError> {
    let skip = request.limit.map_or(0, |limit| limit * (request.page - 1));
    let include_deleted = request.query.deleted != Deleted::Live;
    let mut rows = Vec::new();
    let mut seen = 0;
    for Found { access, hit } in found {
        let options = EventOptions {
            include_deleted,
            correlation_max: node.config.views.correlation_max,
            correlations: false,
            only_attributes: (!hit.attributes.is_empty())
                .then(|| hit.attributes.iter().copied().collect()),
        };
        let event = event_json_with(node, caller, access, options, false)?;
        let mut listed = listed_attributes(&event);
        let wanted: Vec<String> = if hit.attributes.is_empty() {
            listed.keys().cloned().collect()
        } else {
            hit.attributes.iter().map(Uuid::to_string).collect()
        };
        let mut picked: Vec<Listed> = wanted
            .iter()
            .filter_map(|uuid| listed.remove(uuid))
            .collect();
        picked.sort_by_key(|listed| {
            listed
                .attribute
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| id.parse::<u64>().ok())
                .unwrap_or(0)
        });
        let meta = event_meta(&event);
        for listed in picked {
            seen += 1;
            if seen <= skip {
                continue;
            }
            rows.push(Row {
                attribute: listed.attribute,
                object: listed.object,
                event: meta.clone(),
            });
            if request.limit.is_some_and(|limit| rows.len() >= limit) {
                return Ok(rows);
            }
        }
    }
    Ok(rows)
}

/// An attribute as `attributes/restSearch` lists it: with its event (`includeContext`: the
/// whole event's metadata), its object and its correlations when asked.
fn attribute_json(
    node: &Node,
    caller: &Caller,
    request: &Request,
    row: Row,
) -> Result<Value, ApiError> {
    let mut attribute = row.attribute;
    let event = if request.context {
        row.event.clone()
    } else {
        let mut short = Map::new();
        for name in [
            "org_id",
            "distribution",
            "id",
            "info",
            "orgc_id",
            "uuid",
            "publish_timestamp",
        ] {
            if let Some(value) = row.event.get(name) {
                short.insert(name.into(), value.clone());
            }
        }
        Value::Object(short)
    };
    let related = if request.correlations {
        Some(related_attributes(node, caller, &attribute)?)
    } else {
        None
    };
    if let Some(fields) = attribute.as_object_mut() {
        fields.insert("Event".into(), event);
        if let Some(object) = &row.object {
            let mut short = Map::new();
            for name in [
                "id",
                "uuid",
                "name",
                "meta-category",
                "distribution",
                "sharing_group_id",
            ] {
                if let Some(value) = object.get(name) {
                    short.insert(name.into(), value.clone());
                }
            }
            fields.insert("Object".into(), Value::Object(short));
        }
        if let Some(related) = related {
            fields.insert("RelatedAttribute".into(), Value::Array(related));
        }
    }
    Ok(attribute)
}

/// A value as CSV text: strings as they are, booleans as 1/0.
fn plain(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Bool(flag)) => u8::from(*flag).to_string(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The names of a JSON item's `Tag` list, comma-joined.
fn tag_list(item: &Value) -> String {
    item.get("Tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|tag| tag.get("name").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(",")
}

/// One CSV cell of `column` for a row.
fn csv_cell(row: &Row, column: &str) -> String {
    let attribute = &row.attribute;
    let object = |name: &str| plain(row.object.as_ref().and_then(|object| object.get(name)));
    let event = |name: &str| plain(row.event.get(name));
    match column {
        "date" => attribute
            .get("timestamp")
            .and_then(|value| epoch(value, 0))
            .map(|seconds| {
                let (y, m, d) = civil_from_days(seconds.div_euclid(DAY_SECONDS));
                format!("{y:04}{m:02}{d:02}")
            })
            .unwrap_or_default(),
        "attribute_tag" => tag_list(attribute),
        "object_uuid" => object("uuid"),
        "object_name" => object("name"),
        "object_meta_category" => object("meta-category"),
        "event_info" => event("info"),
        "event_member_org" => plain(row.event.pointer("/Org/name")),
        "event_source_org" => plain(row.event.pointer("/Orgc/name")),
        "event_distribution" => event("distribution"),
        "event_threat_level_id" => event("threat_level_id"),
        "event_analysis" => event("analysis"),
        "event_date" => event("date"),
        "event_tag" => tag_list(&row.event),
        "event_timestamp" => event("timestamp"),
        other => plain(attribute.get(other)),
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The rows as MISP's CSV export.
fn csv(request: &Request, rows: &[Row]) -> String {
    let mut columns: Vec<String> = if request.columns.is_empty() {
        crate::interop::export::CSV_COLUMNS
            .iter()
            .map(|name| name.to_string())
            .collect()
    } else {
        request.columns.clone()
    };
    if request.context {
        columns.extend(CSV_CONTEXT_COLUMNS.iter().map(|name| name.to_string()));
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let cells: Vec<String> = cells.iter().map(|cell| csv_field(cell)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    };
    if !request.headerless {
        line(columns.clone());
    }
    for row in rows {
        line(columns.iter().map(|column| csv_cell(row, column)).collect());
    }
    out
}

/// Runs a parsed search and writes the response body.
fn answer(node: &Node, caller: &Caller, request: &Request) -> Result<Response, ApiError> {
    let found = visible_hits(node, caller, &request.query)?;
    let text_response = |content_type: &'static str, body: String| {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    match (request.format, request.query.scope) {
        (Format::Json, Scope::Events) => {
            let skip = request.limit.map_or(0, |limit| limit * (request.page - 1));
            let include_deleted = request.query.deleted != Deleted::Live;
            let mut events = Vec::new();
            for Found { access, .. } in found
                .iter()
                .skip(skip)
                .take(request.limit.unwrap_or(usize::MAX))
            {
                events.push(event_json(
                    node,
                    caller,
                    access,
                    include_deleted,
                    request.metadata,
                )?);
            }
            Ok(Json(json!({ "response": events })).into_response())
        }
        (Format::Json, Scope::Attributes) => {
            let mut attributes = Vec::new();
            for row in attribute_rows(node, caller, request, &found)? {
                attributes.push(attribute_json(node, caller, request, row)?);
            }
            Ok(Json(json!({ "response": { "Attribute": attributes } })).into_response())
        }
        (Format::Csv, _) => {
            let rows = attribute_rows(node, caller, request, &found)?;
            Ok(text_response("text/csv", csv(request, &rows)))
        }
        (Format::Export(format), _) => {
            let events = export_events(node, caller, request, &found)?;
            let options = crate::interop::export::node_options(node, None);
            let body = crate::interop::export::render(format, &events, &options);
            Ok(text_response(format.content_type(), body))
        }
        (Format::Text, _) => {
            let rows = attribute_rows(node, caller, request, &found)?;
            let mut body = String::new();
            for row in rows {
                body.push_str(&plain(row.attribute.get("value")));
                body.push('\n');
            }
            Ok(text_response("text/plain", body))
        }
    }
}

/// The visible events of the hits for an export (a page of events when `limit` is given),
/// each with only its matched attributes when the query matched attributes.
fn export_events(
    node: &Node,
    caller: &Caller,
    request: &Request,
    found: &[Found],
) -> Result<Vec<Value>, ApiError> {
    let include_deleted = request.query.deleted != Deleted::Live;
    let skip = request.limit.map_or(0, |limit| limit * (request.page - 1));
    let mut events = Vec::new();
    for Found { access, hit } in found
        .iter()
        .skip(skip)
        .take(request.limit.unwrap_or(usize::MAX))
    {
        let options = EventOptions {
            include_deleted,
            correlation_max: node.config.views.correlation_max,
            correlations: false,
            only_attributes: (!hit.attributes.is_empty())
                .then(|| hit.attributes.iter().copied().collect()),
        };
        events.push(event_json_with(node, caller, access, options, false)?);
    }
    Ok(events)
}

async fn run(
    state: ApiState,
    caller: Caller,
    scope: Scope,
    params: Map<String, Value>,
) -> Result<Response, ApiError> {
    state
        .blocking(move |node| {
            let request = parse(node, scope, &params)?;
            answer(node, &caller, &request)
        })
        .await
}

/// URL query parameters as JSON: repeated names become lists.
fn url_params(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut params = Map::new();
    for (name, value) in pairs {
        let name = name.trim_end_matches("[]").to_string();
        match params.get_mut(&name) {
            Some(Value::Array(items)) => items.push(json!(value)),
            Some(existing) => *existing = json!([existing.clone(), value]),
            None => {
                params.insert(name, json!(value));
            }
        }
    }
    params
}

/// `POST /events/restSearch`: the filters in a JSON body.
pub async fn events(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    run(state, caller, Scope::Events, body.object("request")).await
}

/// `GET /events/restSearch?…`: the filters as URL parameters.
pub async fn events_get(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    UrlQuery(pairs): UrlQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    run(state, caller, Scope::Events, url_params(pairs)).await
}

/// `POST /attributes/restSearch`: the filters in a JSON body.
pub async fn attributes(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    run(state, caller, Scope::Attributes, body.object("request")).await
}

/// `GET /attributes/restSearch?…`: the filters as URL parameters.
pub async fn attributes_get(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    UrlQuery(pairs): UrlQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    run(state, caller, Scope::Attributes, url_params(pairs)).await
}

/// The `/events/restSearch` route: POST with a JSON body, GET with URL parameters.
pub fn events_route() -> MethodRouter<ApiState> {
    post(events).get(events_get)
}

/// The `/attributes/restSearch` route: POST with a JSON body, GET with URL parameters.
pub fn attributes_route() -> MethodRouter<ApiState> {
    post(attributes).get(attributes_get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_past_the_representable_reach_back_to_the_earliest_time() {
        let now = 1_800_000_000;
        assert_eq!(epoch(&json!("2d"), now), Some(now - 2 * DAY_SECONDS));
        assert_eq!(
            epoch(&json!("9999999999999999w"), now),
            Some(now - i64::MAX)
        );
        assert_eq!(epoch(&json!("-9999999999999999w"), now), Some(i64::MAX));
        // As a date bound: a date long before year 1, not a panic.
        let bound = date_bound(Some(&json!("9999999999999999w")), now).unwrap();
        assert!(bound.starts_with('-'), "{bound}");
    }

    #[test]
    fn terms_and_negations() {
        assert_eq!(
            terms(Some(&json!(["a", "!b", 3]))),
            (vec!["a".into(), "3".into()], vec![], vec!["b".into()])
        );
        assert_eq!(
            terms(Some(&json!({"OR": ["a"], "AND": "b", "NOT": ["c", "!d"]}))),
            (
                vec!["a".into()],
                vec!["b".into()],
                vec!["c".into(), "d".into()]
            )
        );
        assert_eq!(terms(Some(&json!("x"))).0, vec!["x".to_string()]);
    }

    #[test]
    fn times_and_dates() {
        let now = 1_700_000_000;
        assert_eq!(epoch(&json!("5d"), now), Some(now - 5 * DAY_SECONDS));
        assert_eq!(epoch(&json!("12h"), now), Some(now - 12 * 3600));
        assert_eq!(epoch(&json!("30m"), now), Some(now - 1800));
        assert_eq!(epoch(&json!(1234.9), now), Some(1234));
        assert_eq!(epoch(&json!("1234"), now), Some(1234));
        assert_eq!(epoch(&json!("1970-01-02"), now), Some(DAY_SECONDS));
        assert_eq!(epoch(&json!("soon"), now), None);
        assert_eq!(
            range(Some(&json!(["1d", "100"])), now),
            (Some(now - DAY_SECONDS), Some(100))
        );
        assert_eq!(
            date_bound(Some(&json!(1_700_000_000)), now).as_deref(),
            Some("2023-11-14")
        );
        assert_eq!(
            date_bound(Some(&json!("2024-02-29")), now).as_deref(),
            Some("2024-02-29")
        );
        for days in [-1000, 0, 19_000, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn flags_and_csv_quoting() {
        assert_eq!(flag(Some(&json!([0, 1]))), None);
        assert_eq!(flag(Some(&json!(0))), Some(false));
        assert_eq!(flag(Some(&json!("1"))), Some(true));
        assert_eq!(flag(None), None);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
