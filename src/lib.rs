//! threatlog: a MISP-compatible threat-intelligence node built on an append-only signed log.
//!
//! Data flow: a request (CLI import, REST call, feed) is parsed and validated by [`model`]
//! into MISP objects; [`change`] turns them into log drafts grouped by visibility; [`store`]
//! seals them into ed25519-signed [`log`] entries and, in the same durable RocksDB write,
//! applies them to the materialized [`view`]s that every read is answered from. Views are a
//! deterministic function of the log and can be rebuilt from it at any time. Entries of other
//! nodes arrive through [`sync`], are checked (first of all: a node certificate from an org key
//! bound to the entry's organisation, [`log::identity`]), and are stored verbatim; [`policy`] decides what
//! each peer receives, and [`audit`] lets anyone verify and replay the log offline.
//!
//! Modules:
//! - [`model`]: MISP types, the describeTypes registry, value normalisation, JSON shapes (pure).
//! - [`log`]: entry encoding, signing, strict verification, chain links; org keys, node
//!   certificates, revocations and rosters ([`log::identity`]) (pure).
//! - [`view`]: the reducer from entries to records and indexes, reads, the view digest (pure).
//! - [`change`]: MISP objects to log drafts; distribution levels and visibility (pure).
//! - [`clock`]: the clock every time the node stamps is read from (system, or manual).
//! - [`slots`]: counted places per key (connections per address, pull streams per peer).
//! - [`turns`]: fair turns at the node's work between clients (REST requests).
//! - [`workers`]: the threads that work runs on, at two CPU priorities.
//! - [`store`]: RocksDB column families, atomic append with view updates, verify, rebuild (IO).
//! - [`config`]: the `threatlog.toml` configuration.
//! - [`api`]: the MISP-compatible REST API served by `threatlog serve` (IO).
//! - [`audit`]: bundle export, offline verify, replay, history and proofs for auditors.
//! - [`interop`]: exports (CSV, text, hashes, Suricata, Snort, STIX 2.1), MISP feeds in and out,
//!   freetext and STIX 2.1 imports, taxonomies and galaxies.
//! - [`node`]: a node's data directory, identity, organisations and users, and the operations
//!   the CLI runs (IO).
//! - [`run`]: `threatlog serve`: starts the REST API, sync service, feed schedule and
//!   checkpoint timer, and joins them all on shutdown (IO).
//! - [`policy`]: who may see what across nodes (release to a peer, hop checks) and who may
//!   write what (write authority, asked by every local append and every ingest) (pure).
//! - [`sync`]: replication with paired peers: what a session exchanges, the per-peer engine
//!   (backoff, resume cursor, quarantine window), release and checks, the gRPC server and
//!   client over mutual TLS, and sessions between nodes in one process.
//! - [`proto`]: the protobuf wire types compiled from `proto/`.

pub mod api;
pub mod audit;
pub mod change;
pub mod clock;
pub mod config;
pub mod interop;
pub mod log;
pub mod model;
pub mod node;
pub mod policy;
pub mod run;
pub mod slots;
pub mod store;
pub mod sync;
pub mod turns;
pub mod view;
pub mod workers;

/// Protobuf wire types generated from `proto/threatlog/v1/*.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/threatlog.v1.rs"));

    /// The node-to-node sync service from `proto/threatlog/sync/v1/sync.proto`.
    #[allow(missing_docs, clippy::all)]
    pub mod sync {
        include!(concat!(env!("OUT_DIR"), "/threatlog.sync.v1.rs"));
    }
}
