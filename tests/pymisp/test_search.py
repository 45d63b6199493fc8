"""PyMISP's search() (events/restSearch and attributes/restSearch) against `threatlog serve`.

A node of its own, so that the expected results are exact: four events by the admin of
"Host CERT", one of them created for "Other CERT", and a user of "Other CERT" to check that
results follow the same visibility as events/view.
"""

import hashlib
import csv
import io
from datetime import datetime, timezone

import pytest
from pymisp import MISPEvent, MISPObject, MISPOrganisation, MISPSharingGroup, PyMISP

from conftest import Node, cli

OLD_TIMESTAMP = 1_600_000_000  # 2020-09-13, long before "the last day"


def _attribute(event, type_, value, to_ids=False, **kwargs):
    return event.add_attribute(type_, value, to_ids=to_ids, **kwargs)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    data = tmp_path_factory.mktemp("search") / "data"
    cli(data, "init", "--org-name", "Host CERT")
    other_uuid = cli(data, "org", "add", "--name", "Other CERT").split()[0]
    out = cli(data, "user", "add", "--org", "Other CERT", "--role", "user",
              "--email", "other@search.example")
    other_key = out.strip().rsplit(" ", 1)[-1]
    node = Node(data)
    admin = PyMISP(node.url, node.admin_key, ssl=False)
    other = PyMISP(node.url, other_key, ssl=False)

    alpha = MISPEvent()
    alpha.info = "Search alpha"
    alpha.threat_level_id = 1
    alpha.date = "2024-01-10"
    alpha.distribution = 1
    alpha.published = True
    alpha.add_tag("tlp:green")
    _attribute(alpha, "ip-dst", "198.51.100.10", to_ids=True, comment="c2 server")
    domain = _attribute(alpha, "domain", "alpha.search.test")
    domain.add_tag("kill-chain:c2")
    _attribute(alpha, "url", "http://alpha.search.test/x")

    beta = MISPEvent()
    beta.info = "Search beta"
    beta.threat_level_id = 2
    beta.date = "2024-03-05"
    beta.distribution = 1
    orgc = MISPOrganisation()
    orgc.uuid = other_uuid
    orgc.name = "Other CERT"
    beta.Orgc = orgc
    beta.add_tag("tlp:red")
    _attribute(beta, "domain", "beta.search.test")
    _attribute(beta, "ip-dst|port", "203.0.113.20|443")
    _attribute(beta, "ip-src", "198.51.100.10")
    file_object = MISPObject("file")
    file_object.add_attribute("md5", value="0123456789abcdef0123456789abcdef", to_ids=False)
    beta.add_object(file_object)

    gamma = MISPEvent()
    gamma.info = "Search gamma (organisation only)"
    gamma.date = "2024-05-01"
    gamma.distribution = 0
    _attribute(gamma, "domain", "gamma.search.test")

    # PyMISP leaves an event's timestamp out of what it sends; a plain dict keeps it.
    old = {"Event": {"info": "Search old", "date": "2020-06-01", "distribution": 1,
                     "timestamp": str(OLD_TIMESTAMP),
                     "Attribute": [{"type": "text", "value": "old note", "to_ids": False}]}}

    events = {}
    for name, event in [("alpha", alpha), ("beta", beta), ("gamma", gamma), ("old", old)]:
        created = admin.add_event(event, pythonify=True)
        if isinstance(event, dict):
            assert int(created.timestamp.timestamp()) == OLD_TIMESTAMP
        assert not isinstance(created, dict), created
        events[name] = created
    yield admin, other, events
    node.stop()
    assert node.process.returncode == 0


def _infos(result):
    assert isinstance(result, list), result
    return sorted(event.info for event in result)


def _values(result):
    assert isinstance(result, list), result
    return sorted(attribute.value for attribute in result)


def test_events_by_value_with_wildcards(searched):
    admin, other, _ = searched
    assert _infos(admin.search(value="%.search.test", pythonify=True)) == [
        "Search alpha", "Search beta", "Search gamma (organisation only)"]
    assert _infos(admin.search(value="beta%", pythonify=True)) == ["Search beta"]
    assert _infos(admin.search(value="198.51.100.10", pythonify=True)) == [
        "Search alpha", "Search beta"]
    assert admin.search(value="nothing.search.test", pythonify=True) == []
    # Events come whole, as events/view shows them.
    [alpha] = admin.search(value="alpha.search.test", pythonify=True)
    assert len(alpha.attributes) == 3
    assert [tag.name for tag in alpha.tags] == ["tlp:green"]
    # Another organisation's user does not see the organisation-only event.
    assert _infos(other.search(value="%.search.test", pythonify=True)) == [
        "Search alpha", "Search beta"]


def test_attributes_by_value_and_type(searched):
    admin, other, _ = searched
    assert _values(admin.search(controller="attributes", value="%.search.test%",
                                pythonify=True)) == [
        "alpha.search.test", "beta.search.test", "gamma.search.test",
        "http://alpha.search.test/x"]
    assert _values(admin.search(controller="attributes", value="alpha%", pythonify=True)) == [
        "alpha.search.test"]
    assert _values(admin.search(controller="attributes", type_attribute=["ip-dst", "ip-dst|port"],
                                pythonify=True)) == ["198.51.100.10", "203.0.113.20|443"]
    # Values match in any case, as in MISP.
    assert _values(admin.search(controller="attributes", value="ALPHA.Search.TEST",
                                pythonify=True)) == ["alpha.search.test"]
    assert _values(admin.search(controller="attributes", value="Alpha%", pythonify=True)) == [
        "alpha.search.test"]
    # Either half of a composite value matches.
    assert _values(admin.search(controller="attributes", value="203.0.113.20",
                                pythonify=True)) == ["203.0.113.20|443"]
    assert _values(other.search(controller="attributes", type_attribute="domain",
                                pythonify=True)) == ["alpha.search.test", "beta.search.test"]
    raw = admin.search(controller="attributes", value="gamma.search.test")
    [attribute] = raw["Attribute"]
    assert attribute["Event"]["info"] == "Search gamma (organisation only)"


def test_tags_or_and_not(searched):
    admin, _, _ = searched
    assert _infos(admin.search(tags=["tlp:%"], pythonify=True)) == ["Search alpha", "Search beta"]
    both = admin.build_complex_query(and_parameters=["tlp:green", "kill-chain:c2"])
    assert _infos(admin.search(tags=both, pythonify=True)) == ["Search alpha"]
    not_red = admin.build_complex_query(or_parameters=["tlp:%"], not_parameters=["tlp:red"])
    assert _infos(admin.search(tags=not_red, pythonify=True)) == ["Search alpha"]
    assert _infos(admin.search(tags=["!tlp:%"], pythonify=True)) == [
        "Search gamma (organisation only)", "Search old"]
    # Attribute search: the attribute's own tag, or its event's.
    assert _values(admin.search(controller="attributes", tags="kill-chain:c2",
                                pythonify=True)) == ["alpha.search.test"]
    assert _values(admin.search(controller="attributes", tags=["tlp:green", "!kill-chain:c2"],
                                pythonify=True)) == ["198.51.100.10", "http://alpha.search.test/x"]


def test_dates_and_timestamps(searched):
    admin, _, _ = searched
    assert _infos(admin.search(date_from="2024-03-01", date_to="2024-03-31",
                               pythonify=True)) == ["Search beta"]
    assert _infos(admin.search(date_to="2023-12-31", pythonify=True)) == ["Search old"]
    assert _infos(admin.search(last="1d", pythonify=True)) == ["Search alpha"]
    assert _infos(admin.search(timestamp="1d", pythonify=True)) == [
        "Search alpha", "Search beta", "Search gamma (organisation only)"]
    assert _infos(admin.search(timestamp=[OLD_TIMESTAMP - 10, OLD_TIMESTAMP + 10],
                               pythonify=True)) == ["Search old"]


def test_flags_ids_uuids_and_orgs(searched):
    admin, _, events = searched
    assert _infos(admin.search(published=True, pythonify=True)) == ["Search alpha"]
    assert "Search alpha" not in _infos(admin.search(published=False, pythonify=True))
    assert _values(admin.search(controller="attributes", to_ids=1, pythonify=True)) == [
        "198.51.100.10"]
    assert _infos(admin.search(to_ids=1, pythonify=True)) == ["Search alpha"]
    assert _infos(admin.search(eventid=events["beta"].id, pythonify=True)) == ["Search beta"]
    assert _values(admin.search(controller="attributes", eventid=events["gamma"].id,
                                pythonify=True)) == ["gamma.search.test"]
    assert _infos(admin.search(uuid=events["old"].uuid, pythonify=True)) == ["Search old"]
    ip = next(a for a in events["alpha"].attributes if a.type == "ip-dst")
    [found] = admin.search(controller="attributes", uuid=ip.uuid, pythonify=True)
    assert found.value == "198.51.100.10" and found.event_id == events["alpha"].id
    assert _infos(admin.search(org="Other CERT", pythonify=True)) == ["Search beta"]
    assert admin.search(org="No Such CERT", pythonify=True) == []


def test_negated_event_ids_and_uuids_narrow(searched):
    admin, _, events = searched
    everything = _infos(admin.search(pythonify=True))
    assert "Search beta" in everything and "Search old" in everything
    assert _infos(admin.search(eventid=f"!{events['beta'].id}", pythonify=True)) == [
        info for info in everything if info != "Search beta"]
    assert _infos(admin.search(uuid=f"!{events['old'].uuid}", pythonify=True)) == [
        info for info in everything if info != "Search old"]
    alpha = events["alpha"]
    ip = next(a for a in alpha.attributes if a.type == "ip-dst")
    values = _values(admin.search(controller="attributes", eventid=alpha.id, pythonify=True))
    assert ip.value in values
    narrowed = admin.search(controller="attributes", eventid=alpha.id, uuid=f"!{ip.uuid}",
                            pythonify=True)
    assert _values(narrowed) == [value for value in values if value != ip.value]


def test_correlations_limit_and_page(searched):
    admin, _, events = searched
    [ip] = admin.search(controller="attributes", value="198.51.100.10",
                        eventid=events["alpha"].id, include_correlations=True, pythonify=True)
    assert [(r.value, r.type, r.event_id) for r in ip.RelatedAttribute] == [
        ("198.51.100.10", "ip-src", events["beta"].id)]
    first = admin.search(value="%.search.test", limit=2, page=1, pythonify=True)
    second = admin.search(value="%.search.test", limit=2, page=2, pythonify=True)
    assert [e.info for e in first] == ["Search alpha", "Search beta"]
    assert [e.info for e in second] == ["Search gamma (organisation only)"]
    [meta] = admin.search(eventid=events["alpha"].id, metadata=True, pythonify=True)
    assert meta.info == "Search alpha" and meta.attributes == []


def test_csv_and_text(searched):
    admin, other, events = searched
    today = datetime.now(timezone.utc).strftime("%Y%m%d")
    ip = next(a for a in events["alpha"].attributes if a.type == "ip-dst")
    body = admin.search(controller="attributes", return_format="csv", value="198.51.100.10",
                        eventid=events["alpha"].id)
    rows = list(csv.reader(io.StringIO(body)))
    assert rows == [
        ["uuid", "event_id", "category", "type", "value", "comment", "to_ids", "date",
         "object_relation", "attribute_tag", "object_uuid", "object_name",
         "object_meta_category"],
        [ip.uuid, str(events["alpha"].id), "Network activity", "ip-dst", "198.51.100.10",
         "c2 server", "1", today, "", "", "", "", ""],
    ]
    [md5] = [a for o in events["beta"].objects for a in o.attributes]
    body = admin.search(controller="attributes", return_format="csv", type_attribute="md5",
                        headerless=True, requested_attributes=["value", "object_relation",
                                                               "object_uuid", "object_name"])
    assert list(csv.reader(io.StringIO(body))) == [
        ["0123456789abcdef0123456789abcdef", "md5", events["beta"].objects[0].uuid, "file"]]
    assert md5.object_relation == "md5"
    body = admin.search(controller="attributes", return_format="csv", value="alpha.search.test",
                        include_context=True, headerless=True)
    [row] = list(csv.reader(io.StringIO(body)))
    assert row[9] == "kill-chain:c2"
    assert row[13:] == ["Search alpha", "Host CERT", "Host CERT", "1", "1", "0", "2024-01-10",
                        "tlp:green", row[21]]
    text = admin.search(controller="attributes", return_format="text", type_attribute="domain")
    assert sorted(text.split()) == ["alpha.search.test", "beta.search.test", "gamma.search.test"]
    text = other.search(controller="attributes", return_format="text", type_attribute="domain")
    assert sorted(text.split()) == ["alpha.search.test", "beta.search.test"]
    text = admin.search(return_format="text", eventid=events["old"].id)
    assert text.split("\n") == ["old note", ""]


def test_get_with_url_parameters(searched):
    admin, _, _ = searched
    response = admin._prepare_request(
        "GET", f"{admin.root_url}/attributes/restSearch",
        params={"returnFormat": "text", "type": ["domain", "url"], "value": "%alpha%"})
    assert response.status_code == 200
    assert sorted(response.text.split()) == ["alpha.search.test", "http://alpha.search.test/x"]
    response = admin._prepare_request(
        "GET", f"{admin.root_url}/events/restSearch", params={"eventinfo": "%BETA%"})
    assert [e["Event"]["info"] for e in response.json()["response"]] == ["Search beta"]


def test_cakephp_path_parameters_as_firewall_scripts_send_them(searched):
    admin, _, _ = searched

    def get(path):
        return admin._prepare_request("GET", f"{admin.root_url}/{path}")

    response = get("attributes/restSearch/returnFormat:text/type:ip-dst||ip-src")
    assert response.status_code == 200, response.text
    assert response.text.split() == ["198.51.100.10", "198.51.100.10"]
    # `;` stands for `:` in a value: the tag tlp:green.
    response = get("attributes/restSearch/returnFormat:text/tags:tlp;green/type:domain")
    assert response.text.split() == ["alpha.search.test"]
    response = get("events/restSearch/eventinfo:%25BETA%25")
    assert [e["Event"]["info"] for e in response.json()["response"]] == ["Search beta"]
    # Path parameters narrow what the query string asks, and are read like the body's.
    response = get("attributes/restSearch/type:domain?returnFormat=text&value=beta%25")
    assert response.text.split() == ["beta.search.test"]
    response = get("attributes/restSearch/returnFormat:text/no_such_filter:1")
    assert response.status_code == 400
    # MISP's positional form depends on its parameter order: refused, not guessed.
    response = get("attributes/restSearch/json/198.51.100.10")
    assert response.status_code == 400
    assert response.json()["message"] == (
        "The search path segment 'json' has no parameter name; write it as name:value "
        "(for example type:ip-dst).")


def test_threat_level_and_object_relation_narrow(searched):
    admin, _, events = searched

    def search(controller, **filters):
        found = admin.direct_call(f"{controller}/restSearch", filters)
        return found.get("response", found) if isinstance(found, dict) else found

    assert sorted(e["Event"]["info"] for e in search("events", threat_level_id=1)) == [
        "Search alpha"]
    assert sorted(e["Event"]["info"] for e in search("events", threat_level_id=["1", "2"])) == [
        "Search alpha", "Search beta"]
    assert "Search alpha" not in {e["Event"]["info"]
                                  for e in search("events", threat_level_id="!1")}
    beta_values = sorted(a["value"] for a in search("attributes", threat_level_id=2)["Attribute"])
    assert beta_values == sorted([a.value for a in events["beta"].attributes]
                                 + ["0123456789abcdef0123456789abcdef"])
    [md5] = search("attributes", object_relation="md5")["Attribute"]
    assert md5["value"] == "0123456789abcdef0123456789abcdef"
    assert [e["Event"]["info"] for e in search("events", object_relation="md5")] == [
        "Search beta"]


def test_a_filter_the_node_does_not_read_is_refused_not_ignored(searched):
    admin, _, events = searched
    everything = _infos(admin.search(pythonify=True))
    assert len(everything) >= 4
    for controller in ["events", "attributes"]:
        for name, value in [("includeDecayScore", 1), ("no_such_filter", "x"),
                            ("enforceWarninglist", 1), ("includeSightings", True)]:
            refused = admin.direct_call(f"{controller}/restSearch", {name: value})
            assert refused["errors"][0] == 400, (controller, name, refused)
            message = refused["errors"][1]["message"]
            assert message == (f"This node does not support the search parameter {name}; it is "
                               "refused rather than ignored, so that an answer never holds more "
                               "than was asked."), message
    # Filters that are JSON but not an object are refused, not read as no filter at all.
    for body in ["198.51.100.10", ["198.51.100.10"]]:
        response = admin._prepare_request("POST", f"{admin.root_url}/attributes/restSearch",
                                          data=body)
        assert response.status_code == 400, response.text
        assert response.json()["message"] == (
            'The filters must be a JSON object, such as {"value": "198.51.100.1"}.')
    # Terms too long, or with too many wildcards, to compare with every candidate.
    for path, body in [("attributes/restSearch", {"value": "%a" * 17}),
                       ("events/restSearch", {"eventinfo": "x" * 8193}),
                       ("events/index", {"attribute": "%a" * 17}),
                       ("events/index", {"attribute": ["a", "b"]}),
                       ("events/index", {"eventinfo": "x" * 8193})]:
        refused = admin.direct_call(path, body)
        assert refused["errors"][0] == 400, (path, refused)
    assert admin.search_tags("t" * 256)["errors"][0] == 400
    # Switched off, as PyMISP sends them, the options change nothing.
    assert _infos(admin.search(enforce_warninglist=False, include_event_tags=False,
                               with_attachments=False, pythonify=True)) == everything


def test_index_filters_sort_and_page(searched):
    admin, other, events = searched

    def infos(**filters):
        return sorted(event.info for event in admin.search_index(pythonify=True, **filters))

    gamma = "Search gamma (organisation only)"
    assert infos() == ["Search alpha", "Search beta", gamma, "Search old"]
    assert infos(eventinfo="beta") == ["Search beta"]
    assert infos(published=True) == ["Search alpha"]
    assert infos(published=False) == ["Search beta", gamma, "Search old"]
    assert infos(threatlevel=[1]) == ["Search alpha"]
    assert infos(threatlevel=["!1"]) == ["Search beta", gamma, "Search old"]
    assert infos(distribution=[0]) == [gamma]
    assert infos(tags=["tlp:red"]) == ["Search beta"]
    assert infos(org="Other CERT") == ["Search beta"]
    assert infos(date_from="2024-03-01", date_to="2024-04-01") == ["Search beta"]
    assert infos(attribute="alpha.search") == ["Search alpha"]
    assert infos(all="old note") == ["Search old"]
    assert infos(eventid=events["old"].id) == ["Search old"]
    assert infos(timestamp=[OLD_TIMESTAMP - 10, OLD_TIMESTAMP + 10]) == ["Search old"]
    assert infos(hasproposal=True) == []
    assert sorted(e.info for e in other.search_index(pythonify=True)) == [
        "Search alpha", "Search beta", "Search old"]
    # Sorted by date, newest first, two to a page.
    first = admin.search_index(sort="date", desc=True, limit=2, page=1)
    second = admin.search_index(sort="date", desc=True, limit=2, page=2)
    assert [line["info"] for line in first + second] == [
        gamma, "Search beta", "Search alpha", "Search old"]
    # Each line carries the event's tags, or only MISP's minimal fields.
    [alpha] = admin.search_index(eventid=events["alpha"].id)
    assert [link["Tag"]["name"] for link in alpha["EventTag"]] == ["tlp:green"]
    assert alpha["attribute_count"] == "3"
    [minimal] = admin.search_index(eventid=events["alpha"].id, minimal=True)
    assert sorted(minimal) == ["id", "orgc_uuid", "published", "timestamp", "uuid"]
    assert minimal["uuid"] == events["alpha"].uuid
    # A filter the index does not read, and a sort it cannot do, are refused.
    for body in [{"no_such_filter": 1}, {"sort": "no_such_field"}]:
        refused = admin.direct_call("events/index", body)
        assert refused["errors"][0] == 400, (body, refused)


def test_event_tags_event_uuid_and_local_tags_in_answers(searched):
    admin, _, events = searched
    alpha = events["alpha"]
    ip = next(a for a in alpha.attributes if a.type == "ip-dst")
    admin.tag(ip, "workflow:todo", local=True)

    def tags(**options):
        [found] = admin.search(controller="attributes", uuid=ip.uuid, **options)["Attribute"]
        return found, sorted(tag["name"] for tag in found["Tag"])

    assert tags()[1] == ["workflow:todo"]
    assert tags(include_event_tags=True)[1] == ["tlp:green", "workflow:todo"]
    assert tags(include_event_tags=True, excludeLocalTags=True)[1] == ["tlp:green"]
    found, _ = tags(include_event_uuid=True)
    assert found["event_uuid"] == alpha.uuid
    assert "event_uuid" not in tags()[0]
    # Events: local tags left out of the event and its attributes.
    [event] = admin.search(eventid=alpha.id, excludeLocalTags=True, pythonify=True)
    assert all(not tag.local for a in event.attributes for tag in a.tags)
    [event] = admin.search(eventid=alpha.id, pythonify=True)
    assert any(tag.name == "workflow:todo" for a in event.attributes for tag in a.tags)
    admin.untag(ip, "workflow:todo")


def test_objects_rest_search(searched):
    admin, other, events = searched
    md5 = "0123456789abcdef0123456789abcdef"
    [found] = admin.search(controller="objects", object_name="file", pythonify=True)
    assert (found.name, found.uuid) == ("file", events["beta"].objects[0].uuid)
    assert [(a.object_relation, a.value) for a in found.attributes] == [("md5", md5)]
    [found] = other.search(controller="objects", value=md5, pythonify=True)
    assert found.name == "file"
    # An attribute outside any object finds no object.
    assert admin.search(controller="objects", value="alpha.search.test", pythonify=True) == []
    [raw] = admin.search(controller="objects", type_attribute="md5")
    assert raw["Object"]["Event"]["info"] == "Search beta"
    refused = admin.direct_call("objects/restSearch", {"returnFormat": "csv"})
    assert refused["errors"][0] == 400


def test_blocklist_exports_and_counts(searched):
    admin, other, events = searched
    alpha = events["alpha"].id

    def export(**filters):
        response = admin._prepare_request("POST", f"{admin.root_url}/attributes/restSearch",
                                          data=filters)
        return response.status_code, response.text

    # netfilter takes every address (as MISP's does), not only IDS ones.
    assert export(returnFormat="netfilter", eventid=alpha) == (
        200, "iptables -A INPUT -s 198.51.100.10 -j DROP\n")
    assert export(returnFormat="netfilter", eventid=alpha, netfilter_action="REJECT") == (
        200, "iptables -A INPUT -s 198.51.100.10 -j REJECT\n")
    status, body = export(returnFormat="netfilter", netfilter_action="DROP; reboot")
    assert status == 400 and "netfilter_action" in body, body
    # hosts and rpz default to IDS attributes of published events, as MISP's do.
    status, body = export(returnFormat="hosts", eventid=alpha)
    assert status == 200 and body.splitlines()[0] == "# Blocklist in the HOSTS format"
    assert body.splitlines()[2:] == []
    status, body = export(returnFormat="hosts", eventid=alpha, to_ids=0, ip_address="127.0.0.1")
    assert body.splitlines()[2:] == ["127.0.0.1 alpha.search.test"]
    status, body = export(returnFormat="rpz", eventid=alpha, policy="DROP")
    assert status == 200, body
    assert body.startswith("$TTL 1w;\n@               SOA localhost. root.localhost (")
    assert "; The following IP addresses will timeout.\n" \
           "32.10.100.51.198.rpz-ip CNAME rpz-drop.\n" in body
    status, body = export(returnFormat="rpz", ttl="1w\n@ NS evil.")
    assert status == 400 and "ttl" in body, body
    # cache: a hash of every value (not only IDS ones), md5 unless hash_type says otherwise.
    values = [a.value for a in events["alpha"].attributes]
    assert len(values) >= 2
    status, body = export(returnFormat="cache", eventid=alpha)
    assert (status, sorted(body.splitlines())) == (
        200, sorted(hashlib.md5(v.encode()).hexdigest() for v in values))
    status, body = export(returnFormat="cache", eventid=alpha, hash_type="sha256")
    assert sorted(body.splitlines()) == sorted(hashlib.sha256(v.encode()).hexdigest()
                                               for v in values)
    status, body = export(returnFormat="cache", hash_type="whirlpool")
    assert status == 400 and "hash_type" in body, body
    # count: events in an event search, attributes in an attribute search.
    assert export(returnFormat="count", type="domain") == (200, "3")
    response = admin._prepare_request("POST", f"{admin.root_url}/events/restSearch",
                                      data={"returnFormat": "count",
                                            "value": "%.search.test"})
    assert response.text == "3"
    response = other._prepare_request("POST", f"{other.root_url}/events/restSearch",
                                      data={"returnFormat": "count",
                                            "value": "%.search.test"})
    assert response.text == "2"


def test_distribution_sharing_group_object_name_seen_and_attribute_timestamp_narrow(searched):
    admin, other, _ = searched
    group = MISPSharingGroup()
    group.name = "Search community"
    group.releasability = "members"
    group = admin.add_sharing_group(group, pythonify=True)
    # A plain dict keeps the attributes' timestamps and seen times as given.
    delta = admin.add_event({"Event": {
        "info": "Search delta", "date": "2024-07-01", "distribution": 4,
        "sharing_group_id": group.id,
        "Attribute": [
            {"type": "ip-dst", "value": "192.0.2.61", "distribution": 0,
             "first_seen": "2024-02-01T00:00:00.000000+00:00",
             "last_seen": "2024-02-10T00:00:00.000000+00:00"},
            {"type": "ip-dst", "value": "192.0.2.62", "distribution": 5,
             "first_seen": "2024-06-01T00:00:00Z", "last_seen": "2024-06-30T12:00:00Z"},
            {"type": "ip-dst", "value": "192.0.2.63", "distribution": 4,
             "sharing_group_id": group.id, "timestamp": str(OLD_TIMESTAMP + 1000)}],
        "Object": [{"name": "domain-ip", "Attribute": [
            {"type": "domain", "object_relation": "domain", "value": "delta.search.test"}]}],
    }}, pythonify=True)
    assert not isinstance(delta, dict), delta

    def found(controller, **filters):
        answer = admin.direct_call(f"{controller}/restSearch", filters)
        answer = answer.get("response", answer) if isinstance(answer, dict) else answer
        if controller == "events":
            return sorted(e["Event"]["info"] for e in answer)
        return sorted(a["value"] for a in answer["Attribute"])

    # The event's level in the events scope, the attribute's own in the attributes scope.
    assert found("events", distribution=4) == ["Search delta"]
    assert found("events", distribution=0) == ["Search gamma (organisation only)"]
    assert "Search delta" not in found("events", distribution="!4")
    assert found("attributes", eventid=delta.id, distribution=0) == ["192.0.2.61"]
    assert found("attributes", eventid=delta.id, distribution=[0, 4]) == [
        "192.0.2.61", "192.0.2.63"]
    # Sharing groups by local id or uuid, as PyMISP's search(sharinggroup=…) sends them.
    assert _infos(admin.search(sharinggroup=[int(group.id)], pythonify=True)) == ["Search delta"]
    assert found("events", sharinggroup=group.uuid) == ["Search delta"]
    assert found("attributes", sharinggroup=group.id) == ["192.0.2.63"]
    assert found("events", sharinggroup="999") == []
    # The object an attribute is in.
    assert _values(admin.search(controller="attributes", object_name="domain-ip",
                                pythonify=True)) == ["delta.search.test"]
    assert _infos(admin.search(object_name="file", pythonify=True)) == ["Search beta"]
    # Seen times: first seen on or after, last seen on or before.
    assert found("attributes", eventid=delta.id, first_seen="2024-05-01") == ["192.0.2.62"]
    assert found("attributes", eventid=delta.id, last_seen="2024-03-01") == ["192.0.2.61"]
    assert found("attributes", first_seen="2023-01-01", last_seen="2024-12-31") == [
        "192.0.2.61", "192.0.2.62"]
    # The attribute's own timestamp, in both scopes.
    around = [OLD_TIMESTAMP + 990, OLD_TIMESTAMP + 1010]
    assert found("attributes", attribute_timestamp=around) == ["192.0.2.63"]
    assert found("events", attribute_timestamp=around) == ["Search delta"]
    assert found("events", attribute_timestamp=[OLD_TIMESTAMP - 10, OLD_TIMESTAMP + 10]) == [
        "Search old"]
    # The sharing group's outsider sees none of it.
    assert _infos(other.search(distribution=4, pythonify=True)) == []
