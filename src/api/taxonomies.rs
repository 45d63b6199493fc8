//! `/taxonomies/…` and `/galaxies/…`: the taxonomies and galaxies loaded on this node
//! ([`crate::interop::catalog`]), in MISP's shapes, and attaching a galaxy cluster (its tag,
//! through the tag attach write path). Also the exclusivity check every tag write runs:
//! a second tag of an exclusive taxonomy (TLP always) on one item is refused.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::request::{parse_ref, text_field, JsonBody};
use super::ApiState;
use crate::interop::catalog::{self, CatalogError, StoredCluster, StoredGalaxy, StoredTaxonomy};
use crate::interop::taxonomy;
use crate::model::{Attribute, Event};
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::tag_links;

/// MISP's message for an unknown taxonomy.
const INVALID_TAXONOMY: &str = "Invalid taxonomy.";
/// MISP's message for an unknown galaxy.
const INVALID_GALAXY: &str = "Invalid galaxy.";
/// MISP's message for an unknown cluster.
const INVALID_CLUSTER: &str = "Invalid Galaxy cluster.";
/// MISP's message for an unknown attach target.
const INVALID_TARGET: &str = "Invalid target.";
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
pub async fn index(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let list = state
        .blocking(|node| {
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
        .await?;
    Ok(Json(Value::Array(list)))
}

/// `GET /taxonomies/view/{id}` (id or namespace): the taxonomy and its tags.
pub async fn view(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
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
        .await?;
    Ok(Json(json))
}

async fn set_enabled(
    state: ApiState,
    caller: Caller,
    id: String,
    enabled: bool,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    if !caller.role.site_admin {
        return Err(ApiError::forbidden());
    }
    let stored = state
        .blocking(move |node| {
            catalog::set_taxonomy_enabled(&node.store, &id, enabled)?
                .ok_or_else(|| ApiError::not_found(INVALID_TAXONOMY))
        })
        .await?;
    let message = if enabled {
        "Taxonomy enabled"
    } else {
        "Taxonomy disabled"
    };
    Ok(super::saved(
        message,
        uri.path(),
        Some(stored.id.to_string()),
    ))
}

/// `POST /taxonomies/enable/{id}` (site admins).
pub async fn enable(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    set_enabled(state, caller, id, true, uri).await
}

/// `POST /taxonomies/disable/{id}` (site admins).
pub async fn disable(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    set_enabled(state, caller, id, false, uri).await
}

/// `POST /taxonomies/addTag/{id}` and `/taxonomies/disableTag/{id}`, which PyMISP calls
/// around enabling and disabling: tags here are defined when first attached, so there is
/// nothing to create or hide; answers MISP's success for a known taxonomy.
pub async fn tags_noop(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    if !caller.role.site_admin {
        return Err(ApiError::forbidden());
    }
    let stored = state
        .blocking(move |node| {
            catalog::taxonomy(&node.store, &id)?
                .ok_or_else(|| ApiError::not_found(INVALID_TAXONOMY))
        })
        .await?;
    Ok(super::saved(
        "Taxonomy tags updated",
        uri.path(),
        Some(stored.id.to_string()),
    ))
}

/// MISP's `Galaxy` object.
fn galaxy_json(stored: &StoredGalaxy) -> Value {
    let galaxy = &stored.galaxy;
    json!({
        "id": stored.id.to_string(),
        "uuid": galaxy.uuid,
        "name": galaxy.name,
        "type": galaxy.galaxy_type,
        "description": galaxy.description,
        "version": galaxy.version.to_string(),
        "icon": galaxy.icon,
        "namespace": galaxy.namespace,
        "kill_chain_order": galaxy.kill_chain_order,
        "enabled": true,
        "local_only": false,
    })
}

/// A cluster's meta data as MISP's `GalaxyElement` list: one `{key, value}` per value.
fn elements(meta: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(meta) = meta.as_object() {
        for (key, value) in meta {
            let values = match value {
                Value::Array(values) => values.clone(),
                other => vec![other.clone()],
            };
            for value in values {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                out.push(json!({ "key": key, "value": text }));
            }
        }
    }
    out
}

/// MISP's `GalaxyCluster` object.
fn cluster_json(stored: &StoredCluster, galaxy: &StoredGalaxy) -> Value {
    let cluster = &stored.cluster;
    json!({
        "id": stored.id.to_string(),
        "uuid": cluster.uuid,
        "collection_uuid": galaxy.collection_uuid,
        "type": cluster.galaxy_type,
        "value": cluster.value,
        "tag_name": cluster.tag_name(),
        "description": cluster.description,
        "galaxy_id": galaxy.id.to_string(),
        "source": galaxy.source,
        "authors": galaxy.authors,
        "version": galaxy.clusters_version.to_string(),
        "distribution": "3",
        "sharing_group_id": null,
        "org_id": "0",
        "orgc_id": "0",
        "default": true,
        "locked": false,
        "extends_uuid": "",
        "extends_version": "0",
        "published": true,
        "deleted": false,
        "meta": cluster.meta,
        "GalaxyElement": elements(&cluster.meta),
    })
}

/// `GET /galaxies/index`.
pub async fn galaxies_index(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let list = state
        .blocking(|node| {
            let list: Vec<Value> = catalog::galaxies(&node.store)?
                .iter()
                .map(|stored| json!({ "Galaxy": galaxy_json(stored) }))
                .collect();
            Ok(list)
        })
        .await?;
    Ok(Json(Value::Array(list)))
}

/// `GET /galaxies/view/{id}` (id, uuid or type): the galaxy and its clusters.
pub async fn galaxy_view(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            let stored = catalog::galaxy(&node.store, &id)?
                .ok_or_else(|| ApiError::not_found(INVALID_GALAXY))?;
            let clusters: Vec<Value> = catalog::clusters_of(&node.store, &stored)?
                .iter()
                .map(|cluster| cluster_json(cluster, &stored))
                .collect();
            Ok(json!({ "Galaxy": galaxy_json(&stored), "GalaxyCluster": clusters }))
        })
        .await?;
    Ok(Json(json))
}

/// Whether CakePHP-style options (`local:1`) ask for a local attachment.
fn local_option(options: &str) -> bool {
    options
        .split('/')
        .filter_map(|part| part.split_once(':'))
        .any(|(key, value)| key == "local" && !matches!(value, "0" | "false" | ""))
}

async fn attach(
    state: ApiState,
    caller: Caller,
    target_id: String,
    target_type: String,
    local: bool,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body: Map<String, Value> = body.object("Galaxy");
    let cluster_ref =
        text_field(&body, "target_id").ok_or_else(|| ApiError::not_found(INVALID_CLUSTER))?;
    state
        .blocking(move |node| {
            let cluster = catalog::cluster(&node.store, cluster_ref.trim())?
                .ok_or_else(|| ApiError::not_found(INVALID_CLUSTER))?;
            let kind = match target_type.as_str() {
                "event" => RecordKind::Event,
                "attribute" => RecordKind::Attribute,
                "object" => RecordKind::Object,
                _ => return Err(ApiError::not_found(INVALID_TARGET)),
            };
            let uuid = parse_ref(&target_id)
                .and_then(|reference| reference.resolve(node, kind))
                .ok_or_else(|| ApiError::not_found(INVALID_TARGET))?;
            super::tags::attach_tag(node, &caller, &uuid, &cluster.cluster.tag_name(), local)
        })
        .await?;
    Ok(Json(json!({
        "saved": true,
        "success": "Cluster attached.",
        "check_publish": !local,
    })))
}

/// `POST /galaxies/attachCluster/{target_id}/{target_type}` with `{"Galaxy": {"target_id":
/// cluster}}`: attaches the cluster's tag to the event, attribute or object.
pub async fn attach_cluster(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((target_id, target_type)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    attach(state, caller, target_id, target_type, false, body).await
}

/// `POST /galaxies/attachCluster/{target_id}/{target_type}/local:1`.
pub async fn attach_cluster_with_options(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((target_id, target_type, options)): Path<(String, String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let local = local_option(&options);
    attach(state, caller, target_id, target_type, local, body).await
}

/// `POST /galaxy_clusters/index/{galaxy}` with `{"context", "searchall"}` (PyMISP
/// `search_galaxy_clusters`): the galaxy's clusters whose value, description or meta data
/// contain `searchall` (case-insensitive), as `{"GalaxyCluster": …}` items.
pub async fn clusters_index(
    State(state): State<ApiState>,
    Path(galaxy): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let search = text_field(&body.object("GalaxyCluster"), "searchall")
        .map(|text| text.trim().to_lowercase())
        .filter(|text| !text.is_empty());
    let list = state
        .blocking(move |node| {
            let stored = catalog::galaxy(&node.store, &galaxy)?
                .ok_or_else(|| ApiError::not_found(INVALID_GALAXY))?;
            let matches = |cluster: &StoredCluster| match &search {
                None => true,
                Some(search) => [
                    cluster.cluster.value.to_lowercase(),
                    cluster.cluster.description.to_lowercase(),
                    cluster.cluster.meta.to_string().to_lowercase(),
                ]
                .iter()
                .any(|text| text.contains(search.as_str())),
            };
            let list: Vec<Value> = catalog::clusters_of(&node.store, &stored)?
                .iter()
                .filter(|cluster| matches(cluster))
                .map(|cluster| json!({ "GalaxyCluster": cluster_json(cluster, &stored) }))
                .collect();
            Ok(list)
        })
        .await?;
    Ok(Json(Value::Array(list)))
}

/// `GET /galaxy_clusters/view/{id}` (id or uuid): one cluster with its galaxy.
pub async fn cluster_view(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let json = state
        .blocking(move |node| {
            let cluster = catalog::cluster(&node.store, &id)?
                .ok_or_else(|| ApiError::not_found(INVALID_CLUSTER))?;
            let galaxy = catalog::galaxy(&node.store, &cluster.galaxy_id.to_string())?
                .ok_or_else(|| ApiError::not_found(INVALID_CLUSTER))?;
            let mut json = cluster_json(&cluster, &galaxy);
            json["Galaxy"] = galaxy_json(&galaxy);
            Ok(json!({ "GalaxyCluster": json }))
        })
        .await?;
    Ok(Json(json))
}
