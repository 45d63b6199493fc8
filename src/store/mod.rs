//! RocksDB storage: the log, per-origin heads, the views and local state, each in its own
//! column family. An append writes its entries and every view change they cause in one
//! `WriteBatch` with a synced WAL, so an acknowledged write survives `kill -9` and views never
//! disagree with the log.

mod append;
mod audit;
pub use audit::StoredVisitor;
mod checkpoints;
mod identity;
mod ingest;
mod lock;
mod merkle;
mod pipeline;
mod provisional;
mod release;
mod verify;
mod views;

use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, Options, DB};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use append::Appended;
pub use checkpoints::{AcceptError, SplitView};
pub use identity::{
    BindError, Binding, BindingSource, IdentityConflict, Received, CERTIFICATES_PER_NODE_MAX,
    CONFLICTS_MAX,
};
pub use ingest::{
    decode_log_key, ForkProof, Held, Incoming, IngestCheck, Ingested, Rejected, Rejection,
};
pub use lock::lock_path;
pub use provisional::{Charge, Source, PROVISIONAL_STUBS_PER_PEER_MAX};
pub use release::Publish;
pub use verify::{VerifyFailure, VerifySummary};
pub use views::DbViews;

use crate::clock::{Clock, SystemClock};
use crate::log::{LogError, OriginKey};
use crate::policy::authority::OrgKeys;
use crate::view::{KvError, Table, ViewRead};
use lock::DirLock;

/// Storage format written by this build. Stored in the `meta` column family; a directory with
/// a newer format is refused rather than misread.
pub const FORMAT_VERSION: u32 = 1;

/// Column family of the log: `origin key (32) ‖ sequence (8, big-endian)` → stored entry bytes.
pub const CF_LOG: &str = "log";
/// Column family of arrival order: `arrival (8, big-endian)` → `origin ‖ sequence`.
pub const CF_ARRIVAL: &str = "arrival";
/// Column family of per-origin heads: `origin` → `sequence (8) ‖ hash (32)`.
pub const CF_HEADS: &str = "heads";
/// Column family of the per-event log index: `event uuid ‖ arrival` → `origin ‖ sequence`.
pub const CF_EVENT_LOG: &str = "event_log";
/// Column family of local numeric ids: `kind ‖ key` → id (8), and `#` `kind ‖ id` → key.
pub const CF_IDS: &str = "ids";
/// Column family of metadata: format version, node identity, counters.
pub const CF_META: &str = "meta";
/// Column family of node-local state that is never replicated: users, key hashes, settings.
pub const CF_LOCAL: &str = "local";
/// Key prefix of node-local tag definitions in [`CF_LOCAL`]: `tag/NAME` → the definition's
/// fields as a JSON object (colour, exportable, hide_tag, numerical_value, local_only,
/// deleted). Definitions are node settings, never in the log (SPEC §4.2).
pub const TAG_DEFINITIONS: &[u8] = b"tag/";
/// Column family of stubs of withheld entries: `origin ‖ sequence` → previous hash ‖ hash.
pub const CF_STUBS: &str = "stubs";
/// Column family of derived release facts: `p ‖ event uuid` → the event's latest publish.
pub const CF_RELEASE: &str = "release";
/// Column family of every origin's Merkle tree: `origin ‖ level (1) ‖ index (8, big-endian)`
/// → hash of that complete subtree (see `merkle.rs`).
pub const CF_MERKLE: &str = "merkle";
/// Column family of checkpoints, cosignatures and split-view proofs (see `checkpoints.rs`).
pub const CF_CHECKPOINTS: &str = "checkpoints";
/// Column family of provisional stubs: `origin ‖ sequence` → the peer that sent the stub and
/// its arrival number (see `provisional.rs`).
pub const CF_PROVISIONAL: &str = "provisional";

/// Every column family this build uses.
fn column_families() -> Vec<&'static str> {
    let mut names = vec![
        CF_LOG,
        CF_ARRIVAL,
        CF_HEADS,
        CF_EVENT_LOG,
        CF_IDS,
        CF_META,
        CF_LOCAL,
        CF_STUBS,
        CF_RELEASE,
        CF_MERKLE,
        CF_CHECKPOINTS,
        CF_PROVISIONAL,
    ];
    names.extend(Table::ALL.iter().map(|table| table.name()));
    names
}

/// Bits per key of the bloom filters that let lookups of absent keys (most lookups while
/// appending new records) skip memtables and table files.
const BLOOM_BITS_PER_KEY: f64 = 10.0;

/// Share of a memtable's memory given to its bloom filter: small, because the filter is
/// allocated (and zeroed) for every memtable of every column family.
const MEMTABLE_BLOOM_RATIO: f64 = 0.02;

/// Memtable size per column family. Smaller than RocksDB's 64 MiB default: appends insert
/// keys at random places (uuids, values), and a skip list that stays within the CPU caches
/// inserts them faster; flushing more often costs the background threads, not the writer.
const WRITE_BUFFER_BYTES: usize = 8 << 20;

/// Memory all memtables together may hold before the largest is flushed: bounds the node's
/// memory however many column families a bulk pull fills.
const WRITE_BUFFERS_TOTAL_BYTES: usize = 96 << 20;

/// Block cache shared by every column family (RocksDB would otherwise give each family a
/// cache of its own).
const BLOCK_CACHE_BYTES: usize = 64 << 20;

/// Database options and column family descriptors sharing one block cache.
fn open_options() -> (Options, Vec<ColumnFamilyDescriptor>) {
    let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let mut options = Options::default();
    options.set_db_write_buffer_size(WRITE_BUFFERS_TOTAL_BYTES);
    let families = column_families()
        .into_iter()
        .map(|name| ColumnFamilyDescriptor::new(name, family_options(&cache)))
        .collect();
    (options, families)
}

/// Options of every column family: bloom filters on whole keys, in tables and memtables.
fn family_options(cache: &rocksdb::Cache) -> Options {
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
    table.set_whole_key_filtering(true);
    table.set_block_cache(cache);
    let mut options = Options::default();
    options.set_block_based_table_factory(&table);
    options.set_memtable_whole_key_filtering(true);
    options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
    options.set_write_buffer_size(WRITE_BUFFER_BYTES);
    // Levels 0 and 1 are rewritten soon by compaction: compressing them costs the writer's
    // flushes CPU for little space.
    let mut levels = [DBCompressionType::Lz4; 7];
    levels[..2].fill(DBCompressionType::None);
    options.set_compression_per_level(&levels);
    options
}

/// Meta key of the storage format version.
const META_FORMAT: &[u8] = b"format_version";

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data directory.
    #[error(
        "data directory {dir} is in use by another process: {holder}. Stop that process first, \
         or run this command against the running node's API"
    )]
    Busy {
        /// The data directory.
        dir: PathBuf,
        /// What the lock file says about its holder (pid and command line).
        holder: String,
    },
    /// The directory was written by a newer (or unknown) storage format.
    #[error(
        "data directory {dir} has storage format {found}, but this build of threatlog reads \
         format {FORMAT_VERSION}; upgrade threatlog to open it"
    )]
    Format {
        /// The data directory.
        dir: PathBuf,
        /// The format found.
        found: String,
    },
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// RocksDB reported an error.
    #[error("database: {0}")]
    Db(#[from] rocksdb::Error),
    /// Stored view bytes are unreadable.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// An entry could not be sealed (for example, over a size limit).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A Merkle proof was asked for sizes the tree does not have, or the tree is unreadable.
    #[error(transparent)]
    Proof(#[from] crate::log::merkle::ProofError),
    /// A checkpoint could not be issued, parsed or verified.
    #[error(transparent)]
    Checkpoint(#[from] crate::log::checkpoint::CheckpointError),
    /// A write before this one failed, and this change had been prepared on top of it.
    #[error(
        "an earlier write to the database failed, so this change was not stored; retry it, \
         and check the node's log and disk"
    )]
    EarlierWriteFailed,
    /// Write authority refused an append (SPEC §4.2): peers would refuse the entry.
    #[error(transparent)]
    Refused(#[from] crate::policy::authority::Refusal),
    /// A stored value does not decode.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
}

impl From<crate::policy::authority::AuthorityError> for StoreError {
    fn from(error: crate::policy::authority::AuthorityError) -> Self {
        match error {
            crate::policy::authority::AuthorityError::Refused(refusal) => {
                StoreError::Refused(refusal)
            }
            crate::policy::authority::AuthorityError::Views(error) => StoreError::Kv(error),
        }
    }
}

impl StoreError {
    fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The node's database. Appends are ordered by internal mutexes; reads run concurrently.
pub struct Store {
    /// The RocksDB instance.
    db: DB,
    /// The data directory.
    dir: PathBuf,
    /// The writer's in-memory state; the mutex serialises the reduction of every commit, and
    /// an append under it checks that the chain it sealed still links to the stored head.
    writer: Mutex<append::Writer>,
    /// Heads sealed ahead of the writer (see [`Store::append`]).
    sealer: Mutex<append::Sealer>,
    /// Raised when a sealed batch's chain had moved: cached sealed heads are then stale.
    seal_generation: std::sync::atomic::AtomicU64,
    /// Prepared batches on their way to RocksDB, in order (see `pipeline.rs`).
    pipeline: pipeline::Pipeline,
    /// The last arrival number, watched by live-tail streams.
    arrivals: tokio::sync::watch::Sender<u64>,
    /// This node's own key, once the node has told it: entries claiming it are never
    /// ingested.
    own_origin: std::sync::OnceLock<OriginKey>,
    /// Keeps other processes out while this store is open; `None` when read-only.
    _lock: Option<DirLock>,
    /// Opened with [`Store::open_read_only`]: nothing is written.
    read_only: bool,
    /// Where the time comes from.
    clock: Arc<dyn Clock>,
}

impl Store {
    /// The time now, from the store's clock (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The store's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// Opens (creating if needed) the database under `dir/db`, on the system's clock.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_clock(dir, Arc::new(SystemClock))
    }

    /// Opens (creating if needed) the database under `dir/db`; every time the store and its
    /// node stamp is read from `clock`.
    pub fn open_with_clock(dir: &Path, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        let lock = DirLock::acquire(dir)?;
        let path = dir.join("db");
        let (mut options, families) = open_options();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_max_background_jobs(2);
        let db = DB::open_cf_descriptors(&options, &path, families)?;
        let store = Store {
            writer: Mutex::new(append::Writer::default()),
            sealer: Mutex::default(),
            seal_generation: Default::default(),
            pipeline: pipeline::Pipeline::default(),
            arrivals: tokio::sync::watch::Sender::new(0),
            own_origin: std::sync::OnceLock::new(),
            db,
            dir: dir.to_path_buf(),
            _lock: Some(lock),
            read_only: false,
            clock,
        };
        store.check_format()?;
        let mut writer = append::Writer::load(&store)?;
        writer.trees = store.load_trees(&writer.heads)?;
        store.arrivals.send_replace(writer.last_arrival());
        *store.writer_lock() = writer;
        if let Some(reason) = store.stale_views()? {
            store.keep_tag_definitions()?;
            tracing::warn!("{reason}; rebuilding the views from the log");
            store.rebuild_views(&|_| {})?;
        }
        Ok(store)
    }

    /// Copies the tag definitions that views of layouts before 4 kept in tag records (from
    /// the log, where every attachment rewrote them) to the node-local definitions
    /// ([`TAG_DEFINITIONS`]) where none is there yet, before a rebuild drops them.
    fn keep_tag_definitions(&self) -> Result<(), StoreError> {
        let mut kept = Vec::new();
        let prefix = [crate::proto::RecordKind::Tag as u8];
        for (key, bytes) in self.views().scan(Table::Records, &prefix)? {
            let record = crate::view::Record::decode(&bytes)?;
            let mut fields = record.values();
            fields.remove("name");
            let local = [TAG_DEFINITIONS, &key[1..]].concat();
            if !fields.is_empty() && self.local(&local)?.is_none() {
                kept.push((local, serde_json::to_vec(&fields).unwrap_or_default()));
            }
        }
        if !kept.is_empty() {
            tracing::info!(
                "keeping {} tag definitions as node-local settings",
                kept.len()
            );
            self.put_local(&kept)?;
        }
        Ok(())
    }

    /// Why the stored views cannot be used as they are, if they cannot: a rebuild was
    /// interrupted, or they were built with another layout than [`crate::view::VIEWS_FORMAT`].
    /// A store with an empty log is marked with this build's layout.
    fn stale_views(&self) -> Result<Option<String>, StoreError> {
        if self.meta(verify::META_REBUILDING)?.is_some() {
            return Ok(Some("a view rebuild was interrupted".into()));
        }
        let current = crate::view::VIEWS_FORMAT.to_string();
        match self.meta(verify::META_VIEWS_FORMAT)? {
            Some(found) if found == current.as_bytes() => Ok(None),
            _ if self.writer_lock().last_arrival() == 0 => {
                self.put_meta(verify::META_VIEWS_FORMAT, current.as_bytes())?;
                Ok(None)
            }
            // Views from before layouts were recorded are layout 1.
            found => Ok(Some(format!(
                "the views were built with layout {}, this build uses {current}",
                found.map_or_else(|| "1".into(), |b| String::from_utf8_lossy(&b).into_owned())
            ))),
        }
    }

    /// Which organisations are bound to an org key: the bindings this store holds
    /// ([`Store::is_org_bound`]).
    pub(crate) fn org_keys(&self) -> &dyn OrgKeys {
        self
    }

    /// Records this node's own key: entries of other nodes claiming it are refused.
    pub fn set_own_origin(&self, origin: OriginKey) {
        // Set once when the node opens; a second call with the same key changes nothing.
        let _ = self.own_origin.set(origin);
    }

    /// Opens the database under `dir/db` for reading only, without the directory lock, so
    /// that auditors can read a running node's directory: RocksDB's read-only mode sees the
    /// state as of this call (flushed tables and the write-ahead log) and writes nothing.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("db");
        if !path.is_dir() {
            return Err(StoreError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no database here"),
            ));
        }
        let (options, families) = open_options();
        let db = DB::open_cf_descriptors_read_only(&options, &path, families, false).map_err(
            |error| match error.to_string().contains("Column family not found") {
                // A directory last written by an older build: its new families appear the
                // next time a read-write command opens it.
                true => StoreError::io(
                    &path,
                    std::io::Error::other(format!(
                        "written by an older build ({error}); run `threatlog log verify` on it \
                         once, with no node running, to add this build's column families"
                    )),
                ),
                false => StoreError::Db(error),
            },
        )?;
        let store = Store {
            writer: Mutex::new(append::Writer::default()),
            sealer: Mutex::default(),
            seal_generation: Default::default(),
            pipeline: pipeline::Pipeline::default(),
            arrivals: tokio::sync::watch::Sender::new(0),
            own_origin: std::sync::OnceLock::new(),
            db,
            dir: dir.to_path_buf(),
            _lock: None,
            read_only: true,
            clock: Arc::new(SystemClock),
        };
        match store.meta(META_FORMAT)? {
            Some(found) if found == FORMAT_VERSION.to_string().as_bytes() => {}
            found => {
                return Err(StoreError::Format {
                    dir: dir.to_path_buf(),
                    found: found.map_or_else(
                        || "none".into(),
                        |bytes| String::from_utf8_lossy(&bytes).into_owned(),
                    ),
                })
            }
        }
        let mut writer = append::Writer::load(&store)?;
        writer.trees = store.load_trees(&writer.heads)?;
        *store.writer_lock() = writer;
        Ok(store)
    }

    /// Whether the store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_format(&self) -> Result<(), StoreError> {
        match self.meta(META_FORMAT)? {
            None => {
                self.put_meta(META_FORMAT, FORMAT_VERSION.to_string().as_bytes())?;
                Ok(())
            }
            Some(found) if found == FORMAT_VERSION.to_string().as_bytes() => Ok(()),
            Some(found) => Err(StoreError::Format {
                dir: self.dir.clone(),
                found: String::from_utf8_lossy(&found).into_owned(),
            }),
        }
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // Every name passed here is one of `column_families()`, all opened in `open`.
        self.db
            .cf_handle(name)
            .expect("column family opened at start")
    }

    /// The writer, once every batch handed to the pipeline is written: its state is then
    /// exactly what the database holds. Every user but `append` takes the writer this way.
    fn writer_lock(&self) -> std::sync::MutexGuard<'_, append::Writer> {
        let mut writer = self.writer_lock_pipelined();
        self.settle(&mut writer);
        writer
    }

    /// Waits until every handed-over batch is written; if one failed, reads the writer
    /// state again, since it had advanced past that batch. If reading fails too, the pipeline
    /// stays failed and appends are refused.
    fn settle(&self, writer: &mut append::Writer) {
        if !self.pipeline.drain() {
            return;
        }
        let reloaded = append::Writer::load(self).and_then(|mut reloaded| {
            reloaded.trees = self.load_trees(&reloaded.heads)?;
            Ok(reloaded)
        });
        match reloaded {
            Ok(reloaded) => *writer = reloaded,
            Err(error) => {
                tracing::error!("reloading the writer state after a failed write: {error}");
                self.pipeline.mark_failed();
            }
        }
    }

    /// The writer, possibly with batches still on their way: its state then includes them.
    fn writer_lock_pipelined(&self) -> std::sync::MutexGuard<'_, append::Writer> {
        // A panic while holding the lock leaves only in-memory counters that `load` rebuilt
        // from the database; recovering the guard is safe.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A metadata value.
    pub fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_META), key)?)
    }

    /// Writes a metadata value durably.
    pub fn put_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        Ok(self.db.put_cf_opt(self.cf(CF_META), key, value, &options)?)
    }

    /// A node-local value (users, settings).
    pub fn local(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_LOCAL), key)?)
    }

    /// Writes node-local values durably, all or none.
    pub fn put_local(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        for (key, value) in pairs {
            batch.put_cf(self.cf(CF_LOCAL), key, value);
        }
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        Ok(self.db.write_opt(batch, &options)?)
    }

    /// Removes node-local keys durably, all or none.
    pub fn delete_local(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        for key in keys {
            batch.delete_cf(self.cf(CF_LOCAL), key);
        }
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        Ok(self.db.write_opt(batch, &options)?)
    }

    /// Node-local pairs whose key starts with `prefix`.
    pub fn scan_local(&self, prefix: &[u8]) -> Result<Vec<crate::view::KeyValue>, StoreError> {
        views::scan_cf(&self.db, self.cf(CF_LOCAL), prefix).map_err(StoreError::from)
    }

    /// Read access to the views.
    pub fn views(&self) -> DbViews<'_> {
        DbViews::new(self)
    }

    /// The local numeric id of a record, if it has one.
    pub fn local_id(&self, kind: crate::proto::RecordKind, key: &[u8]) -> Option<u64> {
        let mut id_key = vec![kind as u8];
        id_key.extend_from_slice(key);
        let bytes = self.db.get_pinned_cf(self.cf(CF_IDS), &id_key).ok()??;
        Some(u64::from_be_bytes(bytes.as_ref().try_into().ok()?))
    }

    /// The keys of every record of `kind` with a local id, in key order.
    pub fn numbered(&self, kind: crate::proto::RecordKind) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(views::scan_cf(&self.db, self.cf(CF_IDS), &[kind as u8])?
            .into_iter()
            .map(|(key, _)| key[1..].to_vec())
            .collect())
    }

    /// The record key of the record of `kind` with local id `id`.
    pub fn key_of_id(&self, kind: crate::proto::RecordKind, id: u64) -> Option<Vec<u8>> {
        let mut id_key = vec![b'#', kind as u8];
        id_key.extend_from_slice(&id.to_be_bytes());
        self.db.get_cf(self.cf(CF_IDS), &id_key).ok()?
    }

    /// The heads of every origin held: (origin, last sequence).
    pub fn heads(&self) -> Vec<(OriginKey, u64)> {
        self.writer_lock()
            .heads
            .iter()
            .map(|(origin, head)| (*origin, head.sequence))
            .collect()
    }
}

/// `origin ‖ sequence`: the log key of an entry.
pub fn log_key(origin: &OriginKey, sequence: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(40);
    key.extend_from_slice(&origin.0);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}
