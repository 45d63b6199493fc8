//! MISP galaxies (the misp-galaxy layout: `galaxies/<name>.json` describing each galaxy and
//! `clusters/<name>.json` holding its clusters). Pure: the directory reader is
//! [`crate::interop::io::catalog_dir::galaxies`]. A cluster is attached to events and attributes as the tag
//! `misp-galaxy:<type>="<value>"` ([`Cluster::tag_name`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// Largest galaxy or cluster file read, in bytes (the MITRE ATT&CK clusters are ~3 MiB).
pub const GALAXY_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Most galaxies loaded from one directory.
pub const GALAXIES_MAX: usize = 1_000;
/// Most clusters in one galaxy.
pub const CLUSTERS_PER_GALAXY_MAX: usize = 100_000;

/// Why a galaxy directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GalaxyError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is over [`GALAXY_FILE_BYTES_MAX`].
    #[error("{path}: {bytes} bytes is over the galaxy file limit of {max_bytes} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// A file is not a galaxy or cluster collection.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A limit was exceeded.
    #[error("{path}: more than {max} {what}")]
    TooMany {
        /// The directory or file.
        path: PathBuf,
        /// What there were too many of.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The directory is not in the misp-galaxy layout.
    #[error(
        "{0}: no galaxies/*.json found (expected the misp-galaxy layout: galaxies/ and clusters/)"
    )]
    Empty(PathBuf),
}

/// A galaxy: a kind of cluster (threat actors, tools, sectors, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Galaxy {
    /// Uuid.
    pub uuid: String,
    /// Display name.
    pub name: String,
    /// Type, the middle of its tags (`misp-galaxy:<type>=…`).
    #[serde(rename = "type")]
    pub galaxy_type: String,
    /// Description.
    pub description: String,
    /// Version.
    pub version: u64,
    /// Icon name.
    pub icon: String,
    /// Namespace (`misp`, `mitre-attack`, …).
    pub namespace: String,
    /// Kill chain order, when the galaxy has one.
    pub kill_chain_order: Option<Value>,
}

/// One cluster of a galaxy: an actor, a tool, a sector, ….
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Uuid.
    pub uuid: String,
    /// The value (its name).
    pub value: String,
    /// Description.
    pub description: String,
    /// Meta data (synonyms, references, …), as published.
    pub meta: Value,
    /// The galaxy type it belongs to.
    pub galaxy_type: String,
}

impl Cluster {
    /// The tag that attaches the cluster: `misp-galaxy:<type>="<value>"`.
    pub fn tag_name(&self) -> String {
        format!("misp-galaxy:{}=\"{}\"", self.galaxy_type, self.value)
    }
}

/// A galaxy with its clusters and the collection's provenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadedGalaxy {
    /// The galaxy.
    pub galaxy: Galaxy,
    /// Source of the cluster collection.
    pub source: String,
    /// Authors of the cluster collection.
    pub authors: Vec<String>,
    /// Version of the cluster collection.
    pub clusters_version: u64,
    /// Uuid of the cluster collection.
    pub collection_uuid: String,
    /// Its clusters.
    pub clusters: Vec<Cluster>,
}

fn string(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Parses a galaxy description and its cluster collection.
pub fn parse(galaxy: &Value, clusters: &Value) -> Result<LoadedGalaxy, String> {
    let galaxy_type = string(galaxy, "type");
    if galaxy_type.is_empty() || galaxy_type.contains(['"', '=']) {
        return Err("the galaxy has no valid \"type\"".into());
    }
    let galaxy = Galaxy {
        uuid: string(galaxy, "uuid"),
        name: string(galaxy, "name"),
        galaxy_type: galaxy_type.clone(),
        description: string(galaxy, "description"),
        version: galaxy.get("version").and_then(Value::as_u64).unwrap_or(1),
        icon: string(galaxy, "icon"),
        namespace: string(galaxy, "namespace"),
        kill_chain_order: galaxy.get("kill_chain_order").cloned(),
    };
    let values = clusters
        .get("values")
        .and_then(Value::as_array)
        .ok_or("the cluster collection has no \"values\" list")?;
    if values.len() > CLUSTERS_PER_GALAXY_MAX {
        return Err(format!("more than {CLUSTERS_PER_GALAXY_MAX} clusters"));
    }
    let clusters_out = values
        .iter()
        .filter(|value| !string(value, "value").is_empty())
        .map(|value| Cluster {
            uuid: string(value, "uuid"),
            value: string(value, "value"),
            description: string(value, "description"),
            meta: value.get("meta").cloned().unwrap_or(Value::Null),
            galaxy_type: galaxy_type.clone(),
        })
        .collect();
    Ok(LoadedGalaxy {
        galaxy,
        source: string(clusters, "source"),
        authors: clusters
            .get("authors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        clusters_version: clusters.get("version").and_then(Value::as_u64).unwrap_or(1),
        collection_uuid: string(clusters, "uuid"),
        clusters: clusters_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clusters_become_tags() {
        let loaded = parse(
            &json!({"type": "threat-actor", "name": "Threat Actor", "uuid": "g"}),
            &json!({"values": [{"value": "APT1", "uuid": "c"}, {"uuid": "no value"}]}),
        )
        .unwrap();
        assert_eq!(loaded.clusters.len(), 1);
        assert_eq!(
            loaded.clusters[0].tag_name(),
            "misp-galaxy:threat-actor=\"APT1\""
        );
        assert!(parse(&json!({"name": "x"}), &json!({"values": []})).is_err());
    }
}
