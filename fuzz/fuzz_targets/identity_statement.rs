//! Certificate, revocation and roster bytes from a peer or a file: verification returns an
//! error or a verified statement, never panics, and what verifies re-verifies from its stored
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use threatlog::log::identity::{Certificate, Revocation, Roster};

fuzz_target!(|data: &[u8]| {
    if let Ok(certificate) = Certificate::verify(data.to_vec().into()) {
        assert_eq!(
            Certificate::verify(certificate.stored().clone()),
            Ok(certificate)
        );
    }
    if let Ok(revocation) = Revocation::verify(data.to_vec().into()) {
        assert_eq!(
            Revocation::verify(revocation.stored().clone()),
            Ok(revocation)
        );
    }
    let _ = Roster::verify(data.to_vec().into());
});
