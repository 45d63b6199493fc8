//! MISP events and event documents.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    child_label, children, sharing_group_uuid, tags, uuid_or_new, Attribute, EventReport, Fields,
    MispObject, Organisation, Tag,
};
use crate::model::lenient::{self, Object};
use crate::model::{value, ModelError};

/// How events are named in errors about their fields.
const OBJECT: &str = "event";

/// Default event distribution: 1, "this community only", MISP's default for
/// `MISP.default_event_distribution` (the JSON schema sets no default).
const DISTRIBUTION_DEFAULT: u8 = 1;

/// A MISP event: one incident or report, with its attributes, objects and reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's uuid, its identity on every node.
    pub uuid: Uuid,
    /// Title.
    pub info: String,
    /// The event's date, `YYYY-MM-DD`.
    pub date: String,
    /// 1 High, 2 Medium, 3 Low, 4 Undefined (default).
    pub threat_level_id: u8,
    /// 0 Initial (default), 1 Ongoing, 2 Complete.
    pub analysis: u8,
    /// 0 your org, 1 this community (default), 2 connected communities, 3 all, 4 sharing group.
    pub distribution: u8,
    /// The sharing group, for distribution 4.
    pub sharing_group_uuid: Option<Uuid>,
    /// Whether the event is published.
    pub published: bool,
    /// Last change, epoch seconds, when known.
    pub timestamp: Option<i64>,
    /// Last publication, epoch seconds, when known.
    pub publish_timestamp: Option<i64>,
    /// The creator organisation, kept across nodes as provenance.
    pub orgc: Option<Organisation>,
    /// The event this one extends.
    pub extends_uuid: Option<Uuid>,
    /// Tags attached to the event (galaxy clusters included).
    pub tags: Vec<Tag>,
    /// Attributes outside objects.
    pub attributes: Vec<Attribute>,
    /// Objects with their attributes.
    pub objects: Vec<MispObject>,
    /// Event reports.
    pub reports: Vec<EventReport>,
}

impl Event {
    /// Parses an event, wrapped (`{"Event": {…}}`) or bare, dated today (UTC) when it has no
    /// date. See [`Event::from_json_on`].
    pub fn from_json(value: &Value) -> Result<Event, ModelError> {
        Self::from_json_on(value, &today_utc())
    }

    /// Parses an event, wrapped (`{"Event": {…}}`) or bare, using `today` (`YYYY-MM-DD`) as the
    /// date of an event that has none. A JSON object with neither an `Event` wrapper nor an
    /// `info` field is [`ModelError::NotAnEvent`]; a wrapped event without `info` is a missing
    /// field. Defaults: threat level 4, analysis 0, distribution 1, unpublished. Errors inside
    /// the event name it by uuid.
    pub fn from_json_on(value: &Value, today: &str) -> Result<Event, ModelError> {
        Self::from_json_unnamed(value, today).map_err(|e| {
            match event_object(value).and_then(|obj| obj.get("uuid")?.as_str()) {
                // Something that is not an event has no name as an event.
                _ if e == ModelError::NotAnEvent => e,
                Some(uuid) if !uuid.trim().is_empty() => {
                    e.in_item(format!("event {}", uuid.trim()))
                }
                _ => e,
            }
        })
    }

    /// [`Event::from_json_on`] without naming the event in errors.
    fn from_json_unnamed(value: &Value, today: &str) -> Result<Event, ModelError> {
        let Some(outer) = value.as_object() else {
            return Err(ModelError::NotAnEvent);
        };
        let obj = match outer.get("Event") {
            Some(Value::Object(inner)) => inner,
            Some(_) => {
                return Err(ModelError::invalid_field(
                    OBJECT,
                    "Event",
                    "not a JSON object",
                ))
            }
            None if outer.contains_key("info") => outer,
            None => return Err(ModelError::NotAnEvent),
        };
        Self::parse(obj, today)
    }

    /// Parses a bare event object.
    fn parse(obj: &Object, today: &str) -> Result<Event, ModelError> {
        let date = lenient::string(obj, OBJECT, "date")?.unwrap_or_else(|| today.to_string());
        if !value::is_date(date.trim()) {
            return Err(ModelError::invalid_field(
                OBJECT,
                "date",
                format!("'{date}' is not a date (YYYY-MM-DD)"),
            ));
        }
        let orgc = lenient::object(obj, OBJECT, "Orgc")?
            .map(|org| Organisation::parse(org).map_err(|e| e.in_item("Orgc")))
            .transpose()?;
        let parse_attribute =
            |child: &Value| Attribute::parse(lenient::unwrap(child, "Attribute", "attribute")?);
        Ok(Event {
            uuid: uuid_or_new(obj, OBJECT)?,
            info: lenient::required_string(obj, OBJECT, "info")?,
            date: date.trim().to_string(),
            threat_level_id: lenient::small_int(obj, OBJECT, "threat_level_id", 1, 4)?.unwrap_or(4),
            analysis: lenient::small_int(obj, OBJECT, "analysis", 0, 2)?.unwrap_or(0),
            distribution: lenient::small_int(obj, OBJECT, "distribution", 0, 4)?
                .unwrap_or(DISTRIBUTION_DEFAULT),
            sharing_group_uuid: sharing_group_uuid(obj, OBJECT)?,
            published: lenient::boolean(obj, OBJECT, "published")?.unwrap_or(false),
            timestamp: lenient::int(obj, OBJECT, "timestamp")?,
            publish_timestamp: lenient::int(obj, OBJECT, "publish_timestamp")?,
            orgc,
            extends_uuid: lenient::uuid(obj, OBJECT, "extends_uuid")?,
            tags: tags(obj, OBJECT, "EventTag")?,
            attributes: children(obj, OBJECT, "Attribute", "attribute", parse_attribute)?,
            objects: children(obj, OBJECT, "Object", "object", MispObject::from_json)?,
            reports: children(
                obj,
                OBJECT,
                "EventReport",
                "event report",
                EventReport::from_json,
            )?,
        })
    }

    /// `{"Orgc" ({"name", "uuid"}, when known), "analysis", "date", "distribution",
    /// "extends_uuid" ("" when none, as MISP), "info", "publish_timestamp" (when known),
    /// "published", "sharing_group_uuid" (when present), "threat_level_id", "timestamp" (when
    /// known), "uuid"}`. `Orgc` is the one nested object: it is part of the event's identity
    /// as MISP shows it.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Fields::default();
        if let Some(orgc) = &self.orgc {
            fields.set("Orgc", orgc.fields());
        }
        fields
            .number("analysis", self.analysis)
            .set("date", self.date.clone())
            .number("distribution", self.distribution)
            .set(
                "extends_uuid",
                self.extends_uuid.map(|u| u.to_string()).unwrap_or_default(),
            )
            .set("info", self.info.clone())
            .timestamp_if("publish_timestamp", self.publish_timestamp)
            .set("published", self.published)
            .uuid_if("sharing_group_uuid", self.sharing_group_uuid)
            .number("threat_level_id", self.threat_level_id)
            .timestamp_if("timestamp", self.timestamp)
            .uuid("uuid", self.uuid);
        fields.into_map()
    }
}

/// Parses a document of MISP events: one event (wrapped or bare), a JSON list of events, or
/// MISP's search response `{"response": [ … ]}`. Events without a date are dated today (UTC).
/// Any error fails the whole document; errors inside a list name the event by uuid or position.
pub fn parse_events_document(value: &Value) -> Result<Vec<Event>, ModelError> {
    parse_events_document_on(value, &today_utc())
}

/// [`parse_events_document`] with `today` (`YYYY-MM-DD`) as the date of events that have none,
/// for callers that inject the clock.
pub fn parse_events_document_on(value: &Value, today: &str) -> Result<Vec<Event>, ModelError> {
    let list = match value {
        Value::Array(items) => items,
        Value::Object(obj) => match obj.get("response") {
            Some(Value::Array(items)) => items,
            Some(single @ Value::Object(_)) => {
                return Ok(vec![Event::from_json_on(single, today)?])
            }
            _ => return Ok(vec![Event::from_json_on(value, today)?]),
        },
        _ => return Err(ModelError::NotAnEvent),
    };
    list.iter()
        .enumerate()
        .map(|(index, item)| {
            Event::from_json_unnamed(item, today)
                .map_err(|e| e.in_item(child_label("event", item, index)))
        })
        .collect()
}

/// The event object of `value`: inside an `Event` wrapper, or `value` itself.
fn event_object(value: &Value) -> Option<&Object> {
    let obj = value.as_object()?;
    obj.get("Event").and_then(Value::as_object).or(Some(obj))
}

/// Today's date in UTC, `YYYY-MM-DD`.
fn today_utc() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let days = i64::try_from(seconds / 86_400).expect("days since 1970 fit in an i64");
    civil_date(days)
}

/// The date `days` after 1970-01-01, `YYYY-MM-DD`.
fn civil_date(days: i64) -> String {
    let (year, month, day) = crate::model::date::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UUID: &str = "5758ebf5-c898-48e6-9fe9-5665c0a83866";

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(17_774), "2018-08-31");
        assert_eq!(civil_date(19_782), "2024-02-29");
        assert!(value::is_date(&today_utc()));
    }

    #[test]
    fn defaults_and_output_shape() {
        let event = Event::from_json_on(
            &json!({"info": "x", "uuid": UUID.to_uppercase()}),
            "2024-05-06",
        )
        .expect("valid event");
        assert_eq!(event.date, "2024-05-06");
        assert_eq!(
            (event.threat_level_id, event.analysis, event.distribution),
            (4, 0, 1)
        );
        assert!(!event.published);
        assert_eq!(
            Value::Object(event.fields()),
            json!({"analysis": "0", "date": "2024-05-06", "distribution": "1",
                "extends_uuid": "", "info": "x", "published": false, "threat_level_id": "4",
                "uuid": UUID})
        );
    }

    #[test]
    fn not_an_event_and_bad_fields() {
        assert_eq!(Event::from_json(&json!({})), Err(ModelError::NotAnEvent));
        assert_eq!(Event::from_json(&json!([1])), Err(ModelError::NotAnEvent));
        assert_eq!(
            Event::from_json(&json!({"Event": {"date": "2020-01-01"}}))
                .map_err(|e| e.root().clone()),
            Err(ModelError::missing("event", "info"))
        );
        for (key, bad) in [
            ("date", json!("2020-13-01")),
            ("threat_level_id", json!(0)),
            ("analysis", json!("3")),
            ("distribution", json!(5)),
            ("extends_uuid", json!("x")),
        ] {
            let mut event = json!({"info": "x", "uuid": UUID});
            event[key] = bad;
            let error = Event::from_json(&event).expect_err("an invalid field");
            assert!(
                matches!(error.root(), ModelError::InvalidField { field, .. } if field == key),
                "{key}: {error}"
            );
            assert!(error
                .to_string()
                .starts_with(&format!("event {UUID}: event: invalid field '{key}'")));
        }
    }

    #[test]
    fn tags_galaxies_and_sharing_groups() {
        let group = "5d1c5b1a-2b4c-4f0e-9d2c-1a2b3c4d5e6f";
        let event = Event::from_json(&json!({"Event": {"info": "x", "distribution": "4",
            "SharingGroup": {"uuid": group, "name": "G"}, "sharing_group_id": "3",
            "Tag": [{"name": "tlp:amber"}],
            "EventTag": [{"local": 1, "Tag": {"name": "workflow:todo"}}, {"Tag": {"name": "tlp:amber"}}],
            "Galaxy": [{"GalaxyCluster": [{"tag_name": "misp-galaxy:banker=\"Gozi\""},
                {"type": "tool", "value": "Mimikatz"}]}]}}))
        .expect("valid event");
        let names: Vec<(&str, bool)> = event
            .tags
            .iter()
            .map(|t| (t.name.as_str(), t.local))
            .collect();
        assert_eq!(
            names,
            [
                ("tlp:amber", false),
                ("workflow:todo", true),
                ("misp-galaxy:banker=\"Gozi\"", false),
                ("misp-galaxy:tool=\"Mimikatz\"", false)
            ]
        );
        assert_eq!(
            event.sharing_group_uuid.map(|u| u.to_string()).as_deref(),
            Some(group)
        );
        assert_eq!(event.fields()["sharing_group_uuid"], json!(group));
    }

    #[test]
    fn documents_of_several_events() {
        let one = json!({"Event": {"info": "a", "uuid": UUID}});
        assert_eq!(parse_events_document(&one).map(|v| v.len()), Ok(1));
        let undated = parse_events_document_on(&json!([{"info": "a"}]), "2001-02-03");
        assert_eq!(
            undated.map(|events| events[0].date.clone()),
            Ok("2001-02-03".to_string())
        );
        let list = json!([{"info": "a"}, {"Event": {"info": "b"}}]);
        assert_eq!(parse_events_document(&list).map(|v| v.len()), Ok(2));
        let response = json!({"response": [{"Event": {"info": "a"}}, {"Event": {"info": "b"}}]});
        assert_eq!(parse_events_document(&response).map(|v| v.len()), Ok(2));
        let bad = json!([{"info": "a"}, {"Event": {"info": "b", "Attribute": [{"type": "bar", "value": "1"}]}}]);
        let error = parse_events_document(&bad).expect_err("unknown type");
        assert_eq!(
            error.to_string(),
            "event #2: attribute #1: unknown attribute type 'bar'"
        );
        assert_eq!(
            parse_events_document(&json!({})),
            Err(ModelError::NotAnEvent)
        );
        assert_eq!(
            parse_events_document(&json!("x")),
            Err(ModelError::NotAnEvent)
        );
    }
}
