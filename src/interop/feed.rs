//! MISP feeds, the pure part: the feed layout written by `threatlog export feed` (MISP's and
//! PyMISP's `to_feed`: `manifest.json`, `<uuid>.json` per event, `hashes.csv`) and the
//! manifest read by a fetch.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use super::event_json::{array, flag, text};

/// Event fields a feed event keeps (node-local ids, owner and correlations are left out).
const EVENT_FIELDS: [&str; 10] = [
    "uuid",
    "info",
    "date",
    "threat_level_id",
    "analysis",
    "published",
    "timestamp",
    "publish_timestamp",
    "extends_uuid",
    "distribution",
];

/// Attribute fields a feed attribute keeps.
const ATTRIBUTE_FIELDS: [&str; 13] = [
    "uuid",
    "type",
    "category",
    "value",
    "to_ids",
    "comment",
    "timestamp",
    "object_relation",
    "distribution",
    "disable_correlation",
    "first_seen",
    "last_seen",
    "data",
];

/// Object fields a feed object keeps.
const OBJECT_FIELDS: [&str; 11] = [
    "uuid",
    "name",
    "meta-category",
    "description",
    "template_uuid",
    "template_version",
    "timestamp",
    "distribution",
    "comment",
    "first_seen",
    "last_seen",
];

/// Object reference fields a feed reference keeps.
const REFERENCE_FIELDS: [&str; 6] = [
    "uuid",
    "object_uuid",
    "referenced_uuid",
    "relationship_type",
    "comment",
    "timestamp",
];

/// The manifest fields of an event besides `Orgc` and `Tag`.
const MANIFEST_FIELDS: [&str; 5] = ["info", "date", "analysis", "threat_level_id", "timestamp"];

/// Distribution level written for items shared with a sharing group: a feed carries no
/// sharing groups, so such items become "your organisation only" rather than wider.
const SHARING_GROUP_DISTRIBUTION_IN_FEED: &str = "0";

fn pick(item: &Value, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields {
        if let Some(value) = item.get(*field).filter(|value| !value.is_null()) {
            out.insert((*field).to_string(), value.clone());
        }
    }
    if out
        .get("distribution")
        .is_some_and(|value| text(item, "distribution") == "4" && !value.is_null())
    {
        out.insert(
            "distribution".into(),
            json!(SHARING_GROUP_DISTRIBUTION_IN_FEED),
        );
    }
    out
}

/// The exportable, non-local tags of an item as `{name, colour}`.
fn feed_tags(item: &Value) -> Vec<Value> {
    array(item, "Tag")
        .filter(|tag| !flag(tag.get("local")))
        .filter(|tag| tag.get("exportable").is_none_or(|value| flag(Some(value))))
        .filter_map(|tag| {
            let name = tag.get("name")?.as_str()?;
            let mut out = Map::new();
            out.insert("name".into(), json!(name));
            if let Some(colour) = tag.get("colour").filter(|value| value.is_string()) {
                out.insert("colour".into(), colour.clone());
            }
            Some(Value::Object(out))
        })
        .collect()
}

fn feed_attribute(attribute: &Value) -> Value {
    let mut out = pick(attribute, &ATTRIBUTE_FIELDS);
    let tags = feed_tags(attribute);
    if !tags.is_empty() {
        out.insert("Tag".into(), Value::Array(tags));
    }
    Value::Object(out)
}

fn live(item: &&Value) -> bool {
    !flag(item.get("deleted"))
}

/// The feed form of an event (`{"Event": …}` in, `{"Event": …}` out): MISP's fields without
/// node-local ids, owner, sharing-group ids, local tags, sightings, correlations or deleted
/// items.
pub fn feed_event(wrapped: &Value) -> Value {
    let event = wrapped.get("Event").unwrap_or(wrapped);
    let mut out = pick(event, &EVENT_FIELDS);
    if let Some(orgc) = event.get("Orgc") {
        out.insert("Orgc".into(), Value::Object(pick(orgc, &["name", "uuid"])));
    }
    out.insert("Tag".into(), Value::Array(feed_tags(event)));
    let attributes: Vec<Value> = array(event, "Attribute")
        .filter(live)
        .map(feed_attribute)
        .collect();
    out.insert("Attribute".into(), Value::Array(attributes));
    let objects: Vec<Value> = array(event, "Object")
        .filter(live)
        .map(|object| {
            let mut fields = pick(object, &OBJECT_FIELDS);
            let attributes: Vec<Value> = array(object, "Attribute")
                .filter(live)
                .map(feed_attribute)
                .collect();
            fields.insert("Attribute".into(), Value::Array(attributes));
            let references: Vec<Value> = array(object, "ObjectReference")
                .filter(live)
                .map(|reference| Value::Object(pick(reference, &REFERENCE_FIELDS)))
                .collect();
            fields.insert("ObjectReference".into(), Value::Array(references));
            Value::Object(fields)
        })
        .collect();
    out.insert("Object".into(), Value::Array(objects));
    json!({ "Event": out })
}

/// The manifest entry of a feed event: creator, tags, info, date, analysis, threat level,
/// timestamp.
pub fn manifest_entry(feed_event: &Value) -> Value {
    let event = feed_event.get("Event").unwrap_or(feed_event);
    let mut out = Map::new();
    if let Some(orgc) = event.get("Orgc") {
        out.insert("Orgc".into(), orgc.clone());
    }
    out.insert("Tag".into(), json!(feed_tags(event)));
    for (name, value) in pick(event, &MANIFEST_FIELDS) {
        out.insert(name, value);
    }
    Value::Object(out)
}

/// The lines of `hashes.csv`: the MD5 of every attribute value (each half of a composite
/// value) and the event uuid, as MISP's feed generator writes them.
pub fn hash_lines(feed_event: &Value) -> Vec<String> {
    let event = feed_event.get("Event").unwrap_or(feed_event);
    let uuid = text(event, "uuid");
    let mut out = Vec::new();
    let mut add = |attribute: &Value| {
        let ty = text(attribute, "type");
        let value = text(attribute, "value");
        let parts: Vec<&str> = if ty.contains('|') {
            value.split('|').collect()
        } else {
            vec![&value]
        };
        for part in parts {
            let digest = md5_hex(part.as_bytes());
            out.push(format!("{digest},{uuid}"));
        }
    };
    array(event, "Attribute").for_each(&mut add);
    for object in array(event, "Object") {
        array(object, "Attribute").for_each(&mut add);
    }
    out
}

/// MD5 as lower-case hex. MISP's feed correlation keys are MD5 of values; it is used as a
/// lookup key here, never for integrity.
fn md5_hex(bytes: &[u8]) -> String {
    md5::compute(bytes)
}

/// A feed: the files of a MISP feed directory, by file name.
pub fn feed_files(events: &[Value]) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut manifest = Map::new();
    let mut hashes = String::new();
    for wrapped in events {
        let feed = feed_event(wrapped);
        let uuid = text(&feed["Event"], "uuid").into_owned();
        manifest.insert(uuid.clone(), manifest_entry(&feed));
        for line in hash_lines(&feed) {
            hashes.push_str(&line);
            hashes.push('\n');
        }
        // A JSON value of plain values always serialises.
        files.insert(
            format!("{uuid}.json"),
            serde_json::to_string_pretty(&feed).expect("JSON serialises"),
        );
    }
    files.insert(
        "manifest.json".into(),
        serde_json::to_string_pretty(&Value::Object(manifest)).expect("JSON serialises"),
    );
    files.insert("hashes.csv".into(), hashes);
    files
}

/// One event of a feed manifest: uuid and timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestItem {
    /// The event uuid.
    pub uuid: uuid::Uuid,
    /// The event's timestamp (epoch seconds; 0 when missing).
    pub timestamp: i64,
}

/// Failures reading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON.
    #[error("manifest.json is not JSON: {0}")]
    Json(String),
    /// JSON but not an object of events by uuid.
    #[error("manifest.json is not an object of events keyed by uuid")]
    Shape,
}

/// Parses `manifest.json`: its events (keys that are not uuids are skipped), in uuid order.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ManifestItem>, ManifestError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|error| ManifestError::Json(error.to_string()))?;
    let Value::Object(entries) = value else {
        return Err(ManifestError::Shape);
    };
    let mut out: Vec<ManifestItem> = entries
        .iter()
        .filter_map(|(key, entry)| {
            let uuid = uuid::Uuid::parse_str(key).ok()?;
            let timestamp = text(entry, "timestamp").trim().parse().unwrap_or(0);
            Some(ManifestItem { uuid, timestamp })
        })
        .collect();
    out.sort_by_key(|item| item.uuid);
    Ok(out)
}

/// A tiny MD5 (RFC 1321) for feed correlation keys, so that no extra crate is needed.
mod md5 {
    /// Per-round shift amounts.
    const SHIFTS: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];

    /// The MD5 of `input` as lower-case hex.
    pub fn compute(input: &[u8]) -> String {
        let constants: Vec<u32> = (0..64)
            .map(|i: u32| ((f64::from(i + 1)).sin().abs() * 4_294_967_296.0) as u32)
            .collect();
        let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
        let mut message = input.to_vec();
        let bit_length = (input.len() as u64).wrapping_mul(8);
        message.push(0x80);
        while message.len() % 64 != 56 {
            message.push(0);
        }
        message.extend_from_slice(&bit_length.to_le_bytes());
        for block in message.chunks(64) {
            let words: Vec<u32> = block
                .chunks(4)
                .map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
                .collect();
            let [mut a, mut b, mut c, mut d] = state;
            for i in 0..64 {
                let (f, g) = match i / 16 {
                    0 => ((b & c) | (!b & d), i),
                    1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                    2 => (b ^ c ^ d, (3 * i + 5) % 16),
                    _ => (c ^ (b | !d), (7 * i) % 16),
                };
                let rotated = a
                    .wrapping_add(f)
                    .wrapping_add(constants[i])
                    .wrapping_add(words[g])
                    .rotate_left(SHIFTS[i]);
                a = d;
                d = c;
                c = b;
                b = b.wrapping_add(rotated);
            }
            for (slot, value) in state.iter_mut().zip([a, b, c, d]) {
                *slot = slot.wrapping_add(value);
            }
        }
        state
            .iter()
            .flat_map(|word| word.to_le_bytes())
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn feed_files_follow_misp_layout() {
        let event = json!({"Event": {
        "id": "3", "uuid": "5b646415-7b48-40d5-86b4-c0070acd0835", "info": "x",
        "date": "2018-08-01", "timestamp": "1533123456", "analysis": "1",
        "threat_level_id": "2", "Org": {"name": "local"},
        "Orgc": {"id": "9", "name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
        "Tag": [{"name": "tlp:white", "colour": "#fff"}, {"name": "mine", "local": true}],
        "Attribute": [
            {"id": "1", "type": "domain|ip", "value": "abc|x", "uuid": "57c4448b-454c-4d17-90d1-4d2f950d210f"},
            {"id": "2", "type": "md5", "value": "gone", "deleted": true}
        ],
        "Object": [{"uuid": "0b4c1b1e-0000-4000-8000-000000000001", "name": "file",
                    "distribution": "4", "sharing_group_id": "3", "Attribute": []}]}});
        let files = feed_files(&[event]);
        let manifest: Value = serde_json::from_str(&files["manifest.json"]).unwrap();
        assert_eq!(
            manifest["5b646415-7b48-40d5-86b4-c0070acd0835"],
            json!({"Orgc": {"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
                   "Tag": [{"name": "tlp:white", "colour": "#fff"}], "info": "x",
                   "date": "2018-08-01", "analysis": "1", "threat_level_id": "2",
                   "timestamp": "1533123456"})
        );
        assert_eq!(
            files["hashes.csv"],
            "900150983cd24fb0d6963f7d28e17f72,5b646415-7b48-40d5-86b4-c0070acd0835\n\
             9dd4e461268c8034f5c8564e155c67a6,5b646415-7b48-40d5-86b4-c0070acd0835\n"
        );
        let event: Value =
            serde_json::from_str(&files["5b646415-7b48-40d5-86b4-c0070acd0835.json"]).unwrap();
        assert!(event["Event"].get("id").is_none() && event["Event"].get("Org").is_none());
        assert_eq!(event["Event"]["Attribute"].as_array().unwrap().len(), 1);
        let object = &event["Event"]["Object"][0];
        assert_eq!(object["distribution"], "0");
        assert!(object.get("sharing_group_id").is_none());
        let items = parse_manifest(files["manifest.json"].as_bytes()).unwrap();
        assert_eq!(items[0].timestamp, 1_533_123_456);
    }
}
