//! The MISP-compatible REST API (SPEC §9), on axum. Every request is authenticated by API key
//! ([`auth`]); reads are answered from the views with MISP's visibility rules
//! ([`visibility`]); every write becomes log entries through [`Node::append`], never a direct
//! view write. Blocking RocksDB work runs on tokio's blocking pool.
//!
//! Files by resource: [`events`], [`event_index`], [`attributes`], [`tags`], [`sightings`] (adding),
//! [`sighting_admin`] (searching, listing, deleting), [`objects`] (objects and references), [`accounts`] (users, organisations, version and type endpoints), [`tag_admin`] (tag
//! definitions), [`sharing_groups`], [`admin`] (organisation and user administration), [`audit`] (checkpoints and proofs); [`error`] holds MISP's
//! error bodies, [`request`] body and path parsing, [`visibility`] who sees and changes what,
//! [`server`] the listener and shutdown.
//!
//! Interchange: [`freetext`] (freetext import), [`taxonomies`] (taxonomies, galaxies, exclusive
//! tags).

pub mod accounts;
pub mod admin;
pub mod attributes;
pub mod audit;
pub mod auth;
pub mod correlations;
pub mod error;
pub mod event_index;
pub mod events;
pub mod freetext;
pub mod group_nodes;
pub mod identity;
pub mod landed;
pub mod objects;
pub mod request;
pub mod search;
pub mod server;
pub mod servers;
pub mod sharing_groups;
pub mod sighting_admin;
pub mod sightings;
pub mod tag_admin;
pub mod tags;
pub mod taxonomies;
pub mod tls;
pub mod visibility;

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

use crate::node::Node;
use error::ApiError;

/// MISP's body for a successful change: `saved`, `success`, the message as `name` and
/// `message`, the request's `url`, and the changed item's `id` where there is one.
pub fn saved(message: &str, url: &str, id: Option<String>) -> axum::Json<serde_json::Value> {
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
    axum::Json(body)
}

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
        .route("/events/freeTextImport/{event}", post(freetext::import))
        .route("/events/publish/{id}", post(events::publish))
        .route("/events/unpublish/{id}", post(events::unpublish))
        .route(
            "/events/index",
            get(event_index::index).post(event_index::index_post),
        )
        .route("/events", get(event_index::index))
        .route(
            "/events/restSearch",
            post(search::events).get(search::events_get),
        )
        .route(
            "/attributes/restSearch",
            post(search::attributes).get(search::attributes_get),
        )
        .route("/attributes/add/{event}", post(attributes::add))
        .route("/attributes/add/{event}/{*options}", post(attributes::add))
        .route("/attributes/edit/{id}", post(attributes::edit))
        .route("/attributes/delete/{id}", post(attributes::delete))
        .route("/attributes/view/{id}", get(attributes::view))
        .route("/tags/attachTagToObject", post(tags::attach))
        .route("/tags/removeTagFromObject", post(tags::detach))
        .route("/sightings/add", post(sightings::add))
        .route("/sightings/add/{id}", post(sightings::add_to))
        .route("/objects/add/{event}", post(objects::add))
        .route("/objects/edit/{id}", post(objects::edit))
        .route("/objects/delete/{id}", post(objects::delete))
        .route(
            "/objects/delete/{id}/{hard}",
            post(objects::delete_hard_path),
        )
        .route("/objects/view/{id}", get(objects::view))
        .route("/objectReferences/add", post(objects::add_ref))
        .route("/objectReferences/add/{object}", post(objects::add_ref_to))
        .route("/objectReferences/delete/{id}", post(objects::delete_ref))
        .route(
            "/objectReferences/delete/{id}/{hard}",
            post(objects::delete_ref_hard_path),
        )
        .route("/sightings/restSearch", post(sighting_admin::rest_search))
        .route(
            "/sightings/restSearch/{context}",
            post(sighting_admin::rest_search_context),
        )
        .route("/sightings/listSightings", post(sighting_admin::list_body))
        .route(
            "/sightings/listSightings/{id}",
            get(sighting_admin::list_path).post(sighting_admin::list_path),
        )
        .route(
            "/sightings/listSightings/{id}/{context}",
            get(sighting_admin::list_path_context).post(sighting_admin::list_path_context),
        )
        .route("/sightings/delete/{id}", post(sighting_admin::delete))
        .route("/tags/add", post(tag_admin::add))
        .route("/tags/index", get(tag_admin::index))
        .route("/tags/view/{id}", get(tag_admin::view))
        .route("/tags/edit/{id}", post(tag_admin::edit))
        .route("/tags/delete/{id}", post(tag_admin::delete))
        .route("/servers/index", get(servers::index).post(servers::index))
        .route("/servers/add", post(servers::add))
        .route("/servers/card", post(servers::card).get(servers::card))
        .route("/servers/edit/{id}", post(servers::edit))
        .route("/servers/delete/{id}", post(servers::delete))
        .route(
            "/servers/pull/{*id}",
            post(servers::sync_now).get(servers::sync_now),
        )
        .route(
            "/servers/push/{*id}",
            post(servers::sync_now).get(servers::sync_now),
        )
        .route("/sharingGroups/add", post(sharing_groups::add))
        .route("/sharing_groups/add", post(sharing_groups::add))
        .route("/sharingGroups/index", get(sharing_groups::index))
        .route("/sharing_groups/index", get(sharing_groups::index))
        .route("/sharingGroups/view/{id}", get(sharing_groups::view))
        .route("/sharing_groups/view/{id}", get(sharing_groups::view))
        .route("/sharingGroups/addOrg", post(sharing_groups::add_org))
        .route("/sharing_groups/addOrg", post(sharing_groups::add_org))
        .route(
            "/sharingGroups/addOrg/{sg}/{org}",
            post(sharing_groups::add_org_path),
        )
        .route(
            "/sharing_groups/addOrg/{sg}/{org}",
            post(sharing_groups::add_org_path),
        )
        .route("/sharingGroups/removeOrg", post(sharing_groups::remove_org))
        .route(
            "/sharing_groups/removeOrg",
            post(sharing_groups::remove_org),
        )
        .route(
            "/sharingGroups/removeOrg/{sg}/{org}",
            post(sharing_groups::remove_org_path),
        )
        .route(
            "/sharing_groups/removeOrg/{sg}/{org}",
            post(sharing_groups::remove_org_path),
        )
        .route("/sharingGroups/addServer", post(sharing_groups::add_server))
        .route(
            "/sharing_groups/addServer",
            post(sharing_groups::add_server),
        )
        .route(
            "/sharingGroups/removeServer",
            post(sharing_groups::remove_server),
        )
        .route(
            "/sharing_groups/removeServer",
            post(sharing_groups::remove_server),
        )
        .route("/sharingGroups/edit/{id}", post(sharing_groups::edit))
        .route("/sharing_groups/edit/{id}", post(sharing_groups::edit))
        .route("/sharingGroups/delete/{id}", post(sharing_groups::delete))
        .route("/sharing_groups/delete/{id}", post(sharing_groups::delete))
        .route("/admin/organisations/add", post(admin::add_org))
        .route("/admin/organisations/index", get(admin::index_orgs))
        .route("/organisations/index", get(admin::index_orgs))
        .route(
            "/organisations/index/{scope}",
            get(admin::index_orgs_scoped),
        )
        .route("/admin/organisations/view/{id}", get(admin::view_org))
        .route("/organisations/view/{id}", get(admin::view_org))
        .route("/admin/organisations/edit/{id}", post(admin::edit_org))
        .route("/admin/organisations/delete/{id}", post(admin::delete_org))
        .route("/admin/users/add", post(admin::add_user))
        .route("/admin/users/index", get(admin::index_users))
        .route("/admin/users", get(admin::index_users))
        .route("/admin/users/view/{id}", get(admin::view_user))
        .route("/admin/users/edit/{id}", post(admin::edit_user))
        .route("/admin/users/delete/{id}", post(admin::delete_user))
        .route("/taxonomies/index", get(taxonomies::index))
        .route("/taxonomies/view/{id}", get(taxonomies::view))
        .route("/taxonomies/enable/{id}", post(taxonomies::enable))
        .route("/taxonomies/disable/{id}", post(taxonomies::disable))
        .route("/taxonomies/addTag/{id}", post(taxonomies::tags_noop))
        .route("/taxonomies/disableTag/{id}", post(taxonomies::tags_noop))
        .route("/galaxies/index", get(taxonomies::galaxies_index))
        .route("/galaxies/view/{id}", get(taxonomies::galaxy_view))
        .route(
            "/galaxy_clusters/index/{galaxy}",
            get(taxonomies::clusters_index).post(taxonomies::clusters_index),
        )
        .route("/galaxy_clusters/view/{id}", get(taxonomies::cluster_view))
        .route(
            "/galaxies/attachCluster/{target_id}/{target_type}",
            post(taxonomies::attach_cluster),
        )
        .route(
            "/galaxies/attachCluster/{target_id}/{target_type}/{*options}",
            post(taxonomies::attach_cluster_with_options),
        )
        .route("/audit/checkpoint", get(audit::checkpoint))
        .route("/audit/alerts", get(audit::alerts))
        .route(
            "/identity/{*op}",
            post(identity::handle).get(identity::handle),
        )
        .route("/audit/checkpoint/{origin}", get(audit::checkpoint_of))
        .route(
            "/audit/proof/inclusion/{origin}/{seq}",
            get(audit::inclusion),
        )
        .route(
            "/audit/proof/consistency/{origin}/{m}/{n}",
            get(audit::consistency),
        )
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state);
    routes.layer(axum::middleware::from_fn(error::misp_errors))
}
