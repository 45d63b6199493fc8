//! The REST listener of `threatlog serve`: binds the API's address (HTTPS with `api.tls_cert`
//! and `api.tls_key`), writes the bound address to `DIR/run/api.addr`, and serves until told
//! to stop, letting in-flight requests finish. Everything else `serve` starts, and the
//! signal that stops it all, is [`crate::run`]'s.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{router, ApiState};
use crate::node::Node;

/// File, under `DIR/run/`, holding the API's bound address while `serve` runs.
pub const ADDR_FILE: &str = "api.addr";

/// Failures of the REST listener.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The HTTPS certificate or key cannot be used.
    #[error("HTTPS: {0}")]
    Tls(#[from] super::tls::TlsError),
    /// The listen address is not an address.
    #[error("--api-listen '{0}' is not an address like 127.0.0.1:8080")]
    Address(String),
    /// Binding, serving or writing the address file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let context = context.into();
    move |source| ServeError::Io { context, source }
}

/// The API's socket, bound but not yet serving, with its TLS acceptor when HTTPS is
/// configured.
pub struct Listener {
    /// The bound socket.
    listener: tokio::net::TcpListener,
    /// The address it is bound to (port 0 resolved).
    bound: SocketAddr,
    /// HTTPS, when `api.tls_cert` and `api.tls_key` are configured.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Binds the API for `node`: `listen` overrides the configured `api.listen`; port 0 picks a
/// free port. Binding first lets `serve` fail before it starts anything else.
pub async fn bind(node: &Node, listen: Option<String>) -> Result<Listener, ServeError> {
    let listen = listen.unwrap_or_else(|| node.config.api.listen.clone());
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| ServeError::Address(listen.clone()))?;
    let tls = match (&node.config.api.tls_cert, &node.config.api.tls_key) {
        (Some(cert), Some(key)) => Some(super::tls::acceptor(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(io(format!("cannot listen on {addr}")))?;
    let bound = listener
        .local_addr()
        .map_err(io("cannot read the bound address"))?;
    Ok(Listener {
        listener,
        bound,
        tls,
    })
}

/// Writes `addr` to `DIR/run/api.addr` atomically (write then rename), so a reader never sees
/// a partial address.
fn write_addr_file(dir: &Path, addr: SocketAddr) -> Result<PathBuf, ServeError> {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).map_err(io(format!("{}", run.display())))?;
    let path = run.join(ADDR_FILE);
    let temporary = run.join(format!("{ADDR_FILE}.tmp"));
    std::fs::write(&temporary, format!("{addr}\n"))
        .map_err(io(format!("{}", temporary.display())))?;
    std::fs::rename(&temporary, &path).map_err(io(format!("{}", path.display())))?;
    Ok(path)
}

/// Serves the API on `listener` until `stop` resolves, then lets in-flight requests finish.
/// `on_ready` is called with the API's URL once it listens; `DIR/run/api.addr` names the
/// bound address meanwhile.
pub async fn serve(
    node: Arc<Node>,
    listener: Listener,
    stop: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&str),
) -> Result<(), ServeError> {
    let Listener {
        listener,
        bound,
        tls,
    } = listener;
    let dir = node.store.dir().to_path_buf();
    let limits = super::connections::Limits::of(&node.config.api);
    let app = router(ApiState::new(node));
    let addr_file = write_addr_file(&dir, bound)?;
    let url = format!("{}://{bound}", if tls.is_some() { "https" } else { "http" });
    tracing::info!("REST API listening on {url}");
    on_ready(&url);
    super::connections::serve(listener, tls, app, limits, stop).await;
    // The address is stale once the listener is gone; failing to remove it changes nothing.
    let _ = std::fs::remove_file(&addr_file);
    Ok(())
}
