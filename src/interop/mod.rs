//! Interchange (SPEC §10): exports of MISP event JSON to the formats the field uses, MISP
//! feeds in and out, freetext IOC extraction, STIX 2.1 import, taxonomies and galaxies.

pub mod catalog;
pub mod export;
pub mod feed;
pub mod feed_fetch;
pub mod freetext;
pub mod galaxy;
pub mod intake;
pub mod nids;
pub mod stix_export;
pub mod stix_import;
pub mod taxonomy;
