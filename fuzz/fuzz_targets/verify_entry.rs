//! Entry bytes from a peer or a disk: verification returns an error or a verified entry, and a
//! verified entry applies to empty views without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use threatlog::log::VerifiedEntry;
use threatlog::view::{self, MemoryViews};

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = VerifiedEntry::verify(data.to_vec().into()) {
        let _ = view::apply(&mut MemoryViews::new(), &entry);
    }
});
