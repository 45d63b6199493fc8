//! `/tags/attachTagToObject` and `/tags/removeTagFromObject`: tags on events, attributes and
//! objects, named by uuid. Global tags need the owner organisation; local tags (never sent to
//! peers) may be set by any organisation that sees the event.

use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::definitions::{INVALID_TAG, TAG_NAME_BYTES_MAX};
use crate::api::access::{self, event_access, event_item, Action, EventAccess};
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::request::{flag_field, parse_ref, text_field, JsonBody, Ref};
use crate::api::taxonomies::{check_exclusive, TAG_NOT_ATTACHED};
use crate::api::Call;
use crate::change::{self, Visibility};
use crate::node::Node;
use crate::proto::{self, RecordKind};
use crate::view::{read, tag_link_key, Table, TagLinkState, ViewRead};

/// MISP's message for a tag or target that cannot be found.
const INVALID_TARGET: &str = "Invalid Target.";

/// A tag target: its event and the visibility of entries that change it.
struct Target {
    event: EventAccess,
    visibility: Visibility,
}

/// The event, attribute or object `uuid`, if the caller may see it.
fn target(node: &Node, caller: &Caller, uuid: &Uuid) -> Result<Target, ApiError> {
    if let Some(event) = event_access(node, caller, uuid)? {
        return Ok(Target {
            visibility: event.visibility,
            event,
        });
    }
    for kind in [RecordKind::Attribute, RecordKind::Object] {
        let item = read::record(&node.store.views(), kind, uuid.as_bytes())?;
        if item.is_some_and(|record| record.is_live()) {
            let item = event_item(node, caller, kind, uuid)?
                .ok_or_else(|| ApiError::not_found(INVALID_TARGET))?;
            return Ok(Target {
                event: item.access,
                visibility: item.visibility,
            });
        }
    }
    Err(ApiError::not_found(INVALID_TARGET))
}

/// The target and tag name of a request body `{"uuid", "tag"}`; the tag may be a name or a
/// local tag id.
fn parse_request(node: &Node, body: &Map<String, Value>) -> Result<(Uuid, String), ApiError> {
    let uuid = text_field(body, "uuid")
        .and_then(|text| Uuid::parse_str(text.trim()).ok())
        .ok_or_else(|| ApiError::not_found(INVALID_TARGET))?;
    let tag = text_field(body, "tag")
        .map(|text| text.trim().to_string())
        .filter(|name| !name.is_empty() && name.len() <= TAG_NAME_BYTES_MAX)
        .ok_or_else(|| ApiError::not_found(INVALID_TAG))?;
    let name = match parse_ref(&tag) {
        Some(Ref::Id(id)) => node
            .store
            .key_of_id(RecordKind::Tag, id)
            .and_then(|key| String::from_utf8(key).ok())
            .ok_or_else(|| ApiError::not_found(INVALID_TAG))?,
        _ => tag,
    };
    Ok((uuid, name))
}

/// Checks that the caller may change tags of `local`ity on the target ([`Action::Tag`]).
fn check_permission(caller: &Caller, target: &Target, local: bool) -> Result<(), ApiError> {
    access::require(caller, Action::Write)?;
    access::require(
        caller,
        Action::Tag {
            event: &target.event,
            local,
        },
    )
}

/// Appends the tag ops and, for global tags, the event's unpublish.
fn append(
    node: &Node,
    caller: &Caller,
    target: &Target,
    ops: Vec<proto::Op>,
    local: bool,
) -> Result<(), ApiError> {
    let actor = caller.actor();
    let event = target.event.uuid;
    let drafts = if local {
        change::event_ops_drafts(event, target.visibility, ops, &actor)
    } else {
        change::event_change_drafts(
            event,
            target.visibility,
            ops,
            target.event.visibility,
            node.now_seconds(),
            &actor,
        )
    };
    node.append(drafts)?;
    Ok(())
}

/// Attaches tag `name` to the event, attribute or object `uuid` for `caller`, unless an
/// exclusive taxonomy already has a tag on it.
pub fn attach_tag(
    node: &Node,
    caller: &Caller,
    uuid: &Uuid,
    name: &str,
    local: bool,
) -> Result<(), ApiError> {
    let target = target(node, caller, uuid)?;
    check_permission(caller, &target, local)?;
    check_exclusive(node, uuid, &[name.to_string()], TAG_NOT_ATTACHED)?;
    let ops = vec![change::tag_link_op(uuid, name, true, local)];
    append(node, caller, &target, ops, local)
}

/// `POST /tags/attachTagToObject` with `{"uuid", "tag", "local"}`.
pub async fn attach(Call { state, caller }: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    let body = body.object("Tag");
    let local = flag_field(&body, "local");
    state
        .blocking(move |node| {
            let (uuid, name) = parse_request(node, &body)?;
            attach_tag(node, &caller, &uuid, &name, local)
        })
        .await?;
    Ok(Json(json!({
        "saved": true,
        "success": "Tag attached.",
        "check_publish": !local,
    })))
}

/// `POST /tags/removeTagFromObject` with `{"uuid", "tag"}`.
pub async fn detach(Call { state, caller }: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    let body = body.object("Tag");
    let local = state
        .blocking(move |node| {
            let (uuid, name) = parse_request(node, &body)?;
            let target = target(node, &caller, &uuid)?;
            // The caller's organisation's own local tag of that name goes first; then the
            // global one.
            let attached = |local_org: Option<&Uuid>| -> Result<bool, ApiError> {
                let key = tag_link_key(&uuid, &name, local_org);
                Ok(node
                    .store
                    .views()
                    .get(Table::TagLinks, &key)?
                    .and_then(|bytes| serde_json::from_slice::<TagLinkState>(&bytes).ok())
                    .is_some_and(|link| link.attached))
            };
            let local = if attached(Some(&caller.org.uuid))? {
                true
            } else if attached(None)? {
                false
            } else {
                return Err(ApiError::new(StatusCode::NOT_FOUND, INVALID_TAG));
            };
            check_permission(&caller, &target, local)?;
            let ops = vec![change::tag_link_op(&uuid, &name, false, local)];
            append(node, &caller, &target, ops, local)?;
            Ok(local)
        })
        .await?;
    Ok(Json(json!({
        "saved": true,
        "success": "Tag removed.",
        "check_publish": !local,
    })))
}
