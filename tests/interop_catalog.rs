//! Taxonomies and galaxies on a real node: loading the shared misp-taxonomies and misp-galaxy
//! directories, the REST views, attaching a galaxy cluster, and exclusive taxonomies (TLP)
//! enforced on every tag write path.

mod common;

use common::server::Server;
use serde_json::{json, Value};
use std::path::Path;

fn admin_key(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string()
}

fn load_catalog(dir: &Path) {
    let data = common::shared_data();
    let out = common::ok(
        dir,
        &[
            "taxonomy",
            "load",
            data.join("taxonomies").to_str().unwrap(),
        ],
    );
    assert!(out.contains("loaded 181 taxonomies"), "{out}");
    let out = common::ok(
        dir,
        &["galaxy", "load", data.join("galaxies").to_str().unwrap()],
    );
    assert!(out.contains("loaded 6 galaxies (4966 clusters)"), "{out}");
}

fn tag_names(item: &Value) -> Vec<String> {
    item["Tag"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// An event with one attribute; returns (event id, attribute id, attribute uuid).
fn new_event(server: &Server, key: &str) -> (String, String, String) {
    let body = json!({"Event": {"info": "tagging", "distribution": "0",
        "Attribute": [{"type": "domain", "value": "tagged.example.com"}]}});
    let (status, event) = server.request("POST", "/events/add", Some(key), Some(&body.to_string()));
    assert_eq!(status, 200, "{event}");
    let attribute = &event["Event"]["Attribute"][0];
    (
        event["Event"]["id"].as_str().unwrap().to_string(),
        attribute["id"].as_str().unwrap().to_string(),
        attribute["uuid"].as_str().unwrap().to_string(),
    )
}

fn attach(server: &Server, key: &str, uuid: &str, tag: &str) -> (u16, Value) {
    let body = json!({"uuid": uuid, "tag": tag}).to_string();
    server.request("POST", "/tags/attachTagToObject", Some(key), Some(&body))
}

#[test]
fn taxonomies_and_galaxies_load_and_are_served_in_misp_shapes() {
    let (_temp, dir) = common::node();
    load_catalog(&dir);
    // Loading again keeps ids and enabled flags.
    let out = common::ok(&dir, &["taxonomy", "enable", "PAP"]);
    assert!(out.starts_with("taxonomy PAP ("), "{out}");
    let error = common::fails(&dir, &["taxonomy", "enable", "nope"]);
    assert!(error.contains("no taxonomy 'nope'"), "{error}");
    let before = common::ok(&dir, &["taxonomy", "list"]);
    assert!(
        before.contains("   5  yes      yes             5  PAP"),
        "{before}"
    );
    load_catalog(&dir);
    assert_eq!(common::ok(&dir, &["taxonomy", "list"]), before);
    let galaxies = common::ok(&dir, &["galaxy", "list"]);
    assert!(
        galaxies.contains("threat-actor                   864  Threat Actor"),
        "{galaxies}"
    );

    let key = admin_key(&dir);
    let server = Server::start(&dir);
    let (status, index) = server.request("GET", "/taxonomies/index", Some(&key), None);
    assert_eq!(status, 200);
    let index = index.as_array().unwrap();
    assert_eq!(index.len(), 181);
    let tlp = index
        .iter()
        .find(|t| t["Taxonomy"]["namespace"] == "tlp")
        .unwrap();
    assert_eq!(tlp["Taxonomy"]["exclusive"], true);
    assert_eq!(tlp["Taxonomy"]["enabled"], false);
    assert_eq!(tlp["total_count"], 8);
    let tlp_id = tlp["Taxonomy"]["id"].as_str().unwrap().to_string();

    let (status, view) = server.request(
        "GET",
        &format!("/taxonomies/view/{tlp_id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 200);
    let tags: Vec<&str> = view["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tag"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "tlp:red",
            "tlp:amber",
            "tlp:amber+strict",
            "tlp:green",
            "tlp:white",
            "tlp:clear",
            "tlp:ex:chr",
            "tlp:unclear"
        ]
    );
    let (status, admiralty) =
        server.request("GET", "/taxonomies/view/admiralty-scale", Some(&key), None);
    assert_eq!(status, 200);
    assert_eq!(
        admiralty["entries"][0]["tag"],
        "admiralty-scale:source-reliability=\"a\""
    );
    assert_eq!(admiralty["entries"][0]["exclusive_predicate"], true);

    let path = format!("/taxonomies/enable/{tlp_id}");
    let (status, enabled) = server.request("POST", &path, Some(&key), None);
    assert_eq!(
        (status, &enabled["success"]),
        (200, &json!(true)),
        "{enabled}"
    );
    let (_, view) = server.request("GET", "/taxonomies/view/tlp", Some(&key), None);
    assert_eq!(view["Taxonomy"]["enabled"], true);
    let (status, _) = server.request(
        "POST",
        &format!("/taxonomies/disable/{tlp_id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 200);
    let (_, view) = server.request("GET", "/taxonomies/view/tlp", Some(&key), None);
    assert_eq!(view["Taxonomy"]["enabled"], false);
    let (status, _) = server.request("GET", "/taxonomies/view/9999", Some(&key), None);
    assert_eq!(status, 404);

    let (status, galaxies) = server.request("GET", "/galaxies/index", Some(&key), None);
    assert_eq!(status, 200);
    let types: Vec<&str> = galaxies
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["Galaxy"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "botnet",
            "mitre-attack-pattern",
            "ransomware",
            "sector",
            "threat-actor",
            "tool"
        ]
    );
    let (status, actors) = server.request("GET", "/galaxies/view/threat-actor", Some(&key), None);
    assert_eq!(status, 200);
    assert_eq!(actors["Galaxy"]["name"], "Threat Actor");
    let clusters = actors["GalaxyCluster"].as_array().unwrap();
    assert_eq!(clusters.len(), 864);
    let apt1 = clusters.iter().find(|c| c["value"] == "APT1").unwrap();
    assert_eq!(apt1["tag_name"], "misp-galaxy:threat-actor=\"APT1\"");
    assert!(apt1["GalaxyElement"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["key"] == "synonyms" && e["value"] == "Comment Crew"));
    server.stop();
}

#[test]
fn attaching_a_galaxy_cluster_adds_its_tag() {
    let (_temp, dir) = common::node();
    load_catalog(&dir);
    let key = admin_key(&dir);
    let server = Server::start(&dir);
    let (event_id, attribute_id, _) = new_event(&server, &key);
    let (_, actors) = server.request("GET", "/galaxies/view/threat-actor", Some(&key), None);
    let apt1 = actors["GalaxyCluster"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"] == "APT1")
        .unwrap()
        .clone();
    let body = json!({"Galaxy": {"target_id": apt1["id"]}}).to_string();

    let path = format!("/galaxies/attachCluster/{event_id}/event/local:0");
    let (status, answer) = server.request("POST", &path, Some(&key), Some(&body));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], "Cluster attached.");
    // By cluster uuid too, on the attribute.
    let body_uuid = json!({"Galaxy": {"target_id": apt1["uuid"]}}).to_string();
    let path = format!("/galaxies/attachCluster/{attribute_id}/attribute");
    let (status, answer) = server.request("POST", &path, Some(&key), Some(&body_uuid));
    assert_eq!(status, 200, "{answer}");

    let (_, event) = server.request("GET", &format!("/events/view/{event_id}"), Some(&key), None);
    assert_eq!(
        tag_names(&event["Event"]),
        ["misp-galaxy:threat-actor=\"APT1\""]
    );
    assert_eq!(
        tag_names(&event["Event"]["Attribute"][0]),
        ["misp-galaxy:threat-actor=\"APT1\""]
    );

    let (status, _) = server.request(
        "POST",
        &format!("/galaxies/attachCluster/{event_id}/event"),
        Some(&key),
        Some(r#"{"Galaxy": {"target_id": "99999999"}}"#),
    );
    assert_eq!(status, 404);
    server.stop();
    common::ok(&dir, &["log", "verify"]);
}

#[test]
fn a_second_tlp_tag_on_one_item_is_refused_without_any_taxonomy_loaded() {
    let (_temp, dir) = common::node();
    let key = admin_key(&dir);
    let server = Server::start(&dir);
    let (event_id, attribute_id, attribute_uuid) = new_event(&server, &key);

    assert_eq!(attach(&server, &key, &attribute_uuid, "tlp:amber").0, 200);
    let (status, refused) = attach(&server, &key, &attribute_uuid, "tlp:red");
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["name"], "Tag could not be attached.");
    assert_eq!(
        refused["errors"]["Tag"][0],
        "The tag tlp:red cannot be attached: the taxonomy tlp is exclusive and tlp:amber is already attached."
    );
    // tlp:ex:chr does not count; the same tag again is no conflict.
    assert_eq!(attach(&server, &key, &attribute_uuid, "tlp:ex:chr").0, 200);
    assert_eq!(attach(&server, &key, &attribute_uuid, "tlp:amber").0, 200);
    let (_, attribute) = server.request(
        "GET",
        &format!("/attributes/view/{attribute_id}"),
        Some(&key),
        None,
    );
    let mut names = tag_names(&attribute["Attribute"]);
    names.sort();
    assert_eq!(names, ["tlp:amber", "tlp:ex:chr"]);

    // The event is another item: its own TLP tag is fine; clear and white may coexist.
    let (_, event) = server.request("GET", &format!("/events/view/{event_id}"), Some(&key), None);
    let event_uuid = event["Event"]["uuid"].as_str().unwrap().to_string();
    assert_eq!(attach(&server, &key, &event_uuid, "tlp:clear").0, 200);
    assert_eq!(attach(&server, &key, &event_uuid, "tlp:white").0, 200);
    assert_eq!(attach(&server, &key, &event_uuid, "tlp:green").0, 403);

    // Tag lists in event and attribute writes are checked too.
    let body = json!({"Event": {"info": "two tlp", "Attribute": [{"type": "domain",
        "value": "x.example.com", "Tag": [{"name": "tlp:green"}, {"name": "tlp:red"}]}]}});
    let (status, refused) =
        server.request("POST", "/events/add", Some(&key), Some(&body.to_string()));
    assert_eq!(status, 403, "{refused}");
    assert!(refused["errors"]["Tag"][0]
        .as_str()
        .unwrap()
        .contains("tlp:green is already attached"));
    let body = json!({"type": "ip-dst", "value": "198.51.100.1",
        "Tag": [{"name": "tlp:amber"}, {"name": "tlp:amber+strict"}]});
    let (status, _) = server.request(
        "POST",
        &format!("/attributes/add/{event_id}"),
        Some(&key),
        Some(&body.to_string()),
    );
    assert_eq!(status, 403);
    let body = json!({"Attribute": {"Tag": [{"name": "tlp:red"}]}});
    let (status, _) = server.request(
        "POST",
        &format!("/attributes/edit/{attribute_id}"),
        Some(&key),
        Some(&body.to_string()),
    );
    assert_eq!(status, 403);
    server.stop();
}

#[test]
fn loaded_exclusive_taxonomies_are_enforced() {
    let (_temp, dir) = common::node();
    load_catalog(&dir);
    let key = admin_key(&dir);
    let server = Server::start(&dir);
    let (_, _, attribute_uuid) = new_event(&server, &key);
    // admiralty-scale: exclusive predicates, one value each.
    let first = "admiralty-scale:source-reliability=\"a\"";
    assert_eq!(attach(&server, &key, &attribute_uuid, first).0, 200);
    let other_predicate = "admiralty-scale:information-credibility=\"1\"";
    assert_eq!(
        attach(&server, &key, &attribute_uuid, other_predicate).0,
        200
    );
    let (status, refused) = attach(
        &server,
        &key,
        &attribute_uuid,
        "admiralty-scale:source-reliability=\"b\"",
    );
    assert_eq!(status, 403, "{refused}");
    assert!(refused["errors"]["Tag"][0]
        .as_str()
        .unwrap()
        .contains("the predicate admiralty-scale:source-reliability is exclusive"));
    // PAP is an exclusive taxonomy as a whole.
    assert_eq!(attach(&server, &key, &attribute_uuid, "PAP:GREEN").0, 200);
    assert_eq!(attach(&server, &key, &attribute_uuid, "PAP:RED").0, 403);
    server.stop();
}

#[test]
fn serve_loads_the_directories_named_in_the_configuration() {
    let (_temp, dir) = common::node();
    let data = common::shared_data();
    let config_path = dir.join("threatlog.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let config = config
        .replace(
            "# taxonomies_dir = \"/usr/share/misp-taxonomies\"",
            &format!("taxonomies_dir = {:?}", data.join("taxonomies")),
        )
        .replace(
            "# galaxies_dir = \"/usr/share/misp-galaxy\"",
            &format!("galaxies_dir = {:?}", data.join("galaxies")),
        );
    std::fs::write(&config_path, config).unwrap();
    let key = admin_key(&dir);
    let server = Server::start(&dir);
    let (_, taxonomies) = server.request("GET", "/taxonomies/index", Some(&key), None);
    assert_eq!(taxonomies.as_array().unwrap().len(), 181);
    let (_, galaxies) = server.request("GET", "/galaxies/index", Some(&key), None);
    assert_eq!(galaxies.as_array().unwrap().len(), 6);
    server.stop();
}
