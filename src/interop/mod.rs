//! Interchange (SPEC §10): exports of MISP event JSON to the formats the field uses (pure),
//! and MISP feeds in and out.

pub mod export;
pub mod feed;
pub mod feed_fetch;
pub mod nids;
pub mod stix_export;
