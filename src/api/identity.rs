//! Identity administration on a running node (site admins only), for `threatlog org …` while
//! the node holds its data directory (SPEC §4.1). Statements are signed by the CLI with the org
//! key, which never reaches the node; the node verifies and publishes or binds them.
//!
//! - `POST /identity/revoke` `{"revocation": "threatlog-revocation:…"}`: publishes a revocation
//!   of a node key of this node's organisation as the node's next entry;
//! - `POST /identity/roster/import` `{"roster": "threatlog-roster:…"}`: binds a trusted
//!   operator's roster;
//! - `POST /identity/roster/trust` `{"key": HEX, "name": …}`: trusts an operator's org key;
//! - `GET /identity/keys`: the bindings.

use axum::extract::Path;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::access::{self, Action};
use super::error::ApiError;
use super::request::{text_field, JsonBody};
use super::{ApiState, Call};
use crate::log::identity::{OrgPublicKey, Revocation, Roster};
use crate::node::Node;

/// The routes of `/identity/…`.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/identity/{*op}", post(handle).get(handle))
}

/// An identity administration operation, run by the REST handler and by `threatlog org` on a
/// stopped node alike.
pub fn run(node: &Node, op: &str, object: &Map<String, Value>) -> Result<Value, ApiError> {
    let text = |field: &str| {
        text_field(object, field).ok_or_else(|| ApiError::validation("Identity", field, "required"))
    };
    let invalid = |field: &'static str| {
        move |error: &dyn std::fmt::Display| {
            ApiError::validation("Identity", field, error.to_string())
        }
    };
    match op {
        "revoke" => {
            let revocation = Revocation::from_text(&text("revocation")?)
                .map_err(|e| invalid("revocation")(&e))?;
            node.publish_revocation(&revocation)
                .map_err(|e| invalid("revocation")(&e))?;
            Ok(json!({"revoked": revocation.node_key, "from_sequence": revocation.from_sequence}))
        }
        "roster/import" => {
            let roster = Roster::from_text(&text("roster")?).map_err(|e| invalid("roster")(&e))?;
            let bound = node
                .store
                .import_roster(&roster)
                .map_err(|e| invalid("roster")(&e))?;
            Ok(
                json!({"bound": bound, "members": roster.members.len(), "operator": roster.operator_key}),
            )
        }
        "roster/trust" => {
            let key = OrgPublicKey::from_hex(&text("key")?)
                .ok_or_else(|| ApiError::validation("Identity", "key", "64 hex digits expected"))?;
            let name = text_field(object, "name").unwrap_or_default();
            node.store
                .trust_operator(key, &name)
                .map_err(|e| ApiError::internal(&e))?;
            Ok(json!({"trusted": key}))
        }
        "keys" => {
            let bindings = node.store.bindings().map_err(|e| ApiError::internal(&e))?;
            serde_json::to_value(bindings).map_err(|e| ApiError::internal(&e))
        }
        other => Err(ApiError::not_found(format!(
            "no identity operation '{other}'"
        ))),
    }
}

/// `POST /identity/{*op}` (and `GET /identity/keys`).
pub async fn handle(
    Call { state, caller }: Call,
    Path(op): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    access::require(&caller, Action::AdministerNode)?;
    let object = body.object("Identity");
    state.reply(move |node| run(node, &op, &object)).await
}
