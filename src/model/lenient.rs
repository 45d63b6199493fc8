//! MISP's lenient input: scalars read from a `serde_json::Value` the way MISP's PHP accepts them.
//!
//! MISP and PyMISP send ids and enums as strings ("distribution": "5"), flags as booleans, 0/1 or
//! "0"/"1", and sometimes numbers where strings are expected. These helpers read one field of a
//! JSON object and return `Ok(None)` when it is absent, `null` or the empty string (MISP's way of
//! saying "unset"), `Ok(Some(_))` when it can be read, and an [`ModelError::InvalidField`]
//! naming the object and field otherwise.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::ModelError;

/// A JSON object, as the helpers take it.
pub(crate) type Object = Map<String, Value>;

/// The value of `key`, treating absent, `null` and `""` alike as unset.
fn present<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(value) => Some(value),
    }
}

/// An integer from a JSON integer or a string of an optional `-` and decimal digits.
pub(crate) fn int_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        _ => None,
    }
}

/// A boolean from `true`/`false`, the numbers 0/1, or the strings "0", "1", "true", "false"
/// (any case).
pub(crate) fn bool_of(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "0" | "false" => Some(false),
            "1" | "true" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// A string from a JSON string, or the decimal text of a JSON number.
pub(crate) fn string_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A uuid from its canonical text form (8-4-4-4-12 hex digits, any case), lower-cased as MISP
/// compares uuids case-insensitively. Braced, URN and hyphen-less forms are refused.
pub(crate) fn uuid_of(text: &str) -> Option<Uuid> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let canonical = bytes.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    if !canonical {
        return None;
    }
    Uuid::parse_str(text).ok()
}

/// The integer field `key`.
pub(crate) fn int(obj: &Object, object: &str, key: &str) -> Result<Option<i64>, ModelError> {
    present(obj, key)
        .map(|v| int_of(v).ok_or_else(|| ModelError::invalid_field(object, key, "not an integer")))
        .transpose()
}

/// The integer field `key`, which must lie in `min..=max` when present.
pub(crate) fn small_int(
    obj: &Object,
    object: &str,
    key: &str,
    min: u8,
    max: u8,
) -> Result<Option<u8>, ModelError> {
    match int(obj, object, key)? {
        None => Ok(None),
        Some(n) if n >= i64::from(min) && n <= i64::from(max) => {
            Ok(Some(u8::try_from(n).expect("n lies between two u8 bounds")))
        }
        Some(n) => Err(ModelError::invalid_field(
            object,
            key,
            format!("{n} is not between {min} and {max}"),
        )),
    }
}

/// The boolean field `key`.
pub(crate) fn boolean(obj: &Object, object: &str, key: &str) -> Result<Option<bool>, ModelError> {
    present(obj, key)
        .map(|v| {
            bool_of(v).ok_or_else(|| {
                ModelError::invalid_field(object, key, "not a boolean (true/false, 0/1)")
            })
        })
        .transpose()
}

/// The string field `key`, which may also be sent as a number. Empty strings count as unset.
pub(crate) fn string(obj: &Object, object: &str, key: &str) -> Result<Option<String>, ModelError> {
    present(obj, key)
        .map(|v| string_of(v).ok_or_else(|| ModelError::invalid_field(object, key, "not a string")))
        .transpose()
}

/// The string field `key`, which must be present and not empty.
pub(crate) fn required_string(obj: &Object, object: &str, key: &str) -> Result<String, ModelError> {
    string(obj, object, key)?.ok_or_else(|| ModelError::missing(object, key))
}

/// The uuid field `key`.
pub(crate) fn uuid(obj: &Object, object: &str, key: &str) -> Result<Option<Uuid>, ModelError> {
    match string(obj, object, key)? {
        None => Ok(None),
        Some(text) => uuid_of(&text).map(Some).ok_or_else(|| {
            ModelError::invalid_field(object, key, format!("'{text}' is not a uuid"))
        }),
    }
}

/// The object field `key` (absent or `null` is `None`; any other non-object is an error).
pub(crate) fn object<'a>(
    obj: &'a Object,
    object: &str,
    key: &str,
) -> Result<Option<&'a Object>, ModelError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(_) => Err(ModelError::invalid_field(object, key, "not a JSON object")),
    }
}

/// The list field `key` (absent or `null` is empty). MISP sometimes sends a single child as
/// an object instead of a one-element list; that is accepted too.
pub(crate) fn list<'a>(
    obj: &'a Object,
    object: &str,
    key: &str,
) -> Result<Vec<&'a Value>, ModelError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.iter().collect()),
        Some(single @ Value::Object(_)) => Ok(vec![single]),
        Some(_) => Err(ModelError::invalid_field(object, key, "not a JSON list")),
    }
}

/// `value` as a JSON object, or [`ModelError::NotAnObject`].
pub(crate) fn as_object<'a>(value: &'a Value, object: &str) -> Result<&'a Object, ModelError> {
    value.as_object().ok_or_else(|| ModelError::NotAnObject {
        object: object.to_string(),
    })
}

/// The object inside `{wrapper: {…}}`, or `value` itself when it is not wrapped.
pub(crate) fn unwrap<'a>(
    value: &'a Value,
    wrapper: &str,
    object: &str,
) -> Result<&'a Object, ModelError> {
    let obj = as_object(value, object)?;
    match obj.get(wrapper) {
        Some(Value::Object(inner)) => Ok(inner),
        _ => Ok(obj),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Object {
        value.as_object().cloned().expect("test input is an object")
    }

    #[test]
    fn ints_from_numbers_and_numeric_strings() {
        let o = obj(json!({"a": 5, "b": "17", "c": " 3 ", "d": "x", "e": "", "f": null, "g": 1.5}));
        assert_eq!(int(&o, "event", "a"), Ok(Some(5)));
        assert_eq!(int(&o, "event", "b"), Ok(Some(17)));
        assert_eq!(int(&o, "event", "c"), Ok(Some(3)));
        assert_eq!(int(&o, "event", "e"), Ok(None));
        assert_eq!(int(&o, "event", "f"), Ok(None));
        assert_eq!(int(&o, "event", "missing"), Ok(None));
        let err = int(&o, "event", "d").expect_err("x is not a number");
        assert_eq!(err.to_string(), "event: invalid field 'd': not an integer");
        assert!(int(&o, "event", "g").is_err());
        assert_eq!(int_of(&json!("-4")), Some(-4));
        assert_eq!(int_of(&json!("+4")), None);
    }

    #[test]
    fn small_ints_are_range_checked() {
        let o = obj(json!({"distribution": "5", "analysis": 3}));
        assert_eq!(small_int(&o, "event", "distribution", 0, 5), Ok(Some(5)));
        let err = small_int(&o, "event", "analysis", 0, 2).expect_err("3 > 2");
        assert_eq!(
            err.to_string(),
            "event: invalid field 'analysis': 3 is not between 0 and 2"
        );
    }

    #[test]
    fn booleans_in_all_misp_spellings() {
        for (input, expected) in [
            (json!(true), Some(true)),
            (json!(false), Some(false)),
            (json!(1), Some(true)),
            (json!(0), Some(false)),
            (json!("1"), Some(true)),
            (json!("0"), Some(false)),
            (json!("True"), Some(true)),
            (json!("false"), Some(false)),
            (json!(2), None),
            (json!("yes"), None),
        ] {
            assert_eq!(bool_of(&input), expected, "{input}");
        }
    }

    #[test]
    fn strings_from_strings_and_numbers() {
        let o = obj(json!({"a": "x", "b": 12, "c": true, "d": ""}));
        assert_eq!(string(&o, "tag", "a"), Ok(Some("x".to_string())));
        assert_eq!(string(&o, "tag", "b"), Ok(Some("12".to_string())));
        assert!(string(&o, "tag", "c").is_err());
        assert_eq!(string(&o, "tag", "d"), Ok(None));
        assert_eq!(
            required_string(&o, "tag", "d"),
            Err(ModelError::missing("tag", "d"))
        );
    }

    #[test]
    fn uuids_canonical_only_and_lower_cased() {
        let upper = "5758EBF5-C898-48E6-9FE9-5665C0A83866";
        let parsed = uuid_of(upper).expect("canonical uuid");
        assert_eq!(parsed.to_string(), "5758ebf5-c898-48e6-9fe9-5665c0a83866");
        assert!(uuid_of("5758ebf5c89848e69fe95665c0a83866").is_none());
        assert!(uuid_of("{5758ebf5-c898-48e6-9fe9-5665c0a83866}").is_none());
        assert!(uuid_of("b").is_none());
        let o = obj(json!({"uuid": "b"}));
        let err = uuid(&o, "object reference", "uuid").expect_err("b is no uuid");
        assert_eq!(
            err.to_string(),
            "object reference: invalid field 'uuid': 'b' is not a uuid"
        );
    }

    #[test]
    fn wrappers_and_lists() {
        let wrapped = json!({"Attribute": {"type": "md5"}});
        assert!(unwrap(&wrapped, "Attribute", "attribute")
            .expect("an object")
            .contains_key("type"));
        let event = json!({"info": "x", "Attribute": [{"type": "md5"}]});
        assert!(unwrap(&event, "Attribute", "attribute")
            .expect("an object")
            .contains_key("info"));
        assert!(unwrap(&json!([1]), "Event", "event").is_err());
        let o = obj(json!({"Tag": [{"name": "a"}, {"name": "b"}], "One": {"name": "c"}, "Bad": 3}));
        assert_eq!(list(&o, "event", "Tag").map(|l| l.len()), Ok(2));
        assert_eq!(list(&o, "event", "One").map(|l| l.len()), Ok(1));
        assert_eq!(list(&o, "event", "None").map(|l| l.len()), Ok(0));
        assert!(list(&o, "event", "Bad").is_err());
        assert!(object(&o, "event", "Bad").is_err());
    }
}
