//! Extra API keys of local users, MISP's `auth_keys`: a user may hold several keys besides the
//! one `add_user` gave them, each optionally read-only or expiring. Node-local state, never
//! replicated: `authkey/{id, 20 digits}` → the [`AuthKey`] (JSON), and `authkey_hash/{sha256
//! hex}` → the id (8, big-endian), so that a request's key is found with two point reads.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use uuid::Uuid;

use super::{api_key_hash, new_api_key, Node, NodeError, User};

/// Most extra keys one user may hold: enough for every script and integration a user runs,
/// few enough that listing a user's keys stays a small scan.
pub const AUTH_KEYS_PER_USER_MAX: usize = 64;
/// Longest comment on a key, in bytes.
pub const AUTH_KEY_COMMENT_BYTES_MAX: usize = 1024;
/// Characters of a key kept in the clear at each end (MISP's `authkey_start`, `authkey_end`),
/// so that a user can tell their keys apart.
const KEY_ENDS_CHARS: usize = 4;
/// Local key prefix of keys by id.
const AUTH_KEY_PREFIX: &str = "authkey/";
/// Local key prefix of the index from a key's hash to its id.
const AUTH_KEY_HASH_PREFIX: &str = "authkey_hash/";
/// Local key of the next key id.
const AUTH_KEY_NEXT_ID: &[u8] = b"authkey_next_id";
/// Serialises key creation: the read-increment-write of [`AUTH_KEY_NEXT_ID`] and the count
/// against [`AUTH_KEYS_PER_USER_MAX`] must not race within the process (the data-directory
/// lock keeps other processes out).
static AUTH_KEY_LOCK: Mutex<()> = Mutex::new(());

/// An extra API key of a local user (node-local state, never replicated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthKey {
    /// Local numeric id, from 1.
    pub id: u64,
    /// MISP's uuid of the key.
    pub uuid: Uuid,
    /// Email of the user the key authenticates as.
    pub email: String,
    /// SHA-256 (hex) of the key; the key itself is never stored.
    pub key_hash: String,
    /// The key's first characters, shown to tell keys apart.
    pub start: String,
    /// The key's last characters, shown to tell keys apart.
    pub end: String,
    /// When the key was created (seconds since the epoch).
    pub created: i64,
    /// When the key stops authenticating (seconds since the epoch); 0 is never.
    pub expiration: i64,
    /// The key may only read (GET, HEAD and searches).
    pub read_only: bool,
    /// The owner's note on what the key is for.
    pub comment: String,
}

impl AuthKey {
    /// Whether the key still authenticates at `now` (seconds since the epoch).
    pub fn is_live(&self, now: i64) -> bool {
        self.expiration == 0 || self.expiration > now
    }
}

fn record_key(id: u64) -> Vec<u8> {
    format!("{AUTH_KEY_PREFIX}{id:020}").into_bytes()
}

fn hash_key(hash: &str) -> Vec<u8> {
    format!("{AUTH_KEY_HASH_PREFIX}{hash}").into_bytes()
}

fn check_comment(comment: &str) -> Result<(), NodeError> {
    if comment.len() > AUTH_KEY_COMMENT_BYTES_MAX {
        return Err(NodeError::AuthKeyRefused(format!(
            "The comment is longer than {AUTH_KEY_COMMENT_BYTES_MAX} bytes."
        )));
    }
    Ok(())
}

impl Node {
    /// Every extra key, in id order.
    pub fn auth_keys(&self) -> Result<Vec<AuthKey>, NodeError> {
        Ok(self
            .store
            .scan_local(AUTH_KEY_PREFIX.as_bytes())?
            .into_iter()
            .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
            .collect())
    }

    /// The extra keys of the user with `email`, in id order.
    pub fn auth_keys_of(&self, email: &str) -> Result<Vec<AuthKey>, NodeError> {
        let mut keys = self.auth_keys()?;
        keys.retain(|key| key.email == email);
        Ok(keys)
    }

    /// The extra key with id `id`.
    pub fn auth_key(&self, id: u64) -> Result<Option<AuthKey>, NodeError> {
        let bytes = self.store.local(&record_key(id))?;
        Ok(bytes.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Creates an extra key for the user with `email` and returns it with the key itself
    /// (shown once; only its hash is stored). Refused over [`AUTH_KEYS_PER_USER_MAX`] keys or
    /// a comment over [`AUTH_KEY_COMMENT_BYTES_MAX`] bytes.
    pub fn add_auth_key(
        &self,
        email: &str,
        expiration: i64,
        read_only: bool,
        comment: &str,
    ) -> Result<(AuthKey, String), NodeError> {
        check_comment(comment)?;
        // A poisoned lock only means another creation panicked; the counter is re-read below.
        let _guard = AUTH_KEY_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if self.auth_keys_of(email)?.len() >= AUTH_KEYS_PER_USER_MAX {
            return Err(NodeError::AuthKeyRefused(format!(
                "A user may hold at most {AUTH_KEYS_PER_USER_MAX} authentication keys; delete one first."
            )));
        }
        let id = (self.store.local(AUTH_KEY_NEXT_ID)?.as_deref())
            .and_then(|bytes| Some(u64::from_be_bytes(bytes.try_into().ok()?)))
            .unwrap_or(1);
        let raw = new_api_key();
        let chars: Vec<char> = raw.chars().collect();
        let auth_key = AuthKey {
            id,
            uuid: Uuid::new_v4(),
            email: email.to_string(),
            key_hash: api_key_hash(&raw),
            start: chars[..KEY_ENDS_CHARS].iter().collect(),
            end: chars[chars.len() - KEY_ENDS_CHARS..].iter().collect(),
            created: self.now_seconds(),
            expiration,
            read_only,
            comment: comment.to_string(),
        };
        self.store.put_local(&[
            (AUTH_KEY_NEXT_ID.to_vec(), (id + 1).to_be_bytes().to_vec()),
            (hash_key(&auth_key.key_hash), id.to_be_bytes().to_vec()),
            (
                record_key(id),
                serde_json::to_vec(&auth_key).unwrap_or_default(),
            ),
        ])?;
        Ok((auth_key, raw))
    }

    /// Stores `key` as it is (comment, expiration or read-only changed); its hash, owner and
    /// id stay those it was created with.
    pub fn put_auth_key(&self, key: &AuthKey) -> Result<(), NodeError> {
        check_comment(&key.comment)?;
        let encoded = serde_json::to_vec(key).unwrap_or_default();
        self.store.put_local(&[(record_key(key.id), encoded)])?;
        Ok(())
    }

    /// Removes `keys`: they stop authenticating at once.
    pub fn remove_auth_keys(&self, keys: &[AuthKey]) -> Result<(), NodeError> {
        let names: Vec<Vec<u8>> = keys
            .iter()
            .flat_map(|key| [hash_key(&key.key_hash), record_key(key.id)])
            .collect();
        self.store.delete_local(&names)?;
        Ok(())
    }

    /// The user an extra key authenticates as, with the key: only while the key has not
    /// expired and its user still exists.
    pub fn user_by_auth_key(&self, raw: &str) -> Result<Option<(User, AuthKey)>, NodeError> {
        let hash = api_key_hash(raw);
        let Some(id) = self.store.local(&hash_key(&hash))? else {
            return Ok(None);
        };
        let Some(id) = <[u8; 8]>::try_from(id.as_slice())
            .ok()
            .map(u64::from_be_bytes)
        else {
            return Ok(None);
        };
        let Some(key) = self.auth_key(id)? else {
            return Ok(None);
        };
        if key.key_hash != hash || !key.is_live(self.now_seconds()) {
            return Ok(None);
        }
        let user =
            (self.stored_user(key.email.as_bytes())?).filter(|user: &User| user.email == key.email);
        Ok(user.map(|user| (user, key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(expiration: i64) -> AuthKey {
        AuthKey {
            id: 1,
            uuid: Uuid::nil(),
            email: "a@test.example".into(),
            key_hash: String::new(),
            start: "abcd".into(),
            end: "wxyz".into(),
            created: 100,
            expiration,
            read_only: false,
            comment: String::new(),
        }
    }

    #[test]
    fn keys_expire_at_their_expiration_and_never_without_one() {
        assert!(key(0).is_live(i64::MAX));
        assert!(key(200).is_live(199));
        assert!(!key(200).is_live(200));
        assert!(!key(200).is_live(201));
    }

    #[test]
    fn records_sort_by_id() {
        assert!(record_key(9) < record_key(10));
        assert_eq!(record_key(3), b"authkey/00000000000000000003".to_vec());
        assert!(check_comment(&"x".repeat(AUTH_KEY_COMMENT_BYTES_MAX)).is_ok());
        assert!(check_comment(&"x".repeat(AUTH_KEY_COMMENT_BYTES_MAX + 1)).is_err());
    }
}
