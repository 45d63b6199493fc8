//! How the REST API takes connections from the network, so that clients that hold
//! connections without using them cannot keep others out:
//!
//! - at most `api.connections_max` connections at once, and `api.connections_per_address_max`
//!   from one IP address (further connections from that address are closed at once);
//! - each connection runs in its own task, TLS handshake included, which must complete within
//!   `api.handshake_timeout_s`;
//! - a request head must arrive whole within `api.header_timeout_s` of the connection's start
//!   or of the previous response (so an idle kept-alive connection is closed after as long);
//! - a request body must arrive whole within `api.body_timeout_s` of its head;
//! - a response the client stops reading for `api.send_stall_timeout_s` ends the connection.
//!
//! A failed `accept` (for example, out of file descriptors) is retried after a pause.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::ApiConfig;
use crate::slots::{Slot, Slots};

/// The address a request came from, put into its extensions by the listener.
#[derive(Clone, Copy, Debug)]
pub struct Remote(pub SocketAddr);

/// Pause after a failed `accept` before retrying.
pub const ACCEPT_RETRY_DELAY_MS: u64 = 50;

/// The connection limits and timeouts of the REST API (`[api]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub connections_max: usize,
    /// Connections open at once from one IP address.
    pub connections_per_address_max: usize,
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Longest a request head may take to arrive, and a kept-alive connection may stay idle.
    pub header_timeout: Duration,
    /// Longest a request body may take to arrive, from its head.
    pub body_timeout: Duration,
    /// Longest a response may wait for the client to read it.
    pub send_stall_timeout: Duration,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &ApiConfig) -> Self {
        Limits {
            connections_max: config.connections_max.max(1),
            connections_per_address_max: config.connections_per_address_max,
            handshake_timeout: Duration::from_secs(config.handshake_timeout_s),
            header_timeout: Duration::from_secs(config.header_timeout_s),
            body_timeout: Duration::from_secs(config.body_timeout_s),
            send_stall_timeout: Duration::from_secs(config.send_stall_timeout_s),
        }
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) within `limits` until `stop` resolves,
/// then waits for the open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.connections_max));
    let addresses = Slots::new(limits.connections_per_address_max);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = Arc::clone(&open).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accepting a REST connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_DELAY_MS)).await;
                    continue;
                }
            },
        };
        let Some(slot) = addresses.take(peer.ip()) else {
            tracing::debug!("closed a connection from {peer}: too many from its address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            permit,
            slot,
            app: app.clone(),
            limits,
            watcher: graceful.watcher(),
        };
        tokio::spawn(connection.run(stream, peer, tls.clone()));
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One accepted connection and what it holds while it is open.
struct Connection {
    /// Its place among `api.connections_max`.
    permit: OwnedSemaphorePermit,
    /// Its place among its address's connections.
    slot: Slot<IpAddr>,
    /// The API.
    app: Router,
    /// Timeouts.
    limits: Limits,
    /// Lets shutdown wait for the connection's request to finish.
    watcher: Watcher,
}

impl Connection {
    /// Completes the TLS handshake, if any, then serves HTTP/1.1 requests until the client
    /// closes or a limit ends the connection.
    async fn run(self, stream: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) {
        match tls {
            None => self.http(stream, peer).await,
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                match tokio::time::timeout(self.limits.handshake_timeout, handshake).await {
                    Ok(Ok(stream)) => self.http(stream, peer).await,
                    Ok(Err(error)) => tracing::debug!("TLS handshake with {peer} failed: {error}"),
                    Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                }
            }
        }
    }

    /// Serves HTTP/1.1 requests on `stream`, each marked as coming from `peer`.
    async fn http<S>(self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            permit,
            slot,
            app,
            limits,
            watcher,
        } = self;
        let body_timeout = limits.body_timeout;
        let service = app.map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(|body| Body::new(TimedBody::new(body, body_timeout)));
            request.extensions_mut().insert(Remote(peer));
            request
        });
        let io = TokioIo::new(StallGuard::new(stream, limits.send_stall_timeout));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        let served = http.serve_connection(io, TowerToHyperService::new(service));
        if let Err(error) = watcher.watch(served).await {
            tracing::debug!("REST connection ended: {error}");
        }
        drop((permit, slot));
    }
}

/// Why a request body failed: it did not arrive within `api.body_timeout_s`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within api.body_timeout_s ({0} s)")]
pub struct BodyTimeout(u64);

/// A request body that fails once its deadline passes.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.timeout.as_secs()).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A stream whose writes fail when the peer has not taken any bytes for `timeout`: a client
/// that stops reading its response cannot hold the connection open for ever.
struct StallGuard<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write waits.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallGuard<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        StallGuard {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Passes on a write's outcome; while it waits, fails it once the stall lasts `timeout`.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading its response",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
