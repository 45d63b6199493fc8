//! A hostile load on one node, for the load test (`tests/hostile_load.rs`) and
//! `cargo bench --bench api`: clients that hold connections without using them (slowloris
//! heads or handshakes, idle TLS connections), clients flooding broad `%` searches and
//! oversized bodies, and a paired peer's follow-pulls beside a peer that never reads its pull.
//! Every attacker goes on until stopped, connecting again whenever the node cuts it off, and
//! counts what the node did to it in a [`Tally`].
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

use threatlog::log::{NodeKey, OriginKey};
use threatlog::proto::sync as wire;

/// How many attackers of each kind run at once.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Connections sending a request head (or, over TLS, a handshake) a byte at a time.
    pub slowloris: usize,
    /// Connections that open (and, over TLS, handshake) and then send nothing.
    pub idle: usize,
    /// Clients sending `%` value searches one after another.
    pub searchers: usize,
    /// Clients sending bodies over the node's limit one after another.
    pub oversized: usize,
    /// Follow-pulls the paired peer keeps trying to hold open.
    pub pulls: usize,
}

impl Sizes {
    /// `percent` of these sizes, each kind at least one attacker (none at 0 %).
    pub fn scaled(self, percent: usize) -> Sizes {
        let scale = |n: usize| match percent {
            0 => 0,
            _ => (n * percent / 100).max(1),
        };
        Sizes {
            slowloris: scale(self.slowloris),
            idle: scale(self.idle),
            searchers: scale(self.searchers),
            oversized: scale(self.oversized),
            pulls: scale(self.pulls),
        }
    }
}

/// The attack of the load test and the API benchmark under attack.
pub const FULL: Sizes = Sizes {
    slowloris: 500,
    idle: 100,
    searchers: 25,
    oversized: 25,
    pulls: 40,
};

/// Source addresses the attackers' connections are spread over (127.0.0.2 onwards), so that
/// they stay within the node's per-address connection limit and test the others.
pub const SOURCE_ADDRESSES: u8 = 40;

/// Pause between a slowloris connection's bytes.
const TRICKLE: Duration = Duration::from_secs(1);
/// Pause before an attacker turned away (429, pull refused) tries again.
const RETRY: Duration = Duration::from_millis(200);

/// The node under attack.
#[derive(Clone)]
pub struct Target {
    /// Its REST API.
    pub api: SocketAddr,
    /// A client configuration trusting its API certificate, when the API serves HTTPS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The API key of the flooding clients.
    pub key: String,
    /// A body length over its `api.body_bytes_max`.
    pub oversized: u64,
    /// Its sync service, for the pull attackers.
    pub sync: Option<SyncTarget>,
}

/// A node's sync service and the keys of two peers it has paired: one that follows, one that
/// never reads.
#[derive(Clone)]
pub struct SyncTarget {
    /// The sync address.
    pub addr: String,
    /// The node's key.
    pub node: OriginKey,
    /// Seed of the peer opening follow-pulls.
    pub follower: [u8; 32],
    /// Seed of the peer that opens a pull and never reads it.
    pub staller: [u8; 32],
}

/// What the node did to the attackers.
#[derive(Debug, Default)]
pub struct Tally {
    /// Connections the node closed on a slowloris client.
    pub slowloris_cut: AtomicU64,
    /// Idle connections the node closed.
    pub idle_cut: AtomicU64,
    /// `%` searches answered with results (200).
    pub searches_answered: AtomicU64,
    /// `%` searches refused as too broad or too long (400).
    pub searches_refused: AtomicU64,
    /// Requests turned away by a request budget (429).
    pub budget_refused: AtomicU64,
    /// Oversized bodies refused (413).
    pub oversized_refused: AtomicU64,
    /// Follow-pulls the node let open.
    pub pulls_opened: AtomicU64,
    /// Follow-pulls refused (RESOURCE_EXHAUSTED).
    pub pulls_refused: AtomicU64,
    /// Any other answer or failure.
    pub other: AtomicU64,
}

impl Tally {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter by name, for printing.
    pub fn figures(&self) -> Vec<(&'static str, u64)> {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        vec![
            ("slowloris connections cut", read(&self.slowloris_cut)),
            ("idle connections cut", read(&self.idle_cut)),
            ("% searches answered", read(&self.searches_answered)),
            ("% searches refused (400)", read(&self.searches_refused)),
            ("requests over a budget (429)", read(&self.budget_refused)),
            (
                "oversized bodies refused (413)",
                read(&self.oversized_refused),
            ),
            ("follow-pulls opened", read(&self.pulls_opened)),
            ("follow-pulls refused", read(&self.pulls_refused)),
            ("other answers", read(&self.other)),
        ]
    }
}

/// A running attack, stopped when dropped.
pub struct Attack {
    runtime: Option<tokio::runtime::Runtime>,
    stop: watch::Sender<bool>,
    /// What the node did to the attackers so far.
    pub tally: Arc<Tally>,
}

impl Attack {
    /// Starts `sizes` attackers against `target` on a runtime of their own.
    pub fn start(target: &Target, sizes: Sizes) -> Attack {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("attacker")
            .on_thread_start(lowest_priority)
            .enable_all()
            .build()
            .expect("the attack's runtime");
        let (stop, stopped) = watch::channel(false);
        let tally = Arc::new(Tally::default());
        let mut n = 0usize;
        let mut next_source = || {
            n += 1;
            source(n)
        };
        for _ in 0..sizes.slowloris {
            let attacker = Attacker::new(target, next_source(), &tally, &stopped);
            runtime.spawn(attacker.forever(Attacker::slowloris));
        }
        for _ in 0..sizes.idle {
            let attacker = Attacker::new(target, next_source(), &tally, &stopped);
            runtime.spawn(attacker.forever(Attacker::idle));
        }
        for _ in 0..sizes.searchers {
            let attacker = Attacker::new(target, next_source(), &tally, &stopped);
            runtime.spawn(attacker.forever(Attacker::search));
        }
        for _ in 0..sizes.oversized {
            let attacker = Attacker::new(target, next_source(), &tally, &stopped);
            runtime.spawn(attacker.forever(Attacker::oversized));
        }
        if let Some(sync) = &target.sync {
            for _ in 0..sizes.pulls {
                let attacker = Attacker::new(target, next_source(), &tally, &stopped);
                let sync = sync.clone();
                runtime.spawn(attacker.forever(move |attacker| {
                    let sync = sync.clone();
                    async move { attacker.follow(&sync).await }
                }));
            }
            runtime.spawn(stall(sync.clone(), stopped.clone()));
        }
        Attack {
            runtime: Some(runtime),
            stop,
            tally,
        }
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Runs the calling thread at the lowest CPU priority (nice 19): attackers on the internet
/// do not share the node's CPUs, so on one machine their own work must not count against the
/// node, only what the node spends on them.
fn lowest_priority() {
    // SAFETY: gettid and setpriority only read their arguments; the thread id is this thread's.
    unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 19);
    }
}

/// The `n`th source address: 127.0.0.2 to 127.0.0.(1 + [`SOURCE_ADDRESSES`]).
fn source(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        2 + (n % SOURCE_ADDRESSES as usize) as u8,
    ))
}

/// A stream to the API, over TLS or not.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// One attacker: where it attacks from, and where it counts.
#[derive(Clone)]
struct Attacker {
    target: Target,
    from: IpAddr,
    tally: Arc<Tally>,
    stopped: watch::Receiver<bool>,
}

impl Attacker {
    fn new(
        target: &Target,
        from: IpAddr,
        tally: &Arc<Tally>,
        stopped: &watch::Receiver<bool>,
    ) -> Self {
        Attacker {
            target: target.clone(),
            from,
            tally: Arc::clone(tally),
            stopped: stopped.clone(),
        }
    }

    /// Runs `round` again and again until the attack stops.
    async fn forever<F, R>(self, round: F)
    where
        F: Fn(Attacker) -> R,
        R: std::future::Future<Output = ()>,
    {
        let mut stopped = self.stopped.clone();
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                () = round(self.clone()) => {}
            }
        }
    }

    /// A TCP connection to the API from this attacker's source address.
    async fn tcp(&self) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(self.from, 0))?;
        socket.connect(self.target.api).await
    }

    /// A connection to the API, TLS handshake included when it serves HTTPS.
    async fn connect(&self) -> std::io::Result<Box<dyn Stream>> {
        let tcp = self.tcp().await?;
        match &self.target.tls {
            None => Ok(Box::new(tcp)),
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(self.target.api.ip().into());
                let tls = TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await?;
                Ok(Box::new(tls))
            }
        }
    }

    /// Opens a connection and sends its first bytes one a second: a TLS record header
    /// announcing a large handshake over HTTPS, a request head over HTTP.
    async fn slowloris(self) {
        let Ok(mut tcp) = self.tcp().await else {
            return tokio::time::sleep(RETRY).await;
        };
        let bytes: &[u8] = match self.target.tls {
            Some(_) => &[0x16, 0x03, 0x01, 0x40, 0x00],
            None => b"POST /events/add HTTP/1.1\r\nHost: node\r\n",
        };
        for byte in bytes.iter().cycle() {
            if tcp.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(TRICKLE).await;
        }
        Tally::count(&self.tally.slowloris_cut);
    }

    /// Opens a connection (handshaking over HTTPS) and sends nothing until the node closes it.
    async fn idle(self) {
        let Ok(mut stream) = self.connect().await else {
            return tokio::time::sleep(RETRY).await;
        };
        let mut byte = [0u8; 1];
        let _ = stream.read(&mut byte).await;
        Tally::count(&self.tally.idle_cut);
    }

    /// Sends one request and reads the whole answer; its status, 0 when it failed.
    async fn exchange(&self, head: String, body: &[u8]) -> u16 {
        let Ok(mut stream) = self.connect().await else {
            return 0;
        };
        if stream.write_all(head.as_bytes()).await.is_err() {
            return 0;
        }
        // The node may answer (413) before the body is sent; a refused write is no failure.
        let _ = stream.write_all(body).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        std::str::from_utf8(answer.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|status| status.parse().ok())
            .unwrap_or(0)
    }

    /// Sends a POST of `body` to `path` announcing `length` bytes and reads the whole answer;
    /// counts a status of `expected` under its counter, a 429 as over a budget and anything
    /// else as other, waiting a moment after those.
    async fn post(&self, path: &str, length: u64, body: &[u8], expected: &[(u16, &AtomicU64)]) {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: node\r\nAuthorization: {}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
            self.target.key
        );
        let status = self.exchange(head, body).await;
        match expected.iter().find(|(answered, _)| *answered == status) {
            Some((_, counter)) => Tally::count(counter),
            None => {
                Tally::count(match status {
                    429 => &self.tally.budget_refused,
                    _ => &self.tally.other,
                });
                tokio::time::sleep(RETRY).await;
            }
        }
    }

    /// One `%` value search, its whole answer read.
    async fn search(self) {
        let body = br#"{"value": "%.19%", "returnFormat": "json"}"#;
        let tally = &self.tally;
        let expected = [
            (200, &tally.searches_answered),
            (400, &tally.searches_refused),
        ];
        self.post("/attributes/restSearch", body.len() as u64, body, &expected)
            .await;
    }

    /// One request announcing a body over the limit, with the first 64 KiB of it.
    async fn oversized(self) {
        let expected = [(413, &self.tally.oversized_refused)];
        let length = self.target.oversized;
        self.post("/events/add", length, &[b' '; 64 * 1024], &expected)
            .await;
    }

    /// Opens a follow-pull as the paired peer and reads it until the node ends it; refused,
    /// tries again shortly.
    async fn follow(self, sync: &SyncTarget) {
        let key = NodeKey::from_seed(&sync.follower);
        let pulled = async {
            let mut client = threatlog::sync::connect_as(&key, sync.node, &sync.addr)
                .await
                .map_err(|_| None)?;
            let request = wire::PullRequest {
                cursor: 0,
                follow: true,
            };
            let mut stream = client
                .pull(request)
                .await
                .map_err(|status| Some(status.code()))?
                .into_inner();
            Tally::count(&self.tally.pulls_opened);
            while let Ok(Some(_)) = stream.message().await {}
            Ok::<(), Option<tonic::Code>>(())
        };
        match pulled.await {
            Ok(()) => {}
            Err(Some(tonic::Code::ResourceExhausted)) => Tally::count(&self.tally.pulls_refused),
            Err(_) => Tally::count(&self.tally.other),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Opens a pull from the start of the node's log as the stalling peer and never reads it,
/// until the attack stops.
async fn stall(sync: SyncTarget, mut stopped: watch::Receiver<bool>) {
    let key = NodeKey::from_seed(&sync.staller);
    let opened = async {
        let mut client = threatlog::sync::connect_as(&key, sync.node, &sync.addr)
            .await
            .ok()?;
        let request = wire::PullRequest {
            cursor: 0,
            follow: true,
        };
        client.pull(request).await.ok()
    };
    let _unread = opened.await;
    let _ = stopped.changed().await;
}

/// The `p`th percentile (0–100) of sorted latencies.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Peak resident memory of process `pid` (`VmHWM`), in MiB.
pub fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}
