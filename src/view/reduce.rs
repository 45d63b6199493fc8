//! The reducer: applies one verified entry to the views. Deterministic and order-independent
//! across origins: every write is last-writer-wins by [`Stamp`], sightings keep the earliest
//! copy, owners and registrars are the earliest claims, erasures and tombstones are
//! absorbing, so any interleaving that keeps each origin's order gives the same views.
//!
//! Write authority is decided before an entry gets here (`policy::authority`, on local
//! appends and on ingest). One of its rules the reducer keeps itself, so that the views stay a
//! function of the log even if a log holds an entry that breaks it: an item (attribute,
//! object, reference, report, tag link, sighting) belongs to the event that first wrote it,
//! and an entry of another event that names it changes nothing of it.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::index::{record_index, tag_link_index};
use super::record::{Fields, PARENT_FIELD};
use super::{
    parse_tag_link_key, record_key, tag_link_key, KeyValue, KvError, Record, Stamp, Table,
    TagLinkState, ViewWrite,
};
use crate::log::VerifiedEntry;
use crate::proto::{self, op::Op, RecordKind};

/// Children-table kind byte of tag links.
pub(crate) const CHILD_TAG_LINK: u8 = 0xF0;
/// Children-table kind byte of sightings.
pub(crate) const CHILD_SIGHTING: u8 = 0xF1;

/// How far back in time an organisation record write that only names the organisation
/// ([`names_only`]), by a node of another organisation, is ranked: such names come from event
/// data (an event's `Orgc`), and any write of the organisation's own nodes or its registrar
/// outranks them whatever its time. 2^62 ms is about 146 million years, beyond any origin
/// time a receiver accepts (see `sync.clock_skew_max_s`).
const NAMING_STAMP_OFFSET_MS: i64 = 1 << 62;

/// The sharing group field naming the organisation that created the group: the acting
/// organisation of a write that names itself there claims the group.
pub const GROUP_CREATOR_FIELD: &str = "org_uuid";

/// The organisation fields a write may set and still only name the organisation.
const NAMING_FIELDS: [&str; 2] = ["name", "uuid"];

/// Whether `op` is one only the owner of the entry's event may write: every change to the
/// event and its contents but sightings, local tag links and tag definitions (which any
/// organisation that sees the event may write), and directory records (which have rules of
/// their own).
pub fn owner_only(op: &proto::Op) -> bool {
    match &op.op {
        Some(Op::Set(set)) => {
            is_event_scoped(RecordKind::try_from(set.kind).unwrap_or(RecordKind::Unspecified))
        }
        Some(Op::Tag(link)) => !link.local,
        Some(Op::Erase(_) | Op::Tombstone(_)) => true,
        Some(Op::Sighting(_) | Op::Certificate(_) | Op::Revocation(_)) | None => false,
    }
}

/// Whether a write's field names only name an organisation (its `name` and `uuid`), as the
/// organisation op of an event's `Orgc` does.
pub fn names_only<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.all(|name| NAMING_FIELDS.contains(&name))
}

/// The records an entry created, so the store can give them local numeric ids.
#[derive(Debug, Default)]
pub struct Touched {
    /// (kind, record key) of every record that did not exist before the entry, and of every
    /// tag the entry names.
    pub records: Vec<(RecordKind, Vec<u8>)>,
}

/// The fields of each op of an entry, parsed: the costliest step of reducing, and one that
/// needs no view state, so an append does it before it queues for the writer.
#[derive(Debug, Default)]
pub struct ParsedFields(Vec<Option<Fields>>);

impl ParsedFields {
    /// Parses the fields of every record write among `ops` (`None` for other ops and for
    /// fields that are not a JSON object).
    pub fn of(ops: &[proto::Op]) -> ParsedFields {
        ParsedFields(
            ops.iter()
                .map(|op| match &op.op {
                    Some(Op::Set(set)) => serde_json::from_slice(&set.fields_json).ok(),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// Applies `entry` to the views in `kv`. Ops that do not fit the views (unknown kinds, keys of
/// the wrong shape, fields that are not a JSON object) are skipped, the same way on every node.
pub fn apply(kv: &mut dyn ViewWrite, entry: &VerifiedEntry) -> Result<Touched, KvError> {
    apply_parsed(kv, entry, ParsedFields::of(&entry.entry().ops))
}

/// [`apply`], with the entry's fields already parsed by [`ParsedFields::of`] from its ops.
pub fn apply_parsed(
    kv: &mut dyn ViewWrite,
    entry: &VerifiedEntry,
    parsed: ParsedFields,
) -> Result<Touched, KvError> {
    let mut reducer = Reducer {
        kv,
        stamp: Stamp::of(entry),
        event: entry.event(),
        acting_org: entry.acting_org(),
        origin_org: entry.origin_org(),
        touched: Touched::default(),
    };
    let mut event_gone = match reducer.event {
        Some(event) => is_gone(reducer.kv, RecordKind::Event, event.as_bytes())?,
        None => false,
    };
    if let Some(event) = reducer.event.filter(|_| !event_gone) {
        if entry.entry().ops.iter().any(owner_only) {
            reducer.claim_event(event)?;
        }
    }
    let mut parsed = parsed.0.into_iter();
    for op in &entry.entry().ops {
        let fields = parsed.next().flatten();
        let Some(op) = &op.op else { continue };
        match op {
            Op::Set(set) => {
                let kind = RecordKind::try_from(set.kind).unwrap_or(RecordKind::Unspecified);
                if !(is_event_scoped(kind) && event_gone) {
                    reducer.set(kind, set, fields)?;
                }
            }
            Op::Tag(link) => {
                // Whatever becomes of the link, the name is in use (in any order of entries).
                reducer.tag_in_use(&link.name);
                if !event_gone {
                    reducer.tag(link)?;
                }
            }
            Op::Sighting(sighting) if !event_gone => reducer.sighting(sighting)?,
            Op::Erase(erase) if !event_gone => reducer.erase(erase)?,
            Op::Tombstone(_) => {
                reducer.tombstone()?;
                event_gone = reducer.event.is_some();
            }
            _ => {}
        }
    }
    Ok(reducer.touched)
}

/// The kinds of record a tag link may target.
pub const TAG_TARGETS: [RecordKind; 4] = [
    RecordKind::Attribute,
    RecordKind::Object,
    RecordKind::Event,
    RecordKind::EventReport,
];

/// Kinds that live inside an event and disappear with it.
fn is_event_scoped(kind: RecordKind) -> bool {
    matches!(
        kind,
        RecordKind::Event
            | RecordKind::Attribute
            | RecordKind::Object
            | RecordKind::Reference
            | RecordKind::EventReport
    )
}

/// Whether a record is gone, reading only that flag of the stored record.
fn is_gone(kv: &dyn ViewWrite, kind: RecordKind, key: &[u8]) -> Result<bool, KvError> {
    #[derive(serde::Deserialize)]
    struct GoneOnly {
        #[serde(default)]
        gone: Option<serde::de::IgnoredAny>,
    }
    match kv.get(Table::Records, &record_key(kind, key))? {
        Some(bytes) => serde_json::from_slice::<GoneOnly>(&bytes)
            .map(|record| record.gone.is_some())
            .map_err(|error| KvError(format!("record: {error}"))),
        None => Ok(false),
    }
}

fn load_record(kv: &dyn ViewWrite, kind: RecordKind, key: &[u8]) -> Result<Record, KvError> {
    match kv.get(Table::Records, &record_key(kind, key))? {
        Some(bytes) => Record::decode(&bytes),
        None => Ok(Record::default()),
    }
}

/// Replaces the index pairs `before` with `after`.
fn reindex(kv: &mut dyn ViewWrite, before: Vec<KeyValue>, after: Vec<KeyValue>) {
    if before.is_empty() {
        for (key, value) in after {
            kv.put(Table::Index, key, value);
        }
        return;
    }
    let after: BTreeMap<Vec<u8>, Vec<u8>> = after.into_iter().collect();
    for (key, value) in before {
        if after.get(&key) != Some(&value) {
            kv.delete(Table::Index, key);
        }
    }
    for (key, value) in after {
        kv.put(Table::Index, key, value);
    }
}

fn child_key(event: &Uuid, kind: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + key.len());
    out.extend_from_slice(event.as_bytes());
    out.push(kind);
    out.extend_from_slice(key);
    out
}

struct Reducer<'a> {
    kv: &'a mut dyn ViewWrite,
    stamp: Stamp,
    event: Option<Uuid>,
    acting_org: Uuid,
    /// The organisation of the entry's origin node.
    origin_org: Uuid,
    touched: Touched,
}

impl Reducer<'_> {
    /// Claims `event` for the acting organisation: the earliest claim owns it.
    fn claim_event(&mut self, event: Uuid) -> Result<(), KvError> {
        let before = load_record(self.kv, RecordKind::Event, event.as_bytes())?;
        let mut after = before.clone();
        if !after.claim_owner((self.acting_org, &self.stamp)) {
            return Ok(());
        }
        reindex(
            self.kv,
            record_index(RecordKind::Event, &event, &before),
            record_index(RecordKind::Event, &event, &after),
        );
        self.kv.put(
            Table::Records,
            record_key(RecordKind::Event, event.as_bytes()),
            after.encode(),
        );
        if before == Record::default() {
            self.touched
                .records
                .push((RecordKind::Event, event.as_bytes().to_vec()));
        }
        Ok(())
    }

    /// The event the item `kind`/`key` belongs to, if the views hold it: an event's own
    /// uuid for an event record.
    fn home_of(&self, kind: RecordKind, key: &Uuid) -> Result<Option<Uuid>, KvError> {
        let Some(bytes) = self
            .kv
            .get(Table::Records, &record_key(kind, key.as_bytes()))?
        else {
            return Ok(None);
        };
        if kind == RecordKind::Event {
            return Ok(Some(*key));
        }
        Ok(Record::decode(&bytes)?.event)
    }

    /// Whether `key`, as a record of one of `kinds`, belongs to another event than the
    /// entry's.
    fn elsewhere(&self, kinds: &[RecordKind], key: &Uuid) -> Result<bool, KvError> {
        for kind in kinds {
            if let Some(home) = self.home_of(*kind, key)? {
                return Ok(Some(home) != self.event);
            }
        }
        Ok(false)
    }

    /// The stamp a write of organisation `org` merges with, and the claims it makes: its own
    /// nodes claim it, another organisation's node that does more than name it claims to be
    /// its registrar, and names given by others rank below both.
    fn organisation_stamp(&self, org: &Uuid, fields: &Fields, record: &mut Record) -> Stamp {
        if self.origin_org == *org {
            record.claim_owner((*org, &self.stamp));
            return self.stamp.clone();
        }
        if names_only(fields.0.iter().map(|(name, _)| name.as_str())) {
            let Stamp(time_ms, origin, sequence) = &self.stamp;
            return Stamp(
                time_ms.saturating_sub(NAMING_STAMP_OFFSET_MS),
                origin.clone(),
                *sequence,
            );
        }
        record.claim_registrar((self.stamp.1.as_str(), &self.stamp));
        self.stamp.clone()
    }

    fn set(
        &mut self,
        kind: RecordKind,
        set: &proto::RecordSet,
        fields: Option<Fields>,
    ) -> Result<(), KvError> {
        let scoped = is_event_scoped(kind);
        let key = set.key.as_ref();
        let uuid = Uuid::from_slice(key).ok();
        let valid_key = match kind {
            RecordKind::Unspecified => false,
            RecordKind::Tag => !key.is_empty() && std::str::from_utf8(key).is_ok(),
            RecordKind::Event => uuid.is_some() && uuid == self.event,
            _ => uuid.is_some(),
        };
        let (Some(mut fields), true) = (fields, valid_key && (!scoped || self.event.is_some()))
        else {
            return Ok(());
        };
        if kind == RecordKind::Tag {
            // Definitions are node-local (SPEC §4.2): a log entry only names the tag.
            if let Ok(name) = std::str::from_utf8(key) {
                self.tag_in_use(name);
            }
            return Ok(());
        }
        let before = load_record(self.kv, kind, key)?;
        if before.gone.is_some() {
            return Ok(());
        }
        let item = scoped && kind != RecordKind::Event;
        // An item belongs to the event that first wrote it, and stays out of objects of
        // other events.
        if item && before.event.is_some_and(|home| Some(home) != self.event) {
            return Ok(());
        }
        let parent = Uuid::from_slice(&set.parent).ok();
        if let Some(parent) = parent.filter(|_| item) {
            if self.elsewhere(&[RecordKind::Object], &parent)? {
                return Ok(());
            }
        }
        let mut after = before.clone();
        if item {
            after.event = self.event;
        }
        if let Some(parent) = parent {
            // One merge: the parent is set like the other fields, unless they name it.
            if !fields.0.iter().any(|(name, _)| name == PARENT_FIELD) {
                fields
                    .0
                    .push((PARENT_FIELD.into(), json!(parent.to_string())));
            }
        }
        let stamp = match (kind, uuid) {
            (RecordKind::Organisation, Some(org)) => {
                self.organisation_stamp(&org, &fields, &mut after)
            }
            (RecordKind::SharingGroup, _) => {
                // The creator is the organisation that names itself so; only it may.
                let acting = self.acting_org.to_string();
                let creator = fields.0.iter().any(|(name, value)| {
                    name == GROUP_CREATOR_FIELD && value.as_str() == Some(acting.as_str())
                });
                if creator {
                    after.claim_owner((self.acting_org, &self.stamp));
                }
                self.stamp.clone()
            }
            _ => self.stamp.clone(),
        };
        after.merge(fields, &stamp);
        if let Some(uuid) = uuid.filter(|_| kind != RecordKind::Tag) {
            reindex(
                self.kv,
                record_index(kind, &uuid, &before),
                record_index(kind, &uuid, &after),
            );
        }
        if let (true, Some(event)) = (scoped && kind != RecordKind::Event, self.event) {
            self.kv.put(
                Table::Children,
                child_key(&event, kind as u8, key),
                Vec::new(),
            );
        }
        self.kv
            .put(Table::Records, record_key(kind, key), after.encode());
        if before == Record::default() {
            self.touched.records.push((kind, key.to_vec()));
        }
        Ok(())
    }

    fn tag(&mut self, link: &proto::TagLink) -> Result<(), KvError> {
        let (Some(event), Ok(target)) = (self.event, Uuid::from_slice(&link.target)) else {
            return Ok(());
        };
        if link.name.is_empty() || link.name.contains('\0') {
            return Ok(());
        }
        if target != event && self.elsewhere(&TAG_TARGETS, &target)? {
            return Ok(());
        }
        // A local link is the acting organisation's own, apart from the global link.
        let key = tag_link_key(&target, &link.name, link.local.then_some(&self.acting_org));
        let before: Option<TagLinkState> = match self.kv.get(Table::TagLinks, &key)? {
            Some(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|error| KvError(format!("tag link: {error}")))?,
            ),
            None => None,
        };
        if before
            .as_ref()
            .is_some_and(|b| b.stamp >= self.stamp || b.event != event)
        {
            return Ok(());
        }
        let after = TagLinkState {
            attached: link.attached,
            local: link.local,
            event,
            stamp: self.stamp.clone(),
        };
        self.kv.put(
            Table::Children,
            child_key(&event, CHILD_TAG_LINK, &key),
            Vec::new(),
        );
        // Serialising plain fields cannot fail.
        let bytes = serde_json::to_vec(&after).expect("tag link serialises");
        self.kv.put(Table::TagLinks, key, bytes);
        // The tag index names the target while any of its links of this name is attached.
        let mut links = tag_link_key(&target, &link.name, None);
        let global = self.kv.get(Table::TagLinks, &links)?;
        links.push(0);
        let attached = global
            .into_iter()
            .chain(
                self.kv
                    .scan(Table::TagLinks, &links)?
                    .into_iter()
                    .map(|(_, v)| v),
            )
            .any(|bytes| {
                serde_json::from_slice::<TagLinkState>(&bytes).is_ok_and(|link| link.attached)
            });
        for (key, value) in tag_link_index(&target, &link.name, event) {
            match attached {
                true => self.kv.put(Table::Index, key, value),
                false => self.kv.delete(Table::Index, key),
            }
        }
        Ok(())
    }

    /// Notes that the tag `name` is in use, for the store to give it a local id if it has
    /// none. Tags have no view records: their definitions are node-local (SPEC §4.2). Names a
    /// link cannot have (empty, or holding a zero byte) are not tags.
    fn tag_in_use(&mut self, name: &str) {
        if !name.is_empty() && !name.contains('\0') {
            self.touched
                .records
                .push((RecordKind::Tag, name.as_bytes().to_vec()));
        }
    }

    fn sighting(&mut self, sighting: &proto::SightingAdd) -> Result<(), KvError> {
        let (Some(event), Ok(attribute), Ok(uuid)) = (
            self.event,
            Uuid::from_slice(&sighting.attribute),
            Uuid::from_slice(&sighting.uuid),
        ) else {
            return Ok(());
        };
        let Ok(fields) = serde_json::from_slice::<Map<String, Value>>(&sighting.fields_json) else {
            return Ok(());
        };
        if self.elsewhere(&[RecordKind::Attribute], &attribute)? {
            return Ok(());
        }
        let mut key = attribute.as_bytes().to_vec();
        key.extend_from_slice(uuid.as_bytes());
        if let Some(bytes) = self.kv.get(Table::Sightings, &key)? {
            let existing: StoredSighting = serde_json::from_slice(&bytes)
                .map_err(|error| KvError(format!("sighting: {error}")))?;
            if existing.stamp <= self.stamp || existing.event != event {
                return Ok(());
            }
        }
        let stored = StoredSighting {
            event,
            fields,
            stamp: self.stamp.clone(),
        };
        self.kv.put(
            Table::Children,
            child_key(&event, CHILD_SIGHTING, &key),
            Vec::new(),
        );
        // Serialising plain fields cannot fail.
        let bytes = serde_json::to_vec(&stored).expect("sighting serialises");
        self.kv.put(Table::Sightings, key, bytes);
        Ok(())
    }

    fn erase(&mut self, erase: &proto::Erase) -> Result<(), KvError> {
        let kind = RecordKind::try_from(erase.kind).unwrap_or(RecordKind::Unspecified);
        let (Some(event), Ok(uuid)) = (self.event, Uuid::from_slice(&erase.key)) else {
            return Ok(());
        };
        if !is_event_scoped(kind) || kind == RecordKind::Event {
            return Ok(());
        }
        let before = load_record(self.kv, kind, &erase.key)?;
        if before.event.is_some_and(|home| home != event) {
            return Ok(());
        }
        let mut after = before.clone();
        after.event = Some(event);
        after.bury(&self.stamp);
        reindex(self.kv, record_index(kind, &uuid, &before), Vec::new());
        // The buried record stays listed under its event, so a tombstone removes it like
        // any other child: a tombstone then leaves the same state whatever came before it.
        self.kv.put(
            Table::Children,
            child_key(&event, kind as u8, &erase.key),
            Vec::new(),
        );
        self.kv
            .put(Table::Records, record_key(kind, &erase.key), after.encode());
        Ok(())
    }

    /// Buries the event and removes everything it holds.
    fn tombstone(&mut self) -> Result<(), KvError> {
        let Some(event) = self.event else {
            return Ok(());
        };
        let before = load_record(self.kv, RecordKind::Event, event.as_bytes())?;
        let mut after = before.clone();
        after.bury(&self.stamp);
        reindex(
            self.kv,
            record_index(RecordKind::Event, &event, &before),
            Vec::new(),
        );
        self.kv.put(
            Table::Records,
            record_key(RecordKind::Event, event.as_bytes()),
            after.encode(),
        );
        for (child, _) in self.kv.scan(Table::Children, event.as_bytes())? {
            let (kind, key) = (child[16], child[17..].to_vec());
            match kind {
                CHILD_TAG_LINK => {
                    if let Some((target, name, _)) = parse_tag_link_key(&key) {
                        for (index, _) in tag_link_index(&target, &name, event) {
                            self.kv.delete(Table::Index, index);
                        }
                    }
                    self.kv.delete(Table::TagLinks, key);
                }
                CHILD_SIGHTING => self.kv.delete(Table::Sightings, key),
                kind => {
                    let kind =
                        RecordKind::try_from(i32::from(kind)).unwrap_or(RecordKind::Unspecified);
                    let record = load_record(self.kv, kind, &key)?;
                    if let Ok(uuid) = Uuid::from_slice(&key) {
                        reindex(self.kv, record_index(kind, &uuid, &record), Vec::new());
                    }
                    self.kv.delete(Table::Records, record_key(kind, &key));
                }
            }
            self.kv.delete(Table::Children, child);
        }
        Ok(())
    }
}

/// A stored sighting: the earliest-stamped copy of a sighting uuid wins.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredSighting {
    /// The event of the sighted attribute.
    pub event: Uuid,
    /// MISP fields of the sighting.
    pub fields: Map<String, Value>,
    /// The write that stored it.
    pub stamp: Stamp,
}

#[cfg(test)]
mod tests;
