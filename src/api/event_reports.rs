//! `/eventReports/…`: an event's reports (named markdown documents) — add, view, edit, delete
//! (soft, or erased with `{"hard": 1}` or `/eventReports/delete/{id}/1`) and the index (every
//! report the caller may see, or one event's with `event_id:N`). A report is seen as an
//! attribute is: its event must be visible, and its own distribution must allow it too
//! ([`crate::api::access::filter_event`]); only the event's organisation changes it. Every
//! change unpublishes the event and bumps its timestamp, as MISP does.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

use super::access::{editable_event, event_access, event_item, EventAccess};
use super::auth::Caller;
use super::error::ApiError;
use super::events::append_to_event;
use super::events::render::event_json_with;
use super::request::{flag_field, parse_ref, require_new, JsonBody};
use super::sharing_groups::group::name_by_uuid;
use super::{ApiState, Call};
use crate::change::{self, Visibility};
use crate::model::EventReport;
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::read::EventOptions;
use crate::view::{Record, Table, ViewRead};

/// The routes of `/eventReports/…`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/eventReports/add/{event}", post(add))
        .route("/eventReports/view/{id}", get(view))
        .route("/eventReports/edit/{id}", post(edit))
        .route("/eventReports/delete/{id}", post(delete))
        .route("/eventReports/delete/{id}/{hard}", post(delete_hard_path))
        .route("/eventReports/index", get(index))
        .route("/eventReports/index/{*filters}", get(index_filtered))
}

/// MISP's message for a report that does not exist or is not visible.
const INVALID_REPORT: &str = "Invalid report.";
/// MISP's name for a refused report add.
const NOT_ADDED: &str = "Could not add EventReport";
/// MISP's name for a refused report edit.
const NOT_EDITED: &str = "Could not edit EventReport";
/// The fields an edit may change (MISP ignores the id, uuid, event and `deleted` sent, and
/// stamps the edit with its own time).
const EDITABLE: [&str; 4] = ["name", "content", "distribution", "sharing_group_uuid"];

/// A report the caller may see.
struct Found {
    uuid: Uuid,
    record: Record,
    event: EventAccess,
    /// The visibility of entries about the report (its own, or its event's when it inherits).
    visibility: Visibility,
    /// `{"EventReport": …}` as the caller sees it.
    body: Value,
}

/// The report named by `text` (id or uuid), deleted or not, if the caller may see it and its
/// event, else MISP's 404.
fn find(node: &Node, caller: &Caller, text: &str) -> Result<Found, ApiError> {
    let missing = || ApiError::not_found(INVALID_REPORT);
    let uuid = parse_ref(text)
        .and_then(|reference| reference.resolve(node, RecordKind::EventReport))
        .ok_or_else(missing)?;
    let item = event_item(node, caller, RecordKind::EventReport, &uuid)?.ok_or_else(missing)?;
    // The report's own distribution decides too, as rendering applies it.
    let body = report_body(node, caller, &item.access, &uuid)?;
    Ok(Found {
        uuid,
        record: item.record,
        event: item.access,
        visibility: item.visibility,
        body,
    })
}

/// The reports of `event` as the caller sees them (MISP JSON, with `id` and `event_id`),
/// soft-deleted ones only with `include_deleted`.
fn reports_of(
    node: &Node,
    caller: &Caller,
    event: &EventAccess,
    include_deleted: bool,
) -> Result<Vec<Value>, ApiError> {
    let options = EventOptions {
        include_deleted,
        correlation_max: node.config.views.correlation_max,
        correlations: false,
        // Only the reports are wanted: no attribute is rendered (objects still are).
        only_attributes: Some(BTreeSet::new()),
    };
    let mut json = event_json_with(node, caller, event, options, false)?;
    match json.pointer_mut("/Event/EventReport").map(Value::take) {
        Some(Value::Array(reports)) => Ok(reports),
        _ => Ok(Vec::new()),
    }
}

/// `{"EventReport": …}` for report `uuid` of `event` as the caller now sees it (deleted or
/// not), or MISP's 404 when the caller may not see it.
fn report_body(
    node: &Node,
    caller: &Caller,
    event: &EventAccess,
    uuid: &Uuid,
) -> Result<Value, ApiError> {
    let uuid = uuid.to_string();
    let report = reports_of(node, caller, event, true)?
        .into_iter()
        .find(|report| report.get("uuid").and_then(Value::as_str) == Some(uuid.as_str()))
        .ok_or_else(|| ApiError::not_found(INVALID_REPORT))?;
    Ok(json!({ "EventReport": report }))
}

/// Appends `report` (new, or replacing the stored fields) to `event`, in the entries of its
/// own visibility (5 inherits the event's), with the event's unpublish.
fn write(
    node: &Node,
    caller: &Caller,
    event: &EventAccess,
    report: &EventReport,
) -> Result<(), ApiError> {
    let visibility =
        Visibility::new(report.distribution, report.sharing_group_uuid).within(event.visibility);
    let op = change::record_op(
        RecordKind::EventReport,
        report.uuid.as_bytes(),
        None,
        &report.fields(),
    );
    append_to_event(node, caller, event, visibility, vec![op])
}

/// `POST /eventReports/add/{event}` with `{"EventReport": {"name", "content", "distribution",
/// "sharing_group_id"}}` or the bare report: answers `{"EventReport": …}`.
pub async fn add(
    Call { state, caller }: Call,
    Path(event_ref): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut fields = body.object("EventReport");
    state
        .reply(move |node| {
            // MISP looks the event up first: a bad event reference is 404 whatever the body.
            let event = editable_event(node, &caller, &event_ref)?;
            name_by_uuid(node, &caller, &mut fields, StatusCode::FORBIDDEN)?;
            let mut report = EventReport::from_json(&Value::Object(fields))
                .map_err(|error| ApiError::model(NOT_ADDED, &error))?;
            report.timestamp = Some(report.timestamp.unwrap_or_else(|| node.now_seconds()));
            require_new(
                node,
                RecordKind::EventReport,
                &report.uuid,
                (NOT_ADDED, "uuid"),
                "An event report with this uuid already exists.",
            )?;
            write(node, &caller, &event, &report)?;
            report_body(node, &caller, &event, &report.uuid)
        })
        .await
}

/// `GET /eventReports/view/{id}` (and HEAD): `{"EventReport": …}`, soft-deleted ones too.
pub async fn view(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| find(node, &caller, &id).map(|found| found.body))
        .await
}

/// `POST /eventReports/edit/{id}`: the body's name, content, distribution and sharing group
/// replace the report's; the event's organisation only.
pub async fn edit(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut changes = body.object("EventReport");
    state
        .reply(move |node| {
            let found = find(node, &caller, &id)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            name_by_uuid(node, &caller, &mut changes, StatusCode::FORBIDDEN)?;
            let mut merged: Map<String, Value> = found.record.values();
            for field in EDITABLE {
                if let Some(value) = changes.get(field) {
                    merged.insert(field.into(), value.clone());
                }
            }
            merged.insert("uuid".into(), json!(found.uuid.to_string()));
            merged.insert("timestamp".into(), json!(node.now_seconds()));
            let report = EventReport::from_json(&Value::Object(merged))
                .map_err(|error| ApiError::model(NOT_EDITED, &error))?;
            write(node, &caller, &event, &report)?;
            report_body(node, &caller, &event, &found.uuid)
        })
        .await
}

/// `POST /eventReports/delete/{id}`: soft delete (`deleted` set), or erased with
/// `{"hard": 1}`.
pub async fn delete(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let hard = flag_field(&body.object("EventReport"), "hard");
    delete_report(state, caller, id, hard).await
}

/// `POST /eventReports/delete/{id}/{hard}` (MISP's `hard` path argument).
pub async fn delete_hard_path(
    Call { state, caller }: Call,
    Path((id, hard)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let hard = matches!(hard.as_str(), "1" | "true");
    delete_report(state, caller, id, hard).await
}

/// Deletes the report named by `id`, answering as MISP does: `Event Report {id} soft
/// deleted` (or `hard`) with the url `/event_reports/delete/{id}`.
async fn delete_report(
    state: ApiState,
    caller: Caller,
    id: String,
    hard: bool,
) -> Result<Json<Value>, ApiError> {
    let kind = if hard { "hard" } else { "soft" };
    let message = format!("Event Report {id} {kind} deleted");
    let url = format!("/event_reports/delete/{id}");
    state
        .blocking(move |node| {
            let found = find(node, &caller, &id)?;
            let event = editable_event(node, &caller, &found.event.uuid.to_string())?;
            let op = change::delete_op(
                RecordKind::EventReport,
                found.uuid.as_bytes(),
                hard,
                node.now_seconds(),
            );
            append_to_event(node, &caller, &event, found.visibility, vec![op])
        })
        .await?;
    Ok(super::saved(&message, &url, None))
}

/// The event an index's filters name (`event_id:N`, N an id or uuid), if any; other filters are refused rather than ignored, since answering
/// without them would list more than was asked.
fn event_filter(filters: &str) -> Result<Option<String>, ApiError> {
    let mut event = None;
    for part in filters.split('/').filter(|part| !part.is_empty()) {
        match part.split_once(':') {
            Some(("event_id", value)) => event = Some(value.to_string()),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Unsupported filter '{part}': eventReports/index reads only event_id:N."
                )))
            }
        }
    }
    Ok(event)
}

/// `{"EventReport": …}` for every report that is not deleted of the events the caller may see
/// (only event `event`'s when named; none when it is not visible), in id order.
fn index_lines(
    node: &Node,
    caller: &Caller,
    event: Option<String>,
) -> Result<Vec<Value>, ApiError> {
    let uuids = match event {
        Some(text) => parse_ref(&text)
            .and_then(|reference| reference.resolve(node, RecordKind::Event))
            .into_iter()
            .collect(),
        // Only the events that hold a report are read: one scan of the reports.
        None => {
            let prefix = [RecordKind::EventReport as u8];
            let mut events = BTreeSet::new();
            for (_, bytes) in node.store.views().scan(Table::Records, &prefix)? {
                events.extend(Record::decode(&bytes)?.event);
            }
            events.into_iter().collect::<Vec<_>>()
        }
    };
    let mut reports = Vec::new();
    for uuid in uuids {
        if let Some(access) = event_access(node, caller, &uuid)? {
            reports.extend(reports_of(node, caller, &access, false)?);
        }
    }
    let id = |report: &Value| {
        let text = report.get("id").and_then(Value::as_str).unwrap_or_default();
        text.parse::<u64>().unwrap_or(0)
    };
    reports.sort_by_key(id);
    Ok(reports
        .into_iter()
        .map(|report| json!({ "EventReport": report }))
        .collect())
}

/// `GET /eventReports/index`: every report the caller may see, as MISP's bare list.
pub async fn index(Call { state, caller }: Call) -> Result<Json<Vec<Value>>, ApiError> {
    state
        .reply(move |node| index_lines(node, &caller, None))
        .await
}

/// `GET /eventReports/index/event_id:{event}`: the reports of one event.
pub async fn index_filtered(
    Call { state, caller }: Call,
    Path(filters): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let event = event_filter(&filters)?;
    state
        .reply(move |node| index_lines(node, &caller, event))
        .await
}

#[cfg(test)]
mod tests {
    use super::event_filter;

    #[test]
    fn the_index_reads_the_event_filter_and_refuses_others() {
        assert_eq!(event_filter("event_id:7"), Ok(Some("7".to_string())));
        assert_eq!(event_filter(""), Ok(None));
        let refused = event_filter("event_id:7/context:deleted").expect_err("not supported");
        assert_eq!(refused.status, axum::http::StatusCode::BAD_REQUEST);
    }
}
