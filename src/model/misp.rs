//! MISP core objects: parsed leniently from MISP JSON, written back in MISP's output shape.
//!
//! Input: every `from_json` accepts its object wrapped (`{"Event": {…}}`, `{"Attribute": {…}}`,
//! …) or bare, reads scalars leniently (see `lenient`), ignores keys it does not know (`id`,
//! `event_id`, `ShadowAttribute`, `RelatedEvent`, …: numeric ids are local to a MISP instance and
//! identity is the uuid) and gives objects that come without a uuid a new random (v4) one.
//! Errors inside a child name the child: `event 5758…: attribute #3: …`.
//!
//! Output: `fields()` returns an object's scalar fields only (children are listed by the caller)
//! in MISP's output representation: uuids as strings, ids and enums as strings
//! (`"distribution": "5"`), flags as booleans, timestamps as strings of epoch seconds. Keys come
//! out in sorted (byte) order, so the output is deterministic.

mod attribute;
mod event;
mod object;
mod parts;

pub use attribute::Attribute;
pub use event::{parse_events_document, parse_events_document_on, Event};
pub use object::{EventReport, MispObject, ObjectReference};
pub use parts::{Organisation, SharingGroup, Sighting, Tag};

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::lenient::{self, Object};
use super::ModelError;

/// Largest attachment or malware sample (`data` of an attribute), decoded, in bytes. An entry
/// holds the whole attachment and is replicated to every peer that may see it, so the limit keeps
/// entries and sync segments bounded; 8 MiB covers ordinary samples and documents (MISP's own
/// default upload limit is in the same range).
pub const ATTACHMENT_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Builds the `fields()` map of an object with keys in sorted order.
#[derive(Default)]
struct Fields(BTreeMap<&'static str, Value>);

impl Fields {
    /// Sets `key` to `value`.
    fn set(&mut self, key: &'static str, value: impl Into<Value>) -> &mut Self {
        self.0.insert(key, value.into());
        self
    }

    /// Sets `key` to the uuid as a string.
    fn uuid(&mut self, key: &'static str, uuid: Uuid) -> &mut Self {
        self.set(key, uuid.to_string())
    }

    /// Sets `key` to the uuid as a string when there is one; leaves it out otherwise.
    fn uuid_if(&mut self, key: &'static str, uuid: Option<Uuid>) -> &mut Self {
        if let Some(uuid) = uuid {
            self.uuid(key, uuid);
        }
        self
    }

    /// Sets `key` to a number written as a string, MISP's shape for ids, enums and timestamps.
    fn number(&mut self, key: &'static str, n: impl ToString) -> &mut Self {
        self.set(key, n.to_string())
    }

    /// Sets `key` to the timestamp as a string when there is one; leaves it out otherwise.
    fn timestamp_if(&mut self, key: &'static str, seconds: Option<i64>) -> &mut Self {
        if let Some(seconds) = seconds {
            self.number(key, seconds);
        }
        self
    }

    /// Sets `key` to the string, or to `null` when there is none.
    fn string_or_null(&mut self, key: &'static str, value: &Option<String>) -> &mut Self {
        self.set(key, value.clone().map_or(Value::Null, Value::String))
    }

    /// The JSON object, keys in sorted order (as [`Fields::into_map`] serialises).
    fn to_json(&self) -> Vec<u8> {
        // Plain values under string keys always serialise.
        serde_json::to_vec(&self.0).expect("fields serialise")
    }

    /// The map, keys in sorted order.
    fn into_map(self) -> Map<String, Value> {
        self.0
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect()
    }
}

/// The uuid field of `obj`, or a new random one when it has none.
fn uuid_or_new(obj: &Object, object: &str) -> Result<Uuid, ModelError> {
    Ok(lenient::uuid(obj, object, "uuid")?.unwrap_or_else(Uuid::new_v4))
}

/// The sharing group of `obj`: the uuid of a nested `SharingGroup` object if there is one, else
/// the `sharing_group_uuid` field. (`sharing_group_id` is a local numeric id and is ignored.)
fn sharing_group_uuid(obj: &Object, object: &str) -> Result<Option<Uuid>, ModelError> {
    if let Some(group) = lenient::object(obj, object, "SharingGroup")? {
        if let Some(uuid) = lenient::uuid(group, "sharing group", "uuid")? {
            return Ok(Some(uuid));
        }
    }
    lenient::uuid(obj, object, "sharing_group_uuid")
}

/// How a child is named in errors: "attribute <uuid>" when it has a uuid, else by position
/// ("attribute #3", counting from 1).
fn child_label(kind: &str, child: &Value, index: usize) -> String {
    let uuid = child
        .as_object()
        .and_then(|obj| {
            obj.get(kind_wrapper(kind))
                .and_then(Value::as_object)
                .or(Some(obj))
        })
        .and_then(|obj| obj.get("uuid"))
        .and_then(Value::as_str)
        .filter(|uuid| !uuid.trim().is_empty());
    match uuid {
        Some(uuid) => format!("{kind} {}", uuid.trim()),
        None => format!("{kind} #{}", index + 1),
    }
}

/// The MISP wrapper key of a kind of child, for [`child_label`].
fn kind_wrapper(kind: &str) -> &'static str {
    match kind {
        "attribute" => "Attribute",
        "object" => "Object",
        "object reference" => "ObjectReference",
        "event report" => "EventReport",
        "sighting" => "Sighting",
        "organisation" => "Organisation",
        _ => "Event",
    }
}

/// Parses the list `key` of `obj` with `parse`, naming the failing child in the error.
fn children<T>(
    obj: &Object,
    object: &str,
    key: &str,
    kind: &str,
    parse: impl Fn(&Value) -> Result<T, ModelError>,
) -> Result<Vec<T>, ModelError> {
    lenient::list(obj, object, key)?
        .into_iter()
        .enumerate()
        .map(|(index, child)| parse(child).map_err(|e| e.in_item(child_label(kind, child, index))))
        .collect()
}

/// The tags of an event or attribute: the `Tag` list, the tags inside `EventTag`/`AttributeTag`
/// lists (`[{"Tag": {…}, "local": …}]`), and galaxy clusters
/// (`Galaxy[].GalaxyCluster[].tag_name`, as `misp-galaxy:<type>="<value>"` tags). The first tag
/// of each name is kept.
fn tags(obj: &Object, object: &str, link_key: &str) -> Result<Vec<Tag>, ModelError> {
    let mut tags: Vec<Tag> = Vec::new();
    let mut add = |tag: Tag| {
        if !tags.iter().any(|known| known.name == tag.name) {
            tags.push(tag);
        }
    };
    for tag in lenient::list(obj, object, "Tag")? {
        add(Tag::from_json(tag)?);
    }
    for link in lenient::list(obj, object, link_key)? {
        let mut tag = Tag::from_json(link)?;
        if let Some(local) = link
            .as_object()
            .map(|link| lenient::boolean(link, "tag", "local"))
            .transpose()?
            .flatten()
        {
            tag.local = local;
        }
        add(tag);
    }
    for galaxy in lenient::list(obj, object, "Galaxy")? {
        let galaxy = lenient::as_object(galaxy, "galaxy")?;
        for cluster in lenient::list(galaxy, "galaxy", "GalaxyCluster")? {
            let cluster = lenient::as_object(cluster, "galaxy cluster")?;
            if let Some(name) = galaxy_tag_name(cluster)? {
                add(Tag {
                    name,
                    colour: None,
                    exportable: true,
                    local: false,
                });
            }
        }
    }
    Ok(tags)
}

/// The tag name of a galaxy cluster: its `tag_name`, else `misp-galaxy:<type>="<value>"`.
fn galaxy_tag_name(cluster: &Object) -> Result<Option<String>, ModelError> {
    const OBJECT: &str = "galaxy cluster";
    if let Some(name) = lenient::string(cluster, OBJECT, "tag_name")? {
        return Ok(Some(name.trim().to_string()));
    }
    let kind = lenient::string(cluster, OBJECT, "type")?;
    let value = lenient::string(cluster, OBJECT, "value")?;
    Ok(kind
        .zip(value)
        .map(|(kind, value)| format!("misp-galaxy:{kind}=\"{value}\"")))
}
