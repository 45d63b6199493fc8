//! `threatlog serve`: opens (or first initialises) the node, listens, writes the bound address
//! to `DIR/run/api.addr`, and shuts down gracefully on SIGINT or SIGTERM: in-flight requests
//! finish, the sync service, the feed schedule and the checkpoint timer stop and are waited
//! for, and every acknowledged append is already durable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{router, ApiState};
use crate::config::{self, Config};
use crate::node::{InitReport, Node, NodeError, KEY_FILE};

/// File, under `DIR/run/`, holding the API's bound address while `serve` runs.
pub const ADDR_FILE: &str = "api.addr";
/// Longest host name used as an organisation name.
const HOST_NAME_BYTES_MAX: usize = 255;

/// Failures of `serve`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Opening or initialising the node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
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

/// This machine's host name, if it has a usable one.
fn host_name() -> Option<String> {
    let mut buffer = [0u8; HOST_NAME_BYTES_MAX + 1];
    // SAFETY: the pointer and length describe `buffer`, which outlives the call.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return None;
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let name = String::from_utf8_lossy(&buffer[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// Initialises `dir` if it holds no node yet, keeping a configuration file already there.
/// Returns the report when it initialised.
pub fn init_if_empty(dir: &Path) -> Result<Option<InitReport>, ServeError> {
    if dir.join(KEY_FILE).exists() {
        return Ok(None);
    }
    let config_path = dir.join(config::FILE_NAME);
    let existing = std::fs::read_to_string(&config_path).ok();
    let config = Config::load(dir).map_err(NodeError::from)?;
    let org_name = config
        .node
        .org_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .or_else(host_name)
        .unwrap_or_else(|| "threatlog".into());
    let report = Node::init(dir, org_name.trim(), None, false)?;
    if let Some(text) = existing {
        std::fs::write(&config_path, text).map_err(io(format!("{}", config_path.display())))?;
    }
    Ok(Some(report))
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

/// Resolves when the process receives SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            // Without a SIGTERM handler the default action (exit) still applies.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Runs the API for the node in `dir` until SIGINT or SIGTERM. `listen` overrides the
/// configured `api.listen`; port 0 picks a free port. With `api.tls_cert` and `api.tls_key`
/// configured it serves HTTPS. `on_ready` is called with the API's URL once it listens.
pub async fn serve(
    node: Node,
    listen: Option<String>,
    sync_listen: Option<String>,
    on_ready: impl FnOnce(&str),
) -> Result<(), ServeError> {
    let dir = node.store.dir().to_path_buf();
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
    let node = Arc::new(node);
    // One signal stops both services: the API drains in-flight requests, sync streams end.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.send_replace(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        // The sender lives until the signal; an error means it is gone, so stop too.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let sync_listen = sync_listen.unwrap_or_else(|| node.config.sync.listen.clone());
    let sync = tokio::spawn(crate::sync::serve(
        Arc::clone(&node),
        sync_listen,
        until_stopped(stopped.clone()),
        |addr| println!("sync service listening on {addr}"),
    ));
    let feeds = crate::interop::feed_fetch::spawn_schedule(Arc::clone(&node), stopped.clone());
    let checkpoints = tokio::spawn(crate::audit::checkpoint_timer(
        Arc::clone(&node),
        stopped.clone(),
    ));
    let app = router(ApiState::new(Arc::clone(&node)));
    let addr_file = write_addr_file(&dir, bound)?;
    let url = format!("{}://{bound}", if tls.is_some() { "https" } else { "http" });
    tracing::info!("REST API listening on {url}");
    on_ready(&url);
    let served = match tls {
        Some(acceptor) => {
            axum::serve(super::tls::TlsListener::new(listener, bound, acceptor), app)
                .with_graceful_shutdown(until_stopped(stopped))
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(until_stopped(stopped))
                .await
        }
    }
    .map_err(io("serving the API"));
    match sync.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!("sync service: {error}"),
        Err(error) => tracing::error!("sync service task: {error}"),
    }
    // The timers stop with the signal too (a feed fetch under way finishes first).
    for (name, task) in [
        ("checkpoint timer", Some(checkpoints)),
        ("feed schedule", feeds),
    ] {
        let Some(task) = task else { continue };
        if let Err(error) = task.await {
            tracing::error!("{name}: {error}");
        }
    }
    // The address is stale once the listener is gone; failing to remove it changes nothing.
    let _ = std::fs::remove_file(&addr_file);
    served
}
