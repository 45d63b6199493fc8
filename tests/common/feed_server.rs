//! A MISP feed server for the feed tests: plain HTTP/1.1, or TLS with a certificate from a
//! test CA made with rcgen, on 127.0.0.1. One thread per connection, one request per
//! connection (every answer says `Connection: close`); each request head is recorded and
//! answered by the test's handler.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_rustls::rustls::{self, pki_types};

/// Longest request head the server reads, in bytes.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// How long a connection may sit idle before the server drops it, in seconds.
const IDLE_S: u64 = 30;

/// A request as the handler sees it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The request target, e.g. `/misp/manifest.json`.
    pub path: String,
    /// The whole head, lower-cased (header names are case-insensitive).
    pub head: String,
}

impl Request {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.head
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
    }
}

/// Answers a request by writing the whole response.
pub type Handler = dyn Fn(&Request, &mut dyn Write) + Send + Sync;

/// A test CA and a server certificate it issued for 127.0.0.1.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub pem: String,
    /// The server's TLS configuration, with the certificate the CA issued.
    config: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A fresh CA and server certificate.
    pub fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "threatlog test feed CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let server = params.signed_by(&server_key, &issuer).unwrap();
        let key = pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![server.der().clone()], key.into())
            .unwrap();
        let base64 = base64::engine::general_purpose::STANDARD.encode(ca.der());
        let lines: Vec<&str> = base64
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        TestCa {
            pem: format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            ),
            config: Arc::new(config),
        }
    }
}

/// A running feed server; it stops when dropped.
pub struct FeedServer {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub url: String,
    /// Every request head received, in order.
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// The listening address.
    addr: SocketAddr,
    /// Tells the accepting thread to stop.
    stop: Arc<AtomicBool>,
}

impl FeedServer {
    /// A plain-HTTP server answering with `handler`.
    pub fn http(handler: impl Fn(&Request, &mut dyn Write) + Send + Sync + 'static) -> Self {
        FeedServer::start(None, Arc::new(handler))
    }

    /// An https server with a certificate of `ca`, answering with `handler`.
    pub fn https(
        ca: &TestCa,
        handler: impl Fn(&Request, &mut dyn Write) + Send + Sync + 'static,
    ) -> Self {
        FeedServer::start(Some(Arc::clone(&ca.config)), Arc::new(handler))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Arc<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (tls, handler, seen) = (tls.clone(), Arc::clone(&handler), Arc::clone(&seen));
                std::thread::spawn(move || serve(stream, tls, &*handler, &seen));
            }
        });
        FeedServer {
            url: format!("{scheme}://{addr}"),
            requests,
            addr,
            stop,
        }
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves one connection: reads the request head, records it, lets `handler` answer.
fn serve(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: &Handler,
    seen: &Mutex<Vec<Request>>,
) {
    let idle = Some(Duration::from_secs(IDLE_S));
    let _ = stream.set_read_timeout(idle);
    let _ = stream.set_write_timeout(idle);
    let mut stream = match tls {
        Some(config) => {
            let connection = rustls::ServerConnection::new(config).unwrap();
            Stream::Tls(Box::new(rustls::StreamOwned::new(connection, stream)))
        }
        None => Stream::Plain(stream),
    };
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    seen.lock().unwrap().push(request.clone());
    handler(&request, &mut stream);
    if let Stream::Tls(tls) = &mut stream {
        tls.conn.send_close_notify();
    }
    let _ = stream.flush();
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.read(buf),
            Stream::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.write(buf),
            Stream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.flush(),
            Stream::Tls(stream) => stream.flush(),
        }
    }
}

/// The request head, or None when the client went away (a TLS handshake it refused, say).
fn read_request(stream: &mut Stream) -> Option<Request> {
    let mut reader = BufReader::new(Read::by_ref(stream).take(HEAD_BYTES_MAX as u64));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
        }
    }
    let head = head.to_ascii_lowercase();
    let path = head.split_whitespace().nth(1)?.to_string();
    Some(Request { path, head })
}

/// Writes a whole response: status line, `headers` (`Name: value` each), `Connection: close`,
/// `Content-Length` and `body`.
pub fn respond(out: &mut dyn Write, status: &str, headers: &[String], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for header in headers {
        head.push_str(&format!("{header}\r\n"));
    }
    head.push_str(&format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(body);
}

/// A handler serving the files of a feed directory by the last segment of the path, with an
/// ETag (answering a matching `If-None-Match` with 304), gzip-encoded when the client accepts
/// it.
pub fn files(dir: PathBuf) -> impl Fn(&Request, &mut dyn Write) + Send + Sync + 'static {
    move |request, out| {
        let name = request.path.rsplit('/').next().unwrap_or_default();
        let Ok(bytes) = std::fs::read(dir.join(name)) else {
            return respond(out, "404 Not Found", &[], b"");
        };
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..8]));
        if request.header("if-none-match") == Some(etag.as_str()) {
            return respond(out, "304 Not Modified", &[format!("ETag: {etag}")], b"");
        }
        let mut headers = vec![format!("ETag: {etag}")];
        let gzip = request.header("accept-encoding") == Some("gzip");
        let body = if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&bytes).unwrap();
            headers.push("Content-Encoding: gzip".to_string());
            encoder.finish().unwrap()
        } else {
            bytes
        };
        respond(out, "200 OK", &headers, &body);
    }
}
