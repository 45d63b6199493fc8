//! What every export writer reads from MISP event JSON (`{"Event": …}` as
//! [`crate::view::read::event`] renders it): the attributes listed with their event and
//! object, field readers, hash types and times, and the options every writer takes. Pure.

use serde_json::Value;

use crate::model::date::civil_from_days;

/// Default first sid of exported IDS rules (MISP's default `nids_sid` of a user).
pub const SID_BASE_DEFAULT: u64 = 4_000_000;

/// Seconds in a day.
pub(crate) const DAY_SECONDS: i64 = 86_400;

/// Hash types whose value (or, for `filename|<hash>`, second half) the `hashes` export lists.
pub const HASH_TYPES: [&str; 22] = [
    "md5",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sha512/224",
    "sha512/256",
    "sha3-224",
    "sha3-256",
    "sha3-384",
    "sha3-512",
    "ssdeep",
    "imphash",
    "telfhash",
    "impfuzzy",
    "authentihash",
    "vhash",
    "pehash",
    "tlsh",
    "cdhash",
    "x509-fingerprint-sha256",
];

/// Options of an export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// First sid of IDS rules: an attribute with local id N gets sids `base + 10 N + 1…9`.
    pub sid_base: u64,
    /// Base URL of the node's web interface for rule references (`<base>/events/view/<uuid>`).
    pub base_url: String,
    /// When the export is written, epoch seconds (headers, zone serials).
    pub now: i64,
    /// Options of the hosts, netfilter and rpz exports.
    pub blocklists: super::blocklists::BlocklistOptions,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            sid_base: SID_BASE_DEFAULT,
            base_url: "http://localhost".into(),
            now: 0,
            blocklists: Default::default(),
        }
    }
}

/// An attribute together with the event and object it sits in.
pub struct Listed<'a> {
    /// The attribute JSON.
    pub attribute: &'a Value,
    /// The object holding it, if any.
    pub object: Option<&'a Value>,
    /// The event (the inside of `{"Event": …}`).
    pub event: &'a Value,
}

/// The attributes of the events: top-level ones, then those of objects, event by event;
/// deleted ones are left out.
pub fn attributes(events: &[Value]) -> Vec<Listed<'_>> {
    let mut out = Vec::new();
    for wrapped in events {
        let event = wrapped.get("Event").unwrap_or(wrapped);
        for attribute in array(event, "Attribute") {
            out.push(Listed {
                attribute,
                object: None,
                event,
            });
        }
        for object in array(event, "Object") {
            if flag(object.get("deleted")) {
                continue;
            }
            for attribute in array(object, "Attribute") {
                out.push(Listed {
                    attribute,
                    object: Some(object),
                    event,
                });
            }
        }
    }
    out.retain(|listed| !flag(listed.attribute.get("deleted")));
    out
}

/// The items of the JSON list `name` of `value`.
pub fn array<'a>(value: &'a Value, name: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A MISP flag (`true`, `1`, `"1"`).
pub fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(number)) => number.as_i64().is_some_and(|n| n != 0),
        Some(Value::String(text)) => matches!(text.trim(), "1" | "true"),
        _ => false,
    }
}

/// A string field of a JSON item (numbers as their text; missing: empty).
pub fn text<'a>(value: &'a Value, name: &str) -> std::borrow::Cow<'a, str> {
    match value.get(name) {
        Some(Value::String(text)) => text.as_str().into(),
        Some(Value::Number(number)) => number.to_string().into(),
        Some(Value::Bool(flag)) => u8::from(*flag).to_string().into(),
        _ => "".into(),
    }
}

/// The names of a JSON item's `Tag` list.
pub fn tag_names(value: &Value) -> Vec<&str> {
    array(value, "Tag")
        .filter_map(|tag| tag.get("name").and_then(Value::as_str))
        .collect()
}

/// The hash in an attribute of type `ty` with `value`: the value of a hash type, the second
/// half of `filename|<hash>`.
pub fn hash_part<'a>(ty: &str, value: &'a str) -> Option<&'a str> {
    if HASH_TYPES.contains(&ty) {
        return Some(value);
    }
    let hash_type = ty.strip_prefix("filename|")?;
    HASH_TYPES
        .contains(&hash_type)
        .then(|| value.split_once('|').map(|(_, hash)| hash))
        .flatten()
}

/// Epoch seconds as an RFC 3339 UTC time (`2016-08-30T07:10:11Z`).
pub fn rfc3339(seconds: i64) -> String {
    let (y, m, d) = civil_from_days(seconds.div_euclid(DAY_SECONDS));
    let rest = seconds.rem_euclid(DAY_SECONDS);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}
