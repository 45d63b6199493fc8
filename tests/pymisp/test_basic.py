"""PyMISP, unmodified, against `threatlog serve`: connecting, types, and an event's life cycle."""

import uuid

from pymisp import MISPEvent, MISPObject


def test_connect_and_describe_types(misp):
    # PyMISP's constructor already ran its init sequence (getVersion, users/view/me,
    # describeTypes); check what it learnt.
    assert misp.misp_instance_version["version"] == "2.5.0"
    user = misp.get_user()
    assert user["User"]["email"] == "admin@admin.test"
    assert user["Role"]["perm_site_admin"] is True
    assert misp.describe_types_remote == misp.describe_types_local


def _event() -> MISPEvent:
    event = MISPEvent()
    event.info = "PyMISP basic test"
    event.distribution = 0
    event.threat_level_id = 2
    event.analysis = 1
    event.add_tag("tlp:amber")
    event.add_attribute("ip-dst", "198.51.100.7", comment="C2")
    domain = event.add_attribute("domain", "evil.example.com")
    domain.add_tag("kill-chain:command-and-control")
    file_object = MISPObject("file")
    file_object.add_attribute("filename", value="dropper.exe")
    file_object.add_attribute("md5", value="D41D8CD98F00B204E9800998ECF8427E")
    file_object.add_reference(domain.uuid, "communicates-with")
    event.add_object(file_object)
    return event


def test_event_life_cycle(misp):
    created = misp.add_event(_event(), pythonify=True)
    assert not isinstance(created, dict), created
    assert created.info == "PyMISP basic test"
    assert {a.value for a in created.attributes} == {"198.51.100.7", "evil.example.com"}
    assert [t.name for t in created.tags] == ["tlp:amber"]
    domain = next(a for a in created.attributes if a.type == "domain")
    assert [t.name for t in domain.tags] == ["kill-chain:command-and-control"]
    [file_object] = created.objects
    assert file_object.name == "file"
    assert {a.object_relation: a.value for a in file_object.attributes} == {
        "filename": "dropper.exe",
        "md5": "d41d8cd98f00b204e9800998ecf8427e",
    }
    [reference] = file_object.references
    assert reference.referenced_uuid == domain.uuid
    assert reference.relationship_type == "communicates-with"

    by_id = misp.get_event(created.id, pythonify=True)
    by_uuid = misp.get_event(created.uuid, pythonify=True)
    assert by_id.uuid == by_uuid.uuid == created.uuid
    assert by_id.id == by_uuid.id == created.id
    assert len(by_uuid.attributes) == 2 and len(by_uuid.objects) == 1

    assert misp.event_exists(created.id) is True
    assert misp.event_exists(created.uuid) is True
    assert misp.event_exists(str(uuid.uuid4())) is False

    missing = misp.get_event(str(uuid.uuid4()))
    assert missing["errors"][0] == 404
    assert missing["errors"][1]["message"] == "Invalid event."

    deleted = misp.delete_event(created.id)
    assert deleted["message"] == "Event deleted.", deleted
    assert misp.event_exists(created.uuid) is False
