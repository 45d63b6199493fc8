//! Synthetic workloads shared by the tests and the benchmarks (`benches/`): events of many
//! distinct ip-dst attributes and single-op tag drafts.
#![allow(dead_code)]

use prost::bytes::Bytes;
use serde_json::json;
use threatlog::change::Actor;
use threatlog::log::Draft;
use threatlog::model::{Event, ModelError};
use threatlog::proto::{self, op::Op};
use uuid::Uuid;

/// The value of the `n`th synthetic attribute: an address of 10.0.0.0/8, distinct for every
/// `n` below 2^24.
pub fn address(n: usize) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// A synthetic event of `attributes` ip-dst attributes with distinct values.
pub fn synthetic_event(index: usize, attributes: usize) -> Result<Event, ModelError> {
    let values: Vec<serde_json::Value> = (0..attributes)
        .map(|a| {
            json!({
                "type": "ip-dst",
                "value": address(index * attributes + a),
                "comment": "bench",
            })
        })
        .collect();
    let document = json!({"Event": {
        "info": format!("bench event {index}"),
        "date": "2026-01-01",
        "distribution": 1,
        "Tag": [{"name": "tlp:green"}],
        "Attribute": values,
    }});
    Event::from_json(&document)
}

/// A single-op draft attaching (even `index`) or detaching (odd) one of 64 tags to `target`
/// of `event`.
pub fn tag_draft(actor: &Actor, event: Uuid, target: Uuid, index: usize) -> Draft {
    Draft {
        acting_org: actor.org,
        acting_user: actor.user.clone(),
        event: Some(event),
        visibility: proto::Visibility {
            distribution: 1,
            sharing_group: Bytes::new(),
        },
        ops: vec![proto::Op {
            op: Some(Op::Tag(proto::TagLink {
                target: Bytes::copy_from_slice(target.as_bytes()),
                name: format!("bench:tag=\"{}\"", index % 64),
                attached: index.is_multiple_of(2),
                local: false,
            })),
        }],
    }
}
