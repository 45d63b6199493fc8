//! Administration: `/admin/organisations/…` (site admins; the index and view are open to every
//! user, as `/organisations/…` in MISP) and `/admin/users/…` (site admins, and org admins for
//! their own organisation's users). Organisations are directory records in the log; users
//! are node-local state. A new user's API key is returned once, as `authkey`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::events::now_seconds;
use super::request::{parse_ref, text_field, JsonBody, Ref};
use super::ApiState;
use crate::node::{Node, User};
use crate::proto::RecordKind;
use crate::view::{read, Record, Table, ViewRead};

/// MISP's message for an organisation that does not exist.
const INVALID_ORG: &str = "Invalid organisation";
/// MISP's message for a user that does not exist or is not the caller's to see.
const INVALID_USER: &str = "Invalid user";
/// MISP's validation failure name for an organisation that could not be saved.
const ORG_NOT_SAVED: &str = "The organisation could not be saved.";
/// MISP's validation failure name for a user that could not be saved.
const USER_NOT_SAVED: &str = "The user could not be saved.";
/// MISP's refusal to delete an organisation that still has users.
const ORG_IN_USE: &str = "Organisation could not be deleted. Generally organisations should never be deleted, instead consider moving them to the known remote organisations list. Alternatively, if you are certain that you would like to remove an organisation and are aware of the impact, make sure that there are no users or events still tied to this organisation before deleting it.";
/// Optional text fields of an organisation a client may set.
const ORG_TEXT_FIELDS: [&str; 5] = ["description", "type", "nationality", "sector", "contacts"];
/// Longest organisation name or email accepted, in bytes (MISP's columns are 255).
const NAME_BYTES_MAX: usize = 255;

fn require_site_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.role.site_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

// ---------------------------------------------------------------------------------------------
// Organisations

/// A live, not deleted organisation record with its uuid.
fn org_record(node: &Node, uuid: &Uuid) -> Result<Option<Record>, ApiError> {
    Ok(read::record(
        &node.store.views(),
        RecordKind::Organisation,
        uuid.as_bytes(),
    )?
    .filter(|record| record.is_live() && record.field("deleted") != Some(&json!(true))))
}

/// The organisation named by a path (id or uuid).
fn find_org(node: &Node, text: &str) -> Result<(Uuid, Record), ApiError> {
    let missing = || ApiError::not_found(INVALID_ORG);
    let uuid = parse_ref(text)
        .and_then(|reference| reference.resolve(node, RecordKind::Organisation))
        .ok_or_else(missing)?;
    let record = org_record(node, &uuid)?.ok_or_else(missing)?;
    Ok((uuid, record))
}

/// MISP's `Organisation` object.
fn org_json(node: &Node, uuid: &Uuid, record: &Record) -> Result<Value, ApiError> {
    let text = |field: &str| record.str_field(field).unwrap_or_default().to_string();
    let users = node
        .users()?
        .iter()
        .filter(|(_, user)| user.org == *uuid)
        .count();
    Ok(json!({
        "id": node.store.local_id(RecordKind::Organisation, uuid.as_bytes()).unwrap_or(0).to_string(),
        "name": text("name"),
        "uuid": uuid.to_string(),
        "local": record.field("local").and_then(Value::as_bool).unwrap_or(false),
        "description": text("description"),
        "type": text("type"),
        "nationality": text("nationality"),
        "sector": text("sector"),
        "contacts": text("contacts"),
        "created_by": "0",
        "date_created": text("date_created"),
        "date_modified": text("date_modified"),
        "restricted_to_domain": [],
        "landingpage": null,
        "user_count": users,
    }))
}

/// The organisation fields a client sets in `body` (name, local and the text fields).
fn org_fields(body: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut fields = Map::new();
    if let Some(name) = text_field(body, "name") {
        let name = name.trim();
        if name.is_empty() || name.len() > NAME_BYTES_MAX {
            return Err(ApiError::validation(
                ORG_NOT_SAVED,
                "name",
                "An organisation needs a name of 1 to 255 bytes.",
            ));
        }
        fields.insert("name".into(), json!(name));
    }
    if body.contains_key("local") {
        fields.insert(
            "local".into(),
            json!(super::request::flag_field(body, "local")),
        );
    }
    for name in ORG_TEXT_FIELDS {
        if let Some(value) = text_field(body, name) {
            fields.insert(name.into(), json!(value));
        }
    }
    fields.insert("date_modified".into(), json!(now_seconds().to_string()));
    Ok(fields)
}

/// Whether another live organisation than `except` is named `name` (case-insensitive).
fn name_taken(node: &Node, name: &str, except: Option<Uuid>) -> Result<bool, ApiError> {
    Ok(node.organisations()?.iter().any(|entry| {
        Some(entry.org.uuid) != except
            && entry.org.name.eq_ignore_ascii_case(name)
            && org_record(node, &entry.org.uuid).ok().flatten().is_some()
    }))
}

fn write_org(
    node: &Node,
    caller: &Caller,
    uuid: &Uuid,
    fields: &Map<String, Value>,
) -> Result<(), ApiError> {
    node.set_directory_record(
        RecordKind::Organisation,
        uuid.as_bytes(),
        fields,
        &caller.actor(),
    )?;
    Ok(())
}

/// `POST /admin/organisations/add` with `{"Organisation": {"name", …}}` or the bare object.
pub async fn add_org(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("Organisation");
    let json = state
        .blocking(move |node| {
            require_site_admin(&caller)?;
            let mut fields = org_fields(&body)?;
            let Some(name) = fields
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                return Err(ApiError::validation(
                    ORG_NOT_SAVED,
                    "name",
                    "An organisation needs a name.",
                ));
            };
            let uuid = match text_field(&body, "uuid") {
                Some(text) => Uuid::parse_str(text.trim()).map_err(|_| {
                    ApiError::validation(ORG_NOT_SAVED, "uuid", "The uuid is not a valid uuid.")
                })?,
                None => Uuid::new_v4(),
            };
            if org_record(node, &uuid)?.is_some() {
                return Err(ApiError::validation(
                    ORG_NOT_SAVED,
                    "uuid",
                    "An organisation with this uuid already exists.",
                ));
            }
            if name_taken(node, &name, None)? {
                return Err(ApiError::validation(
                    ORG_NOT_SAVED,
                    "name",
                    "An organisation with this name already exists.",
                ));
            }
            fields.entry("local").or_insert(json!(true));
            fields.insert("uuid".into(), json!(uuid.to_string()));
            fields.insert("deleted".into(), json!(false));
            fields.insert("date_created".into(), json!(now_seconds().to_string()));
            write_org(node, &caller, &uuid, &fields)?;
            let (uuid, record) = find_org(node, &uuid.to_string())?;
            Ok(json!({ "Organisation": org_json(node, &uuid, &record)? }))
        })
        .await?;
    Ok(Json(json))
}

/// `GET /admin/organisations/index` (and `/organisations/index`): `[{"Organisation": …}]`.
pub async fn index_orgs(
    State(state): State<ApiState>,
    Extension(_caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            let prefix = [RecordKind::Organisation as u8];
            let mut out = Vec::new();
            for (key, _) in node.store.views().scan(Table::Records, &prefix)? {
                let Ok(uuid) = Uuid::from_slice(&key[1..]) else {
                    continue;
                };
                if let Some(record) = org_record(node, &uuid)? {
                    out.push(json!({ "Organisation": org_json(node, &uuid, &record)? }));
                }
            }
            Ok(Value::Array(out))
        })
        .await?;
    Ok(Json(json))
}

/// `GET /organisations/index/{scope}` (PyMISP sends `scope:local` and the like).
pub async fn index_orgs_scoped(
    state: State<ApiState>,
    caller: Extension<Caller>,
    Path(_scope): Path<String>,
) -> Result<Json<Value>, ApiError> {
    index_orgs(state, caller).await
}

/// `GET /admin/organisations/view/{id}` (and `/organisations/view/{id}`, HEAD).
pub async fn view_org(
    State(state): State<ApiState>,
    Extension(_caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            let (uuid, record) = find_org(node, &id)?;
            Ok(json!({ "Organisation": org_json(node, &uuid, &record)? }))
        })
        .await?;
    Ok(Json(json))
}

/// `POST /admin/organisations/edit/{id}`.
pub async fn edit_org(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("Organisation");
    let json = state
        .blocking(move |node| {
            require_site_admin(&caller)?;
            let (uuid, _) = find_org(node, &id)?;
            let fields = org_fields(&body)?;
            if let Some(name) = fields.get("name").and_then(Value::as_str) {
                if name_taken(node, name, Some(uuid))? {
                    return Err(ApiError::validation(
                        ORG_NOT_SAVED,
                        "name",
                        "An organisation with this name already exists.",
                    ));
                }
            }
            write_org(node, &caller, &uuid, &fields)?;
            let (uuid, record) = find_org(node, &uuid.to_string())?;
            Ok(json!({ "Organisation": org_json(node, &uuid, &record)? }))
        })
        .await?;
    Ok(Json(json))
}

/// `POST /admin/organisations/delete/{id}`: refused while the organisation has users here
/// or is the node's own.
pub async fn delete_org(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/admin/organisations/delete/{id}");
    state
        .blocking(move |node| {
            require_site_admin(&caller)?;
            let (uuid, _) = find_org(node, &id)?;
            let has_users = node.users()?.iter().any(|(_, user)| user.org == uuid);
            if has_users || uuid == node.org.uuid {
                return Err(ApiError::new(StatusCode::FORBIDDEN, ORG_IN_USE));
            }
            let mut fields = Map::new();
            fields.insert("deleted".into(), json!(true));
            fields.insert("local".into(), json!(false));
            write_org(node, &caller, &uuid, &fields)
        })
        .await?;
    Ok(super::saved("Organisation deleted", &url, None))
}

// ---------------------------------------------------------------------------------------------
// Users

/// Whether `caller` administers users of organisation `org`.
fn manages(caller: &Caller, org: &Uuid) -> bool {
    caller.role.site_admin || (caller.role.org_admin && caller.org.uuid == *org)
}

fn require_user_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.role.site_admin || caller.role.org_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// The user with local id `text` whom `caller` manages.
fn find_user(node: &Node, caller: &Caller, text: &str) -> Result<(u64, User), ApiError> {
    let missing = || ApiError::not_found(INVALID_USER);
    let Some(Ref::Id(id)) = parse_ref(text) else {
        return Err(missing());
    };
    let (id, user) = node
        .users()?
        .into_iter()
        .find(|(user_id, _)| *user_id == id)
        .ok_or_else(missing)?;
    if !manages(caller, &user.org) {
        return Err(missing());
    }
    Ok((id, user))
}

/// MISP's `{"User", "Role", "Organisation"}` body for a user.
fn user_json(node: &Node, id: u64, user: &User, authkey: Option<&str>) -> Result<Value, ApiError> {
    let role = Role::by_id(user.role).unwrap_or(super::auth::ROLES[5]);
    let organisation = match org_record(node, &user.org)? {
        Some(record) => org_json(node, &user.org, &record)?,
        None => json!({"id": "0", "name": "", "uuid": user.org.to_string()}),
    };
    Ok(json!({
        "User": {
            "id": id.to_string(),
            "org_id": organisation["id"],
            "email": user.email,
            "autoalert": false,
            "authkey": authkey,
            "invited_by": "0",
            "gpgkey": null,
            "certif_public": "",
            "nids_sid": "0",
            "termsaccepted": true,
            "newsread": "0",
            "role_id": role.id.to_string(),
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
        "Role": role.json(),
        "Organisation": organisation,
    }))
}

/// The role a request names (`role_id`), checked against what the caller may grant: org
/// admins may not create site admins.
fn requested_role(caller: &Caller, body: &Map<String, Value>) -> Result<Option<Role>, ApiError> {
    let Some(text) = text_field(body, "role_id") else {
        return Ok(None);
    };
    let role = Role::parse(&text)
        .ok_or_else(|| ApiError::validation(USER_NOT_SAVED, "role_id", "Invalid role."))?;
    if role.site_admin && !caller.role.site_admin {
        return Err(ApiError::forbidden());
    }
    Ok(Some(role))
}

/// The organisation a request names (`org_id`: id, uuid or name), which the caller must
/// manage.
fn requested_org(
    node: &Node,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<Option<Uuid>, ApiError> {
    let Some(text) = text_field(body, "org_id").or_else(|| text_field(body, "org_uuid")) else {
        return Ok(None);
    };
    let entry = node
        .find_organisation(&text)?
        .filter(|entry| org_record(node, &entry.org.uuid).ok().flatten().is_some())
        .ok_or_else(|| ApiError::validation(USER_NOT_SAVED, "org_id", "Invalid organisation."))?;
    if !manages(caller, &entry.org.uuid) {
        return Err(ApiError::forbidden());
    }
    Ok(Some(entry.org.uuid))
}

/// Registers `org` as local (it has users here) if it is not yet.
fn make_local(node: &Node, caller: &Caller, org: &Uuid) -> Result<(), ApiError> {
    let local = org_record(node, org)?
        .and_then(|record| record.field("local").and_then(Value::as_bool))
        .unwrap_or(false);
    if !local {
        let mut fields = Map::new();
        fields.insert("local".into(), json!(true));
        write_org(node, caller, org, &fields)?;
    }
    Ok(())
}

/// `POST /admin/users/add` with `{"User": {"email", "org_id", "role_id"}}` or the bare object;
/// the answer carries the new API key once, as `authkey`.
pub async fn add_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("User");
    let json = state
        .blocking(move |node| {
            require_user_admin(&caller)?;
            let email = text_field(&body, "email")
                .map(|email| email.trim().to_string())
                .unwrap_or_default();
            if email.len() > NAME_BYTES_MAX
                || !email.contains('@')
                || email.contains('/')
                || email.chars().any(char::is_whitespace)
            {
                return Err(ApiError::validation(
                    USER_NOT_SAVED,
                    "email",
                    "Please enter a valid email address.",
                ));
            }
            let role = requested_role(&caller, &body)?.unwrap_or(super::auth::ROLES[2]);
            let org = requested_org(node, &caller, &body)?.unwrap_or(caller.org.uuid);
            if !manages(&caller, &org) {
                return Err(ApiError::forbidden());
            }
            if node
                .users()?
                .iter()
                .any(|(_, user)| user.email.eq_ignore_ascii_case(&email))
            {
                return Err(ApiError::validation(
                    USER_NOT_SAVED,
                    "email",
                    "An account with this email address already exists.",
                ));
            }
            make_local(node, &caller, &org)?;
            let key = node.add_user(&email, org, role.id)?;
            let id = node.user_id(&email)?;
            let user = User {
                email,
                org,
                role: role.id,
                key_hash: crate::node::api_key_hash(&key),
            };
            user_json(node, id, &user, Some(&key))
        })
        .await?;
    Ok(Json(json))
}

/// `GET /admin/users/index` (also `/admin/users`): `[{"User", "Role", "Organisation"}]`,
/// the users the caller manages.
pub async fn index_users(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            require_user_admin(&caller)?;
            let mut out = Vec::new();
            for (id, user) in node.users()? {
                if manages(&caller, &user.org) {
                    out.push(user_json(node, id, &user, None)?);
                }
            }
            out.sort_by_key(|user| {
                user.pointer("/User/id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.parse::<u64>().ok())
            });
            Ok(Value::Array(out))
        })
        .await?;
    Ok(Json(json))
}

/// `GET /admin/users/view/{id}`.
pub async fn view_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            require_user_admin(&caller)?;
            let (id, user) = find_user(node, &caller, &id)?;
            user_json(node, id, &user, None)
        })
        .await?;
    Ok(Json(json))
}

/// `POST /admin/users/edit/{id}`: `role_id` and `org_id` may change; the email is the
/// user's identity here and may not.
pub async fn edit_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("User");
    let json = state
        .blocking(move |node| {
            require_user_admin(&caller)?;
            let (id, mut user) = find_user(node, &caller, &id)?;
            if text_field(&body, "email").is_some_and(|email| email.trim() != user.email) {
                return Err(ApiError::validation(
                    USER_NOT_SAVED,
                    "email",
                    "A user's email cannot be changed; add a new user instead.",
                ));
            }
            if let Some(role) = requested_role(&caller, &body)? {
                user.role = role.id;
            }
            if let Some(org) = requested_org(node, &caller, &body)? {
                make_local(node, &caller, &org)?;
                user.org = org;
            }
            node.put_user(&user)?;
            user_json(node, id, &user, None)
        })
        .await?;
    Ok(Json(json))
}

/// `POST /admin/users/delete/{id}`: the user and its API key are removed at once. Nobody
/// deletes their own account.
pub async fn delete_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/admin/users/delete/{id}");
    state
        .blocking(move |node| {
            require_user_admin(&caller)?;
            let (_, user) = find_user(node, &caller, &id)?;
            if user.email == caller.user.email {
                return Err(ApiError::forbidden());
            }
            node.remove_user(&user)?;
            Ok(())
        })
        .await?;
    Ok(super::saved("User deleted.", &url, None))
}
