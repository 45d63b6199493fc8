//! `/tags/…`: tag definitions ([`definitions`]: add, index, search, view, edit, delete), and
//! tags on events, attributes and objects ([`links`]: attach and remove). Whether a tag may
//! join the ones on an item (exclusive taxonomies) is [`super::taxonomies`]'s check.

pub mod definitions;
pub mod links;

use axum::routing::{get, post};
use axum::Router;

use super::ApiState;

/// The routes of `/tags/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/tags/add", post(definitions::add))
        .route("/tags/index", get(definitions::index))
        .route("/tags/search", post(definitions::search))
        .route("/tags/view/{id}", get(definitions::view))
        .route("/tags/edit/{id}", post(definitions::edit))
        .route("/tags/delete/{id}", post(definitions::delete))
        .route("/tags/attachTagToObject", post(links::attach))
        .route("/tags/removeTagFromObject", post(links::detach))
}
