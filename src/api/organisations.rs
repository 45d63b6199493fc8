//! `/admin/organisations/…` (site admins; the index and view are open to every user, as
//! `/organisations/…` in MISP). Organisations are directory records in the log.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::ApiError;
use super::request::{parse_ref, text_field, JsonBody};
use super::{ApiState, Call};
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::{read, Record, Table, ViewRead};

/// The routes of `/organisations/…` and `/admin/organisations/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/admin/organisations/add", post(add_org))
        .route("/admin/organisations/index", get(index_orgs))
        .route("/organisations/index", get(index_orgs))
        .route("/organisations/index/{*params}", get(index_orgs_scoped))
        .route("/admin/organisations/view/{id}", get(view_org))
        .route("/organisations/view/{id}", get(view_org))
        .route("/admin/organisations/edit/{id}", post(edit_org))
        .route("/admin/organisations/delete/{id}", post(delete_org))
}

/// MISP's message for an organisation that does not exist.
const INVALID_ORG: &str = "Invalid organisation";
/// MISP's validation failure name for an organisation that could not be saved.
const ORG_NOT_SAVED: &str = "The organisation could not be saved.";
/// MISP's refusal to delete an organisation that still has users.
const ORG_IN_USE: &str = "Organisation could not be deleted. Generally organisations should never be deleted, instead consider moving them to the known remote organisations list. Alternatively, if you are certain that you would like to remove an organisation and are aware of the impact, make sure that there are no users or events still tied to this organisation before deleting it.";
/// Optional text fields of an organisation a client may set.
const ORG_TEXT_FIELDS: [&str; 5] = ["description", "type", "nationality", "sector", "contacts"];
/// Longest organisation name or email accepted, in bytes (MISP's columns are 255).
pub const NAME_BYTES_MAX: usize = 255;

/// A live, not deleted organisation record with its uuid.
pub fn org_record(node: &Node, uuid: &Uuid) -> Result<Option<Record>, ApiError> {
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
pub fn org_json(node: &Node, uuid: &Uuid, record: &Record) -> Result<Value, ApiError> {
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
fn org_fields(body: &Map<String, Value>, now: i64) -> Result<Map<String, Value>, ApiError> {
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
    fields.insert("date_modified".into(), json!(now.to_string()));
    Ok(fields)
}

/// Refuses `name` when another live organisation than `except` has it (case-insensitive).
fn require_free_name(node: &Node, name: &str, except: Option<Uuid>) -> Result<(), ApiError> {
    let taken = node.organisations()?.iter().any(|entry| {
        Some(entry.org.uuid) != except
            && entry.org.name.eq_ignore_ascii_case(name)
            && org_record(node, &entry.org.uuid).ok().flatten().is_some()
    });
    if taken {
        return Err(ApiError::validation(
            ORG_NOT_SAVED,
            "name",
            "An organisation with this name already exists.",
        ));
    }
    Ok(())
}

/// Sets `fields` of organisation `uuid` in a directory draft, as `caller`.
pub fn write_org(
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
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("Organisation");
    state
        .reply(move |node| {
            access::require(&caller, Action::AdministerNode)?;
            let mut fields = org_fields(&body, node.now_seconds())?;
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
            require_free_name(node, &name, None)?;
            fields.entry("local").or_insert(json!(true));
            fields.insert("uuid".into(), json!(uuid.to_string()));
            fields.insert("deleted".into(), json!(false));
            fields.insert("date_created".into(), json!(node.now_seconds().to_string()));
            write_org(node, &caller, &uuid, &fields)?;
            let (uuid, record) = find_org(node, &uuid.to_string())?;
            Ok(json!({ "Organisation": org_json(node, &uuid, &record)? }))
        })
        .await
}

/// `GET /admin/organisations/index` (and `/organisations/index`): `[{"Organisation": …}]`.
pub async fn index_orgs(call: Call) -> Result<Json<Value>, ApiError> {
    index_orgs_where(call, None, None).await
}

/// The organisations of `scope` (local or not; `None`: all) whose name, uuid, nationality,
/// sector or description holds `search` (in any case), as MISP's index lists them.
async fn index_orgs_where(
    Call { state, .. }: Call,
    local: Option<bool>,
    search: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let search = search.map(|text| text.to_lowercase());
    state
        .reply(move |node| {
            let prefix = [RecordKind::Organisation as u8];
            let mut out = Vec::new();
            for (key, _) in node.store.views().scan(Table::Records, &prefix)? {
                let Ok(uuid) = Uuid::from_slice(&key[1..]) else {
                    continue;
                };
                let Some(record) = org_record(node, &uuid)? else {
                    continue;
                };
                let org = org_json(node, &uuid, &record)?;
                let in_scope = local.is_none_or(|local| org["local"] == json!(local));
                let found = search.as_deref().is_none_or(|search| {
                    ["name", "uuid", "nationality", "sector", "description"]
                        .iter()
                        .filter_map(|field| org[*field].as_str())
                        .any(|text| text.to_lowercase().contains(search))
                });
                if in_scope && found {
                    out.push(json!({ "Organisation": org }));
                }
            }
            Ok(Value::Array(out))
        })
        .await
}

/// `GET /organisations/index/scope:{local|external|all}[/searchall:{text}]`, as PyMISP's
/// `organisations(scope, search)` asks.
pub async fn index_orgs_scoped(
    call: Call,
    Path(params): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let params = crate::api::search::path_params(&params)?;
    let text = |name: &str| params.get(name).and_then(Value::as_str).map(str::trim);
    if let Some(name) = params
        .keys()
        .find(|name| !["scope", "searchall"].contains(&name.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "The organisation index has no filter {name}; it reads scope and searchall."
        )));
    }
    let local = match text("scope") {
        None | Some("all") => None,
        Some("local") => Some(true),
        Some("external") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid scope {other}: use local, external or all."
            )))
        }
    };
    // PyMISP's URL writes a space of the search as `+`.
    let search = text("searchall")
        .map(|text| text.replace('+', " "))
        .filter(|text| !text.is_empty());
    index_orgs_where(call, local, search).await
}

/// `GET /admin/organisations/view/{id}` (and `/organisations/view/{id}`, HEAD).
pub async fn view_org(
    Call { state, .. }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let (uuid, record) = find_org(node, &id)?;
            Ok(json!({ "Organisation": org_json(node, &uuid, &record)? }))
        })
        .await
}

/// `POST /admin/organisations/edit/{id}`.
pub async fn edit_org(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("Organisation");
    state
        .reply(move |node| {
            access::require(&caller, Action::AdministerNode)?;
            let (uuid, _) = find_org(node, &id)?;
            let fields = org_fields(&body, node.now_seconds())?;
            if let Some(name) = fields.get("name").and_then(Value::as_str) {
                require_free_name(node, name, Some(uuid))?;
            }
            write_org(node, &caller, &uuid, &fields)?;
            let (uuid, record) = find_org(node, &uuid.to_string())?;
            Ok(json!({ "Organisation": org_json(node, &uuid, &record)? }))
        })
        .await
}

/// `POST /admin/organisations/delete/{id}`: refused while the organisation has users here
/// or is the node's own.
pub async fn delete_org(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/admin/organisations/delete/{id}");
    state
        .blocking(move |node| {
            access::require(&caller, Action::AdministerNode)?;
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
