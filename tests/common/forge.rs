//! A node played by a test: a key the test holds, the chain it has signed, and the real sync
//! service of real nodes spoken to through the crate's own client (`connect_as`), over real
//! mutual TLS. Tests use it to misbehave on purpose (relay what must not be relayed, show
//! different checkpoints to different peers) without any switch in the product.
#![allow(dead_code)]

use prost::bytes::Bytes;
use std::time::Duration;
use threatlog::log::checkpoint::{self, Checkpoint};
use threatlog::log::{merkle, OriginKey, VerifiedEntry};
use threatlog::proto::sync as wire;
use threatlog::sync::connect_as;
use uuid::Uuid;

use super::hostile::{self, Hostile, CALL_SECONDS_MAX};
use super::identity::Org;

/// A node played by the test: a [`Hostile`] peer with a runtime of its own for its calls.
pub struct Forger {
    /// Its key, certified organisation and chain.
    pub peer: Hostile,
    /// Runs its gRPC calls.
    runtime: tokio::runtime::Runtime,
}

/// An item carrying an entry's stored bytes.
pub fn entry_item(entry: &VerifiedEntry) -> wire::Item {
    hostile::entry_item(entry.stored().clone())
}

impl Forger {
    /// A fresh key of a new organisation `org_name`, certified by the organisation's org key.
    pub fn new(org_name: &str) -> Forger {
        Forger {
            peer: Hostile::of(Org::new(org_name)),
            runtime: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    /// Its node key.
    pub fn origin(&self) -> OriginKey {
        self.peer.key.origin()
    }

    /// Its pairing card (nobody dials it: the endpoint is a closed port).
    pub fn card(&self) -> String {
        self.peer.card()
    }

    /// Seals a new published level-3 event of its own onto its chain (after its certificate,
    /// when the chain is new); returns the event's uuid and its entries.
    pub fn own_event(&mut self, info: &str) -> (Uuid, Vec<VerifiedEntry>) {
        self.peer.own_event(info)
    }

    /// Its checkpoint over the whole chain, signed; with `altered`, the same size with
    /// another root (a second history), validly signed all the same.
    pub fn checkpoint(&self, altered: bool) -> String {
        let mut tree = merkle::MemoryTree::new();
        for entry in &self.peer.chain {
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
        .sign(&name, &self.peer.key)
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
            let mut client = connect_as(&self.peer.key, to, addr)
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
        hostile::push(
            &self.runtime,
            &self.peer.key,
            to,
            addr,
            hostile::segment_of(items),
        )
        .unwrap()
    }

    /// Pulls everything the node `from` at `addr` releases to it, up to its head.
    pub fn pull(&self, from: OriginKey, addr: &str) -> Vec<wire::Item> {
        self.call(async {
            let mut client = connect_as(&self.peer.key, from, addr)
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
