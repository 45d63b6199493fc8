//! `/galaxies/…` and `/galaxy_clusters/…`: the galaxies loaded on this node
//! ([`crate::interop::io::catalog`]), in MISP's shapes, and attaching a galaxy cluster (its tag,
//! through the tag attach write path, [`super::tags::links::attach_tag`]).

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::request::{option_set, parse_ref, text_field, JsonBody};
use super::tags::links::attach_tag;
use super::{ApiState, Call};
use crate::interop::io::catalog::{self, StoredCluster, StoredGalaxy};
use crate::proto::RecordKind;

/// MISP's message for an unknown galaxy.
const INVALID_GALAXY: &str = "Invalid galaxy.";
/// MISP's message for an unknown cluster.
const INVALID_CLUSTER: &str = "Invalid Galaxy cluster.";
/// MISP's message for an unknown attach target.
const INVALID_TARGET: &str = "Invalid target.";

/// The routes of `/galaxies/…` and `/galaxy_clusters/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/galaxies/index", get(galaxies_index))
        .route("/galaxies/view/{id}", get(galaxy_view))
        .route(
            "/galaxy_clusters/index/{galaxy}",
            get(clusters_index).post(clusters_index),
        )
        .route("/galaxy_clusters/view/{id}", get(cluster_view))
        .route(
            "/galaxies/attachCluster/{target_id}/{target_type}",
            post(attach_cluster),
        )
        .route(
            "/galaxies/attachCluster/{target_id}/{target_type}/{*options}",
            post(attach_cluster_with_options),
        )
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

/// The galaxy and cluster a `misp-galaxy:TYPE="VALUE"` tag names, if loaded here.
type Named = Option<(StoredGalaxy, StoredCluster)>;

/// Most distinct galaxy tags one event's JSON resolves into `Galaxy` blocks; further ones stay
/// plain tags, so that a flood of tags cannot make a render read the catalog without end.
pub const GALAXY_TAGS_PER_EVENT_MAX: usize = 256;

/// Adds MISP's `Galaxy` blocks to an event's MISP JSON (`{"Event": …}`), as PyMISP reads them
/// into `event.galaxies` and `attribute.galaxies`: for the event and each attribute, every
/// loaded galaxy whose clusters its tags name, with those clusters (`GalaxyCluster`). Tags of
/// clusters not loaded on this node stay plain tags.
pub fn show_galaxies(node: &crate::node::Node, event: &mut Value) -> Result<(), ApiError> {
    let mut named: std::collections::BTreeMap<String, Named> = Default::default();
    let mut lookup = |tag: &str| -> Result<Named, ApiError> {
        if !tag.starts_with("misp-galaxy:") {
            return Ok(None);
        }
        if let Some(found) = named.get(tag) {
            return Ok(found.clone());
        }
        if named.len() >= GALAXY_TAGS_PER_EVENT_MAX {
            return Ok(None);
        }
        let found = catalog::cluster_by_tag(&node.store, tag)?;
        named.insert(tag.to_string(), found.clone());
        Ok(found)
    };
    let mut blocks = |element: &mut Value| -> Result<(), ApiError> {
        let tags: Vec<String> = (element["Tag"].as_array().into_iter().flatten())
            .filter_map(|tag| tag["name"].as_str().map(String::from))
            .collect();
        let mut galaxies: Vec<(StoredGalaxy, Vec<Value>)> = Vec::new();
        for tag in tags {
            let Some((galaxy, cluster)) = lookup(&tag)? else {
                continue;
            };
            let json = cluster_json(&cluster, &galaxy);
            match galaxies.iter_mut().find(|(g, _)| g.id == galaxy.id) {
                Some((_, list)) => list.push(json),
                None => galaxies.push((galaxy, vec![json])),
            }
        }
        let blocks: Vec<Value> = galaxies
            .into_iter()
            .map(|(galaxy, clusters)| {
                let mut block = galaxy_json(&galaxy);
                block["GalaxyCluster"] = Value::Array(clusters);
                block
            })
            .collect();
        if let Some(element) = element.as_object_mut() {
            element.insert("Galaxy".into(), Value::Array(blocks));
        }
        Ok(())
    };
    let Some(fields) = event.get_mut("Event") else {
        return Ok(());
    };
    blocks(fields)?;
    for attribute in fields["Attribute"].as_array_mut().into_iter().flatten() {
        blocks(attribute)?;
    }
    for object in fields["Object"].as_array_mut().into_iter().flatten() {
        for attribute in object["Attribute"].as_array_mut().into_iter().flatten() {
            blocks(attribute)?;
        }
    }
    Ok(())
}

/// `GET /galaxies/index`.
pub async fn galaxies_index(Call { state, .. }: Call) -> Result<Json<Vec<Value>>, ApiError> {
    state
        .reply(|node| {
            let list: Vec<Value> = catalog::galaxies(&node.store)?
                .iter()
                .map(|stored| json!({ "Galaxy": galaxy_json(stored) }))
                .collect();
            Ok(list)
        })
        .await
}

/// `GET /galaxies/view/{id}` (id, uuid or type): the galaxy and its clusters.
pub async fn galaxy_view(
    Call { state, .. }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let stored = catalog::galaxy(&node.store, &id)?
                .ok_or_else(|| ApiError::not_found(INVALID_GALAXY))?;
            let clusters: Vec<Value> = catalog::clusters_of(&node.store, &stored)?
                .iter()
                .map(|cluster| cluster_json(cluster, &stored))
                .collect();
            Ok(json!({ "Galaxy": galaxy_json(&stored), "GalaxyCluster": clusters }))
        })
        .await
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
            attach_tag(node, &caller, &uuid, &cluster.cluster.tag_name(), local)
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
    Call { state, caller }: Call,
    Path((target_id, target_type)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    attach(state, caller, target_id, target_type, false, body).await
}

/// `POST /galaxies/attachCluster/{target_id}/{target_type}/local:1`.
pub async fn attach_cluster_with_options(
    Call { state, caller }: Call,
    Path((target_id, target_type, options)): Path<(String, String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let local = option_set(&options, "local");
    attach(state, caller, target_id, target_type, local, body).await
}

/// `POST /galaxy_clusters/index/{galaxy}` with `{"context", "searchall"}` (PyMISP
/// `search_galaxy_clusters`): the galaxy's clusters whose value, description or meta data
/// contain `searchall` (case-insensitive), as `{"GalaxyCluster": …}` items.
pub async fn clusters_index(
    Call { state, .. }: Call,
    Path(galaxy): Path<String>,
    body: JsonBody,
) -> Result<Json<Vec<Value>>, ApiError> {
    let search = text_field(&body.object("GalaxyCluster"), "searchall")
        .map(|text| text.trim().to_lowercase())
        .filter(|text| !text.is_empty());
    state
        .reply(move |node| {
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
        .await
}

/// `GET /galaxy_clusters/view/{id}` (id or uuid): one cluster with its galaxy.
pub async fn cluster_view(
    Call { state, .. }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let cluster = catalog::cluster(&node.store, &id)?
                .ok_or_else(|| ApiError::not_found(INVALID_CLUSTER))?;
            let galaxy = catalog::galaxy(&node.store, &cluster.galaxy_id.to_string())?
                .ok_or_else(|| ApiError::not_found(INVALID_CLUSTER))?;
            let mut json = cluster_json(&cluster, &galaxy);
            json["Galaxy"] = galaxy_json(&galaxy);
            Ok(json!({ "GalaxyCluster": json }))
        })
        .await
}
