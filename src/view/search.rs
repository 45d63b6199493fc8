//! Search over the views (MISP's `restSearch`, SPEC §9): a [`Query`] of filters in, the
//! matching events and attributes out, in event uuid order. Pure: it reads through
//! [`ViewRead`] only, and leaves visibility, ids and output formats to the API.
//!
//! The selective filters (value, type, category, tag, uuid, event, org) pick the candidates
//! from the indexes (see [`index`](super::index)); only when none applies are all events
//! scanned. Every candidate is then checked against every filter on its record, so the
//! indexes only prune and never decide. Text matching is exact in case except for `eventinfo`
//! and `searchall`; `%` matches any run of characters.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use super::index::{fold_value, CATEGORY, DATE, ORG, TAG, TIMESTAMP, TYPE, VALUE};
use super::read;
use super::{tag_links, KvError, Record, Table, ViewRead};
use crate::model;
use crate::proto::RecordKind;

/// Bytes of a uuid in index keys.
const UUID_BYTES: usize = 16;

/// Why a search stopped before it finished.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The views could not be read.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// The search examined more index entries and events than its budget allows.
    #[error("the search examined more than {0} index entries and events; narrow it")]
    TooBroad(u64),
    /// The search ran past its deadline.
    #[error("the search ran longer than {0} s; narrow it")]
    TooLong(u64),
}

/// How much work one search may do: index entries and events examined, and time.
#[derive(Debug)]
pub struct Budget {
    /// Most index entries and events examined.
    examined_max: u64,
    /// Examined so far.
    examined: Cell<u64>,
    /// Longest the search may run.
    time_max: Duration,
    /// When it started.
    started: Instant,
}

impl Budget {
    /// A budget of `examined_max` index entries and events and `time_max`, from now.
    pub fn new(examined_max: u64, time_max: Duration) -> Self {
        Budget {
            examined_max,
            examined: Cell::new(0),
            time_max,
            started: Instant::now(),
        }
    }

    /// No limit.
    pub fn unlimited() -> Self {
        Budget::new(u64::MAX, Duration::MAX)
    }

    /// Counts one more index entry or event examined.
    fn spend(&self) -> Result<(), SearchError> {
        let examined = self.examined.get() + 1;
        self.examined.set(examined);
        if examined > self.examined_max {
            return Err(SearchError::TooBroad(self.examined_max));
        }
        // Reading the clock costs little next to a key read, but not nothing.
        if examined.is_multiple_of(256) {
            if self.started.elapsed() > self.time_max {
                return Err(SearchError::TooLong(self.time_max.as_secs()));
            }
            // A long search shares the node's work with other clients waiting for it.
            crate::turns::pause_point();
        }
        Ok(())
    }

    /// Visits the pairs under `prefix` as [`ViewRead::scan_visit`] does, spending one per
    /// pair; stops with the budget's error once it is spent.
    fn scan(
        &self,
        kv: &dyn ViewRead,
        table: Table,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), SearchError> {
        let mut spent = Ok(());
        kv.scan_visit(table, prefix, &mut |key, value| {
            spent = self.spend();
            if spent.is_err() {
                return ControlFlow::Break(());
            }
            visit(key, value);
            ControlFlow::Continue(())
        })?;
        spent
    }
}

/// What a search lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Events with a matching attribute (or matching as a whole when no attribute filter is
    /// set); `timestamp` is the event's.
    #[default]
    Events,
    /// Matching attributes; `timestamp` is the attribute's.
    Attributes,
}

/// Which attributes count, by their soft-delete flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Deleted {
    /// Attributes that are not deleted (MISP `deleted: 0`, the default).
    #[default]
    Live,
    /// Only deleted attributes (`deleted: 1`).
    Only,
    /// Both (`deleted: [0, 1]`).
    Both,
}

/// An OR list with negations: a value passes when it matches one of `include` (or `include`
/// is empty) and none of `exclude`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneOf<T> {
    /// Any of these (empty: no restriction).
    pub include: Vec<T>,
    /// None of these (MISP's `!` prefix).
    pub exclude: Vec<T>,
}

impl<T> Default for OneOf<T> {
    fn default() -> Self {
        Self {
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

impl<T> OneOf<T> {
    /// Whether the filter restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Terms in all, included and excluded.
    pub fn len(&self) -> usize {
        self.include.len() + self.exclude.len()
    }

    /// Any of `include`, none excluded.
    pub fn any_of(include: Vec<T>) -> Self {
        OneOf {
            include,
            exclude: Vec::new(),
        }
    }

    /// The same filter with each term turned by `term`.
    pub fn map<U>(&self, term: impl Fn(&T) -> U) -> OneOf<U> {
        OneOf {
            include: self.include.iter().map(&term).collect(),
            exclude: self.exclude.iter().map(&term).collect(),
        }
    }
}

impl OneOf<String> {
    /// Whether one of `texts` matches an include pattern (or there is none) and none matches
    /// an exclude pattern.
    fn passes(&self, texts: &[&str], ignore_case: bool) -> bool {
        let any = |patterns: &[String]| {
            patterns
                .iter()
                .any(|pattern| texts.iter().any(|text| like(pattern, text, ignore_case)))
        };
        (self.include.is_empty() || any(&self.include)) && !any(&self.exclude)
    }
}

/// MISP's tag filter: one of `any`, all of `all`, none of `none` (names may hold `%`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagQuery {
    /// At least one of these (OR; empty: no restriction).
    pub any: Vec<String>,
    /// Every one of these (AND).
    pub all: Vec<String>,
    /// None of these (NOT).
    pub none: Vec<String>,
}

impl TagQuery {
    /// Whether the filter restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.all.is_empty() && self.none.is_empty()
    }

    /// Whether a set of tag names passes.
    fn passes(&self, names: &BTreeSet<String>) -> bool {
        let has = |pattern: &String| names.iter().any(|name| like(pattern, name, false));
        (self.any.is_empty() || self.any.iter().any(has))
            && self.all.iter().all(has)
            && !self.none.iter().any(has)
    }
}

/// An inclusive range of epoch seconds; `None` leaves that end open.
pub type Range = (Option<i64>, Option<i64>);

fn in_range(range: &Range, value: Option<i64>) -> bool {
    match range {
        (None, None) => true,
        (from, to) => value.is_some_and(|value| {
            from.is_none_or(|from| value >= from) && to.is_none_or(|to| value <= to)
        }),
    }
}

/// The filters of one search. The default query matches every live event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Events or attributes.
    pub scope: Scope,
    /// Attribute values, in any case (either half of a composite value also matches).
    pub values: OneOf<String>,
    /// Attribute types.
    pub types: OneOf<String>,
    /// Attribute categories.
    pub categories: OneOf<String>,
    /// Tags on the attribute, its object or its event (events scope: on the event or any of
    /// its attributes and objects).
    pub tags: TagQuery,
    /// Owner or creator organisations of the event.
    pub orgs: OneOf<Uuid>,
    /// The event's threat level (`threat_level_id`: 1 high to 4 undefined).
    pub threat_levels: OneOf<String>,
    /// The event's analysis state (`analysis`: 0 initial, 1 ongoing, 2 complete).
    pub analyses: OneOf<String>,
    /// The attribute's relation in its object (`object_relation`).
    pub object_relations: OneOf<String>,
    /// The name of the object the attribute is in (`object_name`; an attribute outside any
    /// object has none, so it passes only when no name is asked for).
    pub object_names: OneOf<String>,
    /// The distribution level (0–5, as stored) of what is listed: the event in the events
    /// scope, the attribute in the attributes scope.
    pub distributions: OneOf<String>,
    /// The sharing group of what is listed (event or attribute, as for `distributions`).
    pub sharing_groups: OneOf<Uuid>,
    /// The attribute's own timestamp (MISP `attribute_timestamp`, in either scope).
    pub attribute_timestamp: Range,
    /// Earliest `first_seen` of the attribute, epoch seconds (attributes without one fail).
    pub first_seen: Option<i64>,
    /// Latest `last_seen` of the attribute, epoch seconds (attributes without one fail).
    pub last_seen: Option<i64>,
    /// Events (from `eventid`; excluded ones with MISP's `!`).
    pub events: OneOf<Uuid>,
    /// Attribute or event uuids: an attribute passes when it or its event is included (or
    /// none is), and neither is excluded.
    pub uuids: OneOf<Uuid>,
    /// The event's published flag.
    pub published: Option<bool>,
    /// The attribute's `to_ids` flag.
    pub to_ids: Option<bool>,
    /// Which attributes count by their deleted flag.
    pub deleted: Deleted,
    /// The event date (YYYY-MM-DD), inclusive bounds.
    pub date: (Option<String>, Option<String>),
    /// The timestamp of what is listed (event or attribute, see [`Scope`]).
    pub timestamp: Range,
    /// The event's timestamp (in either scope).
    pub event_timestamp: Range,
    /// The event's publish timestamp (MISP `publish_timestamp` and `last`).
    pub publish_timestamp: Range,
    /// The event's info (case-insensitive; `%` wildcards).
    pub event_info: Option<String>,
    /// Any of event info, attribute value or comment (case-insensitive; a term without `%`
    /// matches anywhere).
    pub searchall: Option<String>,
}

impl Query {
    /// Whether an event only matches through one of its attributes.
    fn has_attribute_filters(&self) -> bool {
        !self.values.is_empty()
            || !self.types.is_empty()
            || !self.categories.is_empty()
            || self.to_ids.is_some()
            || !self.object_relations.is_empty()
            || !self.object_names.is_empty()
            || self.attribute_timestamp != (None, None)
            || self.first_seen.is_some()
            || self.last_seen.is_some()
            || (self.scope == Scope::Attributes && self.timestamp != (None, None))
    }
}

/// One matching event and the attributes of it that matched, in key order (in the events
/// scope the list is empty when no attribute filter was set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The event uuid.
    pub event: Uuid,
    /// The matching attributes' uuids.
    pub attributes: Vec<Uuid>,
}

/// Whether `text` matches `pattern`, where `%` matches any run of characters.
pub fn like(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (pattern, text) = if ignore_case {
        (pattern.to_lowercase(), text.to_lowercase())
    } else {
        (pattern.to_string(), text.to_string())
    };
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    // Both checks before slicing: they guarantee the slice bounds fall on char boundaries.
    if !text.starts_with(first) || !text.ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The (text, uuid, value) entries of the `tag` index whose text matches `pattern`: one
/// prefix scan when the pattern has no `%` or only a literal prefix before it.
fn text_index(
    kv: &dyn ViewRead,
    budget: &Budget,
    tag: u8,
    pattern: &str,
) -> Result<Vec<(String, Uuid, Vec<u8>)>, SearchError> {
    let literal = pattern.split('%').next().unwrap_or_default();
    let exact = literal.len() == pattern.len();
    let mut prefix = vec![tag];
    prefix.extend_from_slice(literal.as_bytes());
    if exact {
        prefix.push(0);
    }
    let mut out = Vec::new();
    budget.scan(kv, Table::Index, &prefix, |key, value| {
        // Keys are the tag, the text, a 0 and a uuid.
        if key.len() < 2 + UUID_BYTES || key[key.len() - UUID_BYTES - 1] != 0 {
            return;
        }
        let text = String::from_utf8_lossy(&key[1..key.len() - UUID_BYTES - 1]);
        let Ok(uuid) = Uuid::from_slice(&key[key.len() - UUID_BYTES..]) else {
            return;
        };
        if exact || like(pattern, &text, false) {
            out.push((text.into_owned(), uuid, value.to_vec()));
        }
    })?;
    Ok(out)
}

/// The event uuid at the start of an index value.
fn event_of(value: &[u8]) -> Option<Uuid> {
    value
        .get(..UUID_BYTES)
        .and_then(|bytes| Uuid::from_slice(bytes).ok())
}

/// Attributes (→ event) whose indexed text under `tag` matches one of `patterns`.
fn attributes_matching(
    kv: &dyn ViewRead,
    budget: &Budget,
    tag: u8,
    patterns: &[String],
) -> Result<BTreeMap<Uuid, Uuid>, SearchError> {
    let mut found = BTreeMap::new();
    for pattern in patterns {
        let pattern = match tag {
            VALUE => fold_value(pattern),
            _ => pattern.clone(),
        };
        let mut lookups = vec![pattern.as_str()];
        // Composite values are indexed by their halves; look a whole one up by its first.
        if tag == VALUE && !pattern.contains('%') {
            if let Some((first, _)) = pattern.split_once('|') {
                lookups.push(first);
            }
        }
        for lookup in lookups {
            for (_, attribute, value) in text_index(kv, budget, tag, lookup)? {
                if let Some(event) = event_of(&value) {
                    found.insert(attribute, event);
                }
            }
        }
    }
    Ok(found)
}

fn narrow<T: Ord + Clone>(current: Option<BTreeSet<T>>, found: BTreeSet<T>) -> Option<BTreeSet<T>> {
    Some(match current {
        None => found,
        Some(current) => current.intersection(&found).cloned().collect(),
    })
}

/// An integer field, stored as a string or a number.
fn int_field(record: &Record, name: &str) -> Option<i64> {
    match record.field(name)? {
        Value::String(text) => text.trim().parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

/// A flag field, stored as a boolean, a number or a string.
fn flag_field(record: &Record, name: &str) -> bool {
    match record.field(name) {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(number)) => number.as_i64().is_some_and(|n| n != 0),
        Some(Value::String(text)) => matches!(text.as_str(), "1" | "true"),
        _ => false,
    }
}

/// The names of the tags attached to `target`.
fn tag_names(kv: &dyn ViewRead, target: &Uuid) -> Result<BTreeSet<String>, KvError> {
    Ok(tag_links(kv, target)?
        .into_iter()
        .filter(|link| link.state.attached)
        .map(|link| link.name)
        .collect())
}

/// The live attributes of `event`: (uuid, record), in key order.
fn event_attributes(kv: &dyn ViewRead, event: &Uuid) -> Result<Vec<(Uuid, Record)>, KvError> {
    let mut prefix = event.as_bytes().to_vec();
    prefix.push(RecordKind::Attribute as u8);
    let mut out = Vec::new();
    for (key, _) in kv.scan(Table::Children, &prefix)? {
        let Ok(uuid) = Uuid::from_slice(&key[prefix.len()..]) else {
            continue;
        };
        if let Some(record) = read::record(kv, RecordKind::Attribute, uuid.as_bytes())? {
            if record.is_live() {
                out.push((uuid, record));
            }
        }
    }
    Ok(out)
}

/// Whether `pattern` for `searchall` matches `text`: anywhere unless it holds `%`.
fn search_all_matches(pattern: &str, text: &str) -> bool {
    if pattern.contains('%') {
        like(pattern, text, true)
    } else {
        text.to_lowercase().contains(&pattern.to_lowercase())
    }
}

/// The event candidates and the attribute candidates (→ event) the indexes give; `None`
/// where no index applies.
type Candidates = (Option<BTreeSet<Uuid>>, Option<BTreeMap<Uuid, Uuid>>);

fn candidates(
    kv: &dyn ViewRead,
    query: &Query,
    budget: &Budget,
) -> Result<Candidates, SearchError> {
    let mut events: Option<BTreeSet<Uuid>> = None;
    let mut attributes: Option<BTreeMap<Uuid, Uuid>> = None;
    for (tag, terms) in [
        (VALUE, &query.values),
        (TYPE, &query.types),
        (CATEGORY, &query.categories),
    ] {
        if terms.include.is_empty() {
            continue;
        }
        let found = attributes_matching(kv, budget, tag, &terms.include)?;
        attributes = Some(match attributes {
            None => found,
            Some(current) => current
                .into_iter()
                .filter(|(attribute, _)| found.contains_key(attribute))
                .collect(),
        });
    }
    if let Some(attributes) = &attributes {
        events = narrow(events, attributes.values().copied().collect());
    }
    if !query.uuids.include.is_empty() {
        let mut found = BTreeSet::new();
        for uuid in &query.uuids.include {
            if let Some(record) = read::record(kv, RecordKind::Attribute, uuid.as_bytes())? {
                found.extend(record.event);
            }
            if read::record(kv, RecordKind::Event, uuid.as_bytes())?.is_some() {
                found.insert(*uuid);
            }
        }
        events = narrow(events, found);
    }
    if !query.events.include.is_empty() {
        events = narrow(events, query.events.include.iter().copied().collect());
    }
    if !query.orgs.include.is_empty() {
        let mut found = BTreeSet::new();
        for org in &query.orgs.include {
            let mut prefix = vec![ORG];
            prefix.extend_from_slice(org.as_bytes());
            budget.scan(kv, Table::Index, &prefix, |key, _| {
                found.extend(Uuid::from_slice(&key[prefix.len()..]).ok());
            })?;
        }
        events = narrow(events, found);
    }
    let tag_events = |patterns: &[String]| -> Result<Vec<BTreeSet<Uuid>>, SearchError> {
        patterns
            .iter()
            .map(|pattern| {
                Ok(text_index(kv, budget, TAG, pattern)?
                    .into_iter()
                    .filter_map(|(_, _, value)| event_of(&value))
                    .collect())
            })
            .collect()
    };
    if !query.tags.any.is_empty() {
        let found = tag_events(&query.tags.any)?.into_iter().flatten().collect();
        events = narrow(events, found);
    }
    for found in tag_events(&query.tags.all)? {
        events = narrow(events, found);
    }
    if events.is_none() {
        events = time_candidates(kv, query, budget)?;
    }
    Ok((events, attributes))
}

/// Events by date or timestamp, from the `d` and `s` indexes (keys only, no records), when
/// the query bounds one of them.
fn time_candidates(
    kv: &dyn ViewRead,
    query: &Query,
    budget: &Budget,
) -> Result<Option<BTreeSet<Uuid>>, SearchError> {
    let uuid_at_end = |key: &[u8]| {
        key.len()
            .checked_sub(UUID_BYTES)
            .and_then(|at| Uuid::from_slice(&key[at..]).ok())
    };
    if query.date != (None, None) {
        let (from, to) = (
            query.date.0.as_deref().unwrap_or_default(),
            query.date.1.as_deref(),
        );
        // Every date between two dates starts with their common prefix.
        let common = to.map_or(0, |to| {
            from.bytes()
                .zip(to.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        });
        let mut prefix = vec![DATE];
        prefix.extend_from_slice(&from.as_bytes()[..common]);
        let mut found = BTreeSet::new();
        budget.scan(kv, Table::Index, &prefix, |key, _| {
            let date = &key[1..key.len().saturating_sub(UUID_BYTES + 1)];
            if date >= from.as_bytes() && to.is_none_or(|to| date <= to.as_bytes()) {
                found.extend(uuid_at_end(key));
            }
        })?;
        return Ok(Some(found));
    }
    let range = match query.scope {
        Scope::Events if query.timestamp != (None, None) => query.timestamp,
        _ if query.event_timestamp != (None, None) => query.event_timestamp,
        _ => return Ok(None),
    };
    let mut found = BTreeSet::new();
    budget.scan(kv, Table::Index, &[TIMESTAMP], |key, _| {
        let Some(bytes) = key
            .get(1..9)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        else {
            return;
        };
        if in_range(&range, Some(i64::from_be_bytes(bytes))) {
            found.extend(uuid_at_end(key));
        }
    })?;
    Ok(Some(found))
}

impl Query {
    /// How many terms the filters hold, all filters counted: what a search's cost grows with.
    pub fn terms(&self) -> usize {
        self.values.len()
            + self.types.len()
            + self.categories.len()
            + self.tags.any.len()
            + self.tags.all.len()
            + self.tags.none.len()
            + self.orgs.len()
            + self.threat_levels.len()
            + self.analyses.len()
            + self.object_relations.len()
            + self.object_names.len()
            + self.distributions.len()
            + self.sharing_groups.len()
            + self.events.len()
            + self.uuids.len()
    }
}

/// Whether the searcher may see an attribute (its record) of an event (its uuid): in the
/// events scope, only the tags of attributes it sees count for a tag filter, so that a match
/// (or, with `!`, a miss) never tells of a tag on something hidden.
pub type Shown<'a> = &'a dyn Fn(&Uuid, &Record) -> bool;

/// The events and attributes matching `query`, in event uuid order, every attribute seen.
pub fn search(kv: &dyn ViewRead, query: &Query) -> Result<Vec<Hit>, KvError> {
    let everything = |_: &Uuid, _: &Record| true;
    search_within(kv, query, &Budget::unlimited(), &everything).map_err(|error| match error {
        SearchError::Kv(error) => error,
        other => KvError(other.to_string()),
    })
}

/// [`search`] within `budget`: stops with its error once the search has examined as many
/// index entries and events as it allows, or run as long.
pub fn search_within(
    kv: &dyn ViewRead,
    query: &Query,
    budget: &Budget,
    shown: Shown,
) -> Result<Vec<Hit>, SearchError> {
    let (events, attributes) = candidates(kv, query, budget)?;
    // The attribute candidates of each event.
    let by_event: Option<BTreeMap<Uuid, Vec<Uuid>>> = attributes.map(|attributes| {
        let mut by_event: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for (attribute, event) in attributes {
            by_event.entry(event).or_default().push(attribute);
        }
        by_event
    });
    let mut hits = Vec::new();
    let mut check = |event: Uuid, record: Record| -> Result<(), SearchError> {
        budget.spend()?;
        let candidates = by_event
            .as_ref()
            .map(|by_event| by_event.get(&event).map(Vec::as_slice).unwrap_or_default());
        if let Some(hit) = match_event(kv, query, &event, &record, candidates, shown)? {
            hits.push(hit);
        }
        Ok(())
    };
    match events {
        Some(events) => {
            for event in events {
                if let Some(record) = read::record(kv, RecordKind::Event, event.as_bytes())? {
                    check(event, record)?;
                }
            }
        }
        // No index applies: every event, streamed.
        None => {
            let mut failed = Ok(());
            kv.scan_visit(
                Table::Records,
                &[RecordKind::Event as u8],
                &mut |key, bytes| {
                    let Ok(event) = Uuid::from_slice(&key[1..]) else {
                        return ControlFlow::Continue(());
                    };
                    failed = Record::decode(bytes)
                        .map_err(SearchError::from)
                        .and_then(|record| check(event, record));
                    match failed {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(_) => ControlFlow::Break(()),
                    }
                },
            )?;
            failed?;
        }
    }
    Ok(hits)
}

/// Whether a listed record (an event, or an attribute in the attributes scope) passes the
/// distribution and sharing-group filters.
fn shared_as(query: &Query, record: &Record) -> bool {
    let distribution = int_field(record, "distribution").map(|level| level.to_string());
    let group = record
        .str_field("sharing_group_uuid")
        .and_then(|text| Uuid::parse_str(text).ok());
    query
        .distributions
        .passes(&[distribution.as_deref().unwrap_or_default()], false)
        && (query.sharing_groups.include.is_empty()
            || group.is_some_and(|group| query.sharing_groups.include.contains(&group)))
        && !group.is_some_and(|group| query.sharing_groups.exclude.contains(&group))
}

/// Whether the event record passes the event-level filters.
fn event_passes(query: &Query, event: &Uuid, record: &Record) -> bool {
    let owner = record.owner.as_ref().map(|(org, _)| *org);
    let orgc = record
        .field("Orgc")
        .and_then(|orgc| orgc.get("uuid"))
        .and_then(Value::as_str)
        .and_then(|text| Uuid::parse_str(text).ok());
    let orgs: Vec<Uuid> = owner.into_iter().chain(orgc).collect();
    let org_ok = (query.orgs.include.is_empty()
        || orgs.iter().any(|org| query.orgs.include.contains(org)))
        && !orgs.iter().any(|org| query.orgs.exclude.contains(org));
    let date = record.str_field("date");
    let date_ok = query.date == (None, None)
        || date.is_some_and(|date| {
            query.date.0.as_deref().is_none_or(|from| date >= from)
                && query.date.1.as_deref().is_none_or(|to| date <= to)
        });
    let timestamp = int_field(record, "timestamp");
    let timestamp_ok = query.scope == Scope::Attributes || in_range(&query.timestamp, timestamp);
    let info = record.str_field("info").unwrap_or_default();
    let threat_level = int_field(record, "threat_level_id").map(|level| level.to_string());
    let analysis = int_field(record, "analysis").map(|state| state.to_string());
    let listed = query.scope == Scope::Events;
    org_ok
        && (!listed || shared_as(query, record))
        && query
            .threat_levels
            .passes(&[threat_level.as_deref().unwrap_or_default()], false)
        && query
            .analyses
            .passes(&[analysis.as_deref().unwrap_or_default()], false)
        && date_ok
        && timestamp_ok
        && (query.events.include.is_empty() || query.events.include.contains(event))
        && !query.events.exclude.contains(event)
        && !query.uuids.exclude.contains(event)
        && query
            .published
            .is_none_or(|published| flag_field(record, "published") == published)
        && in_range(&query.event_timestamp, timestamp)
        && in_range(
            &query.publish_timestamp,
            int_field(record, "publish_timestamp"),
        )
        && query
            .event_info
            .as_deref()
            .is_none_or(|pattern| like(pattern, info, true))
}

/// Whether an attribute record passes the attribute-level filters; `uuid_done` and
/// `searchall_done` say the event already satisfied those.
fn attribute_passes(
    query: &Query,
    uuid: &Uuid,
    record: &Record,
    object_name: &str,
    uuid_done: bool,
    searchall_done: bool,
) -> bool {
    let deleted = flag_field(record, "deleted");
    let deleted_ok = match query.deleted {
        Deleted::Live => !deleted,
        Deleted::Only => deleted,
        Deleted::Both => true,
    };
    let type_name = record.str_field("type").unwrap_or_default();
    let value = record.str_field("value").unwrap_or_default();
    let halves = match model::registry().lookup(type_name) {
        Some(ty) => model::index_values(ty, value),
        None => Vec::new(),
    };
    let mut texts: Vec<&str> = vec![value];
    texts.extend(halves.iter().map(String::as_str));
    let comment = record.str_field("comment").unwrap_or_default();
    let seen = |field| {
        record
            .str_field(field)
            .and_then(crate::model::date::iso_seconds)
    };
    deleted_ok
        && (query.scope == Scope::Events || shared_as(query, record))
        && query.object_names.passes(&[object_name], false)
        && in_range(&query.attribute_timestamp, int_field(record, "timestamp"))
        && query
            .first_seen
            .is_none_or(|from| seen("first_seen").is_some_and(|first| first >= from))
        && query
            .last_seen
            .is_none_or(|to| seen("last_seen").is_some_and(|last| last <= to))
        && query.values.passes(&texts, true)
        && query.types.passes(&[type_name], false)
        && query
            .categories
            .passes(&[record.str_field("category").unwrap_or_default()], false)
        && query
            .to_ids
            .is_none_or(|to_ids| flag_field(record, "to_ids") == to_ids)
        && query.object_relations.passes(
            &[record.str_field("object_relation").unwrap_or_default()],
            false,
        )
        && (uuid_done || query.uuids.include.contains(uuid))
        && !query.uuids.exclude.contains(uuid)
        && (query.scope == Scope::Events
            || in_range(&query.timestamp, int_field(record, "timestamp")))
        && (searchall_done
            || query.searchall.as_deref().is_none_or(|pattern| {
                search_all_matches(pattern, value) || search_all_matches(pattern, comment)
            }))
}

/// The tags of an attribute and of the object it is in (each object's read once, kept in
/// `object_tags`).
fn attribute_tags(
    kv: &dyn ViewRead,
    uuid: &Uuid,
    attribute: &Record,
    object_tags: &mut BTreeMap<Uuid, BTreeSet<String>>,
) -> Result<BTreeSet<String>, KvError> {
    let mut tags = tag_names(kv, uuid)?;
    if let Some(parent) = attribute.parent() {
        if let std::collections::btree_map::Entry::Vacant(slot) = object_tags.entry(parent) {
            slot.insert(tag_names(kv, &parent)?);
        }
        tags.extend(object_tags[&parent].iter().cloned());
    }
    Ok(tags)
}

/// The name of the object `attribute` is in, read only when the query filters by it.
fn object_name(
    kv: &dyn ViewRead,
    query: &Query,
    attribute: &Record,
) -> Result<Option<String>, KvError> {
    Ok(match attribute.parent() {
        Some(parent) if !query.object_names.is_empty() => {
            read::record(kv, RecordKind::Object, parent.as_bytes())?
                .and_then(|object| object.str_field("name").map(String::from))
        }
        _ => None,
    })
}

fn match_event(
    kv: &dyn ViewRead,
    query: &Query,
    event: &Uuid,
    record: &Record,
    candidates: Option<&[Uuid]>,
    shown: Shown,
) -> Result<Option<Hit>, KvError> {
    if !super::read::is_shown_event(record) || !event_passes(query, event, record) {
        return Ok(None);
    }
    let uuid_done = query.uuids.include.is_empty() || query.uuids.include.contains(event);
    let info = record.str_field("info").unwrap_or_default();
    let searchall_done = query
        .searchall
        .as_deref()
        .is_none_or(|pattern| query.scope == Scope::Events && search_all_matches(pattern, info));
    let needs_attributes = query.scope == Scope::Attributes
        || query.has_attribute_filters()
        || !uuid_done
        || !searchall_done;
    let event_tags = if query.tags.is_empty() {
        BTreeSet::new()
    } else {
        tag_names(kv, event)?
    };
    if !needs_attributes && query.tags.is_empty() {
        return Ok(Some(Hit {
            event: *event,
            attributes: Vec::new(),
        }));
    }
    let mut all_tags = event_tags.clone();
    let mut matched = Vec::new();
    let mut object_tags: BTreeMap<Uuid, BTreeSet<String>> = BTreeMap::new();
    // Only the index's candidates need reading, unless an events-scope tag filter looks at
    // the tags of every attribute.
    let attributes = match candidates {
        Some(candidates) if query.scope == Scope::Attributes || query.tags.is_empty() => {
            let mut attributes = Vec::with_capacity(candidates.len());
            for uuid in candidates {
                if let Some(record) = read::record(kv, RecordKind::Attribute, uuid.as_bytes())? {
                    if record.is_live() && record.event == Some(*event) {
                        attributes.push((*uuid, record));
                    }
                }
            }
            attributes
        }
        _ => event_attributes(kv, event)?,
    };
    for (uuid, attribute) in attributes {
        let mut tags = BTreeSet::new();
        // An events-scope tag filter counts the tags of the attributes the searcher sees (not
        // deleted ones, unless deleted ones are asked for); an attribute's own match is
        // judged here and narrowed to what the searcher sees afterwards.
        let counted = query.scope == Scope::Attributes
            || (shown(event, &attribute)
                && (query.deleted != Deleted::Live || !flag_field(&attribute, "deleted")));
        if !query.tags.is_empty() && counted {
            tags = attribute_tags(kv, &uuid, &attribute, &mut object_tags)?;
            all_tags.extend(tags.iter().cloned());
        }
        if !needs_attributes || candidates.is_some_and(|found| !found.contains(&uuid)) {
            continue;
        }
        let object_name = object_name(kv, query, &attribute)?;
        let object_name = object_name.as_deref().unwrap_or_default();
        if !attribute_passes(
            query,
            &uuid,
            &attribute,
            object_name,
            uuid_done,
            searchall_done,
        ) {
            continue;
        }
        if query.scope == Scope::Attributes {
            tags.extend(event_tags.iter().cloned());
            if !query.tags.passes(&tags) {
                continue;
            }
        }
        matched.push(uuid);
    }
    let tags_ok = query.scope == Scope::Attributes || query.tags.passes(&all_tags);
    let found = !needs_attributes || !matched.is_empty();
    Ok((tags_ok && found).then_some(Hit {
        event: *event,
        attributes: matched,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::index::{record_index, tag_link_index, text_prefix};
    use crate::view::KeyValue;
    use crate::view::{record_key, tag_link_key, MemoryViews, Stamp, TagLinkState, ViewWrite};
    use serde_json::{json, Map};

    struct Fixture {
        kv: MemoryViews,
        next: u128,
    }

    const ORG_A: Uuid = Uuid::from_u128(0xa);
    const ORG_B: Uuid = Uuid::from_u128(0xb);

    impl Fixture {
        fn new() -> Self {
            Self {
                kv: MemoryViews::new(),
                next: 0x100,
            }
        }

        fn uuid(&mut self) -> Uuid {
            self.next += 1;
            Uuid::from_u128(self.next)
        }

        fn put(&mut self, kind: RecordKind, uuid: Uuid, record: &Record) {
            for (key, value) in record_index(kind, &uuid, record) {
                self.kv.put(Table::Index, key, value);
            }
            self.kv.put(
                Table::Records,
                record_key(kind, uuid.as_bytes()),
                record.encode(),
            );
        }

        fn event(&mut self, org: Uuid, fields: Value) -> Uuid {
            let uuid = self.uuid();
            let mut record = Record::default();
            let fields: Map<String, Value> = fields.as_object().cloned().unwrap();
            record.merge(fields, &Stamp::default());
            record.owner = Some((org, Stamp::default()));
            self.put(RecordKind::Event, uuid, &record);
            uuid
        }

        fn attribute(&mut self, event: Uuid, fields: Value) -> Uuid {
            let uuid = self.uuid();
            let mut record = Record {
                event: Some(event),
                ..Record::default()
            };
            let mut base = json!({"category": "Network activity", "to_ids": false,
                "deleted": false, "timestamp": "1000", "comment": ""});
            base.as_object_mut()
                .unwrap()
                .extend(fields.as_object().cloned().unwrap());
            record.merge(base.as_object().cloned().unwrap(), &Stamp::default());
            self.put(RecordKind::Attribute, uuid, &record);
            let mut child = event.as_bytes().to_vec();
            child.push(RecordKind::Attribute as u8);
            child.extend_from_slice(uuid.as_bytes());
            self.kv.put(Table::Children, child, Vec::new());
            uuid
        }

        fn tag(&mut self, target: Uuid, event: Uuid, name: &str) {
            let link = TagLinkState {
                attached: true,
                local: false,
                event,
                stamp: Stamp::default(),
            };
            for (key, value) in tag_link_index(&target, name, event) {
                self.kv.put(Table::Index, key, value);
            }
            let key = tag_link_key(&target, name, None);
            self.kv
                .put(Table::TagLinks, key, serde_json::to_vec(&link).unwrap());
        }
    }

    /// Two events: `one` (org A, published, 2024-01-10, tlp:green) with an ip, a domain and
    /// a deleted url; `two` (org B, 2024-02-20, tlp:red) with a domain and an ip|port.
    fn fixture() -> (Fixture, [Uuid; 7]) {
        let mut f = Fixture::new();
        let one = f.event(
            ORG_A,
            json!({"info": "Phishing wave", "date": "2024-01-10", "published": true,
                "timestamp": "2000", "publish_timestamp": "2100"}),
        );
        let two = f.event(
            ORG_B,
            json!({"info": "Ransomware", "date": "2024-02-20", "published": false,
                "timestamp": "3000", "publish_timestamp": "0"}),
        );
        let ip = f.attribute(
            one,
            json!({"type": "ip-dst", "value": "198.51.100.7", "to_ids": true}),
        );
        let domain = f.attribute(
            one,
            json!({"type": "domain", "value": "evil.example.com", "timestamp": "5000"}),
        );
        let url = f.attribute(
            one,
            json!({"type": "url", "value": "http://evil.example.com/x", "deleted": true}),
        );
        let other = f.attribute(
            two,
            json!({"type": "domain", "value": "bad.example.org", "comment": "Dropper host"}),
        );
        let port = f.attribute(
            two,
            json!({"type": "ip-dst|port", "value": "203.0.113.9|443", "category": "Payload delivery"}),
        );
        f.tag(one, one, "tlp:green");
        f.tag(two, two, "tlp:red");
        f.tag(domain, one, "kill-chain:c2");
        (f, [one, two, ip, domain, url, other, port])
    }

    fn attributes(f: &Fixture, query: Query) -> Vec<Uuid> {
        let query = Query {
            scope: Scope::Attributes,
            ..query
        };
        let mut out: Vec<Uuid> = search(&f.kv, &query)
            .unwrap()
            .into_iter()
            .flat_map(|hit| hit.attributes)
            .collect();
        out.sort();
        out
    }

    fn events(f: &Fixture, query: Query) -> Vec<Uuid> {
        search(&f.kv, &query)
            .unwrap()
            .into_iter()
            .map(|hit| hit.event)
            .collect()
    }

    fn terms(include: &[&str]) -> OneOf<String> {
        OneOf::any_of(include.iter().map(|s| s.to_string()).collect())
    }

    /// Views that record the prefixes scanned, to see which indexes a search used.
    struct Counting<'a> {
        inner: &'a MemoryViews,
        scans: std::cell::RefCell<Vec<(Table, Vec<u8>)>>,
    }

    impl ViewRead for Counting<'_> {
        fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
            self.inner.get(table, key)
        }

        fn scan(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, KvError> {
            self.scans.borrow_mut().push((table, prefix.to_vec()));
            self.inner.scan(table, prefix)
        }
    }

    #[test]
    fn selective_filters_use_the_indexes() {
        let (f, [one, _, ip, ..]) = fixture();
        let all_events = (Table::Records, vec![RecordKind::Event as u8]);
        let run = |query: Query| {
            let counting = Counting {
                inner: &f.kv,
                scans: Default::default(),
            };
            let hits = search(&counting, &query).unwrap();
            (hits, counting.scans.into_inner())
        };
        let indexed = [
            Query {
                values: terms(&["198.51.100.7"]),
                ..Query::default()
            },
            Query {
                values: terms(&["198.51%"]),
                ..Query::default()
            },
            Query {
                types: terms(&["ip-dst"]),
                ..Query::default()
            },
            Query {
                uuids: OneOf::any_of(vec![ip]),
                ..Query::default()
            },
            Query {
                tags: TagQuery {
                    any: vec!["tlp:green".into()],
                    ..TagQuery::default()
                },
                ..Query::default()
            },
            Query {
                orgs: OneOf::any_of(vec![ORG_A]),
                ..Query::default()
            },
        ];
        for query in indexed {
            let (hits, scans) = run(query.clone());
            assert_eq!(
                hits.iter().map(|hit| hit.event).collect::<Vec<_>>(),
                vec![one],
                "{query:?}"
            );
            assert!(
                !scans.contains(&all_events),
                "{query:?} scanned every event"
            );
        }
        // An exact value is one prefix scan of the value index.
        let (_, scans) = run(Query {
            values: terms(&["198.51.100.7"]),
            ..Query::default()
        });
        assert!(scans.contains(&(Table::Index, text_prefix(VALUE, "198.51.100.7"))));
        let (hits, scans) = run(Query {
            date: (None, Some("2024-01-31".into())),
            ..Query::default()
        });
        assert_eq!(
            hits.iter().map(|hit| hit.event).collect::<Vec<_>>(),
            vec![one]
        );
        assert!(!scans.contains(&all_events));
        let (hits, scans) = run(Query::default());
        assert_eq!(hits.len(), 2);
        assert!(scans.contains(&all_events));
    }

    #[test]
    fn like_patterns() {
        assert!(like("evil%", "evil.com", false));
        assert!(like("%.com", "evil.com", false));
        assert!(like("%il.c%", "evil.com", false));
        assert!(like("e%l%m", "evil.com", false));
        assert!(!like("e%l%x", "evil.com", false));
        assert!(!like("evil", "evil.com", false));
        assert!(!like("ab%ba", "aba", false));
        assert!(like("EVIL%", "evil.com", true));
        assert!(!like("EVIL%", "evil.com", false));
        assert!(like("%", "", false));
        // Multi-byte characters near the ends never split a character.
        assert!(!like("a%é", "aXü", false));
        assert!(like("ü%é", "üXé", true));
        assert!(!like("%ab", "é", false));
    }

    #[test]
    fn values_exact_prefix_infix_and_composite() {
        let (f, [_, _, ip, domain, _, other, port]) = fixture();
        let q = |values: &[&str]| Query {
            values: terms(values),
            ..Query::default()
        };
        assert_eq!(attributes(&f, q(&["198.51.100.7"])), vec![ip]);
        let mut both = vec![domain, other];
        both.sort();
        assert_eq!(attributes(&f, q(&["%.example.%"])), both);
        assert_eq!(attributes(&f, q(&["evil%"])), vec![domain]);
        assert_eq!(attributes(&f, q(&["203.0.113.9|443"])), vec![port]);
        assert_eq!(attributes(&f, q(&["443"])), vec![port]);
        assert_eq!(attributes(&f, q(&["nothing"])), Vec::<Uuid>::new());
        let negated = Query {
            values: OneOf {
                include: vec!["%.example.%".into()],
                exclude: vec!["bad%".into()],
            },
            ..Query::default()
        };
        assert_eq!(attributes(&f, negated), vec![domain]);
    }

    #[test]
    fn values_match_in_any_case() {
        let (mut f, [one, _, _, domain, _, _, _]) = fixture();
        let file = f.attribute(
            one,
            json!({"type": "filename", "value": "Invoice_2024.EXE", "category": "Payload delivery"}),
        );
        let q = |values: &[&str]| Query {
            values: terms(values),
            ..Query::default()
        };
        for pattern in ["invoice_2024.exe", "INVOICE_2024.exe", "invoice%", "%.Exe"] {
            assert_eq!(attributes(&f, q(&[pattern])), vec![file], "{pattern}");
        }
        assert_eq!(attributes(&f, q(&["EVIL.Example.COM"])), vec![domain]);
        let negated = Query {
            values: OneOf {
                include: vec!["%.exe".into()],
                exclude: vec!["INVOICE%".into()],
            },
            ..Query::default()
        };
        assert_eq!(attributes(&f, negated), Vec::<Uuid>::new());
    }

    #[test]
    fn deleted_attributes_count_only_when_asked() {
        let (f, [_, _, _, _, url, _, _]) = fixture();
        let q = |deleted| Query {
            types: terms(&["url"]),
            deleted,
            ..Query::default()
        };
        assert!(attributes(&f, q(Deleted::Live)).is_empty());
        assert_eq!(attributes(&f, q(Deleted::Only)), vec![url]);
        assert_eq!(attributes(&f, q(Deleted::Both)), vec![url]);
    }

    #[test]
    fn event_filters() {
        let (f, [one, two, ip, _, _, _, port]) = fixture();
        assert_eq!(events(&f, Query::default()), vec![one, two]);
        let by_org = Query {
            orgs: OneOf::any_of(vec![ORG_B]),
            ..Query::default()
        };
        assert_eq!(events(&f, by_org), vec![two]);
        let published = Query {
            published: Some(true),
            ..Query::default()
        };
        assert_eq!(events(&f, published), vec![one]);
        let dated = Query {
            date: (Some("2024-02-01".into()), Some("2024-02-28".into())),
            ..Query::default()
        };
        assert_eq!(events(&f, dated), vec![two]);
        let recent = Query {
            timestamp: (Some(2500), None),
            ..Query::default()
        };
        assert_eq!(events(&f, recent), vec![two]);
        let last = Query {
            publish_timestamp: (Some(2000), None),
            ..Query::default()
        };
        assert_eq!(events(&f, last), vec![one]);
        let info = Query {
            event_info: Some("%ransom%".into()),
            ..Query::default()
        };
        assert_eq!(events(&f, info), vec![two]);
        let by_attribute_uuid = Query {
            uuids: OneOf::any_of(vec![port]),
            ..Query::default()
        };
        assert_eq!(events(&f, by_attribute_uuid), vec![two]);
        let by_event = Query {
            events: OneOf::any_of(vec![one]),
            to_ids: Some(true),
            scope: Scope::Attributes,
            ..Query::default()
        };
        assert_eq!(attributes(&f, by_event), vec![ip]);
        let to_ids_events = Query {
            to_ids: Some(true),
            ..Query::default()
        };
        assert_eq!(events(&f, to_ids_events), vec![one]);
    }

    #[test]
    fn types_and_categories() {
        let (f, [_, two, ip, _, _, _, port]) = fixture();
        let q = Query {
            types: terms(&["ip-dst", "ip-dst|port"]),
            ..Query::default()
        };
        let mut expected = vec![ip, port];
        expected.sort();
        assert_eq!(attributes(&f, q), expected);
        let q = Query {
            categories: terms(&["Payload delivery"]),
            ..Query::default()
        };
        assert_eq!(events(&f, q), vec![two]);
    }

    #[test]
    fn tags_or_and_not_with_inheritance() {
        let (f, [one, two, ip, domain, _, _, _]) = fixture();
        let q = |any: &[&str], all: &[&str], none: &[&str]| Query {
            tags: TagQuery {
                any: any.iter().map(|s| s.to_string()).collect(),
                all: all.iter().map(|s| s.to_string()).collect(),
                none: none.iter().map(|s| s.to_string()).collect(),
            },
            ..Query::default()
        };
        assert_eq!(events(&f, q(&["tlp:%"], &[], &[])), vec![one, two]);
        assert_eq!(
            events(&f, q(&[], &["tlp:green", "kill-chain:c2"], &[])),
            vec![one]
        );
        assert_eq!(events(&f, q(&[], &[], &["kill-chain:%"])), vec![two]);
        assert_eq!(
            attributes(&f, q(&["kill-chain:c2"], &[], &[])),
            vec![domain]
        );
        assert_eq!(
            attributes(&f, q(&["tlp:green"], &[], &["kill-chain:c2"])),
            vec![ip]
        );
    }

    #[test]
    fn attribute_timestamp_and_searchall() {
        let (f, [one, two, _, domain, _, other, _]) = fixture();
        let q = Query {
            timestamp: (Some(4000), None),
            ..Query::default()
        };
        assert_eq!(attributes(&f, q), vec![domain]);
        let q = Query {
            searchall: Some("dropper".into()),
            ..Query::default()
        };
        assert_eq!(attributes(&f, q.clone()), vec![other]);
        assert_eq!(events(&f, q), vec![two]);
        let q = Query {
            searchall: Some("phishing".into()),
            ..Query::default()
        };
        assert_eq!(events(&f, q), vec![one]);
    }
}
