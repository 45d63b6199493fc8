//! Interchange (SPEC §10): exports of MISP event JSON to the formats the field uses, MISP
//! feeds in and out, freetext IOC extraction, STIX 2.1 import, taxonomies and galaxies.
//!
//! Pure formats (bytes, strings and JSON values in and out, no IO):
//! - [`export`]: the export formats and their dispatch, CSV, text and hashes;
//!   [`event_json`]: what every writer reads from MISP event JSON;
//!   [`nids`]: Suricata and Snort rules; [`stix_export`]: STIX 2.1 bundles;
//!   [`blocklists`]: hosts files, iptables rules and DNS response policy zones.
//! - [`feed`]: the MISP feed format (feed events, manifest, hashes).
//! - [`freetext`], [`stix_import`]: indicators out of text and STIX 2.1 bundles.
//! - [`taxonomy`], [`galaxy`]: the MISP taxonomy and galaxy formats and exclusivity rules.
//!
//! IO adapters:
//! - [`io`]: the feed HTTP client, feed fetch and import, the feed schedule, catalog
//!   directories and the catalog in the node's local state.
//! - [`intake`]: the CLI's freetext and STIX imports appended on an open node.

pub mod blocklists;
pub mod event_json;
pub mod export;
pub mod feed;
pub mod freetext;
pub mod galaxy;
pub mod intake;
pub mod io;
pub mod nids;
pub mod stix_export;
pub mod stix_import;
pub mod taxonomy;
