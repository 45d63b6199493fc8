//! MISP objects (templated groups of attributes), their references, and event reports.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{children, sharing_group_uuid, uuid_or_new, Attribute, Fields};
use crate::model::lenient::{self, Object};
use crate::model::ModelError;

/// A MISP object: attributes grouped by a template (e.g. a `file` object with `filename`,
/// `md5`, `size-in-bytes`).
#[derive(Debug, Clone, PartialEq)]
pub struct MispObject {
    /// The object's uuid.
    pub uuid: Uuid,
    /// Template name, e.g. `file`.
    pub name: String,
    /// Template meta-category, e.g. `file`, `network`.
    pub meta_category: String,
    /// Template description.
    pub description: String,
    /// The template's uuid as sent (MISP does not require it to be a uuid).
    pub template_uuid: Option<String>,
    /// The template's version as sent.
    pub template_version: Option<String>,
    /// 0–5 as for attributes; default 5 (inherit the event's).
    pub distribution: u8,
    /// The sharing group, for distribution 4.
    pub sharing_group_uuid: Option<Uuid>,
    /// Free-text comment.
    pub comment: String,
    /// Soft-deleted.
    pub deleted: bool,
    /// When first seen, as MISP writes it (ISO 8601).
    pub first_seen: Option<String>,
    /// When last seen, as MISP writes it (ISO 8601).
    pub last_seen: Option<String>,
    /// Last change, epoch seconds, when known.
    pub timestamp: Option<i64>,
    /// The object's attributes; each validated on its own (nothing is inherited).
    pub attributes: Vec<Attribute>,
    /// References from this object to other objects or attributes.
    pub references: Vec<ObjectReference>,
}

impl MispObject {
    /// Parses an object, wrapped (`{"Object": {…}}`) or bare. `name` is required; the
    /// distribution defaults to 5 and must be 0–5. References without `object_uuid` get this
    /// object's uuid. Errors name the object and the failing child.
    pub fn from_json(value: &Value) -> Result<MispObject, ModelError> {
        const OBJECT: &str = "object";
        let obj = lenient::unwrap(value, "Object", OBJECT)?;
        let uuid = uuid_or_new(obj, OBJECT)?;
        let parse_attribute =
            |child: &Value| Attribute::parse(lenient::unwrap(child, "Attribute", "attribute")?);
        let mut references = children(
            obj,
            OBJECT,
            "ObjectReference",
            "object reference",
            ObjectReference::from_json,
        )?;
        for reference in &mut references {
            reference.object_uuid.get_or_insert(uuid);
        }
        let meta_category = match lenient::string(obj, OBJECT, "meta-category")? {
            Some(meta) => Some(meta),
            None => lenient::string(obj, OBJECT, "meta_category")?,
        };
        Ok(MispObject {
            uuid,
            name: lenient::required_string(obj, OBJECT, "name")?,
            meta_category: meta_category.unwrap_or_default(),
            description: lenient::string(obj, OBJECT, "description")?.unwrap_or_default(),
            template_uuid: lenient::string(obj, OBJECT, "template_uuid")?,
            template_version: lenient::string(obj, OBJECT, "template_version")?,
            distribution: lenient::small_int(obj, OBJECT, "distribution", 0, 5)?.unwrap_or(5),
            sharing_group_uuid: sharing_group_uuid(obj, OBJECT)?,
            comment: lenient::string(obj, OBJECT, "comment")?.unwrap_or_default(),
            deleted: lenient::boolean(obj, OBJECT, "deleted")?.unwrap_or(false),
            first_seen: lenient::string(obj, OBJECT, "first_seen")?,
            last_seen: lenient::string(obj, OBJECT, "last_seen")?,
            timestamp: lenient::int(obj, OBJECT, "timestamp")?,
            attributes: children(obj, OBJECT, "Attribute", "attribute", parse_attribute)?,
            references,
        })
    }

    /// `{"comment", "deleted", "description", "distribution", "first_seen", "last_seen",
    /// "meta-category", "name", "sharing_group_uuid" (when present), "template_uuid",
    /// "template_version" (`null` when none), "timestamp" (when known), "uuid"}`.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Fields::default();
        fields
            .set("comment", self.comment.clone())
            .set("deleted", self.deleted)
            .set("description", self.description.clone())
            .number("distribution", self.distribution)
            .string_or_null("first_seen", &self.first_seen)
            .string_or_null("last_seen", &self.last_seen)
            .set("meta-category", self.meta_category.clone())
            .set("name", self.name.clone())
            .uuid_if("sharing_group_uuid", self.sharing_group_uuid)
            .string_or_null("template_uuid", &self.template_uuid)
            .string_or_null("template_version", &self.template_version)
            .timestamp_if("timestamp", self.timestamp)
            .uuid("uuid", self.uuid);
        fields.into_map()
    }
}

/// A typed link from an object to another object or attribute (by uuid).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectReference {
    /// The reference's uuid.
    pub uuid: Uuid,
    /// The referring object; filled in from the enclosing object when nested.
    pub object_uuid: Option<Uuid>,
    /// The object or attribute referred to.
    pub referenced_uuid: Uuid,
    /// The relationship, e.g. `drops`, `communicates-with`.
    pub relationship_type: String,
    /// Free-text comment.
    pub comment: String,
    /// Soft-deleted.
    pub deleted: bool,
    /// Last change, epoch seconds, when known.
    pub timestamp: Option<i64>,
}

impl ObjectReference {
    /// Parses a reference, wrapped (`{"ObjectReference": {…}}`) or bare. `referenced_uuid` and
    /// `relationship_type` are required; uuids must be uuids.
    pub fn from_json(value: &Value) -> Result<ObjectReference, ModelError> {
        const OBJECT: &str = "object reference";
        let obj = lenient::unwrap(value, "ObjectReference", OBJECT)?;
        let referenced_uuid = lenient::uuid(obj, OBJECT, "referenced_uuid")?
            .ok_or_else(|| ModelError::missing(OBJECT, "referenced_uuid"))?;
        Ok(ObjectReference {
            uuid: uuid_or_new(obj, OBJECT)?,
            object_uuid: lenient::uuid(obj, OBJECT, "object_uuid")?,
            referenced_uuid,
            relationship_type: lenient::required_string(obj, OBJECT, "relationship_type")?,
            comment: lenient::string(obj, OBJECT, "comment")?.unwrap_or_default(),
            deleted: lenient::boolean(obj, OBJECT, "deleted")?.unwrap_or(false),
            timestamp: lenient::int(obj, OBJECT, "timestamp")?,
        })
    }

    /// `{"comment", "deleted", "object_uuid" (when known), "referenced_uuid",
    /// "relationship_type", "timestamp" (when known), "uuid"}`.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Fields::default();
        fields
            .set("comment", self.comment.clone())
            .set("deleted", self.deleted)
            .uuid_if("object_uuid", self.object_uuid)
            .uuid("referenced_uuid", self.referenced_uuid)
            .set("relationship_type", self.relationship_type.clone())
            .timestamp_if("timestamp", self.timestamp)
            .uuid("uuid", self.uuid);
        fields.into_map()
    }
}

/// An event report: a named markdown document attached to an event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventReport {
    /// The report's uuid.
    pub uuid: Uuid,
    /// Title.
    pub name: String,
    /// Markdown content.
    pub content: String,
    /// 0–5 as for attributes; default 5 (inherit the event's).
    pub distribution: u8,
    /// The sharing group, for distribution 4.
    pub sharing_group_uuid: Option<Uuid>,
    /// Last change, epoch seconds, when known.
    pub timestamp: Option<i64>,
    /// Soft-deleted.
    pub deleted: bool,
}

impl EventReport {
    /// Parses a report, wrapped (`{"EventReport": {…}}`) or bare. `name` is required.
    pub fn from_json(value: &Value) -> Result<EventReport, ModelError> {
        const OBJECT: &str = "event report";
        let obj: &Object = lenient::unwrap(value, "EventReport", OBJECT)?;
        Ok(EventReport {
            uuid: uuid_or_new(obj, OBJECT)?,
            name: lenient::required_string(obj, OBJECT, "name")?,
            content: lenient::string(obj, OBJECT, "content")?.unwrap_or_default(),
            distribution: lenient::small_int(obj, OBJECT, "distribution", 0, 5)?.unwrap_or(5),
            sharing_group_uuid: sharing_group_uuid(obj, OBJECT)?,
            timestamp: lenient::int(obj, OBJECT, "timestamp")?,
            deleted: lenient::boolean(obj, OBJECT, "deleted")?.unwrap_or(false),
        })
    }

    /// `{"content", "deleted", "distribution", "name", "sharing_group_uuid" (when present),
    /// "timestamp" (when known), "uuid"}`.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Fields::default();
        fields
            .set("content", self.content.clone())
            .set("deleted", self.deleted)
            .number("distribution", self.distribution)
            .set("name", self.name.clone())
            .uuid_if("sharing_group_uuid", self.sharing_group_uuid)
            .timestamp_if("timestamp", self.timestamp)
            .uuid("uuid", self.uuid);
        fields.into_map()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OBJECT_UUID: &str = "5b646415-7b48-40d5-86b4-c0070acd0835";
    const TARGET: &str = "57c4448a-fb04-457d-87e7-4127950d210f";

    #[test]
    fn objects_with_attributes_and_references() {
        let object = MispObject::from_json(&json!({"Object": {
            "uuid": OBJECT_UUID, "name": "file", "meta-category": "file", "distribution": "5",
            "template_uuid": "688c46fb-5edb-40a3-8273-1af7923e2215", "template_version": 25,
            "Attribute": [{"type": "filename", "object_relation": "filename", "value": "bar"},
                {"type": "md5", "object_relation": "md5", "value": "D41D8CD98F00B204E9800998ECF8427E"}],
            "ObjectReference": [{"referenced_uuid": TARGET, "relationship_type": "drops"}]}}))
        .expect("valid object");
        assert_eq!(object.attributes.len(), 2);
        assert_eq!(
            object.attributes[1].value,
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            object.attributes[0].object_relation.as_deref(),
            Some("filename")
        );
        assert_eq!(
            object.references[0]
                .object_uuid
                .map(|u| u.to_string())
                .as_deref(),
            Some(OBJECT_UUID)
        );
        let fields = Value::Object(object.fields());
        assert_eq!(fields["meta-category"], json!("file"));
        assert_eq!(fields["template_version"], json!("25"));
        assert_eq!(fields["distribution"], json!("5"));
        assert_eq!(fields["first_seen"], Value::Null);
        assert!(fields.get("timestamp").is_none());
    }

    #[test]
    fn errors_name_the_failing_child() {
        let bad_reference = MispObject::from_json(&json!({"uuid": OBJECT_UUID, "name": "file",
            "ObjectReference": [{"referenced_uuid": "b", "relationship_type": "baz"}]}))
        .expect_err("b is no uuid");
        assert_eq!(
            bad_reference.to_string(),
            "object reference #1: object reference: invalid field 'referenced_uuid': 'b' is not a uuid"
        );
        let bad_attribute = MispObject::from_json(&json!({"name": "file",
            "Attribute": [{"uuid": TARGET, "type": "md5", "value": "123"}]}))
        .expect_err("short md5");
        assert!(bad_attribute.to_string().starts_with(&format!(
            "attribute {TARGET}: invalid value '123' for type 'md5'"
        )));
        assert!(matches!(
            MispObject::from_json(&json!({"uuid": "a", "name": "file"})),
            Err(ModelError::InvalidField { .. })
        ));
        assert_eq!(
            MispObject::from_json(&json!({"meta-category": "file"})),
            Err(ModelError::missing("object", "name"))
        );
    }

    #[test]
    fn references_and_reports() {
        let reference = ObjectReference::from_json(&json!({"ObjectReference": {
            "uuid": OBJECT_UUID, "object_uuid": TARGET, "referenced_uuid": TARGET,
            "relationship_type": "related-to", "timestamp": 17, "deleted": "1"}}))
        .expect("valid reference");
        assert_eq!(
            Value::Object(reference.fields()),
            json!({"comment": "", "deleted": true, "object_uuid": TARGET,
                "referenced_uuid": TARGET, "relationship_type": "related-to",
                "timestamp": "17", "uuid": OBJECT_UUID})
        );
        assert_eq!(
            ObjectReference::from_json(&json!({"relationship_type": "x"})),
            Err(ModelError::missing("object reference", "referenced_uuid"))
        );
        let report = EventReport::from_json(&json!({"EventReport": {"uuid": OBJECT_UUID,
            "name": "Summary", "content": "# Hello", "distribution": 1}}))
        .expect("valid report");
        assert_eq!(
            Value::Object(report.fields()),
            json!({"content": "# Hello", "deleted": false, "distribution": "1",
                "name": "Summary", "uuid": OBJECT_UUID})
        );
    }
}
