//! API keys and roles: the middleware that turns the `Authorization` (or `X-MISP-AUTH`) header
//! into a [`Caller`] (the user's own key or one of their extra keys, [`crate::node::AuthKey`],
//! whose read-only ones may only read and search), and MISP's default roles with their
//! permissions.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::ApiState;
use crate::change::Actor;
use crate::model::Organisation;
use crate::node::{Node, NodeError, User, API_KEY_CHARS};

/// A MISP role with its default id and what it allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// MISP's default role id.
    pub id: u8,
    /// MISP's role name.
    pub name: &'static str,
    /// May create and change events of its own organisation.
    pub write: bool,
    /// May publish.
    pub publish: bool,
    /// Administers its organisation.
    pub org_admin: bool,
    /// Administers the node and sees everything.
    pub site_admin: bool,
    /// A sync user (may set `Orgc` to another organisation, as a peer does).
    pub sync: bool,
}

/// MISP's default roles, by id.
pub const ROLES: [Role; 6] = [
    role(1, "admin", true, true, true, true, true),
    role(2, "Org Admin", true, true, true, false, false),
    role(3, "User", true, false, false, false, false),
    role(4, "Publisher", true, true, false, false, false),
    role(5, "Sync user", true, true, false, false, true),
    role(6, "Read Only", false, false, false, false, false),
];

const fn role(
    id: u8,
    name: &'static str,
    write: bool,
    publish: bool,
    org_admin: bool,
    site_admin: bool,
    sync: bool,
) -> Role {
    Role {
        id,
        name,
        write,
        publish,
        org_admin,
        site_admin,
        sync,
    }
}

impl Role {
    /// The role with MISP id `id`, or named `name` (case-insensitive; also `site-admin`,
    /// `org-admin`, `user`, `publisher`, `sync`, `read-only`).
    pub fn parse(text: &str) -> Option<Role> {
        let text = text.trim().to_ascii_lowercase();
        let id = match text.as_str() {
            "admin" | "site-admin" | "site_admin" | "site admin" => 1,
            "org-admin" | "org_admin" | "org admin" => 2,
            "user" => 3,
            "publisher" => 4,
            "sync" | "sync-user" | "sync_user" | "sync user" => 5,
            "read-only" | "read_only" | "read only" | "readonly" | "auditor" => 6,
            other => other.parse().ok()?,
        };
        Role::by_id(id)
    }

    /// The role with MISP id `id`.
    pub fn by_id(id: u8) -> Option<Role> {
        ROLES.iter().copied().find(|role| role.id == id)
    }

    /// MISP's `Role` object with its `perm_*` flags.
    pub fn json(&self) -> Value {
        let mut role = Map::new();
        role.insert("id".into(), json!(self.id.to_string()));
        role.insert("name".into(), json!(self.name));
        let flags = [
            ("perm_add", self.write),
            ("perm_modify", self.write),
            ("perm_modify_org", self.write),
            ("perm_publish", self.publish),
            ("perm_delegate", self.publish),
            ("perm_sync", self.sync || self.site_admin),
            ("perm_admin", self.org_admin),
            ("perm_audit", true),
            ("perm_auth", true),
            ("perm_site_admin", self.site_admin),
            ("perm_regexp_access", self.site_admin),
            ("perm_tagger", self.write),
            ("perm_template", self.org_admin),
            ("perm_sharing_group", self.org_admin || self.sync),
            ("perm_tag_editor", self.org_admin || self.sync),
            ("perm_sighting", self.write),
            ("perm_object_template", self.site_admin),
            ("perm_galaxy_editor", self.org_admin),
            ("perm_warninglist", self.site_admin),
            ("perm_view_feed_correlations", self.write),
            ("perm_analyst_data", self.write),
            ("perm_publish_zmq", self.publish),
            ("perm_publish_kafka", self.publish),
            ("perm_decaying", self.write),
            ("perm_skip_otp", false),
            ("perm_server_sign", self.site_admin),
            ("default_role", self.id == 3),
        ];
        for (name, value) in flags {
            role.insert(name.into(), json!(value));
        }
        role.insert("permission".into(), json!(self.permission_level()));
        Value::Object(role)
    }

    /// MISP's `permission` level: 0 read only, 1 create, 2 create and modify own org's,
    /// 3 publish.
    fn permission_level(&self) -> String {
        match (self.write, self.publish) {
            (false, _) => "0",
            (true, false) => "2",
            (true, true) => "3",
        }
        .into()
    }
}

/// The authenticated user of a request, with their organisation and role.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The stored user.
    pub user: User,
    /// The user's organisation.
    pub org: Organisation,
    /// The user's role (read-only when the stored id is unknown).
    pub role: Role,
    /// The user's local numeric id (position in the user list, from 1).
    pub id: u64,
}

impl Caller {
    /// The actor of this caller's changes.
    pub fn actor(&self) -> Actor {
        Actor {
            org: self.org.uuid,
            user: self.user.email.clone(),
        }
    }
}

/// The [`Caller`] for a stored user: their organisation from the directory (a nameless one
/// when the directory does not hold it) and their role (read-only when the id is unknown).
fn caller(node: &Node, user: User) -> Result<Caller, NodeError> {
    let org = match node.organisation(&user.org)? {
        Some(entry) => entry.org,
        None => Organisation {
            uuid: user.org,
            name: String::new(),
        },
    };
    Ok(Caller {
        id: node.user_id(&user.email)?,
        role: Role::by_id(user.role).unwrap_or(ROLES[5]),
        org,
        user,
    })
}

/// The [`Caller`] for the stored user with `email` (in any case), if there is one and it is
/// not disabled: whose view a webhook's bodies show.
pub fn caller_by_email(node: &Node, email: &str) -> Result<Option<Caller>, NodeError> {
    let found =
        (node.users()?.into_iter()).find(|(_, user)| user.email.eq_ignore_ascii_case(email));
    match found {
        Some((_, user)) if node.user_profile(&user.email)?.disabled => Ok(None),
        found => found.map(|(_, user)| caller(node, user)).transpose(),
    }
}

/// The API key of a request: `Authorization` (bare, or after `Bearer `) or `X-MISP-AUTH`.
pub fn api_key(headers: &HeaderMap) -> Option<String> {
    ["authorization", "x-misp-auth"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .map(|value| value.trim().trim_start_matches("Bearer ").trim())
        .find(|key| key.len() == API_KEY_CHARS)
        .map(str::to_string)
}

/// MISP's message for a write with a read-only key.
pub const READ_ONLY_KEY: &str = "This authentication key is read-only.";

/// Whether a read-only key may make a request with `method` to `path`: reads (not the GETs
/// that start a sync with a peer), and the searches and indexes MISP serves to POSTs.
pub fn read_only_allows(method: &Method, path: &str) -> bool {
    if *method == Method::GET || *method == Method::HEAD {
        return !(path.starts_with("/servers/pull") || path.starts_with("/servers/push"));
    }
    let path = path.trim_end_matches('/').trim_end_matches(".json");
    *method == Method::POST
        && (path.ends_with("/restSearch") || path == "/events/index" || path == "/attributes/index")
}

/// The user an API key authenticates as, and whether the key is read-only: the user's own key,
/// or one of their extra keys that has not expired; none for a disabled user.
fn user_of_key(node: &Node, key: &str) -> Result<Option<(User, bool)>, NodeError> {
    let found = match node.user_by_key(key)? {
        Some(user) => Some((user, false)),
        None => (node.user_by_auth_key(key)?).map(|(user, key)| (user, key.read_only)),
    };
    // A disabled user's keys authenticate nobody.
    match found {
        Some((user, _)) if node.user_profile(&user.email)?.disabled => Ok(None),
        found => Ok(found),
    }
}

/// Authenticates every request; the [`Caller`] goes into the request's extensions. A read-only
/// key's writes are refused here, before any handler runs.
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(key) = api_key(request.headers()) else {
        return ApiError::auth_failed().into_response();
    };
    // A key lookup is a few point reads: it takes no turn at the node's work, so that requests
    // with made-up keys from many addresses cannot make the callers they crowd out wait.
    let node = std::sync::Arc::clone(&state.node);
    let caller = tokio::task::spawn_blocking(move || {
        let Some((user, read_only)) = user_of_key(&node, &key)? else {
            return Ok(None);
        };
        Ok::<_, NodeError>(Some((caller(&node, user)?, read_only)))
    })
    .await;
    let caller = match caller {
        Ok(found) => found.map_err(ApiError::from),
        Err(error) => Err(ApiError::internal(&error)),
    };
    match caller {
        Ok(Some((_, true))) if !read_only_allows(request.method(), request.uri().path()) => {
            ApiError::new(StatusCode::FORBIDDEN, READ_ONLY_KEY).into_response()
        }
        Ok(Some((caller, _))) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(None) => ApiError::auth_failed().into_response(),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_id_and_name() {
        assert_eq!(Role::parse("1").map(|r| r.id), Some(1));
        assert_eq!(Role::parse("Publisher").map(|r| r.id), Some(4));
        assert_eq!(Role::parse("read-only").map(|r| r.id), Some(6));
        assert_eq!(Role::parse("7"), None);
        assert_eq!(Role::parse("wizard"), None);
        let user = Role::by_id(3).unwrap().json();
        assert_eq!(user["perm_add"], true);
        assert_eq!(user["perm_publish"], false);
        let read_only = Role::by_id(6).unwrap();
        assert!(!read_only.write && !read_only.publish);
    }

    #[test]
    fn read_only_keys_read_and_search_only() {
        for (method, path) in [
            (Method::GET, "/events/view/1"),
            (Method::HEAD, "/servers/getVersion"),
            (Method::POST, "/events/restSearch"),
            (Method::POST, "/attributes/restSearch.json"),
            (Method::POST, "/events/index"),
            (Method::POST, "/attributes/index/"),
        ] {
            assert!(read_only_allows(&method, path), "{method} {path}");
        }
        for (method, path) in [
            (Method::POST, "/events/add"),
            (Method::POST, "/auth_keys/add/me"),
            (Method::DELETE, "/auth_keys/delete/1"),
            (Method::PUT, "/events/restSearch"),
            (Method::POST, "/events/restSearchx"),
            (Method::POST, "/admin/events/index"),
            (Method::GET, "/servers/pull/1"),
            (Method::GET, "/servers/push/1/full"),
        ] {
            assert!(!read_only_allows(&method, path), "{method} {path}");
        }
    }
}
