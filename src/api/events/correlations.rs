//! Correlations as a user sees them (SPEC §5, §6.1): MISP's `RelatedAttribute` and
//! `RelatedEvent` lists, drawn from the value index and kept to what the caller may see on
//! both sides. A hidden attribute neither correlates nor is listed as a correlation, and its
//! value is never named as over-correlating.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::api::access::{correlated_attribute, EventAccess};
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::request::truthy;
use crate::model;
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::correlation::{value_matches, values_matches};
use crate::view::read;

/// The values of an attribute as MISP JSON that correlate: none when it is deleted, its
/// correlation is disabled or its type is unknown.
fn correlating_values(attribute: &Value) -> Vec<String> {
    let field = |name: &str| attribute.get(name).and_then(Value::as_str).unwrap_or("");
    let off = |name: &str| attribute.get(name).is_some_and(truthy);
    match model::registry().lookup(field("type")) {
        Some(ty) if !off("disable_correlation") && !off("deleted") => {
            model::correlation_values(ty, field("value"))
        }
        _ => Vec::new(),
    }
}

/// Sets MISP's `RelatedEvent` list (and `OverCorrelatingValues`) of an event's MISP JSON
/// (`{"Event": …}`, already filtered for the caller): the other events sharing a correlating
/// value with an attribute the caller sees here, through an attribute the caller may see
/// there. Values matching more than `limit` attributes are named instead of followed.
pub fn set_related_events(
    node: &Node,
    caller: &Caller,
    access: &EventAccess,
    event: &mut Value,
    limit: usize,
) -> Result<(), ApiError> {
    let Some(fields) = event.get_mut("Event").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let list = |value: Option<&Value>| value.and_then(Value::as_array).cloned().unwrap_or_default();
    let objects = list(fields.get("Object"));
    let attributes = list(fields.get("Attribute")).into_iter().chain(
        objects
            .iter()
            .flat_map(|object| list(object.get("Attribute"))),
    );
    let mut values: Vec<String> = attributes.flat_map(|a| correlating_values(&a)).collect();
    values.sort();
    values.dedup();
    let views = node.store.views();
    let mut related = BTreeSet::new();
    let mut over_correlating = Vec::new();
    for (value, matches) in values.iter().zip(values_matches(&views, &values, limit)?) {
        let Some(matches) = matches else {
            over_correlating.push(value.clone());
            continue;
        };
        for (attribute, other) in matches {
            if other == access.uuid || related.contains(&other) {
                continue;
            }
            if correlated_attribute(node, caller, &attribute, &other)?.is_some() {
                related.insert(other);
            }
        }
    }
    let ids = |kind: RecordKind, key: &[u8]| node.store.local_id(kind, key);
    let mut summaries = Vec::new();
    for other in related {
        summaries.extend(read::related_event(&views, &other, &ids)?);
    }
    fields.insert("RelatedEvent".into(), Value::Array(summaries));
    if !over_correlating.is_empty() {
        fields.insert("OverCorrelatingValues".into(), json!(over_correlating));
    }
    Ok(())
}

/// MISP's `RelatedAttribute` list: visible attributes of other events sharing a correlating
/// value with `attribute`.
pub fn related_attributes(
    node: &Node,
    caller: &Caller,
    attribute: &Value,
) -> Result<Vec<Value>, ApiError> {
    let field = |name: &str| attribute.get(name).and_then(Value::as_str).unwrap_or("");
    let own_event = attribute.get("event_id").cloned();
    let views = node.store.views();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for value in correlating_values(attribute) {
        let matches =
            value_matches(&views, &value, node.config.views.correlation_max)?.unwrap_or_default();
        for (other, event) in matches {
            if other.to_string() == field("uuid") || !seen.insert(other) {
                continue;
            }
            let Some((access, record)) = correlated_attribute(node, caller, &other, &event)? else {
                continue;
            };
            let id = |kind: RecordKind, key: &[u8]| {
                node.store.local_id(kind, key).unwrap_or(0).to_string()
            };
            let event_id = id(RecordKind::Event, event.as_bytes());
            if Some(json!(event_id)) == own_event {
                continue;
            }
            let org_id = access
                .record
                .owner
                .as_ref()
                .map(|(org, _)| id(RecordKind::Organisation, org.as_bytes()))
                .unwrap_or_else(|| "0".into());
            out.push(json!({
                "id": id(RecordKind::Attribute, other.as_bytes()),
                "event_id": event_id,
                "object_id": record
                    .parent()
                    .map(|parent| id(RecordKind::Object, parent.as_bytes()))
                    .unwrap_or_else(|| "0".into()),
                "org_id": org_id,
                "uuid": other.to_string(),
                "type": record.str_field("type").unwrap_or_default(),
                "category": record.str_field("category").unwrap_or_default(),
                "value": record.str_field("value").unwrap_or_default(),
                "distribution": record.str_field("distribution").unwrap_or("5"),
                "Event": {
                    "id": event_id,
                    "uuid": event.to_string(),
                    "info": access.record.str_field("info").unwrap_or_default(),
                    "org_id": org_id,
                },
            }));
        }
    }
    Ok(out)
}
