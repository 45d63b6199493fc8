//! Reading a restSearch request: MISP's filter parameters (terms with negations, ages and
//! dates, flags, organisations and events by name) into a [`Query`] and the output options.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::request::{parse_ref, truthy};
use crate::interop::blocklists::{self, BlocklistOptions};
use crate::model::date::{civil_from_days, days_from_civil};
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::search::{Deleted, OneOf, Query, Range, Scope, TagQuery};

/// Seconds in a day.
pub(super) const DAY_SECONDS: i64 = 86_400;

/// The output formats served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Csv,
    Text,
    /// How many events (events scope) or attributes (attributes scope) match, as text.
    Count,
    /// An interchange export (hashes, suricata, snort, stix2), see [`crate::interop::export`].
    Export(crate::interop::export::Format),
}

/// A parsed request: the query and the output options.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub(super) query: Query,
    pub(super) format: Format,
    /// Results per page (`None`: all).
    pub(super) limit: Option<usize>,
    /// Page number from 1.
    pub(super) page: usize,
    pub(super) metadata: bool,
    pub(super) correlations: bool,
    pub(super) context: bool,
    pub(super) headerless: bool,
    pub(super) columns: Vec<String>,
    /// Attributes' JSON with their event's tags too (`includeEventTags`).
    pub(super) event_tags: bool,
    /// Attributes' JSON with their event's uuid (`includeEventUuid`).
    pub(super) event_uuid: bool,
    /// No local tag in the JSON (`excludeLocalTags`).
    pub(super) no_local_tags: bool,
    /// Options of the hosts, netfilter and rpz exports.
    pub(super) blocklists: BlocklistOptions,
}

impl Request {
    /// Results before the requested page: past every result when that overflows.
    pub(super) fn skip(&self) -> usize {
        self.limit
            .map_or(0, |limit| limit.saturating_mul(self.page - 1))
    }
}

/// A filter's terms: a string, a number, a list, or `{"OR": …, "AND": …, "NOT": …}`, with
/// `!` marking a negation. Returns (or, and, not).
pub(super) fn terms(value: Option<&Value>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    let text = |item: &Value| match item {
        Value::String(text) => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    let add = |item: &Value, group: u8, out: &mut (Vec<_>, Vec<_>, Vec<_>)| {
        let Some(text) = text(item).filter(|text| !text.is_empty()) else {
            return;
        };
        match (text.strip_prefix('!'), group) {
            (Some(negated), _) => out.2.push(negated.to_string()),
            (None, 2) => out.2.push(text),
            (None, 1) => out.1.push(text),
            (None, _) => out.0.push(text),
        }
    };
    let list = |value: Option<&Value>, group: u8, out: &mut (Vec<_>, Vec<_>, Vec<_>)| match value {
        Some(Value::Array(items)) => items.iter().for_each(|item| add(item, group, out)),
        Some(item) => add(item, group, out),
        None => {}
    };
    match value {
        Some(Value::Object(groups)) => {
            for (name, group) in [("OR", 0), ("AND", 1), ("NOT", 2)] {
                let value = groups
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value);
                list(value, group, &mut out);
            }
        }
        other => list(other, 0, &mut out),
    }
    out
}

/// Terms as an OR list with negations (AND terms count as OR for single-valued fields).
pub(super) fn one_of(value: Option<&Value>) -> OneOf<String> {
    let (mut include, and, exclude) = terms(value);
    include.extend(and);
    OneOf { include, exclude }
}

/// `YYYY-MM-DD` (optionally followed by a time, which is ignored) as (y, m, d).
pub(super) fn parse_date(text: &str) -> Option<(i64, i64, i64)> {
    let date = text.get(..10)?;
    let mut parts = date.split('-');
    let year = parts.next()?.parse().ok()?;
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some((year, month, day))
}

/// A point in time as epoch seconds: an epoch (number or digits), a relative age (`5d`,
/// `12h`, `30m`, `10s`, `2w` before `now`), or a date (its midnight UTC).
pub(super) fn epoch(value: &Value, now: i64) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_f64().map(|seconds| seconds.floor() as i64),
        Value::String(text) => {
            let text = text.trim();
            if let Ok(seconds) = text.parse::<f64>() {
                return Some(seconds.floor() as i64);
            }
            let unit = match text.chars().last()? {
                's' => Some(1),
                'm' => Some(60),
                'h' => Some(3600),
                'd' => Some(DAY_SECONDS),
                'w' => Some(7 * DAY_SECONDS),
                _ => None,
            };
            if let Some(unit) = unit {
                if let Ok(count) = text[..text.len() - 1].parse::<i64>() {
                    // An age past the representable reaches back to the earliest time.
                    return Some(now.saturating_sub(count.saturating_mul(unit)));
                }
            }
            parse_date(text).map(|(y, m, d)| days_from_civil(y, m, d) * DAY_SECONDS)
        }
        _ => None,
    }
}

/// A time filter: one point (a lower bound) or a two-element range.
pub(super) fn range(value: Option<&Value>, now: i64) -> Range {
    match value {
        Some(Value::Array(items)) => (
            items.first().and_then(|item| epoch(item, now)),
            items.get(1).and_then(|item| epoch(item, now)),
        ),
        Some(value) => (epoch(value, now), None),
        None => (None, None),
    }
}

/// An event date bound: a date as given, or the UTC date of a point in time.
pub(super) fn date_bound(value: Option<&Value>, now: i64) -> Option<String> {
    let value = value?;
    if let Some((y, m, d)) = value.as_str().and_then(parse_date) {
        return Some(format!("{y:04}-{m:02}-{d:02}"));
    }
    let (y, m, d) = civil_from_days(epoch(value, now)?.div_euclid(DAY_SECONDS));
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// A tri-state MISP flag: absent or both (`[0, 1]`) is no filter.
pub(super) fn flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Array(items) if items.len() != 1 => None,
        Value::Array(items) => Some(truthy(&items[0])),
        Value::String(text) if text.trim().is_empty() => None,
        other => Some(truthy(other)),
    }
}

pub(super) fn number(value: Option<&Value>) -> Option<usize> {
    match value? {
        Value::Number(number) => number.as_u64().map(|n| n as usize),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// The answer's format named by `returnFormat` (JSON when absent).
pub(super) fn return_format(value: Option<&Value>) -> Result<Format, ApiError> {
    Ok(match value.and_then(Value::as_str).unwrap_or("json") {
        "json" => Format::Json,
        "csv" => Format::Csv,
        "text" => Format::Text,
        "count" => Format::Count,
        other => match crate::interop::export::Format::parse(other) {
            Some(format) => Format::Export(format),
            None => {
                let supported: Vec<&str> = (crate::interop::export::Format::ALL.iter())
                    .map(|format| format.name())
                    .chain(["count"])
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "Invalid return format: {other}. Supported: {}.",
                    supported.join(", ")
                )));
            }
        },
    })
}

/// The organisations an `org` filter names (uuid, id or name), resolved on `node`. Unknown
/// names match nothing: the nil uuid names no organisation.
pub(super) fn org_filter(node: &Node, value: Option<&Value>) -> Result<OneOf<Uuid>, ApiError> {
    let terms = one_of(value);
    let resolve = |text: &String| -> Result<Uuid, ApiError> {
        Ok(node
            .find_organisation(text)?
            .map(|entry| entry.org.uuid)
            .unwrap_or(Uuid::nil()))
    };
    Ok(OneOf {
        include: terms
            .include
            .iter()
            .map(resolve)
            .collect::<Result<_, _>>()?,
        exclude: terms
            .exclude
            .iter()
            .map(resolve)
            .collect::<Result<_, _>>()?,
    })
}

/// Which deleted attributes a `deleted` filter asks for.
pub(super) fn deleted_filter(value: Option<&Value>) -> Deleted {
    match value {
        Some(Value::Array(items)) if items.len() > 1 => Deleted::Both,
        Some(Value::Array(items)) if items.first().is_some_and(truthy) => Deleted::Only,
        Some(Value::String(text)) if text == "only" => Deleted::Only,
        Some(value) if !value.is_array() && truthy(value) => Deleted::Only,
        _ => Deleted::Live,
    }
}

/// A list of names: a JSON list, or comma-separated text (`requested_attributes`).
pub(super) fn names(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::String(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// The query a restSearch request's filters `params` make, parsed exactly as the endpoints
/// parse them (a `POST` body's object, or a `GET`'s URL parameters as [`super::url_params`]
/// gathers them), or the error the endpoints answer. Public so that the fuzzer
/// (`fuzz/fuzz_targets/search_parameters.rs`) runs the endpoints' own parsing.
pub fn parse_query(
    node: &Node,
    scope: Scope,
    params: &Map<String, Value>,
) -> Result<Query, ApiError> {
    parse(node, scope, params).map(|request| request.query)
}

/// The restSearch parameters this node reads.
const READ: &[&str] = &[
    "returnFormat",
    "page",
    "limit",
    "value",
    "type",
    "category",
    "org",
    "tags",
    "event_tags",
    "eventid",
    "uuid",
    "threat_level_id",
    "analysis",
    "object_relation",
    "object_name",
    "distribution",
    "sharinggroup",
    "attribute_timestamp",
    "first_seen",
    "last_seen",
    "published",
    "to_ids",
    "deleted",
    "from",
    "to",
    "date_from",
    "date_to",
    "last",
    "timestamp",
    "event_timestamp",
    "publish_timestamp",
    "eventinfo",
    "searchall",
    "quickFilter",
    "metadata",
    "includeCorrelations",
    "include_correlations",
    "includeContext",
    "include_context",
    "headerless",
    "requested_attributes",
    "includeEventTags",
    "includeEventUuid",
    "excludeLocalTags",
];

/// Options that MISP clients send switched off with every search (PyMISP sends each as 0)
/// and that this node does not offer: accepted off, refused on.
const OFF_ONLY: &[&str] = &[
    "withAttachments",
    "enforceWarninglist",
    "includeWarninglistHits",
    "sgReferenceOnly",
    "includeSightings",
    "noSightings",
    "includeProposals",
    "includeDecayScore",
    "includeFullModel",
    "excludeDecayed",
];

/// Refuses a parameter this node does not read (or an option it does not offer, switched
/// on) with MISP's 400: ignored, a filter would widen the answer past what was asked.
/// Parameters without a value (null, empty text or list) count as absent.
fn refuse_unread(params: &Map<String, Value>) -> Result<(), ApiError> {
    refuse_unknown(params, "search parameter", |name, value| {
        READ.contains(&name)
            || blocklists::OPTION_NAMES.contains(&name)
            || (OFF_ONLY.contains(&name) && !truthy(value))
    })
}

/// Whether a parameter has no value: null, empty text or an empty list.
fn absent(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Refuses with MISP's 400 the first parameter with a value that `read` does not take,
/// naming it as a `what`.
fn refuse_unknown(
    params: &Map<String, Value>,
    what: &str,
    read: impl Fn(&str, &Value) -> bool,
) -> Result<(), ApiError> {
    let unread = params
        .iter()
        .find(|(name, value)| !absent(value) && !read(name, value));
    match unread {
        Some((name, _)) => Err(ApiError::bad_request(format!(
            "This node does not support the {what} {name}; it is refused rather than \
             ignored, so that an answer never holds more than was asked."
        ))),
        None => Ok(()),
    }
}

/// Longest text of one search parameter (a value, a pattern, a name), in bytes: a pattern is
/// compared with every candidate, so its length multiplies the search's work.
pub const SEARCH_TERM_BYTES_MAX: usize = 8192;
/// Most `%` wildcards in one search term.
pub const SEARCH_WILDCARDS_MAX: usize = 16;

/// Refuses a parameter whose text (or one of whose list items) is longer than
/// [`SEARCH_TERM_BYTES_MAX`] or holds more than [`SEARCH_WILDCARDS_MAX`] wildcards.
fn check_term_sizes(params: &Map<String, Value>) -> Result<(), ApiError> {
    fn texts<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::String(text) => out.push(text),
            Value::Array(items) => items.iter().for_each(|item| texts(item, out)),
            Value::Object(groups) => groups.values().for_each(|group| texts(group, out)),
            _ => {}
        }
    }
    for (name, value) in params {
        let mut found = Vec::new();
        texts(value, &mut found);
        for text in found {
            if text.len() > SEARCH_TERM_BYTES_MAX {
                return Err(ApiError::bad_request(format!(
                    "The search parameter {name} has a term of {} bytes, more than the \
                     {SEARCH_TERM_BYTES_MAX} this node reads.",
                    text.len()
                )));
            }
            if text.matches('%').count() > SEARCH_WILDCARDS_MAX {
                return Err(ApiError::bad_request(format!(
                    "The search parameter {name} has a term with more than \
                     {SEARCH_WILDCARDS_MAX} % wildcards."
                )));
            }
        }
    }
    Ok(())
}

/// Refuses a list or an object given for one of `names`, which take one text each: read as no
/// filter, it would answer more than was asked.
fn require_texts(params: &Map<String, Value>, names: &[&str]) -> Result<(), ApiError> {
    let wrong = |name: &str| {
        params
            .get(name)
            .is_some_and(|v| v.is_array() || v.is_object())
    };
    match names.iter().find(|name| wrong(name)) {
        Some(name) => Err(ApiError::bad_request(format!(
            "The search parameter {name} takes one text."
        ))),
        None => Ok(()),
    }
}

/// Refuses a query with more filter terms than `api.search_terms_max`.
fn check_terms(node: &Node, query: &Query) -> Result<(), ApiError> {
    let terms_max = node.config.api.search_terms_max;
    if query.terms() > terms_max {
        return Err(ApiError::bad_request(format!(
            "The search has {} filter terms, more than the {terms_max} this node accepts \
             (api.search_terms_max); split it.",
            query.terms()
        )));
    }
    Ok(())
}

/// The options of the blocklist exports among `params`, each checked
/// ([`BlocklistOptions::set`]).
fn blocklist_options(params: &Map<String, Value>) -> Result<BlocklistOptions, ApiError> {
    let mut options = BlocklistOptions::default();
    for name in blocklists::OPTION_NAMES {
        let value = match params.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            None | Some(Value::Null) => continue,
            Some(_) => return Err(ApiError::bad_request(format!("{name} must be text."))),
        };
        options
            .set(name, &value)
            .map_err(|why| ApiError::bad_request(format!("Invalid {name}: {why}.")))?;
    }
    Ok(options)
}

/// Refuses what restSearch does not read, terms too large, and lists for one-text filters.
fn check_params(params: &Map<String, Value>) -> Result<(), ApiError> {
    refuse_unread(params)?;
    check_term_sizes(params)?;
    require_texts(
        params,
        &["eventinfo", "searchall", "quickFilter", "returnFormat"],
    )
}

/// Parses the request parameters; names (organisations, event ids) are resolved on `node`.
pub(super) fn parse(
    node: &Node,
    scope: Scope,
    params: &Map<String, Value>,
) -> Result<Request, ApiError> {
    let params = match params.get("request") {
        Some(Value::Object(inner)) => inner,
        _ => params,
    };
    check_params(params)?;
    let get = |name: &str| params.get(name).filter(|value| !value.is_null());
    let now = node.now_seconds();
    let format = return_format(get("returnFormat"))?;
    // IDS formats default to IDS attributes of published events, as MISP's do.
    let ids = matches!(format, Format::Export(format) if format.is_ids());
    let (any, all, none) = terms(get("tags"));
    let (event_any, event_all, event_none) = terms(get("event_tags"));
    let tags = TagQuery {
        any: any.into_iter().chain(event_any).collect(),
        all: all.into_iter().chain(event_all).collect(),
        none: none.into_iter().chain(event_none).collect(),
    };
    let orgs = org_filter(node, get("org"))?;
    // Unknown names match nothing: the nil uuid names no organisation or event.
    let events = one_of(get("eventid")).map(|text| {
        parse_ref(text)
            .and_then(|reference| reference.resolve(node, RecordKind::Event))
            .unwrap_or(Uuid::nil())
    });
    let uuids = one_of(get("uuid")).map(|text| Uuid::parse_str(text).unwrap_or(Uuid::nil()));
    // Groups by local id or uuid; unknown ones match nothing.
    let sharing_groups = one_of(get("sharinggroup")).map(|text| {
        parse_ref(text)
            .and_then(|reference| reference.resolve(node, RecordKind::SharingGroup))
            .unwrap_or(Uuid::nil())
    });
    let deleted = deleted_filter(get("deleted"));
    let text = |name: &str| {
        get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(String::from)
    };
    let publish_timestamp = match get("last") {
        Some(last) => range(Some(last), now),
        None => range(get("publish_timestamp"), now),
    };
    let query = Query {
        scope,
        values: one_of(get("value")),
        types: one_of(get("type")),
        categories: one_of(get("category")),
        threat_levels: one_of(get("threat_level_id")),
        analyses: one_of(get("analysis")),
        object_relations: one_of(get("object_relation")),
        object_names: one_of(get("object_name")),
        distributions: one_of(get("distribution")),
        sharing_groups,
        attribute_timestamp: range(get("attribute_timestamp"), now),
        first_seen: get("first_seen").and_then(|value| epoch(value, now)),
        last_seen: get("last_seen").and_then(|value| epoch(value, now)),
        tags,
        orgs,
        events,
        uuids,
        published: flag(get("published")).or(ids.then_some(true)),
        to_ids: flag(get("to_ids")).or(ids.then_some(true)),
        deleted,
        date: (
            date_bound(get("from").or(get("date_from")), now),
            date_bound(get("to").or(get("date_to")), now),
        ),
        timestamp: range(get("timestamp"), now),
        event_timestamp: range(get("event_timestamp"), now),
        publish_timestamp,
        event_info: text("eventinfo"),
        searchall: text("searchall").or_else(|| text("quickFilter")),
    };
    check_terms(node, &query)?;
    let on = |name: &str| get(name).is_some_and(truthy);
    let columns = names(get("requested_attributes"));
    let blocklists = blocklist_options(params)?;
    Ok(Request {
        query,
        format,
        limit: number(get("limit")).filter(|limit| *limit > 0),
        page: number(get("page")).unwrap_or(1).max(1),
        metadata: on("metadata"),
        correlations: on("includeCorrelations") || on("include_correlations"),
        context: on("includeContext") || on("include_context"),
        headerless: on("headerless"),
        columns,
        event_tags: on("includeEventTags"),
        event_uuid: on("includeEventUuid"),
        no_local_tags: on("excludeLocalTags"),
        blocklists,
    })
}

/// A parsed `/events/index` request: which events, and how they are listed.
pub(crate) struct IndexRequest {
    /// The events asked for.
    pub(crate) query: Query,
    /// Only MISP's minimal fields per event (`minimal`).
    pub(crate) minimal: bool,
    /// The field to sort by (`sort`), and whether descending (`direction: desc`).
    pub(crate) sort: Option<(String, bool)>,
    /// Events per page (`None`: all).
    pub(crate) limit: Option<usize>,
    /// Page number from 1.
    pub(crate) page: usize,
}

/// The filters `/events/index` reads (MISP's names; PyMISP's `search_index`).
const INDEX_READ: &[&str] = &[
    "all",
    "searchall",
    "attribute",
    "published",
    "hasproposal",
    "eventid",
    "tag",
    "tags",
    "datefrom",
    "dateuntil",
    "eventinfo",
    "threatlevel",
    "distribution",
    "analysis",
    "org",
    "timestamp",
    "publish_timestamp",
    "sharinggroup",
    "minimal",
    "sort",
    "direction",
    "desc",
    "limit",
    "page",
];

/// The fields an index may be sorted by.
const INDEX_SORTS: &[&str] = &[
    "id",
    "date",
    "info",
    "timestamp",
    "publish_timestamp",
    "threat_level_id",
    "analysis",
    "distribution",
    "attribute_count",
];

/// `text` as a LIKE pattern that matches it anywhere, unless it has its own `%`.
fn anywhere(text: &str) -> String {
    match text.contains('%') {
        true => text.to_string(),
        false => format!("%{text}%"),
    }
}

/// Parses an `/events/index` request's filters (a POST body's object or a GET's URL
/// parameters); names are resolved on `node`. Unknown filters get MISP's 400, as restSearch's.
pub(crate) fn parse_index(
    node: &Node,
    params: &Map<String, Value>,
) -> Result<IndexRequest, ApiError> {
    refuse_unknown(params, "index filter", |name, _| INDEX_READ.contains(&name))?;
    check_term_sizes(params)?;
    let get = |name: &str| params.get(name).filter(|value| !absent(value));
    require_texts(
        params,
        &[
            "all",
            "searchall",
            "attribute",
            "eventinfo",
            "sort",
            "direction",
        ],
    )?;
    let now = node.now_seconds();
    let text = |name: &str| get(name).and_then(Value::as_str).map(str::trim);
    // Lists may come `|`-joined, as PyMISP sends sharing groups.
    let split = |name: &str| match get(name) {
        Some(Value::String(text)) if text.contains('|') => Some(json_list(text.split('|'))),
        other => other.cloned(),
    };
    let (any, all, none) = terms(get("tags").or(get("tag")));
    let mut query = Query {
        scope: Scope::Events,
        values: OneOf::any_of(text("attribute").map(anywhere).into_iter().collect()),
        threat_levels: one_of(split("threatlevel").as_ref()),
        analyses: one_of(split("analysis").as_ref()),
        distributions: one_of(split("distribution").as_ref()),
        sharing_groups: one_of(split("sharinggroup").as_ref()).map(|text| {
            parse_ref(text)
                .and_then(|reference| reference.resolve(node, RecordKind::SharingGroup))
                .unwrap_or(Uuid::nil())
        }),
        tags: TagQuery { any, all, none },
        orgs: org_filter(node, get("org"))?,
        events: one_of(split("eventid").as_ref()).map(|text| {
            parse_ref(text)
                .and_then(|reference| reference.resolve(node, RecordKind::Event))
                .unwrap_or(Uuid::nil())
        }),
        published: flag(get("published")),
        date: (
            date_bound(get("datefrom"), now),
            date_bound(get("dateuntil"), now),
        ),
        event_timestamp: range(get("timestamp"), now),
        publish_timestamp: range(get("publish_timestamp"), now),
        event_info: text("eventinfo").map(anywhere),
        searchall: text("all").or(text("searchall")).map(String::from),
        ..Query::default()
    };
    check_terms(node, &query)?;
    // No event here has a proposal: asking for events with one finds none.
    if flag(get("hasproposal")) == Some(true) {
        query.events = OneOf::any_of(vec![Uuid::nil()]);
    }
    let sort = match text("sort") {
        Some(field) if INDEX_SORTS.contains(&field) => {
            let descending = text("direction").is_some_and(|d| d.eq_ignore_ascii_case("desc"))
                || get("desc").is_some_and(truthy);
            Some((field.to_string(), descending))
        }
        Some(field) => {
            return Err(ApiError::bad_request(format!(
                "The index cannot be sorted by {field}; sort by one of {}.",
                INDEX_SORTS.join(", ")
            )))
        }
        None => None,
    };
    Ok(IndexRequest {
        query,
        minimal: get("minimal").is_some_and(truthy),
        sort,
        limit: number(get("limit")).filter(|limit| *limit > 0),
        page: number(get("page")).unwrap_or(1).max(1),
    })
}

/// A JSON list of the trimmed, non-empty `items`.
fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(
        items
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Value::String(item.into()))
            .collect(),
    )
}
