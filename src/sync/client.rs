//! The gRPC client: connecting to a peer over mutual TLS, one session per peer (hello,
//! reveals, pull and follow, or push), and the tasks that keep those sessions running as
//! [`super::engine::PeerSync`] schedules them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsConnector;
use tokio_stream::wrappers::ReceiverStream;

use super::bridge::{ingest_segment, produce, SyncError};
use super::engine::{Next, PeerSync};
use super::exchange;
use super::peer::{self, Peer};
use super::tls::{self, PairedKeys};
use super::wire;
use crate::log::OriginKey;
use crate::node::Node;
use crate::turns::Tenant;

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
        .connect_timeout(Duration::from_millis(super::HANDSHAKE_MS_MAX))
        .http2_keep_alive_interval(Duration::from_secs(super::KEEPALIVE_INTERVAL_S))
        .keep_alive_timeout(Duration::from_secs(super::KEEPALIVE_TIMEOUT_S))
        .keep_alive_while_idle(true)
        .connect_with_connector(connector)
        .await?;
    Ok(wire::sync_client::SyncClient::new(channel)
        .max_decoding_message_size(super::MESSAGE_BYTES_MAX)
        .max_encoding_message_size(super::MESSAGE_BYTES_MAX))
}

/// Seconds between checkpoint exchanges on a live session.
const CHECKPOINT_EXCHANGE_S: u64 = 10;

/// The connection a session runs over.
type Client = wire::sync_client::SyncClient<tonic::transport::Channel>;

/// One session with `peer`, resuming after `cursor`: hello, reveal held stubs, then pull and
/// follow (or push, to a peer that does not pull). Each received segment is reported to
/// `sync`. Returns when the stream ends or fails.
async fn session(node: &Arc<Node>, peer: &Peer, sync: &mut PeerSync) -> Result<(), SyncError> {
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
    if let Some(request) = blocking(node, peer, exchange::reveal_request).await?? {
        let segment = within_deadline(client.reveal(request)).await?.into_inner();
        let revealer = peer.clone();
        blocking(node, peer, move |node| {
            exchange::receive_reveal(node, &revealer, segment)
        })
        .await??;
    }
    let mut stream = client
        .pull(wire::PullRequest {
            cursor: sync.cursor(),
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
                Some(segment) => receive(node, peer, sync, segment).await?,
                None => return Err(SyncError::Peer("the peer closed the stream".into())),
            },
            _ = exchange.tick() => {
                hello(node, peer, &mut client).await?;
            }
        }
    }
}

/// Ingests one segment of `peer`'s and reports how it went to `sync`.
async fn receive(
    node: &Arc<Node>,
    peer: &Peer,
    sync: &mut PeerSync,
    segment: wire::Segment,
) -> Result<(), SyncError> {
    let cursor = segment.cursor;
    ingest_segment(node, peer, segment).await?;
    sync.accepted(cursor);
    Ok(())
}

/// A unary call that must be answered within [`super::CALL_DEADLINE_MS`]: a peer that accepts
/// a call and never answers it would otherwise hold the session for ever.
async fn within_deadline<T>(
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, SyncError> {
    match tokio::time::timeout(Duration::from_millis(super::CALL_DEADLINE_MS), call).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(SyncError::Peer(format!(
            "the peer did not answer within {} ms",
            super::CALL_DEADLINE_MS
        ))),
    }
}

/// Runs `work` on a blocking thread, in a turn charged to `peer`.
async fn blocking<T: Send + 'static>(
    node: &Arc<Node>,
    peer: &Peer,
    work: impl FnOnce(&Node) -> T + Send + 'static,
) -> Result<T, SyncError> {
    let worker = Arc::clone(node);
    node.turns
        .blocking(Tenant::Peer(peer.key), move || work(&worker))
        .await
        .map_err(|error| SyncError::Peer(format!("blocking task failed: {error}")))
}

/// Exchanges hellos with `peer`: identities, heads, checkpoints and cosignatures.
async fn hello(
    node: &Arc<Node>,
    peer: &Peer,
    client: &mut Client,
) -> Result<wire::HelloResponse, SyncError> {
    let request = blocking(node, peer, exchange::hello_request).await??;
    let response = within_deadline(client.hello(request)).await?.into_inner();
    if response.protocol_version != super::PROTOCOL_VERSION {
        return Err(SyncError::Peer(format!(
            "peer speaks protocol version {}, this node {}",
            response.protocol_version,
            super::PROTOCOL_VERSION
        )));
    }
    let (answered, greeted) = (response.clone(), peer.clone());
    blocking(node, peer, move |node| {
        exchange::hello_answered(node, &greeted, &answered)
    })
    .await?;
    Ok(response)
}

/// Pushes this node's log after `cursor` to a peer that does not pull, until caught up.
async fn push(
    node: &Arc<Node>,
    peer: &Peer,
    client: &mut Client,
    cursor: u64,
) -> Result<(), SyncError> {
    let (sender, receiver) = mpsc::channel(super::SEGMENTS_IN_FLIGHT_MAX);
    let producer_node = Arc::clone(node);
    let producer_peer = peer.clone();
    let (_stop, stopping) = watch::channel(false);
    let producer = tokio::spawn(async move {
        produce(
            producer_node,
            producer_peer,
            cursor,
            false,
            &sender,
            stopping,
        )
        .await
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

/// Runs sessions with `peer` for as long as [`PeerSync`] says so: retries after failures,
/// and stops once the peer is quarantined.
async fn peer_task(node: Arc<Node>, peer: Peer) {
    let cursor = match peer::cursor(&node.store, &peer.key) {
        Ok(cursor) => cursor,
        Err(error) => {
            tracing::error!(peer = %peer.key, "cannot read the peer's cursor: {error}");
            return;
        }
    };
    let mut sync = PeerSync::new(cursor, super::RETRY_DELAY_MS_MIN, super::RETRY_DELAY_MS_MAX);
    loop {
        match sync.next(node.store.now_ms()) {
            Next::Connect { .. } => {}
            Next::Wait { at_ms } => {
                let wait_ms = at_ms.saturating_sub(node.store.now_ms()).max(0);
                tokio::time::sleep(Duration::from_millis(wait_ms.unsigned_abs())).await;
                continue;
            }
            Next::Stop => {
                tracing::error!(peer = %peer.key, "peer quarantined after repeated failures; not syncing with it until released");
                return;
            }
        }
        let result = session(&node, &peer, &mut sync).await;
        let (failed, quarantined) = match &result {
            Ok(()) if !peer.pull => {
                // A push-only peer: push again once there is something new.
                let _ = peer::update_status(&node.store, &peer.key, |status| {
                    status.state = "idle".into();
                    status.last_error = None;
                });
                let mut arrivals = node.store.subscribe_arrivals();
                arrivals.borrow_and_update();
                let _ = arrivals.changed().await;
                (false, false)
            }
            Ok(()) => (false, false),
            Err(error) => {
                tracing::warn!(peer = %peer.key, org = %peer.org_name, "sync: {error}");
                let quarantined = peer::update_status(&node.store, &peer.key, |status| {
                    status.last_error = Some(error.to_string());
                    if !status.quarantined {
                        status.state = "backoff".into();
                    }
                })
                .map(|status| status.quarantined)
                .unwrap_or(false);
                (true, quarantined)
            }
        };
        sync.ended(node.store.now_ms(), failed, quarantined);
    }
}

/// Keeps one task per peer that pulls or pushes, restarting them when peers change.
pub async fn supervise(node: Arc<Node>, paired: PairedKeys) {
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
