//! A STIX 2.1 bundle from a file: conversion returns a MISP event or an error, never panics,
//! and the event it returns is valid MISP.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(converted) = threatlog::interop::stix_import::convert(data) {
        threatlog::model::Event::from_json(&converted.event).expect("a valid MISP event");
    }
});
