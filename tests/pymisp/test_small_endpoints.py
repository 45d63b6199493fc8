"""Small endpoints PyMISP scripts call: tag search, restoring a soft-deleted attribute, the
attribute index and the role list, each on a fresh node so that the expected lists are exact."""

import pytest
import requests
from pymisp import MISPEvent, MISPObject, MISPTag, PyMISP

from conftest import Node, cli


def _start(data, rows_max=None):
    """A node hosting "Host CERT" (its admin and a user) and "Other CERT" (a user), with
    `api.search_rows_max` set to `rows_max` when given. Returns the node and a client per
    user name."""
    cli(data, "init", "--org-name", "Host CERT")
    cli(data, "org", "add", "--name", "Other CERT")
    if rows_max is not None:
        config = data / "threatlog.toml"
        lines = [f"search_rows_max = {rows_max}" if line.startswith("search_rows_max = ") else line
                 for line in config.read_text().splitlines()]
        config.write_text("\n".join(lines) + "\n")
    keys = {}
    for name, org in [("user", "Host CERT"), ("other", "Other CERT")]:
        out = cli(data, "user", "add", "--org", org, "--role", "user", "--email", f"{name}@test.example")
        keys[name] = out.strip().rsplit(" ", 1)[-1]
    running = Node(data)
    keys["admin"] = running.admin_key
    return running, {name: PyMISP(running.url, key, ssl=False) for name, key in keys.items()}


@pytest.fixture
def two_orgs(tmp_path):
    running, clients = _start(tmp_path / "data")
    yield clients
    running.stop()
    assert running.process.returncode == 0


def _event(client, info, distribution, values, tag=None):
    event = MISPEvent()
    event.info = info
    event.distribution = distribution
    for value in values:
        event.add_attribute("ip-dst", value)
    if tag:
        event.add_tag(tag)
    created = client.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    return created


def _values(attributes):
    return sorted(a.value for a in attributes)


def _names(tags):
    return sorted(tag.name for tag in tags)


def test_search_tags_strictly_by_substring_and_by_pattern(two_orgs):
    admin = two_orgs["admin"]
    event = _event(admin, "tagged", 1, ["198.51.100.10"], tag="tlp:green")
    admin.tag(event.attributes[0], "tlp:amber")
    osint = MISPTag()
    osint.name = "Type:OSINT"
    assert not isinstance(admin.add_tag(osint, pythonify=True), dict)

    assert _names(admin.search_tags("tlp:green", strict_tagname=True, pythonify=True)) == ["tlp:green"]
    assert _names(admin.search_tags("TLP:Green", strict_tagname=True, pythonify=True)) == ["tlp:green"]
    assert _names(admin.search_tags("tlp:", strict_tagname=True, pythonify=True)) == []
    assert _names(admin.search_tags("tlp:", pythonify=True)) == ["tlp:amber", "tlp:green"]
    assert _names(admin.search_tags("%:gr%n", pythonify=True)) == ["tlp:green"]
    assert _names(admin.search_tags("%osint", pythonify=True)) == ["Type:OSINT"]
    assert admin.search_tags("tlp:red") == []

    # Every user may search the definitions, as every user may list them.
    [found] = two_orgs["other"].search_tags("tlp:green", strict_tagname=True)
    assert found["Tag"]["name"] == "tlp:green"
    assert found["Tag"]["colour"] == "#ffffff"

    [osint] = admin.search_tags("type:osint", strict_tagname=True, pythonify=True)
    assert admin.delete_tag(osint)["message"] == "Tag deleted."
    assert admin.search_tags("osint") == []

    missing = admin.direct_call("tags/search", {"strict_tagname": True})
    assert missing["errors"][0] == 400


def test_restore_attribute_brings_it_back_for_the_owner_only(two_orgs):
    user, other = two_orgs["user"], two_orgs["other"]
    shared = _event(user, "restore shared", 1, ["198.51.100.20", "198.51.100.21"])
    private = _event(user, "restore private", 0, ["198.51.100.22"])
    kept, deleted = sorted(shared.attributes, key=lambda a: a.value)
    assert user.delete_attribute(deleted)["message"] == "Attribute deleted."
    assert user.delete_attribute(private.attributes[0])["message"] == "Attribute deleted."
    assert _values(user.get_event(shared.id, pythonify=True).attributes) == ["198.51.100.20"]

    # Another organisation may not restore: refused where it sees the event, unknown where
    # it does not; and nothing changed.
    assert other.restore_attribute(deleted)["errors"][0] == 403
    assert other.restore_attribute(private.attributes[0])["errors"][0] == 404
    assert user.restore_attribute(999_999)["errors"][0] == 404
    assert _values(user.get_event(shared.id, pythonify=True).attributes) == ["198.51.100.20"]

    restored = user.restore_attribute(deleted, pythonify=True)
    assert not isinstance(restored, dict), restored
    assert (restored.uuid, restored.value, restored.deleted) == (deleted.uuid, "198.51.100.21", False)
    both = ["198.51.100.20", "198.51.100.21"]
    assert _values(user.get_event(shared.id, pythonify=True).attributes) == both
    assert _values(other.get_event(shared.id, pythonify=True).attributes) == both
    # Restoring what is not deleted answers it as it is.
    again = user.restore_attribute(kept.uuid)
    assert (again["Attribute"]["uuid"], again["Attribute"]["deleted"]) == (kept.uuid, False)


def test_attributes_index_lists_what_each_user_may_see(two_orgs):
    user, other, admin = two_orgs["user"], two_orgs["other"], two_orgs["admin"]
    _event(user, "org only", 0, ["198.51.100.30"])
    shared = _event(user, "community", 1, ["198.51.100.31", "198.51.100.32", "198.51.100.33"])
    hidden, _, gone = sorted(shared.attributes, key=lambda a: a.value)
    hidden.distribution = 0
    assert "errors" not in user.update_attribute(hidden)
    user.delete_attribute(gone)
    file_object = MISPObject("file", standalone=False, strict=False)
    file_object.add_attribute("filename", value="dropper.exe")
    added = user.add_object(shared, file_object, pythonify=True)
    assert not isinstance(added, dict), added

    def listed(client):
        return _values(client.attributes(pythonify=True))

    assert listed(user) == ["198.51.100.30", "198.51.100.31", "198.51.100.32", "dropper.exe"]
    assert listed(admin) == listed(user)
    # Not the organisation-only event's attribute, nor the community event's org-only one.
    assert listed(other) == ["198.51.100.32", "dropper.exe"]
    [row] = [row for row in other.attributes() if row["Attribute"]["value"] == "dropper.exe"]
    assert row["Attribute"]["object_id"] == str(added.id)
    assert row["Attribute"]["event_id"] == str(shared.id)


def test_attributes_index_refuses_more_than_search_rows_max(tmp_path):
    running, clients = _start(tmp_path / "data", rows_max=2)
    try:
        user, other = clients["user"], clients["other"]
        _event(user, "org only", 0, ["198.51.100.40", "198.51.100.41"])
        assert len(user.attributes()) == 2
        _event(user, "community", 1, ["198.51.100.42"])
        refused = user.attributes()
        assert refused["errors"][0] == 400
        assert "api.search_rows_max" in refused["errors"][1]["message"]
        # The limit counts what the caller may see: the other organisation sees one.
        assert [row["Attribute"]["value"] for row in other.attributes()] == ["198.51.100.42"]
    finally:
        running.stop()


def test_roles_index_and_view(two_orgs):
    expected = [("1", "admin"), ("2", "Org Admin"), ("3", "User"), ("4", "Publisher"),
                ("5", "Sync user"), ("6", "Read Only")]
    roles = two_orgs["user"].roles(pythonify=True)
    assert [(str(r.id), r.name) for r in roles] == expected
    by_name = {r.name: r for r in roles}
    assert by_name["Read Only"].perm_add is False
    assert by_name["admin"].perm_site_admin is True
    assert by_name["Publisher"].perm_publish is True
    assert by_name["User"].default_role is True

    # PyMISP has no get_role: its scripts call the view directly.
    admin = two_orgs["admin"]
    assert admin.direct_call("roles/view/4")["Role"]["name"] == "Publisher"
    assert admin.direct_call("admin/roles/view/6")["Role"]["perm_add"] is False
    assert admin.direct_call("roles/view/7")["errors"][0] == 404
    assert admin.direct_call("roles/view/publisher")["errors"][0] == 404


def test_sightings_index_lists_the_sightings_each_user_sees(two_orgs):
    user, other, admin = two_orgs["user"], two_orgs["other"], two_orgs["admin"]
    private = _event(user, "sighted private", 0, ["198.51.100.40"])
    shared = _event(user, "sighted community", 1, ["198.51.100.41"])
    user.add_sighting({"source": "sensor-private"}, private.attributes[0])
    user.add_sighting({"source": "sensor-user"}, shared.attributes[0])
    other.add_sighting({"source": "sensor-other"}, shared.attributes[0])

    def sources(client, **filters):
        return sorted(s.source for s in client.sightings(pythonify=True, **filters))

    # PyMISP's sightings() with no event or attribute asks sightings/index.
    assert sources(user) == ["sensor-other", "sensor-private", "sensor-user"]
    assert sources(admin) == sources(user)
    # The other organisation sees none of the organisation-only event's sightings.
    assert sources(other) == ["sensor-other", "sensor-user"]
    host_id = next(o["Organisation"]["id"] for o in admin.organisations(scope="all")
                   if o["Organisation"]["name"] == "Host CERT")
    assert sources(user, org=host_id) == ["sensor-private", "sensor-user"]
    # One event's sightings, by id in the path.
    response = user._prepare_request("GET", f"sightings/index/{shared.id}")
    listed = user._check_json_response(response)
    assert sorted(s["Sighting"]["source"] for s in listed) == ["sensor-other", "sensor-user"]
    refused = user._check_json_response(user._prepare_request("POST", "sightings/index",
                                                              data={"value": "x"}))
    assert refused["errors"][0] == 400


def test_users_edit_their_profile_and_a_disabled_user_is_locked_out(two_orgs):
    user, other, admin = two_orgs["user"], two_orgs["other"], two_orgs["admin"]
    me = user.get_user("me", pythonify=True)
    assert (me.autoalert, me.disabled, me.role_id) == (False, False, "3")
    # PyMISP's update_user for a user who is not an admin: users/edit/{own id}.
    me.autoalert = True
    me.nids_sid = 5000000
    me.role_id = "1"  # not the user's to change: left as it is
    edited = user.update_user(me, pythonify=True)
    assert not isinstance(edited, dict), edited
    assert (edited.autoalert, edited.nids_sid, edited.role_id) == (True, "5000000", "3")
    again = user.get_user("me", pythonify=True)
    assert (again.autoalert, again.role_id) == (True, "3")
    # Someone else's id is not the user's to edit.
    theirs = other.get_user("me", pythonify=True)
    response = user._prepare_request("POST", f"users/edit/{theirs.id}", data={"autoalert": 1})
    assert response.status_code == 404
    # An administrator disables the user: none of its keys authenticates, until re-enabled.
    extra = user.get_new_authkey()
    target = admin.get_user(me.id, pythonify=True)
    target.disabled = True
    assert admin.update_user(target, pythonify=True).disabled is True
    assert user._prepare_request("GET", "servers/getVersion").status_code == 403
    response = requests.get(f"{user.root_url}/servers/getVersion", timeout=10,
                            headers={"Authorization": extra, "Accept": "application/json"})
    assert response.status_code == 403
    target.disabled = False
    assert admin.update_user(target, pythonify=True).disabled is False
    assert "version" in user.misp_instance_version
    # Nobody disables their own administrator account.
    own = admin.get_user("me", pythonify=True)
    own.disabled = True
    refused = admin.update_user(own)
    assert "errors" in refused, refused
    assert admin.get_user("me", pythonify=True).disabled is False
