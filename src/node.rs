//! A node's data directory: identity (signing key, host organisation), configuration, users,
//! and the operations the CLI and servers run against its store.

mod tags;

pub use tags::DEFAULT_TAG_COLOUR;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use uuid::Uuid;

use crate::change::{self, Actor};
use crate::config::{self, Config, ConfigError};
use crate::log::identity::{Certificate, IdentityError, OrgKey, OrgPublicKey, Revocation};
use crate::log::{NodeKey, OriginKey};
use crate::model::{self, ModelError, Organisation};
use crate::proto::RecordKind;
use crate::store::{Appended, Store, StoreError};
use crate::view::read::{self, EventOptions, EventSummary};

/// File name of the node's signing key (hex seed, mode 0600).
pub const KEY_FILE: &str = "node.key";
/// File name of the organisation's org key (hex seed, mode 0600), beside the node key. It
/// certifies the org's node keys; once they are certified it can be moved offline.
pub const ORG_KEY_FILE: &str = "org.key";
/// File name of the admin user's API key (mode 0600).
pub const ADMIN_KEY_FILE: &str = "admin.key";
/// Length of API keys, as MISP's.
pub const API_KEY_CHARS: usize = 40;
/// Email of the admin user `init` creates.
pub const ADMIN_EMAIL: &str = "admin@admin.test";
/// Role id of site admins (MISP's numbering).
pub const ROLE_SITE_ADMIN: u8 = 1;
/// Meta key of the host organisation.
const META_ORG: &[u8] = b"host_org";

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
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A local user (node-local state, never replicated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login email.
    pub email: String,
    /// The user's organisation.
    pub org: Uuid,
    /// MISP role id (1 site admin … 6 read-only).
    pub role: u8,
    /// SHA-256 (hex) of the API key; the key itself is never stored.
    pub key_hash: String,
}

/// What `init` created.
#[derive(Debug)]
pub struct InitReport {
    /// The node's origin key.
    pub origin: OriginKey,
    /// The host organisation.
    pub org: Organisation,
    /// The organisation's org key, which certified the node.
    pub org_key: OrgPublicKey,
    /// The admin user's email.
    pub admin_email: String,
    /// The admin user's API key, shown once.
    pub admin_key: String,
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
}

/// Milliseconds since the Unix epoch, from the system's clock; a node reads its own clock
/// ([`Node::now_ms`]).
pub fn now_ms() -> i64 {
    crate::clock::Clock::now_ms(&crate::clock::SystemClock)
}

/// A new random API key of [`API_KEY_CHARS`] alphanumeric characters.
pub fn new_api_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..API_KEY_CHARS)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// SHA-256 hex of an API key, as stored.
pub fn api_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Writes `contents` to a new file readable only by its owner.
fn write_secret(path: &Path, contents: &str) -> Result<(), NodeError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_error(path))?;
    file.write_all(contents.as_bytes())
        .map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

fn read_key(dir: &Path) -> Result<NodeKey, NodeError> {
    match read_seed(&dir.join(KEY_FILE))? {
        Some(seed) => Ok(NodeKey::from_seed(&seed)),
        None => Err(NodeError::NotInitialised(dir.to_path_buf())),
    }
}

/// Reads an org key file (hex seed, readable only by its owner).
pub fn read_org_key(path: &Path) -> Result<OrgKey, NodeError> {
    match read_seed(path)? {
        Some(seed) => Ok(OrgKey::from_seed(&seed)),
        None => Err(NodeError::OrgKeyMissing(path.to_path_buf())),
    }
}

/// Writes `key` to a new org key file readable only by its owner.
pub fn write_org_key(path: &Path, key: &OrgKey) -> Result<(), NodeError> {
    write_secret(path, &format!("{}\n", hex::encode(key.seed())))
}

/// The 32-byte seed in the key file at `path`; `None` when there is no such file.
fn read_seed(path: &Path) -> Result<Option<[u8; 32]>, NodeError> {
    let path = path.to_path_buf();
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(&path)(error)),
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(NodeError::KeyPermissions { path, mode });
    }
    let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| NodeError::KeyFormat(path.clone()))?;
    Ok(Some(seed))
}

/// The origin key of the node in `dir`, from its key file.
pub fn origin_of(dir: &Path) -> Result<OriginKey, NodeError> {
    Ok(read_key(dir)?.origin())
}

impl Node {
    /// Creates a node in `dir`: signing key, configuration, host organisation (in the log) and
    /// an admin user whose API key is returned and written to `DIR/admin.key`.
    pub fn init(
        dir: &Path,
        org_name: &str,
        org_uuid: Option<Uuid>,
        force: bool,
    ) -> Result<InitReport, NodeError> {
        Node::init_with(dir, org_name, org_uuid, force, None)
    }

    /// [`Node::init`], certified by `org_key` when given (a further node of an organisation
    /// whose org key exists already; it is not copied into `dir`), else by a new org key
    /// written to `DIR/org.key`. The certificate is the first entry of the node's chain.
    pub fn init_with(
        dir: &Path,
        org_name: &str,
        org_uuid: Option<Uuid>,
        force: bool,
        org_key: Option<OrgKey>,
    ) -> Result<InitReport, NodeError> {
        if dir.join(KEY_FILE).exists() {
            if !force {
                return Err(NodeError::AlreadyInitialised(dir.to_path_buf()));
            }
            // Hold the lock while discarding, so a running node is never wiped under it.
            drop(Store::open(dir)?);
            for name in [KEY_FILE, ADMIN_KEY_FILE, config::FILE_NAME, ORG_KEY_FILE] {
                let path = dir.join(name);
                match std::fs::remove_file(&path) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io_error(&path)(error))
                    }
                    _ => {}
                }
            }
            let db = dir.join("db");
            std::fs::remove_dir_all(&db).map_err(io_error(&db))?;
        }
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let store = Store::open(dir)?;
        let key = NodeKey::generate();
        write_secret(
            &dir.join(KEY_FILE),
            &format!("{}\n", hex::encode(key.seed())),
        )?;
        let config_path = dir.join(config::FILE_NAME);
        std::fs::write(&config_path, Config::template(org_name)).map_err(io_error(&config_path))?;
        let org = Organisation {
            uuid: org_uuid.unwrap_or_else(Uuid::new_v4),
            name: org_name.to_string(),
        };
        let org_key = match org_key {
            Some(org_key) => org_key,
            None => {
                let org_key = OrgKey::generate();
                write_org_key(&dir.join(ORG_KEY_FILE), &org_key)?;
                org_key
            }
        };
        let certificate = Certificate::issue(
            &org_key,
            org.uuid,
            &org.name,
            key.origin(),
            store.now_ms(),
            None,
        )?;
        store.put_meta(
            META_ORG,
            &serde_json::to_vec(&(org.uuid, &org.name)).unwrap_or_default(),
        )?;
        let node = Node {
            store,
            key,
            org,
            config: Config::load(dir)?,
            certificate,
            peers_changed: tokio::sync::watch::Sender::new(0),
        };
        node.publish_own_certificate()?;
        let actor = node.system_actor();
        node.append(vec![change::directory_draft(
            vec![change::organisation_op(&node.org, true)],
            &actor,
        )])?;
        let admin_key = node.add_user(ADMIN_EMAIL, node.org.uuid, ROLE_SITE_ADMIN)?;
        write_secret(&dir.join(ADMIN_KEY_FILE), &format!("{admin_key}\n"))?;
        Ok(InitReport {
            origin: node.key.origin(),
            org: node.org.clone(),
            org_key: node.org_key(),
            admin_email: ADMIN_EMAIL.into(),
            admin_key,
        })
    }

    /// Opens the node in `dir`, on the system's clock.
    pub fn open(dir: &Path) -> Result<Node, NodeError> {
        Node::open_with_clock(dir, std::sync::Arc::new(crate::clock::SystemClock))
    }

    /// Opens the node in `dir`, reading the time from `clock`.
    pub fn open_with_clock(
        dir: &Path,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
    ) -> Result<Node, NodeError> {
        let key = read_key(dir)?;
        let config = Config::load(dir)?;
        let store = Store::open_with_clock(dir, clock)?;
        store.set_own_origin(key.origin());
        let (uuid, name): (Uuid, String) = store
            .meta(META_ORG)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| NodeError::NotInitialised(dir.to_path_buf()))?;
        let (certificate, upgraded) = match store.own_certificate()? {
            Some(certificate) => (certificate, false),
            None => {
                // A directory made before org keys: the org key is made now (or read, if the
                // operator put one there), and the node's certificate becomes its next entry.
                let path = dir.join(ORG_KEY_FILE);
                let org_key = match read_org_key(&path) {
                    Ok(org_key) => org_key,
                    Err(NodeError::OrgKeyMissing(_)) => {
                        let org_key = OrgKey::generate();
                        write_org_key(&path, &org_key)?;
                        org_key
                    }
                    Err(error) => return Err(error),
                };
                let certificate =
                    Certificate::issue(&org_key, uuid, &name, key.origin(), store.now_ms(), None)?;
                (certificate, true)
            }
        };
        let node = Node {
            store,
            key,
            org: Organisation { uuid, name },
            config,
            certificate,
            peers_changed: tokio::sync::watch::Sender::new(0),
        };
        if upgraded {
            node.publish_own_certificate()?;
            tracing::warn!(
                org_key = %node.org_key(),
                "this data directory had no org key: made {}, and the node's certificate is \
                 its next entry",
                dir.join(ORG_KEY_FILE).display()
            );
        }
        Ok(node)
    }

    /// Appends the node's certificate to its chain and records it as the node's own.
    fn publish_own_certificate(&self) -> Result<(), NodeError> {
        self.store.install_own_certificate(&self.certificate)?;
        let actor = self.system_actor();
        self.append(vec![change::directory_draft(
            vec![self.certificate.op()],
            &actor,
        )])?;
        Ok(())
    }

    /// The node's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The public org key of the node's organisation.
    pub fn org_key(&self) -> OrgPublicKey {
        self.certificate.org_key
    }

    /// The org key from `file`, or else from `DIR/org.key`; it must be the key that
    /// certified this node.
    pub fn load_org_key(&self, file: Option<&Path>) -> Result<OrgKey, NodeError> {
        let path = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.store.dir().join(ORG_KEY_FILE));
        let org_key = read_org_key(&path)?;
        if org_key.public() != self.org_key() {
            return Err(NodeError::WrongCertificate(format!(
                "{} holds org key {}, but this node is certified by {}",
                path.display(),
                org_key.public(),
                self.org_key()
            )));
        }
        Ok(org_key)
    }

    /// Certifies `node` (another node of this organisation) with `org_key`, valid until
    /// `expires_ms` when given.
    pub fn certify(
        &self,
        org_key: &OrgKey,
        node: OriginKey,
        expires_ms: Option<i64>,
    ) -> Result<Certificate, NodeError> {
        Ok(Certificate::issue(
            org_key,
            self.org.uuid,
            &self.org.name,
            node,
            self.now_ms(),
            expires_ms,
        )?)
    }

    /// Makes `certificate` (from `threatlog org certify`, renewing or replacing this node's)
    /// the node's own and appends it to its chain.
    pub fn install_certificate(&mut self, certificate: Certificate) -> Result<(), NodeError> {
        if certificate.node_key != self.origin() || certificate.org_uuid != self.org.uuid {
            return Err(NodeError::WrongCertificate(format!(
                "the certificate is for node {} of org {}, this node is {} of org {}",
                certificate.node_key,
                certificate.org_uuid,
                self.origin(),
                self.org.uuid
            )));
        }
        self.certificate = certificate;
        self.publish_own_certificate()
    }

    /// Publishes `revocation` (signed by this organisation's org key, see
    /// [`Revocation::issue`]) as this node's next entry, so that every peer that receives it
    /// refuses the revoked key's entries from its sequence on.
    pub fn publish_revocation(&self, revocation: &Revocation) -> Result<(), NodeError> {
        if revocation.org_uuid != self.org.uuid || revocation.org_key != self.org_key() {
            return Err(NodeError::WrongCertificate(format!(
                "the revocation is signed by org key {} of org {}, this node's organisation is {} with org key {}",
                revocation.org_key,
                revocation.org_uuid,
                self.org.uuid,
                self.org_key()
            )));
        }
        self.store.receive_revocation(revocation)?;
        let actor = self.system_actor();
        self.append(vec![change::directory_draft(vec![revocation.op()], &actor)])?;
        Ok(())
    }

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
    /// `audit.checkpoint_entries` entries have accumulated since the last one.
    pub fn append(&self, drafts: Vec<crate::log::Draft>) -> Result<Appended, NodeError> {
        let appended = self
            .store
            .append(&self.key, self.org.uuid, drafts, self.now_ms())?;
        self.checkpoint(false)?;
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

    /// Creates a user and returns its API key (shown once; only its hash is stored).
    pub fn add_user(&self, email: &str, org: Uuid, role: u8) -> Result<String, NodeError> {
        let key = new_api_key();
        let user = User {
            email: email.to_string(),
            org,
            role,
            key_hash: api_key_hash(&key),
        };
        let encoded = serde_json::to_vec(&user).unwrap_or_default();
        self.store.put_local(&[
            (format!("user/{email}").into_bytes(), encoded),
            (
                format!("apikey/{}", user.key_hash).into_bytes(),
                email.as_bytes().to_vec(),
            ),
        ])?;
        Ok(key)
    }

    /// The user an API key belongs to.
    pub fn user_by_key(&self, key: &str) -> Result<Option<User>, NodeError> {
        let Some(email) = self
            .store
            .local(format!("apikey/{}", api_key_hash(key)).as_bytes())?
        else {
            return Ok(None);
        };
        let user = self
            .store
            .local(&[b"user/".as_slice(), email.as_slice()].concat())?;
        Ok(user.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
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

impl Node {
    /// Stores `user` as it is (role or organisation changed), keeping its API key.
    pub fn put_user(&self, user: &User) -> Result<(), NodeError> {
        let encoded = serde_json::to_vec(user).unwrap_or_default();
        self.store
            .put_local(&[(format!("user/{}", user.email).into_bytes(), encoded)])?;
        Ok(())
    }

    /// Removes `user`: its record no longer decodes as a user and its API key no longer
    /// names an email, so the key stops authenticating at once.
    pub fn remove_user(&self, user: &User) -> Result<(), NodeError> {
        self.store.put_local(&[
            (
                format!("user/{}", user.email).into_bytes(),
                b"null".to_vec(),
            ),
            (format!("apikey/{}", user.key_hash).into_bytes(), Vec::new()),
        ])?;
        Ok(())
    }
}
