//! `/roles/…`: the node's roles, MISP's default ones ([`ROLES`]), which every user may list
//! and view (`roles/index`, `roles/view/{id}`, and `admin/roles/view/{id}` as MISP's admin
//! pages name it). Roles are fixed here: there are no routes to add, edit or delete them.

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::auth::{Role, ROLES};
use super::error::ApiError;
use super::request::{parse_ref, Ref};
use super::{ApiState, Call};

/// MISP's message for an unknown role.
pub const INVALID_ROLE: &str = "Invalid role.";

/// The routes of `/roles/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/roles/index", get(index))
        .route("/roles/view/{id}", get(view))
        .route("/admin/roles/view/{id}", get(view))
}

/// `GET /roles/index` (PyMISP's `roles()`): MISP's list of `{"Role": {…}}`, in id order.
/// Only an authenticated caller gets here; roles are no secret from any user.
pub async fn index(_: Call) -> Json<Value> {
    let roles = ROLES.iter().map(|role| json!({ "Role": role.json() }));
    Json(Value::Array(roles.collect()))
}

/// `GET /roles/view/{id}` and `/admin/roles/view/{id}`: `{"Role": {…}}`, or MISP's 404 for
/// an id that names no role.
pub async fn view(_: Call, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let role = match parse_ref(&id) {
        Some(Ref::Id(id)) => u8::try_from(id).ok().and_then(Role::by_id),
        _ => None,
    }
    .ok_or_else(|| ApiError::not_found(INVALID_ROLE))?;
    Ok(Json(json!({ "Role": role.json() })))
}
