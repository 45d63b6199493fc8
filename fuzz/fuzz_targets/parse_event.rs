//! MISP JSON from a client or a feed: parsing returns events or a model error, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = threatlog::model::parse_events_document(&value);
    }
});
