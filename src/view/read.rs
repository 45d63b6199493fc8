//! The read side: MISP-shaped JSON assembled from view records.

use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

use super::correlation::correlations;
use super::reduce::{StoredSighting, CHILD_SIGHTING, CHILD_TAG_LINK};
use super::{record_key, tag_links, KvError, Record, Table, ViewRead};
use crate::proto::RecordKind;

/// Local numeric ids of records (MISP `id` fields), which are node-local and so not part of
/// the views: `ids(kind, key)`.
pub type LocalIds<'a> = &'a dyn Fn(RecordKind, &[u8]) -> Option<u64>;

/// Options of [`event`].
#[derive(Clone, Debug)]
pub struct EventOptions {
    /// Include soft-deleted attributes, objects and references.
    pub include_deleted: bool,
    /// Values matching more attributes than this are reported as over-correlating.
    pub correlation_max: usize,
    /// Look up `RelatedEvent` correlations (one index scan per correlating value).
    pub correlations: bool,
    /// Render only these attributes (search results need one attribute of an event that may
    /// hold thousands); `attribute_count` then counts every attribute the event lists.
    pub only_attributes: Option<BTreeSet<Uuid>>,
}

impl Default for EventOptions {
    fn default() -> Self {
        Self {
            include_deleted: false,
            correlation_max: 100,
            correlations: true,
            only_attributes: None,
        }
    }
}

/// A line of the event list.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSummary {
    /// Event uuid.
    pub uuid: Uuid,
    /// Event date (YYYY-MM-DD).
    pub date: String,
    /// Event title.
    pub info: String,
    /// Number of attributes that are not deleted.
    pub attribute_count: usize,
    /// Distribution level as MISP writes it ("0".."4").
    pub distribution: String,
    /// Whether the event is published.
    pub published: bool,
}

/// Loads a record, if present.
pub fn record(kv: &dyn ViewRead, kind: RecordKind, key: &[u8]) -> Result<Option<Record>, KvError> {
    kv.get(Table::Records, &record_key(kind, key))?
        .map(|bytes| Record::decode(&bytes))
        .transpose()
}

/// Whether an event record is shown: live, and holding the fields its creating entry sets. An
/// edit or publish of another origin can be stored before the entry that creates the event
/// (reveals come newest first; a relay may send only what it may), and such a partial record
/// is not an event yet.
pub fn is_shown_event(record: &Record) -> bool {
    record.is_live() && record.field("info").is_some()
}

/// Every shown event's summary (see [`is_shown_event`]), in uuid order.
pub fn events(kv: &dyn ViewRead) -> Result<Vec<EventSummary>, KvError> {
    let mut out = Vec::new();
    for (key, bytes) in kv.scan(Table::Records, &[RecordKind::Event as u8])? {
        let record = Record::decode(&bytes)?;
        let Ok(uuid) = Uuid::from_slice(&key[1..]) else {
            continue;
        };
        if !is_shown_event(&record) {
            continue;
        }
        let children = children(kv, &uuid)?;
        let attribute_count = children
            .iter()
            .filter(|(kind, _, record)| *kind == RecordKind::Attribute && !is_deleted(record))
            .count();
        out.push(EventSummary {
            uuid,
            date: record.str_field("date").unwrap_or_default().into(),
            info: record.str_field("info").unwrap_or_default().into(),
            attribute_count,
            distribution: record.str_field("distribution").unwrap_or("0").into(),
            published: record
                .field("published")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
    Ok(out)
}

/// How many live, not deleted attributes event `event` holds.
pub fn attribute_count(kv: &dyn ViewRead, event: &Uuid) -> Result<usize, KvError> {
    Ok(children(kv, event)?
        .iter()
        .filter(|(kind, _, record)| *kind == RecordKind::Attribute && !is_deleted(record))
        .count())
}

fn is_deleted(record: &Record) -> bool {
    record
        .field("deleted")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// A child record of an event: its kind, uuid and record.
type Child = (RecordKind, Uuid, Record);

/// The live child records of an event: (kind, uuid, record), in key order.
fn children(kv: &dyn ViewRead, event: &Uuid) -> Result<Vec<Child>, KvError> {
    Ok(children_of(kv, event, None)?.children)
}

/// How many attribute keys event `event` lists, live or not, read from the keys alone: a
/// cheap bound on what rendering the event would cost.
pub fn attribute_keys(kv: &dyn ViewRead, event: &Uuid) -> Result<usize, KvError> {
    let mut count = 0;
    kv.scan_visit(Table::Children, event.as_bytes(), &mut |key, _| {
        if key.len() == 33 && key[16] == RecordKind::Attribute as u8 {
            count += 1;
        }
        std::ops::ControlFlow::Continue(())
    })?;
    Ok(count)
}

/// What an event's entry in the children table lists.
struct Listing {
    /// The live child records, with attributes limited as asked.
    children: Vec<Child>,
    /// The attribute keys listed, live or not.
    attribute_keys: usize,
    /// The event and the children that have tag links (attached or not).
    tagged: BTreeSet<Uuid>,
    /// The attributes that have sightings.
    sighted: BTreeSet<Uuid>,
}

/// The live child records of an event, with attributes limited to `only` when given, and
/// what else the event lists: one scan tells which records have tags and sightings to read.
fn children_of(
    kv: &dyn ViewRead,
    event: &Uuid,
    only: Option<&BTreeSet<Uuid>>,
) -> Result<Listing, KvError> {
    let mut listing = Listing {
        children: Vec::new(),
        attribute_keys: 0,
        tagged: BTreeSet::new(),
        sighted: BTreeSet::new(),
    };
    for (key, _) in kv.scan(Table::Children, event.as_bytes())? {
        let Some(target) = key
            .get(17..33)
            .and_then(|bytes| Uuid::from_slice(bytes).ok())
        else {
            continue;
        };
        match key[16] {
            CHILD_TAG_LINK => {
                listing.tagged.insert(target);
                continue;
            }
            CHILD_SIGHTING => {
                listing.sighted.insert(target);
                continue;
            }
            _ => {}
        }
        let Ok(kind) = RecordKind::try_from(i32::from(key[16])) else {
            continue;
        };
        if key.len() != 33 {
            continue;
        }
        if kind == RecordKind::Attribute {
            listing.attribute_keys += 1;
            if only.is_some_and(|only| !only.contains(&target)) {
                continue;
            }
        }
        if let Some(record) = record(kv, kind, target.as_bytes())? {
            if record.is_live() {
                listing.children.push((kind, target, record));
            }
        }
    }
    Ok(listing)
}

/// The organisation `{"id","uuid","name","local"}` object for `uuid`.
pub fn organisation(kv: &dyn ViewRead, uuid: &Uuid, ids: LocalIds) -> Result<Value, KvError> {
    let record = record(kv, RecordKind::Organisation, uuid.as_bytes())?;
    let name = record
        .as_ref()
        .and_then(|r| r.str_field("name"))
        .unwrap_or_default();
    let local = record
        .as_ref()
        .and_then(|r| r.field("local"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(json!({
        "id": id_string(ids(RecordKind::Organisation, uuid.as_bytes())),
        "name": name,
        "uuid": uuid.to_string(),
        "local": local,
    }))
}

fn id_string(id: Option<u64>) -> String {
    id.unwrap_or(0).to_string()
}

/// The tags attached to `target`, as MISP `Tag` objects, in name order.
pub fn tags(kv: &dyn ViewRead, target: &Uuid, ids: LocalIds) -> Result<Vec<Value>, KvError> {
    let mut out = Vec::new();
    let mut shown: BTreeSet<(String, bool)> = BTreeSet::new();
    for link in tag_links(kv, target)? {
        let local = link.local_org.is_some();
        // Several organisations' local links of one name show as one local tag.
        if !link.state.attached || !shown.insert((link.name.clone(), local)) {
            continue;
        }
        let name = link.name;
        let mut tag = Map::new();
        tag.insert(
            "id".into(),
            json!(id_string(ids(RecordKind::Tag, name.as_bytes()))),
        );
        tag.insert("name".into(), json!(name));
        // Definitions are node-local: `Node::show_tag_definitions` fills in colour and
        // exportable.
        tag.insert("colour".into(), json!("#ffffff"));
        tag.insert("exportable".into(), json!(true));
        tag.insert("local".into(), json!(local));
        out.push(Value::Object(tag));
    }
    Ok(out)
}

fn sightings(kv: &dyn ViewRead, attribute: &Uuid) -> Result<Vec<Value>, KvError> {
    kv.scan(Table::Sightings, attribute.as_bytes())?
        .into_iter()
        .map(|(_, bytes)| {
            let stored: StoredSighting = serde_json::from_slice(&bytes)
                .map_err(|error| KvError(format!("sighting: {error}")))?;
            Ok(Value::Object(stored.fields))
        })
        .collect()
}

/// An event's children as MISP JSON, and the values of its attributes that correlate.
struct ChildrenJson {
    /// The attributes outside objects.
    attributes: Vec<Value>,
    /// The objects, each with its attributes and references.
    objects: Vec<Value>,
    /// The event reports.
    reports: Vec<Value>,
    /// The attributes shown (outside objects and in them).
    attribute_count: usize,
    /// The values of the live attributes that correlate, shown or not.
    correlating: Vec<String>,
}

/// The tags of `target` when the listing says it has any.
fn tags_if_tagged(
    kv: &dyn ViewRead,
    listing: &Listing,
    target: &Uuid,
    ids: LocalIds,
) -> Result<Value, KvError> {
    Ok(Value::Array(match listing.tagged.contains(target) {
        true => tags(kv, target, ids)?,
        false => Vec::new(),
    }))
}

/// The children of `listing` (taken out of it) as MISP JSON under event `event_id`, each
/// with its local id, the soft-deleted ones only when `options` asks for them.
fn children_json(
    kv: &dyn ViewRead,
    listing: &mut Listing,
    event_id: &str,
    ids: LocalIds,
    options: &EventOptions,
) -> Result<ChildrenJson, KvError> {
    let visible = |record: &Record| options.include_deleted || !is_deleted(record);
    let mut out = ChildrenJson {
        attributes: Vec::new(),
        objects: Vec::new(),
        reports: Vec::new(),
        attribute_count: 0,
        correlating: Vec::new(),
    };
    let mut objects: Vec<(Uuid, Map<String, Value>)> = Vec::new();
    let mut object_children: Vec<(Uuid, &'static str, Value)> = Vec::new();
    for (kind, child, record) in std::mem::take(&mut listing.children) {
        crate::turns::pause_point();
        if kind == RecordKind::Attribute && !is_deleted(&record) {
            out.correlating.extend(correlation_values(&record));
        }
        if !visible(&record) {
            continue;
        }
        let parent = record.parent();
        let mut fields = record.into_values();
        fields.insert("id".into(), json!(id_string(ids(kind, child.as_bytes()))));
        fields.insert("event_id".into(), json!(event_id));
        sharing_group_id(kv, &mut fields, ids)?;
        match kind {
            RecordKind::Attribute => {
                out.attribute_count += 1;
                let object_id =
                    parent.and_then(|parent| ids(RecordKind::Object, parent.as_bytes()));
                fields.insert("object_id".into(), json!(id_string(object_id)));
                fields.insert("Tag".into(), tags_if_tagged(kv, listing, &child, ids)?);
                let sightings = match listing.sighted.contains(&child) {
                    true => sightings(kv, &child)?,
                    false => Vec::new(),
                };
                fields.insert("Sighting".into(), Value::Array(sightings));
                match parent {
                    Some(parent) => {
                        object_children.push((parent, "Attribute", Value::Object(fields)))
                    }
                    None => out.attributes.push(Value::Object(fields)),
                }
            }
            RecordKind::Object => {
                fields.insert("Tag".into(), tags_if_tagged(kv, listing, &child, ids)?);
                objects.push((child, fields));
            }
            RecordKind::Reference => {
                if let Some(parent) = parent {
                    let object_id = ids(RecordKind::Object, parent.as_bytes());
                    fields.insert("object_id".into(), json!(id_string(object_id)));
                    fields.insert("object_uuid".into(), json!(parent.to_string()));
                    object_children.push((parent, "ObjectReference", Value::Object(fields)));
                }
            }
            RecordKind::EventReport => out.reports.push(Value::Object(fields)),
            _ => {}
        }
    }
    out.objects = nest(objects, object_children);
    Ok(out)
}

/// Each object with its `Attribute` and `ObjectReference` lists from `object_children`
/// (parent object, list name, member).
fn nest(
    objects: Vec<(Uuid, Map<String, Value>)>,
    object_children: Vec<(Uuid, &'static str, Value)>,
) -> Vec<Value> {
    // Grouped once, so that an event of many objects costs its size, not its size squared.
    let mut members: HashMap<(Uuid, &'static str), Vec<Value>> = HashMap::new();
    for (parent, list, value) in object_children {
        members.entry((parent, list)).or_default().push(value);
    }
    objects
        .into_iter()
        .map(|(object_uuid, mut fields)| {
            for list in ["Attribute", "ObjectReference"] {
                let listed = members.remove(&(object_uuid, list)).unwrap_or_default();
                fields.insert(list.into(), Value::Array(listed));
            }
            Value::Object(fields)
        })
        .collect()
}

/// Adds to `event` (the inside of `{"Event": …}` of `uuid`) the events its `correlating`
/// values relate it to (`RelatedEvent`) and the values that correlate too widely
/// (`OverCorrelatingValues`), as `options` asks.
fn insert_related(
    kv: &dyn ViewRead,
    event: &mut Map<String, Value>,
    uuid: &Uuid,
    mut correlating: Vec<String>,
    ids: LocalIds,
    options: &EventOptions,
) -> Result<(), KvError> {
    correlating.sort();
    correlating.dedup();
    if !options.correlations {
        correlating.clear();
    }
    let found = correlations(kv, uuid, &correlating, options.correlation_max)?;
    let mut related = Vec::new();
    for other in found.related.keys() {
        if let Some(summary) = related_event(kv, other, ids)? {
            related.push(summary);
        }
    }
    event.insert("RelatedEvent".into(), Value::Array(related));
    if !found.over_correlating.is_empty() {
        event.insert(
            "OverCorrelatingValues".into(),
            json!(found.over_correlating),
        );
    }
    Ok(())
}

/// The MISP JSON of event `uuid` (`{"Event": …}`), or `None` if there is no live event.
pub fn event(
    kv: &dyn ViewRead,
    uuid: &Uuid,
    ids: LocalIds,
    options: EventOptions,
) -> Result<Option<Value>, KvError> {
    // Rendering shares the node's work with other clients waiting: once per event here, and
    // once per child below, so that neither many events nor one large one hold a turn long.
    crate::turns::pause_point();
    let Some(record) = record(kv, RecordKind::Event, uuid.as_bytes())? else {
        return Ok(None);
    };
    if !is_shown_event(&record) {
        return Ok(None);
    }
    let event_id = id_string(ids(RecordKind::Event, uuid.as_bytes()));
    let mut event = record.values();
    event.insert("id".into(), json!(event_id));
    if let Some((owner, _)) = &record.owner {
        let org = organisation(kv, owner, ids)?;
        event.insert("org_id".into(), org["id"].clone());
        event.insert("Org".into(), org);
    }
    sharing_group_id(kv, &mut event, ids)?;

    let mut listing = children_of(kv, uuid, options.only_attributes.as_ref())?;
    let children = children_json(kv, &mut listing, &event_id, ids, &options)?;
    let attribute_count = match options.only_attributes {
        Some(_) => listing.attribute_keys,
        None => children.attribute_count,
    };
    event.insert("attribute_count".into(), json!(attribute_count.to_string()));
    insert_related(kv, &mut event, uuid, children.correlating, ids, &options)?;
    event.insert("Attribute".into(), Value::Array(children.attributes));
    event.insert("Object".into(), Value::Array(children.objects));
    event.insert("EventReport".into(), Value::Array(children.reports));
    event.insert("Tag".into(), tags_if_tagged(kv, &listing, uuid, ids)?);
    let mut wrapped = Map::new();
    wrapped.insert("Event".into(), Value::Object(event));
    Ok(Some(Value::Object(wrapped)))
}

/// The values of an attribute record that correlate (none when correlation is disabled).
fn correlation_values(record: &Record) -> Vec<String> {
    let disabled = record
        .field("disable_correlation")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let type_name = record.str_field("type").unwrap_or_default();
    match (disabled, crate::model::registry().lookup(type_name)) {
        (false, Some(ty)) => {
            crate::model::correlation_values(ty, record.str_field("value").unwrap_or_default())
        }
        _ => Vec::new(),
    }
}

/// MISP's `RelatedEvent` entry for a correlated event.
pub fn related_event(
    kv: &dyn ViewRead,
    uuid: &Uuid,
    ids: LocalIds,
) -> Result<Option<Value>, KvError> {
    let Some(record) = record(kv, RecordKind::Event, uuid.as_bytes())?.filter(Record::is_live)
    else {
        return Ok(None);
    };
    let mut summary = Map::new();
    summary.insert(
        "id".into(),
        json!(id_string(ids(RecordKind::Event, uuid.as_bytes()))),
    );
    for field in [
        "uuid",
        "info",
        "date",
        "published",
        "analysis",
        "threat_level_id",
        "distribution",
        "timestamp",
        "Orgc",
    ] {
        if let Some(value) = record.field(field) {
            summary.insert(field.into(), value.clone());
        }
    }
    summary.insert("uuid".into(), json!(uuid.to_string()));
    if let Some((owner, _)) = &record.owner {
        summary.insert("Org".into(), organisation(kv, owner, ids)?);
    }
    Ok(Some(json!({ "Event": summary })))
}

/// Replaces `sharing_group_uuid` by MISP's local `sharing_group_id` (and keeps the uuid in a
/// nested `SharingGroup` object when the group is known).
fn sharing_group_id(
    kv: &dyn ViewRead,
    fields: &mut Map<String, Value>,
    ids: LocalIds,
) -> Result<(), KvError> {
    let group = fields
        .get("sharing_group_uuid")
        .and_then(Value::as_str)
        .and_then(|text| Uuid::parse_str(text).ok());
    let id = group.and_then(|uuid| ids(RecordKind::SharingGroup, uuid.as_bytes()));
    fields.insert("sharing_group_id".into(), json!(id_string(id)));
    if let Some(uuid) = group {
        if let Some(record) = record(kv, RecordKind::SharingGroup, uuid.as_bytes())? {
            let mut group = record.values();
            group.insert("uuid".into(), json!(uuid.to_string()));
            fields.insert("SharingGroup".into(), Value::Object(group));
        }
    }
    Ok(())
}
