//! Audit endpoints for auditor-role (read-only, role 6) and site-admin users: checkpoints and
//! Merkle proofs as JSON (SPEC §8). Hashes are base64, as in checkpoints.
//!
//! - `GET /audit/checkpoint`: this node's latest checkpoint;
//! - `GET /audit/checkpoint/{origin}`: the latest checkpoint held of another origin, with its
//!   cosignatures;
//! - `GET /audit/proof/inclusion/{origin}/{seq}`: inclusion of an entry in the latest checkpoint;
//! - `GET /audit/proof/consistency/{origin}/{m}/{n}`: consistency of the tree at `m` with `n`;
//! - `GET /audit/alerts`: stored split-view proofs (an origin that signed two inconsistent
//!   checkpoints), fork proofs (an origin that signed two entries at one position) and
//!   identity conflicts (a second org key for a bound organisation, SPEC §4.1).

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::access::{self, Action};
use super::error::ApiError;
use super::{ApiState, Call};
use crate::audit::{self, bundle::encode_data, AuditError};
use crate::log::{EntryId, OriginKey};
use crate::node::Node;

/// The routes of `/audit/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/audit/checkpoint", get(checkpoint))
        .route("/audit/alerts", get(alerts))
        .route("/audit/checkpoint/{origin}", get(checkpoint_of))
        .route("/audit/proof/inclusion/{origin}/{seq}", get(inclusion))
        .route(
            "/audit/proof/consistency/{origin}/{m}/{n}",
            get(consistency),
        )
}

fn origin(text: &str) -> Result<OriginKey, ApiError> {
    OriginKey::from_hex(text).ok_or_else(|| {
        ApiError::bad_request(format!("'{text}' is not an origin key (64 hex digits)"))
    })
}

fn audit_error(error: AuditError) -> ApiError {
    match error {
        AuditError::Usage(message) => ApiError::not_found(message),
        other => ApiError::internal(&other),
    }
}

fn checkpoint_json(node: &Node, origin: &OriginKey) -> Result<Value, ApiError> {
    let Some((size, note)) = node.store.latest_checkpoint(origin)? else {
        return Err(ApiError::not_found(format!(
            "no checkpoint of origin {origin} yet"
        )));
    };
    let checkpoint = crate::log::checkpoint::verify_origin_note(&note, origin)
        .map_err(|error| ApiError::internal(&error))?;
    let cosignatures: Vec<Value> = node
        .store
        .cosignatures(origin)?
        .into_iter()
        .filter(|(at, _, _)| *at == size)
        .map(|(_, cosigner, line)| json!({"cosigner": cosigner.to_string(), "line": line}))
        .collect();
    Ok(json!({
        "origin": origin.to_string(),
        "name": checkpoint.origin,
        "size": size,
        "root": encode_data(&checkpoint.root),
        "note": note,
        "cosignatures": cosignatures,
    }))
}

/// `GET /audit/checkpoint`.
pub async fn checkpoint(Call { state, caller }: Call) -> Result<Json<Value>, ApiError> {
    access::require(&caller, Action::Audit)?;
    state
        .reply(|node| checkpoint_json(node, &node.origin()))
        .await
}

/// `GET /audit/alerts`: split-view and fork proofs, each naming the origin that misbehaved,
/// and identity conflicts with both signed statements.
pub async fn alerts(Call { state, caller }: Call) -> Result<Json<Value>, ApiError> {
    access::require(&caller, Action::Audit)?;
    state
        .reply(|node| {
            let split_views: Vec<Value> = node
                .store
                .split_views()?
                .into_iter()
                .map(|(origin, proof)| json!({"origin": origin.to_string(), "a": proof.a, "b": proof.b}))
                .collect();
            let forks = node.store.fork_proofs()?;
            let identity_conflicts = node.store.identity_conflicts()?;
            Ok(json!({
                "split_views": split_views,
                "forks": forks,
                "identity_conflicts": identity_conflicts,
            }))
        })
        .await
}

/// `GET /audit/checkpoint/{origin}`.
pub async fn checkpoint_of(
    Call { state, caller }: Call,
    Path(text): Path<String>,
) -> Result<Json<Value>, ApiError> {
    access::require(&caller, Action::Audit)?;
    let origin = origin(&text)?;
    state
        .reply(move |node| checkpoint_json(node, &origin))
        .await
}

/// `GET /audit/proof/inclusion/{origin}/{seq}`.
pub async fn inclusion(
    Call { state, caller }: Call,
    Path((text, sequence)): Path<(String, u64)>,
) -> Result<Json<Value>, ApiError> {
    access::require(&caller, Action::Audit)?;
    let origin = origin(&text)?;
    state
        .reply(move |node| {
            let proof =
                audit::prove(&node.store, &EntryId { origin, sequence }).map_err(audit_error)?;
            serde_json::to_value(proof).map_err(|error| ApiError::internal(&error))
        })
        .await
}

/// `GET /audit/proof/consistency/{origin}/{m}/{n}`.
pub async fn consistency(
    Call { state, caller }: Call,
    Path((text, old, new)): Path<(String, u64, u64)>,
) -> Result<Json<Value>, ApiError> {
    access::require(&caller, Action::Audit)?;
    let origin = origin(&text)?;
    state
        .reply(move |node| {
            let held = node.store.tree_size(&origin);
            if old == 0 || old > new || new > held {
                return Err(ApiError::not_found(format!(
                    "no consistency proof from {old} to {new}: sizes must satisfy 0 < m <= n <= {held}"
                )));
            }
            let proof = node.store.consistency_proof(&origin, old, new)?;
            Ok(json!({
                "origin": origin.to_string(),
                "old_size": old,
                "new_size": new,
                "old_root": encode_data(&node.store.tree_root(&origin, old)?),
                "new_root": encode_data(&node.store.tree_root(&origin, new)?),
                "proof": proof.iter().map(|hash| encode_data(hash)).collect::<Vec<_>>(),
            }))
        })
        .await
}
