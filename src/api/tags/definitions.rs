//! Tag definitions: `/tags/add`, `/tags/index`, `/tags/search`, `/tags/view/{id}`,
//! `/tags/edit/{id}` and `/tags/delete/{id}`. Definitions are this node's own settings
//! (`Node::define_tag`), never in the log; the tags this node knows are those defined here and
//! those any entry has attached. Deleting sets the definition's `deleted` field (links to
//! events stay as they are).

use axum::extract::Path;
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use crate::api::access::{self, Action};
use crate::api::error::ApiError;
use crate::api::request::{flag_field, parse_ref, text_field, JsonBody, Ref};
use crate::api::Call;
use crate::node::{Node, DEFAULT_TAG_COLOUR};
use crate::proto::RecordKind;

/// MISP's message for an unknown tag.
pub const INVALID_TAG: &str = "Invalid Tag.";
/// MISP's validation failure name for a tag that could not be saved.
const NOT_SAVED: &str = "The Tag could not be saved.";
/// Longest tag name accepted, in bytes (MISP's `tags.name` column is 255 characters).
pub const TAG_NAME_BYTES_MAX: usize = 255;
/// Fields of a definition a client may set.
const EDITABLE: [&str; 5] = [
    "colour",
    "exportable",
    "hide_tag",
    "numerical_value",
    "local_only",
];

/// Whether tag `name` with `definition` is one this node shows: defined here or attached by
/// some entry, and not deleted.
fn present(node: &Node, name: &str, definition: &Map<String, Value>) -> Result<bool, ApiError> {
    if definition.get("deleted") == Some(&json!(true)) {
        return Ok(false);
    }
    Ok(!definition.is_empty()
        || node
            .store
            .local_id(RecordKind::Tag, name.as_bytes())
            .is_some())
}

/// MISP's `Tag` object for tag `name` with `definition`.
fn tag_json(node: &Node, name: &str, definition: &Map<String, Value>) -> Value {
    let id = node
        .store
        .local_id(RecordKind::Tag, name.as_bytes())
        .unwrap_or(0);
    let flag = |field: &str, default: bool| {
        definition
            .get(field)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    };
    let colour = definition.get("colour").and_then(Value::as_str);
    json!({
        "id": id.to_string(),
        "name": name,
        "colour": colour.unwrap_or(DEFAULT_TAG_COLOUR),
        "exportable": flag("exportable", true),
        "org_id": "0",
        "user_id": "0",
        "hide_tag": flag("hide_tag", false),
        "numerical_value": definition.get("numerical_value").cloned().unwrap_or(Value::Null),
        "is_galaxy": name.starts_with("misp-galaxy:"),
        "is_custom_galaxy": false,
        "local_only": flag("local_only", false),
    })
}

/// The tag named by a path (a local id, or a name) and its definition.
fn find(node: &Node, text: &str) -> Result<(String, Map<String, Value>), ApiError> {
    let missing = || ApiError::not_found(INVALID_TAG);
    let name = match parse_ref(text) {
        Some(Ref::Id(id)) => node
            .store
            .key_of_id(RecordKind::Tag, id)
            .and_then(|key| String::from_utf8(key).ok())
            .ok_or_else(missing)?,
        _ => text.trim().trim_end_matches(".json").to_string(),
    };
    let definition = node.tag_definition(&name)?;
    if !present(node, &name, &definition)? {
        return Err(missing());
    }
    Ok((name, definition))
}

/// The client-settable fields of `body`, normalised.
fn editable_fields(body: &Map<String, Value>) -> Map<String, Value> {
    let mut fields = Map::new();
    for name in EDITABLE {
        if !body.contains_key(name) {
            continue;
        }
        let value = match name {
            "colour" => json!(text_field(body, name).unwrap_or_default()),
            "numerical_value" => body.get(name).cloned().unwrap_or(Value::Null),
            _ => json!(flag_field(body, name)),
        };
        fields.insert(name.into(), value);
    }
    fields
}

/// `POST /tags/add` with `{"Tag": {"name", "colour", "exportable", …}}` or the bare object.
pub async fn add(Call { state, caller }: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    let body = body.object("Tag");
    state
        .reply(move |node| {
            access::require(&caller, Action::EditTags)?;
            let name = text_field(&body, "name")
                .map(|name| name.trim().to_string())
                .unwrap_or_default();
            if name.is_empty() || name.len() > TAG_NAME_BYTES_MAX {
                return Err(ApiError::validation(
                    NOT_SAVED,
                    "name",
                    "A tag needs a name of 1 to 255 bytes.",
                ));
            }
            if present(node, &name, &node.tag_definition(&name)?)? {
                return Err(ApiError::validation(
                    NOT_SAVED,
                    "name",
                    "A similar name already exists.",
                ));
            }
            let mut fields = editable_fields(&body);
            fields.entry("colour").or_insert(json!(DEFAULT_TAG_COLOUR));
            fields.entry("exportable").or_insert(json!(true));
            fields.insert("deleted".into(), json!(false));
            node.define_tag(&name, &fields)?;
            let (name, definition) = find(node, &name)?;
            Ok(json!({ "Tag": tag_json(node, &name, &definition) }))
        })
        .await
}

/// Every tag this node shows ([`present`]), by name: those defined here and those any entry
/// has attached, without the deleted ones.
fn known_tags(node: &Node) -> Result<BTreeMap<String, Map<String, Value>>, ApiError> {
    let mut definitions = node.tag_definitions()?;
    for name in node.store.numbered(RecordKind::Tag)? {
        let name = String::from_utf8_lossy(&name).into_owned();
        definitions.entry(name).or_default();
    }
    definitions.retain(|_, definition| definition.get("deleted") != Some(&json!(true)));
    Ok(definitions)
}

/// `GET /tags/index`: `{"Tag": [...]}`, in name order.
pub async fn index(Call { state, .. }: Call) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let tags = known_tags(node)?
                .iter()
                .map(|(name, definition)| tag_json(node, name, definition))
                .collect();
            Ok(json!({ "Tag": Value::Array(tags) }))
        })
        .await
}

/// Longest text `tags/search` takes: tag names are short, and a long pattern would cost its
/// length at every tag.
pub const SEARCH_TEXT_BYTES_MAX: usize = 255;

/// Whether tag `name` matches the searched `text` (in any case): with `strict`, only the exact
/// name; else a MISP `LIKE` pattern when `text` holds `%` (any run of characters; `_` is taken
/// literally, as tag names often hold it), else a substring.
fn name_matches(name: &str, text: &str, strict: bool) -> bool {
    match (strict, text.contains('%')) {
        (true, _) => name.to_lowercase() == text.to_lowercase(),
        (false, true) => crate::view::search::like(text, name, true),
        (false, false) => crate::view::search::like(&format!("%{text}%"), name, true),
    }
}

/// `POST /tags/search` with `{"tagname": …, "strict_tagname": …}` (PyMISP's `search_tags`;
/// MISP's `tag` and `value` name the text too): the tags whose name matches, in any case, as
/// MISP's list of `{"Tag": {…}}` in name order. Strict, the exact name; else a `%` pattern
/// (`%` any text, `_` itself), or a substring when the text holds no `%`. Galaxy cluster
/// synonyms and values, which MISP's loose search adds, are not searched.
pub async fn search(Call { state, .. }: Call, body: JsonBody) -> Result<Json<Value>, ApiError> {
    let body = body.object("Tag");
    let text = ["tagname", "tag", "value"]
        .iter()
        .find_map(|field| text_field(&body, field))
        .map(|text| text.trim().to_lowercase())
        .filter(|text| !text.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "The search needs a tag name: send {\"tagname\": \"tlp:%\"} (% matches any text).",
            )
        })?;
    if text.len() > SEARCH_TEXT_BYTES_MAX {
        return Err(ApiError::bad_request(format!(
            "The tag search text has {} bytes, more than the {SEARCH_TEXT_BYTES_MAX} a tag name \
             can hold.",
            text.len()
        )));
    }
    let strict = flag_field(&body, "strict_tagname");
    state
        .reply(move |node| {
            let found = known_tags(node)?
                .iter()
                .filter(|(name, _)| name_matches(name, &text, strict))
                .map(|(name, definition)| json!({ "Tag": tag_json(node, name, definition) }))
                .collect();
            Ok(Value::Array(found))
        })
        .await
}

/// `GET /tags/view/{id}`: `{"Tag": {…}}`.
pub async fn view(
    Call { state, .. }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .reply(move |node| {
            let (name, definition) = find(node, &id)?;
            Ok(json!({ "Tag": tag_json(node, &name, &definition) }))
        })
        .await
}

/// `POST /tags/edit/{id}`: the body's colour, exportable, hide_tag, numerical_value and
/// local_only replace the definition's (a tag's name is its key and is not changed).
pub async fn edit(
    Call { state, caller }: Call,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = body.object("Tag");
    state
        .reply(move |node| {
            access::require(&caller, Action::EditTags)?;
            let (name, _) = find(node, &id)?;
            if text_field(&body, "name").is_some_and(|new| new.trim() != name) {
                return Err(ApiError::validation(
                    NOT_SAVED,
                    "name",
                    "A tag's name cannot be changed; add a new tag instead.",
                ));
            }
            let fields = editable_fields(&body);
            if !fields.is_empty() {
                node.define_tag(&name, &fields)?;
            }
            let (name, definition) = find(node, &name)?;
            Ok(json!({ "Tag": tag_json(node, &name, &definition) }))
        })
        .await
}

/// `POST /tags/delete/{id}`: marks the definition deleted.
pub async fn delete(
    Call { state, caller }: Call,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = format!("/tags/delete/{id}");
    state
        .blocking(move |node| {
            access::require(&caller, Action::EditTags)?;
            let (name, _) = find(node, &id)?;
            let mut fields = Map::new();
            fields.insert("deleted".into(), json!(true));
            node.define_tag(&name, &fields)?;
            Ok(())
        })
        .await?;
    Ok(Json(json!({
        "name": "Tag deleted.",
        "message": "Tag deleted.",
        "url": url,
    })))
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn tag_names_match_exactly_by_substring_or_by_like_pattern() {
        assert!(name_matches("tlp:green", "tlp:green", true));
        assert!(!name_matches("tlp:green", "tlp:", true));
        assert!(name_matches("tlp:green", "tlp:", false));
        assert!(name_matches("tlp:green", "green", false));
        assert!(name_matches("tlp:green", "tlp:%", false));
        assert!(!name_matches("tlp:green", "%tlp:", false));
        assert!(name_matches("tlp:green", "%:gr%n", false));
        assert!(name_matches("tlp:green", "%", false));
        // The pattern's ends are anchored, and its parts do not overlap.
        assert!(!name_matches("ab", "a%b%b", false));
        assert!(!name_matches("tlp:green", "tlp:_reen", false));
    }
}
