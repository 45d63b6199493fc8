//! Loaded taxonomies and galaxies, kept as node-local state (never replicated: each node
//! loads the libraries its operator chooses). Keys in the store's local column family:
//!
//! - `taxonomy/<namespace>` → [`StoredTaxonomy`]; `taxonomy-rules` → the exclusivity rules
//!   of every loaded taxonomy (read on every tag attach, so kept small and apart);
//! - `galaxy/g/<id>` → [`StoredGalaxy`], `galaxy/c/<id>` → [`StoredCluster`],
//!   `galaxy/u/<cluster uuid>` → cluster id, `galaxy/t/<type>` → galaxy id.
//!
//! Numeric ids are MISP's: assigned on first load and kept when a directory is loaded again,
//! so ids a client has seen stay valid. Every stored value carries a format version.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::Path;

use super::catalog_dir;
use crate::interop::galaxy::{Cluster, Galaxy, GalaxyError};
use crate::interop::taxonomy::{self, ExclusiveRule, Taxonomy, TaxonomyError};
use crate::store::{Store, StoreError};

/// Format version of the stored values.
const FORMAT: u32 = 1;
/// Prefix of stored taxonomies.
const TAXONOMY_PREFIX: &str = "taxonomy/";
/// Key of the stored exclusivity rules.
const RULES_KEY: &[u8] = b"taxonomy-rules";
/// Prefix of stored galaxies.
const GALAXY_PREFIX: &str = "galaxy/g/";
/// Prefix of stored clusters.
const CLUSTER_PREFIX: &str = "galaxy/c/";
/// Prefix of the cluster uuid → id map.
const CLUSTER_UUID_PREFIX: &str = "galaxy/u/";
/// Prefix of the galaxy type → id map.
const GALAXY_TYPE_PREFIX: &str = "galaxy/t/";
/// Local-state key prefix of the cluster ids by tag name (`misp-galaxy:TYPE="VALUE"`).
const CLUSTER_TAG_PREFIX: &str = "galaxy/n/";
/// Pairs written per batch when storing clusters, to bound one write's size.
const CLUSTERS_PER_BATCH_MAX: usize = 2_000;

/// Why the catalog could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A taxonomy directory could not be loaded.
    #[error(transparent)]
    Taxonomy(#[from] TaxonomyError),
    /// A galaxy directory could not be loaded.
    #[error(transparent)]
    Galaxy(#[from] GalaxyError),
    /// A stored value does not decode.
    #[error("stored {0} does not decode; load the directory again")]
    Corrupt(String),
}

/// A loaded taxonomy with its local id and whether it is enabled.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredTaxonomy {
    /// Format version of the stored value (1).
    pub format: u32,
    /// Local id.
    pub id: u64,
    /// Enabled (MISP loads taxonomies disabled; exclusivity holds either way).
    pub enabled: bool,
    /// The taxonomy.
    pub taxonomy: Taxonomy,
}

/// A loaded galaxy with its local id and the ids of its clusters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredGalaxy {
    /// Format version.
    pub format: u32,
    /// Local id.
    pub id: u64,
    /// The galaxy.
    pub galaxy: Galaxy,
    /// Source of its clusters.
    pub source: String,
    /// Authors of its clusters.
    pub authors: Vec<String>,
    /// Version of its cluster collection.
    pub clusters_version: u64,
    /// Uuid of its cluster collection.
    pub collection_uuid: String,
    /// Ids of its clusters, in file order.
    pub cluster_ids: Vec<u64>,
}

/// A loaded cluster with its local id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredCluster {
    /// Format version.
    pub format: u32,
    /// Local id.
    pub id: u64,
    /// Id of its galaxy.
    pub galaxy_id: u64,
    /// The cluster.
    pub cluster: Cluster,
}

fn id_key(prefix: &str, id: u64) -> Vec<u8> {
    format!("{prefix}{id:012}").into_bytes()
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, CatalogError> {
    serde_json::from_slice(bytes).map_err(|_| CatalogError::Corrupt(what.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings, numbers and JSON values always serialise.
    serde_json::to_vec(value).expect("catalog values serialise")
}

/// Every loaded taxonomy, in namespace order.
pub fn taxonomies(store: &Store) -> Result<Vec<StoredTaxonomy>, CatalogError> {
    store
        .scan_local(TAXONOMY_PREFIX.as_bytes())?
        .iter()
        .map(|(_, bytes)| decode(bytes, "taxonomy"))
        .collect()
}

/// The taxonomy with local id or namespace `reference`.
pub fn taxonomy(store: &Store, reference: &str) -> Result<Option<StoredTaxonomy>, CatalogError> {
    if let Ok(id) = reference.parse::<u64>() {
        return Ok(taxonomies(store)?.into_iter().find(|t| t.id == id));
    }
    let key = format!("{TAXONOMY_PREFIX}{reference}");
    store
        .local(key.as_bytes())?
        .map(|bytes| decode(&bytes, "taxonomy"))
        .transpose()
}

/// Stores the taxonomies of `dir` (misp-taxonomies layout), keeping the ids and enabled flags
/// of namespaces already loaded; returns the taxonomies stored and their tag count.
pub fn load_taxonomies(store: &Store, dir: &Path) -> Result<(usize, usize), CatalogError> {
    let loaded = catalog_dir::taxonomies(dir)?;
    let existing = taxonomies(store)?;
    let mut next_id = existing.iter().map(|t| t.id).max().unwrap_or(0) + 1;
    let mut pairs = Vec::new();
    let mut tags = 0;
    for taxonomy in loaded {
        let previous = existing
            .iter()
            .find(|t| t.taxonomy.namespace == taxonomy.namespace);
        let (id, enabled) = match previous {
            Some(previous) => (previous.id, previous.enabled),
            None => {
                next_id += 1;
                (next_id - 1, false)
            }
        };
        tags += taxonomy.tags().len();
        let key = format!("{TAXONOMY_PREFIX}{}", taxonomy.namespace).into_bytes();
        let stored = StoredTaxonomy {
            format: FORMAT,
            id,
            enabled,
            taxonomy,
        };
        pairs.push((key, encode(&stored)));
    }
    let count = pairs.len();
    store.put_local(&pairs)?;
    let rules: Vec<(String, bool, Vec<String>)> = taxonomies(store)?
        .iter()
        .filter_map(|t| t.taxonomy.rule())
        .map(|rule| (rule.namespace, rule.whole, rule.predicates))
        .collect();
    store.put_local(&[(RULES_KEY.to_vec(), encode(&rules))])?;
    Ok((count, tags))
}

/// Enables or disables the taxonomy `reference` (id or namespace); `None` if unknown.
pub fn set_taxonomy_enabled(
    store: &Store,
    reference: &str,
    enabled: bool,
) -> Result<Option<StoredTaxonomy>, CatalogError> {
    let Some(mut stored) = taxonomy(store, reference)? else {
        return Ok(None);
    };
    stored.enabled = enabled;
    let key = format!("{TAXONOMY_PREFIX}{}", stored.taxonomy.namespace).into_bytes();
    store.put_local(&[(key, encode(&stored))])?;
    Ok(Some(stored))
}

/// The exclusivity rules in force: TLP always, and those of every loaded taxonomy.
pub fn exclusive_rules(store: &Store) -> Result<Vec<ExclusiveRule>, CatalogError> {
    let mut rules = taxonomy::builtin_rules();
    if let Some(bytes) = store.local(RULES_KEY)? {
        let loaded: Vec<(String, bool, Vec<String>)> = decode(&bytes, "taxonomy rules")?;
        rules.extend(
            loaded
                .into_iter()
                .map(|(namespace, whole, predicates)| ExclusiveRule {
                    namespace,
                    whole,
                    predicates,
                }),
        );
    }
    Ok(rules)
}

/// Every loaded galaxy, in id order.
pub fn galaxies(store: &Store) -> Result<Vec<StoredGalaxy>, CatalogError> {
    store
        .scan_local(GALAXY_PREFIX.as_bytes())?
        .iter()
        .map(|(_, bytes)| decode(bytes, "galaxy"))
        .collect()
}

/// The galaxy with local id, uuid or type `reference`.
pub fn galaxy(store: &Store, reference: &str) -> Result<Option<StoredGalaxy>, CatalogError> {
    if let Ok(id) = reference.parse::<u64>() {
        return store
            .local(&id_key(GALAXY_PREFIX, id))?
            .map(|bytes| decode(&bytes, "galaxy"))
            .transpose();
    }
    if let Some(bytes) = store.local(format!("{GALAXY_TYPE_PREFIX}{reference}").as_bytes())? {
        let id: u64 = decode(&bytes, "galaxy id")?;
        return galaxy(store, &id.to_string());
    }
    Ok(galaxies(store)?
        .into_iter()
        .find(|g| g.galaxy.uuid == reference))
}

/// The cluster with local id or uuid `reference`.
pub fn cluster(store: &Store, reference: &str) -> Result<Option<StoredCluster>, CatalogError> {
    let id = match reference.parse::<u64>() {
        Ok(id) => id,
        Err(_) => {
            let key = format!("{CLUSTER_UUID_PREFIX}{}", reference.to_lowercase());
            match store.local(key.as_bytes())? {
                Some(bytes) => decode(&bytes, "cluster id")?,
                None => return Ok(None),
            }
        }
    };
    store
        .local(&id_key(CLUSTER_PREFIX, id))?
        .map(|bytes| decode(&bytes, "cluster"))
        .transpose()
}

/// The cluster a galaxy tag (`misp-galaxy:TYPE="VALUE"`) names, with its galaxy: point reads
/// of the index written when the galaxies were loaded (galaxies loaded before it existed are
/// indexed by loading them again).
pub fn cluster_by_tag(
    store: &Store,
    tag: &str,
) -> Result<Option<(StoredGalaxy, StoredCluster)>, CatalogError> {
    let key = format!("{CLUSTER_TAG_PREFIX}{tag}");
    let Some(bytes) = store.local(key.as_bytes())? else {
        return Ok(None);
    };
    let id: u64 = decode(&bytes, "cluster id")?;
    let Some(bytes) = store.local(&id_key(CLUSTER_PREFIX, id))? else {
        return Ok(None);
    };
    let cluster: StoredCluster = decode(&bytes, "cluster")?;
    let galaxy = store
        .local(&id_key(GALAXY_PREFIX, cluster.galaxy_id))?
        .map(|bytes| decode::<StoredGalaxy>(&bytes, "galaxy"))
        .transpose()?;
    Ok(galaxy.map(|galaxy| (galaxy, cluster)))
}

/// The clusters of `galaxy`, in file order.
pub fn clusters_of(
    store: &Store,
    galaxy: &StoredGalaxy,
) -> Result<Vec<StoredCluster>, CatalogError> {
    let mut out = Vec::with_capacity(galaxy.cluster_ids.len());
    for id in &galaxy.cluster_ids {
        if let Some(bytes) = store.local(&id_key(CLUSTER_PREFIX, *id))? {
            out.push(decode(&bytes, "cluster")?);
        }
    }
    Ok(out)
}

/// Stores the galaxies of `dir` (misp-galaxy layout) with their clusters, keeping the ids of
/// galaxies (by type) and clusters (by uuid) already loaded; calls `progress` with the number
/// of clusters stored so far. Returns the galaxies and clusters stored.
pub fn load_galaxies(
    store: &Store,
    dir: &Path,
    progress: &dyn Fn(u64),
) -> Result<(usize, usize), CatalogError> {
    let loaded = catalog_dir::galaxies(dir)?;
    let mut next_galaxy = galaxies(store)?.iter().map(|g| g.id).max().unwrap_or(0) + 1;
    // Cluster keys are zero-padded ids, so the last key holds the largest id in use.
    let mut next_cluster = store
        .scan_local(CLUSTER_PREFIX.as_bytes())?
        .last()
        .and_then(|(key, _)| {
            std::str::from_utf8(&key[CLUSTER_PREFIX.len()..])
                .ok()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0)
        + 1;
    let mut cluster_total = 0;
    for loaded_galaxy in &loaded {
        let type_key = format!("{GALAXY_TYPE_PREFIX}{}", loaded_galaxy.galaxy.galaxy_type);
        let galaxy_id = match store.local(type_key.as_bytes())? {
            Some(bytes) => decode(&bytes, "galaxy id")?,
            None => {
                next_galaxy += 1;
                next_galaxy - 1
            }
        };
        let mut cluster_ids = Vec::with_capacity(loaded_galaxy.clusters.len());
        let mut pairs = Vec::new();
        for cluster in &loaded_galaxy.clusters {
            let uuid_key = format!("{CLUSTER_UUID_PREFIX}{}", cluster.uuid.to_lowercase());
            let id = match store.local(uuid_key.as_bytes())? {
                Some(bytes) if !cluster.uuid.is_empty() => decode(&bytes, "cluster id")?,
                _ => {
                    next_cluster += 1;
                    next_cluster - 1
                }
            };
            cluster_ids.push(id);
            let stored = StoredCluster {
                format: FORMAT,
                id,
                galaxy_id,
                cluster: cluster.clone(),
            };
            pairs.push((id_key(CLUSTER_PREFIX, id), encode(&stored)));
            let tag_key = format!("{CLUSTER_TAG_PREFIX}{}", cluster.tag_name());
            pairs.push((tag_key.into_bytes(), encode(&id)));
            if !cluster.uuid.is_empty() {
                pairs.push((uuid_key.into_bytes(), encode(&id)));
            }
            if pairs.len() >= CLUSTERS_PER_BATCH_MAX {
                store.put_local(&std::mem::take(&mut pairs))?;
                progress((cluster_total + cluster_ids.len()) as u64);
            }
        }
        cluster_total += cluster_ids.len();
        let stored = StoredGalaxy {
            format: FORMAT,
            id: galaxy_id,
            galaxy: loaded_galaxy.galaxy.clone(),
            source: loaded_galaxy.source.clone(),
            authors: loaded_galaxy.authors.clone(),
            clusters_version: loaded_galaxy.clusters_version,
            collection_uuid: loaded_galaxy.collection_uuid.clone(),
            cluster_ids,
        };
        pairs.push((id_key(GALAXY_PREFIX, galaxy_id), encode(&stored)));
        pairs.push((type_key.into_bytes(), encode(&galaxy_id)));
        store.put_local(&pairs)?;
        progress(cluster_total as u64);
    }
    Ok((loaded.len(), cluster_total))
}

/// Loads the directories named in the configuration's `[catalog]` section (relative to the
/// data directory); returns one line per directory loaded, for the operator.
pub fn load_configured(node: &crate::node::Node) -> Result<Vec<String>, CatalogError> {
    let base = node.store.dir().to_path_buf();
    let mut loaded = Vec::new();
    if let Some(dir) = &node.config.catalog.taxonomies_dir {
        let dir = base.join(dir);
        let (taxonomies, tags) = load_taxonomies(&node.store, &dir)?;
        loaded.push(format!(
            "loaded {taxonomies} taxonomies ({tags} tags) from {}",
            dir.display()
        ));
    }
    if let Some(dir) = &node.config.catalog.galaxies_dir {
        let dir = base.join(dir);
        let (galaxies, clusters) = load_galaxies(&node.store, &dir, &|_| {})?;
        loaded.push(format!(
            "loaded {galaxies} galaxies ({clusters} clusters) from {}",
            dir.display()
        ));
    }
    Ok(loaded)
}
