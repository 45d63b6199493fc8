//! MISP attributes: one typed, categorised, normalised value.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::ATTACHMENT_BYTES_MAX;
use super::{children, sharing_group_uuid, tags, uuid_or_new, Fields, Sighting, Tag};
use crate::model::lenient::{self, Object};
use crate::model::{registry, value, AttributeType, ModelError};

/// How attributes are named in errors about their fields.
const OBJECT: &str = "attribute";

/// An attribute: one indicator or observable of an event, optionally inside an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// The attribute's uuid.
    pub uuid: Uuid,
    /// The MISP type, e.g. `ip-dst`.
    pub attr_type: AttributeType,
    /// The MISP category; always one the type allows.
    pub category: String,
    /// The value, normalised for its type (see [`crate::model::value::normalise`]).
    pub value: String,
    /// Whether the value is an IDS signature.
    pub to_ids: bool,
    /// 0 your org, 1 this community, 2 connected communities, 3 all, 4 sharing group,
    /// 5 inherit the event's (the default).
    pub distribution: u8,
    /// The sharing group, for distribution 4.
    pub sharing_group_uuid: Option<Uuid>,
    /// Free-text comment.
    pub comment: String,
    /// Last change, epoch seconds, when known.
    pub timestamp: Option<i64>,
    /// When the observable was first seen, as MISP writes it (ISO 8601).
    pub first_seen: Option<String>,
    /// When the observable was last seen, as MISP writes it (ISO 8601).
    pub last_seen: Option<String>,
    /// Soft-deleted.
    pub deleted: bool,
    /// Excluded from correlation.
    pub disable_correlation: bool,
    /// Inside an object: the attribute's role in it (e.g. `filename`).
    pub object_relation: Option<String>,
    /// Attachment or malware sample content, base64 (checked to decode, at most
    /// [`ATTACHMENT_BYTES_MAX`] bytes decoded).
    pub data: Option<String>,
    /// Tags attached to the attribute.
    pub tags: Vec<Tag>,
    /// Sightings of the attribute.
    pub sightings: Vec<Sighting>,
}

impl Attribute {
    /// Parses an attribute, wrapped (`{"Attribute": {…}}`) or bare. The type is required and
    /// must be a MISP type; the category defaults to the type's default and must be allowed
    /// for the type; `to_ids` defaults to the type's default; distribution defaults to 5
    /// (inherit) and must be 0–5; the value is required and normalised for its type; `data`
    /// must be base64 of at most [`ATTACHMENT_BYTES_MAX`] bytes. Errors name the attribute.
    pub fn from_json(value: &Value) -> Result<Attribute, ModelError> {
        let obj = lenient::unwrap(value, "Attribute", OBJECT)?;
        let label = match lenient::string(obj, OBJECT, "uuid") {
            Ok(Some(uuid)) => format!("attribute {}", uuid.trim()),
            _ => "attribute".to_string(),
        };
        Self::parse(obj).map_err(|e| e.in_item(label))
    }

    /// Parses a bare attribute object; the caller names it in errors.
    pub(super) fn parse(obj: &Object) -> Result<Attribute, ModelError> {
        let type_name = lenient::required_string(obj, OBJECT, "type")?;
        let attr_type =
            registry()
                .lookup(type_name.trim())
                .ok_or_else(|| ModelError::UnknownType {
                    type_name: type_name.clone(),
                })?;
        let category = match lenient::string(obj, OBJECT, "category")? {
            None => attr_type.default_category().to_string(),
            Some(category) if !registry().is_category(&category) => {
                return Err(ModelError::UnknownCategory { category })
            }
            Some(category) if !attr_type.allows_category(&category) => {
                return Err(ModelError::CategoryMismatch {
                    type_name: attr_type.name().to_string(),
                    category,
                })
            }
            Some(category) => category,
        };
        let raw_value = lenient::string(obj, OBJECT, "value")?
            .ok_or_else(|| ModelError::missing(OBJECT, "value"))?;
        let uuid = uuid_or_new(obj, OBJECT)?;
        let mut sightings = children(obj, OBJECT, "Sighting", "sighting", Sighting::from_json)?;
        for sighting in &mut sightings {
            // A sighting nested in an attribute is of that attribute.
            sighting.attribute_uuid.get_or_insert(uuid);
        }
        Ok(Attribute {
            uuid,
            attr_type,
            category,
            value: value::normalise(attr_type, &raw_value)?,
            to_ids: lenient::boolean(obj, OBJECT, "to_ids")?
                .unwrap_or_else(|| attr_type.to_ids_default()),
            distribution: lenient::small_int(obj, OBJECT, "distribution", 0, 5)?.unwrap_or(5),
            sharing_group_uuid: sharing_group_uuid(obj, OBJECT)?,
            comment: lenient::string(obj, OBJECT, "comment")?.unwrap_or_default(),
            timestamp: lenient::int(obj, OBJECT, "timestamp")?,
            first_seen: lenient::string(obj, OBJECT, "first_seen")?,
            last_seen: lenient::string(obj, OBJECT, "last_seen")?,
            deleted: lenient::boolean(obj, OBJECT, "deleted")?.unwrap_or(false),
            disable_correlation: lenient::boolean(obj, OBJECT, "disable_correlation")?
                .unwrap_or(false),
            object_relation: lenient::string(obj, OBJECT, "object_relation")?,
            data: lenient::string(obj, OBJECT, "data")?
                .map(|data| attachment(&data))
                .transpose()?,
            tags: tags(obj, OBJECT, "AttributeTag")?,
            sightings,
        })
    }

    /// The MISP type name, e.g. `ip-dst`.
    pub fn attribute_type_name(&self) -> &'static str {
        self.attr_type.name()
    }

    /// `{"category", "comment", "data" (when present), "deleted", "disable_correlation",
    /// "distribution", "first_seen", "last_seen", "object_relation" (these three `null` when
    /// none), "sharing_group_uuid" (when present), "timestamp" (when known), "to_ids", "type",
    /// "uuid", "value"}`.
    pub fn fields(&self) -> Map<String, Value> {
        self.field_set().into_map()
    }

    /// [`Attribute::fields`] as JSON, serialised without building a map first.
    pub fn fields_json(&self) -> Vec<u8> {
        self.field_set().to_json()
    }

    fn field_set(&self) -> Fields {
        let mut fields = Fields::default();
        if let Some(data) = &self.data {
            fields.set("data", data.clone());
        }
        fields
            .set("category", self.category.clone())
            .set("comment", self.comment.clone())
            .set("deleted", self.deleted)
            .set("disable_correlation", self.disable_correlation)
            .number("distribution", self.distribution)
            .string_or_null("first_seen", &self.first_seen)
            .string_or_null("last_seen", &self.last_seen)
            .string_or_null("object_relation", &self.object_relation)
            .uuid_if("sharing_group_uuid", self.sharing_group_uuid)
            .timestamp_if("timestamp", self.timestamp)
            .set("to_ids", self.to_ids)
            .set("type", self.attr_type.name())
            .uuid("uuid", self.uuid)
            .set("value", self.value.clone());
        fields
    }
}

/// Checks attachment content: standard base64 (whitespace such as line breaks is dropped)
/// decoding to at most [`ATTACHMENT_BYTES_MAX`] bytes. Returns the base64 without whitespace.
fn attachment(data: &str) -> Result<String, ModelError> {
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Refuse oversized input before decoding it: 4 base64 characters carry 3 bytes.
    let estimated_bytes = compact.len() / 4 * 3;
    if estimated_bytes > ATTACHMENT_BYTES_MAX + 2 {
        return Err(ModelError::AttachmentTooLarge {
            bytes: estimated_bytes,
            max_bytes: ATTACHMENT_BYTES_MAX,
        });
    }
    let decoded = STANDARD
        .decode(&compact)
        .map_err(|e| ModelError::invalid_field(OBJECT, "data", format!("not base64: {e}")))?;
    if decoded.len() > ATTACHMENT_BYTES_MAX {
        return Err(ModelError::AttachmentTooLarge {
            bytes: decoded.len(),
            max_bytes: ATTACHMENT_BYTES_MAX,
        });
    }
    Ok(compact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UUID: &str = "5b6464ca-e73c-4707-9b8a-d0350acd0835";

    fn parse(value: Value) -> Result<Attribute, ModelError> {
        Attribute::from_json(&value).map_err(|e| e.root().clone())
    }

    #[test]
    fn defaults_come_from_the_type() {
        let attribute = parse(json!({"type": "ip-dst", "value": " 2001:DB8:0:0:0:0:0:1 "}))
            .expect("valid attribute");
        assert_eq!(attribute.category, "Network activity");
        assert!(attribute.to_ids);
        assert_eq!(attribute.distribution, 5);
        assert_eq!(attribute.value, "2001:db8::1");
        assert_eq!(attribute.uuid.get_version_num(), 4);
        let comment = parse(json!({"type": "comment", "value": "x"})).expect("valid");
        assert_eq!(
            (comment.category.as_str(), comment.to_ids),
            ("Other", false)
        );
    }

    #[test]
    fn wrapped_input_and_output_fields() {
        let attribute = parse(json!({"Attribute": {
            "uuid": UUID.to_uppercase(), "type": "domain", "category": "Network activity",
            "value": "OoiasJdnqjwbeasdasd.com", "to_ids": "1", "distribution": "5",
            "timestamp": "1533306058", "comment": "Ursnif", "sharing_group_id": "0",
            "deleted": false, "disable_correlation": 0, "object_relation": null, "id": "8885",
            "Tag": [{"name": "tlp:amber"}], "Galaxy": [],
            "Sighting": [{"date_sighting": "1551253950", "uuid": "5c7641bf-a4e8-4d5d-a653-03240a00020f"}]
        }}))
        .expect("valid attribute");
        assert_eq!(attribute.tags.len(), 1);
        assert_eq!(attribute.sightings.len(), 1);
        assert_eq!(
            attribute.sightings[0]
                .attribute_uuid
                .map(|u| u.to_string())
                .as_deref(),
            Some(UUID)
        );
        assert_eq!(attribute.attribute_type_name(), "domain");
        assert_eq!(
            Value::Object(attribute.fields()),
            json!({"category": "Network activity", "comment": "Ursnif", "deleted": false,
                "disable_correlation": false, "distribution": "5", "first_seen": null,
                "last_seen": null, "object_relation": null, "timestamp": "1533306058",
                "to_ids": true, "type": "domain", "uuid": UUID,
                "value": "ooiasjdnqjwbeasdasd.com"})
        );
        let keys: Vec<String> = attribute.fields().keys().cloned().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn type_and_category_errors() {
        assert_eq!(
            parse(json!({"type": "bar", "value": "1"})),
            Err(ModelError::UnknownType {
                type_name: "bar".to_string()
            })
        );
        let mismatch = parse(json!({"type": "md5", "category": "Person", "value": "x"}));
        assert_eq!(
            mismatch.expect_err("Person is no md5 category").to_string(),
            "category 'Person' is not allowed for type 'md5'"
        );
        assert_eq!(
            parse(json!({"type": "md5", "category": "Payload", "value": "x"})),
            Err(ModelError::UnknownCategory {
                category: "Payload".to_string()
            })
        );
        assert_eq!(
            parse(json!({"value": "x"})),
            Err(ModelError::missing("attribute", "type"))
        );
        assert_eq!(
            parse(json!({"type": "md5"})),
            Err(ModelError::missing("attribute", "value"))
        );
        let distribution = parse(json!({"type": "text", "value": "x", "distribution": 6}));
        assert!(
            matches!(distribution, Err(ModelError::InvalidField { ref field, .. }) if field == "distribution")
        );
    }

    #[test]
    fn invalid_values_name_the_attribute() {
        let error =
            Attribute::from_json(&json!({"uuid": UUID, "type": "ip-dst", "value": "999.1.1.1"}))
                .expect_err("not an address");
        assert_eq!(
            error.to_string(),
            format!("attribute {UUID}: invalid value '999.1.1.1' for type 'ip-dst': not an IPv4 or IPv6 address")
        );
        assert!(matches!(error.root(), ModelError::InvalidValue { .. }));
    }

    #[test]
    fn attachments_are_checked() {
        let sample =
            parse(json!({"type": "malware-sample", "value": "bar.exe", "data": "ewp9\nCg=="}))
                .expect("valid sample");
        assert_eq!(sample.data.as_deref(), Some("ewp9Cg=="));
        assert!(sample.fields().contains_key("data"));
        let bad = parse(json!({"type": "attachment", "value": "a.txt", "data": "not base64!"}));
        assert!(matches!(bad, Err(ModelError::InvalidField { ref field, .. }) if field == "data"));
        let huge = "A".repeat((ATTACHMENT_BYTES_MAX / 3 + 1) * 4);
        let too_large = parse(json!({"type": "attachment", "value": "a.bin", "data": huge}));
        assert!(
            matches!(too_large, Err(ModelError::AttachmentTooLarge { max_bytes, .. }) if max_bytes == ATTACHMENT_BYTES_MAX)
        );
    }
}
