//! The gRPC server: the tonic sync service peers call, and the mutual-TLS listener it runs on.
//! Each handler checks the caller is a paired, unquarantined peer and hands the work to
//! [`super::exchange`] on a blocking thread.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};

use super::bridge::{ingest_segment, produce, SyncError};
use super::exchange;
use super::peer::{self, Peer};
use super::tls::{self, PairedKeys};
use super::wire;
use crate::log::OriginKey;
use crate::node::Node;
use crate::slots::Slots;
use crate::store::StoreError;
use crate::turns::Tenant;

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
    /// Open pull streams per peer, at most [`super::PULLS_PER_PEER_MAX`].
    pulls: Slots<OriginKey>,
}

impl SyncService {
    /// The paired, unquarantined peer that made `request`.
    fn peer_of<T>(&self, request: &Request<T>) -> Result<Peer, Status> {
        let key = request
            .extensions()
            .get::<PeerIdentity>()
            .and_then(|identity| identity.0)
            .ok_or_else(|| Status::unauthenticated("no paired client certificate"))?;
        exchange::served_peer(&self.node, &key).map_err(refused)
    }

    /// Runs `work` on a blocking thread in a turn charged to `peer`, and answers with what it
    /// returns.
    async fn blocking<T: Send + 'static>(
        &self,
        peer: OriginKey,
        work: impl FnOnce(&Node) -> Result<T, Status> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let node = Arc::clone(&self.node);
        self.node
            .turns
            .blocking(Tenant::Peer(peer), move || work(&node))
            .await
            .map_err(|error| Status::internal(error.to_string()))?
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl wire::sync_server::Sync for SyncService {
    async fn hello(
        &self,
        request: Request<wire::HelloRequest>,
    ) -> Result<Response<wire::HelloResponse>, Status> {
        let peer = self.peer_of(&request)?;
        if request.get_ref().protocol_version != super::PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "protocol version {} is not supported; this node speaks {}",
                request.get_ref().protocol_version,
                super::PROTOCOL_VERSION
            )));
        }
        let notes = request.into_inner().checkpoints;
        self.blocking(peer.key, move |node| {
            exchange::answer_hello(node, &peer, &notes).map_err(internal)
        })
        .await
    }

    type PullStream = ReceiverStream<Result<wire::Segment, Status>>;

    async fn pull(
        &self,
        request: Request<wire::PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let peer = self.peer_of(&request)?;
        let wire::PullRequest { cursor, follow } = request.into_inner();
        let Some(pulling) = self.pulls.take(peer.key) else {
            // Held before it is answered, so that a peer retrying at once costs the node a
            // handshake per second per connection rather than as many as it can send.
            tokio::time::sleep(Duration::from_millis(super::PULL_REFUSAL_DELAY_MS)).await;
            return Err(Status::resource_exhausted(format!(
                "you have {} pull streams open, the most this node serves one peer",
                self.pulls.max()
            )));
        };
        let (sender, receiver) = mpsc::channel(super::SEGMENTS_IN_FLIGHT_MAX);
        let node = Arc::clone(&self.node);
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            let _pulling = pulling;
            let to = peer.key;
            if let Err(error) = produce(node, peer, cursor, follow, &sender, stopping).await {
                tracing::warn!(peer = %to, "pull stream ended: {error}");
                let _ = sender.send(Err(refused(error))).await;
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
                    let _ = exchange::record_failure(&self.node, &peer, &text);
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
        let peer = self.peer_of(&request)?;
        let query = request.into_inner();
        let origin = origin_of(&query.origin)?;
        self.blocking(peer.key, move |node| {
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
            proof_reply(node, &origin, size, hashes, leaf)
        })
        .await
    }

    async fn consistency(
        &self,
        request: Request<wire::ConsistencyRequest>,
    ) -> Result<Response<wire::Proof>, Status> {
        let peer = self.peer_of(&request)?;
        let query = request.into_inner();
        let origin = origin_of(&query.origin)?;
        if query.old_size == 0 || query.old_size > query.new_size {
            return Err(Status::invalid_argument(
                "sizes must satisfy 0 < old_size <= new_size",
            ));
        }
        self.blocking(peer.key, move |node| {
            let hashes = node
                .store
                .consistency_proof(&origin, query.old_size, query.new_size)
                .map_err(failed)?;
            let old_root = node
                .store
                .tree_root(&origin, query.old_size)
                .map_err(failed)?;
            proof_reply(node, &origin, query.new_size, hashes, old_root)
        })
        .await
    }

    async fn reveal(
        &self,
        request: Request<wire::RevealRequest>,
    ) -> Result<Response<wire::Segment>, Status> {
        let peer = self.peer_of(&request)?;
        let ids = request.into_inner().ids;
        if ids.len() > super::REVEAL_IDS_MAX {
            return Err(Status::invalid_argument(format!(
                "{} ids asked, over the limit of {}",
                ids.len(),
                super::REVEAL_IDS_MAX
            )));
        }
        self.blocking(peer.key, move |node| {
            exchange::answer_reveal(node, &peer, ids).map_err(internal)
        })
        .await
    }
}

/// A proof answer: proof hashes, roots and the checkpoint of the size when held.
fn proof_reply(
    node: &Node,
    origin: &OriginKey,
    size: u64,
    hashes: Vec<[u8; 32]>,
    leaf_or_old_root: [u8; 32],
) -> Result<wire::Proof, Status> {
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

/// Why this node stopped serving a peer: refused, or an internal failure.
fn refused(error: exchange::ExchangeError) -> Status {
    match error {
        exchange::ExchangeError::Peer(text) => Status::permission_denied(text),
        exchange::ExchangeError::Deferred(text) => Status::unavailable(text),
        exchange::ExchangeError::Store(error) => internal(error),
    }
}

/// A store failure answering a peer: the service's internal error.
fn internal(error: StoreError) -> Status {
    Status::internal(error.to_string())
}

/// A store failure answering a proof request: the asked sizes or positions are not held.
fn failed(error: StoreError) -> Status {
    Status::failed_precondition(error.to_string())
}

/// The origin key a request names.
fn origin_of(bytes: &[u8]) -> Result<OriginKey, Status> {
    OriginKey::from_slice(bytes).map_err(|_| Status::invalid_argument("origin is not a node key"))
}

/// Accepts TCP connections on `listener` and runs their TLS handshakes in tasks of their own,
/// at most [`super::HANDSHAKES_MAX`] at once, each within [`super::HANDSHAKE_MS_MAX`]; the
/// streams of completed handshakes go to `connections`. After a failed accept (out of file
/// descriptors) it pauses [`super::ACCEPT_RETRY_DELAY_MS`] instead of spinning.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    connections: mpsc::Sender<Result<PeerStream, std::io::Error>>,
) {
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
                Duration::from_millis(super::HANDSHAKE_MS_MAX),
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
}

/// The runtime the sync service runs on, apart from the REST API's (`threatlog serve` starts
/// both): its threads (named `threatlog-sync`, one per CPU) poll only peers' connections and
/// streams, so a flood of REST requests never queues a peer's stream behind it, and peers
/// streaming a long log never queue a user's request behind theirs.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("threatlog-sync")
        .enable_all()
        .build()
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
    let accept = tokio::spawn(accept_loop(listener, acceptor, connections));
    let engine = tokio::spawn(super::client::supervise(Arc::clone(&node), paired));
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
        pulls: Slots::new(super::PULLS_PER_PEER_MAX),
    })
    .max_decoding_message_size(super::MESSAGE_BYTES_MAX)
    .max_encoding_message_size(super::MESSAGE_BYTES_MAX);
    let served = tonic::transport::Server::builder()
        .initial_stream_window_size(super::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(super::CONNECTION_WINDOW_BYTES)
        .max_concurrent_streams(super::STREAMS_PER_CONNECTION_MAX)
        .http2_keepalive_interval(Some(Duration::from_secs(super::KEEPALIVE_INTERVAL_S)))
        .http2_keepalive_timeout(Some(Duration::from_secs(super::KEEPALIVE_TIMEOUT_S)))
        .add_service(service)
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming), shutdown)
        .await;
    accept.abort();
    engine.abort();
    let _ = std::fs::remove_file(&addr_file);
    Ok(served?)
}
