//! Organisations and users: the node operations behind `threatlog org …`, `threatlog user …`
//! and the API's caller lookup, plus the endpoints PyMISP calls when it connects.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::ApiState;
use crate::model;

/// The MISP version the API reports: purely numeric and dotted, as PyMISP requires.
pub const MISP_VERSION: &str = "2.5.0";

/// `GET /servers/getVersion`.
pub async fn version(Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(json!({
        "version": MISP_VERSION,
        "pymisp_recommended_version": MISP_VERSION,
        "perm_sync": caller.role.sync || caller.role.site_admin,
        "perm_sighting": caller.role.write,
        "perm_galaxy_editor": caller.role.org_admin,
        "request_encoding": ["gzip", "br"],
        "filter_sightings": true,
    }))
}

/// `GET /servers/getPyMISPVersion.json`.
pub async fn pymisp_version() -> Json<Value> {
    Json(json!({ "version": MISP_VERSION }))
}

/// `GET /attributes/describeTypes.json`.
pub async fn describe_types() -> Json<Value> {
    Json(model::registry().describe_types_json())
}

/// `GET /users/view/{id}`: `me` (or the caller's own id) is the caller; others need a site
/// admin and are served by the admin endpoints.
pub async fn view_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id.trim_end_matches(".json");
    if id != "me" && id != caller.id.to_string() {
        return Err(ApiError::not_found("Invalid user"));
    }
    let org_id = state
        .blocking({
            let org = caller.org.uuid;
            move |node| Ok(node.organisation(&org)?.map(|entry| entry.id).unwrap_or(0))
        })
        .await?;
    Ok(Json(user_json(&caller, org_id)))
}

/// MISP's `users/view` body for `caller`.
fn user_json(caller: &Caller, org_id: u64) -> Value {
    json!({
        "User": {
            "id": caller.id.to_string(),
            "org_id": org_id.to_string(),
            "email": caller.user.email,
            "autoalert": false,
            "authkey": null,
            "invited_by": "0",
            "gpgkey": null,
            "certif_public": "",
            "nids_sid": "0",
            "termsaccepted": true,
            "newsread": "0",
            "role_id": caller.role.id.to_string(),
            "change_pw": false,
            "contactalert": false,
            "disabled": false,
            "expiration": null,
            "current_login": "0",
            "last_login": "0",
            "force_logout": false,
            "date_created": null,
            "date_modified": null,
        },
        "Role": caller.role.json(),
        "UserSetting": [],
        "Organisation": {
            "id": org_id.to_string(),
            "name": caller.org.name,
            "uuid": caller.org.uuid.to_string(),
            "local": true,
        },
    })
}
