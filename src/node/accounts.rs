//! Organisations and users of a node: the directory's organisations (log records) and the
//! node-local users with their API keys (never replicated). The CLI's `threatlog org …` and
//! `threatlog user …` and the API's caller lookup and administration run these.

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use uuid::Uuid;

use super::{Node, NodeError};
use crate::change;
use crate::model::Organisation;
use crate::proto::RecordKind;
use crate::view::{read, Table, ViewRead};

/// Length of API keys, as MISP's.
pub const API_KEY_CHARS: usize = 40;
/// Local key prefix of user ids: `user_id/EMAIL` → id (8, big-endian).
const USER_ID_PREFIX: &str = "user_id/";
/// Local key of the next user id.
const USER_NEXT_ID: &[u8] = b"user_next_id";
/// Serialises user id assignment: the read-increment-write of [`USER_NEXT_ID`] must not race
/// within the process (the data-directory lock keeps other processes out).
static USER_ID_LOCK: Mutex<()> = Mutex::new(());

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

/// What a user may say about themselves (MISP's `users/edit`), and whether the user is
/// disabled (a disabled user's keys stop authenticating). Node-local, stored apart from the
/// [`User`] under `user_profile/{email}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// Disabled: no key of the user authenticates.
    pub disabled: bool,
    /// Wants an email when an event is published (MISP's `autoalert`).
    pub autoalert: bool,
    /// Accepts contact requests about events (MISP's `contactalert`).
    pub contactalert: bool,
    /// The user's PGP public key, armoured.
    pub gpgkey: String,
    /// The user's S/MIME certificate, PEM.
    pub certif_public: String,
    /// First sid of the user's IDS rule exports (MISP's `nids_sid`).
    pub nids_sid: u64,
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

/// An organisation known to the node, with whether it is local (has users here) or remote.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgEntry {
    /// Uuid and name.
    pub org: Organisation,
    /// Registered as local to this node.
    pub local: bool,
    /// Local numeric id.
    pub id: u64,
}

fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

impl Node {
    /// Every organisation in the directory, in uuid order.
    pub fn organisations(&self) -> Result<Vec<OrgEntry>, NodeError> {
        let views = self.store.views();
        let prefix = [RecordKind::Organisation as u8];
        let mut out = Vec::new();
        for (key, _) in views
            .scan(Table::Records, &prefix)
            .map_err(crate::store::StoreError::from)?
        {
            if let Ok(uuid) = Uuid::from_slice(&key[1..]) {
                if let Some(entry) = self.organisation(&uuid)? {
                    out.push(entry);
                }
            }
        }
        Ok(out)
    }

    /// The organisation `uuid`, if the directory holds it.
    pub fn organisation(&self, uuid: &Uuid) -> Result<Option<OrgEntry>, NodeError> {
        let record = read::record(
            &self.store.views(),
            RecordKind::Organisation,
            uuid.as_bytes(),
        )
        .map_err(crate::store::StoreError::from)?;
        Ok(record.filter(|r| r.is_live()).map(|record| OrgEntry {
            org: Organisation {
                uuid: *uuid,
                name: record.str_field("name").unwrap_or_default().to_string(),
            },
            local: record
                .field("local")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            id: self
                .store
                .local_id(RecordKind::Organisation, uuid.as_bytes())
                .unwrap_or(0),
        }))
    }

    /// The organisation named by `text`: a uuid, a local id, or a name (case-insensitive).
    pub fn find_organisation(&self, text: &str) -> Result<Option<OrgEntry>, NodeError> {
        if let Ok(uuid) = Uuid::parse_str(text.trim()) {
            return self.organisation(&uuid);
        }
        let all = self.organisations()?;
        let by_id = text.trim().parse::<u64>().ok();
        Ok(all.into_iter().find(|entry| {
            Some(entry.id) == by_id || entry.org.name.eq_ignore_ascii_case(text.trim())
        }))
    }

    /// Records an organisation in the directory (a log entry); `local` registers it as one
    /// whose users this node hosts.
    pub fn add_organisation(&self, org: &Organisation, local: bool) -> Result<(), NodeError> {
        let actor = self.system_actor();
        self.append(vec![change::directory_draft(
            vec![change::organisation_op(org, local)],
            &actor,
        )])?;
        Ok(())
    }

    /// Every local user with their id, in email order.
    pub fn users(&self) -> Result<Vec<(u64, User)>, NodeError> {
        let mut out = Vec::new();
        for (_, bytes) in self.store.scan_local(b"user/")? {
            if let Ok(user) = serde_json::from_slice::<User>(&bytes) {
                out.push((self.user_id(&user.email)?, user));
            }
        }
        Ok(out)
    }

    /// The local numeric id of user `email`, assigned on first use.
    pub fn user_id(&self, email: &str) -> Result<u64, NodeError> {
        let key = format!("{USER_ID_PREFIX}{email}").into_bytes();
        if let Some(id) = self.store.local(&key)?.as_deref().and_then(decode_u64) {
            return Ok(id);
        }
        // A poisoned lock only means another assignment panicked; the counter is re-read below.
        let _guard = USER_ID_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = self.store.local(&key)?.as_deref().and_then(decode_u64) {
            return Ok(id);
        }
        let id = self
            .store
            .local(USER_NEXT_ID)?
            .as_deref()
            .and_then(decode_u64)
            .unwrap_or(1);
        self.store.put_local(&[
            (key, id.to_be_bytes().to_vec()),
            (USER_NEXT_ID.to_vec(), (id + 1).to_be_bytes().to_vec()),
        ])?;
        Ok(id)
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
        self.stored_user(&email)
    }

    /// The stored user with email `email` (as bytes), if any (a removed one is none).
    pub(crate) fn stored_user(&self, email: &[u8]) -> Result<Option<User>, NodeError> {
        let user = self.store.local(&[b"user/".as_slice(), email].concat())?;
        Ok(user.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Stores `user` as it is (role or organisation changed), keeping its API key.
    pub fn put_user(&self, user: &User) -> Result<(), NodeError> {
        let encoded = serde_json::to_vec(user).unwrap_or_default();
        self.store
            .put_local(&[(format!("user/{}", user.email).into_bytes(), encoded)])?;
        Ok(())
    }

    /// Removes `user`: its record no longer decodes as a user and its API key no longer
    /// names an email, so the key stops authenticating at once. Its extra keys go first, so
    /// that a user created later with the same email does not inherit them.
    pub fn remove_user(&self, user: &User) -> Result<(), NodeError> {
        self.remove_auth_keys(&self.auth_keys_of(&user.email)?)?;
        self.store.put_local(&[
            (
                format!("user/{}", user.email).into_bytes(),
                b"null".to_vec(),
            ),
            (format!("apikey/{}", user.key_hash).into_bytes(), Vec::new()),
            (
                format!("user_profile/{}", user.email).into_bytes(),
                Vec::new(),
            ),
        ])?;
        Ok(())
    }

    /// The profile of user `email` (the default when none was stored).
    pub fn user_profile(&self, email: &str) -> Result<Profile, NodeError> {
        let stored = self
            .store
            .local(format!("user_profile/{email}").as_bytes())?;
        Ok(stored
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default())
    }

    /// Stores the profile of user `email`.
    pub fn put_user_profile(&self, email: &str, profile: &Profile) -> Result<(), NodeError> {
        let encoded = serde_json::to_vec(profile).unwrap_or_default();
        self.store
            .put_local(&[(format!("user_profile/{email}").into_bytes(), encoded)])?;
        Ok(())
    }
}
