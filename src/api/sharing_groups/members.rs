//! Changing a sharing group's members and relay nodes: `/sharingGroups/addOrg`,
//! `removeOrg` (in the body or the path) and `addServer`, `removeServer`. Owners add and
//! remove; members marked `extend` may add ([`crate::api::access::Action::ExtendGroup`]).

use axum::extract::Path;
use axum::Json;
use serde_json::{json, Map, Value};

use super::group::{
    find, require_extender, require_manager, uuid_list, write, INVALID_ORG, MEMBERS_MAX,
};
use super::nodes;
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::request::{flag_field, text_field, JsonBody};
use crate::api::{saved, ApiState, Call};
use crate::node::Node;
use crate::policy::authority::EXTEND_FIELD;

/// How a member request changes a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MemberChange {
    /// Adds the organisation; `extend` lets it extend the group too (owners only).
    Add {
        /// Mark the organisation `extend`.
        extend: bool,
    },
    /// Removes the organisation (owners only).
    Remove,
}

/// Adds or removes organisation `org` in group `group`.
fn change_member(
    node: &Node,
    caller: &Caller,
    group: &str,
    org: &str,
    change: MemberChange,
) -> Result<(), ApiError> {
    let group = find(node, caller, group)?;
    match change {
        MemberChange::Add { extend: false } => require_extender(caller, &group)?,
        MemberChange::Add { extend: true } | MemberChange::Remove => {
            require_manager(caller, &group)?
        }
    }
    let org = node
        .find_organisation(org)?
        .ok_or_else(|| ApiError::not_found(INVALID_ORG))?;
    let uuid = org.org.uuid;
    let mut members = group.members();
    let mut extenders = group.extenders();
    let mut fields = Map::new();
    match change {
        MemberChange::Add { extend } => {
            if !members.contains(&uuid) {
                if members.len() >= MEMBERS_MAX {
                    return Err(ApiError::bad_request(format!(
                        "A sharing group holds at most {MEMBERS_MAX} organisations."
                    )));
                }
                members.push(uuid);
                fields.insert("organisations".into(), uuid_list(&members));
            }
            if extend && !extenders.contains(&uuid) {
                extenders.push(uuid);
                fields.insert(EXTEND_FIELD.into(), uuid_list(&extenders));
            }
        }
        MemberChange::Remove => {
            if members.contains(&uuid) {
                members.retain(|member| *member != uuid);
                fields.insert("organisations".into(), uuid_list(&members));
            }
            if extenders.contains(&uuid) {
                extenders.retain(|member| *member != uuid);
                fields.insert(EXTEND_FIELD.into(), uuid_list(&extenders));
            }
        }
    }
    if fields.is_empty() {
        return Ok(());
    }
    write(node, caller, &group.uuid, fields)
}

/// The group and organisation of an `addOrg`/`removeOrg` request body `{"sg_id", "org_id"}`,
/// and its `extend` flag.
fn body_pair(body: &JsonBody) -> (String, String, bool) {
    let object = body.object("SharingGroup");
    (
        text_field(&object, "sg_id").unwrap_or_default(),
        text_field(&object, "org_id").unwrap_or_default(),
        flag_field(&object, "extend"),
    )
}

async fn member_request(
    state: ApiState,
    caller: Caller,
    group: String,
    org: String,
    change: MemberChange,
) -> Result<Json<Value>, ApiError> {
    let add = matches!(change, MemberChange::Add { .. });
    let url = if add {
        "/sharingGroups/addOrg"
    } else {
        "/sharingGroups/removeOrg"
    };
    state
        .blocking(move |node| change_member(node, &caller, &group, &org, change))
        .await?;
    let message = if add {
        "Organisation added to the sharing group."
    } else {
        "Organisation removed from the sharing group."
    };
    Ok(saved(message, url, None))
}

/// `POST /sharingGroups/addOrg` with `{"sg_id", "org_id", "extend"}`.
pub async fn add_org(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (group, org, extend) = body_pair(&body);
    member_request(state, caller, group, org, MemberChange::Add { extend }).await
}

/// `POST /sharingGroups/addOrg/{sg}/{org}`.
pub async fn add_org_path(
    Call { state, caller }: Call,
    Path((group, org)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    member_request(
        state,
        caller,
        group,
        org,
        MemberChange::Add { extend: false },
    )
    .await
}

/// `POST /sharingGroups/removeOrg` with `{"sg_id", "org_id"}`.
pub async fn remove_org(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (group, org, _) = body_pair(&body);
    member_request(state, caller, group, org, MemberChange::Remove).await
}

/// `POST /sharingGroups/removeOrg/{sg}/{org}`.
pub async fn remove_org_path(
    Call { state, caller }: Call,
    Path((group, org)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    member_request(state, caller, group, org, MemberChange::Remove).await
}

/// `POST /sharingGroups/addServer` and `removeServer` with `{"sg_id", "server_id"}` (PyMISP's
/// `add_server_to_sharing_group`): adds or removes the paired server's node in the group's
/// `nodes`, the nodes that may relay a non-roaming group.
async fn server_request(
    state: ApiState,
    caller: Caller,
    body: JsonBody,
    add: bool,
) -> Result<Json<Value>, ApiError> {
    let object = body.object("SharingGroup");
    let group = text_field(&object, "sg_id").unwrap_or_default();
    let server = text_field(&object, "server_id").unwrap_or_default();
    state
        .blocking(move |node| {
            let group = find(node, &caller, &group)?;
            if add {
                require_extender(&caller, &group)?;
            } else {
                require_manager(&caller, &group)?;
            }
            let key = nodes::server_by_id(node, &server)?.to_string();
            let mut nodes = nodes::listed(group.record.field("nodes"));
            let present = nodes.contains(&key);
            if add && !present {
                if nodes.len() >= nodes::NODES_MAX {
                    return Err(ApiError::bad_request(format!(
                        "A sharing group lists at most {} nodes.",
                        nodes::NODES_MAX
                    )));
                }
                nodes.push(key);
            } else if !add && present {
                nodes.retain(|listed| *listed != key);
            } else {
                return Ok(());
            }
            let mut fields = Map::new();
            fields.insert("nodes".into(), json!(nodes));
            write(node, &caller, &group.uuid, fields)
        })
        .await?;
    let (message, url) = if add {
        (
            "Server added to the sharing group.",
            "/sharingGroups/addServer",
        )
    } else {
        (
            "Server removed from the sharing group.",
            "/sharingGroups/removeServer",
        )
    };
    Ok(saved(message, url, None))
}

/// `POST /sharingGroups/addServer` with `{"sg_id", "server_id"}`.
pub async fn add_server(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    server_request(state, caller, body, true).await
}

/// `POST /sharingGroups/removeServer` with `{"sg_id", "server_id"}`.
pub async fn remove_server(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    server_request(state, caller, body, false).await
}
