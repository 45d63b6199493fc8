//! A peer's TLS certificate: whatever bytes a client or server presents, reading its node key
//! returns a key or a refusal without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = threatlog::sync::tls::certificate_key(data);
});
