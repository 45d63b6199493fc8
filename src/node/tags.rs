//! Tag definitions: colour, exportable and the other settings of a tag (SPEC §4.2). They are
//! this node's own settings, kept in its local store ([`TAG_DEFINITIONS`]): never in the log,
//! never sent to peers, never rewritten by attaching a tag. A tag without a definition shows
//! as white and exportable.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use super::Node;
use crate::proto::RecordKind;
use crate::store::{StoreError, TAG_DEFINITIONS};

/// The colour of a tag without one.
pub const DEFAULT_TAG_COLOUR: &str = "#ffffff";

/// A tag definition's local-store key.
fn definition_key(name: &str) -> Vec<u8> {
    [TAG_DEFINITIONS, name.as_bytes()].concat()
}

fn decode(bytes: &[u8]) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt {
        what: "tag definition",
        reason: error.to_string(),
    })
}

impl Node {
    /// This node's definition of tag `name`: its fields, empty when it has none.
    pub fn tag_definition(&self, name: &str) -> Result<Map<String, Value>, StoreError> {
        match self.store.local(&definition_key(name))? {
            Some(bytes) => decode(&bytes),
            None => Ok(Map::new()),
        }
    }

    /// Every tag definition of this node, by name.
    pub fn tag_definitions(&self) -> Result<BTreeMap<String, Map<String, Value>>, StoreError> {
        let mut out = BTreeMap::new();
        for (key, bytes) in self.store.scan_local(TAG_DEFINITIONS)? {
            let name = String::from_utf8_lossy(&key[TAG_DEFINITIONS.len()..]).into_owned();
            out.insert(name, decode(&bytes)?);
        }
        Ok(out)
    }

    /// Sets `fields` of tag `name`'s definition, keeping the others; returns the tag's local
    /// id, which a tag new to this node gets here.
    pub fn define_tag(&self, name: &str, fields: &Map<String, Value>) -> Result<u64, StoreError> {
        let mut definition = self.tag_definition(name)?;
        definition.extend(fields.clone());
        let bytes = serde_json::to_vec(&definition).unwrap_or_default();
        let pairs = [(definition_key(name), bytes)];
        self.store
            .put_local_numbered(RecordKind::Tag, name.as_bytes(), &pairs)
    }

    /// Shows every tag of an event's MISP JSON (`{"Event": …}`: the event's, its attributes'
    /// and its objects') with this node's definition: its colour and whether it is exportable.
    pub fn show_tag_definitions(&self, event: &mut Value) -> Result<(), StoreError> {
        let mut known: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        let mut failed = None;
        if let Some(fields) = event.get_mut("Event") {
            each_tag(fields, &mut |tag| {
                let Some(name) = tag.get("name").and_then(Value::as_str) else {
                    return;
                };
                if !known.contains_key(name) {
                    match self.tag_definition(name) {
                        Ok(definition) => known.insert(name.to_string(), definition),
                        Err(error) => {
                            failed = Some(error);
                            return;
                        }
                    };
                }
                let definition = &known[name];
                let colour = definition.get("colour").cloned();
                let exportable = definition.get("exportable").cloned();
                tag["colour"] = colour.unwrap_or_else(|| json!(DEFAULT_TAG_COLOUR));
                tag["exportable"] = exportable.unwrap_or(json!(true));
            });
        }
        failed.map_or(Ok(()), Err)
    }
}

/// Calls `f` on every tag of `item` (an event's, attribute's or object's MISP fields) and of
/// the attributes and objects it holds.
fn each_tag(item: &mut Value, f: &mut impl FnMut(&mut Value)) {
    if let Some(tags) = item.get_mut("Tag").and_then(Value::as_array_mut) {
        tags.iter_mut().for_each(&mut *f);
    }
    for list in ["Attribute", "Object"] {
        if let Some(items) = item.get_mut(list).and_then(Value::as_array_mut) {
            for inner in items {
                each_tag(inner, f);
            }
        }
    }
}
