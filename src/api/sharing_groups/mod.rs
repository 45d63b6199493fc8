//! Sharing groups: `/sharingGroups/add`, `index`, `view/{id}`, `addOrg`, `removeOrg`,
//! `addServer`, `removeServer` and `delete/{id}` (MISP answers both `sharingGroups` and
//! `sharing_groups`). A group is a log record of kind SharingGroup in a directory draft; its
//! relay nodes are the field `nodes` ([`nodes`]; adding and removing members and nodes is
//! [`members`]'s, the group's record and JSON [`group`]'s); its members are the field
//! `organisations`, a list of organisation uuids, which [`super::access::is_member`]
//! reads. The creating organisation is a member from the start and owns the group (SPEC
//! §4.2): its users with the sharing group permission change it, and members it marks
//! `extend` (the field `extend`, a uuid list) may add organisations and servers to it.
//! Deleting sets `deleted`.

pub mod group;
pub mod members;
pub mod nodes;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::access::{self, Action};
use super::error::ApiError;
use super::request::{flag_field, require_new, text_field, truthy, JsonBody};
use super::{ApiState, Call};
use crate::model::SharingGroup;
use crate::policy::authority::{CREATOR_FIELD, EXTEND_FIELD};
use crate::proto::RecordKind;
use crate::view::{Record, Table, ViewRead};
use group::{
    find, group_json, present, require_manager, uuid_list, visible_to, write, Group, MEMBERS_MAX,
    NOT_SAVED,
};

/// The routes of `/sharingGroups/…`, each also as MISP's `/sharing_groups/…`.
pub fn routes() -> Router<ApiState> {
    let mut router = Router::new();
    for prefix in ["/sharingGroups", "/sharing_groups"] {
        router = router
            .route(&format!("{prefix}/add"), post(add))
            .route(&format!("{prefix}/index"), get(index))
            .route(&format!("{prefix}/view/{{id}}"), get(view))
            .route(&format!("{prefix}/addOrg"), post(members::add_org))
            .route(
                &format!("{prefix}/addOrg/{{sg}}/{{org}}"),
                post(members::add_org_path),
            )
            .route(&format!("{prefix}/removeOrg"), post(members::remove_org))
            .route(
                &format!("{prefix}/removeOrg/{{sg}}/{{org}}"),
                post(members::remove_org_path),
            )
            .route(&format!("{prefix}/addServer"), post(members::add_server))
            .route(
                &format!("{prefix}/removeServer"),
                post(members::remove_server),
            )
            .route(&format!("{prefix}/edit/{{id}}"), post(edit))
            .route(&format!("{prefix}/delete/{{id}}"), post(delete));
    }
    router
}

/// `POST /sharingGroups/add` with `{"SharingGroup": {"name", …}}` or the bare object, and
/// optionally `SharingGroupOrg` members.
pub async fn add(Call { state, caller }: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    let value = body.0.unwrap_or(Value::Null);
    state
        .reply(move |node| {
            access::require(&caller, Action::CreateGroup)?;
            let group = SharingGroup::from_json(&value)
                .map_err(|error| ApiError::model(NOT_SAVED, &error))?;
            require_new(
                node,
                RecordKind::SharingGroup,
                &group.uuid,
                (NOT_SAVED, "uuid"),
                "A sharing group with this uuid already exists.",
            )?;
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
            fields.insert("created".into(), json!(node.now_seconds().to_string()));
            fields.insert("deleted".into(), json!(false));
            nodes::apply(node, &value, &mut fields)?;
            write(node, &caller, &group.uuid, fields)?;
            let found = find(node, &caller, &group.uuid.to_string())?;
            group_json(node, &found)
        })
        .await
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

/// `GET /sharingGroups/index`: `{"response": [group, …]}`, the groups the caller sees.
pub async fn index(Call { state, caller }: Call) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
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
        .await
}

/// `GET /sharing_groups/view/{id}` (and HEAD).
pub async fn view(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let group = find(node, &caller, &id)?;
            group_json(node, &group)
        })
        .await
}

/// `POST /sharingGroups/delete/{id}`.
pub async fn delete(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/sharingGroups/delete/{id}");
    state
        .blocking(move |node| {
            let group = find(node, &caller, &id)?;
            require_manager(&caller, &group)?;
            let mut fields = Map::new();
            fields.insert("deleted".into(), json!(true));
            write(node, &caller, &group.uuid, fields)
        })
        .await?;
    Ok(super::saved("Sharing group deleted.", &url, None))
}

/// `POST /sharing_groups/edit/{id}`: the body's name, description, releasability and roaming
/// replace the group's, and its node list when the body states `nodes` or
/// `SharingGroupServer` (members change through `addOrg`/`removeOrg`).
pub async fn edit(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let whole = body.0.clone().unwrap_or(Value::Null);
    let body = body.object("SharingGroup");
    state
        .reply(move |node| {
            let group = find(node, &caller, &id)?;
            require_manager(&caller, &group)?;
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
                let roaming = flag_field(&body, "roaming");
                fields.insert("roaming".into(), json!(roaming));
            }
            nodes::apply(node, &whole, &mut fields)?;
            write(node, &caller, &group.uuid, fields)?;
            let group = find(node, &caller, &group.uuid.to_string())?;
            group_json(node, &group)
        })
        .await
}
