//! `/taxonomies/…`: the taxonomies loaded on this node ([`crate::interop::io::catalog`]), in
//! MISP's shapes, enabling and disabling them. Also the exclusivity check every tag write
//! runs: a second tag of an exclusive taxonomy (TLP always) on one item is refused.

use axum::extract::Path;
use axum::http::Uri;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use uuid::Uuid;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::ApiError;
use super::{ApiState, Call};
use crate::interop::io::catalog::{self, CatalogError, StoredTaxonomy};
use crate::interop::taxonomy;
use crate::model::{Attribute, Event};
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::tag_links;

/// The routes of `/taxonomies/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/taxonomies/index", get(index))
        .route("/taxonomies/view/{id}", get(view))
        .route("/taxonomies/enable/{id}", post(enable))
        .route("/taxonomies/disable/{id}", post(disable))
        .route("/taxonomies/addTag/{id}", post(tags_noop))
        .route("/taxonomies/disableTag/{id}", post(tags_noop))
}

/// MISP's message for an unknown taxonomy.
const INVALID_TAXONOMY: &str = "Invalid taxonomy.";
/// The name of a refused tag attachment.
pub const TAG_NOT_ATTACHED: &str = "Tag could not be attached.";

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        ApiError::internal(&error)
    }
}

/// The tags attached to `target` now (global and local).
fn attached_tags(node: &Node, target: &Uuid) -> Result<Vec<String>, ApiError> {
    Ok(tag_links(&node.store.views(), target)?
        .into_iter()
        .filter(|link| link.state.attached)
        .map(|link| link.name)
        .collect())
}

/// Refuses `new` tags on `target` when they break an exclusive taxonomy together with the
/// tags already attached or with each other; `name` is the MISP error name of the caller's
/// operation.
pub fn check_exclusive(
    node: &Node,
    target: &Uuid,
    new: &[String],
    name: &str,
) -> Result<(), ApiError> {
    if new.is_empty() {
        return Ok(());
    }
    let rules = catalog::exclusive_rules(&node.store)?;
    let mut tags = attached_tags(node, target)?;
    for tag in new {
        if let Some(message) = taxonomy::conflict(&rules, &tags, tag) {
            return Err(ApiError::validation(name, "Tag", message));
        }
        tags.push(tag.clone());
    }
    Ok(())
}

/// [`check_exclusive`] for attributes being added or edited with their `Tag` lists.
pub fn check_attributes(node: &Node, attributes: &[Attribute], name: &str) -> Result<(), ApiError> {
    for attribute in attributes {
        let tags: Vec<String> = attribute.tags.iter().map(|t| t.name.clone()).collect();
        check_exclusive(node, &attribute.uuid, &tags, name)?;
    }
    Ok(())
}

/// [`check_exclusive`] for an event being added or edited: its own tags, its attributes'
/// and its objects' attributes'.
pub fn check_event(node: &Node, event: &Event, name: &str) -> Result<(), ApiError> {
    let tags: Vec<String> = event.tags.iter().map(|t| t.name.clone()).collect();
    check_exclusive(node, &event.uuid, &tags, name)?;
    check_attributes(node, &event.attributes, name)?;
    for object in &event.objects {
        check_attributes(node, &object.attributes, name)?;
    }
    Ok(())
}

/// MISP's `Taxonomy` object (without entries).
fn taxonomy_json(stored: &StoredTaxonomy) -> Value {
    let taxonomy = &stored.taxonomy;
    json!({
        "id": stored.id.to_string(),
        "namespace": taxonomy.namespace,
        "description": taxonomy.description,
        "version": taxonomy.version.to_string(),
        "enabled": stored.enabled,
        "exclusive": taxonomy.exclusive,
        "required": false,
        "highlighted": false,
    })
}

/// `GET /taxonomies/index`.
pub async fn index(Call { state, .. }: Call) -> Result<Json<Vec<Value>>, ApiError> {
    state
        .reply(|node| {
            let list: Vec<Value> = catalog::taxonomies(&node.store)?
                .iter()
                .map(|stored| {
                    let count = stored.taxonomy.tags().len();
                    json!({
                        "Taxonomy": taxonomy_json(stored),
                        "total_count": count,
                        "current_count": 0,
                    })
                })
                .collect();
            Ok(list)
        })
        .await
}

/// `GET /taxonomies/view/{id}` (id or namespace): the taxonomy and its tags.
pub async fn view(
    Call { state, .. }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let stored = catalog::taxonomy(&node.store, &id)?
                .ok_or_else(|| ApiError::not_found(INVALID_TAXONOMY))?;
            let entries: Vec<Value> = stored
                .taxonomy
                .tags()
                .into_iter()
                .map(|tag| {
                    // MISP names whether the tag is known on this node (used at least once).
                    let existing = node
                        .store
                        .local_id(RecordKind::Tag, tag.tag.as_bytes())
                        .is_some();
                    let mut entry = json!({
                        "tag": tag.tag,
                        "expanded": tag.expanded,
                        "description": tag.description,
                        "exclusive_predicate": tag.exclusive_predicate,
                        "existing_tag": existing,
                    });
                    if let Some(colour) = tag.colour {
                        entry["colour"] = json!(colour);
                    }
                    entry
                })
                .collect();
            let mut taxonomy = taxonomy_json(&stored);
            taxonomy["entries"] = Value::Array(entries.clone());
            Ok(json!({ "Taxonomy": taxonomy, "entries": entries }))
        })
        .await
}

async fn set_enabled(
    state: ApiState,
    caller: Caller,
    id: String,
    enabled: bool,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    access::require(&caller, Action::AdministerNode)?;
    let message = if enabled {
        "Taxonomy enabled"
    } else {
        "Taxonomy disabled"
    };
    state
        .saved(message, uri.path(), move |node| {
            let stored = catalog::set_taxonomy_enabled(&node.store, &id, enabled)?
                .ok_or_else(|| ApiError::not_found(INVALID_TAXONOMY))?;
            Ok(Some(stored.id.to_string()))
        })
        .await
}

/// `POST /taxonomies/enable/{id}` (site admins).
pub async fn enable(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    set_enabled(state, caller, id, true, uri).await
}

/// `POST /taxonomies/disable/{id}` (site admins).
pub async fn disable(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    set_enabled(state, caller, id, false, uri).await
}

/// `POST /taxonomies/addTag/{id}` and `/taxonomies/disableTag/{id}`, which PyMISP calls
/// around enabling and disabling: tags here are defined when first attached, so there is
/// nothing to create or hide; answers MISP's success for a known taxonomy.
pub async fn tags_noop(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    access::require(&caller, Action::AdministerNode)?;
    state
        .saved("Taxonomy tags updated", uri.path(), move |node| {
            let stored = catalog::taxonomy(&node.store, &id)?
                .ok_or_else(|| ApiError::not_found(INVALID_TAXONOMY))?;
            Ok(Some(stored.id.to_string()))
        })
        .await
}
