//! Write authority over directory records (SPEC §4.2): organisation records and sharing
//! groups, wherever an entry writes them.

use serde_json::Value;
use std::collections::BTreeSet;
use uuid::Uuid;

use super::{AuthorityError, OrgKeys, Refusal, Writer, CREATOR_FIELD, EXTEND_FIELD};
use crate::proto::{RecordKind, RecordSet};
use crate::view::{names_only, read, Record, ViewRead};

/// Sharing group fields that hold its member organisations.
const MEMBER_FIELDS: [&str; 2] = ["organisations", "SharingGroupOrg"];
/// Sharing group fields a member marked `extend` may write: the members, the relay nodes, and
/// the modification time the API sets with every change.
const EXTEND_FIELDS: [&str; 4] = ["organisations", "SharingGroupOrg", "nodes", "modified"];

/// The fields of a record write, or `None` when they are not a JSON object (the reducer
/// applies nothing of such a write).
fn fields(set: &RecordSet) -> Option<serde_json::Map<String, Value>> {
    serde_json::from_slice(&set.fields_json).ok()
}

/// An organisation record write.
pub(super) fn organisation(
    views: &dyn ViewRead,
    keys: &dyn OrgKeys,
    writer: &Writer,
    set: &RecordSet,
) -> Result<(), AuthorityError> {
    let (Ok(org), Some(fields)) = (Uuid::from_slice(&set.key), fields(set)) else {
        return Ok(());
    };
    if writer.node_org == org || names_only(fields.keys().map(String::as_str)) {
        return Ok(());
    }
    let refuse = |reason: String| Refusal::Organisation {
        org,
        reason,
        node: writer.node,
    };
    if keys.is_bound(&org)? {
        return Err(
            refuse("is bound to an org key: only its own nodes write its record".into()).into(),
        );
    }
    let Some(record) = read::record(views, RecordKind::Organisation, org.as_bytes())? else {
        return Ok(());
    };
    if record.owner.is_some() {
        return Err(refuse("has nodes of its own: only they write its record".into()).into());
    }
    match &record.registrar {
        Some((registrar, _)) if *registrar != writer.node.to_string() => Err(refuse(format!(
            "is registered by node {registrar}: only it writes its record"
        ))
        .into()),
        _ => Ok(()),
    }
}

/// The organisation uuids listed in a member or extend field: uuids, or objects naming one
/// (`{"Organisation": {"uuid"}}`, `{"org_uuid"}`, `{"uuid"}`).
fn listed_orgs(value: Option<&Value>) -> BTreeSet<Uuid> {
    let Some(list) = value.and_then(Value::as_array) else {
        return BTreeSet::new();
    };
    list.iter().filter_map(member_org).collect()
}

/// The organisation uuid a sharing group member names: a uuid, or an object naming one
/// (`{"Organisation": {"uuid"}}`, `{"org_uuid"}`, `{"uuid"}`).
pub fn member_org(member: &Value) -> Option<Uuid> {
    member
        .pointer("/Organisation/uuid")
        .or_else(|| member.get("org_uuid"))
        .or_else(|| member.get("uuid"))
        .or(Some(member))
        .and_then(Value::as_str)
        .and_then(|text| Uuid::parse_str(text).ok())
}

/// The relay nodes listed in a group's `nodes` field.
fn listed_nodes(value: Option<&Value>) -> BTreeSet<String> {
    node_keys(value).into_iter().collect()
}

/// The node keys a group's `nodes` field lists, in its order (text that is not a string is
/// left out).
pub fn node_keys(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A sharing group write.
pub(super) fn sharing_group(
    views: &dyn ViewRead,
    writer: &Writer,
    set: &RecordSet,
) -> Result<(), AuthorityError> {
    let (Ok(group), Some(fields)) = (Uuid::from_slice(&set.key), fields(set)) else {
        return Ok(());
    };
    let named_creator = fields
        .get(CREATOR_FIELD)
        .map(|value| value.as_str().and_then(|text| Uuid::parse_str(text).ok()));
    let record = read::record(views, RecordKind::SharingGroup, group.as_bytes())?;
    let owner = record
        .as_ref()
        .and_then(|record| record.owner.as_ref())
        .map(|(org, _)| *org);
    let creator_refusal = Refusal::GroupCreator {
        group,
        acting: writer.acting,
    };
    match owner {
        // A new group: the write creates it and must name its acting organisation as creator.
        None if named_creator != Some(Some(writer.acting)) => Err(creator_refusal.into()),
        None => Ok(()),
        Some(owner) if owner == writer.acting => match named_creator {
            Some(named) if named != Some(owner) => Err(creator_refusal.into()),
            _ => Ok(()),
        },
        Some(owner) => {
            let record = record.unwrap_or_default();
            extend_group(&record, group, owner, writer.acting, &fields)
        }
    }
}

/// A write by an organisation that does not own group `group`: allowed only to a member the
/// owner marked `extend`, and only to add organisations and nodes.
fn extend_group(
    record: &Record,
    group: Uuid,
    owner: Uuid,
    acting: Uuid,
    fields: &serde_json::Map<String, Value>,
) -> Result<(), AuthorityError> {
    if !listed_orgs(record.field(EXTEND_FIELD)).contains(&acting) {
        return Err(Refusal::GroupOwner {
            group,
            owner,
            acting,
        }
        .into());
    }
    let refuse = |change: String| Refusal::GroupExtend {
        group,
        acting,
        change,
    };
    if let Some(field) = fields
        .keys()
        .find(|name| !EXTEND_FIELDS.contains(&name.as_str()))
    {
        return Err(refuse(format!("set its {field}")).into());
    }
    let mut members = BTreeSet::new();
    for field in MEMBER_FIELDS {
        members.extend(listed_orgs(record.field(field)));
    }
    for field in MEMBER_FIELDS {
        if let Some(value) = fields.get(field) {
            let kept = listed_orgs(Some(value));
            if let Some(removed) = members.iter().find(|org| !kept.contains(org)) {
                return Err(refuse(format!("remove org {removed} from it")).into());
            }
        }
    }
    if let Some(value) = fields.get("nodes") {
        let kept = listed_nodes(Some(value));
        if let Some(removed) = listed_nodes(record.field("nodes"))
            .iter()
            .find(|node| !kept.contains(*node))
        {
            return Err(refuse(format!("remove node {removed} from it")).into());
        }
    }
    Ok(())
}
