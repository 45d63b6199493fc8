//! A sharing group as the handlers see it: its record, members, owner and extenders, who may
//! see and change it ([`crate::api::access`]), its MISP JSON, and writing its fields.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::api::access::{self, Action};
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::request::{parse_ref, text_field};
use crate::node::Node;
use crate::policy::authority::{CREATOR_FIELD, EXTEND_FIELD};
use crate::proto::RecordKind;
use crate::sync::peer;
use crate::view::{read, Record};

/// MISP's message for a sharing group that does not exist or is not visible.
pub const INVALID_GROUP: &str = "Invalid sharing group.";
/// MISP's message for a sharing group an element names that does not exist or that the caller
/// may not use.
pub const UNUSABLE_GROUP: &str = "Invalid Sharing Group or not authorised.";
/// MISP's message for an unknown organisation.
pub const INVALID_ORG: &str = "Invalid organisation.";
/// MISP's validation failure name for a group that could not be saved.
pub const NOT_SAVED: &str = "The sharing group could not be saved.";
/// Most members one group holds; keeps the record (and its entry) small.
pub const MEMBERS_MAX: usize = 10_000;

/// A sharing group record with its uuid.
pub struct Group {
    /// The group's uuid.
    pub uuid: Uuid,
    /// Its record.
    pub record: Record,
}

impl Group {
    /// Member organisation uuids, as stored.
    pub fn members(&self) -> Vec<Uuid> {
        uuids_in(self.record.field("organisations"))
    }

    /// The creating organisation.
    pub fn creator(&self) -> Option<Uuid> {
        self.record
            .str_field(CREATOR_FIELD)
            .and_then(|text| Uuid::parse_str(text).ok())
    }

    /// The organisation that owns the group: the one that created it.
    pub fn owner(&self) -> Option<Uuid> {
        self.record
            .owner
            .as_ref()
            .map(|(org, _)| *org)
            .or_else(|| self.creator())
    }

    /// Member organisations the owner lets extend the group.
    pub fn extenders(&self) -> Vec<Uuid> {
        uuids_in(self.record.field(EXTEND_FIELD))
    }
}

/// The uuids in a stored uuid list.
pub fn uuids_in(list: Option<&Value>) -> Vec<Uuid> {
    list.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().and_then(|t| Uuid::parse_str(t).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a group record is live and not deleted.
pub fn present(record: &Record) -> bool {
    record.is_live() && record.field("deleted") != Some(&json!(true))
}

/// Whether `caller` sees the group: site admins, members and the creator.
pub fn visible_to(caller: &Caller, group: &Group) -> bool {
    access::allows(
        caller,
        Action::SeeGroup {
            owner: group.owner(),
            members: &group.members(),
        },
    )
}

/// Refuses callers who may not change `group` ([`Action::ChangeGroup`]).
pub fn require_manager(caller: &Caller, group: &Group) -> Result<(), ApiError> {
    access::require(
        caller,
        Action::ChangeGroup {
            owner: group.owner(),
        },
    )
}

/// Refuses callers who may not add organisations or servers to `group`
/// ([`Action::ExtendGroup`]).
pub fn require_extender(caller: &Caller, group: &Group) -> Result<(), ApiError> {
    access::require(
        caller,
        Action::ExtendGroup {
            owner: group.owner(),
            extenders: &group.extenders(),
        },
    )
}

/// The visible group named by `text` (id or uuid).
pub fn find(node: &Node, caller: &Caller, text: &str) -> Result<Group, ApiError> {
    let missing = || ApiError::not_found(INVALID_GROUP);
    let uuid = parse_ref(text)
        .and_then(|reference| reference.resolve(node, RecordKind::SharingGroup))
        .ok_or_else(missing)?;
    let record = read::record(
        &node.store.views(),
        RecordKind::SharingGroup,
        uuid.as_bytes(),
    )?
    .filter(present)
    .ok_or_else(missing)?;
    let group = Group { uuid, record };
    if !visible_to(caller, &group) {
        return Err(missing());
    }
    Ok(group)
}

/// Names by uuid the sharing groups that elements name, after checking that `caller` may use
/// them. In `value` and every object nested in it (an event's attributes, objects, their
/// attributes and reports), an element that names a group — by `SharingGroup.uuid`, by
/// `sharing_group_uuid`, or (at distribution 4) by `sharing_group_id`, a local id or a uuid as
/// some clients send — gets the `sharing_group_uuid` of that group, its one spelling from then
/// on. A group that does not exist, or that `caller` does not see, is refused with `status` and
/// MISP's message ([`UNUSABLE_GROUP`]): an organisation cannot share into a community it is not
/// part of.
pub fn name_by_uuid(
    node: &Node,
    caller: &Caller,
    fields: &mut Map<String, Value>,
    status: StatusCode,
) -> Result<(), ApiError> {
    if let Some(named) = group_named(fields) {
        let group =
            find(node, caller, &named).map_err(|_| ApiError::new(status, UNUSABLE_GROUP))?;
        fields.remove("SharingGroup");
        fields.insert("sharing_group_uuid".into(), json!(group.uuid.to_string()));
    }
    for nested in fields.values_mut() {
        let elements = match nested {
            Value::Array(items) => items.iter_mut().filter_map(Value::as_object_mut).collect(),
            Value::Object(element) => vec![element],
            _ => Vec::new(),
        };
        for element in elements {
            name_by_uuid(node, caller, element, status)?;
        }
    }
    Ok(())
}

/// How an element names its sharing group, in the order the event model reads them: the uuid of
/// a nested `SharingGroup`, its `sharing_group_uuid`, or — only at distribution 4, since MISP
/// clients send `"sharing_group_id": "0"` with every element — its `sharing_group_id`.
fn group_named(fields: &Map<String, Value>) -> Option<String> {
    let named = |text: Option<String>| {
        text.map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty() && text != "0")
    };
    let nested = fields
        .get("SharingGroup")
        .and_then(Value::as_object)
        .and_then(|group| named(text_field(group, "uuid")));
    let shared_with_group = text_field(fields, "distribution").is_some_and(|d| d.trim() == "4");
    nested
        .or_else(|| named(text_field(fields, "sharing_group_uuid")))
        .or_else(|| {
            shared_with_group
                .then(|| named(text_field(fields, "sharing_group_id")))
                .flatten()
        })
}

/// MISP's `Organisation` object for `uuid`.
fn org_json(node: &Node, uuid: &Uuid) -> Result<Value, ApiError> {
    let ids = |kind: RecordKind, key: &[u8]| node.store.local_id(kind, key);
    Ok(read::organisation(&node.store.views(), uuid, &ids)?)
}

/// MISP's sharing group body: `{"SharingGroup", "Organisation", "SharingGroupOrg",
/// "SharingGroupServer"}`.
pub fn group_json(node: &Node, group: &Group) -> Result<Value, ApiError> {
    let id = node
        .store
        .local_id(RecordKind::SharingGroup, group.uuid.as_bytes())
        .unwrap_or(0)
        .to_string();
    let creator = match group.creator() {
        Some(uuid) => org_json(node, &uuid)?,
        None => Value::Null,
    };
    let text = |field: &str| {
        group
            .record
            .str_field(field)
            .unwrap_or_default()
            .to_string()
    };
    let mut members = Vec::new();
    let extenders = group.extenders();
    for (index, uuid) in group.members().iter().enumerate() {
        let org = org_json(node, uuid)?;
        members.push(json!({
            "id": (index + 1).to_string(),
            "sharing_group_id": id,
            "org_id": org["id"],
            "extend": extenders.contains(uuid),
            "Organisation": org,
        }));
    }
    Ok(json!({
        "SharingGroup": {
            "id": id,
            "uuid": group.uuid.to_string(),
            "name": text("name"),
            "description": text("description"),
            "releasability": text("releasability"),
            "local": true,
            "roaming": group.record.field("roaming").and_then(Value::as_bool).unwrap_or(false),
            "active": true,
            "org_id": creator.get("id").cloned().unwrap_or(json!("0")),
            "organisation_uuid": group.creator().map(|u| u.to_string()).unwrap_or_default(),
            "created": text("created"),
            "modified": text("modified"),
            "sync_user_id": "0",
        },
        "Organisation": creator,
        "SharingGroupOrg": members,
        "SharingGroupServer": servers_json(node, group.record.field("nodes")),
    }))
}

/// Appends `fields` of group `uuid` in a directory draft.
pub fn write(
    node: &Node,
    caller: &Caller,
    uuid: &Uuid,
    mut fields: Map<String, Value>,
) -> Result<(), ApiError> {
    fields.insert("modified".into(), json!(node.now_seconds().to_string()));
    node.set_directory_record(
        RecordKind::SharingGroup,
        uuid.as_bytes(),
        &fields,
        &caller.actor(),
    )?;
    Ok(())
}

/// The stored form of a uuid list (members, extenders).
pub fn uuid_list(uuids: &[Uuid]) -> Value {
    Value::Array(uuids.iter().map(|u| json!(u.to_string())).collect())
}

/// MISP's `SharingGroupServer` list for the node keys in `nodes`: paired peers with their
/// server id, this node as server 0, other nodes by key alone.
pub fn servers_json(node: &Node, nodes: Option<&Value>) -> Value {
    let peers = peer::peers(&node.store).unwrap_or_default();
    let keys = nodes.and_then(Value::as_array).cloned().unwrap_or_default();
    let out: Vec<Value> = keys
        .iter()
        .filter_map(Value::as_str)
        .map(|hex| {
            let own = node.origin().to_string() == hex;
            let paired = peers.iter().find(|peer| peer.key.to_string() == hex);
            let (id, name, url) = match (own, paired) {
                (true, _) => ("0".to_string(), "Local instance".to_string(), String::new()),
                (false, Some(peer)) => (
                    peer.id.to_string(),
                    peer.org_name.clone(),
                    peer.endpoint.clone(),
                ),
                (false, None) => ("".to_string(), String::new(), String::new()),
            };
            json!({
                "server_id": id,
                "all_orgs": false,
                "Server": {"id": id, "name": name, "url": url, "node_key": hex},
            })
        })
        .collect();
    Value::Array(out)
}
