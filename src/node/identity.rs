//! A node's data directory and identity: the signing key and org key files, `init` and
//! `open`, the node's certificate (SPEC §4.1), revocations and rosters.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use uuid::Uuid;

use super::{io_error, Node, NodeError, ROLE_SITE_ADMIN};
use crate::change;
use crate::config::{self, Config};
use crate::log::identity::{Certificate, OrgKey, OrgPublicKey, Revocation};
use crate::log::{NodeKey, OriginKey};
use crate::model::Organisation;
use crate::store::Store;
use crate::turns::Turns;

/// File name of the node's signing key (hex seed, mode 0600).
pub const KEY_FILE: &str = "node.key";
/// File name of the organisation's org key (hex seed, mode 0600), beside the node key. It
/// certifies the org's node keys; once they are certified it can be moved offline.
pub const ORG_KEY_FILE: &str = "org.key";
/// File name of the admin user's API key (mode 0600).
pub const ADMIN_KEY_FILE: &str = "admin.key";
/// Email of the admin user `init` creates.
pub const ADMIN_EMAIL: &str = "admin@admin.test";
/// Meta key of the host organisation.
const META_ORG: &[u8] = b"host_org";

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
        let config = Config::load(dir)?;
        let node = Node {
            store,
            key,
            org,
            turns: Turns::new(config.api.workers_max),
            config,
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
            turns: Turns::new(config.api.workers_max),
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
}
