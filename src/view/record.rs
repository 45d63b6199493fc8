//! Stored view records and their last-writer-wins merge.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::KvError;

/// The order of writes: origin time, then origin key, then sequence (SPEC §5). The later
/// stamp wins a conflict on one field.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
pub struct Stamp(pub i64, pub String, pub u64);

impl Stamp {
    /// The stamp of an entry.
    pub fn of(entry: &crate::log::VerifiedEntry) -> Stamp {
        Stamp(
            entry.entry().time_ms,
            entry.origin().to_string(),
            entry.sequence(),
        )
    }
}

/// Internal field holding the uuid of a record's containing object.
pub const PARENT_FIELD: &str = "__parent";

/// One record of the views: a MISP event, attribute, object, reference, report, sharing group,
/// organisation or tag definition, with a stamp per field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The event the record belongs to (event-scoped kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Uuid>,
    /// Field name → (value, index into `stamps` of the write that set it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, (Value, usize)>,
    /// The distinct stamps fields refer to, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stamps: Vec<Stamp>,
    /// The owner org and the stamp of its claim; the earliest claim wins. Events: the acting
    /// org of every entry that writes what only an owner may ([`super::owner_only`]).
    /// Sharing groups: the acting org of every write naming it as the creator (`org_uuid`).
    /// Organisations: the organisation itself, once one of its own nodes wrote its record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<(Uuid, Stamp)>,
    /// Organisations: the node (origin key, hex) of the earliest write by a node of another
    /// organisation that did more than name it, with that write's stamp: the node that
    /// registered it, and the only one that may act for it as a hosted local organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<(String, Stamp)>,
    /// Set when the record was erased or its event tombstoned: the earliest such stamp. A
    /// record that is gone stays gone and ignores later writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone: Option<Stamp>,
}

impl Record {
    /// Decodes stored record bytes.
    pub fn decode(bytes: &[u8]) -> Result<Record, KvError> {
        serde_json::from_slice(bytes).map_err(|error| KvError(format!("record: {error}")))
    }

    /// Encodes the record for storage.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain maps, strings and numbers cannot fail.
        serde_json::to_vec(self).expect("record serialises")
    }

    /// The current value of `field`.
    pub fn field(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).map(|(value, _)| value)
    }

    /// The current value of `field` as a string.
    pub fn str_field(&self, field: &str) -> Option<&str> {
        self.field(field).and_then(Value::as_str)
    }

    /// The containing object (object attributes and references), kept in the internal field
    /// [`PARENT_FIELD`] so that it is last-writer-wins like any other field.
    pub fn parent(&self) -> Option<Uuid> {
        self.str_field(PARENT_FIELD)
            .and_then(|text| Uuid::parse_str(text).ok())
    }

    /// Every MISP field's current value, in name order (internal fields left out).
    pub fn values(&self) -> Map<String, Value> {
        self.fields
            .iter()
            .filter(|(name, _)| !name.starts_with("__"))
            .map(|(name, (value, _))| (name.clone(), value.clone()))
            .collect()
    }

    /// [`Record::values`], taken out of the record.
    pub fn into_values(self) -> Map<String, Value> {
        // Room for the fields readers add (ids, tags, sightings) without growing again.
        let mut values = Map::with_capacity(self.fields.len() + 8);
        for (name, (value, _)) in self.fields {
            if !name.starts_with("__") {
                values.insert(name, value);
            }
        }
        values
    }

    /// Whether the record holds any data (a record may exist only as a tombstone).
    pub fn is_live(&self) -> bool {
        self.gone.is_none() && !self.fields.is_empty()
    }

    /// Sets each of `fields` whose current stamp is older than `stamp`.
    pub fn merge(&mut self, fields: impl IntoIterator<Item = (String, Value)>, stamp: &Stamp) {
        // Fast path, the usual case of writes arriving in time order: the new stamp is the
        // newest, so every field it names is taken and the sorted stamp table only grows.
        if self.stamps.last().is_none_or(|newest| newest < stamp) {
            let index = self.stamps.len();
            self.stamps.push(stamp.clone());
            for (name, value) in fields {
                self.fields.insert(name, (value, index));
            }
            self.drop_unused_stamps();
            return;
        }
        let mut stamped: BTreeMap<String, (Value, Stamp)> = std::mem::take(&mut self.fields)
            .into_iter()
            .map(|(name, (value, index))| {
                // A stored index always points into `stamps`; a damaged one counts as oldest.
                let stamp = self.stamps.get(index).cloned().unwrap_or_default();
                (name, (value, stamp))
            })
            .collect();
        for (name, value) in fields {
            match stamped.get(&name) {
                Some((_, current)) if current >= stamp => {}
                _ => {
                    stamped.insert(name, (value, stamp.clone()));
                }
            }
        }
        let mut stamps: Vec<Stamp> = stamped.values().map(|(_, s)| s.clone()).collect();
        stamps.sort();
        stamps.dedup();
        self.fields = stamped
            .into_iter()
            .map(|(name, (value, s))| {
                // `stamps` holds every stamp of `stamped`, so the search always finds it.
                let index = stamps.binary_search(&s).expect("stamp is in the table");
                (name, (value, index))
            })
            .collect();
        self.stamps = stamps;
    }

    /// Removes stamps no field refers to any more, keeping the table sorted.
    fn drop_unused_stamps(&mut self) {
        let mut used = vec![false; self.stamps.len()];
        for (_, index) in self.fields.values() {
            if let Some(slot) = used.get_mut(*index) {
                *slot = true;
            }
        }
        if used.iter().all(|u| *u) {
            return;
        }
        let mut renumbered = vec![0; self.stamps.len()];
        let mut kept = Vec::new();
        for (index, stamp) in std::mem::take(&mut self.stamps).into_iter().enumerate() {
            if used[index] {
                renumbered[index] = kept.len();
                kept.push(stamp);
            }
        }
        for (_, index) in self.fields.values_mut() {
            *index = renumbered.get(*index).copied().unwrap_or(0);
        }
        self.stamps = kept;
    }

    /// Records `claim` as the owner if it is earlier than the current claim (or the first).
    /// Returns whether the owner changed.
    pub fn claim_owner(&mut self, claim: (Uuid, &Stamp)) -> bool {
        if self
            .owner
            .as_ref()
            .is_some_and(|(_, current)| current <= claim.1)
        {
            return false;
        }
        self.owner = Some((claim.0, claim.1.clone()));
        true
    }

    /// Records `claim` as the registrar if it is earlier than the current claim (or the
    /// first).
    pub fn claim_registrar(&mut self, claim: (&str, &Stamp)) {
        if self
            .registrar
            .as_ref()
            .is_some_and(|(_, current)| current <= claim.1)
        {
            return;
        }
        self.registrar = Some((claim.0.to_string(), claim.1.clone()));
    }

    /// Marks the record gone (erased or tombstoned) and drops its data.
    pub fn bury(&mut self, stamp: &Stamp) {
        self.fields.clear();
        self.stamps.clear();
        self.owner = None;
        self.registrar = None;
        self.gone = Some(match self.gone.take() {
            Some(current) if current <= *stamp => current,
            _ => stamp.clone(),
        });
    }
}

/// The fields of one write, as a JSON object is parsed into a map (a repeated name keeps its
/// last value) but kept as a list sorted by name: the record's merge inserts them into its
/// own map.
#[derive(Debug, Default, PartialEq)]
pub struct Fields(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Fields;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut parsed: Vec<(String, Value)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(pair) = map.next_entry::<String, Value>()? {
                    parsed.push(pair);
                }
                // Stable: a repeated name's values stay in written order, and the last wins.
                parsed.sort_by(|a, b| a.0.cmp(&b.0));
                let mut fields: Vec<(String, Value)> = Vec::with_capacity(parsed.len());
                for (name, value) in parsed {
                    match fields.last_mut() {
                        Some(last) if last.0 == name => last.1 = value,
                        _ => fields.push((name, value)),
                    }
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl IntoIterator for Fields {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The key of a tag link in [`Table::TagLinks`](super::Table::TagLinks): the target's uuid,
/// the tag name, and for a local link a zero byte and the attaching organisation's uuid. Each
/// organisation's local link and the global link of one name are thus apart (SPEC §4.2), and
/// `target ++ name ++ 0` prefixes every local link of a name. Tag names hold no zero byte
/// (the reducer ignores links whose name does).
pub fn tag_link_key(target: &Uuid, name: &str, local_org: Option<&Uuid>) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + name.len() + 17);
    key.extend_from_slice(target.as_bytes());
    key.extend_from_slice(name.as_bytes());
    if let Some(org) = local_org {
        key.push(0);
        key.extend_from_slice(org.as_bytes());
    }
    key
}

/// A tag link as [`tag_links`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagLink {
    /// The tag name.
    pub name: String,
    /// The organisation that attached it locally; `None` for a global link.
    pub local_org: Option<Uuid>,
    /// Its state.
    pub state: TagLinkState,
}

/// The target, name and local organisation of a [`tag_link_key`].
pub fn parse_tag_link_key(key: &[u8]) -> Option<(Uuid, String, Option<Uuid>)> {
    let target = Uuid::from_slice(key.get(..16)?).ok()?;
    let rest = &key[16..];
    let split = rest.len().checked_sub(17).filter(|at| rest[*at] == 0);
    let (name, org) = match split {
        Some(at) => (&rest[..at], Uuid::from_slice(&rest[at + 1..]).ok()),
        None => (rest, None),
    };
    Some((target, String::from_utf8_lossy(name).into_owned(), org))
}

/// The tag links of `target` (attached or not), by name; a name's global link before its
/// local links.
pub fn tag_links(kv: &dyn super::ViewRead, target: &Uuid) -> Result<Vec<TagLink>, KvError> {
    let mut out = Vec::new();
    for (key, bytes) in kv.scan(super::Table::TagLinks, target.as_bytes())? {
        let state: TagLinkState = serde_json::from_slice(&bytes)
            .map_err(|error| KvError(format!("tag link: {error}")))?;
        if let Some((_, name, local_org)) = parse_tag_link_key(&key) {
            out.push(TagLink {
                name,
                local_org,
                state,
            });
        }
    }
    Ok(out)
}

/// A tag on an event, attribute or object: attached or detached by the latest write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagLinkState {
    /// Whether the tag is currently attached.
    pub attached: bool,
    /// A local tag never leaves the node.
    pub local: bool,
    /// The event the target belongs to.
    pub event: Uuid,
    /// The write that decided the state.
    pub stamp: Stamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn later_stamp_wins_per_field_in_any_order() {
        let early = Stamp(1, "a".into(), 1);
        let late = Stamp(2, "a".into(), 2);
        let mut one = Record::default();
        one.merge(fields(json!({"info": "old", "date": "2020-01-01"})), &early);
        one.merge(fields(json!({"info": "new"})), &late);
        let mut other = Record::default();
        other.merge(fields(json!({"info": "new"})), &late);
        other.merge(fields(json!({"info": "old", "date": "2020-01-01"})), &early);
        assert_eq!(one, other);
        assert_eq!(one.str_field("info"), Some("new"));
        assert_eq!(one.str_field("date"), Some("2020-01-01"));
        assert_eq!(one.stamps, vec![early, late]);
    }

    #[test]
    fn overwritten_stamps_leave_the_table() {
        let mut record = Record::default();
        record.merge(
            fields(json!({"info": "a", "date": "d"})),
            &Stamp(1, "a".into(), 1),
        );
        record.merge(fields(json!({"info": "b"})), &Stamp(2, "a".into(), 2));
        record.merge(fields(json!({"date": "e"})), &Stamp(3, "a".into(), 3));
        assert_eq!(
            record.stamps,
            vec![Stamp(2, "a".into(), 2), Stamp(3, "a".into(), 3)]
        );
        assert_eq!(record.fields["info"], (json!("b"), 0));
        assert_eq!(record.fields["date"], (json!("e"), 1));
        // An older write arriving late changes nothing it lost.
        record.merge(
            fields(json!({"info": "late", "comment": "c"})),
            &Stamp(0, "z".into(), 9),
        );
        assert_eq!(record.str_field("info"), Some("b"));
        assert_eq!(record.str_field("comment"), Some("c"));
        assert_eq!(record.stamps.len(), 3);
    }

    #[test]
    fn fields_parse_like_a_map() {
        let parsed: Fields = serde_json::from_str(r#"{"b": 1, "a": {"x": [2]}, "b": 3}"#).unwrap();
        assert_eq!(
            parsed.0,
            vec![
                ("a".to_string(), json!({"x": [2]})),
                ("b".to_string(), json!(3))
            ]
        );
        assert!(serde_json::from_str::<Fields>("[1, 2]").is_err());
        let mut from_fields = Record::default();
        from_fields.merge(parsed, &Stamp(1, "a".into(), 1));
        let mut from_map = Record::default();
        from_map.merge(
            fields(json!({"a": {"x": [2]}, "b": 3})),
            &Stamp(1, "a".into(), 1),
        );
        assert_eq!(from_fields, from_map);
    }

    #[test]
    fn bury_keeps_the_earliest_stamp() {
        let mut record = Record::default();
        record.merge(fields(json!({"info": "x"})), &Stamp(1, "a".into(), 1));
        record.bury(&Stamp(5, "a".into(), 3));
        record.bury(&Stamp(4, "b".into(), 9));
        assert!(!record.is_live());
        assert_eq!(record.gone, Some(Stamp(4, "b".into(), 9)));
    }
}
