//! Node signing keys and origin identities.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::LogError;

/// A node's ed25519 signing key. Every entry the node authors is signed with it, and its TLS
/// identity is derived from it.
pub struct NodeKey {
    /// The secret key; never leaves the node's key file.
    signing: SigningKey,
}

impl NodeKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The key from its 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte secret seed, for writing the key file.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key that names this node as an origin.
    pub fn origin(&self) -> OriginKey {
        OriginKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// The public key of an origin node: the identity an entry's author is known by.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OriginKey(pub [u8; 32]);

impl OriginKey {
    /// The key from bytes of an entry field.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, LogError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| LogError::Field {
            field: "origin_key",
            reason: format!("{} bytes, expected 32", bytes.len()),
        })?;
        Ok(Self(array))
    }

    /// The key parsed from 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Self::from_slice(&bytes).ok()
    }

    /// Verifies `signature` over `message` with strict ed25519 rules (weak keys and
    /// non-canonical signatures are refused).
    pub fn verify_strict(&self, message: &[u8], signature: &[u8]) -> Result<(), LogError> {
        self.verifier()?.verify(message, signature)
    }

    /// The decoded key, refused when it is not a point or is weak (of small order): decode
    /// once to check many signatures of one origin the way [`OriginKey::verify_strict`] does.
    pub fn verifier(&self) -> Result<StrictVerifier, LogError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| LogError::BadKey)?;
        if key.is_weak() {
            return Err(LogError::BadKey);
        }
        Ok(StrictVerifier { key })
    }
}

/// A decoded origin key that checks signatures with strict ed25519 rules: the one check
/// every signature of an entry passes, on ingest and in audits alike.
#[derive(Clone, Copy, Debug)]
pub struct StrictVerifier {
    /// The decoded public key, known not to be weak.
    key: VerifyingKey,
}

impl StrictVerifier {
    /// Verifies `signature` over `message`: `R` and the key must not be of small order, `s`
    /// must be canonical, and `R` must equal `s·B − k·A` exactly (cofactorless, so a torsion
    /// component in `R` is refused).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), LogError> {
        let signature =
            ed25519_dalek::Signature::from_slice(signature).map_err(|_| LogError::BadSignature)?;
        self.key
            .verify_strict(message, &signature)
            .map_err(|_| LogError::BadSignature)
    }
}

/// Text forms of a 32-byte public key type with a `from_hex` constructor: hex for `Display`
/// and serde, a short prefix for `Debug`.
macro_rules! hex_key_text {
    ($key:ident) => {
        impl std::fmt::Display for $key {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl std::fmt::Debug for $key {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($key), &hex::encode(self.0)[..16])
            }
        }

        impl serde::Serialize for $key {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_string())
            }
        }

        impl<'de> serde::Deserialize<'de> for $key {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                $key::from_hex(&text)
                    .ok_or_else(|| serde::de::Error::custom("expected a 64-hex-digit ed25519 key"))
            }
        }
    };
}
pub(crate) use hex_key_text;

hex_key_text!(OriginKey);
