//! Export formats over MISP event JSON (`{"Event": …}` as [`crate::view::read::event`] and the
//! REST API render it): the format table, the simple line formats (CSV, text, hashes, JSON),
//! and the dispatch to the rule ([`super::nids`]) and STIX ([`super::stix_export`]) writers.
//! Pure: events in, bytes out; what every writer reads from the event JSON is in
//! [`super::event_json`]. [`select`] and [`node_options`] read the node's views and
//! configuration for an export.

use serde_json::{json, Value};

use super::event_json::DAY_SECONDS;
use super::{blocklists, nids, stix_export};
use crate::model::date::civil_from_days;

pub use super::event_json::{
    array, attributes, flag, hash_part, rfc3339, tag_names, text, ExportOptions, Listed,
    HASH_TYPES, SID_BASE_DEFAULT,
};

/// MISP's attribute CSV columns (the default of `restSearch` with `returnFormat: csv`).
pub const CSV_COLUMNS: [&str; 13] = [
    "uuid",
    "event_id",
    "category",
    "type",
    "value",
    "comment",
    "to_ids",
    "date",
    "object_relation",
    "attribute_tag",
    "object_uuid",
    "object_name",
    "object_meta_category",
];

/// An export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// MISP JSON: `{"response": [{"Event": …}, …]}`.
    Json,
    /// MISP's attribute CSV.
    Csv,
    /// Attribute values, one per line.
    Text,
    /// Hash values (also the hash half of `filename|<hash>`), one per line.
    Hashes,
    /// Suricata rules.
    Suricata,
    /// Snort 2 rules.
    Snort,
    /// A STIX 2.1 bundle.
    Stix2,
    /// A hosts file mapping domains to one address ([`blocklists::hosts`]).
    Hosts,
    /// iptables rules ([`blocklists::netfilter`]).
    Netfilter,
    /// A DNS response policy zone ([`blocklists::rpz`]).
    Rpz,
    /// A hash of each value, one per line ([`blocklists::cache`]).
    Cache,
}

impl Format {
    /// Every format, in the order help texts list them.
    pub const ALL: [Format; 11] = [
        Format::Json,
        Format::Csv,
        Format::Text,
        Format::Hashes,
        Format::Suricata,
        Format::Snort,
        Format::Stix2,
        Format::Hosts,
        Format::Netfilter,
        Format::Rpz,
        Format::Cache,
    ];

    /// The format named `name` (MISP's `returnFormat` names; `stix2` also as `stix2.1`).
    pub fn parse(name: &str) -> Option<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "text" => Some(Format::Text),
            "hashes" => Some(Format::Hashes),
            "suricata" => Some(Format::Suricata),
            "snort" => Some(Format::Snort),
            "stix2" | "stix2.1" | "stix21" => Some(Format::Stix2),
            "hosts" => Some(Format::Hosts),
            "netfilter" => Some(Format::Netfilter),
            "rpz" => Some(Format::Rpz),
            "cache" => Some(Format::Cache),
            _ => None,
        }
    }

    /// The format's name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Text => "text",
            Format::Hashes => "hashes",
            Format::Suricata => "suricata",
            Format::Snort => "snort",
            Format::Stix2 => "stix2",
            Format::Hosts => "hosts",
            Format::Netfilter => "netfilter",
            Format::Rpz => "rpz",
            Format::Cache => "cache",
        }
    }

    /// The HTTP content type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Stix2 => "application/stix+json;version=2.1",
            Format::Csv => "text/csv",
            Format::Text
            | Format::Hashes
            | Format::Suricata
            | Format::Snort
            | Format::Hosts
            | Format::Netfilter
            | Format::Rpz
            | Format::Cache => "text/plain",
        }
    }

    /// Whether the format feeds detection tools, so that, as in MISP, only IDS attributes
    /// (`to_ids=1`) of published events (`published=1`) are exported unless asked otherwise.
    /// (MISP's netfilter export is the exception among blocklists: it takes every address.)
    pub fn is_ids(self) -> bool {
        matches!(
            self,
            Format::Suricata | Format::Snort | Format::Hashes | Format::Hosts | Format::Rpz
        )
    }
}

/// Writes `events` (each `{"Event": …}`) in `format`.
pub fn render(format: Format, events: &[Value], options: &ExportOptions) -> String {
    match format {
        Format::Json => {
            // A JSON value of plain values always serialises.
            let mut text = serde_json::to_string_pretty(&json!({ "response": events }))
                .expect("JSON serialises");
            text.push('\n');
            text
        }
        Format::Csv => csv(events),
        Format::Text => lines(events, |_, value| vec![value.to_string()]),
        Format::Hashes => lines(events, |ty, value| {
            hash_part(ty, value).into_iter().map(String::from).collect()
        }),
        Format::Suricata => nids::rules(nids::Engine::Suricata, events, options),
        Format::Snort => nids::rules(nids::Engine::Snort, events, options),
        Format::Stix2 => {
            let mut text = serde_json::to_string_pretty(&stix_export::bundle(events))
                .expect("JSON serialises");
            text.push('\n');
            text
        }
        Format::Hosts => blocklists::hosts(&typed(events), &options.blocklists, options.now),
        Format::Netfilter => blocklists::netfilter(&typed(events), &options.blocklists),
        Format::Rpz => blocklists::rpz(&typed(events), &options.blocklists, options.now),
        Format::Cache => blocklists::cache(&typed(events), &options.blocklists),
    }
}

/// The (type, value) of every exported attribute of `events`, in order.
fn typed(events: &[Value]) -> Vec<blocklists::Typed> {
    attributes(events)
        .iter()
        .map(|listed| {
            let field = |name| text(listed.attribute, name).into_owned();
            (field("type"), field("value"))
        })
        .collect()
}

/// One line per produced string, each attribute's strings in attribute order, line breaks in
/// values replaced by spaces so that one line is one value.
fn lines(events: &[Value], pick: impl Fn(&str, &str) -> Vec<String>) -> String {
    let mut out = String::new();
    for listed in attributes(events) {
        let ty = text(listed.attribute, "type");
        let value = text(listed.attribute, "value");
        for item in pick(&ty, &value) {
            out.push_str(&item.replace(['\r', '\n'], " "));
            out.push('\n');
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// MISP's attribute CSV with [`CSV_COLUMNS`].
fn csv(events: &[Value]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for listed in attributes(events) {
        let attribute = listed.attribute;
        let object = |name: &str| listed.object.map(|o| text(o, name)).unwrap_or_default();
        let cells: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|column| match *column {
                "date" => text(attribute, "timestamp")
                    .parse::<i64>()
                    .map(|seconds| {
                        let (y, m, d) = civil_from_days(seconds.div_euclid(DAY_SECONDS));
                        format!("{y:04}{m:02}{d:02}")
                    })
                    .unwrap_or_default(),
                "event_id" => text(listed.event, "id").into_owned(),
                "attribute_tag" => tag_names(attribute).join(","),
                "object_uuid" => object("uuid").into_owned(),
                "object_name" => object("name").into_owned(),
                "object_meta_category" => object("meta-category").into_owned(),
                other => text(attribute, other).into_owned(),
            })
            .map(|cell| csv_field(&cell))
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Value> {
        vec![json!({"Event": {
            "id": "7", "uuid": "5b646415-7b48-40d5-86b4-c0070acd0835", "info": "x",
            "Attribute": [
                {"id": "1", "type": "md5", "category": "Payload delivery", "to_ids": true,
                 "value": "0749bae92ca336a02c83d126e04ec628", "timestamp": "1472480395",
                 "uuid": "57c4448b-454c-4d17-90d1-4d2f950d210f", "comment": "a, \"b\"",
                 "Tag": [{"name": "tlp:white"}]},
                {"id": "2", "type": "text", "value": "two\nlines", "deleted": true},
                {"id": "3", "type": "domain", "value": "evil.test"}
            ],
            "Object": [{"uuid": "0b4c1b1e-0000-4000-8000-000000000001", "name": "file",
                        "meta-category": "file", "Attribute": [
                {"id": "4", "type": "filename|sha256", "object_relation": "x",
                 "value": "a.exe|b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"}
            ]}]
        }})]
    }

    #[test]
    fn text_and_hashes() {
        let options = ExportOptions::default();
        assert_eq!(
            render(Format::Text, &sample(), &options),
            "0749bae92ca336a02c83d126e04ec628\nevil.test\n\
             a.exe|b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68\n"
        );
        assert_eq!(
            render(Format::Hashes, &sample(), &options),
            "0749bae92ca336a02c83d126e04ec628\n\
             b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68\n"
        );
    }

    #[test]
    fn csv_columns_and_quoting() {
        let out = render(Format::Csv, &sample(), &ExportOptions::default());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(
            lines[1],
            "57c4448b-454c-4d17-90d1-4d2f950d210f,7,Payload delivery,md5,\
             0749bae92ca336a02c83d126e04ec628,\"a, \"\"b\"\"\",1,20160829,,tlp:white,,,"
        );
        assert!(lines[3].ends_with(",0b4c1b1e-0000-4000-8000-000000000001,file,file"));
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn names_and_times() {
        for format in Format::ALL {
            assert_eq!(Format::parse(format.name()), Some(format));
        }
        assert_eq!(Format::parse("xml"), None);
        assert_eq!(rfc3339(1_472_541_011), "2016-08-30T07:10:11Z");
        assert_eq!(hash_part("filename|md5", "a|b"), Some("b"));
        assert_eq!(hash_part("filename", "a|b"), None);
    }
}

/// Filters of a CLI export, a subset of restSearch's.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Tags (any of; `!` negates).
    pub tags: Vec<String>,
    /// Attribute types (any of; `!` negates).
    pub types: Vec<String>,
    /// Events by uuid (any of).
    pub events: Vec<uuid::Uuid>,
    /// Only published events.
    pub published: bool,
    /// For IDS formats: also attributes without `to_ids` and unpublished events.
    pub all_attributes: bool,
}

/// The restSearch query of `filters` for `format` (IDS formats default to `to_ids` and
/// published events, as MISP's do).
pub fn query(format: Format, filters: &Filters) -> crate::view::search::Query {
    use crate::view::search::{OneOf, Query, TagQuery};
    let split = |items: &[String]| {
        let (exclude, include): (Vec<String>, Vec<String>) = items
            .iter()
            .cloned()
            .partition(|item| item.starts_with('!'));
        OneOf {
            include,
            exclude: exclude
                .into_iter()
                .map(|item| item[1..].to_string())
                .collect(),
        }
    };
    let tags = split(&filters.tags);
    let ids = format.is_ids() && !filters.all_attributes;
    Query {
        tags: TagQuery {
            any: tags.include,
            all: Vec::new(),
            none: tags.exclude,
        },
        types: split(&filters.types),
        events: OneOf::any_of(filters.events.clone()),
        published: (filters.published || ids).then_some(true),
        to_ids: ids.then_some(true),
        ..Query::default()
    }
}

/// The MISP JSON of the events matching `query` on `node`, in local event id order, each
/// holding only the matched attributes when the query filters attributes.
pub fn select(
    node: &crate::node::Node,
    query: &crate::view::search::Query,
) -> Result<Vec<Value>, crate::store::StoreError> {
    use crate::proto::RecordKind;
    use crate::view::read::{self, EventOptions};
    let views = node.store.views();
    let mut hits = crate::view::search::search(&views, query)?;
    hits.sort_by_key(|hit| node.store.local_id(RecordKind::Event, hit.event.as_bytes()));
    let ids = |kind: RecordKind, key: &[u8]| node.store.local_id(kind, key);
    let mut out = Vec::new();
    for hit in hits {
        let options = EventOptions {
            include_deleted: false,
            correlation_max: node.config.views.correlation_max,
            correlations: false,
            only_attributes: (!hit.attributes.is_empty())
                .then(|| hit.attributes.iter().copied().collect()),
        };
        if let Some(mut event) = read::event(&views, &hit.event, &ids, options)? {
            node.show_tag_definitions(&mut event)?;
            out.push(event);
        }
    }
    Ok(out)
}

/// Options for exports from `node`: the sid base given and a reference URL from the API
/// address.
pub fn node_options(node: &crate::node::Node, sid_base: Option<u64>) -> ExportOptions {
    ExportOptions {
        sid_base: sid_base.unwrap_or(SID_BASE_DEFAULT),
        base_url: format!("http://{}", node.config.api.listen),
        now: node.now_seconds(),
        blocklists: Default::default(),
    }
}
