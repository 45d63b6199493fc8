//! Where the async transport meets the blocking exchange: the transport's error type, a
//! producer that streams a peer's segments from a blocking thread, and ingesting a received
//! segment on one ([`super::exchange`] reads and writes RocksDB).

use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tonic::Status;

use super::exchange::{self, ExchangeError, Outbox};
use super::peer::Peer;
use super::{tls, wire};
use crate::node::Node;
use crate::store::{Ingested, StoreError};

/// Why the sync service or a session failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The listen address is not an address.
    #[error("sync listen address '{0}' is not an address like 127.0.0.1:7443")]
    Address(String),
    /// Socket or file IO.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS identity could not be built.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gRPC transport failed (with its causes, such as a refused TLS certificate).
    #[error("gRPC: {}", with_causes(.0))]
    Transport(#[from] tonic::transport::Error),
    /// The peer answered with an error or broke the protocol.
    #[error("{0}")]
    Peer(String),
}

impl From<ExchangeError> for SyncError {
    fn from(error: ExchangeError) -> Self {
        match error {
            ExchangeError::Store(error) => SyncError::Store(error),
            ExchangeError::Peer(text) | ExchangeError::Deferred(text) => SyncError::Peer(text),
        }
    }
}

/// An error and each of its causes, joined by ": ".
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    text
}

impl From<Status> for SyncError {
    fn from(status: Status) -> Self {
        SyncError::Peer(format!("{}: {}", status.code(), status.message()))
    }
}

/// Where a producer sends segments, and when it must stop.
pub struct Feed<'a> {
    /// The stream's channel.
    pub sender: &'a mpsc::Sender<Result<wire::Segment, Status>>,
    /// The runtime, to wait for new entries from the blocking thread.
    pub runtime: &'a tokio::runtime::Handle,
    /// Turns true when the node shuts down.
    pub stopping: watch::Receiver<bool>,
}

/// Streams segments after `cursor` to the feed until the receiver goes away, the node stops,
/// or (without `follow`) the stream has caught up. Runs on a blocking thread: it reads
/// RocksDB.
pub fn produce(
    node: &Node,
    peer: Peer,
    cursor: u64,
    follow: bool,
    mut feed: Feed<'_>,
) -> Result<(), ExchangeError> {
    let sender = feed.sender;
    let mut arrivals = node.store.subscribe_arrivals();
    let mut outbox = Outbox::new(node, peer, cursor);
    loop {
        arrivals.borrow_and_update();
        if let Some(segment) = outbox.next_segment()? {
            if sender.blocking_send(Ok(segment)).is_err() {
                return Ok(());
            }
            continue;
        }
        if !follow {
            return Ok(());
        }
        let stopping = &mut feed.stopping;
        let closed = feed.runtime.block_on(async {
            tokio::select! {
                changed = arrivals.changed() => changed.is_err(),
                _ = sender.closed() => true,
                _ = stopping.wait_for(|stop| *stop) => true,
            }
        });
        if closed {
            return Ok(());
        }
    }
}

/// Decodes, checks and stores one segment from `peer` on a blocking thread
/// ([`exchange::receive`]).
pub async fn ingest_segment(
    node: &Arc<Node>,
    peer: &Peer,
    segment: wire::Segment,
) -> Result<Ingested, SyncError> {
    let node = Arc::clone(node);
    let peer = peer.clone();
    tokio::task::spawn_blocking(move || exchange::receive(&node, &peer, segment))
        .await
        .map_err(|error| SyncError::Peer(format!("ingest task failed: {error}")))?
        .map_err(SyncError::from)
}
