//! The receiver's checks on each entry from a peer (SPEC §7), beyond signature and chain
//! (which decoding and the store do): write authority, event ownership and hop rules.

use serde_json::Value;
use uuid::Uuid;

use super::release::{entry_reach, event_reach, reach};
use crate::log::VerifiedEntry;
use crate::policy::{check_arrival, Party, Reach};
use crate::proto::{op::Op, RecordKind};
use crate::view::{read, ViewRead};

/// Prefix of rejection reasons that are policy violations by the sending peer.
pub const VIOLATION: &str = "policy violation";

/// Checks `entry`, sent by `sender` to `receiver`, against the views `views`.
pub fn check_entry(
    sender: Party,
    receiver: Party,
    entry: &VerifiedEntry,
    views: &dyn ViewRead,
) -> Result<(), String> {
    let kv = |error: crate::view::KvError| error.to_string();
    let acting = entry.acting_org();
    let origin = Party {
        node: entry.origin(),
        org: entry.origin_org(),
    };
    if acting != origin.org && !is_registered_local(views, &acting, &origin.node).map_err(kv)? {
        return Err(format!(
            "write authority: node of org {} acts for org {acting}, which it has not registered",
            origin.org
        ));
    }
    let Some(event) = entry.event() else {
        // Directory data (organisations, tag definitions, sharing groups) is released to
        // every peer by the directory rule; it has no hop limit to check.
        return Ok(());
    };
    let ops = &entry.entry().ops;
    let only_sightings =
        !ops.is_empty() && ops.iter().all(|op| matches!(op.op, Some(Op::Sighting(_))));
    let record = read::record(views, RecordKind::Event, event.as_bytes()).map_err(kv)?;
    if let Some((owner, _)) = record.as_ref().and_then(|record| record.owner.as_ref()) {
        if *owner != acting && !only_sightings {
            return Err(format!(
                "ownership conflict: event {event} is owned by org {owner}; entry acts for org {acting}"
            ));
        }
    }
    // The event's level as held here (the latest write wins, so a revealed old entry is
    // judged by the event's level now); for an event not held yet, or held only in part (a
    // publish revealed before its event's fields), the level the entry itself sets.
    let event_level = match record.filter(|record| record.field("distribution").is_some()) {
        Some(record) => event_reach(views, &record).map_err(kv)?,
        None => stated_event_reach(views, entry, &event)
            .map_err(kv)?
            .unwrap_or(Reach::Inherit),
    };
    let item = entry_reach(views, entry).map_err(kv)?;
    for level in [&event_level, &item] {
        check_arrival(sender, receiver, origin, level)
            .map_err(|violation| format!("{VIOLATION}: {}", violation.reason))?;
    }
    Ok(())
}

/// Whether `org` is a local organisation registered by node `origin` (SPEC §4: a node acts
/// only for its own org and the local orgs it registered): the organisation's record says
/// `local` and that field was last written by `origin`. Another node's registration, or the
/// organisation's own node marking its host organisation local, gives `origin` no authority.
fn is_registered_local(
    views: &dyn ViewRead,
    org: &Uuid,
    origin: &crate::log::OriginKey,
) -> Result<bool, crate::view::KvError> {
    let origin = origin.to_string();
    Ok(
        read::record(views, RecordKind::Organisation, org.as_bytes())?.is_some_and(|record| {
            record.fields.get("local").is_some_and(|(value, stamp)| {
                value.as_bool() == Some(true)
                    && record
                        .stamps
                        .get(*stamp)
                        .is_some_and(|stamp| stamp.1 == origin)
            })
        }),
    )
}

/// The event distribution an entry itself sets, if it sets one.
fn stated_event_reach(
    views: &dyn ViewRead,
    entry: &VerifiedEntry,
    event: &Uuid,
) -> Result<Option<Reach>, crate::view::KvError> {
    for op in &entry.entry().ops {
        let Some(Op::Set(set)) = &op.op else { continue };
        if set.kind != RecordKind::Event as i32 || set.key.as_ref() != event.as_bytes() {
            continue;
        }
        let Ok(fields) = serde_json::from_slice::<Value>(&set.fields_json) else {
            continue;
        };
        let level = fields.get("distribution").and_then(|value| match value {
            Value::String(text) => text.parse::<u32>().ok(),
            other => other.as_u64().map(|n| n as u32),
        });
        if let Some(level) = level {
            let group = fields
                .get("sharing_group_uuid")
                .and_then(Value::as_str)
                .and_then(|text| Uuid::parse_str(text).ok());
            return Ok(Some(reach(views, level, group)?));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::organisation_op;
    use crate::log::{seal, Draft, Head, NodeKey};
    use crate::model::misp::Organisation;
    use crate::proto;
    use crate::view::{apply, MemoryViews};

    fn org(n: u128) -> Organisation {
        Organisation {
            uuid: Uuid::from_u128(n),
            name: format!("Org {n}"),
        }
    }

    /// A directory entry of `key` (a node of `home`) acting for `acting`, registering `org`.
    fn registration(
        key: &NodeKey,
        home: Uuid,
        acting: Uuid,
        org: &Organisation,
        seq_head: &Head,
    ) -> VerifiedEntry {
        let draft = Draft {
            acting_org: acting,
            acting_user: "admin@example.org".into(),
            event: None,
            visibility: proto::Visibility::default(),
            ops: vec![organisation_op(org, true)],
        };
        seal(key, home, seq_head, draft, 1000, [3; 16]).unwrap()
    }

    fn party(key: &NodeKey, org: Uuid) -> Party {
        Party {
            node: key.origin(),
            org,
        }
    }

    #[test]
    fn a_node_acts_only_for_the_local_orgs_it_registered() {
        let (x_node, y_node, hub) = (
            NodeKey::generate(),
            NodeKey::generate(),
            NodeKey::generate(),
        );
        let (x, y, hub_org, member) = (org(1), org(2), org(3), org(4));
        let receiver = party(&NodeKey::generate(), Uuid::from_u128(9));
        let mut views = MemoryViews::new();
        // X's own node marks its host organisation local, and the hub registers a member.
        let x_home = registration(&x_node, x.uuid, x.uuid, &x, &Head::EMPTY);
        let hub_member = registration(&hub, hub_org.uuid, hub_org.uuid, &member, &Head::EMPTY);
        for entry in [&x_home, &hub_member] {
            check_entry(party(&x_node, x.uuid), receiver, entry, &views).unwrap();
            apply(&mut views, entry).unwrap();
        }
        // A node of org Y acting for X: X's own registration gives Y no authority.
        let forged = registration(&y_node, y.uuid, x.uuid, &y, &Head::EMPTY);
        let refused = check_entry(party(&y_node, y.uuid), receiver, &forged, &views);
        assert!(
            refused
                .as_ref()
                .is_err_and(|reason| reason.starts_with("write authority")),
            "{refused:?}"
        );
        // The hub acts for the member it registered.
        let head = Head::after(&hub_member);
        let for_member = registration(&hub, hub_org.uuid, member.uuid, &member, &head);
        check_entry(party(&hub, hub_org.uuid), receiver, &for_member, &views).unwrap();
    }
}
