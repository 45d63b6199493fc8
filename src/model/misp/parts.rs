//! The small MISP objects: organisations, tags, sightings and sharing groups.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{children, uuid_or_new, Fields};
use crate::model::lenient::{self, Object};
use crate::model::ModelError;

/// An organisation (MISP `Organisation`, `Orgc`, `Org`). Its identity is the uuid.
#[derive(Debug, Clone, PartialEq)]
pub struct Organisation {
    /// The organisation's uuid, the same on every node.
    pub uuid: Uuid,
    /// Display name.
    pub name: String,
}

impl Organisation {
    /// Parses an organisation, wrapped (`{"Organisation": {…}}`) or bare. The uuid is required:
    /// unlike events, an organisation must never get a made-up identity.
    pub fn from_json(value: &Value) -> Result<Organisation, ModelError> {
        Self::parse(lenient::unwrap(value, "Organisation", "organisation")?)
    }

    /// Parses a bare organisation object.
    pub(super) fn parse(obj: &Object) -> Result<Organisation, ModelError> {
        const OBJECT: &str = "organisation";
        let uuid = lenient::uuid(obj, OBJECT, "uuid")?
            .ok_or_else(|| ModelError::missing(OBJECT, "uuid"))?;
        let name = lenient::string(obj, OBJECT, "name")?.unwrap_or_default();
        Ok(Organisation { uuid, name })
    }

    /// `{"name", "uuid"}`.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Fields::default();
        fields
            .set("name", self.name.clone())
            .uuid("uuid", self.uuid);
        fields.into_map()
    }
}

/// A tag attached to an event or attribute. Galaxy clusters are tags named
/// `misp-galaxy:<type>="<value>"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    /// The tag name, e.g. `tlp:green`; tags are identified by name.
    pub name: String,
    /// Display colour, e.g. `#ffffff`, when known.
    pub colour: Option<String>,
    /// Whether the tag is exported with the data (MISP default true).
    pub exportable: bool,
    /// A local tag never leaves the node (MISP default false).
    pub local: bool,
}

impl Tag {
    /// Parses a tag, wrapped (`{"Tag": {…}}`), bare, or as a plain string (its name).
    pub fn from_json(value: &Value) -> Result<Tag, ModelError> {
        const OBJECT: &str = "tag";
        if let Value::String(name) = value {
            let name = name.trim();
            if name.is_empty() {
                return Err(ModelError::missing(OBJECT, "name"));
            }
            return Ok(Tag {
                name: name.to_string(),
                colour: None,
                exportable: true,
                local: false,
            });
        }
        let obj = lenient::unwrap(value, "Tag", OBJECT)?;
        let name = lenient::required_string(obj, OBJECT, "name")?
            .trim()
            .to_string();
        Ok(Tag {
            name,
            colour: lenient::string(obj, OBJECT, "colour")?,
            exportable: lenient::boolean(obj, OBJECT, "exportable")?.unwrap_or(true),
            local: lenient::boolean(obj, OBJECT, "local")?.unwrap_or(false),
        })
    }

    /// `{"colour" (when known), "exportable", "local", "name"}`.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Fields::default();
        if let Some(colour) = &self.colour {
            fields.set("colour", colour.clone());
        }
        fields
            .set("exportable", self.exportable)
            .set("local", self.local)
            .set("name", self.name.clone());
        fields.into_map()
    }
}

/// A sighting of an attribute. Immutable; deduplicated by uuid.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// The sighting's uuid.
    pub uuid: Uuid,
    /// The attribute sighted, when the sighting is not nested in it.
    pub attribute_uuid: Option<Uuid>,
    /// MISP `type`: 0 seen, 1 false positive, 2 expiration.
    pub kind: u8,
    /// Free-text source, e.g. the sensor name.
    pub source: String,
    /// When it was seen, epoch seconds.
    pub date_sighting: i64,
    /// The organisation that reported it, unless anonymised.
    pub org: Option<Organisation>,
}

impl Sighting {
    /// Parses a sighting, wrapped (`{"Sighting": {…}}`) or bare. `date_sighting` is required:
    /// the API layer fills in the current time for a new sighting before parsing.
    pub fn from_json(value: &Value) -> Result<Sighting, ModelError> {
        const OBJECT: &str = "sighting";
        let obj = lenient::unwrap(value, "Sighting", OBJECT)?;
        let org = lenient::object(obj, OBJECT, "Organisation")?
            .map(Organisation::parse)
            .transpose()?;
        Ok(Sighting {
            uuid: uuid_or_new(obj, OBJECT)?,
            attribute_uuid: lenient::uuid(obj, OBJECT, "attribute_uuid")?,
            kind: lenient::small_int(obj, OBJECT, "type", 0, 2)?.unwrap_or(0),
            source: lenient::string(obj, OBJECT, "source")?.unwrap_or_default(),
            date_sighting: lenient::int(obj, OBJECT, "date_sighting")?
                .ok_or_else(|| ModelError::missing(OBJECT, "date_sighting"))?,
            org,
        })
    }

    /// `{"Organisation" (when known), "attribute_uuid" (when known), "date_sighting", "source",
    /// "type", "uuid"}`.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Fields::default();
        if let Some(org) = &self.org {
            fields.set("Organisation", org.fields());
        }
        fields
            .uuid_if("attribute_uuid", self.attribute_uuid)
            .number("date_sighting", self.date_sighting)
            .set("source", self.source.clone())
            .number("type", self.kind)
            .uuid("uuid", self.uuid);
        fields.into_map()
    }
}

/// A sharing group: a named set of organisations that may see the data distributed to it.
#[derive(Debug, Clone, PartialEq)]
pub struct SharingGroup {
    /// The group's uuid.
    pub uuid: Uuid,
    /// Display name.
    pub name: String,
    /// Free-text description.
    pub description: String,
    /// Free-text statement of who the data may be released to.
    pub releasability: String,
    /// Member organisations.
    pub organisations: Vec<Organisation>,
    /// Whether the group is not bound to particular servers (MISP "roaming").
    pub roaming: bool,
}

impl SharingGroup {
    /// Parses a sharing group, wrapped (`{"SharingGroup": {…}, "SharingGroupOrg": […]}` as MISP's
    /// REST API returns it) or bare (with `SharingGroupOrg` inside, as embedded in events).
    /// Members come from `SharingGroupOrg[].Organisation`.
    pub fn from_json(value: &Value) -> Result<SharingGroup, ModelError> {
        const OBJECT: &str = "sharing group";
        let outer = lenient::as_object(value, OBJECT)?;
        let obj = lenient::unwrap(value, "SharingGroup", OBJECT)?;
        let member = |link: &Value| {
            let link = lenient::as_object(link, "sharing group organisation")?;
            match lenient::object(link, "sharing group organisation", "Organisation")? {
                Some(org) => Organisation::parse(org),
                None => Organisation::parse(link),
            }
        };
        let mut organisations = children(obj, OBJECT, "SharingGroupOrg", "organisation", member)?;
        if !std::ptr::eq(outer, obj) {
            organisations.extend(children(
                outer,
                OBJECT,
                "SharingGroupOrg",
                "organisation",
                member,
            )?);
        }
        let mut seen = Vec::new();
        organisations.retain(|org| {
            let new = !seen.contains(&org.uuid);
            seen.push(org.uuid);
            new
        });
        Ok(SharingGroup {
            uuid: uuid_or_new(obj, OBJECT)?,
            name: lenient::required_string(obj, OBJECT, "name")?,
            description: lenient::string(obj, OBJECT, "description")?.unwrap_or_default(),
            releasability: lenient::string(obj, OBJECT, "releasability")?.unwrap_or_default(),
            organisations,
            roaming: lenient::boolean(obj, OBJECT, "roaming")?.unwrap_or(false),
        })
    }

    /// `{"description", "name", "releasability", "roaming", "uuid"}`; members are listed by the
    /// caller.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Fields::default();
        fields
            .set("description", self.description.clone())
            .set("name", self.name.clone())
            .set("releasability", self.releasability.clone())
            .set("roaming", self.roaming)
            .uuid("uuid", self.uuid);
        fields.into_map()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORG: &str = "55f6ea5e-2c60-40e5-964f-47a8950d210f";

    #[test]
    fn organisations_need_a_uuid() {
        let org = Organisation::from_json(
            &json!({"Organisation": {"uuid": ORG.to_uppercase(), "name": "CIRCL", "id": "3"}}),
        )
        .expect("valid organisation");
        assert_eq!(org.uuid.to_string(), ORG);
        assert_eq!(
            Value::Object(org.fields()),
            json!({"name": "CIRCL", "uuid": ORG})
        );
        assert_eq!(
            Organisation::from_json(&json!({"name": "CIRCL"})),
            Err(ModelError::missing("organisation", "uuid"))
        );
    }

    #[test]
    fn tags_in_all_shapes() {
        let tag = Tag::from_json(&json!({"Tag": {"name": " tlp:white ", "colour": "#ffffff", "exportable": "0", "local": 1}}))
            .expect("valid tag");
        assert_eq!(tag.name, "tlp:white");
        assert!(!tag.exportable && tag.local);
        let keys: Vec<String> = tag.fields().keys().cloned().collect();
        assert_eq!(keys, ["colour", "exportable", "local", "name"]);
        let plain = Tag::from_json(&json!("tlp:green")).expect("a name");
        assert_eq!(
            (plain.exportable, plain.local, plain.colour),
            (true, false, None)
        );
        assert_eq!(
            Tag::from_json(&json!({"colour": "#fff"})),
            Err(ModelError::missing("tag", "name"))
        );
    }

    #[test]
    fn sightings() {
        let sighting = Sighting::from_json(&json!({
            "uuid": "5c7641bf-a4e8-4d5d-a653-03240a00020f", "date_sighting": "1551253950",
            "type": "1", "source": "", "attribute_uuid": "5b6464ca-e73c-4707-9b8a-d0350acd0835",
            "Organisation": {"uuid": ORG, "name": "ORGNAME"}}))
        .expect("valid sighting");
        assert_eq!(sighting.kind, 1);
        assert_eq!(
            Value::Object(sighting.fields()),
            json!({"Organisation": {"name": "ORGNAME", "uuid": ORG},
                "attribute_uuid": "5b6464ca-e73c-4707-9b8a-d0350acd0835",
                "date_sighting": "1551253950", "source": "", "type": "1",
                "uuid": "5c7641bf-a4e8-4d5d-a653-03240a00020f"})
        );
        let bad_kind = Sighting::from_json(&json!({"type": 3, "date_sighting": 1}));
        assert!(
            matches!(bad_kind, Err(ModelError::InvalidField { ref field, .. }) if field == "type")
        );
        assert_eq!(
            Sighting::from_json(&json!({"type": 0})),
            Err(ModelError::missing("sighting", "date_sighting"))
        );
    }

    #[test]
    fn sharing_groups_with_members() {
        let other = "5c6983c8-3af8-4304-869c-4800d6c1883c";
        let group = SharingGroup::from_json(&json!({
            "SharingGroup": {"uuid": "5d1c5b1a-2b4c-4f0e-9d2c-1a2b3c4d5e6f", "name": "CSIRTs",
                "releasability": "members only", "roaming": true,
                "SharingGroupOrg": [{"Organisation": {"uuid": ORG, "name": "CIRCL"}}]},
            "SharingGroupOrg": [{"Organisation": {"uuid": other, "name": "B"}},
                {"Organisation": {"uuid": ORG, "name": "CIRCL"}}]}))
        .expect("valid sharing group");
        assert_eq!(group.organisations.len(), 2);
        assert!(group.roaming);
        assert_eq!(
            Value::Object(group.fields()),
            json!({"description": "", "name": "CSIRTs", "releasability": "members only",
                "roaming": true, "uuid": "5d1c5b1a-2b4c-4f0e-9d2c-1a2b3c4d5e6f"})
        );
        assert!(SharingGroup::from_json(&json!({"uuid": ORG})).is_err());
    }
}
