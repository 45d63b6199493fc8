//! Every shared MISP event imports, and `event show` returns the same uuids, types,
//! categories, values (after MISP normalisation), tags, objects and references as the input.

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;
use threatlog::model;

/// The event object of a file, if the file holds one.
fn input_event(document: &Value) -> Option<&Value> {
    match document.get("Event") {
        Some(event) => Some(event),
        None if document.get("info").is_some() => Some(document),
        None => None,
    }
}

fn text(value: &Value, field: &str) -> String {
    match &value[field] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn list<'a>(value: &'a Value, field: &str) -> Vec<&'a Value> {
    value[field]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn tag_names(value: &Value) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = list(value, "Tag").iter().map(|t| text(t, "name")).collect();
    for galaxy in list(value, "Galaxy") {
        for cluster in list(galaxy, "GalaxyCluster") {
            names.insert(text(cluster, "tag_name"));
        }
    }
    names
}

/// Checks one output attribute against its input.
fn compare_attribute(input: &Value, output: &Value, context: &str) {
    let type_name = text(input, "type");
    assert_eq!(text(output, "type"), type_name, "{context}: type");
    let ty = model::registry().lookup(&type_name).expect("known type");
    let category = match text(input, "category") {
        c if c.is_empty() => ty.default_category().to_string(),
        c => c,
    };
    assert_eq!(text(output, "category"), category, "{context}: category");
    let (raw, shown) = (text(input, "value"), text(output, "value"));
    assert_eq!(
        shown,
        model::normalise(ty, &raw).unwrap(),
        "{context}: value"
    );
    // Normalisation only changes case, surrounding space or the spelling of IP addresses.
    let same_ip = |a: &str, b: &str| {
        a.parse::<IpAddr>()
            .ok()
            .is_some_and(|ip| b.parse::<IpAddr>().ok() == Some(ip))
    };
    assert!(
        shown.eq_ignore_ascii_case(raw.trim()) || same_ip(&shown, raw.trim()),
        "{context}: value {raw:?} became {shown:?}"
    );
    if input.get("uuid").is_some() {
        assert_eq!(
            text(output, "uuid"),
            text(input, "uuid").to_lowercase(),
            "{context}: uuid"
        );
    }
    if let Some(to_ids) = input.get("to_ids").and_then(Value::as_bool) {
        assert_eq!(output["to_ids"], Value::Bool(to_ids), "{context}: to_ids");
    }
    assert_eq!(tag_names(output), tag_names(input), "{context}: tags");
    let sightings: BTreeSet<String> = list(input, "Sighting")
        .iter()
        .map(|s| text(s, "uuid"))
        .collect();
    let shown_sightings: BTreeSet<String> = list(output, "Sighting")
        .iter()
        .map(|s| text(s, "uuid"))
        .collect();
    assert_eq!(shown_sightings, sightings, "{context}: sightings");
}

/// Pairs input and output attributes by uuid (or by type and value when the input has none).
fn compare_attributes(inputs: &[&Value], outputs: &[&Value], context: &str) {
    assert_eq!(outputs.len(), inputs.len(), "{context}: attribute count");
    for input in inputs {
        let output = outputs
            .iter()
            .find(|o| match input.get("uuid") {
                Some(_) => text(o, "uuid") == text(input, "uuid").to_lowercase(),
                None => text(o, "type") == text(input, "type"),
            })
            .unwrap_or_else(|| panic!("{context}: attribute {} missing", text(input, "uuid")));
        compare_attribute(
            input,
            output,
            &format!("{context}: attribute {}", text(input, "uuid")),
        );
    }
}

#[test]
fn shared_events_import_and_show_field_by_field() {
    let (_temp, dir) = common::node();
    let events_dir = common::shared_data().join("events");
    let mut files: Vec<_> = std::fs::read_dir(&events_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut checked = 0;
    for file in files {
        let document: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let Some(input) = input_event(&document) else {
            let error = common::fails(&dir, &["event", "import", file.to_str().unwrap()]);
            assert!(error.contains(&name), "{name}: {error}");
            assert!(error.contains("holds no MISP event"), "{name}: {error}");
            continue;
        };
        let before: BTreeSet<String> = common::ok(&dir, &["event", "list"])
            .lines()
            .skip(1)
            .map(|l| l[..36].to_string())
            .collect();
        let imported = common::ok(&dir, &["event", "import", file.to_str().unwrap()]);
        assert!(
            imported.starts_with("imported 1 events"),
            "{name}: {imported}"
        );
        let uuid = match input.get("uuid") {
            Some(uuid) => uuid.as_str().unwrap().to_lowercase(),
            None => {
                let after: BTreeSet<String> = common::ok(&dir, &["event", "list"])
                    .lines()
                    .skip(1)
                    .map(|l| l[..36].to_string())
                    .collect();
                after
                    .difference(&before)
                    .next()
                    .expect("a new event")
                    .clone()
            }
        };
        let shown: Value =
            serde_json::from_str(&common::ok(&dir, &["event", "show", &uuid])).unwrap();
        let output = &shown["Event"];
        let context = name.as_str();
        assert_eq!(text(output, "uuid"), uuid, "{context}: uuid");
        assert_eq!(text(output, "info"), text(input, "info"), "{context}: info");
        if input.get("date").is_some() {
            assert_eq!(text(output, "date"), text(input, "date"), "{context}: date");
        }
        assert_eq!(tag_names(output), tag_names(input), "{context}: event tags");
        compare_attributes(
            &list(input, "Attribute"),
            &list(output, "Attribute"),
            context,
        );
        let objects = list(input, "Object");
        assert_eq!(
            list(output, "Object").len(),
            objects.len(),
            "{context}: object count"
        );
        for object in objects {
            let object_uuid = text(object, "uuid");
            let shown_object = list(output, "Object")
                .into_iter()
                .find(|o| text(o, "uuid") == object_uuid)
                .unwrap_or_else(|| panic!("{context}: object {object_uuid} missing"));
            let context = format!("{context}: object {object_uuid}");
            assert_eq!(
                text(shown_object, "name"),
                text(object, "name"),
                "{context}: name"
            );
            assert_eq!(
                text(shown_object, "meta-category"),
                text(object, "meta-category"),
                "{context}"
            );
            compare_attributes(
                &list(object, "Attribute"),
                &list(shown_object, "Attribute"),
                &context,
            );
            let references: BTreeSet<(String, String)> = list(object, "ObjectReference")
                .iter()
                .map(|r| (text(r, "referenced_uuid"), text(r, "relationship_type")))
                .collect();
            let shown_references: BTreeSet<(String, String)> =
                list(shown_object, "ObjectReference")
                    .iter()
                    .map(|r| (text(r, "referenced_uuid"), text(r, "relationship_type")))
                    .collect();
            assert_eq!(shown_references, references, "{context}: references");
        }
        checked += 1;
    }
    assert_eq!(checked, 8, "every event file was checked");
    common::ok(&dir, &["log", "verify"]);
}
