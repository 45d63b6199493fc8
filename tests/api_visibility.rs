//! What a user of another organisation can obtain over REST (SPEC §6.1), on the real
//! `threatlog serve` binary with users of several organisations on one node: correlations
//! never name or follow an attribute the user may not see, and, against a model written from
//! the SPEC alone, every event, index line, attribute, object, correlation, search hit and
//! export line (CSV and STIX 2.1) each user obtains is exactly what the model allows.

mod common;

use common::accounts::org_user;
use common::server::Server;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

/// A value only an object hidden from other organisations holds (and Org B's event).
const HIDDEN: &str = "198.51.100.7";
/// A value both organisations share openly.
const SHARED: &str = "203.0.113.8";

fn post(server: &Server, key: &str, path: &str, body: &Value) -> Value {
    let (status, reply) = server.request("POST", path, Some(key), Some(&body.to_string()));
    assert_eq!(status, 200, "POST {path}: {reply}");
    reply
}

fn get(server: &Server, key: &str, path: &str) -> Value {
    let (status, reply) = server.request("GET", path, Some(key), None);
    assert_eq!(status, 200, "GET {path}: {reply}");
    reply
}

fn add_event(server: &Server, key: &str, event: Value) -> Value {
    post(server, key, "/events/add", &json!({ "Event": event }))["Event"].clone()
}

/// The uuids of an event's `RelatedEvent` list.
fn related_events(event: &Value) -> BTreeSet<String> {
    event["Event"]["RelatedEvent"]
        .as_array()
        .unwrap_or_else(|| panic!("RelatedEvent in {event}"))
        .iter()
        .map(|related| related["Event"]["uuid"].as_str().unwrap().to_string())
        .collect()
}

/// The values of an attribute's `RelatedAttribute` list.
fn related_values(attribute: &Value) -> Vec<String> {
    attribute["RelatedAttribute"]
        .as_array()
        .unwrap_or_else(|| panic!("RelatedAttribute in {attribute}"))
        .iter()
        .map(|related| related["value"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn elements_shared_with_a_group_are_seen_and_shared_by_its_members_only() {
    let (_temp, dir) = common::node();
    let admin = common::accounts::admin_key(&dir);
    let member = org_user(&dir, "Org A", "user@a.example");
    let outsider = org_user(&dir, "Org B", "user@b.example");
    let server = Server::start(&dir);
    let group = post(
        &server,
        &admin,
        "/sharingGroups/add",
        &json!({"SharingGroup": {"name": "community", "releasability": "members"}}),
    )["SharingGroup"]
        .clone();
    let group_id = group["id"].as_str().unwrap().to_string();
    post(
        &server,
        &admin,
        &format!("/sharingGroups/addOrg/{group_id}/Org%20A"),
        &json!({}),
    );
    let sees = |key: &str, uuid: &str| {
        let (status, _) = server.request("GET", &format!("/events/view/{uuid}"), Some(key), None);
        status == 200
    };

    // By local id, as text (PyMISP) and as a number, and by the group's uuid in the id field.
    for named in [
        json!(group_id),
        json!(group_id.parse::<u64>().unwrap()),
        group["uuid"].clone(),
    ] {
        let event = add_event(
            &server,
            &admin,
            json!({"info": "for the community", "distribution": "4", "sharing_group_id": named}),
        );
        assert_eq!(event["sharing_group_id"], json!(group_id), "{named}");
        assert_eq!(event["SharingGroup"]["uuid"], group["uuid"], "{named}");
        let uuid = event["uuid"].as_str().unwrap();
        assert_eq!(
            (sees(&member, uuid), sees(&outsider, uuid)),
            (true, false),
            "{named}"
        );
    }

    // An attribute of an event every organisation sees, shared with the group alone.
    let open = add_event(
        &server,
        &admin,
        json!({"info": "open", "distribution": "1"}),
    );
    let open_uuid = open["uuid"].as_str().unwrap().to_string();
    let attribute = json!({"type": "ip-dst", "value": "192.0.2.44", "distribution": "4",
        "sharing_group_id": group_id});
    post(
        &server,
        &admin,
        &format!("/attributes/add/{open_uuid}"),
        &attribute,
    );
    let values = |key: &str| {
        get(&server, key, &format!("/events/view/{open_uuid}"))["Event"]["Attribute"]
            .as_array()
            .unwrap()
            .iter()
            .map(|attribute| attribute["value"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&member), ["192.0.2.44"]);
    assert!(values(&outsider).is_empty());

    // A group that does not exist, or that the user's organisation is not in, is refused, by
    // whichever field names it: an organisation cannot share into a community it is not in.
    let own = add_event(
        &server,
        &outsider,
        json!({"info": "own", "distribution": "1"}),
    );
    let own_uuid = own["uuid"].as_str().unwrap();
    let unusable = Some("Invalid Sharing Group or not authorised.");
    let group_uuid = group["uuid"].as_str().unwrap();
    let spellings = [
        (
            &admin,
            json!({"sharing_group_id": "999"}),
            open_uuid.as_str(),
        ),
        (&outsider, json!({"sharing_group_id": group_id}), own_uuid),
        (&outsider, json!({"sharing_group_id": group_uuid}), own_uuid),
        (
            &outsider,
            json!({"sharing_group_uuid": group_uuid}),
            own_uuid,
        ),
        (
            &outsider,
            json!({"SharingGroup": {"uuid": group_uuid}}),
            own_uuid,
        ),
    ];
    for (key, named, target) in spellings {
        let with_group = |mut element: Value| {
            element["distribution"] = json!("4");
            for (field, value) in named.as_object().unwrap() {
                element[field] = value.clone();
            }
            element.to_string()
        };
        let event = with_group(json!({"info": "x"}));
        let (status, refused) = server.request("POST", "/events/add", Some(key), Some(&event));
        assert_eq!(
            (status, refused["message"].as_str()),
            (405, unusable),
            "{named}"
        );
        let path = format!("/attributes/add/{target}");
        let (status, refused) = server.request(
            "POST",
            &path,
            Some(key),
            Some(&with_group(attribute.clone())),
        );
        assert_eq!(
            (status, refused["message"].as_str()),
            (403, unusable),
            "{named}"
        );
        let object = with_group(json!({"name": "domain-ip", "Attribute": [
            {"type": "ip-dst", "object_relation": "ip", "value": "192.0.2.45"}]}));
        let path = format!("/objects/add/{target}");
        let (status, refused) = server.request("POST", &path, Some(key), Some(&object));
        assert_eq!(
            (status, refused["message"].as_str()),
            (403, unusable),
            "{named}"
        );
    }
    // Named in an edit of the outsider's own event, and nested in an attribute of it.
    let edits = [
        json!({"Event": {"distribution": "4", "sharing_group_uuid": group_uuid}}),
        json!({"Event": {"Attribute": [{"type": "ip-dst", "value": "192.0.2.46",
            "distribution": "4", "SharingGroup": {"uuid": group_uuid}}]}}),
    ];
    for edit in edits {
        let path = format!("/events/edit/{own_uuid}");
        let (status, refused) =
            server.request("POST", &path, Some(&outsider), Some(&edit.to_string()));
        assert_eq!(
            (status, refused["message"].as_str()),
            (405, unusable),
            "{edit}"
        );
    }
    let own_now = get(&server, &outsider, &format!("/events/view/{own_uuid}"))["Event"].clone();
    assert_eq!(
        (&own_now["distribution"], &own_now["Attribute"]),
        (&json!("1"), &json!([]))
    );
    assert!(values(&outsider).is_empty());
}

#[test]
fn a_tag_on_an_attribute_the_user_may_not_see_neither_finds_nor_hides_its_event() {
    let (_temp, dir) = common::node();
    let a = org_user(&dir, "Org A", "analyst@a.example");
    let b = org_user(&dir, "Org B", "analyst@b.example");
    let server = Server::start(&dir);
    // A community event of Org A whose one tagged attribute is for Org A only.
    let event = add_event(
        &server,
        &a,
        json!({"info": "A: community event", "distribution": "1", "Attribute": [
            {"type": "comment", "value": "open note"},
            {"type": "ip-dst", "value": HIDDEN, "distribution": "0",
             "Tag": [{"name": "victim:acme"}]}]}),
    );
    let uuid = event["uuid"].as_str().unwrap().to_string();
    let found = |key: &str, path: &str, filters: Value| -> Vec<String> {
        let reply = post(&server, key, path, &filters);
        let list = reply.get("response").unwrap_or(&reply).as_array().cloned();
        (list.unwrap_or_default().iter())
            .map(|line| {
                line.get("Event").unwrap_or(line)["uuid"]
                    .as_str()
                    .unwrap()
                    .into()
            })
            .collect()
    };
    for path in ["/events/restSearch", "/events/index"] {
        // Org A sees the tag: the event is found by it, and left out by its negation.
        assert_eq!(
            found(&a, path, json!({"tags": "victim:acme"})),
            std::slice::from_ref(&uuid)
        );
        assert!(found(&a, path, json!({"tags": "!victim:acme"})).is_empty());
        // Org B does not: the tag neither finds the event nor hides it.
        assert!(
            found(&b, path, json!({"tags": "victim:acme"})).is_empty(),
            "{path}"
        );
        assert_eq!(
            found(&b, path, json!({"tags": "!victim:acme"})),
            std::slice::from_ref(&uuid),
            "{path}"
        );
    }
    let (_, count) = server.request_text(
        "POST",
        "/events/restSearch",
        Some(&b),
        Some(&json!({"returnFormat": "count", "tags": "victim:acme"}).to_string()),
    );
    assert_eq!(count, "0");
}

#[test]
fn correlations_never_reach_an_attribute_the_user_may_not_see() {
    let (_temp, dir) = common::node();
    let a = org_user(&dir, "Org A", "analyst@a.example");
    let b = org_user(&dir, "Org B", "analyst@b.example");
    let server = Server::start(&dir);

    // Org A's community event: an open attribute, and an object for Org A only whose
    // attribute inherits the object's level.
    let secret = add_event(
        &server,
        &a,
        json!({"info": "A: object for A only", "distribution": "1",
            "Attribute": [{"type": "comment", "value": "nothing to correlate"}],
            "Object": [{"name": "domain-ip", "distribution": "0", "Attribute": [
                {"type": "ip-dst", "object_relation": "ip", "value": HIDDEN}]}]}),
    );
    let secret_uuid = secret["uuid"].as_str().unwrap().to_string();
    let open = add_event(
        &server,
        &a,
        json!({"info": "A: open", "distribution": "1",
            "Attribute": [{"type": "ip-dst", "value": SHARED}]}),
    );
    let open_uuid = open["uuid"].as_str().unwrap().to_string();
    // Org B's event holds both values.
    let own = add_event(
        &server,
        &b,
        json!({"info": "B's event", "distribution": "1", "Attribute": [
            {"type": "ip-dst", "value": HIDDEN},
            {"type": "ip-dst", "value": SHARED}]}),
    );
    let own_id = own["id"].as_str().unwrap().to_string();
    let attribute_id = |value: &str| {
        own["Attribute"]
            .as_array()
            .unwrap()
            .iter()
            .find(|attribute| attribute["value"] == value)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Org A sees its hidden attribute correlate with B's event, and the open one too.
    let seen_by_a = get(&server, &a, &format!("/events/view/{secret_uuid}"));
    let b_uuid = own["uuid"].as_str().unwrap().to_string();
    assert_eq!(related_events(&seen_by_a), BTreeSet::from([b_uuid.clone()]));

    // B's own event relates to A's open event only.
    let seen_by_b = get(&server, &b, &format!("/events/view/{own_id}"));
    assert_eq!(related_events(&seen_by_b), BTreeSet::from([open_uuid]));
    // A's event with the hidden object shows B neither the object nor a correlation through it.
    let secret_by_b = get(&server, &b, &format!("/events/view/{secret_uuid}"));
    assert_eq!(secret_by_b["Event"]["Object"], json!([]), "{secret_by_b}");
    assert_eq!(related_events(&secret_by_b), BTreeSet::new());

    // attributes/view of B's attribute lists no correlation for the hidden value, and A's open
    // attribute for the shared one.
    let hidden_view = get(
        &server,
        &b,
        &format!("/attributes/view/{}", attribute_id(HIDDEN)),
    );
    assert_eq!(
        related_values(&hidden_view["Attribute"]),
        Vec::<String>::new()
    );
    let shared_view = get(
        &server,
        &b,
        &format!("/attributes/view/{}", attribute_id(SHARED)),
    );
    assert_eq!(related_values(&shared_view["Attribute"]), vec![SHARED]);

    // attributes/restSearch with correlations: B's hidden-value hit carries none.
    let found = post(
        &server,
        &b,
        "/attributes/restSearch",
        &json!({"value": HIDDEN, "includeCorrelations": 1}),
    );
    let hits = found["response"]["Attribute"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{found}");
    assert_eq!(hits[0]["Event"]["uuid"], b_uuid, "{found}");
    assert_eq!(related_values(&hits[0]), Vec::<String>::new());

    // Searching events for the hidden value finds B's own event only, not A's event that
    // holds it where B may not look.
    let found = post(&server, &b, "/events/restSearch", &json!({"value": HIDDEN}));
    let events: Vec<&Value> = found["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| &event["Event"]["uuid"])
        .collect();
    assert_eq!(events, vec![&json!(b_uuid)], "{found}");
}

/// Cases of the REST property below run by `make test` (`PROPTEST_CASES` sets more).
const REST_CASES: u32 = 100;
/// The values the events draw from, so that they correlate.
const POOL: [&str; 8] = [
    "192.0.2.1",
    "192.0.2.2",
    "192.0.2.3",
    "198.51.100.1",
    "198.51.100.2",
    "203.0.113.1",
    "203.0.113.2",
    "203.0.113.3",
];
/// The node's `views.correlation_max`: values matching more attributes are not followed.
const CORRELATION_MAX: usize = 100;

/// One organisation's user as the model sees it.
#[derive(Clone, Debug)]
struct User {
    key: String,
    org: usize,
    site_admin: bool,
}

/// An attribute in the model: its event, levels (5 inherits) and value.
#[derive(Clone, Debug)]
struct ModelAttribute {
    event: String,
    level: u8,
    object_level: Option<u8>,
    value: String,
}

/// An event in the model: its owner organisation and level.
#[derive(Clone, Debug)]
struct ModelEvent {
    owner: usize,
    level: u8,
    objects: Vec<(String, u8)>,
}

/// What users of several organisations may see on one node (SPEC §6.1), written from the
/// SPEC alone: events by distribution and sharing group, items by their own level and their
/// object's.
#[derive(Default)]
struct Model {
    /// Organisations (by index) in the sharing group.
    members: BTreeSet<usize>,
    events: std::collections::BTreeMap<String, ModelEvent>,
    attributes: std::collections::BTreeMap<String, ModelAttribute>,
}

impl Model {
    fn level_allows(&self, user: &User, level: u8) -> bool {
        match level {
            1..=3 | 5 => true,
            4 => self.members.contains(&user.org),
            _ => false,
        }
    }

    fn sees_event(&self, user: &User, uuid: &str) -> bool {
        let event = &self.events[uuid];
        user.site_admin
            || event.owner == user.org
            || self.level_allows(user, event.level) && event.level != 5
    }

    fn sees_item(&self, user: &User, event: &str, levels: &[u8]) -> bool {
        self.sees_event(user, event)
            && (user.site_admin
                || self.events[event].owner == user.org
                || levels.iter().all(|level| self.level_allows(user, *level)))
    }

    fn sees_attribute(&self, user: &User, uuid: &str) -> bool {
        let attribute = &self.attributes[uuid];
        let mut levels = vec![attribute.level];
        levels.extend(attribute.object_level);
        self.sees_item(user, &attribute.event, &levels)
    }

    /// The attributes `user` sees with `value`.
    fn visible_with_value(&self, user: &User, value: &str) -> BTreeSet<String> {
        self.attributes
            .iter()
            .filter(|(uuid, a)| a.value == value && self.sees_attribute(user, uuid))
            .map(|(uuid, _)| uuid.clone())
            .collect()
    }

    /// Whether `value` matches more attributes than the node follows.
    fn over_correlating(&self, value: &str) -> bool {
        self.attributes
            .values()
            .filter(|a| a.value == value)
            .count()
            > CORRELATION_MAX
    }

    /// The events `user` should see listed as related to `event`.
    fn related_events(&self, user: &User, event: &str) -> BTreeSet<String> {
        let mine: Vec<&ModelAttribute> = self
            .attributes
            .iter()
            .filter(|(uuid, a)| a.event == event && self.sees_attribute(user, uuid))
            .map(|(_, a)| a)
            .collect();
        let mut out = BTreeSet::new();
        for attribute in mine {
            if self.over_correlating(&attribute.value) {
                continue;
            }
            for other in self.visible_with_value(user, &attribute.value) {
                let other = &self.attributes[&other].event;
                if other != event {
                    out.insert(other.clone());
                }
            }
        }
        out
    }
}

/// One random event: its owner (a user index), level, attributes (level, value), an
/// optional object (level, its attribute's level and value), the value searched for, and
/// whether its levels are sent as JSON numbers rather than MISP's strings.
type NewEvent = (
    usize,
    u8,
    Vec<(u8, usize)>,
    Option<(u8, u8, usize)>,
    usize,
    bool,
);

fn new_event() -> impl Strategy<Value = NewEvent> {
    (
        0..3usize,
        0..5u8,
        prop::collection::vec((0..6u8, 0..POOL.len()), 1..3),
        prop::option::of((0..6u8, 0..6u8, 0..POOL.len())),
        0..POOL.len(),
        any::<bool>(),
    )
}

/// Turns every `distribution` in `value` from a string into a number.
fn numeric_levels(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                match (
                    name.as_str(),
                    field.as_str().and_then(|s| s.parse::<u8>().ok()),
                ) {
                    ("distribution", Some(level)) => *field = json!(level),
                    _ => numeric_levels(field),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(numeric_levels),
        _ => {}
    }
}

/// The uuids in a list of MISP items.
fn uuids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["uuid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

struct RestWorld {
    server: Server,
    users: Vec<User>,
    group: String,
    model: std::cell::RefCell<Model>,
}

impl RestWorld {
    fn check(&self, user: &User, event: &str, value: &str) -> Result<(), TestCaseError> {
        let model = self.model.borrow();
        let path = format!("/events/view/{event}");
        let (status, shown) = self.server.request("GET", &path, Some(&user.key), None);
        let fail = |what: String| Err(TestCaseError::fail(format!("{user:?}: {what}")));
        if !model.sees_event(user, event) {
            if status != 404 {
                return fail(format!(
                    "an event it may not see answered {status}: {shown}"
                ));
            }
        } else {
            if status != 200 {
                return fail(format!("{path} answered {status}: {shown}"));
            }
            let mut attributes = uuids(&shown["Event"]["Attribute"]);
            for object in shown["Event"]["Object"].as_array().unwrap() {
                attributes.extend(uuids(&object["Attribute"]));
            }
            let expected: BTreeSet<String> = model
                .attributes
                .iter()
                .filter(|(uuid, a)| a.event == event && model.sees_attribute(user, uuid))
                .map(|(uuid, _)| uuid.clone())
                .collect();
            if attributes != expected {
                return fail(format!(
                    "{path} shows {attributes:?}, the model {expected:?}"
                ));
            }
            let objects = uuids(&shown["Event"]["Object"]);
            let expected: BTreeSet<String> = model.events[event]
                .objects
                .iter()
                .filter(|(_, level)| model.sees_item(user, event, &[*level]))
                .map(|(uuid, _)| uuid.clone())
                .collect();
            if objects != expected {
                return fail(format!(
                    "{path} shows objects {objects:?}, the model {expected:?}"
                ));
            }
            let related: BTreeSet<String> = shown["Event"]["RelatedEvent"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["Event"]["uuid"].as_str().unwrap().to_string())
                .collect();
            let expected = model.related_events(user, event);
            if related != expected {
                return fail(format!(
                    "{path} relates {related:?}, the model {expected:?}"
                ));
            }
        }
        // A search hit, its correlations and an export line per attribute with `value`.
        let expected = model.visible_with_value(user, value);
        let body = json!({"value": value, "includeCorrelations": 1});
        let (status, found) = self.server.request(
            "POST",
            "/attributes/restSearch",
            Some(&user.key),
            Some(&body.to_string()),
        );
        if status != 200 {
            return fail(format!("restSearch answered {status}: {found}"));
        }
        let hits = found["response"]["Attribute"].as_array().unwrap();
        let found_uuids: BTreeSet<String> = uuids(&found["response"]["Attribute"]);
        if found_uuids != expected {
            return fail(format!(
                "restSearch {value} found {found_uuids:?}, the model {expected:?}"
            ));
        }
        for hit in hits {
            let uuid = hit["uuid"].as_str().unwrap();
            let related = uuids(&hit["RelatedAttribute"]);
            let expected: BTreeSet<String> = match model.over_correlating(value) {
                true => BTreeSet::new(),
                false => model
                    .visible_with_value(user, value)
                    .into_iter()
                    .filter(|other| model.attributes[other].event != model.attributes[uuid].event)
                    .collect(),
            };
            if related != expected {
                return fail(format!(
                    "{uuid} correlates with {related:?}, the model {expected:?}"
                ));
            }
        }
        let body = json!({"value": value, "returnFormat": "csv"});
        let (status, csv) = self.server.request_text(
            "POST",
            "/attributes/restSearch",
            Some(&user.key),
            Some(&body.to_string()),
        );
        if status != 200 {
            return fail(format!("the CSV export answered {status}: {csv}"));
        }
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let column = header.iter().position(|name| *name == "uuid").unwrap();
        let exported: BTreeSet<String> = lines
            .filter(|line| !line.is_empty())
            .map(|line| {
                line.split(',')
                    .nth(column)
                    .unwrap()
                    .trim_matches('"')
                    .to_string()
            })
            .collect();
        if exported != expected {
            return fail(format!(
                "the CSV export lists {exported:?}, the model {expected:?}"
            ));
        }
        // The STIX 2.1 bundle of the events with `value`: one report per event, one
        // indicator or observation per matched attribute, each named by its MISP uuid.
        let body = json!({"value": value, "returnFormat": "stix2"});
        let (status, bundle) = self.server.request(
            "POST",
            "/events/restSearch",
            Some(&user.key),
            Some(&body.to_string()),
        );
        if status != 200 {
            return fail(format!("the STIX export answered {status}: {bundle}"));
        }
        let named = |prefix: &str| -> BTreeSet<String> {
            bundle["objects"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|object| object["id"].as_str()?.strip_prefix(prefix))
                .map(str::to_string)
                .collect()
        };
        let mut stix_attributes = named("indicator--");
        stix_attributes.extend(named("observed-data--"));
        if stix_attributes != expected {
            return fail(format!(
                "the STIX export holds {stix_attributes:?}, the model {expected:?}"
            ));
        }
        let reports = named("report--");
        let expected_events: BTreeSet<String> = expected
            .iter()
            .map(|uuid| model.attributes[uuid].event.clone())
            .collect();
        if reports != expected_events {
            return fail(format!(
                "the STIX export reports {reports:?}, the model {expected_events:?}"
            ));
        }
        // The events holding `value` where the user sees it, and no event that holds it only
        // where the user may not look.
        let body = json!({"value": value});
        let (status, events) = self.server.request(
            "POST",
            "/events/restSearch",
            Some(&user.key),
            Some(&body.to_string()),
        );
        if status != 200 {
            return fail(format!("events/restSearch answered {status}: {events}"));
        }
        let holding: BTreeSet<String> = events["response"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["Event"]["uuid"].as_str().unwrap().to_string())
            .collect();
        if holding != expected_events {
            return fail(format!(
                "events/restSearch {value} found {holding:?}, the model {expected_events:?}"
            ));
        }
        // The event index lists every event the user may see, and no other.
        let (status, index) = self
            .server
            .request("GET", "/events/index", Some(&user.key), None);
        if status != 200 {
            return fail(format!("events/index answered {status}: {index}"));
        }
        let listed = uuids(&index);
        let expected: BTreeSet<String> = model
            .events
            .keys()
            .filter(|uuid| model.sees_event(user, uuid))
            .cloned()
            .collect();
        if listed != expected {
            return fail(format!(
                "events/index lists {listed:?}, the model {expected:?}"
            ));
        }
        Ok(())
    }

    /// Adds a random event as its owner; returns its uuid.
    fn add(&self, (owner, level, attributes, object, _, numeric): &NewEvent) -> String {
        let user = &self.users[1 + owner];
        let mut model = self.model.borrow_mut();
        // Only a member may share with the group.
        let level = match (*level, model.members.contains(&user.org)) {
            (4, false) => 3,
            (level, _) => level,
        };
        let group = |item: &mut Value, level: u8| {
            item["distribution"] = json!(level.to_string());
            if level == 4 {
                if model.members.contains(&user.org) {
                    item["sharing_group_uuid"] = json!(self.group);
                } else {
                    item["distribution"] = json!("3");
                }
            }
        };
        let uuid = Uuid::new_v4().to_string();
        let mut event = json!({"uuid": uuid, "info": "model", "Attribute": [], "Object": []});
        group(&mut event, level);
        let mut added = Vec::new();
        for (item_level, value) in attributes {
            let attribute_uuid = Uuid::new_v4().to_string();
            let mut attribute =
                json!({"uuid": attribute_uuid, "type": "ip-dst", "value": POOL[*value]});
            group(&mut attribute, *item_level);
            let stated = attribute["distribution"].as_str().unwrap().parse().unwrap();
            added.push((attribute_uuid, stated, None, POOL[*value]));
            event["Attribute"].as_array_mut().unwrap().push(attribute);
        }
        let mut objects = Vec::new();
        if let Some((object_level, inner_level, value)) = object {
            let object_uuid = Uuid::new_v4().to_string();
            let inner_uuid = Uuid::new_v4().to_string();
            let mut inner = json!({"uuid": inner_uuid, "type": "ip-dst",
                "object_relation": "ip", "value": POOL[*value]});
            group(&mut inner, *inner_level);
            let mut object =
                json!({"uuid": object_uuid, "name": "domain-ip", "Attribute": [inner.clone()]});
            group(&mut object, *object_level);
            let stated_object: u8 = object["distribution"].as_str().unwrap().parse().unwrap();
            let stated_inner = inner["distribution"].as_str().unwrap().parse().unwrap();
            added.push((inner_uuid, stated_inner, Some(stated_object), POOL[*value]));
            objects.push((object_uuid, stated_object));
            event["Object"].as_array_mut().unwrap().push(object);
        }
        let stated_level = event["distribution"].as_str().unwrap().parse().unwrap();
        if *numeric {
            numeric_levels(&mut event);
        }
        let body = json!({ "Event": event });
        let (status, reply) = self.server.request(
            "POST",
            "/events/add",
            Some(&user.key),
            Some(&body.to_string()),
        );
        assert_eq!(status, 200, "{reply}");
        model.events.insert(
            uuid.clone(),
            ModelEvent {
                owner: user.org,
                level: stated_level,
                objects,
            },
        );
        for (attribute, level, object_level, value) in added {
            model.attributes.insert(
                attribute,
                ModelAttribute {
                    event: uuid.clone(),
                    level,
                    object_level,
                    value: value.to_string(),
                },
            );
        }
        uuid
    }
}

#[test]
fn every_read_of_every_user_is_allowed_by_the_model() {
    let (_temp, dir) = common::node();
    // Organisations 1–3; 0 is the node's own, whose site admin sees everything.
    let mut users = vec![User {
        key: common::accounts::admin_key(&dir),
        org: 0,
        site_admin: true,
    }];
    for (org, name) in [(1, "Org A"), (2, "Org B"), (3, "Org M")] {
        let email = format!("user@{org}.example");
        users.push(User {
            key: org_user(&dir, name, &email),
            org,
            site_admin: false,
        });
    }
    let email = "auditor@2.example";
    users.push(User {
        key: common::accounts::cli_user(&dir, "Org B", "read-only", email),
        org: 2,
        site_admin: false,
    });
    let server = Server::start(&dir);
    // A sharing group of the node's organisation, Org A and Org M.
    let admin = users[0].key.clone();
    let (status, group) = server.request(
        "POST",
        "/sharingGroups/add",
        Some(&admin),
        Some(r#"{"SharingGroup": {"name": "model", "releasability": "model"}}"#),
    );
    assert_eq!(status, 200, "{group}");
    let group_id = group["SharingGroup"]["id"].as_str().unwrap().to_string();
    for name in ["Org%20A", "Org%20M"] {
        let path = format!("/sharingGroups/addOrg/{group_id}/{name}");
        let (status, added) = server.request("POST", &path, Some(&admin), None);
        assert_eq!(status, 200, "{added}");
    }
    let world = RestWorld {
        server,
        users,
        group: group["SharingGroup"]["uuid"].as_str().unwrap().to_string(),
        model: std::cell::RefCell::new(Model {
            members: BTreeSet::from([0, 1, 3]),
            ..Model::default()
        }),
    };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(REST_CASES);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&new_event(), |new| {
        let event = world.add(&new);
        for user in &world.users {
            world.check(user, &event, POOL[new.4])?;
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}
