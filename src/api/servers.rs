//! Peers as MISP servers: `/servers/index`, `add`, `edit/{id}`, `delete/{id}`, `pull/{id}`
//! and `push/{id}` (site admins only). A server is a paired threatlog node; it is added from
//! its pairing card (`card`, or `authkey` holding the card, as PyMISP's `MISPServer` has no
//! card field) and the policy fields of [`crate::sync::peer::PeerSettings`]. A new server is
//! external unless the request says `relationship: internal` (or MISP's `internal: true`),
//! whatever organisation its card names. Also `/servers/getVersion` and
//! `/servers/getPyMISPVersion.json`, which PyMISP calls when it connects.

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::ApiError;
use super::request::{flag_field, text_field, JsonBody};
use super::{ApiState, Call};
use crate::node::Node;
use crate::policy::Relationship;
use crate::sync::peer::{self, Card, PairError, PeerReport, PeerSettings};

/// MISP's message for a server that does not exist.
const INVALID_SERVER: &str = "Invalid server";

/// The routes of `/servers/…`: peers, and the version endpoints PyMISP calls when it
/// connects.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/servers/getVersion", get(version))
        .route("/servers/getVersion.json", get(version))
        .route("/servers/getPyMISPVersion.json", get(pymisp_version))
        .route("/servers/index", get(index).post(index))
        .route("/servers/add", post(add))
        .route("/servers/card", post(card).get(card))
        .route("/servers/edit/{id}", post(edit))
        .route("/servers/delete/{id}", post(delete))
        .route("/servers/pull/{*id}", post(sync_now).get(sync_now))
        .route("/servers/push/{*id}", post(sync_now).get(sync_now))
}

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

fn pair_error(error: PairError) -> ApiError {
    match error {
        PairError::Store(error) => ApiError::internal(&error),
        PairError::Unknown(_) => ApiError::not_found(INVALID_SERVER),
        other => ApiError::validation("Server", "url", other.to_string()),
    }
}

fn list(object: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    match object.get(key)? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        Value::String(text) => Some(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

fn uuids(object: &Map<String, Value>, key: &str) -> Result<Option<Vec<Uuid>>, ApiError> {
    list(object, key)
        .map(|items| {
            items
                .iter()
                .map(|text| {
                    Uuid::parse_str(text).map_err(|_| {
                        ApiError::validation("Server", key, format!("'{text}' is not a uuid"))
                    })
                })
                .collect()
        })
        .transpose()
}

/// The settings a request body names.
fn settings(object: &Map<String, Value>) -> Result<PeerSettings, ApiError> {
    let parse = |key: &str| -> Result<Option<String>, ApiError> { Ok(text_field(object, key)) };
    Ok(PeerSettings {
        endpoint: parse("url")?.filter(|url| !url.starts_with(peer::CARD_PREFIX)),
        relationship: match parse("relationship")? {
            Some(text) => {
                Some(text.parse().map_err(|error: String| {
                    ApiError::validation("Server", "relationship", error)
                })?)
            }
            // MISP's own flag for a server of the same organisation.
            None => object.contains_key("internal").then(|| {
                if flag_field(object, "internal") {
                    Relationship::Internal
                } else {
                    Relationship::External
                }
            }),
        },
        tlp_max: parse("tlp_max")?
            .map(|text| text.parse())
            .transpose()
            .map_err(|error: String| ApiError::validation("Server", "tlp_max", error))?,
        pull: object
            .contains_key("pull")
            .then(|| flag_field(object, "pull")),
        push: object
            .contains_key("push")
            .then(|| flag_field(object, "push")),
        tags_include: list(object, "tags_include"),
        tags_exclude: list(object, "tags_exclude"),
        orgs_include: uuids(object, "orgs_include")?,
        orgs_exclude: uuids(object, "orgs_exclude")?,
    })
}

/// MISP's server body for a peer, with threatlog's status under `threatlog`.
fn server_json(report: &PeerReport) -> Value {
    let peer = &report.peer;
    json!({
        "Server": {
            "id": peer.id.to_string(),
            "name": peer.org_name,
            "url": peer.endpoint,
            "push": peer.push,
            "pull": peer.pull,
            "push_sightings": peer.push,
            "remote_org_id": peer.org_uuid.to_string(),
            "self_signed": true,
            "caching_enabled": false,
            "priority": peer.id.to_string(),
            "internal": peer.rules.relationship == Relationship::Internal,
        },
        "RemoteOrg": { "uuid": peer.org_uuid.to_string(), "name": peer.org_name },
        "threatlog": report,
    })
}

fn report_of(node: &Node, key: &crate::log::OriginKey) -> Result<Value, ApiError> {
    let reports = peer::reports(&node.store).map_err(|error| ApiError::internal(&error))?;
    reports
        .iter()
        .find(|report| &report.peer.key == key)
        .map(server_json)
        .ok_or_else(|| ApiError::not_found(INVALID_SERVER))
}

/// A peer administration operation, run by the REST handlers and by `threatlog peer` on a
/// stopped node alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerOp {
    /// List peers.
    Index,
    /// Pair from a card.
    Add,
    /// Change a peer's settings (and release it from quarantine with `release`).
    Edit,
    /// Unpair.
    Delete,
    /// Release from quarantine and restart sync now.
    SyncNow,
    /// This node's pairing card.
    Card,
}

/// Runs `op` on `node`; `id` names the peer for edit, delete and sync.
pub fn run(
    node: &Node,
    op: ServerOp,
    id: &str,
    object: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let internal = |error: crate::store::StoreError| ApiError::internal(&error);
    match op {
        ServerOp::Index => {
            let reports = peer::reports(&node.store).map_err(internal)?;
            Ok(Value::Array(reports.iter().map(server_json).collect()))
        }
        ServerOp::Add => {
            let card_text = ["card", "authkey", "url"]
                .iter()
                .filter_map(|key| text_field(object, key))
                .find(|text| text.trim().starts_with(peer::CARD_PREFIX))
                .ok_or_else(|| {
                    ApiError::validation(
                        "Server",
                        "card",
                        "a threatlog pairing card (`threatlog peer card` on the other node) is required in `card` or `authkey`",
                    )
                })?;
            let card = Card::decode(&card_text)
                .map_err(|error| ApiError::validation("Server", "card", error.to_string()))?;
            let peer = peer::pair(&node.store, &node.origin(), card, settings(object)?)
                .map_err(pair_error)?;
            tracing::info!(peer = %peer.key, org = %peer.org_name, "paired with a new peer");
            node.notify_peers_changed();
            report_of(node, &peer.key)
        }
        ServerOp::Edit => {
            let mut found = peer::find(&node.store, id).map_err(pair_error)?;
            settings(object)?.apply(&mut found);
            let stored = peer::put_peer(&node.store, found).map_err(internal)?;
            if flag_field(object, "release") {
                peer::release_quarantine(&node.store, &stored.key).map_err(internal)?;
            }
            node.notify_peers_changed();
            report_of(node, &stored.key)
        }
        ServerOp::Delete => {
            let found = peer::find(&node.store, id).map_err(pair_error)?;
            peer::remove_peer(&node.store, &found.key).map_err(internal)?;
            node.notify_peers_changed();
            Ok(super::saved(
                "Server deleted.",
                &format!("/servers/delete/{}", found.id),
                Some(found.id.to_string()),
            )
            .0)
        }
        ServerOp::SyncNow => {
            let found = peer::find(&node.store, id).map_err(pair_error)?;
            peer::release_quarantine(&node.store, &found.key).map_err(internal)?;
            node.notify_peers_changed();
            Ok(json!({
                "message": "Pull queued for background execution.",
                "success": true,
            }))
        }
        ServerOp::Card => {
            let endpoint = std::fs::read_to_string(node.store.dir().join("run").join("sync.addr"))
                .map(|text| text.trim().to_string())
                .unwrap_or_else(|_| node.config.sync.listen.clone());
            let card = Card {
                key: node.origin(),
                org_uuid: node.org.uuid,
                org_name: node.org.name.clone(),
                endpoint,
                org_key: Some(node.org_key()),
            };
            Ok(
                json!({ "card": card.encode(), "key": card.key, "org_uuid": card.org_uuid, "org_name": card.org_name, "endpoint": card.endpoint, "org_key": card.org_key }),
            )
        }
    }
}

async fn handle(
    state: ApiState,
    caller: Caller,
    op: ServerOp,
    id: String,
    body: Option<JsonBody>,
) -> Result<Json<Value>, ApiError> {
    access::require(&caller, Action::AdministerNode)?;
    let object = body.map(|body| body.object("Server")).unwrap_or_default();
    // `pull/{id}/{event}` names an event too; sync is whole-log, so only the id counts.
    let id = id.split('/').next().unwrap_or_default().to_string();
    state.reply(move |node| run(node, op, &id, &object)).await
}

/// `GET|POST /servers/index`.
pub async fn index(Call { state, caller }: Call) -> Result<Json<Value>, ApiError> {
    handle(state, caller, ServerOp::Index, String::new(), None).await
}

/// `POST /servers/card`: this node's pairing card (threatlog's own).
pub async fn card(Call { state, caller }: Call) -> Result<Json<Value>, ApiError> {
    handle(state, caller, ServerOp::Card, String::new(), None).await
}

/// `POST /servers/add`: pairs the node whose card is in `card` (or `authkey`, or `url`).
pub async fn add(Call { state, caller }: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    handle(state, caller, ServerOp::Add, String::new(), Some(body)).await
}

/// `POST /servers/edit/{id}`.
pub async fn edit(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    handle(state, caller, ServerOp::Edit, id, Some(body)).await
}

/// `POST /servers/delete/{id}`: unpairs the peer.
pub async fn delete(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    handle(state, caller, ServerOp::Delete, id, None).await
}

/// `POST /servers/pull/{id}` and `/servers/push/{id}`: releases a quarantined peer and
/// restarts its sync task at once (sync is continuous; this only hurries it).
pub async fn sync_now(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    handle(state, caller, ServerOp::SyncNow, id, None).await
}
