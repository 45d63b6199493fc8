//! `/auth_keys/…`: users' extra API keys ([`crate::node::AuthKey`]), as MISP's AuthKeys
//! controller serves them. A user manages their own keys, an org admin those of their
//! organisation's users, a site admin everyone's; a key the caller may not manage is
//! "Invalid authkey" (404), whether or not it exists. A new key is answered once, as
//! `authkey_raw`.

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::access::{self, Action};
use super::auth::{Caller, Role, ROLES};
use super::error::ApiError;
use super::request::{flag_field, parse_ref, text_field, JsonBody, Ref};
use super::{saved, ApiState, Call};
use crate::model::date::iso_seconds;
use crate::node::{AuthKey, Node, NodeError, User};

/// MISP's message for a key that does not exist or is not the caller's to manage.
const INVALID_AUTH_KEY: &str = "Invalid authkey";
/// MISP's message for a user that does not exist or is not the caller's to manage.
const INVALID_USER: &str = "Invalid user";
/// MISP's validation failure name for a key that could not be saved.
const AUTH_KEY_NOT_SAVED: &str = "The AuthKey could not be saved.";
/// MISP's message for an expiration that is not ahead.
const EXPIRATION_PAST: &str = "Expiration date/time has to be in the future.";

/// The routes of `/auth_keys/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/auth_keys/add", post(add_own))
        .route("/auth_keys/add/{user}", post(add))
        .route("/auth_keys/index", get(index_all))
        .route("/auth_keys/index/{user}", get(index))
        .route("/auth_keys/view/{id}", get(view))
        .route("/auth_keys/edit/{id}", post(edit))
        .route("/auth_keys/delete/{id}", post(delete).delete(delete))
}

/// Whether `caller` manages the keys of `user`: their own, or a user they administer whose
/// role they could grant (an org admin does not make keys for a site admin of their
/// organisation).
fn manages(caller: &Caller, user: &User) -> bool {
    if user.email == caller.user.email {
        return true;
    }
    let role = Role::by_id(user.role).unwrap_or(ROLES[5]);
    access::allows(caller, Action::ManageUsersOf(&user.org))
        && access::allows(caller, Action::GrantRole(role))
}

/// The user named by `text` (`me`, or a local id) whose keys `caller` manages, with their id.
fn find_user(node: &Node, caller: &Caller, text: &str) -> Result<(u64, User), ApiError> {
    if text.trim().trim_end_matches(".json") == "me" {
        return Ok((caller.id, caller.user.clone()));
    }
    let missing = || ApiError::not_found(INVALID_USER);
    let Some(Ref::Id(id)) = parse_ref(text) else {
        return Err(missing());
    };
    node.users()?
        .into_iter()
        .find(|(user_id, user)| *user_id == id && manages(caller, user))
        .ok_or_else(missing)
}

/// The key with id `text` that `caller` manages, with its user and the user's id.
fn find_key(node: &Node, caller: &Caller, text: &str) -> Result<(AuthKey, u64, User), ApiError> {
    let missing = || ApiError::not_found(INVALID_AUTH_KEY);
    let Some(Ref::Id(id)) = parse_ref(text) else {
        return Err(missing());
    };
    let key = node.auth_key(id)?.ok_or_else(missing)?;
    let (user_id, user) = node
        .users()?
        .into_iter()
        .find(|(_, user)| user.email == key.email && manages(caller, user))
        .ok_or_else(missing)?;
    Ok((key, user_id, user))
}

/// MISP's `{"AuthKey", "User"}` body for `key` of user `user_id`; `raw` is only ever the new
/// key `add` shows once.
fn key_json(key: &AuthKey, user_id: u64, raw: Option<&str>) -> Value {
    let mut body = json!({
        "AuthKey": {
            "id": key.id.to_string(),
            "uuid": key.uuid.to_string(),
            "authkey_start": key.start,
            "authkey_end": key.end,
            "created": key.created.to_string(),
            "expiration": key.expiration.to_string(),
            "read_only": key.read_only,
            "comment": key.comment,
            "user_id": user_id.to_string(),
            "allowed_ips": null,
            "unique_ips": [],
        },
        "User": {"id": user_id.to_string(), "email": key.email},
    });
    if let Some(raw) = raw {
        body["AuthKey"]["authkey_raw"] = json!(raw);
    }
    body
}

/// The expiration a request sets, if any: unix seconds or a `YYYY-MM-DD` date (or ISO time);
/// empty, 0 or null is never. Anything else, or a time not after `now`, is a validation
/// failure.
fn requested_expiration(body: &Map<String, Value>, now: i64) -> Result<Option<i64>, ApiError> {
    let invalid = |message: &str| ApiError::validation(AUTH_KEY_NOT_SAVED, "expiration", message);
    if body.get("expiration").is_some_and(Value::is_null) {
        return Ok(Some(0));
    }
    let Some(text) = text_field(body, "expiration") else {
        return Ok(None);
    };
    let text = text.trim();
    let seconds = match text {
        "" | "0" => return Ok(Some(0)),
        _ if text.bytes().all(|b| b.is_ascii_digit()) => text.parse::<i64>().ok(),
        _ => iso_seconds(text),
    }
    .ok_or_else(|| invalid("Expiration must be unix seconds or a YYYY-MM-DD date."))?;
    if seconds <= now {
        return Err(invalid(EXPIRATION_PAST));
    }
    Ok(Some(seconds))
}

/// The comment a request sets, if any.
fn requested_comment(body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let Some(comment) = text_field(body, "comment") else {
        return Ok(None);
    };
    if comment.len() > crate::node::AUTH_KEY_COMMENT_BYTES_MAX {
        return Err(ApiError::validation(
            AUTH_KEY_NOT_SAVED,
            "comment",
            format!(
                "The comment is longer than {} bytes.",
                crate::node::AUTH_KEY_COMMENT_BYTES_MAX
            ),
        ));
    }
    Ok(Some(comment))
}

/// A node error about a key: a limit is a validation failure, anything else as usual.
fn key_error(error: NodeError) -> ApiError {
    match error {
        NodeError::AuthKeyRefused(message) => {
            ApiError::validation(AUTH_KEY_NOT_SAVED, "user_id", message)
        }
        other => other.into(),
    }
}

/// `POST /auth_keys/add`: a key for the caller.
pub async fn add_own(call: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    add(call, Path("me".into()), body).await
}

/// `POST /auth_keys/add/{user}` (`me` or a user id) with optional `comment`, `expiration`
/// and `read_only`: the new key, with the key itself once as `authkey_raw`.
pub async fn add(
    Call { state, caller }: Call,
    Path(user): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("AuthKey");
    state
        .reply(move |node| {
            let (user_id, user) = find_user(node, &caller, &user)?;
            let expiration = requested_expiration(&body, node.now_seconds())?.unwrap_or(0);
            let comment = requested_comment(&body)?.unwrap_or_default();
            let read_only = flag_field(&body, "read_only");
            let (key, raw) = node
                .add_auth_key(&user.email, expiration, read_only, &comment)
                .map_err(key_error)?;
            Ok(key_json(&key, user_id, Some(&raw)))
        })
        .await
}

/// `GET /auth_keys/index`: every key the caller manages, in id order.
pub async fn index_all(call: Call) -> Result<Json<Value>, ApiError> {
    list(call, None).await
}

/// `GET /auth_keys/index/{user}` (`me` or a user id): that user's keys, if the caller manages
/// them; none otherwise.
pub async fn index(call: Call, Path(user): Path<String>) -> Result<Json<Value>, ApiError> {
    list(call, Some(user)).await
}

/// The keys `caller` manages, of the user named by `only` when given.
async fn list(Call { state, caller }: Call, only: Option<String>) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let only = match only.as_deref() {
                Some(text) => match find_user(node, &caller, text) {
                    Ok((_, user)) => Some(user.email),
                    Err(error) if error.status.as_u16() == 404 => return Ok(json!([])),
                    Err(error) => return Err(error),
                },
                None => None,
            };
            let users: Vec<(u64, User)> = (node.users()?.into_iter())
                .filter(|(_, user)| manages(&caller, user))
                .filter(|(_, user)| only.as_ref().is_none_or(|email| *email == user.email))
                .collect();
            let keys = node.auth_keys()?.into_iter().filter_map(|key| {
                let (id, _) = users.iter().find(|(_, user)| user.email == key.email)?;
                Some(key_json(&key, *id, None))
            });
            Ok(Value::Array(keys.collect()))
        })
        .await
}

/// `GET /auth_keys/view/{id}`.
pub async fn view(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let (key, user_id, _) = find_key(node, &caller, &id)?;
            Ok(key_json(&key, user_id, None))
        })
        .await
}

/// `POST /auth_keys/edit/{id}`: `comment`, `expiration` and `read_only` may change; the key
/// and its owner may not.
pub async fn edit(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("AuthKey");
    state
        .reply(move |node| {
            let (mut key, user_id, _) = find_key(node, &caller, &id)?;
            if let Some(expiration) = requested_expiration(&body, node.now_seconds())? {
                key.expiration = expiration;
            }
            if let Some(comment) = requested_comment(&body)? {
                key.comment = comment;
            }
            if body.contains_key("read_only") {
                key.read_only = flag_field(&body, "read_only");
            }
            node.put_auth_key(&key).map_err(key_error)?;
            Ok(key_json(&key, user_id, None))
        })
        .await
}

/// `POST` or `DELETE /auth_keys/delete/{id}`: the key stops authenticating at once.
pub async fn delete(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/auth_keys/delete/{id}");
    state
        .blocking(move |node| {
            let (key, _, _) = find_key(node, &caller, &id)?;
            node.remove_auth_keys(&[key])?;
            Ok(())
        })
        .await?;
    Ok(saved("AuthKey deleted.", &url, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn expirations_as_misp_sends_them() {
        let now = 1_700_000_000;
        let read = |value: Value| requested_expiration(&body(json!({"expiration": value})), now);
        assert_eq!(read(json!(0)), Ok(Some(0)));
        assert_eq!(read(json!("")), Ok(Some(0)));
        assert_eq!(read(json!(null)), Ok(Some(0)));
        assert_eq!(read(json!(now + 60)), Ok(Some(now + 60)));
        assert_eq!(read(json!("2100-01-01")), Ok(Some(4_102_444_800)));
        assert_eq!(requested_expiration(&body(json!({})), now), Ok(None));
        for past in [json!(now), json!(now - 1), json!("2020-01-01")] {
            let error = read(past).unwrap_err();
            assert_eq!(error.errors, Some(json!({"expiration": [EXPIRATION_PAST]})));
        }
        for bad in [json!("tomorrow"), json!(-5), json!(true)] {
            assert_eq!(read(bad).unwrap_err().status.as_u16(), 403);
        }
    }
}
