//! The MISP-compatible REST API (SPEC §9), on axum. Every request is authenticated by API key
//! ([`auth`]); every endpoint asks [`access`] whether the caller may do what it asks, and reads
//! are answered from the views with MISP's visibility rules ([`access`] too); every write
//! becomes log entries through [`Node::append`], never a direct view write. A handler starts
//! from a [`Call`] (state and caller), and runs its blocking RocksDB work on tokio's blocking
//! pool through [`ApiState::reply`] (or [`ApiState::saved`], [`ApiState::blocking`]).
//!
//! One module per MISP resource, each exposing its own `routes()`, which [`router`] merges:
//! - [`events`]: `/events/…` — add, view, edit, delete, publish ([`events`]), the index
//!   ([`events::index`]), the event JSON as a caller sees it ([`events::render`]) with its
//!   correlations ([`events::correlations`]) and landed levels ([`events::landed`]), and the
//!   freetext import ([`events::freetext`]);
//! - [`search`]: `/events/restSearch` and `/attributes/restSearch` (parsing the filters in
//!   `search::request`, writing the rows in `search::rows`);
//! - [`attributes`]: `/attributes/…` and `describeTypes`;
//! - [`objects`]: `/objects/…` and `/objectReferences/…`;
//! - [`event_reports`]: `/eventReports/…` — an event's reports;
//! - [`tags`]: `/tags/…` — definitions ([`tags::definitions`]) and attaching to events,
//!   attributes and objects ([`tags::links`]);
//! - [`taxonomies`]: `/taxonomies/…` and the exclusivity check every tag write runs;
//!   [`galaxies`]: `/galaxies/…` and `/galaxy_clusters/…`;
//! - [`sightings`]: `/sightings/…` — adding ([`sightings`]), searching, listing and deleting
//!   ([`sightings::search`]);
//! - [`organisations`]: `/organisations/…` and `/admin/organisations/…`; [`users`]:
//!   `/users/view/…` and `/admin/users/…`; [`auth_keys`]: `/auth_keys/…` — users' extra API
//!   keys, read-only or expiring;
//! - [`roles`]: `/roles/index` and `/roles/view/…` — MISP's default roles, fixed here;
//! - [`sharing_groups`]: `/sharingGroups/…` (and `/sharing_groups/…`): the group record and
//!   its JSON ([`sharing_groups::group`]), members and servers ([`sharing_groups::members`]),
//!   relay nodes ([`sharing_groups::nodes`]);
//! - [`servers`]: `/servers/…` — peers as MISP servers, and the version endpoints;
//! - [`identity`]: `/identity/…`; [`audit`]: `/audit/…` (checkpoints and proofs);
//! - [`webhooks`]: not an endpoint but bodies POSTed out, for each publish and sighting.
//!
//! Beside them: [`access`] who may do what, [`admission`] request budgets per key and address
//! and fair turns at the node's work, [`auth`] API keys and roles, [`error`] MISP's error
//! bodies, [`request`] body and path parsing, [`server`] the REST listener (everything else
//! `threatlog serve` starts is [`crate::run`]'s), [`connections`] its connection limits and
//! timeouts, [`tls`] HTTPS.

pub mod access;
pub mod admission;
pub mod attributes;
pub mod audit;
pub mod auth;
pub mod auth_keys;
pub mod connections;
pub mod error;
pub mod event_reports;
pub mod events;
pub mod galaxies;
pub mod identity;
pub mod objects;
pub mod organisations;
pub mod request;
pub mod roles;
pub mod search;
pub mod server;
pub mod servers;
pub mod sharing_groups;
pub mod sightings;
pub mod tags;
pub mod taxonomies;
pub mod tls;
pub mod users;
pub mod webhooks;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;

use crate::node::Node;
use crate::turns::Tenant;
use admission::Admission;
use auth::Caller;
use error::ApiError;
use serde_json::Value;

/// MISP's body for a successful change: `saved`, `success`, the message as `name` and
/// `message`, the request's `url`, and the changed item's `id` where there is one.
pub fn saved(message: &str, url: &str, id: Option<String>) -> Json<Value> {
    let mut body = serde_json::json!({
        "saved": true,
        "success": true,
        "name": message,
        "message": message,
        "url": url,
    });
    if let Some(id) = id {
        body["id"] = serde_json::Value::String(id);
    }
    Json(body)
}

/// What every handler that reads or writes the node starts from: the shared state and the
/// authenticated caller, which [`auth::authenticate`] put into the request before any handler
/// runs.
pub struct Call {
    /// The state shared by every handler.
    pub state: ApiState,
    /// The authenticated caller.
    pub caller: Caller,
}

impl FromRequestParts<ApiState> for Call {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        // Every route is behind the authentication layer, so the caller is always there; a
        // request without one is refused as unauthenticated rather than served.
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(ApiError::auth_failed)?;
        Ok(Call {
            state: state.charged_to(Tenant::User(caller.id)),
            caller,
        })
    }
}

/// State shared by every handler.
#[derive(Clone)]
pub struct ApiState {
    /// The open node; handlers use it only inside [`ApiState::blocking`].
    pub node: Arc<Node>,
    /// Largest request body read, in bytes (`api.body_bytes_max`).
    pub body_bytes_max: u64,
    /// Request budgets.
    pub admission: Arc<Admission>,
    /// Whom this state's work is charged to: the caller, in a [`Call`].
    pub tenant: Tenant,
}

impl ApiState {
    /// State for `node`, with limits from its configuration.
    pub fn new(node: Arc<Node>) -> Self {
        Self {
            body_bytes_max: node.config.api.body_bytes_max,
            admission: Arc::new(Admission::new(&node.config.api)),
            tenant: Tenant::Node,
            node,
        }
    }

    /// This state, its work charged to `tenant`.
    pub fn charged_to(&self, tenant: Tenant) -> Self {
        Self {
            tenant,
            ..self.clone()
        }
    }

    /// Runs `work` on the node on a worker thread ([`crate::workers`]: RocksDB reads and
    /// synced appends block, and must not stall the async workers), in a fair turn of this
    /// state's tenant.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Node) -> Result<T, ApiError> + Send + 'static,
    {
        let node = Arc::clone(&self.node);
        self.node
            .turns
            .blocking(self.tenant, move || work(&node))
            .await
            .map_err(|error| ApiError::internal(&error))?
    }

    /// [`ApiState::blocking`], answering what `work` returns as the JSON body: the skeleton of
    /// every handler that reads or writes the node.
    pub async fn reply<T, F>(&self, work: F) -> Result<Json<T>, ApiError>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&Node) -> Result<T, ApiError> + Send + 'static,
    {
        self.blocking(work).await.map(Json)
    }

    /// [`ApiState::blocking`] for a change whose answer is MISP's [`saved`] body with
    /// `message` and `url`, and the id `work` returns, if any.
    pub async fn saved<F>(&self, message: &str, url: &str, work: F) -> Result<Json<Value>, ApiError>
    where
        F: FnOnce(&Node) -> Result<Option<String>, ApiError> + Send + 'static,
    {
        let id = self.blocking(work).await?;
        Ok(saved(message, url, id))
    }
}

/// The API's routes, authenticated, with MISP's error bodies and a JSON 404 for unknown
/// paths.
pub fn router(state: ApiState) -> Router {
    let routes = Router::new()
        .merge(servers::routes())
        .merge(users::routes())
        .merge(auth_keys::routes())
        .merge(events::routes())
        .merge(search::routes())
        .merge(attributes::routes())
        .merge(objects::routes())
        .merge(event_reports::routes())
        .merge(tags::routes())
        .merge(sightings::routes())
        .merge(sharing_groups::routes())
        .merge(organisations::routes())
        .merge(roles::routes())
        .merge(taxonomies::routes())
        .merge(galaxies::routes())
        .merge(audit::routes())
        .merge(identity::routes())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::admit,
        ))
        .with_state(state);
    routes.layer(axum::middleware::from_fn(error::misp_errors))
}
