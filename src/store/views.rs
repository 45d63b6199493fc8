//! The view traits on RocksDB: direct reads, and a write overlay that collects a batch.

use rocksdb::{ColumnFamily, DBRawIterator, IteratorMode, WriteBatch, DB};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::pipeline::Layer;
use super::Store;
use crate::view::{KeyValue, KvError, Table, ViewRead, ViewWrite, Visit};

fn kv_error(error: rocksdb::Error) -> KvError {
    KvError(error.to_string())
}

/// Every pair of `cf` whose key starts with `prefix`, in key order.
pub(crate) fn scan_cf(db: &DB, cf: &ColumnFamily, prefix: &[u8]) -> Result<Vec<KeyValue>, KvError> {
    read_prefix(&mut db.raw_iterator_cf(cf), prefix, usize::MAX)
}

/// The first `limit` pairs whose key starts with `prefix`, in key order, read by seeking
/// `cursor` to it.
fn read_prefix(
    cursor: &mut DBRawIterator<'_>,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<KeyValue>, KvError> {
    let mut pairs = Vec::new();
    cursor.seek(prefix);
    while pairs.len() < limit {
        let (Some(key), Some(value)) = (cursor.key(), cursor.value()) else {
            break;
        };
        if !key.starts_with(prefix) {
            break;
        }
        pairs.push((key.to_vec(), value.to_vec()));
        cursor.next();
    }
    cursor.status().map_err(kv_error)?;
    Ok(pairs)
}

/// Adds the view writes of `layer` to `batch`, each table's in key order (inserting sorted
/// keys is cheaper for the memtables).
pub(crate) fn write_layer(store: &Store, layer: &Layer, batch: &mut WriteBatch) {
    for (table, pending) in Table::ALL.into_iter().zip(layer) {
        let cf = store.cf(table.name());
        let mut pairs: Vec<_> = pending.iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, value) in pairs {
            match value {
                Some(value) => batch.put_cf(cf, key, value),
                None => batch.delete_cf(cf, key),
            }
        }
    }
}

/// Read access to the stored views.
pub struct DbViews<'a> {
    /// The store.
    store: &'a Store,
}

impl<'a> DbViews<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Visits every pair of `table` in key order.
    pub fn for_each(
        &self,
        table: Table,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), KvError> {
        let cf = self.store.cf(table.name());
        for item in self.store.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item.map_err(kv_error)?;
            visit(&key, &value);
        }
        Ok(())
    }
}

impl ViewRead for DbViews<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.store
            .db
            .get_cf(self.store.cf(table.name()), key)
            .map_err(kv_error)
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, KvError> {
        scan_cf(&self.store.db, self.store.cf(table.name()), prefix)
    }

    fn scan_visit(
        &self,
        table: Table,
        prefix: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), KvError> {
        let mut cursor = self.store.db.raw_iterator_cf(self.store.cf(table.name()));
        cursor.seek(prefix);
        while let (Some(key), Some(value)) = (cursor.key(), cursor.value()) {
            if !key.starts_with(prefix) || visit(key, value).is_break() {
                break;
            }
            cursor.next();
        }
        cursor.status().map_err(kv_error)
    }

    /// One cursor sought to each prefix in turn: opening a RocksDB iterator costs more than
    /// reading the few pairs under a prefix.
    fn scan_each(
        &self,
        table: Table,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<Vec<KeyValue>>, KvError> {
        let mut cursor = self.store.db.raw_iterator_cf(self.store.cf(table.name()));
        prefixes
            .iter()
            .map(|prefix| read_prefix(&mut cursor, prefix, limit))
            .collect()
    }
}

/// Buffers view writes over the stored views; reads see the buffered writes first, then the
/// layers of batches handed to the write pipeline but not yet written, then the database.
/// The buffer becomes part of the append's `WriteBatch`. Hash maps, one per table, because a
/// bulk append buffers tens of thousands of pairs and looks most of them up once; the rare
/// prefix scans (an event's tombstone) sort what they pick out.
pub(crate) struct BatchViews<'a> {
    /// The store read through.
    store: &'a Store,
    /// Layers not yet written when the overlay was made, oldest first.
    layers: Vec<Arc<Layer>>,
    /// Buffered writes per table, in [`Table::ALL`] order: `None` deletes.
    pending: Layer,
    /// Bytes of the buffered keys and values, to size the write batch.
    bytes: usize,
    /// Database reads already made, per table. The database changes only by writing layers
    /// the overlay holds, so a read stays true while the overlay is in use; the reducer reads
    /// an event's record once per entry, and a batch holds many entries of one event.
    read: RefCell<Layer>,
}

impl<'a> BatchViews<'a> {
    /// An empty overlay over the database and the pipeline's unwritten layers. Made under
    /// the writer mutex, so no layer is added while it is in use.
    pub(crate) fn new(store: &'a Store) -> Self {
        Self {
            store,
            layers: store.pipeline.layers(),
            pending: Default::default(),
            bytes: 0,
            read: Default::default(),
        }
    }

    /// Bytes of the buffered keys and values.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds the buffered writes to `batch` (see [`write_layer`]).
    pub(crate) fn write_into(&self, batch: &mut WriteBatch) {
        write_layer(self.store, &self.pending, batch);
    }

    /// The buffered writes, to stay readable until they are written, and the unwritten
    /// layers the overlay read through: the caller drops those outside the writer mutex, as
    /// freeing a written layer's maps takes a while.
    pub(crate) fn into_layer(self) -> (Layer, Vec<Arc<Layer>>) {
        (self.pending, self.layers)
    }

    fn table(&mut self, table: Table) -> &mut foldhash::HashMap<Vec<u8>, Option<Vec<u8>>> {
        &mut self.pending[table as usize]
    }
}

impl ViewRead for BatchViews<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let buffered = std::iter::once(&self.pending)
            .chain(self.layers.iter().rev().map(|layer| &**layer))
            .find_map(|layer| layer[table as usize].get(key));
        if let Some(value) = buffered {
            return Ok(value.clone());
        }
        if let Some(value) = self.read.borrow()[table as usize].get(key) {
            return Ok(value.clone());
        }
        let value = DbViews::new(self.store).get(table, key)?;
        self.read.borrow_mut()[table as usize].insert(key.to_vec(), value.clone());
        Ok(value)
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, KvError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = DbViews::new(self.store)
            .scan(table, prefix)?
            .into_iter()
            .collect();
        let layers = self
            .layers
            .iter()
            .map(|layer| &**layer)
            .chain(std::iter::once(&self.pending));
        for layer in layers {
            let pending = layer[table as usize]
                .iter()
                .filter(|(key, _)| key.starts_with(prefix));
            for (key, value) in pending {
                match value {
                    Some(value) => merged.insert(key.clone(), value.clone()),
                    None => merged.remove(key),
                };
            }
        }
        Ok(merged.into_iter().collect())
    }
}

impl ViewWrite for BatchViews<'_> {
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += key.len() + value.len();
        self.table(table).insert(key, Some(value));
    }

    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.bytes += key.len();
        self.table(table).insert(key, None);
    }
}
