//! The API's objects, tag definitions, sighting searches, sharing groups and administration
//! endpoints, on the real `threatlog serve` binary: MISP envelopes, concrete values, MISP's
//! permission failures, and a log that still verifies (views equal a fresh replay).

mod common;

use common::accounts::{admin_key, cli_user};
use common::server::Server;

use serde_json::{json, Value};
use std::path::Path;

const NO_PERMISSION: &str = "You do not have permission to do that.";

fn forbidden(url: &str) -> Value {
    json!({"name": NO_PERMISSION, "message": NO_PERMISSION, "url": url})
}

/// The log verifies and the views equal a fresh replay.
fn verifies(dir: &Path) {
    let summary = common::ok(dir, &["log", "verify"]);
    assert!(summary.starts_with("verified "), "{summary}");
}

fn add_event(server: &Server, key: &str, body: &str) -> Value {
    let (status, event) = server.request("POST", "/events/add", Some(key), Some(body));
    assert_eq!(status, 200, "{event}");
    event
}

#[test]
fn objects_with_references_soft_and_hard_delete() {
    let (_temp, dir) = common::node();
    let reader = cli_user(&dir, "Test Org", "read-only", "r@test.example");
    let server = Server::start(&dir);
    let key = admin_key(&dir);
    let event = add_event(
        &server,
        &key,
        r#"{"Event": {"info": "objects", "distribution": 0,
            "Attribute": [{"type": "ip-dst", "value": "192.0.2.44"}]}}"#,
    );
    let event_id = event["Event"]["id"].as_str().unwrap().to_string();
    let target = event["Event"]["Attribute"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let object = r#"{"Object": {"name": "file", "meta-category": "file",
        "Attribute": [{"type": "filename", "object_relation": "filename", "value": "a.exe"}]}}"#;
    let (status, added) = server.request(
        "POST",
        &format!("/objects/add/{event_id}"),
        Some(&key),
        Some(object),
    );
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["Object"]["name"], "file");
    assert_eq!(added["Object"]["Attribute"][0]["value"], "a.exe");
    let object_id = added["Object"]["id"].as_str().unwrap().to_string();
    let object_uuid = added["Object"]["uuid"].as_str().unwrap().to_string();

    let (status, edited) = server.request(
        "POST",
        &format!("/objects/edit/{object_id}"),
        Some(&key),
        Some(r#"{"Object": {"comment": "second look"}}"#),
    );
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["Object"]["comment"], "second look");
    assert_eq!(edited["Object"]["Attribute"][0]["value"], "a.exe");
    let add_url = format!("/objects/add/{event_id}");
    let (status, denied) = server.request("POST", &add_url, Some(&reader), Some(object));
    assert_eq!((status, denied), (403, forbidden(&add_url)));
    let reference = json!({"referenced_uuid": target, "relationship_type": "connects-to"});
    let (status, saved) = server.request(
        "POST",
        &format!("/objectReferences/add/{object_id}"),
        Some(&key),
        Some(&reference.to_string()),
    );
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["ObjectReference"]["relationship_type"], "connects-to");
    assert_eq!(
        saved["ObjectReference"]["object_uuid"],
        object_uuid.as_str()
    );
    let (status, viewed) = server.request(
        "GET",
        &format!("/objects/view/{object_uuid}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 200, "{viewed}");
    assert_eq!(
        viewed["Object"]["ObjectReference"][0]["referenced_uuid"],
        target.as_str()
    );
    let (status, bad) = server.request(
        "POST",
        &format!("/objectReferences/add/{object_id}"),
        Some(&key),
        Some(r#"{"referenced_uuid": "00000000-0000-4000-8000-000000000001", "relationship_type": "x"}"#),
    );
    assert_eq!(
        (status, &bad["errors"]["referenced_uuid"]),
        (403, &json!(["Invalid referenced item."]))
    );

    let url = format!("/objects/delete/{object_id}");
    let (status, soft) = server.request("POST", &url, Some(&key), None);
    assert_eq!(status, 200, "{soft}");
    assert_eq!(soft["message"], "Object deleted");
    let (_, view) = server.request("GET", &format!("/events/view/{event_id}"), Some(&key), None);
    assert_eq!(view["Event"]["Object"], json!([]));
    let (status, still) = server.request(
        "GET",
        &format!("/objects/view/{object_id}"),
        Some(&key),
        None,
    );
    assert_eq!((status, &still["Object"]["deleted"]), (200, &json!(true)));

    let (status, _) = server.request("POST", &url, Some(&key), Some(r#"{"hard": 1}"#));
    assert_eq!(status, 200);
    let (status, gone) = server.request(
        "GET",
        &format!("/objects/view/{object_id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 404, "{gone}");
    assert_eq!(gone["message"], "Invalid object.");
    server.stop();
    verifies(&dir);
}

#[test]
fn tag_definitions_need_a_tag_editor() {
    let (_temp, dir) = common::node();
    let user = cli_user(&dir, "Test Org", "user", "u@test.example");
    let server = Server::start(&dir);
    let key = admin_key(&dir);
    let body = r##"{"Tag": {"name": "crud:one", "colour": "#123456"}}"##;
    let (status, denied) = server.request("POST", "/tags/add", Some(&user), Some(body));
    assert_eq!((status, denied), (403, forbidden("/tags/add")));
    let (status, tag) = server.request("POST", "/tags/add", Some(&key), Some(body));
    assert_eq!(status, 200, "{tag}");
    assert_eq!(tag["Tag"]["name"], "crud:one");
    assert_eq!(tag["Tag"]["colour"], "#123456");
    let id = tag["Tag"]["id"].as_str().unwrap().to_string();
    let (status, again) = server.request("POST", "/tags/add", Some(&key), Some(body));
    assert_eq!(status, 403);
    assert_eq!(
        again["errors"]["name"],
        json!(["A similar name already exists."])
    );

    let (_, index) = server.request("GET", "/tags/index", Some(&user), None);
    let names: Vec<&str> = index["Tag"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["crud:one"]);
    let (status, edited) = server.request(
        "POST",
        &format!("/tags/edit/{id}"),
        Some(&key),
        Some(r##"{"Tag": {"colour": "#abcdef", "hide_tag": true}}"##),
    );
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (
            edited["Tag"]["colour"].as_str(),
            edited["Tag"]["hide_tag"].as_bool()
        ),
        (Some("#abcdef"), Some(true))
    );
    let (_, viewed) = server.request("GET", &format!("/tags/view/{id}"), Some(&user), None);
    assert_eq!(viewed["Tag"]["colour"], "#abcdef");

    let url = format!("/tags/delete/{id}");
    let (status, denied) = server.request("POST", &url, Some(&user), None);
    assert_eq!((status, denied), (403, forbidden(&url)));
    let (status, deleted) = server.request("POST", &url, Some(&key), None);
    assert_eq!(
        (status, deleted["message"].as_str()),
        (200, Some("Tag deleted."))
    );
    let (_, index) = server.request("GET", "/tags/index", Some(&key), None);
    assert_eq!(index, json!({"Tag": []}));
    let (status, _) = server.request("GET", &format!("/tags/view/{id}"), Some(&key), None);
    assert_eq!(status, 404);
    server.stop();
    verifies(&dir);
}

#[test]
fn sightings_search_list_and_delete() {
    let (_temp, dir) = common::node();
    let server = Server::start(&dir);
    let key = admin_key(&dir);
    let event = add_event(
        &server,
        &key,
        r#"{"Event": {"info": "sightings", "distribution": 0,
            "Attribute": [{"type": "domain", "value": "seen.example"}]}}"#,
    );
    let event_id = event["Event"]["id"].as_str().unwrap().to_string();
    let attribute_id = event["Event"]["Attribute"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for body in [
        r#"{"value": "seen.example", "source": "s1", "date_sighting": 1700000000}"#,
        r#"{"value": "seen.example", "source": "s2", "type": "1", "date_sighting": 1700100000}"#,
    ] {
        let (status, added) = server.request("POST", "/sightings/add", Some(&key), Some(body));
        assert_eq!(status, 200, "{added}");
    }
    let search = |body: &str| {
        let (status, found) =
            server.request("POST", "/sightings/restSearch", Some(&key), Some(body));
        assert_eq!(status, 200, "{found}");
        let sources: Vec<String> = found["response"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sighting"]["source"].as_str().unwrap().to_string())
            .collect();
        sources
    };
    let mut all = search(r#"{"value": "seen.example"}"#);
    all.sort();
    assert_eq!(all, vec!["s1", "s2"]);
    assert_eq!(search(r#"{"type": "1"}"#), vec!["s2"]);
    assert_eq!(search(r#"{"source": "s1"}"#), vec!["s1"]);
    assert_eq!(search(r#"{"from": 1700050000}"#), vec!["s2"]);
    assert_eq!(search(r#"{"to": "2023-11-15"}"#), vec!["s1"]);
    assert_eq!(
        search(r#"{"value": "other.example"}"#),
        Vec::<String>::new()
    );
    assert_eq!(
        search(&format!(r#"{{"id": "{attribute_id}", "source": "s2"}}"#)),
        vec!["s2"]
    );

    let (status, listed) = server.request(
        "GET",
        &format!("/sightings/listSightings/{attribute_id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let (_, on_event) = server.request(
        "POST",
        "/sightings/listSightings",
        Some(&key),
        Some(&format!(r#"{{"context": "event", "id": "{event_id}"}}"#)),
    );
    assert_eq!(on_event.as_array().unwrap().len(), 2);
    let first = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sighting"]["source"] == "s1")
        .unwrap()["Sighting"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("/sightings/delete/{first}");
    let (status, deleted) = server.request("POST", &url, Some(&key), None);
    assert_eq!(
        (status, deleted["message"].as_str()),
        (200, Some("Sighting successfully deleted."))
    );
    assert_eq!(search(r#"{"value": "seen.example"}"#), vec!["s2"]);
    let (_, view) = server.request("GET", &format!("/events/view/{event_id}"), Some(&key), None);
    assert_eq!(
        view["Event"]["Attribute"][0]["Sighting"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["source"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["s2"]
    );
    let (status, again) = server.request("POST", &url, Some(&key), None);
    assert_eq!(
        (status, again["message"].as_str()),
        (404, Some("Invalid sighting."))
    );
    server.stop();
    verifies(&dir);
}

#[test]
fn sharing_group_members_see_its_events() {
    let (_temp, dir) = common::node();
    common::ok(&dir, &["org", "add", "--name", "Member CERT"]);
    common::ok(&dir, &["org", "add", "--name", "Outside CERT"]);
    let member = cli_user(&dir, "Member CERT", "user", "m@member.example");
    let outsider = cli_user(&dir, "Outside CERT", "org-admin", "o@outside.example");
    let server = Server::start(&dir);
    let key = admin_key(&dir);
    let (status, group) = server.request(
        "POST",
        "/sharingGroups/add",
        Some(&key),
        Some(r#"{"SharingGroup": {"name": "pair", "releasability": "pair only"}}"#),
    );
    assert_eq!(status, 200, "{group}");
    let group_id = group["SharingGroup"]["id"].as_str().unwrap().to_string();
    let group_uuid = group["SharingGroup"]["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        group["SharingGroupOrg"][0]["Organisation"]["name"],
        "Test Org"
    );
    let (status, added) = server.request(
        "POST",
        &format!("/sharingGroups/addOrg/{group_id}/Member CERT").replace(' ', "%20"),
        Some(&key),
        None,
    );
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["message"], "Organisation added to the sharing group.");
    let (status, denied) = server.request(
        "POST",
        "/sharingGroups/addOrg",
        Some(&outsider),
        Some(&format!(
            r#"{{"sg_id": "{group_id}", "org_id": "Outside CERT"}}"#
        )),
    );
    assert_eq!(status, 404, "{denied}");

    let event = add_event(
        &server,
        &key,
        &format!(
            r#"{{"Event": {{"info": "grouped", "distribution": 4, "sharing_group_uuid": "{group_uuid}",
                "Attribute": [{{"type": "ip-src", "value": "192.0.2.99"}}]}}}}"#
        ),
    );
    let uuid = event["Event"]["uuid"].as_str().unwrap().to_string();
    let view = format!("/events/view/{uuid}");
    let (status, seen) = server.request("GET", &view, Some(&member), None);
    assert_eq!(
        (status, seen["Event"]["info"].as_str()),
        (200, Some("grouped"))
    );
    let (status, hidden) = server.request("GET", &view, Some(&outsider), None);
    assert_eq!(
        (status, hidden["message"].as_str()),
        (404, Some("Invalid event."))
    );
    let (_, groups) = server.request("GET", "/sharingGroups/index", Some(&outsider), None);
    assert_eq!(groups, json!({"response": []}));
    let (_, groups) = server.request("GET", "/sharingGroups/index", Some(&member), None);
    assert_eq!(groups["response"][0]["SharingGroup"]["name"], "pair");

    let (status, _) = server.request(
        "POST",
        "/sharingGroups/removeOrg",
        Some(&key),
        Some(&format!(
            r#"{{"sg_id": "{group_uuid}", "org_id": "Member CERT"}}"#
        )),
    );
    assert_eq!(status, 200);
    let (status, _) = server.request("GET", &view, Some(&member), None);
    assert_eq!(status, 404);
    let (status, _) = server.request(
        "POST",
        &format!("/sharingGroups/delete/{group_id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = server.request(
        "GET",
        &format!("/sharing_groups/view/{group_id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 404);
    server.stop();
    verifies(&dir);
}

#[test]
fn organisation_and_user_administration() {
    let (_temp, dir) = common::node();
    let user = cli_user(&dir, "Test Org", "user", "plain@test.example");
    let org_admin = cli_user(&dir, "Test Org", "org-admin", "oa@test.example");
    let server = Server::start(&dir);
    let key = admin_key(&dir);
    let body = r#"{"Organisation": {"name": "New CERT", "sector": "energy"}}"#;
    let url = "/admin/organisations/add";
    let (status, denied) = server.request("POST", url, Some(&user), Some(body));
    assert_eq!((status, denied), (403, forbidden(url)));
    let (status, org) = server.request("POST", url, Some(&key), Some(body));
    assert_eq!(status, 200, "{org}");
    assert_eq!(
        (
            org["Organisation"]["name"].as_str(),
            org["Organisation"]["sector"].as_str()
        ),
        (Some("New CERT"), Some("energy"))
    );
    let org_id = org["Organisation"]["id"].as_str().unwrap().to_string();
    let (status, dup) = server.request("POST", url, Some(&key), Some(body));
    assert_eq!(
        (status, &dup["errors"]["name"]),
        (
            403,
            &json!(["An organisation with this name already exists."])
        )
    );
    let (status, edited) = server.request(
        "POST",
        &format!("/admin/organisations/edit/{org_id}"),
        Some(&key),
        Some(r#"{"name": "Renamed CERT"}"#),
    );
    assert_eq!(
        (status, edited["Organisation"]["name"].as_str()),
        (200, Some("Renamed CERT"))
    );
    let (_, orgs) = server.request("GET", "/admin/organisations/index", Some(&user), None);
    let mut names: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Organisation"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Renamed CERT", "Test Org"]);

    let add = json!({"User": {"email": "new@renamed.example", "org_id": org_id, "role_id": "3"}})
        .to_string();
    let (status, denied) = server.request("POST", "/admin/users/add", Some(&user), Some(&add));
    assert_eq!((status, denied), (403, forbidden("/admin/users/add")));
    let (status, denied) = server.request("POST", "/admin/users/add", Some(&org_admin), Some(&add));
    assert_eq!(
        status, 403,
        "org admins add users to their own organisation only: {denied}"
    );
    let own = r#"{"User": {"email": "staff@test.example", "role_id": "3"}}"#;
    let (status, staff) = server.request("POST", "/admin/users/add", Some(&org_admin), Some(own));
    assert_eq!(status, 200, "{staff}");
    assert_eq!(staff["User"]["org_id"], "1");
    let (status, created) = server.request("POST", "/admin/users/add", Some(&key), Some(&add));
    assert_eq!(status, 200, "{created}");
    let new_key = created["User"]["authkey"].as_str().unwrap().to_string();
    assert_eq!(new_key.len(), 40);
    let new_id = created["User"]["id"].as_str().unwrap().to_string();
    let (status, me) = server.request("GET", "/users/view/me", Some(&new_key), None);
    assert_eq!(
        (status, me["User"]["email"].as_str()),
        (200, Some("new@renamed.example"))
    );
    let (status, viewed) = server.request(
        "GET",
        &format!("/admin/users/view/{new_id}"),
        Some(&key),
        None,
    );
    assert_eq!(
        (status, viewed["User"]["authkey"].clone()),
        (200, Value::Null)
    );
    let (status, _) = server.request(
        "GET",
        &format!("/admin/users/view/{new_id}"),
        Some(&org_admin),
        None,
    );
    assert_eq!(status, 404);
    let (_, listed) = server.request("GET", "/admin/users/index", Some(&org_admin), None);
    let mut emails: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["User"]["email"].as_str().unwrap())
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        vec![
            "admin@admin.test",
            "oa@test.example",
            "plain@test.example",
            "staff@test.example"
        ]
    );
    let (status, edited) = server.request(
        "POST",
        &format!("/admin/users/edit/{new_id}"),
        Some(&key),
        Some(r#"{"User": {"role_id": "4"}}"#),
    );
    assert_eq!(
        (status, edited["User"]["role_id"].as_str()),
        (200, Some("4"))
    );
    let (status, refused) = server.request(
        "POST",
        &format!("/admin/organisations/delete/{org_id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 403, "{refused}");

    let (status, deleted) = server.request(
        "POST",
        &format!("/admin/users/delete/{new_id}"),
        Some(&key),
        None,
    );
    assert_eq!(
        (status, deleted["message"].as_str()),
        (200, Some("User deleted."))
    );
    let (status, _) = server.request("GET", "/users/view/me", Some(&new_key), None);
    assert_eq!(status, 403);
    let (status, deleted) = server.request(
        "POST",
        &format!("/admin/organisations/delete/{org_id}"),
        Some(&key),
        None,
    );
    assert_eq!(
        (status, deleted["message"].as_str()),
        (200, Some("Organisation deleted"))
    );
    let (status, _) = server.request(
        "GET",
        &format!("/organisations/view/{org_id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 404);
    server.stop();
    verifies(&dir);
}
