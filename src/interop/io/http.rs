//! The HTTP(S) client of feed fetches and webhooks: hyper-util's client over rustls (ring
//! provider), trusting the system's roots plus a feed's own CA certificates and sending the
//! feed's own request headers. GETs are conditional when validators (ETag, Last-Modified) are
//! known; redirects followed at most [`REDIRECTS_MAX`] times and never from https to http; the
//! response head, the body (as received and gzip-decoded) and the time all bounded. POSTs
//! (webhooks) follow no redirect.
//!
//! Blocking: a [`Client`] runs its requests on a current-thread runtime of its own, so a plain
//! thread (the CLI) or a tokio blocking thread (the feed schedule) may call it; async code must
//! not. IO: it opens TCP connections.

mod body;
mod parts;

pub use parts::parse_headers;

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::CertificateDer};

/// Connect timeout of feed requests, in seconds.
const CONNECT_TIMEOUT_S: u64 = 10;
/// Longest wait for a response head or the next piece of a body, in seconds.
const IO_TIMEOUT_S: u64 = 60;
/// Longest one GET may take, redirects and body included, in seconds: a server that trickles
/// bytes just within [`IO_TIMEOUT_S`] cannot hold a fetch for ever. Ten minutes read the
/// default 50 MiB import limit at 85 KB/s.
const FETCH_TIMEOUT_S: u64 = 600;
/// Longest HTTP response head, in bytes: hyper's read buffer, so a head that does not fit in
/// it is refused.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Most bytes of a POST's answer read (and dropped).
pub const POST_ANSWER_BYTES_MAX: u64 = 64 * 1024;
/// Most redirects one GET follows: feeds move rarely, and a loop must end.
pub const REDIRECTS_MAX: usize = 5;
/// Longest `headers` setting of a feed, in bytes.
pub const HEADERS_BYTES_MAX: usize = 8 * 1024;
/// Largest CA file of a feed, in bytes (a bundle of a few hundred certificates).
pub const CA_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// The HTTP validators remembered for a feed's manifest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` of the last response, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` of the last response, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// A fetched body, or "not modified".
pub enum Fetched {
    /// The body and the validators that came with it.
    Body(Vec<u8>, Validators),
    /// The server answered 304: what was fetched before is current.
    NotModified,
}

/// A GET that failed: the URL and what went wrong.
#[derive(Debug)]
pub struct HttpError {
    /// The URL requested.
    pub url: String,
    /// What went wrong, in words.
    pub message: String,
}

/// A feed's HTTP client: its trust roots and headers, and the runtime its requests run on.
pub struct Client {
    /// hyper-util's pooling client: the event files of a feed share its connections. Declared
    /// first so that it is dropped before the runtime its connections live on.
    client: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The feed's own headers, sent to the feed's origin only (a redirect elsewhere must not
    /// carry its credentials).
    feed_headers: HeaderMap,
    /// A current-thread runtime of this client's own: its callers block and hold none.
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client trusting the system's roots plus `extra_roots` (see [`load_ca_file`]), which
    /// sends `feed_headers` (see [`parse_headers`]) to the origin of each URL it is asked for.
    pub fn new(
        extra_roots: Vec<CertificateDer<'static>>,
        feed_headers: HeaderMap,
    ) -> Result<Client, String> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::debug!("system trust roots: {error}");
        }
        roots.add_parsable_certificates(native.certs);
        for certificate in extra_roots {
            roots
                .add(certificate)
                .map_err(|error| format!("CA certificate refused: {error}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("TLS: {error}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(Duration::from_secs(CONNECT_TIMEOUT_S)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http1_max_buf_size(HEAD_BYTES_MAX)
            .build(connector);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start the async runtime: {error}"))?;
        Ok(Client {
            client,
            feed_headers,
            runtime,
        })
    }

    /// A GET of `url`, conditional when validators are known, following redirects; a body
    /// over `bytes_max` bytes, as received or decoded, is refused. Blocks the calling thread.
    pub fn get(
        &self,
        url: &str,
        validators: Option<&Validators>,
        bytes_max: u64,
    ) -> Result<Fetched, HttpError> {
        self.on_url(url, |uri| async move {
            let fetch_timeout = Duration::from_secs(FETCH_TIMEOUT_S);
            let exchange = self.follow(uri, validators, bytes_max);
            match tokio::time::timeout(fetch_timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(format!("the fetch timed out after {FETCH_TIMEOUT_S} s")),
            }
        })
    }

    /// POSTs `body` with `headers` to `url` (no redirect followed) and returns the response
    /// status, the response body read (at most [`POST_ANSWER_BYTES_MAX`]) and dropped. Blocks
    /// the calling thread, at most [`IO_TIMEOUT_S`] for the head and as long for the body.
    pub fn post(&self, url: &str, headers: HeaderMap, body: Vec<u8>) -> Result<u16, HttpError> {
        self.on_url(url, |uri| async move {
            let mut request = Request::post(uri)
                .body(Full::new(Bytes::from(body)))
                .map_err(|error| format!("not a request: {error}"))?;
            *request.headers_mut() = headers;
            let io_timeout = Duration::from_secs(IO_TIMEOUT_S);
            let response =
                match tokio::time::timeout(io_timeout, self.client.request(request)).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(error)) => return Err(describe(&error, error.is_connect())),
                    Err(_) => return Err(format!("timed out after {IO_TIMEOUT_S} s")),
                };
            let status = response.status().as_u16();
            let read = body::read_body(response, POST_ANSWER_BYTES_MAX);
            // The answer's body says nothing the status does not; it is read so that the
            // connection can be reused, and a failure to read it changes nothing.
            let _ = tokio::time::timeout(io_timeout, read).await;
            Ok(status)
        })
    }

    /// Runs `exchange` with the URI `url` names on this client's runtime, blocking; its error
    /// (or the URL's) names `url`.
    fn on_url<T, F: std::future::Future<Output = Result<T, String>>>(
        &self,
        url: &str,
        exchange: impl FnOnce(Uri) -> F,
    ) -> Result<T, HttpError> {
        let outcome = match url.parse::<Uri>() {
            Ok(uri) => self.runtime.block_on(exchange(uri)),
            Err(error) => Err(format!("not a URL: {error}")),
        };
        outcome.map_err(|message| HttpError {
            url: url.to_string(),
            message,
        })
    }

    /// GETs `uri`, then each redirect's target, until an answer that is not a redirect.
    async fn follow(
        &self,
        mut uri: Uri,
        validators: Option<&Validators>,
        bytes_max: u64,
    ) -> Result<Fetched, String> {
        let origin = uri.clone();
        let mut redirects = 0;
        loop {
            let mut headers = parts::request_headers(validators);
            if parts::same_origin(&uri, &origin) {
                headers.extend(self.feed_headers.clone());
            }
            let response = self.send(&uri, headers).await?;
            let status = response.status();
            if status == StatusCode::NOT_MODIFIED {
                return Ok(Fetched::NotModified);
            }
            if status.is_redirection() && status != StatusCode::MULTIPLE_CHOICES {
                redirects += 1;
                if redirects > REDIRECTS_MAX {
                    return Err(format!("too many redirects ({redirects})"));
                }
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .ok_or_else(|| format!("HTTP status {} without a Location", status.as_u16()))?;
                let next = parts::redirect_target(&uri, location)?;
                if uri.scheme_str() == Some("https") && next.scheme_str() != Some("https") {
                    return Err(format!("redirect from https to {next} refused"));
                }
                tracing::debug!(from = %uri, to = %next, "feed redirect");
                uri = next;
                continue;
            }
            if status != StatusCode::OK {
                return Err(format!("HTTP status {}", status.as_u16()));
            }
            let text = |name| {
                let value = response.headers().get(name)?;
                value.to_str().ok().map(str::to_string)
            };
            let found = Validators {
                etag: text(header::ETAG),
                last_modified: text(header::LAST_MODIFIED),
            };
            let body = body::read_body(response, bytes_max).await?;
            return Ok(Fetched::Body(body, found));
        }
    }

    /// Sends one GET of `uri` and waits for the response head.
    async fn send(&self, uri: &Uri, headers: HeaderMap) -> Result<Response<Incoming>, String> {
        let mut request = Request::get(uri.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|error| format!("not a request: {error}"))?;
        *request.headers_mut() = headers;
        let io_timeout = Duration::from_secs(IO_TIMEOUT_S);
        match tokio::time::timeout(io_timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(describe(&error, error.is_connect())),
            Err(_) => Err(format!("timed out after {IO_TIMEOUT_S} s")),
        }
    }
}

/// A failed request in words: the TLS, head-size or connect failure under hyper's error when
/// there is one, else its chain of messages. `connecting`: the connection was not made.
fn describe(error: &(dyn Error + 'static), connecting: bool) -> String {
    let chain = causes(error);
    for cause in &chain {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return describe_tls(tls);
        }
        let too_large = cause.downcast_ref::<hyper::Error>();
        if too_large.is_some_and(hyper::Error::is_parse_too_large) {
            return format!("response head over the limit of {HEAD_BYTES_MAX} bytes");
        }
    }
    let innermost = chain
        .last()
        .map_or_else(String::new, |cause| cause.to_string());
    let timed_out = chain.iter().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>();
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    });
    match (connecting, timed_out) {
        (true, true) => format!("connect timed out after {CONNECT_TIMEOUT_S} s"),
        (true, false) => format!("cannot connect: {innermost}"),
        (false, _) => {
            let mut messages: Vec<String> = chain.iter().map(ToString::to_string).collect();
            messages.dedup();
            messages.join(": ")
        }
    }
}

/// `error` and its causes, looking inside `io::Error`s too (whose `source` skips the error
/// they wrap), at most 16 deep.
fn causes<'a>(error: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut chain = vec![error];
    while let Some(last) = chain.last().copied().filter(|_| chain.len() < 16) {
        let wrapped = last
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map(|inner| inner as &(dyn Error + 'static));
        match wrapped.or_else(|| last.source()) {
            Some(next) => chain.push(next),
            None => break,
        }
    }
    chain
}

/// A TLS failure in words, naming the setting that fixes an unknown issuer.
fn describe_tls(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            "TLS: certificate not trusted (issued by a CA that neither the system nor the \
             feed's CA file holds)"
                .to_string()
        }
        rustls::Error::InvalidCertificate(error) => {
            format!("TLS: certificate not trusted ({error})")
        }
        other => format!("TLS: {other}"),
    }
}

/// The CA certificates of a PEM file, each checked as a trust anchor.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let size = std::fs::metadata(path)
        .map_err(|error| error.to_string())?
        .len();
    if size > CA_FILE_BYTES_MAX {
        return Err(format!("larger than {CA_FILE_BYTES_MAX} bytes"));
    }
    let pem = std::fs::read(path).map_err(|error| error.to_string())?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("not PEM: {error}"))?;
    if certificates.is_empty() {
        return Err("holds no PEM certificate".to_string());
    }
    for certificate in &certificates {
        rustls::RootCertStore::empty()
            .add(certificate.clone())
            .map_err(|error| format!("not a CA certificate: {error}"))?;
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests;
