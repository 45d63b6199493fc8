//! A checkpoint note from a peer (in a hello, or relayed in a segment for its stubs' proofs)
//! and the cosignature lines peers send back: whatever the text, splitting the note, parsing
//! its body, verifying it under the origin it names and verifying its cosignatures return a
//! result without panicking; and a body that parses is the one text of the checkpoint it
//! states, so two notes of one checkpoint cannot differ in the bytes their origin signed.
//!
//! The seeds (`fuzz/seeds/checkpoint_note`) are notes of a test origin, signed and cosigned
//! by a test cosigner, so the fuzzer starts past the signatures.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use threatlog::log::checkpoint::{self, Checkpoint};
use threatlog::log::{NodeKey, OriginKey};
use threatlog::sync::decode_segment;

/// The node whose cosignatures the seeds carry.
static COSIGNER: LazyLock<OriginKey> = LazyLock::new(|| NodeKey::from_seed(&[9; 32]).origin());

fuzz_target!(|data: &[u8]| {
    let Ok(note) = std::str::from_utf8(data) else {
        return;
    };
    // Relayed in a segment: kept when signed by the origin it names.
    let _ = decode_segment(Vec::new(), &[note.to_string()]);
    // In a hello, as the store accepts it: the origin its body names, then that origin's
    // signature; then the cosignature lines, as peers send them back.
    let Ok((body, lines)) = checkpoint::split_note(note) else {
        return;
    };
    let Ok(claimed) = Checkpoint::parse_body(body) else {
        return;
    };
    assert_eq!(claimed.body(), body);
    let origin = claimed.origin_key();
    if let Some(origin) = &origin {
        let _ = checkpoint::verify_origin_note(note, origin);
    }
    for line in lines {
        let _ = claimed.verify_cosignature(line, &COSIGNER);
        if let Some(origin) = &origin {
            let _ = claimed.verify_cosignature(line, origin);
        }
    }
});
