//! The CLI's imports on an open node: freetext into an event, STIX 2.1 bundles as events. The
//! parsing is pure ([`super::freetext`], [`super::stix_import`]); this file only reads the
//! node and appends, acting as the node itself (the `cli` user of the host organisation).

use serde_json::{json, Map};
use std::path::Path;
use uuid::Uuid;

use super::freetext::{self, Find, FreetextError};
use crate::change;
use crate::model::ModelError;
use crate::node::{ImportCounts, Node, NodeError};
use crate::policy::visibility::record_visibility;
use crate::proto::RecordKind;
use crate::store::StoreError;
use crate::view::{read, Record};

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The input file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The input file is larger than the import limit.
    #[error("{path}: {bytes} bytes is over the import limit of {max_bytes} bytes")]
    TooLarge {
        /// The file.
        path: std::path::PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// The text is not UTF-8.
    #[error("{0}: the file is not UTF-8 text")]
    NotText(std::path::PathBuf),
    /// The event does not exist (or was deleted).
    #[error("no event {0} on this node; list them with `threatlog event list`")]
    NoEvent(Uuid),
    /// The event belongs to another organisation; only its owner may add to it.
    #[error("event {event} belongs to organisation {owner}; only its owner may add attributes")]
    NotOwner {
        /// The event.
        event: Uuid,
        /// The owning organisation.
        owner: String,
    },
    /// The freetext could not be searched.
    #[error(transparent)]
    Freetext(#[from] FreetextError),
    /// A find was refused by the data model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The STIX bundle could not be converted.
    #[error(transparent)]
    Stix(#[from] super::stix_import::StixError),
    /// The node refused the write.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a freetext import did.
#[derive(Debug)]
pub struct FreetextImport {
    /// Every find, new or not.
    pub finds: Vec<Find>,
    /// Attributes added.
    pub added: usize,
    /// Finds left out because the event already has them.
    pub duplicates: usize,
}

/// Reads `path` as text, refusing files over the node's import limit before reading them.
pub fn read_input(node: &Node, path: &Path) -> Result<Vec<u8>, IntakeError> {
    let read_error = |source| IntakeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::metadata(path).map_err(read_error)?.len();
    let max_bytes = node.config.limits.import_file_bytes_max;
    if bytes > max_bytes {
        return Err(IntakeError::TooLarge {
            path: path.to_path_buf(),
            bytes,
            max_bytes,
        });
    }
    std::fs::read(path).map_err(read_error)
}

/// The live record of event `uuid`.
fn event_record(node: &Node, uuid: &Uuid) -> Result<Record, IntakeError> {
    read::record(&node.store.views(), RecordKind::Event, uuid.as_bytes())
        .map_err(StoreError::from)?
        .filter(|record| record.is_live())
        .ok_or(IntakeError::NoEvent(*uuid))
}

/// Adds the indicators found in `text` to event `uuid` as attributes (one atomic append),
/// leaving out those the event already has; `distribution` 0–5 (inherit when `None`).
pub fn import_freetext(
    node: &Node,
    uuid: &Uuid,
    text: &str,
    distribution: Option<u8>,
) -> Result<FreetextImport, IntakeError> {
    let record = event_record(node, uuid)?;
    let event = node.event_json(uuid)?.ok_or(IntakeError::NoEvent(*uuid))?;
    if let Some((owner, _)) = record
        .owner
        .as_ref()
        .filter(|(owner, _)| *owner != node.org.uuid)
    {
        return Err(IntakeError::NotOwner {
            event: *uuid,
            owner: owner.to_string(),
        });
    }
    let finds = freetext::extract(text)?;
    let now = node.now_ms() / 1000;
    let (attributes, duplicates) = freetext::new_attributes(&finds, &event, distribution, now)?;
    if !attributes.is_empty() {
        let mut touch = Map::new();
        touch.insert("published".into(), json!(false));
        touch.insert("timestamp".into(), json!(now.to_string()));
        let extra = vec![change::record_op(
            RecordKind::Event,
            uuid.as_bytes(),
            None,
            &touch,
        )];
        let drafts = change::attribute_drafts(
            *uuid,
            record_visibility(&record),
            &attributes,
            extra,
            &node.system_actor(),
        );
        node.append(drafts)?;
    }
    Ok(FreetextImport {
        added: attributes.len(),
        finds,
        duplicates,
    })
}

/// Imports a converted STIX 2.1 bundle ([`super::stix_import::convert`]) as one event of
/// this node; returns the event's uuid and what was stored.
pub fn import_stix(
    node: &Node,
    converted: &super::stix_import::StixEvent,
) -> Result<(Uuid, ImportCounts), IntakeError> {
    let uuid = converted
        .event
        .pointer("/Event/uuid")
        .and_then(|value| value.as_str())
        .and_then(|text| Uuid::parse_str(text).ok())
        .unwrap_or_default();
    // A JSON value always serialises.
    let document = serde_json::to_vec(&converted.event).expect("JSON serialises");
    let counts = node.import_document(&document)?;
    Ok((uuid, counts))
}
