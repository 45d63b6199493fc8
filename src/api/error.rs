//! MISP's error bodies and status codes. Handlers return [`ApiError`]; the [`misp_errors`]
//! middleware writes it as MISP does, `{"name", "message", "url"}` (plus `errors` for
//! validation failures), with `url` the request path.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::model::ModelError;
use crate::node::NodeError;
use crate::policy::authority::Refusal;
use crate::store::StoreError;

/// MISP's message for a missing or unknown API key.
pub const AUTH_FAILED: &str = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.";
/// MISP's message when the user may not do what was asked.
pub const NO_PERMISSION: &str = "You do not have permission to do that.";
/// MISP's message for an event that does not exist or is not visible.
pub const INVALID_EVENT: &str = "Invalid event.";
/// MISP's message for an attribute that does not exist or is not visible.
pub const INVALID_ATTRIBUTE: &str = "Invalid attribute.";
/// MISP's message for a duplicate attribute in one event.
pub const DUPLICATE_ATTRIBUTE: &str = "A similar attribute already exists for this event.";
/// MISP's validation failure name for data that could not be saved.
pub const NOT_SAVED: &str = "Could not save the data.";

/// A failed request, answered with MISP's error body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// MISP's `name` (and `message`) text.
    pub message: String,
    /// Validation errors by field (`{"value": ["…"]}`), for 403 validation failures.
    pub errors: Option<Value>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            errors: None,
        }
    }

    /// 403 for a missing or wrong API key.
    pub fn auth_failed() -> Self {
        Self::new(StatusCode::FORBIDDEN, AUTH_FAILED)
    }

    /// 403 for a user whose role or organisation does not allow the request.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, NO_PERMISSION)
    }

    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 400 for a body that cannot be used at all.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// MISP's 403 validation failure: `name`, and `errors` naming the field.
    pub fn validation(name: &str, field: &str, message: impl Into<String>) -> Self {
        let mut errors = Map::new();
        errors.insert(field.to_string(), json!([message.into()]));
        Self {
            status: StatusCode::FORBIDDEN,
            message: name.to_string(),
            errors: Some(Value::Object(errors)),
        }
    }

    /// A [`ModelError`] as MISP's validation failure `name`, naming the field it is about.
    pub fn model(name: &str, error: &ModelError) -> Self {
        Self::validation(name, model_field(error), error.to_string())
    }

    /// A write that write authority refused (SPEC §4.2), which peers would refuse too: 403,
    /// a validation failure on `uuid` when the request names another event's item, else
    /// the reason itself.
    pub fn refused(refusal: &Refusal) -> Self {
        match refusal {
            Refusal::ForeignItem { .. } => Self::validation(NOT_SAVED, "uuid", refusal.to_string()),
            _ => Self::new(StatusCode::FORBIDDEN, refusal.to_string()),
        }
    }

    /// A storage or node failure: 500, logged, without internals in the body.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!("request failed: {error}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred; see the node's log.",
        )
    }

    /// The body MISP sends, for request path `url`.
    pub fn body(&self, url: &str) -> Value {
        let mut body = Map::new();
        if self.errors.is_some() {
            body.insert("saved".into(), json!(false));
        }
        body.insert("name".into(), json!(self.message));
        body.insert("message".into(), json!(self.message));
        body.insert("url".into(), json!(url));
        if let Some(errors) = &self.errors {
            body.insert("errors".into(), errors.clone());
        }
        Value::Object(body)
    }
}

/// The MISP field a model error is about.
pub fn model_field(error: &ModelError) -> &str {
    match error.root() {
        ModelError::UnknownType { .. } => "type",
        ModelError::UnknownCategory { .. } | ModelError::CategoryMismatch { .. } => "category",
        ModelError::InvalidValue { .. } => "value",
        ModelError::AttachmentTooLarge { .. } => "data",
        ModelError::MissingField { field, .. } | ModelError::InvalidField { field, .. } => {
            field.as_str()
        }
        ModelError::NotAnObject { .. } | ModelError::NotAnEvent | ModelError::Item { .. } => {
            "Event"
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        match &error {
            NodeError::Store(StoreError::Refused(refusal)) => ApiError::refused(refusal),
            NodeError::Model(model) => ApiError::model(NOT_SAVED, model),
            NodeError::Json(message) => ApiError::bad_request(format!("Malformed JSON: {message}")),
            NodeError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
            }
            _ => ApiError::internal(&error),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Refused(refusal) => ApiError::refused(refusal),
            _ => ApiError::internal(&error),
        }
    }
}

impl From<crate::view::KvError> for ApiError {
    fn from(error: crate::view::KvError) -> Self {
        ApiError::internal(&error)
    }
}

impl IntoResponse for ApiError {
    /// A response carrying the error; [`misp_errors`] writes its body with the request path.
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body(""))).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Rewrites error responses with the request path in `url`, as MISP does.
pub async fn misp_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    // Only the body is rewritten: headers such as `Retry-After` stay.
    match response.extensions().get::<ApiError>().cloned() {
        Some(error) => {
            let (parts, _) = response.into_parts();
            Response::from_parts(parts, Json(error.body(&path)).into_response().into_body())
        }
        None => response,
    }
}

/// The answer to a path no route matches: MISP's 404 body.
pub async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}
