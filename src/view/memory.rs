//! Views held in memory: for offline replays (verify, audit) and for tests.

use std::collections::BTreeMap;

use super::{KeyValue, KvError, Table, ViewRead, ViewWrite};

/// Every view table in one ordered map.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryViews {
    /// (table, key) → value.
    map: BTreeMap<(Table, Vec<u8>), Vec<u8>>,
}

impl MemoryViews {
    /// Empty views.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every pair of `table`, in key order.
    pub fn iter(&self, table: Table) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.map
            .range((table, Vec::new())..)
            .take_while(move |((t, _), _)| *t == table)
            .map(|((_, key), value)| (key.as_slice(), value.as_slice()))
    }
}

impl ViewRead for MemoryViews {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.map.get(&(table, key.to_vec())).cloned())
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, KvError> {
        Ok(self
            .map
            .range((table, prefix.to_vec())..)
            .take_while(|((t, key), _)| *t == table && key.starts_with(prefix))
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect())
    }
}

impl ViewWrite for MemoryViews {
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.map.insert((table, key), value);
    }

    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.map.remove(&(table, key));
    }
}
