//! Write authority (SPEC §4.2): who may write each replicated record. [`authorize`] decides,
//! for every op of an entry, whether the entry's acting organisation, on its origin node, may
//! write it, from the views as they are before the entry. It is the one place that decides:
//! the store asks it for every local append, under the writer lock and atomically with the
//! append, and for every entry a peer sends, before the entry reaches the views.
//!
//! - An origin node acts for its own organisation, and for a hosted local organisation only
//!   if it registered it, the organisation has no nodes of its own and no org key.
//! - An event and everything in it (attributes, objects, references, reports, global tags)
//!   is written by its owner, the acting organisation of its first entry that writes what
//!   only an owner may ([`owner_only`]). Any organisation may add sightings, local tags (not
//!   over the owner's global ones) and tag definitions (node-local, another rule's concern).
//! - An item belongs to the event that first wrote it: an entry of another event that names
//!   it is refused, whoever the writer is.
//! - A sharing group is written by the organisation that created it (the acting organisation
//!   of the first write naming itself as `org_uuid`); members it marked `extend` may add
//!   organisations and nodes, nothing else.
//! - An organisation record is written by the organisation's own nodes; a hosted local
//!   organisation's by the node that registered it (while the organisation has no nodes of its
//!   own and no org key). Anyone may name an organisation (write only its `name` and `uuid`,
//!   as events do for their `Orgc`); the reducer ranks such names below the owners' writes.

use serde_json::Value;
use uuid::Uuid;

use crate::log::{OriginKey, VerifiedEntry};
use crate::proto::{op::Op, RecordKind, TagLink};
use crate::view::{
    owner_only, read, tag_link_key, KvError, Table, TagLinkState, ViewRead, TAG_TARGETS,
};

pub mod directory;
#[cfg(test)]
mod tests;

/// Sharing group field listing the member organisations the owner lets extend the group.
pub const EXTEND_FIELD: &str = "extend";
/// Sharing group field naming the organisation that created it.
pub const CREATOR_FIELD: &str = crate::view::GROUP_CREATOR_FIELD;

/// Which organisations are bound to an org key (SPEC §4.1). An organisation whose uuid is
/// bound has nodes of its own, certified by its key: no other node may host it.
pub trait OrgKeys {
    /// Whether `org` is bound to an org key.
    fn is_bound(&self, org: &Uuid) -> Result<bool, KvError>;
}

/// No organisation is bound to an org key (until nodes hold bindings).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOrgKeys;

impl OrgKeys for NoOrgKeys {
    fn is_bound(&self, _org: &Uuid) -> Result<bool, KvError> {
        Ok(false)
    }
}

/// Why an entry may not be written. The text is what ingest records and REST reports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The origin node acts for an organisation it may not act for.
    #[error(
        "write authority: node of org {node_org} acts for org {acting}, which it has not registered"
    )]
    ActingOrg {
        /// The origin node's organisation.
        node_org: Uuid,
        /// The organisation the entry acts for.
        acting: Uuid,
    },
    /// The entry changes an event another organisation owns.
    #[error(
        "ownership conflict: event {event} is owned by org {owner}; entry acts for org {acting}"
    )]
    EventOwner {
        /// The event.
        event: Uuid,
        /// Its owner.
        owner: Uuid,
        /// The organisation the entry acts for.
        acting: Uuid,
    },
    /// The entry names an item of another event.
    #[error("foreign item: {kind} {item} belongs to event {home}, not to event {event}")]
    ForeignItem {
        /// What the item is (`attribute`, `object`, …).
        kind: &'static str,
        /// The item.
        item: Uuid,
        /// The event it belongs to.
        home: Uuid,
        /// The entry's event.
        event: Uuid,
    },
    /// The entry changes a sharing group its organisation may not change.
    #[error(
        "write authority: sharing group {group} belongs to org {owner}; org {acting} is neither \
         its owner nor a member it lets extend it"
    )]
    GroupOwner {
        /// The group.
        group: Uuid,
        /// The organisation that created it.
        owner: Uuid,
        /// The organisation the entry acts for.
        acting: Uuid,
    },
    /// A member allowed to extend a group does more than add to it.
    #[error("write authority: org {acting} may extend sharing group {group}, not {change}")]
    GroupExtend {
        /// The group.
        group: Uuid,
        /// The extending organisation.
        acting: Uuid,
        /// What it tried beyond extending.
        change: String,
    },
    /// The entry names another creator for a sharing group than the organisation it acts for.
    #[error(
        "write authority: sharing group {group} must name org {acting}, which creates and owns \
         it, as its creator (org_uuid)"
    )]
    GroupCreator {
        /// The group.
        group: Uuid,
        /// The organisation the entry acts for.
        acting: Uuid,
    },
    /// The entry writes an organisation record its node may not write.
    #[error("write authority: organisation {org} {reason}; node {node} may only name it")]
    Organisation {
        /// The organisation.
        org: Uuid,
        /// Who writes its record instead.
        reason: String,
        /// The origin node.
        node: OriginKey,
    },
}

/// A refusal, or a failure to read the views the decision needs.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// The entry may not be written.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The views could not be read.
    #[error(transparent)]
    Views(#[from] KvError),
}

/// Who writes: the origin node, its organisation and the organisation it acts for.
#[derive(Clone, Copy, Debug)]
struct Writer {
    node: OriginKey,
    node_org: Uuid,
    acting: Uuid,
}

/// Decides whether `entry` may be written, against `views` as they are before it and the org
/// key bindings `keys`. Pure: reads only what it is given.
pub fn authorize(
    entry: &VerifiedEntry,
    views: &dyn ViewRead,
    keys: &dyn OrgKeys,
) -> Result<(), AuthorityError> {
    let writer = Writer {
        node: entry.origin(),
        node_org: entry.origin_org(),
        acting: entry.acting_org(),
    };
    if writer.acting != writer.node_org && !hosts(views, keys, &writer.node, &writer.acting)? {
        return Err(Refusal::ActingOrg {
            node_org: writer.node_org,
            acting: writer.acting,
        }
        .into());
    }
    let event = match entry.event() {
        Some(event) => Some(EventContext::read(views, event, &writer)?),
        None => None,
    };
    for op in &entry.entry().ops {
        match (&op.op, &event) {
            (Some(Op::Set(set)), _) if set.kind == RecordKind::Organisation as i32 => {
                directory::organisation(views, keys, &writer, set)?
            }
            (Some(Op::Set(set)), _) if set.kind == RecordKind::SharingGroup as i32 => {
                directory::sharing_group(views, &writer, set)?
            }
            (_, Some(event)) => event.check(views, op)?,
            // Directory entries carry nothing else the reducer applies.
            (_, None) => {}
        }
    }
    Ok(())
}

/// Whether node `node` may act for `org` as a hosted local organisation: it registered it,
/// the organisation is marked local, has written no record from nodes of its own and is
/// bound to no org key.
fn hosts(
    views: &dyn ViewRead,
    keys: &dyn OrgKeys,
    node: &OriginKey,
    org: &Uuid,
) -> Result<bool, KvError> {
    let Some(record) = read::record(views, RecordKind::Organisation, org.as_bytes())? else {
        return Ok(false);
    };
    let registered = record
        .registrar
        .as_ref()
        .is_some_and(|(registrar, _)| *registrar == node.to_string());
    let local = record.field("local").and_then(Value::as_bool) == Some(true);
    Ok(registered && local && record.owner.is_none() && !keys.is_bound(org)?)
}

/// An entry's event as the checks of its ops need it.
struct EventContext {
    event: Uuid,
    writer: Writer,
    /// The owner, when it is not the writer's acting organisation.
    other_owner: Option<Uuid>,
}

impl EventContext {
    fn read(views: &dyn ViewRead, event: Uuid, writer: &Writer) -> Result<EventContext, KvError> {
        let record = read::record(views, RecordKind::Event, event.as_bytes())?;
        let owner = record.and_then(|record| record.owner).map(|(org, _)| org);
        Ok(EventContext {
            event,
            writer: *writer,
            other_owner: owner.filter(|owner| *owner != writer.acting),
        })
    }

    fn owner_refusal(&self, owner: Uuid) -> Refusal {
        Refusal::EventOwner {
            event: self.event,
            owner,
            acting: self.writer.acting,
        }
    }

    /// Checks one op of the entry.
    fn check(&self, views: &dyn ViewRead, op: &crate::proto::Op) -> Result<(), AuthorityError> {
        if let Some(owner) = self.other_owner {
            if owner_only(op) {
                return Err(self.owner_refusal(owner).into());
            }
        }
        let Some(op) = &op.op else {
            return Ok(());
        };
        match op {
            Op::Set(set) => {
                let kind = RecordKind::try_from(set.kind).unwrap_or(RecordKind::Unspecified);
                if matches!(
                    kind,
                    RecordKind::Attribute
                        | RecordKind::Object
                        | RecordKind::Reference
                        | RecordKind::EventReport
                ) {
                    self.own_item(views, &[kind], &set.key)?;
                    self.own_item(views, &[RecordKind::Object], &set.parent)?;
                }
            }
            Op::Erase(erase) => {
                let kind = RecordKind::try_from(erase.kind).unwrap_or(RecordKind::Unspecified);
                if kind != RecordKind::Event {
                    self.own_item(views, &[kind], &erase.key)?;
                }
            }
            Op::Tag(link) => self.tag(views, link)?,
            Op::Sighting(sighting) => {
                self.own_item(views, &[RecordKind::Attribute], &sighting.attribute)?
            }
            // Identity statements are judged by their org key's signature (SPEC §4.1).
            Op::Tombstone(_) | Op::Certificate(_) | Op::Revocation(_) => {}
        }
        Ok(())
    }

    /// Refuses `key` if, as a record of one of `kinds`, it belongs to another event.
    fn own_item(
        &self,
        views: &dyn ViewRead,
        kinds: &[RecordKind],
        key: &[u8],
    ) -> Result<(), AuthorityError> {
        let Ok(item) = Uuid::from_slice(key) else {
            // Not a uuid: the reducer applies nothing of it.
            return Ok(());
        };
        for kind in kinds {
            let Some(record) = read::record(views, *kind, key)? else {
                continue;
            };
            let home = if *kind == RecordKind::Event {
                Some(item)
            } else {
                record.event
            };
            if let Some(home) = home.filter(|home| *home != self.event) {
                return Err(Refusal::ForeignItem {
                    kind: kind_name(*kind),
                    item,
                    home,
                    event: self.event,
                }
                .into());
            }
            return Ok(());
        }
        Ok(())
    }

    /// A tag link: its target must be the event or one of its items. A writer that is not the
    /// owner may only write its own organisation's local links ([`owner_only`] refuses the
    /// rest), which are kept apart from the global link of the same name.
    fn tag(&self, views: &dyn ViewRead, link: &TagLink) -> Result<(), AuthorityError> {
        if link.target.as_ref() != self.event.as_bytes() {
            self.own_item(views, &TAG_TARGETS, &link.target)?;
        }
        let target = Uuid::from_slice(&link.target).unwrap_or_default();
        let local_org = link.local.then_some(&self.writer.acting);
        let key = tag_link_key(&target, &link.name, local_org);
        let current: Option<TagLinkState> = views
            .get(Table::TagLinks, &key)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if let Some(current) = &current {
            if current.event != self.event {
                return Err(Refusal::ForeignItem {
                    kind: "tag link",
                    item: Uuid::from_slice(&link.target).unwrap_or_default(),
                    home: current.event,
                    event: self.event,
                }
                .into());
            }
        }
        Ok(())
    }
}

/// The name of an item kind in refusals.
fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Attribute => "attribute",
        RecordKind::Object => "object",
        RecordKind::Reference => "object reference",
        RecordKind::EventReport => "event report",
        RecordKind::Event => "event",
        _ => "record",
    }
}
