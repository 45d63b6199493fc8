//! `POST /events/freeTextImport/{event}`: MISP's freetext import, as PyMISP's `freetext()`
//! calls it. The indicators found in `value` ([`crate::interop::freetext`]) are added to the
//! event as attributes through the same write path as `attributes/add`; with
//! `returnMetaAttributes` they are only returned, not saved.

use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

use super::render::event_json;
use crate::api::access::{editable_event, visible_event};
use crate::api::attributes::append_attributes;
use crate::api::error::ApiError;
use crate::api::request::{flag_field, JsonBody};
use crate::api::Call;
use crate::change::Distribution;
use crate::interop::freetext;

/// MISP's name for a refused freetext import.
const NOT_IMPORTED: &str = "Could not import the freetext";

/// The requested distribution: 0–5, or none (inherit) for absent, `-1` ("recipient decides")
/// and anything else.
fn distribution(body: &serde_json::Map<String, Value>) -> Option<u8> {
    let value = body.get("distribution")?;
    let level = value
        .as_i64()
        .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))?;
    u8::try_from(level)
        .ok()
        .filter(|level| *level <= Distribution::INHERIT.level())
}

/// `POST /events/freeTextImport/{event}` with `{"value", "distribution",
/// "returnMetaAttributes", "adhereToWarninglists"}`. Answers the list of added attributes
/// (MISP JSON), or with `returnMetaAttributes` the list of finds with their types and places.
pub async fn import(
    Call { state, caller }: Call,
    Path(event_ref): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("Event");
    let meta_only = flag_field(&body, "returnMetaAttributes");
    let distribution = distribution(&body);
    state
        .reply(move |node| {
            let event = if meta_only {
                visible_event(node, &caller, &event_ref)?
            } else {
                editable_event(node, &caller, &event_ref)?
            };
            let text = match body.get("value") {
                Some(Value::String(text)) => text.clone(),
                _ => {
                    return Err(ApiError::validation(
                        NOT_IMPORTED,
                        "value",
                        "The request has no text in 'value'.",
                    ))
                }
            };
            let finds = freetext::extract(&text)
                .map_err(|error| ApiError::validation(NOT_IMPORTED, "value", error.to_string()))?;
            if meta_only {
                return Ok(Value::Array(finds.iter().map(|f| f.meta_json()).collect()));
            }
            let existing = event_json(node, &caller, &event, false, false)?;
            let (attributes, _duplicates) =
                freetext::new_attributes(&finds, &existing, distribution, node.now_seconds())
                    .map_err(|error| ApiError::model(NOT_IMPORTED, &error))?;
            if attributes.is_empty() {
                return Ok(json!([]));
            }
            let added = append_attributes(node, &caller, &event, &attributes, false)?;
            Ok(Value::Array(added))
        })
        .await
}
