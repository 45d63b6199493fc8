//! Write authority over REST (SPEC §4.2) on the real `threatlog serve` binary, with users of
//! several organisations on one node: an event's contents belong to its owner organisation,
//! no request can take another event's item over by naming its uuid, a site admin cannot
//! sign edits of another organisation's event (which peers would refuse), and two
//! organisations creating one event uuid at once cannot both succeed.

mod common;

use common::accounts::{admin_key, org_member, org_user, org_uuid};
use common::server::Server;
use serde_json::{json, Value};
use std::sync::{Arc, Barrier};
use uuid::Uuid;

const NO_PERMISSION: &str = "You do not have permission to do that.";
/// The victim attribute's value, which no attack may change.
const VICTIM_VALUE: &str = "198.51.100.41";
/// The value the attacker tries to give it.
const ATTACKER_VALUE: &str = "203.0.113.66";
/// Rounds of concurrent creates of one uuid.
const RACE_ROUNDS: usize = 12;
/// Attributes in each raced event: building and signing them widens the window between a
/// request's existence check and its append.
const RACE_ATTRIBUTES: usize = 400;

fn post(server: &Server, key: &str, path: &str, body: &Value) -> (u16, Value) {
    server.request("POST", path, Some(key), Some(&body.to_string()))
}

fn get(server: &Server, key: &str, path: &str) -> Value {
    let (status, reply) = server.request("GET", path, Some(key), None);
    assert_eq!(status, 200, "GET {path}: {reply}");
    reply
}

fn add_event(server: &Server, key: &str, info: &str, value: &str) -> Value {
    let body = json!({"Event": {"info": info, "distribution": "1",
        "Attribute": [{"type": "ip-dst", "value": value}]}});
    let (status, event) = post(server, key, "/events/add", &body);
    assert_eq!(status, 200, "{event}");
    event["Event"].clone()
}

/// A MISP error body: `name`, `message` and `url` (and `errors` for validation failures).
fn assert_misp_error(reply: &Value, url: &str) {
    assert_eq!(reply["url"], url, "{reply}");
    assert!(
        reply["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{reply}"
    );
    assert!(
        reply["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{reply}"
    );
}

#[test]
fn another_events_attribute_uuid_is_refused_and_the_attribute_unchanged_in_every_view() {
    let (_temp, dir) = common::node();
    let victim_key = org_user(&dir, "Victim Org", "victim@test.example");
    let attacker_key = org_user(&dir, "Attacker Org", "mallory@test.example");
    let server = Server::start(&dir);
    let admin = admin_key(&dir);

    let victim = add_event(&server, &victim_key, "victim's event", VICTIM_VALUE);
    let target = victim["Attribute"][0]["uuid"].as_str().unwrap().to_string();
    let victim_id = victim["id"].as_str().unwrap().to_string();
    let own = add_event(&server, &attacker_key, "attacker's event", "192.0.2.5");
    let own_id = own["id"].as_str().unwrap().to_string();

    // events/edit of the attacker's own event, listing the victim's attribute uuid.
    let edit = json!({"Event": {"info": "attacker's event",
        "Attribute": [{"uuid": target, "type": "ip-dst", "value": ATTACKER_VALUE}]}});
    let url = format!("/events/edit/{own_id}");
    let (status, reply) = post(&server, &attacker_key, &url, &edit);
    assert_eq!(status, 403, "{reply}");
    assert_misp_error(&reply, &url);
    // events/add of a new event carrying it, and attributes/add to the attacker's event.
    let add = json!({"Event": {"info": "carrier",
        "Attribute": [{"uuid": target, "type": "ip-dst", "value": ATTACKER_VALUE}]}});
    let (status, reply) = post(&server, &attacker_key, "/events/add", &add);
    assert_eq!(status, 403, "{reply}");
    assert_misp_error(&reply, "/events/add");
    let url = format!("/attributes/add/{own_id}");
    let attribute = json!({"uuid": target, "type": "ip-dst", "value": ATTACKER_VALUE});
    let (status, reply) = post(&server, &attacker_key, &url, &attribute);
    assert_eq!(status, 403, "{reply}");
    assert_misp_error(&reply, &url);

    let url = format!("/objects/add/{own_id}");
    let object = json!({"Object": {"name": "domain-ip", "meta-category": "network",
        "Attribute": [{"uuid": target, "type": "ip-dst", "object_relation": "ip",
                       "value": ATTACKER_VALUE}]}});
    let (status, reply) = post(&server, &attacker_key, &url, &object);
    assert_eq!(status, 403, "{reply}");
    assert_misp_error(&reply, &url);

    // The attribute is unchanged in every view: its event, the attribute itself, searches.
    for key in [&victim_key, &admin] {
        let event = get(&server, key, &format!("/events/view/{victim_id}"));
        let attributes = event["Event"]["Attribute"].as_array().unwrap();
        assert_eq!(attributes.len(), 1, "{event}");
        assert_eq!(attributes[0]["uuid"], target.as_str());
        assert_eq!(attributes[0]["value"], VICTIM_VALUE);
        let shown = get(&server, key, &format!("/attributes/view/{target}"));
        assert_eq!(shown["Attribute"]["value"], VICTIM_VALUE, "{shown}");
        assert_eq!(
            shown["Attribute"]["event_id"],
            victim_id.as_str(),
            "{shown}"
        );
    }
    let (status, found) = post(
        &server,
        &admin,
        "/attributes/restSearch",
        &json!({"value": ATTACKER_VALUE}),
    );
    assert_eq!(
        (status, found),
        (200, json!({"response": {"Attribute": []}}))
    );
    let attacker_event = get(&server, &attacker_key, &format!("/events/view/{own_id}"));
    let uuids: Vec<&str> = attacker_event["Event"]["Attribute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["uuid"].as_str().unwrap())
        .collect();
    assert!(!uuids.contains(&target.as_str()), "{attacker_event}");
    assert_eq!(uuids.len(), 1, "{attacker_event}");
    // The log verifies: the stored views equal a fresh replay.
    server.stop();
    let verified = common::ok(&dir, &["log", "verify"]);
    assert!(verified.starts_with("verified "), "{verified}");
}

#[test]
fn a_site_admin_editing_another_orgs_event_gets_misps_permission_error() {
    let (_temp, dir) = common::node();
    let owner_key = org_user(&dir, "Owner Org", "owner@test.example");
    let server = Server::start(&dir);
    let admin = admin_key(&dir);
    let event = add_event(&server, &owner_key, "the owner's event", VICTIM_VALUE);
    let id = event["id"].as_str().unwrap().to_string();
    let uuid = event["uuid"].as_str().unwrap().to_string();

    let forbidden =
        |url: &str| json!({"name": NO_PERMISSION, "message": NO_PERMISSION, "url": url});
    let url = format!("/events/edit/{id}");
    let (status, reply) = post(
        &server,
        &admin,
        &url,
        &json!({"Event": {"info": "admin's"}}),
    );
    assert_eq!((status, reply), (403, forbidden(&url)));
    let url = format!("/events/delete/{uuid}");
    let (status, reply) = post(&server, &admin, &url, &json!({}));
    assert_eq!((status, reply), (403, forbidden(&url)));
    let url = format!("/attributes/add/{id}");
    let (status, reply) = post(
        &server,
        &admin,
        &url,
        &json!({"type": "ip-dst", "value": ATTACKER_VALUE}),
    );
    assert_eq!((status, reply), (403, forbidden(&url)));
    // The admin still sees the event, unchanged.
    let shown = get(&server, &admin, &format!("/events/view/{id}"));
    assert_eq!(shown["Event"]["info"], "the owner's event");
    assert_eq!(shown["Event"]["Attribute"].as_array().unwrap().len(), 1);
    // The owner's own edit goes through.
    let (status, reply) = post(
        &server,
        &owner_key,
        &format!("/events/edit/{id}"),
        &json!({"Event": {"info": "edited by its owner"}}),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Event"]["info"], "edited by its owner");
}

#[test]
fn two_orgs_creating_one_event_uuid_at_once_exactly_one_succeeds() {
    let (_temp, dir) = common::node();
    let keys = [
        org_user(&dir, "Racer One", "one@test.example"),
        org_user(&dir, "Racer Two", "two@test.example"),
    ];
    let server = Arc::new(Server::start(&dir));
    let admin = admin_key(&dir);
    for round in 0..RACE_ROUNDS {
        let uuid = Uuid::new_v4().to_string();
        let barrier = Arc::new(Barrier::new(keys.len()));
        let racers: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(racer, key)| {
                let attributes: Vec<Value> = (0..RACE_ATTRIBUTES)
                    .map(|n| {
                        json!({"type": "ip-dst",
                               "value": format!("10.{racer}.{}.{}", n / 250, n % 250)})
                    })
                    .collect();
                let body = json!({"Event": {"uuid": uuid, "info": format!("racer {racer}"),
                    "distribution": "1", "Attribute": attributes}})
                .to_string();
                let (server, barrier, key) =
                    (Arc::clone(&server), Arc::clone(&barrier), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    server.request("POST", "/events/add", Some(&key), Some(&body))
                })
            })
            .collect();
        let replies: Vec<(u16, Value)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners: Vec<usize> = (0..replies.len())
            .filter(|i| replies[*i].0 == 200)
            .collect();
        let statuses: Vec<u16> = replies.iter().map(|(status, _)| *status).collect();
        assert_eq!(winners.len(), 1, "round {round}: statuses {statuses:?}");
        let winner = winners[0];
        let (status, refusal) = &replies[1 - winner];
        assert_eq!(*status, 403, "round {round}: {refusal}");
        assert_misp_error(refusal, "/events/add");
        // The event is the winner's, with the winner's attributes only.
        let event = get(&server, &admin, &format!("/events/view/{uuid}"));
        assert_eq!(
            event["Event"]["info"],
            format!("racer {winner}"),
            "round {round}"
        );
        let attributes = event["Event"]["Attribute"].as_array().unwrap();
        assert_eq!(attributes.len(), RACE_ATTRIBUTES, "round {round}");
        let prefix = format!("10.{winner}.");
        assert!(attributes
            .iter()
            .all(|a| a["value"].as_str().unwrap().starts_with(&prefix)));
    }
}

#[test]
fn a_sharing_group_is_changed_by_its_owner_and_extended_only_by_members_it_marks() {
    let (_temp, dir) = common::node();
    let owner = org_member(&dir, "Owner Org", "org-admin", "owner@test.example");
    let extender = org_member(&dir, "Extender Org", "org-admin", "ext@test.example");
    let member = org_member(&dir, "Member Org", "org-admin", "member@test.example");
    common::ok(&dir, &["org", "add", "--name", "Newcomer Org"]);
    let names = ["Owner Org", "Extender Org", "Member Org", "Newcomer Org"];
    let [owner_org, extender_org, member_org, newcomer] = names.map(|name| org_uuid(&dir, name));
    let server = Server::start(&dir);
    let admin = admin_key(&dir);

    let (status, group) = post(
        &server,
        &owner,
        "/sharing_groups/add",
        &json!({"SharingGroup": {"name": "owned", "releasability": "tests"}}),
    );
    assert_eq!(status, 200, "{group}");
    let id = group["SharingGroup"]["id"].as_str().unwrap().to_string();
    let add = |key: &str, org: &str, extend: bool| {
        post(
            &server,
            key,
            "/sharingGroups/addOrg",
            &json!({"sg_id": id, "org_id": org, "extend": extend}),
        )
    };
    assert_eq!(add(&owner, &extender_org, true).0, 200);
    assert_eq!(add(&owner, &member_org, false).0, 200);

    // A member not marked extend adds no one; a site admin of another organisation changes
    // nothing either (peers would refuse both).
    let forbidden = json!({"name": NO_PERMISSION, "message": NO_PERMISSION,
                           "url": "/sharingGroups/addOrg"});
    assert_eq!(add(&member, &newcomer, false), (403, forbidden.clone()));
    assert_eq!(add(&admin, &newcomer, false), (403, forbidden.clone()));
    let url = format!("/sharing_groups/edit/{id}");
    let (status, reply) = post(
        &server,
        &admin,
        &url,
        &json!({"SharingGroup": {"name": "admin's"}}),
    );
    assert_eq!(status, 403, "{reply}");
    // The member marked extend adds an organisation, but neither marks others nor removes.
    assert_eq!(add(&extender, &newcomer, false).0, 200);
    assert_eq!(add(&extender, &member_org, true), (403, forbidden));
    let (status, reply) = post(
        &server,
        &extender,
        "/sharingGroups/removeOrg",
        &json!({"sg_id": id, "org_id": member_org}),
    );
    assert_eq!(status, 403, "{reply}");

    let shown = get(&server, &owner, &format!("/sharing_groups/view/{id}"));
    assert_eq!(shown["SharingGroup"]["name"], "owned");
    let mut listed: Vec<(String, bool)> = shown["SharingGroupOrg"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let uuid = m["Organisation"]["uuid"].as_str().unwrap().to_string();
            (uuid, m["extend"].as_bool().unwrap())
        })
        .collect();
    listed.sort();
    let mut expected = vec![
        (owner_org, false),
        (extender_org, true),
        (member_org, false),
        (newcomer, false),
    ];
    expected.sort();
    assert_eq!(listed, expected);
}
