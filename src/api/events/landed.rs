//! Level 2 ("connected communities") lands as level 1 on the receiving node (SPEC §6.1): an
//! event of another organisation received at level 2 is shown, with its items at level 2, as
//! level 1. The signed entries keep the origin's level; only the rendering changes (the
//! release and hop rules already treat a relayed level 2 as going no further).

use serde_json::Value;
use uuid::Uuid;

use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::{read, Stamp};

/// Level 2 as stored.
const CONNECTED: &str = "2";
/// Level 1, what level 2 becomes one hop away.
const COMMUNITY: &str = "1";

/// Whether event `uuid` came from elsewhere: its owning entry's origin is neither this node
/// nor a node of this node's organisation (SPEC §6.4's relay test, seen from the holder).
fn is_received(node: &Node, uuid: &Uuid) -> bool {
    let record = read::record(&node.store.views(), RecordKind::Event, uuid.as_bytes());
    let Ok(Some(record)) = record else {
        return false;
    };
    match &record.owner {
        Some((org, Stamp(_, origin, _))) => {
            *org != node.org.uuid && *origin != node.origin().to_string()
        }
        None => false,
    }
}

fn downgrade(fields: &mut Value) {
    if fields.get("distribution").and_then(Value::as_str) == Some(CONNECTED) {
        fields["distribution"] = Value::from(COMMUNITY);
    }
}

/// Shows a received level-2 event's index line (its bare fields) as level 1.
pub fn show_landed_level(node: &Node, uuid: &Uuid, line: &mut Value) {
    if is_received(node, uuid) {
        downgrade(line);
    }
}

/// Shows a received level-2 event `uuid` (`{"Event": …}`) and its level-2 items as level 1
/// when it came from another organisation's node.
pub fn show_landed_levels(node: &Node, uuid: &Uuid, event: &mut Value) {
    let Some(fields) = event.get_mut("Event") else {
        return;
    };
    if !is_received(node, uuid) {
        return;
    }
    downgrade(fields);
    for list in ["Attribute", "Object", "EventReport"] {
        let Some(items) = fields.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for item in items {
            downgrade(item);
            if let Some(inner) = item.get_mut("Attribute").and_then(Value::as_array_mut) {
                inner.iter_mut().for_each(downgrade);
            }
        }
    }
}
