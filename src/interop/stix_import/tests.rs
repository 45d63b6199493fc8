use super::*;

#[test]
fn simple_patterns_map_to_types() {
    for (pattern, expected) in [
        (
            "[ipv4-addr:value = '10.0.0.1']",
            Some(("ip-dst", "10.0.0.1")),
        ),
        (
            "[domain-name:value = 'evil.com']",
            Some(("domain", "evil.com")),
        ),
        (
            "[url:value = 'http://a.b/c\\'d']",
            Some(("url", "http://a.b/c'd")),
        ),
        ("[file:hashes.'SHA-256' = 'ab']", Some(("sha256", "ab"))),
        ("[file:hashes.MD5 = 'ab']", Some(("md5", "ab"))),
        ("[email-addr:value = 'a@b.c']", Some(("email", "a@b.c"))),
        ("[a:b = 'x' AND c:d = 'y']", None),
        ("[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS", None),
        ("[process:name = 'x']", None),
        (
            "[x509-certificate:hashes.'SHA-1' = 'ab']",
            Some(("x509-fingerprint-sha1", "ab")),
        ),
        ("[x509-certificate:serial_number = '01:02']", None),
    ] {
        let got = simple_comparison(pattern)
            .and_then(|(path, value)| Some((pattern_type(&path)?, value)));
        let expected = expected.map(|(ty, value)| (ty, value.to_string()));
        assert_eq!(got, expected, "{pattern}");
    }
}

#[test]
fn observables_markings_and_relationships_convert() {
    let bundle = json!({
        "type": "bundle",
        "id": "bundle--5b646415-7b48-40d5-86b4-c0070acd0835",
        "objects": [
            {"type": "identity", "id": "identity--99999999-2222-4333-8444-555555555555",
             "name": "Example CERT", "identity_class": "organization"},
            {"type": "report", "id": "report--11111111-2222-4333-8444-555555555555",
             "name": "Small report", "created": "2024-03-05T10:00:00Z",
             "created_by_ref": "identity--99999999-2222-4333-8444-555555555555",
             "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
             "object_refs": []},
            {"type": "observed-data", "id": "observed-data--aaaaaaaa-2222-4333-8444-555555555555",
             "object_refs": ["ipv4-addr--bbbbbbbb-2222-4333-8444-555555555555",
                             "file--cccccccc-2222-4333-8444-555555555555"]},
            {"type": "ipv4-addr", "id": "ipv4-addr--bbbbbbbb-2222-4333-8444-555555555555",
             "value": "198.51.100.9"},
            {"type": "file", "id": "file--cccccccc-2222-4333-8444-555555555555",
             "name": "dropper.exe",
             "hashes": {"MD5": "D41D8CD98F00B204E9800998ECF8427E"}},
            {"type": "domain-name", "id": "domain-name--dddddddd-2222-4333-8444-555555555555",
             "value": "loose.example.org"},
            {"type": "indicator", "id": "indicator--eeeeeeee-2222-4333-8444-555555555555",
             "pattern_type": "stix", "name": "either",
             "pattern": "[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']"},
            {"type": "tool", "id": "tool--ffffffff-2222-4333-8444-555555555555", "name": "nmap"},
            {"type": "relationship", "id": "relationship--12345678-2222-4333-8444-555555555555",
             "relationship_type": "related-to",
             "source_ref": "indicator--eeeeeeee-2222-4333-8444-555555555555",
             "target_ref": "ipv4-addr--bbbbbbbb-2222-4333-8444-555555555555"},
            {"type": "relationship", "id": "relationship--22345678-2222-4333-8444-555555555555",
             "relationship_type": "communicates-with",
             "source_ref": "file--cccccccc-2222-4333-8444-555555555555",
             "target_ref": "ipv4-addr--bbbbbbbb-2222-4333-8444-555555555555"},
            {"type": "observed-data", "id": "observed-data--abababab-2222-4333-8444-555555555555",
             "object_refs": ["ipv4-addr--bbbbbbbb-2222-4333-8444-555555555555"]},
            {"type": "grouping", "id": "grouping--12345678-2222-4333-8444-555555555555"}
        ]
    });
    let converted = convert(bundle.to_string().as_bytes()).unwrap();
    let event = crate::model::Event::from_json(&converted.event).expect("a valid MISP event");
    assert_eq!(event.info, "Small report");
    assert_eq!(
        event.orgc.as_ref().map(|org| org.name.as_str()),
        Some("Example CERT")
    );
    assert_eq!(
        event.uuid.to_string(),
        "11111111-2222-4333-8444-555555555555"
    );
    let tags: Vec<&str> = event.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tags, ["misp-galaxy:tool=\"nmap\"", "tlp:green"]);
    let attributes: Vec<(&str, &str, bool)> = event
        .attributes
        .iter()
        .map(|a| (a.attribute_type_name(), a.value.as_str(), a.to_ids))
        .collect();
    assert_eq!(
        attributes,
        [
            ("ip-dst", "198.51.100.9", false),
            ("domain", "loose.example.org", false),
            (
                "stix2-pattern",
                "[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']",
                true
            ),
        ]
    );
    assert_eq!(event.objects.len(), 1);
    let file: Vec<(&str, &str)> = event.objects[0]
        .attributes
        .iter()
        .map(|a| (a.attribute_type_name(), a.value.as_str()))
        .collect();
    assert_eq!(
        file,
        [
            ("filename", "dropper.exe"),
            ("md5", "d41d8cd98f00b204e9800998ecf8427e")
        ]
    );
    let references: Vec<(String, &str)> = event.objects[0]
        .references
        .iter()
        .map(|r| (r.referenced_uuid.to_string(), r.relationship_type.as_str()))
        .collect();
    assert_eq!(
        references,
        [(
            "bbbbbbbb-2222-4333-8444-555555555555".to_string(),
            "communicates-with"
        )]
    );
    assert_eq!(event.reports.len(), 1);
    assert!(event.reports[0]
        .content
        .contains("- either (indicator) related-to 198.51.100.9 (ipv4-addr)"));
    assert_eq!(
        converted.skipped,
        ["grouping--12345678-2222-4333-8444-555555555555: STIX type grouping is not imported"]
    );
}

proptest::proptest! {
    /// Any indicator pattern, name and label converts to a valid MISP event or a
    /// [`StixError`], never a panic.
    #[test]
    fn any_indicator_converts_or_is_refused(
        pattern in "(\\PC|\\[|\\]|'|=| AND | OR |ipv4-addr:value|file:hashes\\.'SHA-256'){0,40}",
        name in "\\PC{0,20}",
        label in "\\PC{0,10}",
        kind in proptest::sample::select(vec!["indicator", "malware", "report", "ipv4-addr", "file"]),
    ) {
        let bundle = json!({"type": "bundle", "id": "bundle--x", "objects": [
            {"type": kind, "id": format!("{kind}--11111111-2222-4333-8444-555555555555"),
             "pattern": pattern, "name": name, "value": name, "labels": [label],
             "hashes": {"SHA-256": pattern}}
        ]});
        if let Ok(converted) = convert(bundle.to_string().as_bytes()) {
            proptest::prop_assert!(crate::model::Event::from_json(&converted.event).is_ok());
        }
    }
}

#[test]
fn not_a_bundle_is_refused() {
    assert!(matches!(
        convert(b"{\"type\": \"report\"}"),
        Err(StixError::NotABundle(_))
    ));
    assert!(matches!(convert(b"nope"), Err(StixError::Json(_))));
}
