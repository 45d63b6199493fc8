//! A feed's `manifest.json` comes from whoever serves the feed: whatever its bytes, parsing
//! returns the listed events or an error, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use threatlog::interop::feed::parse_manifest;

fuzz_target!(|data: &[u8]| {
    let _ = parse_manifest(data);
});
