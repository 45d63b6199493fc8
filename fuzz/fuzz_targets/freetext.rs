//! Pasted text from a client: freetext extraction returns finds or a limit error, never
//! panics, and every find points at its token in the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(finds) = threatlog::interop::freetext::extract(text) {
            for find in finds {
                assert!(text[find.offset..].starts_with(&find.raw));
            }
        }
    }
});
