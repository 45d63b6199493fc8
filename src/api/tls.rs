//! HTTPS for the REST API: a listener that completes the TLS handshake (rustls) before handing
//! a connection to the HTTP server. Each handshake runs in its own task, so a client that
//! stalls its handshake holds up nobody else; it is dropped after [`HANDSHAKE_TIMEOUT_MS`].
//! At most [`HANDSHAKES_MAX`] handshakes run at once; further connections wait in the
//! kernel's backlog.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// TLS handshakes under way at once.
pub const HANDSHAKES_MAX: usize = 1024;
/// Connections whose handshake is complete, waiting for the HTTP server to take them.
const READY_MAX: usize = 64;
/// Pause after a failed `accept` (for example, out of file descriptors) before retrying.
const ACCEPT_RETRY_DELAY_MS: u64 = 50;

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificate and key (for example, a key that does not match).
    #[error("certificate and key: {0}")]
    Config(#[from] rustls::Error),
}

fn pem_error(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
    move |error| TlsError::Pem {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

/// An acceptor for the PEM certificate chain at `cert` and private key at `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(pem_error(cert))?
        .collect::<Result<_, _>>()
        .map_err(pem_error(cert))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert.display().to_string(),
            reason: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem_error(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A connection whose TLS handshake is complete, and its client's address.
type Ready = (TlsStream<TcpStream>, SocketAddr);

/// A TCP listener whose connections are TLS sessions.
pub struct TlsListener {
    /// Connections with a completed handshake.
    ready: mpsc::Receiver<Ready>,
    /// The bound address.
    local: SocketAddr,
    /// The task accepting connections and starting their handshakes.
    accepting: JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS on `tcp`, bound to `local`, with `acceptor`; handshakes start at once, in
    /// the background.
    pub fn new(tcp: TcpListener, local: SocketAddr, acceptor: TlsAcceptor) -> Self {
        let (sender, ready) = mpsc::channel(READY_MAX);
        let accepting = tokio::spawn(accept_loop(tcp, acceptor, sender));
        Self {
            ready,
            local,
            accepting,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Accepts connections on `tcp` and hands each to its own handshake task, at most
/// [`HANDSHAKES_MAX`] at once; completed sessions go to `ready`.
async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, ready: mpsc::Sender<Ready>) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    loop {
        let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!("accepting a connection failed: {error}");
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_DELAY_MS)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let timeout = Duration::from_millis(HANDSHAKE_TIMEOUT_MS);
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                // The server is gone when the channel is closed: the session just ends.
                Ok(Ok(tls)) => drop(ready.send((tls, peer)).await),
                Ok(Err(error)) => tracing::debug!("TLS handshake with {peer} failed: {error}"),
                Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accepting task ended (it never does while the listener lives): no more
            // connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
