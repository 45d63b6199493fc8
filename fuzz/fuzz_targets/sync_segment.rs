//! A segment's bytes from a peer: decoding it, with its stubs' inclusion proofs checked against
//! the checkpoints it carries, returns items or an error and never panics; every stub it
//! calls proven verifies against one of those checkpoints.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use threatlog::proto::sync as wire;
use threatlog::store::Incoming;
use threatlog::sync::decode_segment;

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
});
