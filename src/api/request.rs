//! Reading requests: JSON bodies within the configured size limit, the ids or uuids MISP
//! accepts in paths, CakePHP-style named options, and the check that a record a request
//! creates is new.

use axum::body::{Body, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde_json::Value;
use std::pin::Pin;
use uuid::Uuid;

use super::error::ApiError;
use super::ApiState;
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::read;

/// A request body parsed as JSON; `None` when the body is empty (PyMISP sends none to
/// `events/delete`). Over the size limit is 413, not JSON is 400, both with MISP's body.
#[derive(Debug)]
pub struct JsonBody(pub Option<Value>);

impl JsonBody {
    /// The body's object, unwrapped from `{key: {…}}` when so wrapped; empty when absent.
    pub fn object(&self, key: &str) -> serde_json::Map<String, Value> {
        match &self.0 {
            Some(Value::Object(outer)) => match outer.get(key) {
                Some(Value::Object(inner)) => inner.clone(),
                _ => outer.clone(),
            },
            _ => serde_json::Map::new(),
        }
    }

    /// [`JsonBody::object`], refusing a body that is JSON but not an object (a list, a
    /// string): read as no filters at all, it would answer more than was asked.
    pub fn filters(&self, key: &str) -> Result<serde_json::Map<String, Value>, ApiError> {
        match &self.0 {
            None | Some(Value::Null | Value::Object(_)) => Ok(self.object(key)),
            Some(_) => Err(ApiError::bad_request(
                "The filters must be a JSON object, such as {\"value\": \"198.51.100.1\"}.",
            )),
        }
    }
}

fn too_large(max_bytes: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "The request body is larger than the limit of {max_bytes} bytes (api.body_bytes_max)."
        ),
    )
}

/// 413 when `headers` declare a body over `max_bytes`: known before any of it is read.
pub fn declared_too_large(headers: &header::HeaderMap, max_bytes: u64) -> Option<ApiError> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .filter(|bytes| *bytes > max_bytes)
        .map(|_| too_large(max_bytes))
}

/// The error for a body that could not be read: 408 when it came too slowly.
fn unreadable(error: axum::Error) -> ApiError {
    let error = error.into_inner();
    match error.downcast_ref::<super::connections::BodyTimeout>() {
        Some(timeout) => ApiError::new(StatusCode::REQUEST_TIMEOUT, format!("{timeout}.")),
        None => ApiError::bad_request(format!("Unreadable request body: {error}")),
    }
}

/// Reads `body`, refusing it as soon as it grows past `max_bytes`.
async fn read_limited(mut body: Body, max_bytes: u64) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(unreadable)?;
        if let Ok(data) = frame.into_data() {
            if (out.len() + data.len()) as u64 > max_bytes {
                return Err(too_large(max_bytes));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

impl FromRequest<ApiState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let max_bytes = state.body_bytes_max;
        if let Some(error) = declared_too_large(request.headers(), max_bytes) {
            return Err(error);
        }
        let bytes = read_limited(request.into_body(), max_bytes).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(None));
        }
        serde_json::from_slice(&bytes)
            .map(|value| JsonBody(Some(value)))
            .map_err(|error| {
                ApiError::bad_request(format!("Malformed JSON in the request body: {error}"))
            })
    }
}

/// A record named in a path: a local numeric id or a uuid, with an optional `.json` suffix.
/// Anything else names nothing (404).
pub fn parse_ref(text: &str) -> Option<Ref> {
    let text = text.trim().trim_end_matches(".json");
    if let Ok(id) = text.parse::<u64>() {
        return Some(Ref::Id(id));
    }
    Uuid::parse_str(text).ok().map(Ref::Uuid)
}

/// A local id or a uuid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ref {
    /// A local numeric id.
    Id(u64),
    /// A uuid.
    Uuid(Uuid),
}

impl Ref {
    /// The uuid of the record of `kind` this names, if any.
    pub fn resolve(self, node: &Node, kind: RecordKind) -> Option<Uuid> {
        match self {
            Ref::Uuid(uuid) => Some(uuid),
            Ref::Id(id) => Uuid::from_slice(&node.store.key_of_id(kind, id)?).ok(),
        }
    }
}

/// A field of a JSON object as text (strings, numbers and booleans as MISP sends them).
pub fn text_field(object: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(if *flag { "1" } else { "0" }.into()),
        _ => None,
    }
}

/// A lenient MISP flag: true, 1, "1", "true".
pub fn flag_field(object: &serde_json::Map<String, Value>, key: &str) -> bool {
    object.get(key).is_some_and(truthy)
}

/// Whether a JSON value is a MISP "yes": true, a non-zero number, "1" or "true", or a list
/// holding one (`"deleted": [0, 1]`).
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => matches!(text.trim(), "1" | "true" | "True"),
        Value::Array(items) => items.iter().any(truthy),
        _ => false,
    }
}

/// Refuses a request to create record `kind`/`uuid` when the views hold one already (live or
/// deleted): MISP's validation failure `name` on `field`, with `message`.
pub fn require_new(
    node: &Node,
    kind: RecordKind,
    uuid: &Uuid,
    (name, field): (&str, &str),
    message: &str,
) -> Result<(), ApiError> {
    if read::record(&node.store.views(), kind, uuid.as_bytes())?.is_some() {
        return Err(ApiError::validation(name, field, message));
    }
    Ok(())
}

/// Whether CakePHP-style named options (`metadata:1/deleted:1`) set `name`.
pub fn option_set(options: &str, name: &str) -> bool {
    options
        .split('/')
        .filter_map(|part| part.split_once(':'))
        .any(|(key, value)| key == name && !matches!(value, "0" | "false" | ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_references() {
        let uuid = "5b646415-7b48-40d5-86b4-c0070acd0835";
        assert_eq!(parse_ref("17"), Some(Ref::Id(17)));
        assert_eq!(parse_ref("17.json"), Some(Ref::Id(17)));
        assert_eq!(
            parse_ref(uuid),
            Some(Ref::Uuid(Uuid::parse_str(uuid).unwrap()))
        );
        for bad in [
            "",
            "-3",
            "x1",
            "5b646415-zzzz",
            "1e3",
            "18446744073709551616",
        ] {
            assert_eq!(parse_ref(bad), None, "{bad}");
        }
    }

    #[test]
    fn misp_flags() {
        for yes in [
            json!(true),
            json!(1),
            json!("1"),
            json!("true"),
            json!([0, 1]),
        ] {
            assert!(truthy(&yes), "{yes}");
        }
        for no in [
            json!(false),
            json!(0),
            json!("0"),
            json!(null),
            json!([0]),
            json!({}),
        ] {
            assert!(!truthy(&no), "{no}");
        }
    }
}
