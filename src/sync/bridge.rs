//! Where the async transport meets the blocking exchange: the transport's error type, the
//! producer of a peer's pull stream, and ingesting a received segment, each doing its
//! RocksDB work on a blocking thread ([`super::exchange`] reads and writes RocksDB) in a fair
//! turn charged to the peer, and none holding one while it waits.

use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tonic::Status;

use super::exchange::{self, ExchangeError, Outbox};
use super::peer::Peer;
use super::{tls, wire};
use crate::node::Node;
use crate::store::{Ingested, StoreError};
use crate::turns::Tenant;

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

/// Streams segments after `cursor` to `sender` until the receiver goes away, the node stops
/// (`stopping` turns true), or (without `follow`) the stream has caught up. Holds no thread
/// while it waits: each segment is produced on a blocking thread (it reads RocksDB) once the
/// stream has room for it, and new entries are awaited.
pub async fn produce(
    node: Arc<Node>,
    peer: Peer,
    cursor: u64,
    follow: bool,
    sender: &mpsc::Sender<Result<wire::Segment, Status>>,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), ExchangeError> {
    let mut arrivals = node.store.subscribe_arrivals();
    let tenant = Tenant::Peer(peer.key);
    let mut outbox = Outbox::new(Arc::clone(&node), peer, cursor);
    loop {
        // Room first: nothing is read for a peer that does not take what it was sent.
        let permit = tokio::select! {
            permit = sender.reserve() => match permit {
                Ok(permit) => permit,
                Err(_) => return Ok(()),
            },
            _ = stopping.wait_for(|stop| *stop) => return Ok(()),
        };
        arrivals.borrow_and_update();
        let (returned, segment) = node
            .turns
            .blocking(tenant, move || {
                let segment = outbox.next_segment();
                (outbox, segment)
            })
            .await
            .map_err(|error| ExchangeError::Peer(format!("producing a segment failed: {error}")))?;
        outbox = returned;
        if let Some(segment) = segment? {
            permit.send(Ok(segment));
            continue;
        }
        drop(permit);
        if !follow {
            return Ok(());
        }
        tokio::select! {
            changed = arrivals.changed() => if changed.is_err() { return Ok(()) },
            _ = sender.closed() => return Ok(()),
            _ = stopping.wait_for(|stop| *stop) => return Ok(()),
        }
    }
}

/// Decodes, checks and stores one segment from `peer` on a blocking thread
/// ([`exchange::receive`]), in a turn charged to the peer.
pub async fn ingest_segment(
    node: &Arc<Node>,
    peer: &Peer,
    segment: wire::Segment,
) -> Result<Ingested, SyncError> {
    let (worker, peer) = (Arc::clone(node), peer.clone());
    node.turns
        .blocking(Tenant::Peer(peer.key), move || {
            exchange::receive(&worker, &peer, segment)
        })
        .await
        .map_err(|error| SyncError::Peer(format!("ingest task failed: {error}")))?
        .map_err(SyncError::from)
}
