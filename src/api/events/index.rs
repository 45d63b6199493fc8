//! `/events/index`: the metadata of every event the caller may see.

use axum::Json;
use serde_json::{json, Value};

use super::landed;
use crate::api::access::may_see;
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::request::JsonBody;
use crate::api::Call;
use crate::node::Node;
use crate::policy::visibility::record_visibility;
use crate::proto::RecordKind;
use crate::view::read;

/// The index line of every event the caller may see.
fn index_lines(node: &Node, caller: &Caller) -> Result<Vec<Value>, ApiError> {
    let views = node.store.views();
    let mut out = Vec::new();
    for summary in read::events(&views)? {
        crate::turns::pause_point();
        let Some(record) = read::record(&views, RecordKind::Event, summary.uuid.as_bytes())? else {
            continue;
        };
        let owner = record.owner.as_ref().map(|(org, _)| *org);
        if !may_see(node, caller, owner, record_visibility(&record))? {
            continue;
        }
        let ids = |kind: RecordKind, key: &[u8]| node.store.local_id(kind, key);
        let mut line = record.values();
        let id = ids(RecordKind::Event, summary.uuid.as_bytes()).unwrap_or(0);
        line.insert("id".into(), json!(id.to_string()));
        line.insert(
            "attribute_count".into(),
            json!(summary.attribute_count.to_string()),
        );
        if let Some(owner) = owner {
            let org = read::organisation(&views, &owner, &ids)?;
            line.insert("org_id".into(), org["id"].clone());
            line.insert("Org".into(), org);
        }
        line.insert("EventTag".into(), json!([]));
        let mut line = Value::Object(line);
        landed::show_landed_level(node, &summary.uuid, &mut line);
        out.push(line);
    }
    Ok(out)
}

/// `GET /events/index`: every visible event's metadata, as MISP's bare list.
pub async fn index(Call { state, caller }: Call) -> Result<Json<Vec<Value>>, ApiError> {
    state.reply(move |node| index_lines(node, &caller)).await
}

/// `POST /events/index` (filters are not applied yet; see restSearch).
pub async fn index_post(
    Call { state, caller }: Call,
    _body: JsonBody,
) -> Result<Json<Vec<Value>>, ApiError> {
    index(Call { state, caller }).await
}
