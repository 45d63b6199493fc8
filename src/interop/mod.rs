//! Interchange with other tools: freetext IOC extraction, STIX 2.1 import, taxonomies and galaxies.

pub mod catalog;
pub mod freetext;
pub mod galaxy;
pub mod intake;
pub mod stix_import;
pub mod taxonomy;
