//! Identity for peers a test drives by hand (SPEC §4.1): an organisation with its org key, the
//! certificate entry that opens each of its nodes' chains, and the pairing card that binds it.
#![allow(dead_code)]

use threatlog::change::{self, Actor};
use threatlog::log::identity::{Certificate, OrgKey};
use threatlog::log::{seal, Head, NodeKey, VerifiedEntry};
use threatlog::sync::peer::Card;
use uuid::Uuid;

/// An organisation and its org key.
pub struct Org {
    /// The org key.
    pub key: OrgKey,
    /// The organisation's uuid.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
}

impl Org {
    /// A new organisation `name` with a fresh uuid and org key.
    pub fn new(name: &str) -> Org {
        Org::with_uuid(name, Uuid::new_v4())
    }

    /// An organisation claiming `uuid`, with a fresh org key.
    pub fn with_uuid(name: &str, uuid: Uuid) -> Org {
        Org {
            key: OrgKey::generate(),
            uuid,
            name: name.to_string(),
        }
    }

    /// The org key's certificate of `node`, without expiry.
    pub fn certificate(&self, node: &NodeKey) -> Certificate {
        Certificate::issue(
            &self.key,
            self.uuid,
            &self.name,
            node.origin(),
            threatlog::clock::SystemClock.now_ms(),
            None,
        )
        .unwrap()
    }

    /// `node`'s entry after `head` carrying its certificate (the first entry of a new chain).
    pub fn certificate_entry(&self, node: &NodeKey, head: &Head) -> VerifiedEntry {
        let actor = Actor {
            org: self.uuid,
            user: "system".into(),
        };
        let draft = change::directory_draft(vec![self.certificate(node).op()], &actor);
        seal(
            node,
            self.uuid,
            head,
            draft,
            threatlog::clock::SystemClock.now_ms(),
            *Uuid::new_v4().as_bytes(),
        )
        .unwrap()
    }

    /// The pairing card of `node`, a node of this organisation (its endpoint unused).
    pub fn card(&self, node: &NodeKey) -> Card {
        Card {
            key: node.origin(),
            org_uuid: self.uuid,
            org_name: self.name.clone(),
            endpoint: "127.0.0.1:9".into(),
            org_key: Some(self.key.public()),
        }
    }
}
