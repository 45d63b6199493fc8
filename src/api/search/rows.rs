//! The rows of a restSearch answer: the attributes the caller sees, as JSON (with their
//! event, object and correlations when asked) or as MISP's CSV export.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use uuid::Uuid;

use super::request::{epoch, Request, DAY_SECONDS};
use super::Found;
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::events::correlations::related_attributes;
use crate::model::date::civil_from_days;
use crate::node::Node;
use crate::view::search::Deleted;

/// The event columns CSV's `include_context` appends.
pub(super) const CSV_CONTEXT_COLUMNS: [&str; 9] = [
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

/// An attribute of an event's JSON with the object holding it, if any.
pub(super) struct Listed {
    pub(super) attribute: Value,
    pub(super) object: Option<Value>,
}

/// The attributes of an event's MISP JSON (top-level, then in objects), by uuid.
pub(super) fn listed_attributes(event: &Value) -> BTreeMap<String, Listed> {
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
pub(super) struct Row {
    pub(super) attribute: Value,
    pub(super) object: Option<Value>,
    pub(super) event: Value,
}

/// The event JSON with its contents left out, for context.
pub(super) fn event_meta(event: &Value) -> Value {
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
pub(super) fn attribute_rows(
    node: &Node,
    caller: &Caller,
    request: &Request,
    found: &[Found],
) -> Result<Vec<Row>, ApiError> {
    let skip = request.skip();
    let include_deleted = request.query.deleted != Deleted::Live;
    let mut rows = Vec::new();
    let mut seen = 0;
    for found in found {
        let hit = &found.hit;
        let event = found.event_json(node, caller, include_deleted)?;
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
pub(super) fn attribute_json(
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
        if request.event_uuid {
            fields.insert("event_uuid".into(), row.event["uuid"].clone());
        }
        if request.event_tags {
            let tags = fields.entry("Tag").or_insert_with(|| json!([]));
            if let Some(tags) = tags.as_array_mut() {
                let own: Vec<Value> = tags.iter().map(|tag| tag["name"].clone()).collect();
                let event_tags = row.event["Tag"].as_array().into_iter().flatten();
                tags.extend(
                    event_tags
                        .filter(|tag| !own.contains(&tag["name"]))
                        .cloned(),
                );
            }
        }
    }
    if request.no_local_tags {
        drop_local_tags(&mut attribute);
    }
    Ok(attribute)
}

/// Removes the local tags from every `Tag` list in `value` (MISP's `excludeLocalTags`).
pub(super) fn drop_local_tags(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, inner) in fields.iter_mut() {
                if name == "Tag" {
                    if let Some(tags) = inner.as_array_mut() {
                        tags.retain(|tag| tag["local"] != json!(true));
                    }
                } else {
                    drop_local_tags(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_local_tags),
        _ => {}
    }
}

/// A value as CSV text: strings as they are, booleans as 1/0.
pub(super) fn plain(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Bool(flag)) => u8::from(*flag).to_string(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The names of a JSON item's `Tag` list, comma-joined.
pub(super) fn tag_list(item: &Value) -> String {
    item.get("Tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|tag| tag.get("name").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(",")
}

/// One CSV cell of `column` for a row.
pub(super) fn csv_cell(row: &Row, column: &str) -> String {
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
pub(super) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The rows as MISP's CSV export.
pub(super) fn csv(request: &Request, rows: &[Row]) -> String {
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
