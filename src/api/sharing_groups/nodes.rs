//! Sharing group node membership (SPEC §3, §6.4): which nodes may relay a non-roaming group.
//! `/sharing_groups/add` and `edit` accept threatlog's `nodes` (node keys in hex) and MISP's
//! `SharingGroupServer` list, whose servers name paired peers by `Server.id` (or `server_id`)
//! or by a `node_key` field. Both end in the group record's `nodes` field, a list of node keys
//! that [`crate::sync::reach::group_of`] reads.

use serde_json::{json, Map, Value};

use super::group::NOT_SAVED;
use crate::api::error::ApiError;
use crate::log::OriginKey;
use crate::node::Node;
use crate::sync::peer;

/// Most nodes one group lists; keeps the record (and its entry) small.
pub const NODES_MAX: usize = 1_000;

fn invalid(message: String) -> ApiError {
    ApiError::validation(NOT_SAVED, "SharingGroupServer", message)
}

/// The node key a `SharingGroupServer` item names: its `node_key`, or the key of the paired
/// peer whose id is its `Server.id` / `server_id`. This node itself is server id 0 in MISP.
fn server_key(node: &Node, item: &Value) -> Result<OriginKey, ApiError> {
    let server = item.get("Server").unwrap_or(item);
    let text = |value: Option<&Value>| match value {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    if let Some(hex) = text(server.get("node_key")).or_else(|| text(item.get("node_key"))) {
        return OriginKey::from_hex(&hex)
            .ok_or_else(|| invalid(format!("{hex:?} is not a node key")));
    }
    let id = text(server.get("id"))
        .or_else(|| text(item.get("server_id")))
        .ok_or_else(|| invalid("a server needs an id or a node_key".into()))?;
    if id == "0" {
        return Ok(node.origin());
    }
    let peers = peer::peers(&node.store).map_err(|error| ApiError::internal(&error))?;
    peers
        .iter()
        .find(|peer| peer.id.to_string() == id)
        .map(|peer| peer.key)
        .ok_or_else(|| invalid(format!("no paired server has id {id}")))
}

/// The node list a request body states (`nodes` and `SharingGroupServer`, at the top or in
/// `SharingGroup`), or `None` when it states none.
pub fn requested(node: &Node, body: &Value) -> Result<Option<Value>, ApiError> {
    let inner = body.get("SharingGroup").unwrap_or(&Value::Null);
    let mut keys: Vec<OriginKey> = Vec::new();
    let mut stated = false;
    for holder in [body, inner] {
        if let Some(list) = holder.get("nodes") {
            stated = true;
            let list = list
                .as_array()
                .ok_or_else(|| invalid("nodes is a list of node keys".into()))?;
            for item in list {
                let hex = item.as_str().unwrap_or_default();
                let key = OriginKey::from_hex(hex)
                    .ok_or_else(|| invalid(format!("{item} is not a node key")))?;
                keys.push(key);
            }
        }
        if let Some(list) = holder.get("SharingGroupServer") {
            stated = true;
            let list = list
                .as_array()
                .ok_or_else(|| invalid("SharingGroupServer is a list".into()))?;
            for item in list {
                keys.push(server_key(node, item)?);
            }
        }
    }
    if !stated {
        return Ok(None);
    }
    keys.sort_by_key(|key| key.to_string());
    keys.dedup();
    if keys.len() > NODES_MAX {
        return Err(ApiError::bad_request(format!(
            "A sharing group lists at most {NODES_MAX} nodes."
        )));
    }
    Ok(Some(Value::Array(
        keys.iter().map(|key| json!(key.to_string())).collect(),
    )))
}

/// The node key of paired server `server_id` (or this node for 0), for `addServer`.
pub fn server_by_id(node: &Node, server_id: &str) -> Result<OriginKey, ApiError> {
    server_key(node, &json!({ "id": server_id }))
}

/// The node keys a group record lists.
pub use crate::policy::authority::directory::node_keys as listed;

/// Sets the group's `nodes` field from `body` when the body states nodes.
pub fn apply(node: &Node, body: &Value, fields: &mut Map<String, Value>) -> Result<(), ApiError> {
    if let Some(nodes) = requested(node, body)? {
        fields.insert("nodes".into(), nodes);
    }
    Ok(())
}
