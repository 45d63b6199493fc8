//! The MISP-compatible REST API (SPEC §9), on axum. Every request is authenticated by API key
//! ([`auth`]); reads are answered from the views with MISP's visibility rules
//! ([`visibility`]); every write becomes log entries through [`Node::append`], never a direct
//! view write. Blocking RocksDB work runs on tokio's blocking pool.
//!
//! Files by resource: [`events`], [`event_index`], [`attributes`], [`tags`], [`sightings`],
//! [`accounts`] (users, organisations, version and type endpoints); [`error`] holds MISP's
//! error bodies, [`request`] body and path parsing, [`visibility`] who sees and changes what,
//! [`server`] the listener and shutdown.

pub mod accounts;
pub mod attributes;
pub mod auth;
pub mod error;
pub mod event_index;
pub mod events;
pub mod request;
pub mod server;
pub mod sightings;
pub mod tags;
pub mod visibility;

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

use crate::node::Node;
use error::ApiError;

/// State shared by every handler.
#[derive(Clone)]
pub struct ApiState {
    /// The open node; handlers use it only inside [`ApiState::blocking`].
    pub node: Arc<Node>,
    /// Largest request body read, in bytes (`api.body_bytes_max`).
    pub body_bytes_max: u64,
}

impl ApiState {
    /// State for `node`, with limits from its configuration.
    pub fn new(node: Arc<Node>) -> Self {
        Self {
            body_bytes_max: node.config.api.body_bytes_max,
            node,
        }
    }

    /// Runs `work` on the node in tokio's blocking pool: RocksDB reads and synced appends
    /// block, and must not stall the async workers.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Node) -> Result<T, ApiError> + Send + 'static,
    {
        let node = Arc::clone(&self.node);
        tokio::task::spawn_blocking(move || work(&node))
            .await
            .map_err(|error| ApiError::internal(&error))?
    }
}

/// The API's routes, authenticated, with MISP's error bodies and a JSON 404 for unknown
/// paths.
pub fn router(state: ApiState) -> Router {
    let routes = Router::new()
        .route("/servers/getVersion", get(accounts::version))
        .route("/servers/getVersion.json", get(accounts::version))
        .route(
            "/servers/getPyMISPVersion.json",
            get(accounts::pymisp_version),
        )
        .route("/users/view/{id}", get(accounts::view_user))
        .route(
            "/attributes/describeTypes.json",
            get(accounts::describe_types),
        )
        .route("/events/add", post(events::add))
        .route("/events/add/{*options}", post(events::add_with_options))
        .route(
            "/events/view/{id}",
            get(events::view).post(events::view_post),
        )
        .route(
            "/events/view/{id}/{*options}",
            get(events::view_with_options),
        )
        .route("/events/edit/{id}", post(events::edit).put(events::edit))
        .route(
            "/events/edit/{id}/{*options}",
            post(events::edit_with_options),
        )
        .route(
            "/events/delete/{id}",
            post(events::delete).delete(events::delete),
        )
        .route("/events/publish/{id}", post(events::publish))
        .route("/events/unpublish/{id}", post(events::unpublish))
        .route(
            "/events/index",
            get(event_index::index).post(event_index::index_post),
        )
        .route("/events", get(event_index::index))
        .route("/attributes/add/{event}", post(attributes::add))
        .route("/attributes/add/{event}/{*options}", post(attributes::add))
        .route("/attributes/edit/{id}", post(attributes::edit))
        .route("/attributes/delete/{id}", post(attributes::delete))
        .route("/attributes/view/{id}", get(attributes::view))
        .route("/tags/attachTagToObject", post(tags::attach))
        .route("/tags/removeTagFromObject", post(tags::detach))
        .route("/sightings/add", post(sightings::add))
        .route("/sightings/add/{id}", post(sightings::add_to))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state);
    routes.layer(axum::middleware::from_fn(error::misp_errors))
}
