//! Tests against MISP's own reference data in `/work/shared/data` (read at test time only; the
//! product embeds what it needs).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;

/// The shared reference data folder, next to the crate.
fn data_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data"))
        .canonicalize()
        .expect("the shared reference data folder exists next to the crate")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn event_file(name: &str) -> Value {
    read_json(&data_dir().join("events").join(name))
}

#[test]
fn registry_equals_describe_types_json() {
    let file = read_json(&data_dir().join("misp/describeTypes.json"));
    let result = &file["result"];
    let registry = registry();
    let names =
        |v: &Value| -> Vec<String> { serde_json::from_value(v.clone()).expect("a list of names") };
    assert_eq!(registry.types(), names(&result["types"]).as_slice());
    assert_eq!(
        registry.categories(),
        names(&result["categories"]).as_slice()
    );
    for (name, defaults) in result["sane_defaults"].as_object().expect("an object") {
        let ty = registry
            .lookup(name)
            .expect("every sane_defaults type is known");
        assert_eq!(
            ty.default_category(),
            defaults["default_category"],
            "{name}"
        );
        assert_eq!(u64::from(ty.to_ids_default()), defaults["to_ids"], "{name}");
    }
    for (category, types) in result["category_type_mappings"]
        .as_object()
        .expect("an object")
    {
        let expected = names(types);
        assert_eq!(registry.category_types(category), Some(expected.as_slice()));
        for name in &expected {
            let ty = registry.lookup(name).expect("mapped types are known");
            assert!(ty.allows_category(category), "{name} in {category}");
        }
    }
    let rebuilt = registry.describe_types_json();
    assert_eq!(rebuilt, file);
    // Same key order too, so the REST output reads like MISP's.
    assert_eq!(
        serde_json::to_string(&rebuilt).expect("serializable"),
        serde_json::to_string(&file).expect("serializable")
    );
}

#[test]
fn every_event_file_parses_and_the_others_are_not_events() {
    let mut events = 0;
    for entry in fs::read_dir(data_dir().join("events")).expect("events folder") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let document = read_json(&path);
        let holds_event = document.get("Event").is_some() || document.get("info").is_some();
        let parsed = parse_events_document(&document);
        if holds_event {
            let parsed = parsed.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(parsed.len(), 1, "{}", path.display());
            events += 1;
        } else {
            assert_eq!(parsed, Err(ModelError::NotAnEvent), "{}", path.display());
        }
    }
    assert_eq!(events, 8);
    for name in [
        "simple.json",
        "sighting.json",
        "galaxy.json",
        "event_obj_attr_tag.json",
    ] {
        assert_eq!(
            parse_events_document(&event_file(name)),
            Err(ModelError::NotAnEvent),
            "{name}"
        );
    }
}

#[test]
fn long_event_values() {
    let events = parse_events_document(&event_file("long_event.json")).expect("parses");
    let event = &events[0];
    let raw = &event_file("long_event.json")["Event"];
    assert_eq!(
        event.uuid.to_string(),
        raw["uuid"].as_str().expect("a uuid string")
    );
    assert_eq!(
        event.attributes.len(),
        raw["Attribute"].as_array().expect("a list").len()
    );
    assert_eq!(event.orgc.as_ref().map(|o| o.name.as_str()), Some("CIRCL"));
    let fields = event.fields();
    assert_eq!(fields["uuid"], raw["uuid"]);
    assert_eq!(fields["threat_level_id"], json!(raw["threat_level_id"]));
    assert_eq!(fields["timestamp"], raw["timestamp"]);
}

#[test]
fn small_events_in_detail() {
    let xorist = &parse_events_document(&event_file("57c4445b-c548-4654-af0b-4be3950d210f.json"))
        .expect("parses")[0];
    assert_eq!(
        xorist.uuid.to_string(),
        "57c4445b-c548-4654-af0b-4be3950d210f"
    );
    assert_eq!(xorist.info, "Ransomware - Xorist");
    assert_eq!(
        (xorist.threat_level_id, xorist.analysis, xorist.published),
        (3, 2, true)
    );
    assert_eq!(xorist.date, "2016-08-29");
    assert_eq!(xorist.attributes.len(), 9);
    assert_eq!(xorist.tags.len(), 4);
    assert_eq!(xorist.tags[0].name, "tlp:white");
    let regkey = xorist
        .attributes
        .iter()
        .find(|a| a.attribute_type_name() == "regkey|value")
        .expect("a regkey|value attribute");
    assert_eq!(
        index_values(regkey.attr_type, &regkey.value),
        vec![
            r"Software\Wow6432Node\Microsoft\Windows\CurrentVersion\Run".to_string(),
            r"%TEMP%\3Z4wnG9603it23y.exe".to_string()
        ]
    );

    let malware = &parse_events_document(&event_file("malware.json")).expect("parses")[0];
    assert_eq!(malware.attributes[0].data.as_deref(), Some("ewp9Cg=="));
    assert_eq!(malware.distribution, 1);

    let sightings = &parse_events_document(&event_file("sighting_1.json")).expect("parses")[0];
    let sighted: usize = sightings.attributes.iter().map(|a| a.sightings.len()).sum();
    assert!(sighted > 0);
    assert!(sightings
        .tags
        .iter()
        .any(|t| t.name == "misp-galaxy:banker=\"Gozi\""));
    assert_eq!(sightings.extends_uuid, None);
    assert_eq!(sightings.fields()["extends_uuid"], json!(""));

    let objects = &parse_events_document(&event_file("mainly_objects_1.json")).expect("parses")[0];
    assert!(!objects.objects.is_empty());
    assert!(objects.objects.iter().all(|o| !o.attributes.is_empty()));
}

#[test]
fn bad_input_gives_specific_errors() {
    let event = |attribute: Value| json!({"Event": {"info": "x", "Attribute": [attribute]}});
    let root = |document: Value| {
        parse_events_document(&document)
            .expect_err("invalid input")
            .root()
            .clone()
    };
    assert_eq!(
        root(event(json!({"type": "bar", "value": "1"}))),
        ModelError::UnknownType {
            type_name: "bar".to_string()
        }
    );
    assert_eq!(
        root(event(
            json!({"type": "ip-dst", "category": "Person", "value": "1.2.3.4"})
        )),
        ModelError::CategoryMismatch {
            type_name: "ip-dst".to_string(),
            category: "Person".to_string()
        }
    );
    let ip = root(event(json!({"type": "ip-dst", "value": "999.1.1.1"})));
    assert!(matches!(ip, ModelError::InvalidValue { ref type_name, .. } if type_name == "ip-dst"));
    let md5 = root(event(json!({"type": "md5", "value": "abc123"})));
    assert_eq!(
        md5.to_string(),
        "invalid value 'abc123' for type 'md5': expected 32 hexadecimal characters"
    );
    let named = parse_events_document(&json!({"Event": {"info": "x",
        "uuid": "5758ebf5-c898-48e6-9fe9-5665c0a83866",
        "Attribute": [{"uuid": "5b6464ca-e73c-4707-9b8a-d0350acd0835", "type": "ip-dst",
            "value": "999.1.1.1"}]}}))
    .expect_err("invalid address");
    assert_eq!(
        named.to_string(),
        "event 5758ebf5-c898-48e6-9fe9-5665c0a83866: attribute \
         5b6464ca-e73c-4707-9b8a-d0350acd0835: invalid value '999.1.1.1' for type 'ip-dst': \
         not an IPv4 or IPv6 address"
    );
}

#[test]
fn normalisation_examples() {
    let ty = |name: &str| registry().lookup(name).expect("a MISP type");
    assert_eq!(
        normalise(ty("md5"), "D41D8CD98F00B204E9800998ECF8427E"),
        Ok("d41d8cd98f00b204e9800998ecf8427e".to_string())
    );
    assert_eq!(
        normalise(ty("ip-dst|port"), "1.2.3.4|80"),
        Ok("1.2.3.4|80".to_string())
    );
    assert_eq!(
        normalise(ty("domain"), "Example.COM"),
        Ok("example.com".to_string())
    );
    assert_eq!(
        normalise(ty("ip-src"), "2001:DB8:0:0:0:0:0:1"),
        Ok("2001:db8::1".to_string())
    );
    assert_eq!(
        normalise(ty("ip-src"), "10.0.0.0/8"),
        Ok("10.0.0.0/8".to_string())
    );
    let sha = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    assert_eq!(
        normalise(ty("filename|sha256"), &format!("empty.txt|{sha}")),
        Ok(format!("empty.txt|{}", sha.to_ascii_lowercase()))
    );
    assert_eq!(
        correlation_values(ty("ip-dst|port"), "1.2.3.4|80"),
        vec!["1.2.3.4"]
    );
    assert_eq!(
        correlation_values(ty("domain|ip"), "example.com|1.2.3.4"),
        vec!["example.com", "1.2.3.4"]
    );
}
