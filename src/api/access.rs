//! The one place that answers "may this caller do this?" (SPEC §6.1 for users of one node,
//! §4.2 for who changes what). [`allows`] answers for an [`Action`], keyed by what the caller
//! asks to do and, where the answer depends on it, the record it asks about; [`require`] turns
//! a refusal into MISP's 403. Every handler asks these, never the role flags directly.
//!
//! Who sees what: a user sees their own organisation's events always, other organisations' by
//! distribution (0 owner only; 1–3 every organisation with users here; 4 the sharing group's
//! members); site admins see everything ([`event_access`], [`filter_event`],
//! [`attribute_visible`]). Only the owner organisation changes an event (SPEC §4.2): a site
//! admin of another organisation would sign an entry that every peer refuses.

use serde_json::Value;
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, INVALID_EVENT};
use super::request::{parse_ref, truthy};
use crate::change::{self, Distribution, Visibility};
use crate::node::Node;
use crate::policy::visibility::{item_entry_visibility, item_visibility, record_visibility};
use crate::proto::RecordKind;
use crate::view::{read, Record};

/// MISP's role id of read-only users, the auditor role.
const ROLE_AUDITOR: u8 = 6;

/// What a caller asks to do, with the facts about the record the answer depends on.
#[derive(Clone, Copy, Debug)]
pub enum Action<'a> {
    /// Create or change anything (events, attributes, objects, tags, sightings).
    Write,
    /// Publish an event.
    Publish,
    /// Name another organisation as an event's creator (`Orgc`), as a peer's sync user does.
    SetCreator,
    /// Change the event `access` names: its organisation owns it.
    ChangeEvent(&'a EventAccess),
    /// Attach or detach a tag on an item of the event `access` names: a global tag changes the
    /// owner's data; a local one (never sent to peers) anyone who sees the event may set.
    Tag {
        /// The event.
        event: &'a EventAccess,
        /// Whether the tag is local.
        local: bool,
    },
    /// Delete a sighting made by organisation `sighter`: the sighting organisation's users, or
    /// a site admin (who also need [`Action::Write`], and [`Action::ChangeEvent`] on the
    /// event, whose attribute record carries the deletion mark).
    DeleteSighting {
        /// The organisation that made the sighting.
        sighter: Option<Uuid>,
    },
    /// Define, change or delete tag definitions (MISP's tag editor permission).
    EditTags,
    /// Administer the node: organisations, servers, taxonomies, identity.
    AdministerNode,
    /// Read checkpoints, proofs and alerts (site admins and the auditor role).
    Audit,
    /// Administer users at all (site admins and org admins).
    AdministerUsers,
    /// Administer the users of organisation `org`.
    ManageUsersOf(&'a Uuid),
    /// Grant `role` to a user.
    GrantRole(Role),
    /// See a sharing group with owner `owner` and members `members`.
    SeeGroup {
        /// The organisation that owns the group.
        owner: Option<Uuid>,
        /// Its member organisations.
        members: &'a [Uuid],
    },
    /// Create a sharing group: users with the sharing group permission.
    CreateGroup,
    /// Change, delete, remove members from or add `extend` members to the group owned by
    /// `owner`: its owner's users with the sharing group permission (peers refuse anyone
    /// else's changes, site admins' included).
    ChangeGroup {
        /// The organisation that owns the group.
        owner: Option<Uuid>,
    },
    /// Add organisations or servers to a group: its managers, and users with the sharing group
    /// permission of a member organisation the owner marked `extend`.
    ExtendGroup {
        /// The organisation that owns the group.
        owner: Option<Uuid>,
        /// The members marked `extend`.
        extenders: &'a [Uuid],
    },
}

/// Whether `caller` may do `action`.
pub fn allows(caller: &Caller, action: Action) -> bool {
    let role = caller.role;
    let own = |org: Option<Uuid>| org == Some(caller.org.uuid);
    // MISP's sharing group permission: site admins, org admins and sync users.
    let manages_groups = role.site_admin || role.org_admin || role.sync;
    match action {
        Action::Write => role.write || role.site_admin,
        Action::Publish => role.publish,
        Action::SetCreator => role.site_admin || role.sync,
        Action::ChangeEvent(event) => event.editable,
        Action::Tag { event, local } => local || event.editable,
        Action::DeleteSighting { sighter } => role.site_admin || own(sighter),
        Action::EditTags => role.site_admin || role.org_admin || role.sync,
        Action::AdministerNode => role.site_admin,
        Action::Audit => role.site_admin || role.id == ROLE_AUDITOR,
        Action::AdministerUsers => role.site_admin || role.org_admin,
        Action::ManageUsersOf(org) => {
            role.site_admin || (role.org_admin && caller.org.uuid == *org)
        }
        Action::GrantRole(granted) => !granted.site_admin || role.site_admin,
        Action::SeeGroup { owner, members } => {
            role.site_admin || own(owner) || members.contains(&caller.org.uuid)
        }
        Action::CreateGroup => manages_groups,
        Action::ChangeGroup { owner } => manages_groups && own(owner),
        Action::ExtendGroup { owner, extenders } => {
            manages_groups && (extenders.contains(&caller.org.uuid) || own(owner))
        }
    }
}

/// [`allows`], or MISP's 403.
pub fn require(caller: &Caller, action: Action) -> Result<(), ApiError> {
    if allows(caller, action) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// An event the caller may see.
#[derive(Clone, Debug)]
pub struct EventAccess {
    /// The event uuid.
    pub uuid: Uuid,
    /// Its local id.
    pub id: u64,
    /// Its view record.
    pub record: Record,
    /// The visibility entries about the event carry: [`change::INHERIT`], so that the
    /// event's reach when an entry is released decides, not its reach when it was written.
    pub visibility: Visibility,
    /// Whether the caller may change it: its organisation owns the event.
    pub editable: bool,
}

/// Whether `org` is a member of sharing group `group`: listed in its record's
/// `SharingGroupOrg[].Organisation.uuid`, `SharingGroupOrg[].org_uuid` or `organisations`
/// (the uuid list [`super::sharing_groups`] writes), unless the group is deleted.
pub fn is_member(node: &Node, group: &Uuid, org: &Uuid) -> Result<bool, ApiError> {
    let Some(record) = read::record(
        &node.store.views(),
        RecordKind::SharingGroup,
        group.as_bytes(),
    )?
    else {
        return Ok(false);
    };
    // A deleted group (the API sets `deleted`) has no members left.
    if record.field("deleted").and_then(Value::as_bool) == Some(true) {
        return Ok(false);
    }
    let org = org.to_string();
    let listed = |list: Option<&Value>| {
        list.and_then(Value::as_array).is_some_and(|members| {
            members.iter().any(|member| {
                let uuid = member
                    .pointer("/Organisation/uuid")
                    .or_else(|| member.get("org_uuid"))
                    .or_else(|| member.get("uuid"))
                    .or(Some(member));
                uuid.and_then(Value::as_str) == Some(org.as_str())
            })
        })
    };
    Ok(listed(record.field("SharingGroupOrg")) || listed(record.field("organisations")))
}

/// Whether `caller` may see an item with `visibility` in an event owned by `owner` (level 5
/// inherits the event's).
pub fn may_see(
    node: &Node,
    caller: &Caller,
    owner: Option<Uuid>,
    visibility: Visibility,
) -> Result<bool, ApiError> {
    if caller.role.site_admin || owner == Some(caller.org.uuid) {
        return Ok(true);
    }
    let distribution = visibility.distribution;
    // Level 5 inherits the event's, which the caller was already checked against.
    if distribution.community_wide() || distribution.inherits() {
        return Ok(true);
    }
    match (distribution, visibility.sharing_group) {
        (Distribution::SHARING_GROUP, Some(group)) => is_member(node, &group, &caller.org.uuid),
        _ => Ok(false),
    }
}

/// The event `uuid` if it exists and `caller` may see it.
pub fn event_access(
    node: &Node,
    caller: &Caller,
    uuid: &Uuid,
) -> Result<Option<EventAccess>, ApiError> {
    let Some(record) = read::record(&node.store.views(), RecordKind::Event, uuid.as_bytes())?
    else {
        return Ok(None);
    };
    if !record.is_live() {
        return Ok(None);
    }
    let owner = record.owner.as_ref().map(|(org, _)| *org);
    let visibility = record_visibility(&record);
    if !may_see(node, caller, owner, visibility)? {
        return Ok(None);
    }
    Ok(Some(EventAccess {
        uuid: *uuid,
        id: node
            .store
            .local_id(RecordKind::Event, uuid.as_bytes())
            .unwrap_or(0),
        editable: owner == Some(caller.org.uuid),
        visibility: change::INHERIT,
        record,
    }))
}

/// Whether an item (attribute, object, report) with MISP fields `distribution` and
/// `sharing_group_uuid` is visible to `caller` inside a visible event owned by someone else:
/// its own distribution must allow it too (5 inherits).
fn item_visible_by(
    node: &Node,
    caller: &Caller,
    distribution: Option<&Value>,
    sharing_group_uuid: Option<&Value>,
) -> Result<bool, ApiError> {
    let visibility = item_visibility(distribution, sharing_group_uuid);
    if visibility.distribution.inherits() {
        return Ok(true);
    }
    may_see(node, caller, None, visibility)
}

/// [`item_visible_by`] of an item as MISP JSON.
fn item_visible(node: &Node, caller: &Caller, item: &Value) -> Result<bool, ApiError> {
    let field = |name: &str| item.get(name);
    item_visible_by(
        node,
        caller,
        field("distribution"),
        field("sharing_group_uuid"),
    )
}

/// Whether `caller` may see the live attribute `record` of the visible event `access`: owners
/// and site admins see all of it; others need the attribute's own distribution and, when it
/// belongs to an object, the object's to allow it too, as [`filter_event`] decides. An object
/// this node does not hold hides its attributes.
pub fn attribute_visible(
    node: &Node,
    caller: &Caller,
    access: &EventAccess,
    record: &Record,
) -> Result<bool, ApiError> {
    if access.editable || caller.role.site_admin {
        return Ok(true);
    }
    let field = |name: &str| record.field(name);
    if !item_visible_by(
        node,
        caller,
        field("distribution"),
        field("sharing_group_uuid"),
    )? {
        return Ok(false);
    }
    let Some(object) = record.parent() else {
        return Ok(true);
    };
    match read::record(&node.store.views(), RecordKind::Object, object.as_bytes())? {
        Some(object) if object.is_live() => {
            let field = |name: &str| object.field(name);
            item_visible_by(
                node,
                caller,
                field("distribution"),
                field("sharing_group_uuid"),
            )
        }
        _ => Ok(false),
    }
}

/// The attribute `attribute` of event `event`, found by correlation, if it is live and
/// `caller` may see it and its event.
pub fn correlated_attribute(
    node: &Node,
    caller: &Caller,
    attribute: &Uuid,
    event: &Uuid,
) -> Result<Option<(EventAccess, Record)>, ApiError> {
    let Some(access) = event_access(node, caller, event)? else {
        return Ok(None);
    };
    let Some(record) = read::record(
        &node.store.views(),
        RecordKind::Attribute,
        attribute.as_bytes(),
    )?
    .filter(Record::is_live) else {
        return Ok(None);
    };
    if record.field("deleted").is_some_and(truthy)
        || !attribute_visible(node, caller, &access, &record)?
    {
        return Ok(None);
    }
    Ok(Some((access, record)))
}

/// Removes from an event's MISP JSON (`{"Event": …}`) the attributes, objects and reports the
/// caller may not see. Owners see all of their event's contents.
pub fn filter_event(
    node: &Node,
    caller: &Caller,
    access: &EventAccess,
    event: &mut Value,
) -> Result<(), ApiError> {
    if access.editable {
        return Ok(());
    }
    for list in ["Attribute", "Object", "EventReport"] {
        if let Some(items) = event
            .pointer_mut(&format!("/Event/{list}"))
            .and_then(Value::as_array_mut)
        {
            let mut kept = Vec::with_capacity(items.len());
            for mut item in std::mem::take(items) {
                if !item_visible(node, caller, &item)? {
                    continue;
                }
                if let Some(inner) = item.get_mut("Attribute").and_then(Value::as_array_mut) {
                    let mut visible = Vec::new();
                    for attribute in std::mem::take(inner) {
                        if item_visible(node, caller, &attribute)? {
                            visible.push(attribute);
                        }
                    }
                    *inner = visible;
                }
                kept.push(item);
            }
            *items = kept;
        }
    }
    Ok(())
}

/// A live record of an event (attribute, object, reference) the caller may see, with its
/// event's access and the visibility its entries carry (its own, or its event's when it
/// inherits).
pub struct VisibleItem {
    /// The record's uuid.
    pub uuid: Uuid,
    /// The record.
    pub record: Record,
    /// Its event.
    pub access: EventAccess,
    /// The visibility of entries about the record.
    pub visibility: Visibility,
}

/// The live record `kind`/`uuid` of an event, if that event is visible to `caller`: the one
/// lookup from a record to its event's access and the visibility of the entries that change
/// it (level 5 inherits the event's, [`Visibility::within`]). Whether the item's own
/// distribution lets the caller see it is [`attribute_visible`]'s question.
pub fn event_item(
    node: &Node,
    caller: &Caller,
    kind: RecordKind,
    uuid: &Uuid,
) -> Result<Option<VisibleItem>, ApiError> {
    let Some(record) =
        read::record(&node.store.views(), kind, uuid.as_bytes())?.filter(Record::is_live)
    else {
        return Ok(None);
    };
    let Some(event) = record.event else {
        return Ok(None);
    };
    let Some(access) = event_access(node, caller, &event)? else {
        return Ok(None);
    };
    let visibility = item_entry_visibility(&record, access.visibility);
    Ok(Some(VisibleItem {
        uuid: *uuid,
        record,
        access,
        visibility,
    }))
}

/// The attribute `uuid` if it is live and `caller` may see it and its event.
pub fn visible_attribute(
    node: &Node,
    caller: &Caller,
    uuid: &Uuid,
) -> Result<Option<VisibleItem>, ApiError> {
    let Some(item) = event_item(node, caller, RecordKind::Attribute, uuid)? else {
        return Ok(None);
    };
    if !attribute_visible(node, caller, &item.access, &item.record)? {
        return Ok(None);
    }
    Ok(Some(item))
}

/// The visible event named by `text` (id or uuid), or MISP's 404.
pub fn visible_event(node: &Node, caller: &Caller, text: &str) -> Result<EventAccess, ApiError> {
    let uuid = parse_ref(text)
        .and_then(|reference| reference.resolve(node, RecordKind::Event))
        .ok_or_else(|| ApiError::not_found(INVALID_EVENT))?;
    event_access(node, caller, &uuid)?.ok_or_else(|| ApiError::not_found(INVALID_EVENT))
}

/// The visible event named by `text` that the caller may change ([`Action::ChangeEvent`]).
pub fn editable_event(node: &Node, caller: &Caller, text: &str) -> Result<EventAccess, ApiError> {
    require(caller, Action::Write)?;
    let access = visible_event(node, caller, text)?;
    require(caller, Action::ChangeEvent(&access))?;
    Ok(access)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Organisation;
    use crate::node::User;

    fn caller(role_id: u8, org: u128) -> Caller {
        let org = Uuid::from_u128(org);
        Caller {
            user: User {
                email: format!("user{role_id}@org{org}"),
                org,
                role: role_id,
                key_hash: String::new(),
            },
            org: Organisation {
                uuid: org,
                name: String::new(),
            },
            role: Role::by_id(role_id).unwrap(),
            id: 1,
        }
    }

    #[test]
    fn a_site_admin_of_another_organisation_does_not_change_its_sharing_group() {
        let owner = Some(Uuid::from_u128(1));
        let site_admin_elsewhere = caller(1, 2);
        assert!(!allows(
            &site_admin_elsewhere,
            Action::ChangeGroup { owner }
        ));
        assert!(allows(&site_admin_elsewhere, Action::CreateGroup));
        // A group whose owner is unknown is nobody's to change.
        assert!(!allows(&caller(2, 1), Action::ChangeGroup { owner: None }));
        assert!(allows(&caller(2, 1), Action::ChangeGroup { owner }));
        // Members marked extend may add to it; plain users never.
        let extenders = [Uuid::from_u128(3)];
        assert!(allows(
            &caller(2, 3),
            Action::ExtendGroup {
                owner,
                extenders: &extenders
            }
        ));
        assert!(!allows(
            &caller(3, 3),
            Action::ExtendGroup {
                owner,
                extenders: &extenders
            }
        ));
    }

    #[test]
    fn an_org_admin_manages_only_their_own_users_and_grants_no_site_admin() {
        let org_admin = caller(2, 1);
        assert!(allows(
            &org_admin,
            Action::ManageUsersOf(&Uuid::from_u128(1))
        ));
        assert!(!allows(
            &org_admin,
            Action::ManageUsersOf(&Uuid::from_u128(2))
        ));
        assert!(!allows(&org_admin, Action::GrantRole(ROLES_SITE_ADMIN)));
        assert!(allows(&caller(1, 1), Action::GrantRole(ROLES_SITE_ADMIN)));
        assert!(!allows(&org_admin, Action::AdministerNode));
        assert!(!allows(&caller(3, 1), Action::AdministerUsers));
    }

    #[test]
    fn read_only_users_write_nothing_and_audit() {
        let auditor = caller(6, 1);
        assert!(!allows(&auditor, Action::Write));
        assert!(!allows(&auditor, Action::EditTags));
        assert!(allows(&auditor, Action::Audit));
        assert!(!allows(&caller(3, 1), Action::Audit));
        assert!(!allows(&caller(3, 1), Action::Publish));
        assert!(allows(&caller(4, 1), Action::Publish));
    }

    /// MISP's site admin role.
    const ROLES_SITE_ADMIN: Role = crate::api::auth::ROLES[0];
}
