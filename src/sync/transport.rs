//! The gRPC transport: the tonic sync service, the mutual-TLS listener and connector, and the
//! tasks that keep one session per peer pulling (and pushing), backing off after failures.
//! The only file that touches tonic; what a session sends and does with what it receives is
//! [`super::engine`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};

use super::engine::{self, Outbox, ReceiveError};
use super::peer::{self, Peer};
use super::release::{Released, Releaser};
use super::tls::{self, PairedKeys};
use super::{encode_items, wire};
use crate::log::{EntryId, OriginKey};
use crate::node::Node;
use crate::store::{Held, Ingested, StoreError};

/// Time a TLS handshake may take before the connection is dropped.
const HANDSHAKE_MS_MAX: u64 = 10_000;
/// Seconds between checkpoint exchanges on a live session.
const CHECKPOINT_EXCHANGE_S: u64 = 10;

/// Why the sync service could not run.
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

impl From<ReceiveError> for SyncError {
    fn from(error: ReceiveError) -> Self {
        match error {
            ReceiveError::Store(error) => SyncError::Store(error),
            ReceiveError::Peer(text) => SyncError::Peer(text),
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

/// The peer identity a TLS connection proved: the key in its client certificate.
#[derive(Clone, Copy, Debug)]
pub struct PeerIdentity(pub Option<OriginKey>);

/// A server-side TLS connection that tells tonic who the client is.
pub struct PeerStream(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for PeerStream {
    type ConnectInfo = PeerIdentity;

    fn connect_info(&self) -> PeerIdentity {
        let (_, session) = self.0.get_ref();
        PeerIdentity(
            session
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|cert| tls::certificate_key(cert).ok()),
        )
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The sync service of one node.
pub struct SyncService {
    node: Arc<Node>,
    /// Turns true when the node shuts down: live-tail streams end so connections can close.
    stopping: watch::Receiver<bool>,
}

impl SyncService {
    fn peer_of<T>(&self, request: &Request<T>) -> Result<Peer, Status> {
        let key = request
            .extensions()
            .get::<PeerIdentity>()
            .and_then(|identity| identity.0)
            .ok_or_else(|| Status::unauthenticated("no paired client certificate"))?;
        let peer = peer::peer(&self.node.store, &key)
            .map_err(|error| Status::internal(error.to_string()))?
            .ok_or_else(|| Status::permission_denied("node key is not paired"))?;
        let status = peer::status(&self.node.store, &key)
            .map_err(|error| Status::internal(error.to_string()))?;
        if status.quarantined {
            return Err(Status::permission_denied(
                "this node has quarantined you after repeated failures",
            ));
        }
        Ok(peer)
    }

    fn node_info(&self) -> wire::NodeInfo {
        node_info(&self.node)
    }
}

fn node_info(node: &Node) -> wire::NodeInfo {
    wire::NodeInfo {
        node_key: node.origin().0.to_vec().into(),
        org_uuid: node.org.uuid.as_bytes().to_vec().into(),
        org_name: node.org.name.clone(),
        heads: node
            .store
            .heads()
            .into_iter()
            .map(|(origin, sequence)| wire::OriginHead {
                origin: origin.0.to_vec().into(),
                sequence,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl wire::sync_server::Sync for SyncService {
    async fn hello(
        &self,
        request: Request<wire::HelloRequest>,
    ) -> Result<Response<wire::HelloResponse>, Status> {
        let peer = self.peer_of(&request)?;
        let pulls = peer.pull;
        if request.get_ref().protocol_version != super::PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "protocol version {} is not supported; this node speaks {}",
                request.get_ref().protocol_version,
                super::PROTOCOL_VERSION
            )));
        }
        let cursor = peer::cursor(&self.node.store, &peer.key)
            .map_err(|error| Status::internal(error.to_string()))?;
        let node = Arc::clone(&self.node);
        let notes = request.into_inner().checkpoints;
        let (checkpoints, cosignatures) = tokio::task::spawn_blocking(move || {
            let cosignatures = super::checkpoints::receive(&node, &peer.key, &notes);
            (super::checkpoints::outgoing(&node), cosignatures)
        })
        .await
        .map_err(|error| Status::internal(error.to_string()))?;
        let checkpoints = checkpoints.map_err(|error| Status::internal(error.to_string()))?;
        Ok(Response::new(wire::HelloResponse {
            protocol_version: super::PROTOCOL_VERSION,
            node: Some(self.node_info()),
            head_cursor: self.node.store.last_arrival(),
            pulls_from_you: pulls,
            cursor_for_you: cursor,
            checkpoints,
            cosignatures,
        }))
    }

    type PullStream = ReceiverStream<Result<wire::Segment, Status>>;

    async fn pull(
        &self,
        request: Request<wire::PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let peer = self.peer_of(&request)?;
        let wire::PullRequest { cursor, follow } = request.into_inner();
        let (sender, receiver) = mpsc::channel(super::SEGMENTS_IN_FLIGHT_MAX);
        let node = Arc::clone(&self.node);
        let runtime = tokio::runtime::Handle::current();
        let stopping = self.stopping.clone();
        tokio::task::spawn_blocking(move || {
            let to = peer.key;
            let feed = Feed {
                sender: &sender,
                runtime: &runtime,
                stopping,
            };
            if let Err(error) = produce(&node, peer, cursor, follow, feed) {
                tracing::warn!(peer = %to, "pull stream ended: {error}");
                let _ = sender.blocking_send(Err(Status::internal(error.to_string())));
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn push(
        &self,
        request: Request<Streaming<wire::Segment>>,
    ) -> Result<Response<wire::PushResponse>, Status> {
        let peer = self.peer_of(&request)?;
        let mut stream = request.into_inner();
        let mut accepted = 0u64;
        loop {
            let segment = match stream.message().await {
                Ok(Some(segment)) => segment,
                Ok(None) => break,
                Err(status) => {
                    // A message the transport refused (oversized, malformed framing): the
                    // peer's failure, recorded like a refused item.
                    let text = format!("refused push message: {}", status.message());
                    let _ = engine::record_failure(&self.node, &peer, &text);
                    return Err(status);
                }
            };
            match ingest_segment(&self.node, &peer, segment).await {
                Ok(report) => {
                    accepted +=
                        (report.entries + report.stubs + report.revealed + report.duplicates) as u64
                }
                Err(error) => {
                    return Ok(Response::new(wire::PushResponse {
                        accepted,
                        error: error.to_string(),
                    }))
                }
            }
        }
        Ok(Response::new(wire::PushResponse {
            accepted,
            error: String::new(),
        }))
    }

    async fn inclusion(
        &self,
        request: Request<wire::InclusionRequest>,
    ) -> Result<Response<wire::Proof>, Status> {
        self.peer_of(&request)?;
        let query = request.into_inner();
        let origin = origin_of(&query.origin)?;
        let node = Arc::clone(&self.node);
        tokio::task::spawn_blocking(move || {
            let failed = |error: StoreError| Status::failed_precondition(error.to_string());
            let size = match query.size {
                0 => node
                    .store
                    .latest_checkpoint(&origin)
                    .map_err(failed)?
                    .map(|(size, _)| size)
                    .ok_or_else(|| Status::not_found("no checkpoint of that origin yet"))?,
                size => size,
            };
            let hashes = node
                .store
                .inclusion_proof(&origin, query.sequence, size)
                .map_err(failed)?;
            let leaf = node
                .store
                .tree_leaf(&origin, query.sequence)
                .map_err(failed)?;
            proof_reply(&node, &origin, size, hashes, leaf)
        })
        .await
        .map_err(|error| Status::internal(error.to_string()))?
        .map(Response::new)
    }

    async fn consistency(
        &self,
        request: Request<wire::ConsistencyRequest>,
    ) -> Result<Response<wire::Proof>, Status> {
        self.peer_of(&request)?;
        let query = request.into_inner();
        let origin = origin_of(&query.origin)?;
        if query.old_size == 0 || query.old_size > query.new_size {
            return Err(Status::invalid_argument(
                "sizes must satisfy 0 < old_size <= new_size",
            ));
        }
        let node = Arc::clone(&self.node);
        tokio::task::spawn_blocking(move || {
            let failed = |error: StoreError| Status::failed_precondition(error.to_string());
            let hashes = node
                .store
                .consistency_proof(&origin, query.old_size, query.new_size)
                .map_err(failed)?;
            let old_root = node
                .store
                .tree_root(&origin, query.old_size)
                .map_err(failed)?;
            proof_reply(&node, &origin, query.new_size, hashes, old_root)
        })
        .await
        .map_err(|error| Status::internal(error.to_string()))?
        .map(Response::new)
    }

    async fn reveal(
        &self,
        request: Request<wire::RevealRequest>,
    ) -> Result<Response<wire::Segment>, Status> {
        let peer = self.peer_of(&request)?;
        let to = peer.key;
        let mut ids = request.into_inner().ids;
        // Newest first, as in a pull stream's reveals.
        ids.sort_by(|a, b| (&b.origin, b.sequence).cmp(&(&a.origin, a.sequence)));
        if ids.len() > super::REVEAL_IDS_MAX {
            return Err(Status::invalid_argument(format!(
                "{} ids asked, over the limit of {}",
                ids.len(),
                super::REVEAL_IDS_MAX
            )));
        }
        let node = Arc::clone(&self.node);
        type Revealed = (
            Vec<Released>,
            Vec<prost::bytes::Bytes>,
            Vec<prost::bytes::Bytes>,
        );
        let (items, certificates, revocations) =
            tokio::task::spawn_blocking(move || -> Result<Revealed, StoreError> {
                let mut releaser = Releaser::new(&node, engine::party(&peer), peer.rules.clone());
                let mut out = Vec::new();
                for id in ids {
                    let Ok(origin) = OriginKey::from_slice(&id.origin) else {
                        continue;
                    };
                    let id = EntryId {
                        origin,
                        sequence: id.sequence,
                    };
                    if let Some(Held::Entry(entry)) = node.store.held(&id)? {
                        if releaser.decide(&entry)?.is_ok() && entry.origin() != peer.key {
                            out.push(Released::Entry(entry));
                        }
                    }
                }
                let (certificates, revocations) = super::identity::attach(&node.store, &out, &to)?;
                Ok((out, certificates, revocations))
            })
            .await
            .map_err(|error| Status::internal(error.to_string()))?
            .map_err(|error| Status::internal(error.to_string()))?;
        Ok(Response::new(wire::Segment {
            items: encode_items(&items),
            cursor: 0,
            head_cursor: self.node.store.last_arrival(),
            head_time_ms: crate::node::now_ms(),
            certificates,
            revocations,
            checkpoints: Vec::new(),
        }))
    }
}

/// Where a producer sends segments, and when it must stop.
struct Feed<'a> {
    /// The stream's channel.
    sender: &'a mpsc::Sender<Result<wire::Segment, Status>>,
    /// The runtime, to wait for new entries from the blocking thread.
    runtime: &'a tokio::runtime::Handle,
    /// Turns true when the node shuts down.
    stopping: watch::Receiver<bool>,
}

/// A proof answer: proof hashes, roots and the checkpoint of the size when held.
fn proof_reply(
    node: &Node,
    origin: &OriginKey,
    size: u64,
    hashes: Vec<[u8; 32]>,
    leaf_or_old_root: [u8; 32],
) -> Result<wire::Proof, Status> {
    let failed = |error: StoreError| Status::failed_precondition(error.to_string());
    Ok(wire::Proof {
        size,
        root: node
            .store
            .tree_root(origin, size)
            .map_err(failed)?
            .to_vec()
            .into(),
        hashes: hashes.iter().map(|hash| hash.to_vec().into()).collect(),
        leaf_or_old_root: leaf_or_old_root.to_vec().into(),
        checkpoint: node
            .store
            .checkpoint_at(origin, size)
            .map_err(failed)?
            .unwrap_or_default(),
    })
}

fn origin_of(bytes: &[u8]) -> Result<OriginKey, Status> {
    OriginKey::from_slice(bytes).map_err(|_| Status::invalid_argument("origin is not a node key"))
}

/// Streams segments after `cursor` to the feed until the receiver goes away, the node stops,
/// or (without `follow`) the stream has caught up. Runs on a blocking thread: it reads
/// RocksDB.
fn produce(
    node: &Node,
    peer: Peer,
    cursor: u64,
    follow: bool,
    mut feed: Feed<'_>,
) -> Result<(), StoreError> {
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
/// ([`engine::receive`]).
async fn ingest_segment(
    node: &Arc<Node>,
    peer: &Peer,
    segment: wire::Segment,
) -> Result<Ingested, SyncError> {
    let node = Arc::clone(node);
    let peer = peer.clone();
    tokio::task::spawn_blocking(move || engine::receive(&node, &peer, segment))
        .await
        .map_err(|error| SyncError::Peer(format!("ingest task failed: {error}")))?
        .map_err(SyncError::from)
}

/// Connects to `peer` over mutual TLS.
async fn connect(
    node: &Node,
    peer: &Peer,
) -> Result<wire::sync_client::SyncClient<tonic::transport::Channel>, SyncError> {
    connect_as(node.key(), peer.key, &peer.endpoint).await
}

/// Connects to the node with key `peer` at `endpoint` (`host:port`) over mutual TLS,
/// presenting `key`'s certificate: the client side of every session, usable on its own.
pub async fn connect_as(
    key: &crate::log::NodeKey,
    peer: OriginKey,
    endpoint: &str,
) -> Result<wire::sync_client::SyncClient<tonic::transport::Channel>, SyncError> {
    let config = Arc::new(tls::client_config(key, peer)?);
    let endpoint = endpoint.to_string();
    let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
        let config = Arc::clone(&config);
        let endpoint = endpoint.clone();
        async move {
            let tcp = TcpStream::connect(&endpoint).await?;
            tcp.set_nodelay(true)?;
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from("threatlog-peer")
                .map_err(std::io::Error::other)?;
            let tls = TlsConnector::from(config).connect(name, tcp).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let channel = tonic::transport::Endpoint::from_static("http://threatlog-peer")
        .initial_stream_window_size(super::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(super::CONNECTION_WINDOW_BYTES)
        .connect_timeout(Duration::from_millis(HANDSHAKE_MS_MAX))
        .connect_with_connector(connector)
        .await?;
    Ok(wire::sync_client::SyncClient::new(channel)
        .max_decoding_message_size(super::MESSAGE_BYTES_MAX)
        .max_encoding_message_size(super::MESSAGE_BYTES_MAX))
}

/// One session with `peer`: hello, reveal held stubs, then pull and follow. Returns when the
/// stream ends or fails.
async fn session(node: &Arc<Node>, peer: &Peer) -> Result<(), SyncError> {
    let mut client = connect(node, peer).await?;
    let greeting = hello(node, peer, &mut client).await?;
    let set_state = |state: &str| {
        let state = state.to_string();
        peer::update_status(&node.store, &peer.key, |status| status.state = state)
    };
    if peer.push && !greeting.pulls_from_you {
        let pushed = push(node, peer, &mut client, greeting.cursor_for_you).await;
        if !peer.pull {
            return pushed;
        }
        pushed?;
    }
    if !peer.pull {
        return Ok(());
    }
    set_state("syncing")?;
    let stubs = node.store.stubs(super::REVEAL_IDS_MAX)?;
    if !stubs.is_empty() {
        let ids = stubs
            .iter()
            .map(|id| wire::EntryRef {
                origin: id.origin.0.to_vec().into(),
                sequence: id.sequence,
            })
            .collect();
        let segment = client
            .reveal(wire::RevealRequest { ids })
            .await?
            .into_inner();
        ingest_segment(node, peer, segment).await?;
    }
    let cursor = peer::cursor(&node.store, &peer.key)?;
    let mut stream = client
        .pull(wire::PullRequest {
            cursor,
            follow: true,
        })
        .await?
        .into_inner();
    set_state("live")?;
    // Checkpoints are exchanged again now and then while the stream stays open.
    let mut exchange = tokio::time::interval(Duration::from_secs(CHECKPOINT_EXCHANGE_S));
    exchange.tick().await;
    loop {
        tokio::select! {
            segment = stream.message() => match segment? {
                Some(segment) => {
                    ingest_segment(node, peer, segment).await?;
                }
                None => return Err(SyncError::Peer("the peer closed the stream".into())),
            },
            _ = exchange.tick() => {
                hello(node, peer, &mut client).await?;
            }
        }
    }
}

/// Exchanges hellos with `peer`: identities, heads, checkpoints and cosignatures.
async fn hello(
    node: &Arc<Node>,
    peer: &Peer,
    client: &mut wire::sync_client::SyncClient<tonic::transport::Channel>,
) -> Result<wire::HelloResponse, SyncError> {
    let (info, checkpoints) = {
        let node = Arc::clone(node);
        tokio::task::spawn_blocking(move || (node_info(&node), super::checkpoints::outgoing(&node)))
            .await
            .map_err(|error| SyncError::Peer(error.to_string()))?
    };
    let response = client
        .hello(wire::HelloRequest {
            protocol_version: super::PROTOCOL_VERSION,
            node: Some(info),
            checkpoints: checkpoints?,
        })
        .await?
        .into_inner();
    if response.protocol_version != super::PROTOCOL_VERSION {
        return Err(SyncError::Peer(format!(
            "peer speaks protocol version {}, this node {}",
            response.protocol_version,
            super::PROTOCOL_VERSION
        )));
    }
    let node = Arc::clone(node);
    let key = peer.key;
    let notes = response.checkpoints.clone();
    let cosignatures = response.cosignatures.clone();
    tokio::task::spawn_blocking(move || {
        super::checkpoints::store_cosignatures(&node, &key, &cosignatures);
        // Our cosignatures over the peer's checkpoints travel back in its own hello to us.
        super::checkpoints::receive(&node, &key, &notes);
    })
    .await
    .map_err(|error| SyncError::Peer(error.to_string()))?;
    Ok(response)
}

/// Pushes this node's log after `cursor` to a peer that does not pull, until caught up.
async fn push(
    node: &Arc<Node>,
    peer: &Peer,
    client: &mut wire::sync_client::SyncClient<tonic::transport::Channel>,
    cursor: u64,
) -> Result<(), SyncError> {
    let (sender, receiver) = mpsc::channel(super::SEGMENTS_IN_FLIGHT_MAX);
    let producer_node = Arc::clone(node);
    let producer_peer = peer.clone();
    let runtime = tokio::runtime::Handle::current();
    let (_, stopping) = watch::channel(false);
    let producer = tokio::task::spawn_blocking(move || {
        let feed = Feed {
            sender: &sender,
            runtime: &runtime,
            stopping,
        };
        produce(&producer_node, producer_peer, cursor, false, feed)
    });
    let segments = tokio_stream::StreamExt::filter_map(ReceiverStream::new(receiver), Result::ok);
    let response = client.push(segments).await?.into_inner();
    producer
        .await
        .map_err(|error| SyncError::Peer(error.to_string()))??;
    if response.error.is_empty() {
        Ok(())
    } else {
        Err(SyncError::Peer(format!(
            "peer refused the push: {}",
            response.error
        )))
    }
}

/// Runs sessions with `peer` forever, backing off after failures.
async fn peer_task(node: Arc<Node>, peer: Peer) {
    let mut delay_ms = super::RETRY_DELAY_MS_MIN;
    loop {
        let result = session(&node, &peer).await;
        let quarantined = match &result {
            Ok(()) if !peer.pull => {
                // A push-only peer: push again once there is something new.
                let _ = peer::update_status(&node.store, &peer.key, |status| {
                    status.state = "idle".into();
                    status.last_error = None;
                });
                let mut arrivals = node.store.subscribe_arrivals();
                arrivals.borrow_and_update();
                let _ = arrivals.changed().await;
                delay_ms = super::RETRY_DELAY_MS_MIN;
                continue;
            }
            Ok(()) => false,
            Err(error) => {
                tracing::warn!(peer = %peer.key, org = %peer.org_name, "sync: {error}");
                peer::update_status(&node.store, &peer.key, |status| {
                    status.last_error = Some(error.to_string());
                    if !status.quarantined {
                        status.state = "backoff".into();
                    }
                })
                .map(|status| status.quarantined)
                .unwrap_or(false)
            }
        };
        if quarantined {
            tracing::error!(peer = %peer.key, "peer quarantined after repeated failures; not syncing with it until released");
            return;
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        delay_ms = (delay_ms * 2).min(super::RETRY_DELAY_MS_MAX);
    }
}

/// Keeps one task per peer that pulls or pushes, restarting them when peers change.
async fn engine(node: Arc<Node>, paired: PairedKeys) {
    let mut changes = node.peers_changed.subscribe();
    let mut tasks: HashMap<OriginKey, (Peer, tokio::task::JoinHandle<()>)> = HashMap::new();
    loop {
        changes.borrow_and_update();
        let peers = match peer::peers(&node.store) {
            Ok(peers) => peers,
            Err(error) => {
                tracing::error!("cannot read peers: {error}");
                vec![]
            }
        };
        *paired.write().unwrap_or_else(|e| e.into_inner()) =
            peers.iter().map(|peer| peer.key).collect();
        let mut keep = HashMap::new();
        for peer in peers {
            let running = tasks.remove(&peer.key);
            let quarantined = peer::status(&node.store, &peer.key)
                .map(|status| status.quarantined)
                .unwrap_or(false);
            match running {
                Some((old, handle)) if old == peer && !handle.is_finished() => {
                    keep.insert(peer.key, (old, handle));
                }
                other => {
                    if let Some((_, handle)) = other {
                        handle.abort();
                    }
                    if (peer.pull || peer.push) && !quarantined {
                        let handle = tokio::spawn(peer_task(Arc::clone(&node), peer.clone()));
                        keep.insert(peer.key, (peer, handle));
                    }
                }
            }
        }
        for (_, (_, handle)) in tasks.drain() {
            handle.abort();
        }
        tasks = keep;
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Runs the sync service on `listen` and the peer engine until `shutdown` resolves. The
/// bound address is written to `DIR/run/sync.addr`; `on_ready` gets it.
pub async fn serve(
    node: Arc<Node>,
    listen: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), SyncError> {
    let addr: SocketAddr = listen.parse().map_err(|_| SyncError::Address(listen))?;
    let paired: PairedKeys = Arc::default();
    *paired.write().unwrap_or_else(|e| e.into_inner()) = peer::peers(&node.store)?
        .iter()
        .map(|peer| peer.key)
        .collect();
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(
        node.key(),
        Arc::clone(&paired),
    )?));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SyncError::Io {
            context: format!("cannot listen on {addr}"),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| SyncError::Io {
        context: "cannot read the bound sync address".into(),
        source,
    })?;
    let addr_file = node.store.dir().join("run").join("sync.addr");
    std::fs::write(&addr_file, bound.to_string()).map_err(|source| SyncError::Io {
        context: format!("cannot write {}", addr_file.display()),
        source,
    })?;
    tracing::info!(
        "sync service listening on {bound} (mutual TLS, node key {})",
        node.origin()
    );
    on_ready(bound);
    let (connections, incoming) = mpsc::channel::<Result<PeerStream, std::io::Error>>(16);
    let accept = tokio::spawn(async move {
        let handshakes = Arc::new(tokio::sync::Semaphore::new(super::HANDSHAKES_MAX));
        loop {
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                return;
            };
            let (tcp, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accepting a sync connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(super::ACCEPT_RETRY_DELAY_MS)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _ = tcp.set_nodelay(true);
                let handshake = tokio::time::timeout(
                    Duration::from_millis(HANDSHAKE_MS_MAX),
                    acceptor.accept(tcp),
                );
                match handshake.await {
                    Ok(Ok(stream)) => {
                        let _ = connections.send(Ok(PeerStream(stream))).await;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%remote, "sync handshake refused: {error}");
                    }
                    Err(_) => tracing::warn!(%remote, "sync handshake timed out"),
                }
            });
        }
    });
    let engine = tokio::spawn(engine(Arc::clone(&node), paired));
    let (stop, stopping) = watch::channel(false);
    // On shutdown: outgoing sessions end at once, live-tail streams end, then the server
    // closes its connections.
    let engine_abort = engine.abort_handle();
    let shutdown = async move {
        shutdown.await;
        engine_abort.abort();
        stop.send_replace(true);
    };
    let service = wire::sync_server::SyncServer::new(SyncService {
        node: Arc::clone(&node),
        stopping,
    })
    .max_decoding_message_size(super::MESSAGE_BYTES_MAX)
    .max_encoding_message_size(super::MESSAGE_BYTES_MAX);
    let served = tonic::transport::Server::builder()
        .initial_stream_window_size(super::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(super::CONNECTION_WINDOW_BYTES)
        .max_concurrent_streams(super::STREAMS_PER_CONNECTION_MAX)
        .add_service(service)
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming), shutdown)
        .await;
    accept.abort();
    engine.abort();
    let _ = std::fs::remove_file(&addr_file);
    Ok(served?)
}
