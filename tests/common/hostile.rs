//! A hostile peer driven by a test: its own key and organisation (certified by its own org key,
//! so that only its behaviour is at fault), a chain of entries it signs by hand, and pushes and
//! pulls of segments over the real gRPC sync service with mutual TLS.

use prost::bytes::Bytes;
use serde_json::{json, Value};
use std::time::Duration;
use threatlog::change::{self, Actor};
use threatlog::log::{seal, Draft, Head, NodeKey, OriginKey, VerifiedEntry};
use threatlog::proto::{self, op::Op, sync as wire, RecordKind};
use threatlog::store::Incoming;
use threatlog::sync::connect_as;
use uuid::Uuid;

use super::identity::Org;

/// Longest a single push or pull may take before the test gives up on it.
pub const CALL_SECONDS_MAX: u64 = 60;

/// The hostile peer: a key, an organisation and the chain it has signed so far.
pub struct Hostile {
    /// Its signing key.
    pub key: NodeKey,
    /// The organisation its card names.
    pub org: Uuid,
    /// That organisation's org key, which certifies `key`.
    pub identity: Org,
    /// Every entry it signed onto its chain, in order.
    pub chain: Vec<VerifiedEntry>,
}

impl Hostile {
    /// A fresh key of a fresh organisation named "Org H".
    pub fn new() -> Hostile {
        Hostile::of(Org::new("Org H"))
    }

    /// A fresh key of `identity`'s organisation.
    pub fn of(identity: Org) -> Hostile {
        Hostile {
            key: NodeKey::generate(),
            org: identity.uuid,
            identity,
            chain: Vec::new(),
        }
    }

    /// Its pairing card, carrying its org key.
    pub fn card(&self) -> String {
        self.identity.card(&self.key).encode()
    }

    /// The same key again, for use where `self` is borrowed.
    pub fn key_copy(&self) -> NodeKey {
        NodeKey::from_seed(&self.key.seed())
    }

    /// The head of its chain.
    pub fn head(&self) -> Head {
        self.chain.last().map(Head::after).unwrap_or(Head::EMPTY)
    }

    /// Seals `draft` after `head` (not necessarily the chain's) at `time_ms`, without adding
    /// it to the chain.
    pub fn seal_after_at(&self, head: &Head, draft: Draft, time_ms: i64) -> VerifiedEntry {
        seal(
            &self.key,
            self.org,
            head,
            draft,
            time_ms,
            *Uuid::new_v4().as_bytes(),
        )
        .unwrap()
    }

    /// Seals `draft` now after `head` (not necessarily the chain's), without adding it to the
    /// chain.
    pub fn seal_after(&self, head: &Head, draft: Draft) -> VerifiedEntry {
        self.seal_after_at(head, draft, threatlog::clock::SystemClock.now_ms())
    }

    /// Seals `draft` after the chain's head at `time_ms`, without adding it to the chain.
    pub fn seal_at(&self, draft: Draft, time_ms: i64) -> VerifiedEntry {
        self.seal_after_at(&self.head(), draft, time_ms)
    }

    /// Seals `draft` now, without adding it to the chain.
    pub fn seal(&self, draft: Draft) -> VerifiedEntry {
        self.seal_at(draft, threatlog::clock::SystemClock.now_ms())
    }

    /// Seals `draft` now onto the chain.
    pub fn append(&mut self, draft: Draft) -> VerifiedEntry {
        let entry = self.seal(draft);
        self.chain.push(entry.clone());
        entry
    }

    /// Seals the drafts of a new published level-3 event of its own onto its chain (after its
    /// certificate, when the chain is new).
    pub fn own_event(&mut self, info: &str) -> (Uuid, Vec<VerifiedEntry>) {
        let mut sealed = Vec::new();
        if self.chain.is_empty() {
            let certificate = self.identity.certificate_entry(&self.key, &Head::EMPTY);
            self.chain.push(certificate.clone());
            sealed.push(certificate);
        }
        let event = threatlog::model::Event::from_json(&json!({"Event": {
            "info": info, "date": "2026-01-01", "distribution": 3,
            "published": true,
            "Attribute": [{"type": "ip-dst", "value": "192.0.2.66", "to_ids": true}],
        }}))
        .unwrap();
        let actor = Actor {
            org: self.org,
            user: "mallory@h.example".into(),
        };
        for draft in change::event_drafts(&event, &actor) {
            sealed.push(self.append(draft));
        }
        (event.uuid, sealed)
    }

    /// A draft acting for `acting_org` that sets `fields` on event `event`.
    pub fn edit_draft(&self, acting_org: Uuid, event: Uuid, fields: Value) -> Draft {
        self.draft(
            acting_org,
            Some(event),
            vec![set_op(RecordKind::Event, &event, fields)],
        )
    }

    /// A draft acting for `acting_org` with `ops` about `event` (`None`: directory data).
    pub fn draft(&self, acting_org: Uuid, event: Option<Uuid>, ops: Vec<proto::Op>) -> Draft {
        Draft {
            acting_org,
            acting_user: "mallory@h.example".into(),
            event,
            visibility: proto::Visibility {
                distribution: if event.is_some() { 5 } else { 1 },
                sharing_group: Bytes::new(),
            },
            ops,
        }
    }
}

/// The op that sets `fields` of record `kind`/`key`.
pub fn set_op(kind: RecordKind, key: &Uuid, fields: Value) -> proto::Op {
    proto::Op {
        op: Some(Op::Set(proto::RecordSet {
            kind: kind as i32,
            key: Bytes::copy_from_slice(key.as_bytes()),
            parent: Bytes::new(),
            fields_json: Bytes::from(serde_json::to_vec(&fields).unwrap()),
        })),
    }
}

/// The item carrying an entry's `bytes` (not necessarily a valid entry).
pub fn entry_item(bytes: Bytes) -> wire::Item {
    wire::Item {
        item: Some(wire::item::Item::Entry(bytes)),
    }
}

/// A segment of `items`.
pub fn segment_of(items: Vec<wire::Item>) -> wire::Segment {
    wire::Segment {
        items,
        ..Default::default()
    }
}

/// A segment of `entries`.
pub fn segment(entries: &[&VerifiedEntry]) -> wire::Segment {
    segment_of(
        entries
            .iter()
            .map(|entry| entry_item(entry.stored().clone()))
            .collect(),
    )
}

/// Pushes one segment to the node `to` at `addr` as `key`; returns the node's answer: `Ok(error
/// text, empty when accepted)` or the refusal status.
pub fn push(
    runtime: &tokio::runtime::Runtime,
    key: &NodeKey,
    to: OriginKey,
    addr: &str,
    segment: wire::Segment,
) -> Result<String, String> {
    runtime.block_on(async {
        let work = async {
            // A hostile peer ignores its own size limit: the receiver must enforce its own.
            let mut client = connect_as(key, to, addr)
                .await
                .map_err(|error| error.to_string())?
                .max_encoding_message_size(usize::MAX);
            let response = client
                .push(tokio_stream::iter(vec![segment]))
                .await
                .map_err(|status| format!("{}: {}", status.code(), status.message()))?;
            Ok(response.into_inner().error)
        };
        tokio::time::timeout(Duration::from_secs(CALL_SECONDS_MAX), work)
            .await
            .expect("a push is answered")
    })
}

/// Pulls everything the node `to` at `addr` releases to `key`, from the start of its log.
pub fn pull(
    runtime: &tokio::runtime::Runtime,
    key: &NodeKey,
    to: OriginKey,
    addr: &str,
) -> Vec<Incoming> {
    runtime.block_on(async {
        let work = async {
            let mut client = connect_as(key, to, addr).await.unwrap();
            let mut stream = client
                .pull(wire::PullRequest {
                    cursor: 0,
                    follow: false,
                })
                .await
                .unwrap()
                .into_inner();
            let mut items = Vec::new();
            while let Some(segment) = stream.message().await.unwrap() {
                for item in segment.items {
                    items.push(threatlog::sync::decode_item(item).unwrap());
                }
            }
            items
        };
        tokio::time::timeout(Duration::from_secs(CALL_SECONDS_MAX), work)
            .await
            .expect("a pull ends")
    })
}
