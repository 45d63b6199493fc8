//! `threatlog serve`: everything a running node starts, in one place. [`serve`] binds the REST
//! API ([`crate::api::server`]), starts the sync service ([`crate::sync::service`]), the
//! feed schedule ([`crate::interop::io::schedule`]) and the checkpoint timer
//! ([`crate::audit::checkpoint_timer`]), and on SIGINT or SIGTERM stops them all with one
//! signal and waits for every task it started: in-flight requests finish, sync streams end, a
//! feed fetch under way completes, and every acknowledged append is already durable.
//!
//! This module sits above `api` and `sync` because it starts both.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::server::{self as rest, ServeError};
use crate::config::{self, Config};
use crate::node::{InitReport, Node, NodeError, KEY_FILE};

/// Longest host name used as an organisation name.
const HOST_NAME_BYTES_MAX: usize = 255;

/// Failures of `serve`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Opening or initialising the node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The REST API could not listen or serve.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// Writing a file of the data directory failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A configured webhook cannot be used.
    #[error("{0}")]
    Webhook(String),
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
pub fn init_if_empty(dir: &Path) -> Result<Option<InitReport>, RunError> {
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
        std::fs::write(&config_path, text).map_err(|source| RunError::Io {
            context: config_path.display().to_string(),
            source,
        })?;
    }
    Ok(Some(report))
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

/// A future that resolves once `stopped` says stop (or its sender is gone, which means the
/// same).
async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    // The sender lives until the signal; an error means it is gone, so stop too.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// The background tasks `serve` started besides the REST listener, each joined on shutdown.
struct Tasks {
    /// The sync service (gRPC over mutual TLS), on [`crate::sync::runtime`]; it logs its own
    /// failure.
    sync: JoinHandle<()>,
    /// The runtime the sync service runs on.
    sync_runtime: tokio::runtime::Runtime,
    /// The feed schedule, when feeds are configured.
    feeds: Option<JoinHandle<()>>,
    /// The checkpoint timer.
    checkpoints: JoinHandle<()>,
    /// One delivery task per configured webhook.
    webhooks: Vec<JoinHandle<()>>,
}

impl Tasks {
    /// Starts the sync service on `sync_listen` (the configured `sync.listen` when `None`)
    /// on a runtime of its own, the feed schedule and the checkpoint timer, all stopping when
    /// `stopped` says so.
    fn start(
        node: &Arc<Node>,
        sync_listen: Option<String>,
        sync_runtime: tokio::runtime::Runtime,
        stopped: &watch::Receiver<bool>,
        webhooks: Vec<JoinHandle<()>>,
    ) -> Tasks {
        let sync_listen = sync_listen.unwrap_or_else(|| node.config.sync.listen.clone());
        let service = crate::sync::serve(
            Arc::clone(node),
            sync_listen,
            until_stopped(stopped.clone()),
            |addr| println!("sync service listening on {addr}"),
        );
        let sync = sync_runtime.spawn(async move {
            if let Err(error) = service.await {
                tracing::error!("sync service: {error}");
            }
        });
        let feeds = crate::interop::io::schedule::spawn_schedule(Arc::clone(node), stopped.clone());
        let checkpoints = tokio::spawn(crate::audit::checkpoint_timer(
            Arc::clone(node),
            stopped.clone(),
        ));
        Tasks {
            sync,
            sync_runtime,
            feeds,
            checkpoints,
            webhooks,
        }
    }

    /// Waits for every task; their failures are logged, as the node is stopping anyway.
    async fn join(self) {
        if let Err(error) = self.sync.await {
            tracing::error!("sync service task: {error}");
        }
        // The service has ended; what is left on its runtime (connections closing, peer
        // sessions) is dropped, and the node work they started is waited for below.
        self.sync_runtime.shutdown_background();
        // The timers stop with the signal too (a feed fetch under way finishes first).
        let webhooks = self
            .webhooks
            .into_iter()
            .map(|task| ("webhook", Some(task)));
        let timers = [
            ("checkpoint timer", Some(self.checkpoints)),
            ("feed schedule", self.feeds),
        ];
        for (name, task) in timers.into_iter().chain(webhooks) {
            let Some(task) = task else { continue };
            if let Err(error) = task.await {
                tracing::error!("{name}: {error}");
            }
        }
    }
}

/// Longest a stopping node waits for the node work under way ([`crate::workers::wait_idle`]).
pub const WORK_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs the node until SIGINT or SIGTERM: the REST API on `listen` (the configured
/// `api.listen` when `None`; port 0 picks a free port; HTTPS with `api.tls_cert` and
/// `api.tls_key`), the sync service on `sync_listen`, the feed schedule and the checkpoint
/// timer. `on_ready` is called with the API's URL once it listens. Returns once every task
/// it started has ended.
pub async fn serve(
    node: Node,
    listen: Option<String>,
    sync_listen: Option<String>,
    on_ready: impl FnOnce(&str),
) -> Result<(), RunError> {
    raise_open_files_limit();
    // Binding first: a bad address or certificate fails before anything else starts.
    let listener = rest::bind(&node, listen).await?;
    let sync_runtime = crate::sync::runtime().map_err(|source| RunError::Io {
        context: "cannot start the sync service's runtime".into(),
        source,
    })?;
    let node = Arc::new(node);
    // One signal stops every service: the API drains in-flight requests, sync streams end.
    let (stop, stopped) = watch::channel(false);
    // A webhook whose key file or user is wrong stops the start, as a bad address does.
    let webhooks = match crate::api::webhooks::start(&node, &stopped) {
        Ok(webhooks) => webhooks,
        Err(error) => {
            // Not dropped here: a runtime cannot be dropped inside another one.
            sync_runtime.shutdown_background();
            return Err(RunError::Webhook(error));
        }
    };
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        stop.send_replace(true);
    });
    let tasks = Tasks::start(&node, sync_listen, sync_runtime, &stopped, webhooks);
    let served = rest::serve(
        Arc::clone(&node),
        listener,
        until_stopped(stopped.clone()),
        on_ready,
    )
    .await;
    if served.is_err() {
        // The API failed without a signal: stop the rest too, so that joining ends.
        signal.abort();
    }
    tasks.join().await;
    // Finished once it sent the stop, or aborted above; either way this returns at once.
    let _ = signal.await;
    // Node work still running (a sync session's segment, a request its client left) finishes
    // before the node closes its store.
    let waited = tokio::task::spawn_blocking(|| crate::workers::wait_idle(WORK_WAIT_MAX)).await;
    if !matches!(waited, Ok(true)) {
        tracing::warn!("node work still running after {WORK_WAIT_MAX:?}; stopping anyway");
    }
    Ok(served?)
}

/// Raises this process's soft limit on open files to its hard limit: every REST and sync
/// connection is an open file, and the usual soft limit (1024) is below what
/// `api.connections_max` and RocksDB need together.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
        }
    };
    match raised {
        true => tracing::debug!("open files limit: {}", limit.rlim_cur),
        false => tracing::warn!(
            "cannot raise the open files limit: {}",
            std::io::Error::last_os_error()
        ),
    }
}
