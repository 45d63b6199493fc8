//! A node's data directory: identity (signing key, host organisation), configuration, users,
//! and the operations the CLI and servers run against its store.
//!
//! Files: [`identity`] (data directory, keys, `init` and `open`, certificates), [`accounts`]
//! (organisations and users), [`auth_keys`] (users' extra API keys, MISP's `auth_keys`),
//! [`tags`] (tag definitions). The background tasks `serve` runs are started by
//! [`crate::run`].

mod accounts;
mod auth_keys;
mod identity;
mod tags;

pub use accounts::{api_key_hash, new_api_key, OrgEntry, Profile, User, API_KEY_CHARS};
pub use auth_keys::{AuthKey, AUTH_KEYS_PER_USER_MAX, AUTH_KEY_COMMENT_BYTES_MAX};
pub use identity::{
    origin_of, read_org_key, write_org_key, InitReport, ADMIN_EMAIL, ADMIN_KEY_FILE, KEY_FILE,
    ORG_KEY_FILE,
};
pub use tags::DEFAULT_TAG_COLOUR;

use std::path::{Path, PathBuf};
use uuid::Uuid;

use crate::change::{self, Actor};
use crate::config::{Config, ConfigError};
use crate::log::identity::{Certificate, IdentityError};
use crate::log::{NodeKey, OriginKey};
use crate::model::{self, ModelError, Organisation};
use crate::proto::RecordKind;
use crate::store::{Appended, Store, StoreError};
use crate::turns::Turns;
use crate::view::read::{self, EventOptions, EventSummary};

/// Role id of site admins (MISP's numbering).
pub const ROLE_SITE_ADMIN: u8 = 1;

/// Node-level failures.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The directory has no node yet.
    #[error("{0} is not an initialised threatlog data directory; run `threatlog init --org-name NAME` first")]
    NotInitialised(PathBuf),
    /// `init` on an initialised directory without `--force`.
    #[error(
        "{0} is already initialised; pass --force to discard its key, log and views and start over"
    )]
    AlreadyInitialised(PathBuf),
    /// The key file is readable by others.
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file does not hold a key.
    #[error("{0} does not hold a 64-hex-digit ed25519 seed")]
    KeyFormat(PathBuf),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An import file is over the configured limit.
    #[error("{bytes} bytes is over the import limit of {max_bytes} bytes (limits.import_file_bytes_max)")]
    TooLarge {
        /// The file size.
        bytes: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// The input is not JSON.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// The input is JSON but not valid MISP data.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A certificate, revocation or roster could not be issued or was refused.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// An operation needs the org key, and it is not in the data directory.
    #[error("{0} is missing: this needs the organisation's org key (pass --org-key FILE where it is kept)")]
    OrgKeyMissing(PathBuf),
    /// A certificate for another node or organisation.
    #[error("{0}")]
    WrongCertificate(String),
    /// An extra API key over a limit (keys per user, comment length).
    #[error("{0}")]
    AuthKeyRefused(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What an import stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Events.
    pub events: usize,
    /// Attributes, including those in objects.
    pub attributes: usize,
    /// Objects.
    pub objects: usize,
    /// Log entries appended.
    pub entries: usize,
}

impl std::ops::AddAssign for ImportCounts {
    fn add_assign(&mut self, other: Self) {
        self.events += other.events;
        self.attributes += other.attributes;
        self.objects += other.objects;
        self.entries += other.entries;
    }
}

/// An open node: store, signing key, host organisation, configuration.
pub struct Node {
    /// The database.
    pub store: Store,
    /// The node's signing key.
    key: NodeKey,
    /// The organisation that runs the node.
    pub org: Organisation,
    /// The configuration.
    pub config: Config,
    /// The node's certificate, signed by its org key (SPEC §4.1).
    certificate: Certificate,
    /// Bumped whenever peers are paired, changed or removed, so the sync engine reloads.
    pub peers_changed: tokio::sync::watch::Sender<u64>,
    /// Fair turns at the node's work, shared by REST requests and peers' sync exchanges
    /// (`api.workers_max` at once).
    pub turns: Turns,
}

impl Node {
    /// The node's signing key, for its TLS identity.
    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    /// Tells the sync engine that peers changed.
    pub fn notify_peers_changed(&self) {
        self.peers_changed
            .send_modify(|generation| *generation += 1);
    }

    /// The node's origin key.
    pub fn origin(&self) -> OriginKey {
        self.key.origin()
    }

    /// The actor for changes the node makes itself (CLI imports, initialisation).
    pub fn system_actor(&self) -> Actor {
        Actor {
            org: self.org.uuid,
            user: "cli".into(),
        }
    }

    /// Appends drafts as this node's entries, atomically; signs a checkpoint when
    /// `audit.checkpoint_entries` entries have accumulated since the last one. The append is
    /// durable once this returns `Ok`; a checkpoint that cannot be signed then is logged and
    /// signed later, by the checkpoint timer or the next append, so that a client never
    /// retries a change that happened.
    pub fn append(&self, drafts: Vec<crate::log::Draft>) -> Result<Appended, NodeError> {
        let appended = self
            .store
            .append(&self.key, self.org.uuid, drafts, self.now_ms())?;
        if let Err(error) = self.checkpoint(false) {
            tracing::warn!("the append is stored; its checkpoint is signed later: {error}");
        }
        Ok(appended)
    }

    /// Signs a checkpoint of the node's own log when one is due (`force`: whenever the log
    /// has grown since the last). Returns the new (size, note), if any.
    pub fn checkpoint(&self, force: bool) -> Result<Option<(u64, String)>, NodeError> {
        let every = if force {
            1
        } else {
            self.config.audit.checkpoint_entries
        };
        if !self.store.checkpoint_due(&self.origin(), every)? {
            return Ok(None);
        }
        Ok(self.store.issue_checkpoint(&self.key)?)
    }

    /// The time now, from the node's clock (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.store.now_ms()
    }

    /// The time now in whole seconds since the epoch, MISP's timestamp unit.
    pub fn now_seconds(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Cosigns a peer's checkpoint note after checking it against what the node holds (see
    /// [`Store::cosign_checkpoint`]); returns the cosignature line.
    pub fn cosign(&self, note: &str) -> Result<String, crate::store::AcceptError> {
        let timestamp = u64::try_from(self.now_ms() / 1000).unwrap_or(0);
        self.store.cosign_checkpoint(&self.key, note, timestamp)
    }

    /// Sets `fields` of the directory record `key` of `kind` (an organisation, sharing group
    /// or tag definition) on behalf of `actor`.
    pub fn set_directory_record(
        &self,
        kind: RecordKind,
        key: &[u8],
        fields: &serde_json::Map<String, serde_json::Value>,
        actor: &Actor,
    ) -> Result<Appended, NodeError> {
        let op = change::record_op(kind, key, None, fields);
        self.append(vec![change::directory_draft(vec![op], actor)])
    }

    /// Imports a MISP JSON file with [`Node::import_document`], refusing files over the
    /// configured size before reading them.
    pub fn import_file(&self, path: &Path) -> Result<ImportCounts, NodeError> {
        let bytes = std::fs::metadata(path).map_err(io_error(path))?.len();
        self.check_import_size(bytes)?;
        self.import_document(&std::fs::read(path).map_err(io_error(path))?)
    }

    fn check_import_size(&self, bytes: u64) -> Result<(), NodeError> {
        let max_bytes = self.config.limits.import_file_bytes_max;
        if bytes > max_bytes {
            return Err(NodeError::TooLarge { bytes, max_bytes });
        }
        Ok(())
    }

    /// Imports a MISP JSON document (one event, a list, or `{"response": […]}`) as this node's
    /// entries, all or nothing. Events without `Orgc` get the host organisation as creator.
    pub fn import_document(&self, bytes: &[u8]) -> Result<ImportCounts, NodeError> {
        self.check_import_size(bytes.len() as u64)?;
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|error| NodeError::Json(error.to_string()))?;
        let events = model::parse_events_document(&value)?;
        let actor = self.system_actor();
        let mut counts = ImportCounts::default();
        let mut drafts = Vec::new();
        for mut event in events {
            if event.orgc.is_none() {
                event.orgc = Some(self.org.clone());
            }
            counts.events += 1;
            counts.objects += event.objects.len();
            counts.attributes += event.attributes.len()
                + event
                    .objects
                    .iter()
                    .map(|o| o.attributes.len())
                    .sum::<usize>();
            drafts.extend(change::event_drafts(&event, &actor));
        }
        counts.entries = drafts.len();
        self.append(drafts)?;
        Ok(counts)
    }

    /// Summaries of every event.
    pub fn events(&self) -> Result<Vec<EventSummary>, NodeError> {
        Ok(read::events(&self.store.views()).map_err(StoreError::from)?)
    }

    /// The MISP JSON of an event.
    pub fn event_json(&self, uuid: &Uuid) -> Result<Option<serde_json::Value>, NodeError> {
        let ids = |kind: RecordKind, key: &[u8]| self.store.local_id(kind, key);
        let options = EventOptions {
            correlation_max: self.config.views.correlation_max,
            ..EventOptions::default()
        };
        let mut event =
            read::event(&self.store.views(), uuid, &ids, options).map_err(StoreError::from)?;
        if let Some(event) = &mut event {
            self.show_tag_definitions(event)?;
        }
        Ok(event)
    }
}
