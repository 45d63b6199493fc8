//! STIX 2.1 bundles from MISP events, shaped as the MISP project's converter (`misp-stix`)
//! writes them: an identity for the creator organisation, a report per event, an indicator
//! with a STIX pattern per IDS attribute, observed data (with its cyber-observable) per other
//! attribute that has one, and the standard TLP marking definitions referenced through
//! `object_marking_refs`. Pure.

use serde_json::{json, Map, Value};
use sha2::Digest as _;

use super::event_json::{array, attributes, flag, rfc3339, tag_names, text, HASH_TYPES};

/// The STIX 2.1 TLP marking definitions (STIX 2.1 §7.2.1.4): tlp name, id.
pub const TLP_MARKINGS: [(&str, &str); 4] = [
    (
        "white",
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    ),
    (
        "green",
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    ),
    (
        "amber",
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    ),
    (
        "red",
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
    ),
];

/// Creation time of the TLP marking definitions, as the specification fixes it.
const TLP_CREATED: &str = "2017-01-20T00:00:00.000Z";

/// The STIX 2.1 TLP level of a MISP tag (`tlp:clear` is STIX's white, `amber+strict` amber).
fn tlp_of(tag: &str) -> Option<&'static str> {
    let level = tag.trim().to_ascii_lowercase();
    let level = level.strip_prefix("tlp:")?;
    let level = match level {
        "clear" | "white" => "white",
        "green" => "green",
        "amber" | "amber+strict" => "amber",
        "red" => "red",
        _ => return None,
    };
    Some(level)
}

/// The marking definition id of a TLP level.
fn marking_id(level: &str) -> &'static str {
    TLP_MARKINGS
        .iter()
        .find(|(name, _)| *name == level)
        .map_or(TLP_MARKINGS[0].1, |(_, id)| id)
}

/// The marking ids of an item's TLP tags, in tag order, without repeats.
fn markings(item: &Value, used: &mut Vec<&'static str>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for level in tag_names(item).into_iter().filter_map(tlp_of) {
        let id = marking_id(level);
        if !out.contains(&id) {
            out.push(id);
        }
        if !used.contains(&level) {
            used.push(level);
        }
    }
    out
}

/// A pattern string literal: quotes and backslashes escaped.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The pattern path of a hash type, as misp-stix names it (`MD5`, `'SHA-256'`).
fn hash_key(ty: &str) -> String {
    let name = match ty.split_once('/') {
        Some((_, bits)) => format!("SHA{bits}"),
        None => ty.replace('-', "").to_ascii_uppercase(),
    };
    let name = match name.as_str() {
        "SHA1" => "SHA-1",
        "SHA224" => "SHA-224",
        "SHA256" => "SHA-256",
        "SHA384" => "SHA-384",
        "SHA512" => "SHA-512",
        "SHA3224" => "SHA3-224",
        "SHA3256" => "SHA3-256",
        "SHA3384" => "SHA3-384",
        "SHA3512" => "SHA3-512",
        other => other,
    }
    .to_string();
    let identifier = name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !name.starts_with(|ch: char| ch.is_ascii_digit());
    if identifier {
        name
    } else {
        literal(&name)
    }
}

/// `ipv4-addr` or `ipv6-addr` for an address (or network).
fn ip_type(value: &str) -> &'static str {
    if value.contains(':') {
        "ipv6-addr"
    } else {
        "ipv4-addr"
    }
}

/// The STIX pattern of an attribute, for the types misp-stix maps to patterns.
pub fn pattern(ty: &str, value: &str) -> Option<String> {
    let ip = |side: &str, address: &str| {
        format!(
            "network-traffic:{side}_ref.type = '{}' AND network-traffic:{side}_ref.value = {}",
            ip_type(address),
            literal(address)
        )
    };
    let inner = match ty {
        "ip-src" | "ip-dst" => ip(&ty[3..], value),
        "ip-src|port" | "ip-dst|port" => {
            let (address, port) = value.rsplit_once('|')?;
            let side = &ty[3..6];
            format!(
                "{} AND network-traffic:{side}_port = {}",
                ip(side, address),
                literal(port)
            )
        }
        "domain" | "hostname" => format!("domain-name:value = {}", literal(value)),
        "domain|ip" => {
            let (domain, address) = value.split_once('|')?;
            format!(
                "domain-name:value = {} AND domain-name:resolves_to_refs[*].value = {}",
                literal(domain),
                literal(address)
            )
        }
        "hostname|port" => {
            let (host, port) = value.rsplit_once('|')?;
            format!(
                "domain-name:value = {} AND network-traffic:dst_port = {}",
                literal(host),
                literal(port)
            )
        }
        "url" | "link" | "uri" => format!("url:value = {}", literal(value)),
        "email" => format!("email-addr:value = {}", literal(value)),
        "email-src" => format!("email-message:from_ref.value = {}", literal(value)),
        "email-dst" => format!("email-message:to_refs[*].value = {}", literal(value)),
        "email-subject" => format!("email-message:subject = {}", literal(value)),
        "filename" => format!("file:name = {}", literal(value)),
        "mutex" => format!("mutex:name = {}", literal(value)),
        "mac-address" => format!("mac-addr:value = {}", literal(value)),
        "AS" => {
            let number = value
                .trim()
                .trim_start_matches("AS")
                .trim_start_matches("as");
            format!("autonomous-system:number = {}", literal(number))
        }
        "user-agent" => format!(
            "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = {}",
            literal(value)
        ),
        "regkey" => format!("windows-registry-key:key = {}", literal(value)),
        _ if HASH_TYPES[..21].contains(&ty) && ty != "cdhash" => {
            format!("file:hashes.{} = {}", hash_key(ty), literal(value))
        }
        _ => {
            let hash = ty.strip_prefix("filename|")?;
            if !HASH_TYPES.contains(&hash) {
                return None;
            }
            let (name, digest) = value.split_once('|')?;
            format!(
                "file:name = {} AND file:hashes.{} = {}",
                literal(name),
                hash_key(hash),
                literal(digest)
            )
        }
    };
    Some(format!("[{inner}]"))
}

/// The cyber-observable object of an attribute (its id derived from the attribute uuid, as
/// misp-stix does), for observed data.
fn observable(ty: &str, value: &str, uuid: &str) -> Option<Value> {
    let sco = |kind: &str, mut fields: Map<String, Value>| {
        fields.insert("type".into(), json!(kind));
        fields.insert("spec_version".into(), json!("2.1"));
        fields.insert("id".into(), json!(format!("{kind}--{uuid}")));
        Value::Object(fields)
    };
    let one = |name: &str, value: Value| {
        let mut fields = Map::new();
        fields.insert(name.into(), value);
        fields
    };
    Some(match ty {
        "ip-src" | "ip-dst" => sco(ip_type(value), one("value", json!(value))),
        "domain" | "hostname" => sco("domain-name", one("value", json!(value))),
        "url" | "link" | "uri" => sco("url", one("value", json!(value))),
        "email" | "email-src" | "email-dst" => sco("email-addr", one("value", json!(value))),
        "email-subject" => {
            let mut fields = one("subject", json!(value));
            fields.insert("is_multipart".into(), json!(false));
            sco("email-message", fields)
        }
        "filename" => sco("file", one("name", json!(value))),
        "mutex" => sco("mutex", one("name", json!(value))),
        "mac-address" => sco("mac-addr", one("value", json!(value))),
        "AS" => {
            let number: u64 = value
                .trim()
                .trim_start_matches("AS")
                .trim_start_matches("as")
                .parse()
                .ok()?;
            sco("autonomous-system", one("number", json!(number)))
        }
        _ if HASH_TYPES.contains(&ty) => {
            let key = hash_key(ty).trim_matches('\'').to_string();
            sco("file", one("hashes", json!({ key: value })))
        }
        _ => {
            let hash = ty.strip_prefix("filename|")?;
            if !HASH_TYPES.contains(&hash) {
                return None;
            }
            let (name, digest) = value.split_once('|')?;
            let key = hash_key(hash).trim_matches('\'').to_string();
            let mut fields = one("name", json!(name));
            fields.insert("hashes".into(), json!({ key: digest }));
            sco("file", fields)
        }
    })
}

/// Epoch seconds (as MISP writes them, a string) as a STIX timestamp with milliseconds.
fn stamp_ms(seconds: i64) -> String {
    rfc3339(seconds).replace('Z', ".000Z")
}

fn seconds(item: &Value, name: &str) -> i64 {
    text(item, name).trim().parse().unwrap_or(0)
}

/// The STIX objects of one attribute created by `identity_id`: an indicator when it is an IDS
/// attribute with a pattern, else observed data with its observable, if it has one; pushed to
/// `out`, their ids to `refs`, the TLP levels used to `used`.
fn attribute_objects(
    attribute: &Value,
    identity_id: &str,
    used: &mut Vec<&'static str>,
    out: &mut Vec<Value>,
    refs: &mut Vec<Value>,
) {
    let ty = text(attribute, "type");
    let value = text(attribute, "value");
    let uuid = text(attribute, "uuid");
    let time = seconds(attribute, "timestamp");
    let category = text(attribute, "category");
    let mut common = Map::new();
    common.insert("spec_version".into(), json!("2.1"));
    common.insert("created_by_ref".into(), json!(identity_id));
    common.insert("created".into(), json!(stamp_ms(time)));
    common.insert("modified".into(), json!(stamp_ms(time)));
    let marks = markings(attribute, used);
    if !marks.is_empty() {
        common.insert("object_marking_refs".into(), json!(marks));
    }
    let labels = json!([
        format!("misp:type=\"{ty}\""),
        format!("misp:category=\"{category}\"")
    ]);
    let to_ids = flag(attribute.get("to_ids"));
    if let (true, Some(pattern)) = (to_ids, pattern(&ty, &value)) {
        let mut indicator = common;
        let id = format!("indicator--{uuid}");
        indicator.insert("type".into(), json!("indicator"));
        indicator.insert("id".into(), json!(id));
        let comment = text(attribute, "comment");
        if !comment.is_empty() {
            indicator.insert("description".into(), json!(comment));
        }
        indicator.insert("pattern".into(), json!(pattern));
        indicator.insert("pattern_type".into(), json!("stix"));
        indicator.insert("pattern_version".into(), json!("2.1"));
        indicator.insert("valid_from".into(), json!(rfc3339(time)));
        indicator.insert(
            "kill_chain_phases".into(),
            json!([{"kill_chain_name": "misp-category", "phase_name": category}]),
        );
        indicator.insert("labels".into(), labels);
        refs.push(json!(id));
        out.push(Value::Object(indicator));
    } else if let Some(sco) = observable(&ty, &value, &uuid) {
        let mut observed = common;
        let id = format!("observed-data--{uuid}");
        observed.insert("type".into(), json!("observed-data"));
        observed.insert("id".into(), json!(id));
        observed.insert("first_observed".into(), json!(rfc3339(time)));
        observed.insert("last_observed".into(), json!(rfc3339(time)));
        observed.insert("number_observed".into(), json!(1));
        observed.insert("object_refs".into(), json!([sco["id"]]));
        observed.insert("labels".into(), labels);
        refs.push(json!(id));
        refs.push(sco["id"].clone());
        out.push(Value::Object(observed));
        out.push(sco);
    }
}

/// The report of `event` created by `identity_id` at `event_time`, referring to `refs`,
/// collecting the TLP levels of the event's markings into `used`.
fn report_object(
    event: &Value,
    identity_id: &str,
    event_time: &str,
    refs: Vec<Value>,
    used: &mut Vec<&'static str>,
) -> Value {
    let publish = seconds(event, "publish_timestamp");
    let mut report = Map::new();
    report.insert("type".into(), json!("report"));
    report.insert("spec_version".into(), json!("2.1"));
    report.insert(
        "id".into(),
        json!(format!("report--{}", text(event, "uuid"))),
    );
    report.insert("created_by_ref".into(), json!(identity_id));
    report.insert("created".into(), json!(event_time));
    report.insert("modified".into(), json!(event_time));
    report.insert("name".into(), json!(text(event, "info")));
    report.insert(
        "published".into(),
        json!(rfc3339(if publish > 0 {
            publish
        } else {
            seconds(event, "timestamp")
        })),
    );
    report.insert("object_refs".into(), Value::Array(refs));
    let labels: Vec<String> = array(event, "Tag")
        .filter_map(|tag| tag.get("name").and_then(Value::as_str))
        .map(String::from)
        .collect();
    if !labels.is_empty() {
        report.insert("labels".into(), json!(labels));
    }
    let marks = markings(event, used);
    if !marks.is_empty() {
        report.insert("object_marking_refs".into(), json!(marks));
    }
    Value::Object(report)
}

/// The STIX objects of one event (identity, report, indicators, observed data), collecting
/// the TLP levels used into `used`.
fn event_objects(event: &Value, used: &mut Vec<&'static str>) -> Vec<Value> {
    let org_uuid = event
        .pointer("/Orgc/uuid")
        .and_then(Value::as_str)
        .unwrap_or("00000000-0000-4000-8000-000000000000");
    let org_name = event
        .pointer("/Orgc/name")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let identity_id = format!("identity--{org_uuid}");
    let event_time = stamp_ms(seconds(event, "timestamp"));
    let mut out = vec![json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id,
        "created": event_time,
        "modified": event_time,
        "name": org_name,
        "identity_class": "organization",
    })];
    let wrapped = json!({ "Event": event });
    let mut refs = Vec::new();
    for listed in attributes(std::slice::from_ref(&wrapped)) {
        attribute_objects(listed.attribute, &identity_id, used, &mut out, &mut refs);
    }
    if refs.is_empty() {
        // A report must refer to something; an event without exportable attributes refers
        // to its creator.
        refs.push(json!(identity_id));
    }
    let report = report_object(event, &identity_id, &event_time, refs, used);
    out.insert(1, report);
    out
}

/// The STIX 2.1 bundle of `events` (each `{"Event": …}`). Its id is derived from the event
/// uuids, so that the same events always give the same bundle.
pub fn bundle(events: &[Value]) -> Value {
    let mut used = Vec::new();
    let mut objects = Vec::new();
    let mut seen_identities = std::collections::BTreeSet::new();
    let mut uuids = Vec::new();
    for wrapped in events {
        let event = wrapped.get("Event").unwrap_or(wrapped);
        uuids.push(text(event, "uuid").into_owned());
        for object in event_objects(event, &mut used) {
            let id = object["id"].as_str().unwrap_or_default().to_string();
            if id.starts_with("identity--") && !seen_identities.insert(id) {
                continue;
            }
            objects.push(object);
        }
    }
    for (level, id) in TLP_MARKINGS {
        if used.contains(&level) {
            objects.push(json!({
                "type": "marking-definition",
                "spec_version": "2.1",
                "id": id,
                "created": TLP_CREATED,
                "definition_type": "tlp",
                "name": format!("TLP:{}", level.to_ascii_uppercase()),
                "definition": { "tlp": level },
            }));
        }
    }
    let digest = sha2::Sha256::digest(uuids.join(",").as_bytes());
    let mut seed = [0u8; 16];
    seed.copy_from_slice(&digest[..16]);
    let bundle_id = uuid::Builder::from_random_bytes(seed).into_uuid();
    json!({
        "type": "bundle",
        "id": format!("bundle--{bundle_id}"),
        "objects": objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_as_misp_stix_writes_them() {
        let cases = [
            ("ip-src", "1.2.3.4", "[network-traffic:src_ref.type = 'ipv4-addr' AND network-traffic:src_ref.value = '1.2.3.4']"),
            ("ip-dst|port", "2001:db8::1|443", "[network-traffic:dst_ref.type = 'ipv6-addr' AND network-traffic:dst_ref.value = '2001:db8::1' AND network-traffic:dst_port = '443']"),
            ("domain", "evil.test", "[domain-name:value = 'evil.test']"),
            ("url", "http://e.test/x?a='b'", "[url:value = 'http://e.test/x?a=\\'b\\'']"),
            ("sha1", "ab", "[file:hashes.'SHA-1' = 'ab']"),
            ("md5", "ab", "[file:hashes.MD5 = 'ab']"),
            ("filename|sha256", "a.exe|ab", "[file:name = 'a.exe' AND file:hashes.'SHA-256' = 'ab']"),
            ("filename", "a'b\\c", "[file:name = 'a\\'b\\\\c']"),
        ];
        for (ty, value, expected) in cases {
            assert_eq!(pattern(ty, value).as_deref(), Some(expected), "{ty}");
        }
        assert_eq!(pattern("text", "x"), None);
    }

    #[test]
    fn bundle_has_report_identity_and_markings() {
        let event = json!({"Event": {
        "uuid": "5b646415-7b48-40d5-86b4-c0070acd0835", "info": "x", "timestamp": "1472541011",
        "publish_timestamp": "1472548231", "Orgc": {"uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f", "name": "CIRCL"},
        "Tag": [{"name": "tlp:amber"}],
        "Attribute": [
            {"type": "domain", "value": "evil.test", "to_ids": true, "category": "Network activity",
             "uuid": "57c4448b-454c-4d17-90d1-4d2f950d210f", "timestamp": "1472480395"},
            {"type": "domain", "value": "ok.test", "to_ids": false, "category": "Network activity",
             "uuid": "57c4448b-454c-4d17-90d1-4d2f950d2100", "timestamp": "1472480395"}
        ]}});
        let bundle = bundle(&[event]);
        let objects = bundle["objects"].as_array().unwrap();
        let types: Vec<&str> = objects
            .iter()
            .map(|o| o["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "identity",
                "report",
                "indicator",
                "observed-data",
                "domain-name",
                "marking-definition"
            ]
        );
        assert_eq!(
            objects[1]["object_marking_refs"],
            json!([TLP_MARKINGS[2].1])
        );
        assert_eq!(objects[1]["published"], "2016-08-30T09:10:31Z");
        assert_eq!(objects[2]["created"], "2016-08-29T14:19:55.000Z");
    }
}
