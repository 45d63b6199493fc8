//! Federation helpers: real `threatlog serve` nodes paired over gRPC with mutual TLS, and
//! polling for a condition with a generous timeout.
#![allow(dead_code)]

use super::ok;
use super::server::Server;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Longest wait for a condition between nodes.
pub const WAIT_SECONDS_MAX: u64 = 120;

/// A running node with its admin key.
pub struct Peer {
    /// The `threatlog serve` process.
    pub server: Server,
    /// The admin API key.
    pub key: String,
    /// Keeps the data directory alive.
    pub temp: tempfile::TempDir,
}

impl Peer {
    /// Initialises a node of a new organisation `org` and starts it.
    pub fn start(org: &str) -> Peer {
        Peer::init(org, Server::start)
    }

    /// Like [`Peer::start`], with the node's log output written to `log`.
    pub fn start_logged(org: &str, log: &Path) -> Peer {
        Peer::init(org, |dir| Server::start_logged(dir, log))
    }

    fn init(org: &str, start: impl FnOnce(&Path) -> Server) -> Peer {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("node");
        ok(&dir, &["init", "--org-name", org]);
        let key = std::fs::read_to_string(dir.join("admin.key"))
            .unwrap()
            .trim()
            .to_string();
        Peer {
            server: start(&dir),
            key,
            temp,
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.server.dir
    }

    /// The pairing card.
    pub fn card(&self) -> String {
        ok(self.dir(), &["peer", "card"]).trim().to_string()
    }

    /// The bound sync address.
    pub fn sync_addr(&self) -> String {
        std::fs::read_to_string(self.dir().join("run/sync.addr"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// A POST that must answer 200.
    pub fn post(&self, path: &str, body: Value) -> Value {
        let (status, reply) =
            self.server
                .request("POST", path, Some(&self.key), Some(&body.to_string()));
        assert_eq!(status, 200, "POST {path}: {reply}");
        reply
    }

    /// A GET that must answer 200.
    pub fn get(&self, path: &str) -> Value {
        let (status, reply) = self.server.request("GET", path, Some(&self.key), None);
        assert_eq!(status, 200, "GET {path}: {reply}");
        reply
    }

    /// The event as the REST API shows it, if visible.
    pub fn event(&self, uuid: &str) -> Option<Value> {
        let (status, reply) = self.server.request(
            "GET",
            &format!("/events/view/{uuid}"),
            Some(&self.key),
            None,
        );
        (status == 200).then_some(reply)
    }

    /// `peer list --json`.
    pub fn peers(&self) -> Value {
        serde_json::from_str(&ok(self.dir(), &["peer", "list", "--json"])).unwrap()
    }

    /// Adds organisation `org` and a user of it over REST; returns the user's API key.
    pub fn org_user(&self, org: &str, email: &str) -> String {
        let added = self.post(
            "/admin/organisations/add",
            json!({"Organisation": {"name": org}}),
        );
        let org_id = added["Organisation"]["id"].as_str().unwrap().to_string();
        let user = self.post(
            "/admin/users/add",
            json!({"User": {"email": email, "org_id": org_id, "role_id": "3"}}),
        );
        user["User"]["authkey"].as_str().unwrap().to_string()
    }

    /// Publishes an event.
    pub fn publish(&self, uuid: &str) {
        self.post(&format!("/events/publish/{uuid}"), json!({}));
    }
}

/// Pairs `a` and `b` both ways with `args` as each side's policy.
pub fn pair(a: &Peer, b: &Peer, args: &[&str]) {
    let (card_a, card_b) = (a.card(), b.card());
    for (node, card) in [(a, card_b), (b, card_a)] {
        let mut command = vec!["peer", "add", card.as_str()];
        command.extend_from_slice(args);
        ok(node.dir(), &command);
    }
}

/// Polls `probe` until it returns something, failing after [`WAIT_SECONDS_MAX`].
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(WAIT_SECONDS_MAX),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Adds an event of ip-dst attributes with `values` at `distribution`; returns its uuid.
pub fn add_event(node: &Peer, info: &str, distribution: u8, values: &[String]) -> String {
    let attributes: Vec<Value> = values
        .iter()
        .map(|value| json!({"type": "ip-dst", "value": value, "to_ids": true}))
        .collect();
    let reply = node.post(
        "/events/add",
        json!({"Event": {"info": info, "distribution": distribution.to_string(),
                         "threat_level_id": "2", "analysis": "1", "Attribute": attributes}}),
    );
    reply["Event"]["uuid"].as_str().unwrap().to_string()
}

/// The sorted attribute values of an event.
pub fn values(event: &Value) -> Vec<String> {
    let mut out: Vec<String> = event["Event"]["Attribute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attribute| attribute["value"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// `count` sorted addresses under `prefix`.
pub fn addresses(prefix: &str, count: usize) -> Vec<String> {
    let mut out: Vec<String> = (0..count).map(|n| format!("{prefix}.{n}")).collect();
    out.sort();
    out
}
