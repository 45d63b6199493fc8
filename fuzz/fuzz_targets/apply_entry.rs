//! Ops a validly signing peer could send: whatever the ops hold, the reducer returns without
//! panicking. The fuzzer's bytes are decoded as an `Entry` and re-sealed with a test key, so
//! signature checks do not hide the reducer from the fuzzer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use threatlog::log::{seal, Draft, Head, NodeKey};
use threatlog::proto;
use threatlog::view::{self, MemoryViews};
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = proto::Entry::decode(data) else {
        return;
    };
    let key = NodeKey::from_seed(&[7; 32]);
    let draft = Draft {
        acting_org: Uuid::from_u128(1),
        acting_user: entry.acting_user,
        event: Uuid::from_slice(&entry.event_uuid).ok(),
        visibility: entry.visibility.unwrap_or_default(),
        ops: entry.ops,
    };
    if let Ok(sealed) = seal(
        &key,
        Uuid::from_u128(1),
        &Head::EMPTY,
        draft,
        entry.time_ms,
        [0; 16],
    ) {
        let mut views = MemoryViews::new();
        let _ = view::apply(&mut views, &sealed);
        let _ = view::apply(&mut views, &sealed);
    }
});
