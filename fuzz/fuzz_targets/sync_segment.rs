//! A segment's bytes from a peer, handled as a fresh receiver handles them: decoded (entries
//! verified byte for byte, stubs' inclusion proofs checked against the checkpoints it carries),
//! then each item placed on its origin's chain and each entry passed through write authority
//! and the receiver's checks and applied to the views, up to the first refused item. Whatever
//! the bytes, this returns without panicking, and every stub decoding calls proven is one of
//! the decoded items.
//!
//! The seeds (`fuzz/seeds/sync_segment`) are valid segments of a test origin, so the fuzzer
//! starts past the signatures.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use threatlog::log::{Head, NodeKey, OriginKey};
use threatlog::policy::authority::{authorize, NoOrgKeys};
use threatlog::policy::Party;
use threatlog::proto::sync as wire;
use threatlog::store::Incoming;
use threatlog::sync::check::{check_entry, Clock};
use threatlog::sync::decode_segment;
use threatlog::view::{self, MemoryViews};
use uuid::Uuid;

/// The peer that sent the segment: the seeds' origin, sending its own entries.
static SENDER: LazyLock<Party> = LazyLock::new(|| Party {
    node: NodeKey::from_seed(&[7; 32]).origin(),
    org: Uuid::from_u128(1),
});

/// The node receiving it.
static RECEIVER: LazyLock<Party> = LazyLock::new(|| Party {
    node: NodeKey::from_seed(&[8; 32]).origin(),
    org: Uuid::from_u128(2),
});

/// The receiver's clock: after the seeds' entries, with the default allowed skew (10 minutes).
const CLOCK: Clock = Clock {
    now_ms: 1_700_000_600_000,
    skew_max_ms: 600_000,
};

fuzz_target!(|data: &[u8]| {
    let Ok(segment) = wire::Segment::decode(data) else {
        return;
    };
    let decoded = decode_segment(segment.items, &segment.checkpoints);
    for id in &decoded.proven {
        assert!(decoded
            .items
            .iter()
            .any(|item| matches!(item, Incoming::Stub(stub) if stub.id == *id)));
    }
    let mut views = MemoryViews::new();
    let mut heads: HashMap<OriginKey, Head> = HashMap::new();
    for item in &decoded.items {
        let head = heads.entry(item.id().origin).or_insert(Head::EMPTY);
        match item {
            Incoming::Stub(stub) => {
                if stub.check_next(head).is_err() {
                    break;
                }
                *head = stub.head();
            }
            Incoming::Entry(entry) => {
                if head.check_next(entry).is_err()
                    || authorize(entry, &views, &NoOrgKeys).is_err()
                    || check_entry(*SENDER, *RECEIVER, entry, &views, CLOCK).is_err()
                    || view::apply(&mut views, entry).is_err()
                {
                    break;
                }
                *head = Head::after(entry);
            }
        }
    }
});
