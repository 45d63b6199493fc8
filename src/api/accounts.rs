//! Organisations and users: the node operations behind `threatlog org …`, `threatlog user …`
//! and the API's caller lookup, plus the endpoints PyMISP calls when it connects.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{json, Value};
use std::sync::Mutex;
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::ApiState;
use crate::change;
use crate::model::{self, Organisation};
use crate::node::{Node, NodeError, User};
use crate::proto::RecordKind;
use crate::view::{read, Table, ViewRead};

/// The MISP version the API reports: purely numeric and dotted, as PyMISP requires.
pub const MISP_VERSION: &str = "2.5.0";

/// Local key prefix of user ids: `user_id/EMAIL` → id (8, big-endian).
const USER_ID_PREFIX: &str = "user_id/";
/// Local key of the next user id.
const USER_NEXT_ID: &[u8] = b"user_next_id";
/// Serialises user id assignment: the read-increment-write of [`USER_NEXT_ID`] must not race
/// within the process (the data-directory lock keeps other processes out).
static USER_ID_LOCK: Mutex<()> = Mutex::new(());

/// An organisation known to the node, with whether it is local (has users here) or remote.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgEntry {
    /// Uuid and name.
    pub org: Organisation,
    /// Registered as local to this node.
    pub local: bool,
    /// Local numeric id.
    pub id: u64,
}

fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

impl Node {
    /// Every organisation in the directory, in uuid order.
    pub fn organisations(&self) -> Result<Vec<OrgEntry>, NodeError> {
        let views = self.store.views();
        let prefix = [RecordKind::Organisation as u8];
        let mut out = Vec::new();
        for (key, _) in views
            .scan(Table::Records, &prefix)
            .map_err(crate::store::StoreError::from)?
        {
            if let Ok(uuid) = Uuid::from_slice(&key[1..]) {
                if let Some(entry) = self.organisation(&uuid)? {
                    out.push(entry);
                }
            }
        }
        Ok(out)
    }

    /// The organisation `uuid`, if the directory holds it.
    pub fn organisation(&self, uuid: &Uuid) -> Result<Option<OrgEntry>, NodeError> {
        let record = read::record(
            &self.store.views(),
            RecordKind::Organisation,
            uuid.as_bytes(),
        )
        .map_err(crate::store::StoreError::from)?;
        Ok(record.filter(|r| r.is_live()).map(|record| OrgEntry {
            org: Organisation {
                uuid: *uuid,
                name: record.str_field("name").unwrap_or_default().to_string(),
            },
            local: record
                .field("local")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            id: self
                .store
                .local_id(RecordKind::Organisation, uuid.as_bytes())
                .unwrap_or(0),
        }))
    }

    /// The organisation named by `text`: a uuid, a local id, or a name (case-insensitive).
    pub fn find_organisation(&self, text: &str) -> Result<Option<OrgEntry>, NodeError> {
        if let Ok(uuid) = Uuid::parse_str(text.trim()) {
            return self.organisation(&uuid);
        }
        let all = self.organisations()?;
        let by_id = text.trim().parse::<u64>().ok();
        Ok(all.into_iter().find(|entry| {
            Some(entry.id) == by_id || entry.org.name.eq_ignore_ascii_case(text.trim())
        }))
    }

    /// Records an organisation in the directory (a log entry); `local` registers it as one
    /// whose users this node hosts.
    pub fn add_organisation(&self, org: &Organisation, local: bool) -> Result<(), NodeError> {
        let actor = self.system_actor();
        self.append(vec![change::directory_draft(
            vec![change::organisation_op(org, local)],
            &actor,
        )])?;
        Ok(())
    }

    /// Every local user with their id, in email order.
    pub fn users(&self) -> Result<Vec<(u64, User)>, NodeError> {
        let mut out = Vec::new();
        for (_, bytes) in self.store.scan_local(b"user/")? {
            if let Ok(user) = serde_json::from_slice::<User>(&bytes) {
                out.push((self.user_id(&user.email)?, user));
            }
        }
        Ok(out)
    }

    /// The local numeric id of user `email`, assigned on first use.
    pub fn user_id(&self, email: &str) -> Result<u64, NodeError> {
        let key = format!("{USER_ID_PREFIX}{email}").into_bytes();
        if let Some(id) = self.store.local(&key)?.as_deref().and_then(decode_u64) {
            return Ok(id);
        }
        // A poisoned lock only means another assignment panicked; the counter is re-read below.
        let _guard = USER_ID_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = self.store.local(&key)?.as_deref().and_then(decode_u64) {
            return Ok(id);
        }
        let id = self
            .store
            .local(USER_NEXT_ID)?
            .as_deref()
            .and_then(decode_u64)
            .unwrap_or(1);
        self.store.put_local(&[
            (key, id.to_be_bytes().to_vec()),
            (USER_NEXT_ID.to_vec(), (id + 1).to_be_bytes().to_vec()),
        ])?;
        Ok(id)
    }

    /// The [`Caller`] for a stored user.
    pub fn caller(&self, user: User) -> Result<Caller, NodeError> {
        let org = match self.organisation(&user.org)? {
            Some(entry) => entry.org,
            None => Organisation {
                uuid: user.org,
                name: String::new(),
            },
        };
        Ok(Caller {
            id: self.user_id(&user.email)?,
            role: Role::by_id(user.role).unwrap_or(crate::api::auth::ROLES[5]),
            org,
            user,
        })
    }
}

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
