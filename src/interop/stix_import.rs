//! STIX 2.1 import: a bundle becomes one MISP event (JSON), ready for
//! [`crate::node::Node::import_document`]. Pure.
//!
//! - **report**: the event's uuid, `info` (name) and `date` (published, else created); its
//!   description becomes an event report and its author (an organisation identity) the
//!   event's creator organisation. Without a report, the bundle's id and first object
//!   name the event.
//! - **indicator**: a simple pattern (`[ipv4-addr:value = '…']`, `domain-name`, `url`,
//!   `email-addr`, `file:hashes.'SHA-256'`, `file:name`, …, see [`pattern_type()`]) becomes an
//!   attribute of the matching MISP type with `to_ids` set; any other pattern (several
//!   comparisons, qualifiers, unknown paths) is kept whole as a `stix2-pattern` attribute. The
//!   indicator's uuid, name (as comment) and labels (as tags) are kept.
//! - **observed-data** and top-level cyber observables (SCOs): each observable becomes an
//!   attribute (`to_ids` off); a file with several properties becomes a `file` object.
//! - **threat-actor**, **intrusion-set**, **malware**, **tool**, **attack-pattern**,
//!   **campaign**: galaxy tags on the event (`misp-galaxy:threat-actor="APT1"`, …).
//! - **relationship**: an indicator that `indicates` a galaxy-tagged object gets that galaxy
//!   tag too; a relationship from an imported object (a file) to another imported item becomes
//!   an object reference; every other relationship is listed in the event report
//!   ("Relationships").
//! - **marking-definition** (TLP): `tlp:…` tags on the event.
//!
//! What cannot be represented (an observable value the type registry refuses, an unknown
//! object type) is left out and reported in [`StixEvent::skipped`].

use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use crate::model::{registry, Attribute};

/// Most objects read from one bundle.
pub const STIX_OBJECTS_MAX: usize = 100_000;
/// Longest pattern parsed, in bytes; longer ones are kept whole as `stix2-pattern`.
const PATTERN_BYTES_MAX: usize = 64 * 1024;

/// Why a bundle could not be converted.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StixError {
    /// The input is not JSON.
    #[error("the STIX input is not JSON: {0}")]
    Json(String),
    /// The JSON is not a STIX bundle.
    #[error("not a STIX 2.1 bundle: {0}")]
    NotABundle(&'static str),
    /// The event built from the bundle is not valid MISP (e.g. an empty label or report
    /// name).
    #[error("the bundle does not make a valid MISP event: {0}")]
    Model(String),
    /// The bundle has more objects than [`STIX_OBJECTS_MAX`].
    #[error("the bundle has {count} objects, over the limit of {max}")]
    TooManyObjects {
        /// Objects in the bundle.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// A converted bundle.
#[derive(Debug, Clone)]
pub struct StixEvent {
    /// The MISP event, `{"Event": {…}}`.
    pub event: Value,
    /// What was left out, one line each (`indicator--…: reason`).
    pub skipped: Vec<String>,
}

/// Converts the bundle `bytes` into a MISP event document.
pub fn bundle_to_event(bytes: &[u8]) -> Result<Value, StixError> {
    Ok(convert(bytes)?.event)
}

/// The uuid part of a STIX id (`indicator--<uuid>`).
fn id_uuid(id: &str) -> Option<Uuid> {
    id.split_once("--")
        .and_then(|(_, uuid)| Uuid::parse_str(uuid).ok())
}

fn text<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str)
}

/// `YYYY-MM-DD` of a STIX timestamp.
fn date_of(timestamp: &str) -> Option<String> {
    let date = timestamp.get(..10)?;
    crate::model::is_date(date).then(|| date.to_string())
}

/// The MISP attribute type of a simple pattern's object path, e.g. `file:hashes.'SHA-256'`.
pub fn pattern_type(path: &str) -> Option<&'static str> {
    let (object, property) = path.split_once(':')?;
    let property = property.replace(['\'', '"'], "");
    let hash = |name: &str| -> Option<&'static str> {
        Some(match name.to_ascii_uppercase().replace('_', "-").as_str() {
            "MD5" => "md5",
            "SHA-1" | "SHA1" => "sha1",
            "SHA-224" | "SHA224" => "sha224",
            "SHA-256" | "SHA256" => "sha256",
            "SHA-384" | "SHA384" => "sha384",
            "SHA-512" | "SHA512" => "sha512",
            "SSDEEP" => "ssdeep",
            "TLSH" => "tlsh",
            _ => return None,
        })
    };
    Some(match (object, property.as_str()) {
        ("ipv4-addr" | "ipv6-addr", "value") => "ip-dst",
        ("domain-name", "value") => "domain",
        ("url", "value") => "url",
        ("email-addr", "value") => "email",
        ("mac-addr", "value") => "mac-address",
        ("autonomous-system", "number") => "AS",
        ("windows-registry-key", "key") => "regkey",
        ("file", "name") => "filename",
        ("file", "size") => "size-in-bytes",
        ("email-message", "subject") => "email-subject",
        ("email-message", "from_ref.value") => "email-src",
        ("email-message", "to_refs[*].value") => "email-dst",
        ("file" | "artifact", property) => hash(property.strip_prefix("hashes.")?)?,
        ("x509-certificate", property) => match hash(property.strip_prefix("hashes.")?)? {
            "md5" => "x509-fingerprint-md5",
            "sha1" => "x509-fingerprint-sha1",
            "sha256" => "x509-fingerprint-sha256",
            _ => return None,
        },
        _ => return None,
    })
}

/// The (path, value) of a pattern with exactly one `=` comparison and no qualifiers, e.g.
/// `[ipv4-addr:value = '10.0.0.1']`; `None` for anything more complex.
pub fn simple_comparison(pattern: &str) -> Option<(String, String)> {
    if pattern.len() > PATTERN_BYTES_MAX {
        return None;
    }
    let inner = pattern.trim().strip_prefix('[')?.strip_suffix(']')?;
    let (path, rest) = inner.split_once('=')?;
    let path = path.trim();
    if path.is_empty() || path.contains([' ', '[', ']', '!', '<', '>']) && !path.contains("[*]") {
        return None;
    }
    let quoted = rest.trim().strip_prefix('\'')?;
    let mut value = String::new();
    let mut chars = quoted.chars();
    loop {
        match chars.next()? {
            '\\' => value.push(chars.next()?),
            '\'' => break,
            c => value.push(c),
        }
    }
    // Nothing may follow the closing quote: no AND/OR, no second comparison.
    chars
        .as_str()
        .trim()
        .is_empty()
        .then(|| (path.to_string(), value))
}

/// The TLP tag of a marking definition, from a known TLP id or its `definition`.
fn tlp_tag(marking: &Value) -> Option<String> {
    let known = [
        ("613f2e26-407d-48c7-9eca-b8e91df99dc9", "tlp:white"),
        ("34098fce-860f-48ae-8e50-ebd3cc5e41da", "tlp:green"),
        ("f88d31f6-486f-44da-b317-01333bde0b82", "tlp:amber"),
        ("5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "tlp:red"),
        ("94868c89-83c2-464b-929b-a1a8aa3c8487", "tlp:clear"),
        ("bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "tlp:green"),
        ("55d920b0-5e8b-4f79-9ee9-91f868d9b421", "tlp:amber"),
        ("939a9414-2ddd-4d32-a0cd-375ea402b003", "tlp:amber+strict"),
        ("e828b379-4e03-4974-9ac4-e53a884c97c1", "tlp:red"),
    ];
    let id = text(marking, "id").unwrap_or_default();
    if let Some((_, tag)) = known.iter().find(|(uuid, _)| id.ends_with(uuid)) {
        return Some(tag.to_string());
    }
    let level = marking.pointer("/definition/tlp").and_then(Value::as_str)?;
    Some(format!("tlp:{}", level.to_ascii_lowercase()))
}

/// The galaxy tag of a STIX domain object that names an actor, malware, tool or technique.
fn galaxy_tag(object: &Value) -> Option<String> {
    let name = text(object, "name")?.replace('"', "'");
    let galaxy = match text(object, "type")? {
        "threat-actor" | "intrusion-set" => "threat-actor",
        "malware" => "malware",
        "tool" => "tool",
        "campaign" => "campaign",
        "attack-pattern" => {
            let mitre_id = object
                .get("external_references")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|r| text(r, "source_name").is_some_and(|s| s.starts_with("mitre")))
                .and_then(|r| text(r, "external_id"));
            return Some(match mitre_id {
                Some(id) => format!("misp-galaxy:mitre-attack-pattern=\"{name} - {id}\""),
                None => format!("misp-galaxy:attack-pattern=\"{name}\""),
            });
        }
        _ => return None,
    };
    Some(format!("misp-galaxy:{galaxy}=\"{name}\""))
}

/// A candidate attribute, kept only if the type registry accepts it.
fn attribute(
    type_name: &str,
    value: &str,
    uuid: Option<Uuid>,
    to_ids: bool,
    comment: &str,
    tags: &[String],
) -> Result<Value, String> {
    let ty = registry()
        .lookup(type_name)
        .ok_or_else(|| format!("no MISP type {type_name}"))?;
    let mut json = json!({
        "type": type_name,
        "category": ty.default_category(),
        "value": value,
        "to_ids": to_ids,
        "comment": comment,
        "Tag": tags.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
    });
    if let Some(uuid) = uuid {
        json["uuid"] = json!(uuid.to_string());
    }
    Attribute::from_json(&json).map_err(|error| error.to_string())?;
    Ok(json)
}

/// The attributes of one cyber observable (an SCO), each `(relation, type, value)`.
fn observable_values(sco: &Value) -> Vec<(&'static str, &'static str, String)> {
    let value = || text(sco, "value").map(str::to_string);
    let mut out = Vec::new();
    match text(sco, "type").unwrap_or_default() {
        "ipv4-addr" | "ipv6-addr" => out.extend(value().map(|v| ("ip", "ip-dst", v))),
        "domain-name" => out.extend(value().map(|v| ("domain", "domain", v))),
        "url" => out.extend(value().map(|v| ("url", "url", v))),
        "email-addr" => out.extend(value().map(|v| ("email", "email", v))),
        "mac-addr" => out.extend(value().map(|v| ("mac-address", "mac-address", v))),
        "autonomous-system" => {
            if let Some(number) = sco.get("number").and_then(Value::as_u64) {
                out.push(("asn", "AS", number.to_string()));
            }
        }
        "file" | "artifact" => {
            if let Some(name) = text(sco, "name") {
                out.push(("filename", "filename", name.to_string()));
            }
            if let Some(hashes) = sco.get("hashes").and_then(Value::as_object) {
                for (algorithm, digest) in hashes {
                    let path = format!("file:hashes.'{algorithm}'");
                    if let (Some(ty), Some(digest)) = (pattern_type(&path), digest.as_str()) {
                        out.push((ty, ty, digest.to_string()));
                    }
                }
            }
            if let Some(size) = sco.get("size").and_then(Value::as_u64) {
                out.push(("size-in-bytes", "size-in-bytes", size.to_string()));
            }
        }
        _ => {}
    }
    out
}

/// What is being built.
#[derive(Default)]
struct Builder {
    attributes: Vec<Value>,
    objects: Vec<Value>,
    event_tags: Vec<String>,
    relationships: Vec<String>,
    observed: std::collections::HashSet<String>,
    skipped: Vec<String>,
}

impl Builder {
    fn tag_event(&mut self, tag: String) {
        if !tag.ends_with(':') && !self.event_tags.contains(&tag) {
            self.event_tags.push(tag);
        }
    }

    fn observable(&mut self, sco: &Value, comment: &str) {
        let id = text(sco, "id").unwrap_or("observable");
        // An observable referenced by several observed-data objects is imported once.
        if !self.observed.insert(id.to_string()) && id != "observable" {
            return;
        }
        let values = observable_values(sco);
        if values.is_empty() {
            self.skipped
                .push(format!("{id}: no MISP attribute for this observable"));
            return;
        }
        if text(sco, "type") == Some("file") && values.len() > 1 {
            let mut attributes = Vec::new();
            for (relation, ty, value) in &values {
                match attribute(ty, value, None, false, "", &[]) {
                    Ok(mut json) => {
                        json["object_relation"] = json!(relation);
                        attributes.push(json);
                    }
                    Err(reason) => self.skipped.push(format!("{id}: {reason}")),
                }
            }
            let mut object = json!({
                "name": "file",
                "meta-category": "file",
                "description": "File object describing a file with meta-information",
                "template_uuid": "688c46fb-5edb-40a3-8273-1af7923e2215",
                "comment": comment,
                "Attribute": attributes,
            });
            if let Some(uuid) = id_uuid(id) {
                object["uuid"] = json!(uuid.to_string());
            }
            self.objects.push(object);
            return;
        }
        for (index, (_, ty, value)) in values.iter().enumerate() {
            let uuid = if index == 0 { id_uuid(id) } else { None };
            match attribute(ty, value, uuid, false, comment, &[]) {
                Ok(json) => self.attributes.push(json),
                Err(reason) => self.skipped.push(format!("{id}: {reason}")),
            }
        }
    }

    fn indicator(&mut self, indicator: &Value, tags: &[String]) {
        let id = text(indicator, "id").unwrap_or("indicator");
        let Some(pattern) = text(indicator, "pattern") else {
            self.skipped.push(format!("{id}: no pattern"));
            return;
        };
        let comment = text(indicator, "name").unwrap_or_default();
        let mut tags: Vec<String> = tags.to_vec();
        for label in indicator
            .get("labels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|label| !label.trim().is_empty())
        {
            tags.push(label.to_string());
        }
        let uuid = id_uuid(id);
        let simple = if text(indicator, "pattern_type").unwrap_or("stix") == "stix" {
            simple_comparison(pattern).and_then(|(path, value)| Some((pattern_type(&path)?, value)))
        } else {
            None
        };
        let result = match simple {
            Some((ty, value)) => attribute(ty, &value, uuid, true, comment, &tags)
                .or_else(|_| attribute("stix2-pattern", pattern, uuid, true, comment, &tags)),
            None => attribute("stix2-pattern", pattern, uuid, true, comment, &tags),
        };
        match result {
            Ok(json) => self.attributes.push(json),
            Err(reason) => self.skipped.push(format!("{id}: {reason}")),
        }
    }
}

/// The STIX objects of a bundle by id.
type ById<'a> = HashMap<&'a str, &'a Value>;

/// A relationship that is not indicator → galaxy: (source id, relationship type, target id,
/// the line describing it in the event report).
type Pending<'a> = (&'a str, &'a str, &'a str, String);

/// What the first pass over a bundle's objects finds: the relationships and the observables
/// observed-data objects refer to.
#[derive(Default)]
struct Scan<'a> {
    /// Galaxy tags an indicator inherits from what it `indicates`.
    indicator_tags: HashMap<&'a str, Vec<String>>,
    /// Observables some observed-data object refers to (imported through it, not alone).
    referenced_scos: HashSet<&'a str>,
    /// Relationships that are not indicator → galaxy: object references where the source is
    /// an object of the event, else lines of the event report.
    pending: Vec<Pending<'a>>,
}

/// The bundle `bytes` parsed, checked to be a bundle of at most [`STIX_OBJECTS_MAX`] objects.
fn parse_bundle(bytes: &[u8]) -> Result<Value, StixError> {
    let bundle: Value =
        serde_json::from_slice(bytes).map_err(|error| StixError::Json(error.to_string()))?;
    if text(&bundle, "type") != Some("bundle") {
        return Err(StixError::NotABundle("its type is not \"bundle\""));
    }
    let objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .ok_or(StixError::NotABundle("it has no \"objects\" list"))?;
    if objects.len() > STIX_OBJECTS_MAX {
        return Err(StixError::TooManyObjects {
            count: objects.len(),
            max: STIX_OBJECTS_MAX,
        });
    }
    Ok(bundle)
}

/// The string items of the list `field` of `object`.
fn string_list<'a>(object: &'a Value, field: &str) -> impl Iterator<Item = &'a str> {
    object
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The first pass: relationships and observed-data references.
fn scan<'a>(objects: &'a [Value], by_id: &ById<'a>) -> Scan<'a> {
    let name_of = |id: &str| {
        by_id
            .get(id)
            .and_then(|object| text(object, "name").or_else(|| text(object, "value")))
            .unwrap_or(id)
            .to_string()
    };
    let mut found = Scan::default();
    for object in objects {
        match text(object, "type").unwrap_or_default() {
            "relationship" => {
                let (Some(source), Some(target)) =
                    (text(object, "source_ref"), text(object, "target_ref"))
                else {
                    continue;
                };
                let kind = text(object, "relationship_type").unwrap_or("related-to");
                let target_tag = by_id.get(target).and_then(|t| galaxy_tag(t));
                if source.starts_with("indicator--") && kind == "indicates" {
                    if let Some(tag) = target_tag {
                        found.indicator_tags.entry(source).or_default().push(tag);
                        continue;
                    }
                }
                let line = format!(
                    "- {} ({}) {kind} {} ({})",
                    name_of(source),
                    source.split("--").next().unwrap_or_default(),
                    name_of(target),
                    target.split("--").next().unwrap_or_default()
                );
                found.pending.push((source, kind, target, line));
            }
            "observed-data" => found
                .referenced_scos
                .extend(string_list(object, "object_refs")),
            _ => {}
        }
    }
    found
}

/// The second pass: each object into `builder` as attributes, objects or event tags; returns
/// the bundle's (first) report.
fn convert_objects<'a>(
    objects: &'a [Value],
    by_id: &ById<'a>,
    found: &Scan<'a>,
    builder: &mut Builder,
) -> Option<&'a Value> {
    let mut report: Option<&Value> = None;
    for object in objects {
        let kind = text(object, "type").unwrap_or_default();
        match kind {
            "report" => report = report.or(Some(object)),
            "indicator" => {
                let id = text(object, "id").unwrap_or_default();
                let tags = found.indicator_tags.get(id).cloned().unwrap_or_default();
                builder.indicator(object, &tags);
            }
            "observed-data" => {
                let comment = format!("observed data {}", text(object, "id").unwrap_or_default());
                // STIX 2.0 embeds the observables; 2.1 refers to top-level SCOs.
                if let Some(embedded) = object.get("objects").and_then(Value::as_object) {
                    for sco in embedded.values() {
                        builder.observable(sco, &comment);
                    }
                }
                for reference in string_list(object, "object_refs") {
                    if let Some(sco) = by_id.get(reference) {
                        builder.observable(sco, &comment);
                    }
                }
            }
            "threat-actor" | "intrusion-set" | "malware" | "tool" | "attack-pattern"
            | "campaign" => {
                if let Some(tag) = galaxy_tag(object) {
                    builder.tag_event(tag);
                }
            }
            "marking-definition" => {}
            "ipv4-addr" | "ipv6-addr" | "domain-name" | "url" | "email-addr" | "mac-addr"
            | "autonomous-system" | "file" | "artifact" => {
                let id = text(object, "id").unwrap_or_default();
                if !found.referenced_scos.contains(id) {
                    builder.observable(object, "");
                }
            }
            "relationship"
            | "identity"
            | "bundle"
            | "extension-definition"
            | "language-content"
            | "note"
            | "opinion" => {}
            other => builder.skipped.push(format!(
                "{}: STIX type {other} is not imported",
                text(object, "id").unwrap_or_default()
            )),
        }
    }
    report
}

/// Each pending relationship as a reference of its source object when both ends are in the
/// event, else as a line of the event report.
fn relate(builder: &mut Builder, pending: Vec<Pending<'_>>) {
    let present: HashSet<String> = builder
        .attributes
        .iter()
        .chain(builder.objects.iter())
        .filter_map(|item| item.get("uuid").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    for (source, kind, target, line) in pending {
        let target_uuid = id_uuid(target)
            .map(|uuid| uuid.to_string())
            .filter(|uuid| present.contains(uuid));
        let source_uuid = id_uuid(source).map(|uuid| uuid.to_string());
        let object = builder
            .objects
            .iter_mut()
            .find(|object| object.get("uuid").and_then(Value::as_str) == source_uuid.as_deref());
        match (object, target_uuid) {
            (Some(object), Some(target_uuid)) => {
                let reference = json!({"referenced_uuid": target_uuid, "relationship_type": kind});
                match object
                    .get_mut("ObjectReference")
                    .and_then(Value::as_array_mut)
                {
                    Some(references) => references.push(reference),
                    None => object["ObjectReference"] = json!([reference]),
                }
            }
            _ => builder.relationships.push(line),
        }
    }
}

/// The TLP tags of the report's markings.
fn report_markings(report: Option<&Value>, by_id: &ById<'_>) -> Vec<String> {
    report
        .and_then(|r| r.get("object_marking_refs"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|id| {
            by_id
                .get(id)
                .copied()
                .and_then(tlp_tag)
                .or_else(|| tlp_tag(&json!({ "id": id })))
        })
        .collect()
}

/// The report's author, an organisation identity, as the event's creator (Orgc).
fn creator(report: Option<&Value>, by_id: &ById<'_>) -> Option<Value> {
    report
        .and_then(|r| text(r, "created_by_ref"))
        .and_then(|id| by_id.get(id))
        .filter(|identity| {
            text(identity, "identity_class").unwrap_or("organization") == "organization"
        })
        .and_then(|identity| {
            let name = text(identity, "name").filter(|name| !name.trim().is_empty())?;
            Some(json!({"uuid": id_uuid(text(identity, "id")?)?.to_string(), "name": name}))
        })
}

/// The event report named `info`: the report's description, then the relationships not
/// imported as references; `None` when both are empty.
fn event_report(report: Option<&Value>, info: &str, relationships: &[String]) -> Option<Value> {
    let mut content = report
        .and_then(|r| text(r, "description"))
        .unwrap_or_default()
        .to_string();
    if !relationships.is_empty() {
        content.push_str("\n\n## Relationships\n\n");
        content.push_str(&relationships.join("\n"));
    }
    if content.trim().is_empty() {
        return None;
    }
    let mut report_json = json!({ "name": info, "content": content.trim() });
    if let Some(uuid) = report.and_then(|r| text(r, "id")).and_then(id_uuid) {
        // The report's own uuid names the event; the event report gets a derived one.
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest([uuid.as_bytes().as_slice(), b"event-report"].concat());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let derived = uuid::Builder::from_random_bytes(bytes).into_uuid();
        report_json["uuid"] = json!(derived.to_string());
    }
    Some(report_json)
}

/// The MISP event (`{"Event": …}`) of the bundle `bundle_id`, its report and what `builder`
/// gathered.
fn event_of(bundle_id: &str, report: Option<&Value>, by_id: &ById<'_>, builder: Builder) -> Value {
    let event_uuid = report
        .and_then(|r| text(r, "id"))
        .and_then(id_uuid)
        .or_else(|| id_uuid(bundle_id))
        .unwrap_or_else(Uuid::new_v4);
    let info = report
        .and_then(|r| text(r, "name"))
        .filter(|name| !name.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("STIX 2.1 bundle {bundle_id}"));
    let date = report
        .and_then(|r| text(r, "published").or_else(|| text(r, "created")))
        .and_then(date_of);
    let mut event = Map::new();
    event.insert("uuid".into(), json!(event_uuid.to_string()));
    event.insert("info".into(), json!(info));
    if let Some(creator) = creator(report, by_id) {
        event.insert("Orgc".into(), creator);
    }
    if let Some(date) = date {
        event.insert("date".into(), json!(date));
    }
    event.insert("analysis".into(), json!("2"));
    event.insert("threat_level_id".into(), json!("4"));
    event.insert(
        "Tag".into(),
        Value::Array(
            builder
                .event_tags
                .iter()
                .map(|name| json!({ "name": name }))
                .collect(),
        ),
    );
    event.insert("Attribute".into(), Value::Array(builder.attributes));
    event.insert("Object".into(), Value::Array(builder.objects));
    if let Some(report_json) = event_report(report, &info, &builder.relationships) {
        event.insert("EventReport".into(), json!([report_json]));
    }
    json!({ "Event": Value::Object(event) })
}

/// Converts the bundle `bytes`, reporting what was left out.
pub fn convert(bytes: &[u8]) -> Result<StixEvent, StixError> {
    let bundle = parse_bundle(bytes)?;
    let objects: &[Value] = bundle
        .get("objects")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let by_id: ById<'_> = objects
        .iter()
        .filter_map(|object| Some((text(object, "id")?, object)))
        .collect();
    let found = scan(objects, &by_id);
    let mut builder = Builder::default();
    let report = convert_objects(objects, &by_id, &found, &mut builder);
    relate(&mut builder, found.pending);
    for tag in report_markings(report, &by_id) {
        builder.tag_event(tag);
    }
    let skipped = std::mem::take(&mut builder.skipped);
    let bundle_id = text(&bundle, "id").unwrap_or_default();
    let event = event_of(bundle_id, report, &by_id, builder);
    crate::model::Event::from_json(&event).map_err(|error| StixError::Model(error.to_string()))?;
    Ok(StixEvent { event, skipped })
}

#[cfg(test)]
mod tests;
