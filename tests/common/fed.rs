//! Federation test nodes: real `threatlog serve` processes (REST API and sync listener on
//! loopback), paired with `peer card` / `peer add`, queried through their REST API with the
//! admin key. Included by the federation tests with `#[path = "common/fed.rs"] mod fed;`.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::ok;
use crate::common::server::Server;

/// How long a test waits for a condition before failing.
pub const WAIT_MAX: Duration = Duration::from_secs(90);

/// A running node with its admin key, organisation and data directory.
pub struct Node {
    /// The `threatlog serve` process.
    server: Server,
    /// The admin user's API key.
    pub key: String,
    /// The node's organisation uuid.
    pub org: String,
    /// The node's organisation name.
    pub org_name: String,
    _temp: tempfile::TempDir,
}

impl Node {
    /// Initialises a node of organisation `org_name` (with `org_uuid` when given) and starts
    /// `threatlog serve` on it with the extra environment `env`.
    pub fn start(org_name: &str, org_uuid: Option<&str>, env: &[(&str, &str)]) -> Node {
        Node::start_certified(org_name, org_uuid, None, env)
    }

    /// Initialises and starts another node of `first`'s organisation, certified by the org
    /// key in `first`'s data directory (SPEC §4.1).
    pub fn start_internal(first: &Node, env: &[(&str, &str)]) -> Node {
        let org_key = first.dir().join("org.key");
        Node::start_certified(&first.org_name, Some(&first.org), Some(&org_key), env)
    }

    fn start_certified(
        org_name: &str,
        org_uuid: Option<&str>,
        org_key: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Node {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("node");
        let mut args = vec!["init", "--org-name", org_name];
        if let Some(uuid) = org_uuid {
            args.extend_from_slice(&["--org-uuid", uuid]);
        }
        if let Some(path) = org_key {
            args.extend_from_slice(&["--org-key", path.to_str().unwrap()]);
        }
        ok(&dir, &args);
        let key = std::fs::read_to_string(dir.join("admin.key"))
            .unwrap()
            .trim()
            .to_string();
        let mut node = Node {
            server: Server::start_with_env(&dir, env),
            key,
            org: String::new(),
            org_name: org_name.to_string(),
            _temp: temp,
        };
        node.org = node.card_json()["org_uuid"].as_str().unwrap().to_string();
        node
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.server.dir
    }

    /// The node's pairing card.
    pub fn card(&self) -> String {
        ok(self.dir(), &["peer", "card"]).trim().to_string()
    }

    /// The card's content: `key`, `org_uuid`, `org_name`, `endpoint`.
    pub fn card_json(&self) -> Value {
        use base64::Engine;
        let card = self.card();
        let body = card.strip_prefix("threatlog-card:").expect("a card");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .expect("base64");
        serde_json::from_slice(&bytes).expect("card JSON")
    }

    /// The node's signing key (hex), from its card.
    pub fn node_key(&self) -> String {
        self.card_json()["key"].as_str().unwrap().to_string()
    }

    /// One request with the admin key: (status, JSON body).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(Value::to_string);
        self.server
            .request(method, path, Some(&self.key), body.as_deref())
    }

    /// A POST that must succeed.
    pub fn post(&self, path: &str, body: Value) -> Value {
        let (status, reply) = self.request("POST", path, Some(&body));
        assert_eq!(status, 200, "POST {path}: {reply}");
        reply
    }

    /// A GET: the body when the status is 200.
    pub fn get(&self, path: &str) -> Option<Value> {
        let (status, reply) = self.request("GET", path, None);
        (status == 200).then_some(reply)
    }

    /// The event `uuid` as this node's REST API shows it.
    pub fn event(&self, uuid: &str) -> Option<Value> {
        self.get(&format!("/events/view/{uuid}"))
    }

    /// `peer list --json`.
    pub fn peers(&self) -> Value {
        serde_json::from_str(&ok(self.dir(), &["peer", "list", "--json"])).unwrap()
    }

    /// The `peer list` report of the peer whose organisation is `org`.
    pub fn peer_of_org(&self, org: &str) -> Value {
        self.peers()
            .as_array()
            .unwrap()
            .iter()
            .find(|peer| peer["org_uuid"] == org)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Pairs this node with `card` using `args` (relationship, ceiling, …).
    pub fn add_peer(&self, card: &str, args: &[&str]) {
        let mut command = vec!["peer", "add", card];
        command.extend_from_slice(args);
        ok(self.dir(), &command);
    }

    /// Creates a sharing group of the organisations `members` (uuid, name).
    pub fn sharing_group(&self, name: &str, members: &[(&str, &str)], extra: Value) -> String {
        let orgs: Vec<Value> = members
            .iter()
            .map(|(uuid, name)| json!({"Organisation": {"uuid": uuid, "name": name}}))
            .collect();
        let mut group = json!({"name": name, "releasability": "tests"});
        if let (Some(group), Some(extra)) = (group.as_object_mut(), extra.as_object()) {
            group.extend(extra.clone());
        }
        let reply = self.post(
            "/sharing_groups/add",
            json!({"SharingGroup": group, "SharingGroupOrg": orgs}),
        );
        reply["SharingGroup"]["uuid"].as_str().unwrap().to_string()
    }

    /// Publishes event `uuid`.
    pub fn publish(&self, uuid: &str) {
        self.post(&format!("/events/publish/{uuid}"), json!({}));
    }
}

/// Pairs `a` and `b` both ways with `args` as each side's policy.
pub fn pair(a: &Node, b: &Node, args: &[&str]) {
    let (card_a, card_b) = (a.card(), b.card());
    a.add_peer(&card_b, args);
    b.add_peer(&card_a, args);
}

/// Waits up to [`WAIT_MAX`] for `probe` to return something.
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < WAIT_MAX, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The uuids of the event's attributes outside objects, objects, and attributes inside
/// objects, each sorted.
pub fn contents(event: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let uuids = |list: &Value| -> Vec<String> {
        let mut out: Vec<String> = list
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| item["uuid"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    };
    let event = &event["Event"];
    let objects = uuids(&event["Object"]);
    let mut inner: Vec<String> = event["Object"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .flat_map(|o| uuids(&o["Attribute"]))
                .collect()
        })
        .unwrap_or_default();
    inner.sort();
    (uuids(&event["Attribute"]), objects, inner)
}
