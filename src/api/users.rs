//! `/users/view/{id}` (the caller themselves) and `/admin/users/…` (site admins, and org
//! admins for their own organisation's users). Users are node-local state
//! ([`crate::node::User`]); a new user's API key is returned once, as `authkey`.

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::access::{self, Action};
use super::auth::{Caller, Role, ROLES};
use super::error::ApiError;
use super::organisations::{org_json, org_record, write_org, NAME_BYTES_MAX};
use super::request::{parse_ref, text_field, JsonBody, Ref};
use super::{ApiState, Call};
use crate::node::{Node, Profile, User};

/// MISP's message for a user that does not exist or is not the caller's to see.
const INVALID_USER: &str = "Invalid user";
/// MISP's validation failure name for a user that could not be saved.
const USER_NOT_SAVED: &str = "The user could not be saved.";

/// The routes of `/users/…` and `/admin/users/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/users/view/{id}", get(view_self))
        .route("/admin/users/add", post(add_user))
        .route("/admin/users/index", get(index_users))
        .route("/admin/users", get(index_users))
        .route("/admin/users/view/{id}", get(view_user))
        .route("/admin/users/edit/{id}", post(edit_user))
        .route("/users/edit", post(edit_self))
        .route("/users/edit/{id}", post(edit_self_id))
        .route("/admin/users/delete/{id}", post(delete_user))
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
    if !access::allows(caller, Action::ManageUsersOf(&user.org)) {
        return Err(missing());
    }
    Ok((id, user))
}

/// Longest PGP key or S/MIME certificate a profile holds, in bytes.
pub const PROFILE_KEY_BYTES_MAX: usize = 64 * 1024;

/// MISP's `User` object for user `id` with `email`, organisation id `org_id`, `role` and
/// `profile`; `authkey` is only ever the new key `admin/users/add` shows once.
fn user_object(
    id: u64,
    org_id: Value,
    email: &str,
    role: Role,
    profile: &Profile,
    authkey: Option<&str>,
) -> Value {
    json!({
        "id": id.to_string(),
        "org_id": org_id,
        "email": email,
        "autoalert": profile.autoalert,
        "authkey": authkey,
        "invited_by": "0",
        "gpgkey": (!profile.gpgkey.is_empty()).then_some(&profile.gpgkey),
        "certif_public": profile.certif_public,
        "nids_sid": profile.nids_sid.to_string(),
        "termsaccepted": true,
        "newsread": "0",
        "role_id": role.id.to_string(),
        "change_pw": false,
        "contactalert": profile.contactalert,
        "disabled": profile.disabled,
        "expiration": null,
        "current_login": "0",
        "last_login": "0",
        "force_logout": false,
        "date_created": null,
        "date_modified": null,
    })
}

/// MISP's `{"User", "Role", "Organisation"}` body for a user.
fn user_json(node: &Node, id: u64, user: &User, authkey: Option<&str>) -> Result<Value, ApiError> {
    let role = Role::by_id(user.role).unwrap_or(ROLES[5]);
    let organisation = match org_record(node, &user.org)? {
        Some(record) => org_json(node, &user.org, &record)?,
        None => json!({"id": "0", "name": "", "uuid": user.org.to_string()}),
    };
    Ok(json!({
        "User": user_object(
            id,
            organisation["id"].clone(),
            &user.email,
            role,
            &node.user_profile(&user.email)?,
            authkey,
        ),
        "Role": role.json(),
        "Organisation": organisation,
    }))
}

/// `profile` with the fields of MISP's `users/edit` that `body` sets: `disabled`,
/// `autoalert`, `contactalert`, `gpgkey`, `certif_public`, `nids_sid`.
fn edited_profile(body: &Map<String, Value>, mut profile: Profile) -> Result<Profile, ApiError> {
    let flag = |name: &str| {
        body.get(name)
            .filter(|value| !value.is_null())
            .map(|value| match value {
                Value::Bool(flag) => *flag,
                other => matches!(text_field_of(other).as_str(), "1" | "true"),
            })
    };
    for (name, field) in [
        ("disabled", &mut profile.disabled),
        ("autoalert", &mut profile.autoalert),
        ("contactalert", &mut profile.contactalert),
    ] {
        if let Some(value) = flag(name) {
            *field = value;
        }
    }
    for (name, field) in [
        ("gpgkey", &mut profile.gpgkey),
        ("certif_public", &mut profile.certif_public),
    ] {
        let Some(text) = text_field(body, name) else {
            continue;
        };
        if text.len() > PROFILE_KEY_BYTES_MAX {
            let message = format!("At most {PROFILE_KEY_BYTES_MAX} bytes.");
            return Err(ApiError::validation(USER_NOT_SAVED, name, &message));
        }
        *field = text;
    }
    if let Some(text) = text_field(body, "nids_sid") {
        profile.nids_sid = text.trim().parse().map_err(|_| {
            ApiError::validation(USER_NOT_SAVED, "nids_sid", "A number is expected.")
        })?;
    }
    Ok(profile)
}

/// Refuses a body that changes the user's email (`email`): it is the user's identity here.
fn keep_email(body: &Map<String, Value>, email: &str) -> Result<(), ApiError> {
    if text_field(body, "email").is_some_and(|given| given.trim() != email) {
        return Err(ApiError::validation(
            USER_NOT_SAVED,
            "email",
            "A user's email cannot be changed; add a new user instead.",
        ));
    }
    Ok(())
}

/// A JSON scalar as text.
fn text_field_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.trim().to_ascii_lowercase(),
        other => other.to_string(),
    }
}

/// The role a request names (`role_id`), checked against what the caller may grant: org
/// admins may not create site admins.
fn requested_role(caller: &Caller, body: &Map<String, Value>) -> Result<Option<Role>, ApiError> {
    let Some(text) = text_field(body, "role_id") else {
        return Ok(None);
    };
    let role = Role::parse(&text)
        .ok_or_else(|| ApiError::validation(USER_NOT_SAVED, "role_id", "Invalid role."))?;
    access::require(caller, Action::GrantRole(role))?;
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
    if !access::allows(caller, Action::ManageUsersOf(&entry.org.uuid)) {
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
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("User");
    state
        .reply(move |node| {
            access::require(&caller, Action::AdministerUsers)?;
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
            let role = requested_role(&caller, &body)?.unwrap_or(ROLES[2]);
            let org = requested_org(node, &caller, &body)?.unwrap_or(caller.org.uuid);
            if !access::allows(&caller, Action::ManageUsersOf(&org)) {
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
        .await
}

/// `GET /admin/users/index` (also `/admin/users`): `[{"User", "Role", "Organisation"}]`,
/// the users the caller manages.
pub async fn index_users(Call { state, caller }: Call) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            access::require(&caller, Action::AdministerUsers)?;
            let mut out = Vec::new();
            for (id, user) in node.users()? {
                if access::allows(&caller, Action::ManageUsersOf(&user.org)) {
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
        .await
}

/// `GET /admin/users/view/{id}`.
pub async fn view_user(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            access::require(&caller, Action::AdministerUsers)?;
            let (id, user) = find_user(node, &caller, &id)?;
            user_json(node, id, &user, None)
        })
        .await
}

/// `POST /admin/users/edit/{id}`: `role_id`, `org_id` and the profile (`disabled`,
/// `autoalert`, `contactalert`, `gpgkey`, `certif_public`, `nids_sid`) may change; the email
/// is the user's identity here and may not. Nobody disables their own account.
pub async fn edit_user(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("User");
    state
        .reply(move |node| {
            access::require(&caller, Action::AdministerUsers)?;
            let (id, mut user) = find_user(node, &caller, &id)?;
            keep_email(&body, &user.email)?;
            if let Some(role) = requested_role(&caller, &body)? {
                user.role = role.id;
            }
            if let Some(org) = requested_org(node, &caller, &body)? {
                make_local(node, &caller, &org)?;
                user.org = org;
            }
            let profile = edited_profile(&body, node.user_profile(&user.email)?)?;
            if profile.disabled && user.email == caller.user.email {
                return Err(ApiError::validation(
                    USER_NOT_SAVED,
                    "disabled",
                    "You cannot disable your own account.",
                ));
            }
            node.put_user(&user)?;
            node.put_user_profile(&user.email, &profile)?;
            user_json(node, id, &user, None)
        })
        .await
}

/// `POST /admin/users/delete/{id}`: the user and its API key are removed at once. Nobody
/// deletes their own account.
pub async fn delete_user(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/admin/users/delete/{id}");
    state
        .blocking(move |node| {
            access::require(&caller, Action::AdministerUsers)?;
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

/// `GET /users/view/{id}`: `me` (or the caller's own id) is the caller; others need a site
/// admin and are served by the admin endpoints.
pub async fn view_self(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id.trim_end_matches(".json");
    if id != "me" && id != caller.id.to_string() {
        // Another user: what `/admin/users/view` shows to those who administer users (PyMISP's
        // `get_user(id)`), and to anyone else no more than that it is not theirs to see.
        if !access::allows(&caller, Action::AdministerUsers) {
            return Err(ApiError::not_found("Invalid user"));
        }
        return view_user(Call { state, caller }, Path(id.to_string())).await;
    }
    state.reply(move |node| self_json(node, &caller)).await
}

/// `POST /users/edit` (MISP's self-service edit): the caller's own profile (`autoalert`,
/// `contactalert`, `gpgkey`, `certif_public`, `nids_sid`, and `disabled`, as in MISP); what
/// else the body holds (PyMISP sends the whole user) is left as it is, but a changed email is
/// refused, as on `admin/users/edit`.
pub async fn edit_self(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("User");
    state
        .reply(move |node| {
            keep_email(&body, &caller.user.email)?;
            let profile = edited_profile(&body, node.user_profile(&caller.user.email)?)?;
            node.put_user_profile(&caller.user.email, &profile)?;
            self_json(node, &caller)
        })
        .await
}

/// `POST /users/edit/{id}` (PyMISP's `update_user` for a user who is not an admin): the
/// caller's own id or `me` only.
pub async fn edit_self_id(
    call: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let id = id.trim_end_matches(".json");
    if id != "me" && id != call.caller.id.to_string() {
        return Err(ApiError::not_found(INVALID_USER));
    }
    edit_self(call, body).await
}

/// MISP's `users/view` body for `caller`.
fn self_json(node: &Node, caller: &Caller) -> Result<Value, ApiError> {
    let org_id = node
        .organisation(&caller.org.uuid)?
        .map(|entry| entry.id)
        .unwrap_or(0);
    let profile = node.user_profile(&caller.user.email)?;
    Ok(json!({
        "User": user_object(
            caller.id,
            json!(org_id.to_string()),
            &caller.user.email,
            caller.role,
            &profile,
            None,
        ),
        "Role": caller.role.json(),
        "UserSetting": [],
        "Organisation": {
            "id": org_id.to_string(),
            "name": caller.org.name,
            "uuid": caller.org.uuid.to_string(),
            "local": true,
        },
    }))
}
