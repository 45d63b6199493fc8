//! Bundles and checkpoint notes come from outside (an auditor's file, a peer): whatever the
//! bytes, reading a bundle, verifying it and parsing a checkpoint note return without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use threatlog::audit::verify::verify_bundle;
use threatlog::log::checkpoint;
use threatlog::log::OriginKey;

fuzz_target!(|data: &[u8]| {
    let _ = verify_bundle(data, 1, &|_| {});
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = checkpoint::verify_origin_note(text, &OriginKey([9; 32]));
    }
});
