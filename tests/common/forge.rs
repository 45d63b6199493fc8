//! A node played by a test: a key the test holds, the chain it has signed, and the real sync
//! service of real nodes spoken to through the crate's own client (`connect_as`), over real
//! mutual TLS. Tests use it to misbehave on purpose (relay what must not be relayed, show
//! different checkpoints to different peers) without any switch in the product.
#![allow(dead_code)]

use prost::bytes::Bytes;
use serde_json::json;
use std::time::Duration;
use threatlog::change::{self, Actor};
use threatlog::log::checkpoint::{self, Checkpoint};
use threatlog::log::{merkle, seal, Head, NodeKey, OriginKey, VerifiedEntry};
use threatlog::proto::sync as wire;
use threatlog::sync::peer::Card;
use threatlog::sync::transport::connect_as;
use uuid::Uuid;

/// Longest one call to a real node may take before the test gives up on it.
const CALL_SECONDS_MAX: u64 = 60;

/// A node played by the test.
pub struct Forger {
    /// Its signing key.
    pub key: NodeKey,
    /// Its organisation.
    pub org: Uuid,
    /// Its organisation's name.
    pub org_name: String,
    /// The entries it has signed, in sequence order.
    pub chain: Vec<VerifiedEntry>,
    /// Runs its gRPC calls.
    runtime: tokio::runtime::Runtime,
}

/// An item carrying an entry's stored bytes.
pub fn entry_item(entry: &VerifiedEntry) -> wire::Item {
    wire::Item {
        item: Some(wire::item::Item::Entry(entry.stored().clone())),
    }
}

/// A segment of `items`.
pub fn segment(items: Vec<wire::Item>) -> wire::Segment {
    wire::Segment {
        items,
        cursor: 0,
        head_cursor: 0,
        head_time_ms: 0,
    }
}

impl Forger {
    /// A fresh key of a new organisation `org_name`.
    pub fn new(org_name: &str) -> Forger {
        Forger {
            key: NodeKey::generate(),
            org: Uuid::new_v4(),
            org_name: org_name.to_string(),
            chain: Vec::new(),
            runtime: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    /// Its node key.
    pub fn origin(&self) -> OriginKey {
        self.key.origin()
    }

    /// Its pairing card (nobody dials it: the endpoint is a closed port).
    pub fn card(&self) -> String {
        Card {
            key: self.origin(),
            org_uuid: self.org,
            org_name: self.org_name.clone(),
            endpoint: "127.0.0.1:9".into(),
        }
        .encode()
    }

    /// Seals a new published level-3 event of its own onto its chain; returns the event's
    /// uuid and its entries.
    pub fn own_event(&mut self, info: &str) -> (Uuid, Vec<VerifiedEntry>) {
        let event = threatlog::model::Event::from_json(&json!({"Event": {
            "info": info, "date": "2026-01-01", "distribution": 3,
            "published": true,
            "Attribute": [{"type": "ip-dst", "value": "192.0.2.77", "to_ids": true}],
        }}))
        .unwrap();
        let actor = Actor {
            org: self.org,
            user: "forger@test.example".into(),
        };
        let mut sealed = Vec::new();
        for draft in change::event_drafts(&event, &actor) {
            let head = self.chain.last().map(Head::after).unwrap_or(Head::EMPTY);
            let entry = seal(
                &self.key,
                self.org,
                &head,
                draft,
                threatlog::node::now_ms(),
                *Uuid::new_v4().as_bytes(),
            )
            .unwrap();
            self.chain.push(entry.clone());
            sealed.push(entry);
        }
        (event.uuid, sealed)
    }

    /// Its checkpoint over the whole chain, signed; with `altered`, the same size with
    /// another root (a second history), validly signed all the same.
    pub fn checkpoint(&self, altered: bool) -> String {
        let mut tree = merkle::MemoryTree::new();
        for entry in &self.chain {
            tree.push(merkle::leaf_hash(&entry.hash()));
        }
        let name = checkpoint::origin_name(&self.origin());
        let mut root = tree.root();
        if altered {
            root[0] ^= 0xff;
        }
        Checkpoint {
            origin: name.clone(),
            size: tree.size(),
            root,
        }
        .sign(&name, &self.key)
    }

    fn call<T>(&self, work: impl std::future::Future<Output = Result<T, String>>) -> T {
        self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(CALL_SECONDS_MAX), work)
                .await
                .expect("the call is answered")
                .unwrap()
        })
    }

    /// Says hello to the node `to` at `addr`, handing it `checkpoints`.
    pub fn hello(&self, to: OriginKey, addr: &str, checkpoints: Vec<String>) {
        self.call(async {
            let mut client = connect_as(&self.key, to, addr)
                .await
                .map_err(|error| error.to_string())?;
            client
                .hello(wire::HelloRequest {
                    protocol_version: threatlog::sync::PROTOCOL_VERSION,
                    node: None,
                    checkpoints,
                })
                .await
                .map_err(|status| status.to_string())?;
            Ok(())
        })
    }

    /// Pushes `items` to the node `to` at `addr` in one segment; returns its answer (empty
    /// when it accepted everything).
    pub fn push(&self, to: OriginKey, addr: &str, items: Vec<wire::Item>) -> String {
        self.call(async {
            let mut client = connect_as(&self.key, to, addr)
                .await
                .map_err(|error| error.to_string())?;
            let response = client
                .push(tokio_stream::iter(vec![segment(items)]))
                .await
                .map_err(|status| status.to_string())?;
            Ok(response.into_inner().error)
        })
    }

    /// Pulls everything the node `from` at `addr` releases to it, up to its head.
    pub fn pull(&self, from: OriginKey, addr: &str) -> Vec<wire::Item> {
        self.call(async {
            let mut client = connect_as(&self.key, from, addr)
                .await
                .map_err(|error| error.to_string())?;
            let mut stream = client
                .pull(wire::PullRequest {
                    cursor: 0,
                    follow: false,
                })
                .await
                .map_err(|status| status.to_string())?
                .into_inner();
            let mut items = Vec::new();
            while let Some(segment) = stream.message().await.map_err(|s| s.to_string())? {
                items.extend(segment.items);
            }
            Ok(items)
        })
    }
}

/// Whether `items` hold an entry about event `event`.
pub fn holds_event(items: &[wire::Item], event: Uuid) -> bool {
    items.iter().any(|item| match &item.item {
        Some(wire::item::Item::Entry(bytes)) => VerifiedEntry::verify(Bytes::clone(bytes))
            .is_ok_and(|entry| entry.event() == Some(event)),
        _ => false,
    })
}
