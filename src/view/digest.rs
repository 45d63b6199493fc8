//! The view digest: SHA-256 over a canonical traversal of every view table.

use sha2::{Digest, Sha256};

use super::{KvError, Table};

/// A view digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewDigest(pub [u8; 32]);

impl std::fmt::Display for ViewDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Hashes every table in [`Table::ALL`] order; within a table, pairs in key order, each as
/// length-prefixed key and value. `pairs(table, visit)` must visit a table's pairs in key order.
pub fn digest<F>(mut pairs: F) -> Result<ViewDigest, KvError>
where
    F: FnMut(Table, &mut dyn FnMut(&[u8], &[u8])) -> Result<(), KvError>,
{
    let mut hasher = Sha256::new();
    for table in Table::ALL {
        hasher.update(table.name().as_bytes());
        hasher.update([0u8]);
        pairs(table, &mut |key, value| {
            hasher.update((key.len() as u64).to_be_bytes());
            hasher.update(key);
            hasher.update((value.len() as u64).to_be_bytes());
            hasher.update(value);
        })?;
    }
    Ok(ViewDigest(hasher.finalize().into()))
}
