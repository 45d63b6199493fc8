//! `/events/restSearch` and `/attributes/restSearch` (PyMISP's `search()`): MISP's filter
//! parameters parsed into a [`Query`], answered by [`search::search`] over the views, then
//! cut to what the caller may see ([`access`](super::access), exactly as
//! `events/view`), paged, and written as JSON, CSV or text.

pub mod request;
mod rows;

use axum::extract::{Path, Query as UrlQuery};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

use crate::api::access::{attribute_visible, event_access, EventAccess};
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::events::render::{event_json, event_json_with};
use crate::api::request::JsonBody;
use crate::api::{ApiState, Call};
use crate::node::Node;
use crate::proto::RecordKind;
use crate::view::read::{self, EventOptions};
use crate::view::search::{self, Deleted, Hit, Query, Scope};
use crate::view::Record;
use uuid::Uuid;

pub(crate) use request::IndexRequest;
use request::{parse, Format, Request};
use rows::{attribute_json, attribute_rows, csv, drop_local_tags, plain};

/// A visible event hit with the caller's view of the event.
pub(super) struct Found {
    /// The caller's access to the hit's event.
    pub(super) access: EventAccess,
    /// What the search matched in it.
    pub(super) hit: Hit,
}

impl Found {
    /// The hit's event as the caller sees it, without correlations, with only its matched
    /// attributes when the query matched attributes.
    pub(super) fn event_json(
        &self,
        node: &Node,
        caller: &Caller,
        include_deleted: bool,
    ) -> Result<Value, ApiError> {
        let options = EventOptions {
            include_deleted,
            correlation_max: node.config.views.correlation_max,
            correlations: false,
            only_attributes: (!self.hit.attributes.is_empty())
                .then(|| self.hit.attributes.iter().copied().collect()),
        };
        event_json_with(node, caller, &self.access, options, false)
    }
}

/// The events that the filters of an `/events/index` request find and `caller` may see, in
/// event id order, with how to list them.
pub(crate) fn index_events(
    node: &Node,
    caller: &Caller,
    params: &Map<String, Value>,
) -> Result<(IndexRequest, Vec<EventAccess>), ApiError> {
    let request = request::parse_index(node, params)?;
    let found = visible_hits(node, caller, &request.query)?;
    Ok((
        request,
        found.into_iter().map(|found| found.access).collect(),
    ))
}

/// The error for a search that stopped at its budget: 400, naming the setting.
fn too_broad(error: search::SearchError) -> ApiError {
    let setting = match error {
        search::SearchError::Kv(error) => return error.into(),
        search::SearchError::TooBroad(_) => "api.search_examined_max",
        search::SearchError::TooLong(_) => "api.search_time_max_s",
    };
    ApiError::bad_request(format!("{error} ({setting})."))
}

/// The hits the caller may see, in event id order. A hit's matched attributes are narrowed
/// to those the caller sees, and a hit whose matches are all hidden is dropped: a search must
/// not tell a user that an event holds a value they may not see.
fn visible_hits(node: &Node, caller: &Caller, query: &Query) -> Result<Vec<Found>, ApiError> {
    let views = node.store.views();
    let limits = &node.config.api;
    let budget = search::Budget::new(
        limits.search_examined_max,
        Duration::from_secs(limits.search_time_max_s),
    );
    // The caller's access to each event, read once: a tag filter counts only the tags of the
    // attributes the caller sees, and an error counts as not seeing.
    let accesses = std::cell::RefCell::new(std::collections::HashMap::new());
    let shown = |event: &Uuid, attribute: &Record| {
        let mut accesses = accesses.borrow_mut();
        let access = accesses
            .entry(*event)
            .or_insert_with(|| event_access(node, caller, event).ok().flatten());
        access.as_ref().is_some_and(|access| {
            attribute_visible(node, caller, access, attribute).unwrap_or(false)
        })
    };
    let hits = search::search_within(&views, query, &budget, &shown).map_err(too_broad)?;
    let mut found = Vec::new();
    for mut hit in hits {
        crate::turns::pause_point();
        let Some(access) = event_access(node, caller, &hit.event)? else {
            continue;
        };
        if !hit.attributes.is_empty() {
            let mut visible = Vec::with_capacity(hit.attributes.len());
            for uuid in hit.attributes {
                crate::turns::pause_point();
                let record = read::record(&views, RecordKind::Attribute, uuid.as_bytes())?;
                if let Some(record) = record {
                    if attribute_visible(node, caller, &access, &record)? {
                        visible.push(uuid);
                    }
                }
            }
            if visible.is_empty() {
                continue;
            }
            hit.attributes = visible;
        }
        found.push(Found { access, hit });
    }
    found.sort_by_key(|found| found.access.id);
    Ok(found)
}

/// How many attributes the answer to `request` would hold: the matched ones of each hit (all
/// of an event's when it matched as a whole or is written whole), counted from the keys
/// before anything is rendered, on the page asked for.
fn rows_answered(node: &Node, request: &Request, found: &[Found]) -> Result<usize, ApiError> {
    let views = node.store.views();
    let whole_events = matches!(
        (request.format, request.query.scope),
        (Format::Json, Scope::Events)
    );
    let rows_of = |found: &Found| match found.hit.attributes.len() {
        matched if matched > 0 && !whole_events => Ok(matched),
        _ => read::attribute_keys(&views, &found.hit.event),
    };
    let limit = request.limit.unwrap_or(usize::MAX);
    let mut rows = 0usize;
    match (request.format, request.query.scope) {
        // Events are counted, not written.
        (Format::Count, Scope::Events) => {}
        // Events are paged, each written with its rows.
        (Format::Json, Scope::Events) | (Format::Export(_), _) => {
            for found in found.iter().skip(request.skip()).take(limit) {
                rows = rows.saturating_add(rows_of(found)?);
            }
        }
        // Attribute rows are paged.
        _ => {
            for found in found {
                rows = rows.saturating_add(rows_of(found)?);
            }
            rows = rows.saturating_sub(request.skip()).min(limit);
        }
    }
    Ok(rows)
}

/// Runs a parsed search and writes the response body.
fn answer(node: &Node, caller: &Caller, request: &Request) -> Result<Response, ApiError> {
    let found = visible_hits(node, caller, &request.query)?;
    let rows_max = node.config.api.search_rows_max;
    let rows = rows_answered(node, request, &found)?;
    if rows > rows_max {
        return Err(ApiError::bad_request(format!(
            "The answer would hold {rows} attributes, more than the {rows_max} this node \
             answers at once (api.search_rows_max); narrow the search or page it with limit \
             and page."
        )));
    }
    let text_response = |content_type: &'static str, body: String| {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    match (request.format, request.query.scope) {
        (Format::Json, Scope::Events) => {
            let skip = request.skip();
            let include_deleted = request.query.deleted != Deleted::Live;
            let mut events = Vec::new();
            for Found { access, .. } in found
                .iter()
                .skip(skip)
                .take(request.limit.unwrap_or(usize::MAX))
            {
                let mut event =
                    event_json(node, caller, access, include_deleted, request.metadata)?;
                if request.no_local_tags {
                    drop_local_tags(&mut event);
                }
                events.push(event);
            }
            Ok(Json(json!({ "response": events })).into_response())
        }
        (Format::Json, Scope::Attributes) => {
            let mut attributes = Vec::new();
            for row in attribute_rows(node, caller, request, &found)? {
                crate::turns::pause_point();
                attributes.push(attribute_json(node, caller, request, row)?);
            }
            Ok(Json(json!({ "response": { "Attribute": attributes } })).into_response())
        }
        (Format::Csv, _) => {
            let rows = attribute_rows(node, caller, request, &found)?;
            Ok(text_response("text/csv", csv(request, &rows)))
        }
        (Format::Count, Scope::Events) => {
            let events = found.iter().skip(request.skip());
            let count = events.take(request.limit.unwrap_or(usize::MAX)).count();
            Ok(text_response("text/plain", count.to_string()))
        }
        (Format::Count, Scope::Attributes) => {
            let count = attribute_rows(node, caller, request, &found)?.len();
            Ok(text_response("text/plain", count.to_string()))
        }
        (Format::Export(format), _) => {
            let events = export_events(node, caller, request, &found)?;
            let mut options = crate::interop::export::node_options(node, None);
            options.blocklists = request.blocklists.clone();
            let body = crate::interop::export::render(format, &events, &options);
            Ok(text_response(format.content_type(), body))
        }
        (Format::Text, _) => {
            let rows = attribute_rows(node, caller, request, &found)?;
            let mut body = String::new();
            for row in rows {
                body.push_str(&plain(row.attribute.get("value")));
                body.push('\n');
            }
            Ok(text_response("text/plain", body))
        }
    }
}

/// The visible events of the hits for an export (a page of events when `limit` is given),
/// each with only its matched attributes when the query matched attributes.
fn export_events(
    node: &Node,
    caller: &Caller,
    request: &Request,
    found: &[Found],
) -> Result<Vec<Value>, ApiError> {
    let include_deleted = request.query.deleted != Deleted::Live;
    let skip = request.skip();
    let mut events = Vec::new();
    for hit in found
        .iter()
        .skip(skip)
        .take(request.limit.unwrap_or(usize::MAX))
    {
        events.push(hit.event_json(node, caller, include_deleted)?);
    }
    Ok(events)
}

/// What a restSearch lists: events, attributes, or the objects holding matching attributes.
#[derive(Clone, Copy)]
enum Listed {
    /// `/events/restSearch` or `/attributes/restSearch`.
    Scope(Scope),
    /// `/objects/restSearch`.
    Objects,
}

impl From<Scope> for Listed {
    fn from(scope: Scope) -> Self {
        Listed::Scope(scope)
    }
}

async fn run(
    state: ApiState,
    caller: Caller,
    listed: impl Into<Listed>,
    params: Map<String, Value>,
) -> Result<Response, ApiError> {
    let listed = listed.into();
    state
        .blocking(move |node| match listed {
            Listed::Scope(scope) => answer(node, &caller, &parse(node, scope, &params)?),
            Listed::Objects => {
                answer_objects(node, &caller, &parse(node, Scope::Attributes, &params)?)
            }
        })
        .await
}

/// `/objects/restSearch`: the objects holding an attribute that the filters match, each whole
/// as the caller sees it (`{"Object": {…, "Attribute": […], "Event": {…}}}`), in event id
/// order. Attribute filters match the objects' attributes, `object_name` the object's name.
fn answer_objects(node: &Node, caller: &Caller, request: &Request) -> Result<Response, ApiError> {
    if request.format != Format::Json {
        return Err(ApiError::bad_request(
            "Objects are listed as JSON only: use an attribute search for other formats.",
        ));
    }
    let found = visible_hits(node, caller, &request.query)?;
    let views = node.store.views();
    // Every hit's event is written whole to pick its objects: count all its attributes.
    let mut rows = 0usize;
    for found in &found {
        rows = rows.saturating_add(read::attribute_keys(&views, &found.hit.event)?);
    }
    let rows_max = node.config.api.search_rows_max;
    if rows > rows_max {
        return Err(ApiError::bad_request(format!(
            "The events of the objects found hold more than the {rows_max} attributes this \
             node answers at once (api.search_rows_max); narrow the search."
        )));
    }
    let include_deleted = request.query.deleted != Deleted::Live;
    let mut objects = Vec::new();
    for Found { access, hit } in &found {
        let mut parents = BTreeSet::new();
        for uuid in &hit.attributes {
            if let Some(record) = read::record(&views, RecordKind::Attribute, uuid.as_bytes())? {
                parents.extend(record.parent().map(|parent| parent.to_string()));
            }
        }
        if parents.is_empty() {
            continue;
        }
        let mut event = event_json(node, caller, access, include_deleted, false)?;
        let event = event["Event"].take();
        let summary: Map<String, Value> = ["id", "info", "org_id", "orgc_id", "uuid"]
            .iter()
            .map(|field| (field.to_string(), event[*field].clone()))
            .collect();
        for mut object in event["Object"].as_array().cloned().unwrap_or_default() {
            if object["uuid"]
                .as_str()
                .is_some_and(|uuid| parents.contains(uuid))
            {
                object["Event"] = Value::Object(summary.clone());
                objects.push(json!({ "Object": object }));
            }
        }
    }
    let limit = request.limit.unwrap_or(usize::MAX);
    let page: Vec<Value> = objects
        .into_iter()
        .skip(request.skip())
        .take(limit)
        .collect();
    Ok(Json(json!({ "response": page })).into_response())
}

/// URL query parameters as JSON: repeated names become lists.
pub fn url_params(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut params = Map::new();
    for (name, value) in pairs {
        let name = name.trim_end_matches("[]").to_string();
        match params.get_mut(&name) {
            Some(Value::Array(items)) => items.push(json!(value)),
            Some(existing) => *existing = json!([existing.clone(), value]),
            None => {
                params.insert(name, json!(value));
            }
        }
    }
    params
}

/// `POST /events/restSearch`: the filters in a JSON body.
pub async fn events(Call { state, caller }: Call, body: JsonBody) -> Result<Response, ApiError> {
    run(state, caller, Scope::Events, body.filters("request")?).await
}

/// `GET /events/restSearch?…`: the filters as URL parameters.
pub async fn events_get(
    Call { state, caller }: Call,
    UrlQuery(pairs): UrlQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    run(state, caller, Scope::Events, url_params(pairs)).await
}

/// `POST /attributes/restSearch`: the filters in a JSON body.
pub async fn attributes(
    Call { state, caller }: Call,
    body: JsonBody,
) -> Result<Response, ApiError> {
    run(state, caller, Scope::Attributes, body.filters("request")?).await
}

/// `POST /objects/restSearch`: the filters in a JSON body ([`answer_objects`]).
async fn objects(Call { state, caller }: Call, body: JsonBody) -> Result<Response, ApiError> {
    run(state, caller, Listed::Objects, body.filters("request")?).await
}

/// `GET /objects/restSearch?…`: the filters as URL parameters.
async fn objects_get(
    Call { state, caller }: Call,
    UrlQuery(pairs): UrlQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    run(state, caller, Listed::Objects, url_params(pairs)).await
}

/// `GET /attributes/restSearch?…`: the filters as URL parameters.
pub async fn attributes_get(
    Call { state, caller }: Call,
    UrlQuery(pairs): UrlQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    run(state, caller, Scope::Attributes, url_params(pairs)).await
}

/// Most `name:value` segments a CakePHP-style restSearch path holds.
pub const PATH_PARAMS_MAX: usize = 64;

/// The filters of a CakePHP-style restSearch path, as MISP's firewall and cron scripts write
/// them (`/attributes/restSearch/returnFormat:text/type:ip-dst||ip-src/tags:tlp;green`): each
/// segment is `name:value`, `;` in a value stands for `:`, and `||` separates a list. A
/// segment without a name (MISP's positional form) is refused: which filter it meant depends
/// on MISP's parameter order, and a guess could widen the answer.
pub fn path_params(path: &str) -> Result<Map<String, Value>, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() > PATH_PARAMS_MAX {
        return Err(ApiError::bad_request(format!(
            "The search path has {} parameters, more than the {PATH_PARAMS_MAX} this node \
             reads; send the filters as a JSON body.",
            segments.len()
        )));
    }
    let mut params = Map::new();
    for segment in segments {
        let Some((name, value)) = segment.split_once(':').filter(|(name, _)| !name.is_empty())
        else {
            return Err(ApiError::bad_request(format!(
                "The search path segment '{segment}' has no parameter name; write it as \
                 name:value (for example type:ip-dst)."
            )));
        };
        let value = value.replace(';', ":");
        let value = value.trim();
        let value = match value.find("||") {
            Some(at) if at > 0 => json!(value.split("||").map(str::trim).collect::<Vec<_>>()),
            _ => json!(value),
        };
        params.insert(name.to_string(), value);
    }
    Ok(params)
}

/// `GET` or `POST /{events,attributes}/restSearch/name:value/…`: the filters in the path
/// ([`path_params`]), over those of the URL's query or the JSON body.
async fn with_path_params(
    scope: Scope,
    Call { state, caller }: Call,
    Path(path): Path<String>,
    UrlQuery(pairs): UrlQuery<Vec<(String, String)>>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut params = body.filters("request")?;
    params.extend(url_params(pairs));
    params.extend(path_params(&path)?);
    run(state, caller, scope, params).await
}

/// The routes of `/events/restSearch` and `/attributes/restSearch`: POST with a JSON body,
/// GET with URL parameters, either with CakePHP-style parameters in the path.
pub fn routes() -> Router<ApiState> {
    let path_style = |scope: Scope| {
        let handler =
            move |call, path, query, body| with_path_params(scope, call, path, query, body);
        get(handler).post(handler)
    };
    Router::new()
        .route("/events/restSearch", post(events).get(events_get))
        .route(
            "/attributes/restSearch",
            post(attributes).get(attributes_get),
        )
        .route("/events/restSearch/{*path}", path_style(Scope::Events))
        .route(
            "/attributes/restSearch/{*path}",
            path_style(Scope::Attributes),
        )
        .route("/objects/restSearch", post(objects).get(objects_get))
}

#[cfg(test)]
mod tests {
    use super::request::{date_bound, epoch, flag, range, terms, DAY_SECONDS};
    use super::rows::csv_field;
    use crate::model::date::{civil_from_days, days_from_civil};
    use serde_json::json;

    #[test]
    fn ages_past_the_representable_reach_back_to_the_earliest_time() {
        let now = 1_800_000_000;
        assert_eq!(epoch(&json!("2d"), now), Some(now - 2 * DAY_SECONDS));
        assert_eq!(
            epoch(&json!("9999999999999999w"), now),
            Some(now - i64::MAX)
        );
        assert_eq!(epoch(&json!("-9999999999999999w"), now), Some(i64::MAX));
        // As a date bound: a date long before year 1, not a panic.
        let bound = date_bound(Some(&json!("9999999999999999w")), now).unwrap();
        assert!(bound.starts_with('-'), "{bound}");
    }

    #[test]
    fn terms_and_negations() {
        assert_eq!(
            terms(Some(&json!(["a", "!b", 3]))),
            (vec!["a".into(), "3".into()], vec![], vec!["b".into()])
        );
        assert_eq!(
            terms(Some(&json!({"OR": ["a"], "AND": "b", "NOT": ["c", "!d"]}))),
            (
                vec!["a".into()],
                vec!["b".into()],
                vec!["c".into(), "d".into()]
            )
        );
        assert_eq!(terms(Some(&json!("x"))).0, vec!["x".to_string()]);
    }

    #[test]
    fn times_and_dates() {
        let now = 1_700_000_000;
        assert_eq!(epoch(&json!("5d"), now), Some(now - 5 * DAY_SECONDS));
        assert_eq!(epoch(&json!("12h"), now), Some(now - 12 * 3600));
        assert_eq!(epoch(&json!("30m"), now), Some(now - 1800));
        assert_eq!(epoch(&json!(1234.9), now), Some(1234));
        assert_eq!(epoch(&json!("1234"), now), Some(1234));
        assert_eq!(epoch(&json!("1970-01-02"), now), Some(DAY_SECONDS));
        assert_eq!(epoch(&json!("soon"), now), None);
        assert_eq!(
            range(Some(&json!(["1d", "100"])), now),
            (Some(now - DAY_SECONDS), Some(100))
        );
        assert_eq!(
            date_bound(Some(&json!(1_700_000_000)), now).as_deref(),
            Some("2023-11-14")
        );
        assert_eq!(
            date_bound(Some(&json!("2024-02-29")), now).as_deref(),
            Some("2024-02-29")
        );
        for days in [-1000, 0, 19_000, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn flags_and_csv_quoting() {
        assert_eq!(flag(Some(&json!([0, 1]))), None);
        assert_eq!(flag(Some(&json!(0))), Some(false));
        assert_eq!(flag(Some(&json!("1"))), Some(true));
        assert_eq!(flag(None), None);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
