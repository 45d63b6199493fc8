//! Materialized views (SPEC §5): a deterministic reducer from verified entries to records and
//! indexes, the read side that assembles MISP JSON, and the view digest. Pure: the reducer
//! works over the [`ViewRead`]/[`ViewWrite`] traits, which the store implements on RocksDB
//! and [`MemoryViews`] implements in memory (for replays and tests).

pub mod correlation;
mod digest;
pub mod index;
mod memory;
pub mod read;
mod record;
mod reduce;
pub mod search;

use std::ops::ControlFlow;

pub use digest::{digest, ViewDigest};
pub use memory::MemoryViews;
pub use record::{
    parse_tag_link_key, tag_link_key, tag_links, Record, Stamp, TagLink, TagLinkState,
};
pub use reduce::{
    apply, apply_parsed, names_only, owner_only, ParsedFields, Touched, GROUP_CREATOR_FIELD,
    TAG_TARGETS,
};

/// The layout of the stored views. A node whose views were built with another layout
/// rebuilds them from the log when it opens. 2: values indexed case-folded. 3: owner claims
/// of events from every entry only their owner may write, of sharing groups and of
/// organisations; registrars of organisations; items never move between events. 4: local tag
/// links kept per attaching organisation, apart from global links.
pub const VIEWS_FORMAT: u32 = 4;

/// The tables views live in; each is one RocksDB column family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// `[kind][key]` → [`Record`] JSON.
    Records,
    /// `[event uuid][kind][child key]` → empty: what belongs to an event.
    Children,
    /// [`tag_link_key`] → [`TagLinkState`] JSON.
    TagLinks,
    /// `[attribute uuid][sighting uuid]` → sighting JSON.
    Sightings,
    /// Secondary indexes, see [`index`](self).
    Index,
}

impl Table {
    /// Every view table, in digest order.
    pub const ALL: [Table; 5] = [
        Table::Records,
        Table::Children,
        Table::TagLinks,
        Table::Sightings,
        Table::Index,
    ];

    /// The column family name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Records => "view_records",
            Table::Children => "view_children",
            Table::TagLinks => "view_tag_links",
            Table::Sightings => "view_sightings",
            Table::Index => "view_index",
        }
    }
}

/// A failure of the storage under the views (RocksDB IO), or stored view bytes that do not
/// decode.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("view storage: {0}")]
pub struct KvError(pub String);

/// What [`ViewRead::scan_visit`] calls with each pair: break to stop the scan.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// A (key, value) pair.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Read access to view tables.
pub trait ViewRead {
    /// The value under `key`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;
    /// Every pair whose key starts with `prefix`, in key order.
    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, KvError>;

    /// Calls `visit` with each pair whose key starts with `prefix`, in key order, until it
    /// breaks. Storage that can streams the pairs instead of gathering them first.
    fn scan_visit(
        &self,
        table: Table,
        prefix: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), KvError> {
        for (key, value) in self.scan(table, prefix)? {
            if visit(&key, &value).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// For each of `prefixes`, the first `limit` pairs whose key starts with it, in key
    /// order. One call for many prefixes lets the store reuse one cursor.
    fn scan_each(
        &self,
        table: Table,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<Vec<KeyValue>>, KvError> {
        prefixes
            .iter()
            .map(|prefix| {
                let mut pairs = self.scan(table, prefix)?;
                pairs.truncate(limit);
                Ok(pairs)
            })
            .collect()
    }
}

/// Write access to view tables. Writes are buffered by the implementation and become durable
/// together with the entry that caused them.
pub trait ViewWrite: ViewRead {
    /// Sets `key` to `value`.
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>);
    /// Removes `key`.
    fn delete(&mut self, table: Table, key: Vec<u8>);
}

/// Key bytes of a record: its kind then its key.
pub fn record_key(kind: crate::proto::RecordKind, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(kind as u8);
    out.extend_from_slice(key);
    out
}
