//! The IO adapters of interop: everything that touches the network, files and directories,
//! the store or tasks and threads. The formats they read and write are pure, one level up.
//!
//! - [`http`]: the HTTP(S) GET client of feed fetches (hyper-util over rustls, TCP): a feed's
//!   own CA file and headers, conditional requests, bounded redirects, head, body and time.
//! - [`feeds`]: feed settings in the node's local state, fetching a feed from a directory or
//!   over HTTP(S) and importing its events, writing a feed to a directory.
//! - [`schedule`]: the periodic fetch of every feed while the node serves (tokio task).
//! - [`catalog_dir`]: reading taxonomy and galaxy libraries from directories.
//! - [`catalog`]: loaded taxonomies, galaxies and clusters in the node's local state.

pub mod catalog;
pub mod catalog_dir;
pub mod feeds;
pub mod http;
pub mod schedule;
