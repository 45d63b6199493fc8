//! Sharing groups: `/sharingGroups/add`, `index`, `view/{id}`, `addOrg`, `removeOrg`,
//! `addServer`, `removeServer` and `delete/{id}` (MISP answers both `sharingGroups` and
//! `sharing_groups`). A group is a log record of kind SharingGroup in a directory draft; its
//! relay nodes are the field `nodes` ([`super::group_nodes`]); its members are the field
//! `organisations`, a list of organisation uuids, which [`super::visibility::is_member`]
//! reads. The creating organisation is a member from the start and owns the group (SPEC
//! §4.2): its users with the sharing group permission change it, and members it marks
//! `extend` (the field `extend`, a uuid list) may add organisations and servers to it.
//! Deleting sets `deleted`.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::events::now_seconds;
use super::request::{flag_field, parse_ref, text_field, truthy, JsonBody};
use super::ApiState;
use crate::model::SharingGroup;
use crate::node::Node;
use crate::policy::authority::{CREATOR_FIELD, EXTEND_FIELD};
use crate::proto::RecordKind;
use crate::view::{read, Record, Table, ViewRead};

/// MISP's message for a sharing group that does not exist or is not visible.
const INVALID_GROUP: &str = "Invalid sharing group.";
/// MISP's message for an unknown organisation.
const INVALID_ORG: &str = "Invalid organisation.";
/// MISP's validation failure name for a group that could not be saved.
const NOT_SAVED: &str = "The sharing group could not be saved.";
/// Most members one group holds; keeps the record (and its entry) small.
const MEMBERS_MAX: usize = 10_000;

/// A sharing group record with its uuid.
struct Group {
    uuid: Uuid,
    record: Record,
}

impl Group {
    /// Member organisation uuids, as stored.
    fn members(&self) -> Vec<Uuid> {
        uuids_in(self.record.field("organisations"))
    }

    /// The creating organisation.
    fn creator(&self) -> Option<Uuid> {
        self.record
            .str_field(CREATOR_FIELD)
            .and_then(|text| Uuid::parse_str(text).ok())
    }

    /// The organisation that owns the group: the one that created it.
    fn owner(&self) -> Option<Uuid> {
        self.record
            .owner
            .as_ref()
            .map(|(org, _)| *org)
            .or_else(|| self.creator())
    }

    /// Member organisations the owner lets extend the group.
    fn extenders(&self) -> Vec<Uuid> {
        uuids_in(self.record.field(EXTEND_FIELD))
    }
}

/// The uuids in a stored uuid list.
fn uuids_in(list: Option<&Value>) -> Vec<Uuid> {
    list.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().and_then(|t| Uuid::parse_str(t).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a group record is live and not deleted.
fn present(record: &Record) -> bool {
    record.is_live() && record.field("deleted") != Some(&json!(true))
}

/// Whether `caller` sees the group: site admins, members and the creator.
fn visible_to(caller: &Caller, group: &Group) -> bool {
    caller.role.site_admin
        || group.owner() == Some(caller.org.uuid)
        || group.members().contains(&caller.org.uuid)
}

/// Whether the caller's role has the sharing group permission (site admins, org admins and
/// sync users).
fn may_manage_groups(caller: &Caller) -> bool {
    caller.role.site_admin || caller.role.org_admin || caller.role.sync
}

/// Refuses callers who may not change `group`: users with the sharing group permission of the
/// organisation that owns it (peers refuse anyone else's changes, site admins' included).
fn require_manager(caller: &Caller, group: Option<&Group>) -> Result<(), ApiError> {
    let own = group.is_none_or(|group| group.owner() == Some(caller.org.uuid));
    if may_manage_groups(caller) && own {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// Refuses callers who may not add organisations or servers to `group`: its managers, and
/// users with the sharing group permission of a member organisation marked `extend`.
fn require_extender(caller: &Caller, group: &Group) -> Result<(), ApiError> {
    if group.extenders().contains(&caller.org.uuid) && may_manage_groups(caller) {
        return Ok(());
    }
    require_manager(caller, Some(group))
}

/// The visible group named by `text` (id or uuid).
fn find(node: &Node, caller: &Caller, text: &str) -> Result<Group, ApiError> {
    let missing = || ApiError::not_found(INVALID_GROUP);
    let uuid = parse_ref(text)
        .and_then(|reference| reference.resolve(node, RecordKind::SharingGroup))
        .ok_or_else(missing)?;
    let record = read::record(
        &node.store.views(),
        RecordKind::SharingGroup,
        uuid.as_bytes(),
    )?
    .filter(present)
    .ok_or_else(missing)?;
    let group = Group { uuid, record };
    if !visible_to(caller, &group) {
        return Err(missing());
    }
    Ok(group)
}

/// MISP's `Organisation` object for `uuid`.
fn org_json(node: &Node, uuid: &Uuid) -> Result<Value, ApiError> {
    let ids = |kind: RecordKind, key: &[u8]| node.store.local_id(kind, key);
    Ok(read::organisation(&node.store.views(), uuid, &ids)?)
}

/// MISP's sharing group body: `{"SharingGroup", "Organisation", "SharingGroupOrg",
/// "SharingGroupServer"}`.
fn group_json(node: &Node, group: &Group) -> Result<Value, ApiError> {
    let id = node
        .store
        .local_id(RecordKind::SharingGroup, group.uuid.as_bytes())
        .unwrap_or(0)
        .to_string();
    let creator = match group.creator() {
        Some(uuid) => org_json(node, &uuid)?,
        None => Value::Null,
    };
    let text = |field: &str| {
        group
            .record
            .str_field(field)
            .unwrap_or_default()
            .to_string()
    };
    let mut members = Vec::new();
    let extenders = group.extenders();
    for (index, uuid) in group.members().iter().enumerate() {
        let org = org_json(node, uuid)?;
        members.push(json!({
            "id": (index + 1).to_string(),
            "sharing_group_id": id,
            "org_id": org["id"],
            "extend": extenders.contains(uuid),
            "Organisation": org,
        }));
    }
    Ok(json!({
        "SharingGroup": {
            "id": id,
            "uuid": group.uuid.to_string(),
            "name": text("name"),
            "description": text("description"),
            "releasability": text("releasability"),
            "local": true,
            "roaming": group.record.field("roaming").and_then(Value::as_bool).unwrap_or(false),
            "active": true,
            "org_id": creator.get("id").cloned().unwrap_or(json!("0")),
            "organisation_uuid": group.creator().map(|u| u.to_string()).unwrap_or_default(),
            "created": text("created"),
            "modified": text("modified"),
            "sync_user_id": "0",
        },
        "Organisation": creator,
        "SharingGroupOrg": members,
        "SharingGroupServer": super::group_nodes::servers_json(node, group.record.field("nodes")),
    }))
}

/// Appends `fields` of group `uuid` in a directory draft.
fn write(
    node: &Node,
    caller: &Caller,
    uuid: &Uuid,
    mut fields: Map<String, Value>,
) -> Result<(), ApiError> {
    fields.insert("modified".into(), json!(now_seconds().to_string()));
    node.set_directory_record(
        RecordKind::SharingGroup,
        uuid.as_bytes(),
        &fields,
        &caller.actor(),
    )?;
    Ok(())
}

/// `POST /sharingGroups/add` with `{"SharingGroup": {"name", …}}` or the bare object, and
/// optionally `SharingGroupOrg` members.
pub async fn add(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let value = body.0.unwrap_or(Value::Null);
    let json = state
        .blocking(move |node| {
            require_manager(&caller, None)?;
            let group = SharingGroup::from_json(&value)
                .map_err(|error| ApiError::model(NOT_SAVED, &error))?;
            if read::record(
                &node.store.views(),
                RecordKind::SharingGroup,
                group.uuid.as_bytes(),
            )?
            .is_some()
            {
                return Err(ApiError::validation(
                    NOT_SAVED,
                    "uuid",
                    "A sharing group with this uuid already exists.",
                ));
            }
            let mut members = vec![caller.org.uuid];
            for org in &group.organisations {
                if !members.contains(&org.uuid) {
                    members.push(org.uuid);
                }
            }
            if members.len() > MEMBERS_MAX {
                return Err(ApiError::bad_request(format!(
                    "A sharing group holds at most {MEMBERS_MAX} organisations."
                )));
            }
            let mut fields = group.fields();
            fields.insert(CREATOR_FIELD.into(), json!(caller.org.uuid.to_string()));
            fields.insert("organisations".into(), uuid_list(&members));
            let extenders = extending_members(&value);
            if !extenders.is_empty() {
                fields.insert(EXTEND_FIELD.into(), uuid_list(&extenders));
            }
            fields.insert("created".into(), json!(now_seconds().to_string()));
            fields.insert("deleted".into(), json!(false));
            super::group_nodes::apply(node, &value, &mut fields)?;
            write(node, &caller, &group.uuid, fields)?;
            let found = find(node, &caller, &group.uuid.to_string())?;
            group_json(node, &found)
        })
        .await?;
    Ok(Json(json))
}

/// The organisations a `sharingGroups/add` body lists with `extend` set in `SharingGroupOrg`
/// (beside `SharingGroup` or inside it).
fn extending_members(body: &Value) -> Vec<Uuid> {
    let lists = [
        body.get("SharingGroupOrg"),
        body.pointer("/SharingGroup/SharingGroupOrg"),
    ];
    let mut out = Vec::new();
    for member in lists
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
    {
        let uuid = member
            .pointer("/Organisation/uuid")
            .or_else(|| member.get("uuid"))
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text).ok());
        if let (Some(uuid), true) = (uuid, member.get("extend").is_some_and(truthy)) {
            if !out.contains(&uuid) {
                out.push(uuid);
            }
        }
    }
    out
}

fn uuid_list(uuids: &[Uuid]) -> Value {
    Value::Array(uuids.iter().map(|u| json!(u.to_string())).collect())
}

/// `GET /sharingGroups/index`: `{"response": [group, …]}`, the groups the caller sees.
pub async fn index(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            let prefix = [RecordKind::SharingGroup as u8];
            let mut out = Vec::new();
            for (key, bytes) in node.store.views().scan(Table::Records, &prefix)? {
                let Ok(uuid) = Uuid::from_slice(&key[1..]) else {
                    continue;
                };
                let record = Record::decode(&bytes)?;
                let group = Group { uuid, record };
                if present(&group.record) && visible_to(&caller, &group) {
                    out.push(group_json(node, &group)?);
                }
            }
            Ok(json!({ "response": out }))
        })
        .await?;
    Ok(Json(json))
}

/// `GET /sharing_groups/view/{id}` (and HEAD).
pub async fn view(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            let group = find(node, &caller, &id)?;
            group_json(node, &group)
        })
        .await?;
    Ok(Json(json))
}

/// `POST /sharingGroups/delete/{id}`.
pub async fn delete(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/sharingGroups/delete/{id}");
    state
        .blocking(move |node| {
            let group = find(node, &caller, &id)?;
            require_manager(&caller, Some(&group))?;
            let mut fields = Map::new();
            fields.insert("deleted".into(), json!(true));
            write(node, &caller, &group.uuid, fields)
        })
        .await?;
    Ok(super::saved("Sharing group deleted.", &url, None))
}

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
            require_manager(caller, Some(&group))?
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
    Ok(super::saved(message, url, None))
}

/// `POST /sharingGroups/addOrg` with `{"sg_id", "org_id", "extend"}`.
pub async fn add_org(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (group, org, extend) = body_pair(&body);
    member_request(state, caller, group, org, MemberChange::Add { extend }).await
}

/// `POST /sharingGroups/addOrg/{sg}/{org}`.
pub async fn add_org_path(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
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
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (group, org, _) = body_pair(&body);
    member_request(state, caller, group, org, MemberChange::Remove).await
}

/// `POST /sharingGroups/removeOrg/{sg}/{org}`.
pub async fn remove_org_path(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
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
                require_manager(&caller, Some(&group))?;
            }
            let key = super::group_nodes::server_by_id(node, &server)?.to_string();
            let mut nodes = super::group_nodes::listed(group.record.field("nodes"));
            let present = nodes.contains(&key);
            if add && !present {
                if nodes.len() >= super::group_nodes::NODES_MAX {
                    return Err(ApiError::bad_request(format!(
                        "A sharing group lists at most {} nodes.",
                        super::group_nodes::NODES_MAX
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
    Ok(super::saved(message, url, None))
}

/// `POST /sharingGroups/addServer` with `{"sg_id", "server_id"}`.
pub async fn add_server(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    server_request(state, caller, body, true).await
}

/// `POST /sharingGroups/removeServer` with `{"sg_id", "server_id"}`.
pub async fn remove_server(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    server_request(state, caller, body, false).await
}

/// `POST /sharing_groups/edit/{id}`: the body's name, description, releasability and roaming
/// replace the group's, and its node list when the body states `nodes` or
/// `SharingGroupServer` (members change through `addOrg`/`removeOrg`).
pub async fn edit(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let whole = body.0.clone().unwrap_or(Value::Null);
    let body = body.object("SharingGroup");
    let json = state
        .blocking(move |node| {
            let group = find(node, &caller, &id)?;
            require_manager(&caller, Some(&group))?;
            let mut fields = Map::new();
            for name in ["name", "description", "releasability"] {
                if let Some(text) = text_field(&body, name) {
                    fields.insert(name.into(), json!(text));
                }
            }
            if fields.get("name").is_some_and(|name| name == "") {
                return Err(ApiError::validation(
                    NOT_SAVED,
                    "name",
                    "A sharing group needs a name.",
                ));
            }
            if body.contains_key("roaming") {
                let roaming = super::request::flag_field(&body, "roaming");
                fields.insert("roaming".into(), json!(roaming));
            }
            super::group_nodes::apply(node, &whole, &mut fields)?;
            write(node, &caller, &group.uuid, fields)?;
            let group = find(node, &caller, &group.uuid.to_string())?;
            group_json(node, &group)
        })
        .await?;
    Ok(Json(json))
}
