"""Event updates, soft-deleted attributes in searches, and tags on objects, through PyMISP."""

from pymisp import MISPEvent, MISPObject


def _event(misp, info):
    event = MISPEvent()
    event.info = info
    event.distribution = 0
    event.add_attribute("ip-dst", "192.0.2.55")
    file_object = MISPObject("file")
    file_object.add_attribute("filename", value="update.bin")
    event.add_object(file_object)
    created = misp.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    return created


def test_update_event_partial_and_metadata(misp):
    event = _event(misp, "before update")
    event.info = "after update"
    event.add_attribute("domain", "update.example.net")
    updated = misp.update_event(event, pythonify=True)
    assert not isinstance(updated, dict), updated
    assert updated.info == "after update"
    assert {a.value for a in updated.attributes} == {"192.0.2.55", "update.example.net"}
    assert [o.name for o in updated.objects] == ["file"]

    fetched = misp.get_event(event.uuid, pythonify=True)
    fetched.threat_level_id = 1
    meta = misp.update_event(fetched, metadata=True, pythonify=True)
    assert not isinstance(meta, dict), meta
    assert meta.threat_level_id == 1
    assert meta.attributes == [] and meta.objects == []
    again = misp.get_event(event.uuid, pythonify=True)
    assert again.threat_level_id == 1 and again.info == "after update"
    assert len(again.attributes) == 2


def test_soft_deleted_attributes_in_searches(misp):
    event = _event(misp, "soft delete search")
    doomed = misp.add_attribute(event, {"type": "domain", "value": "soft-deleted.example.net"}, pythonify=True)
    misp.delete_attribute(doomed)
    live = misp.search(controller="attributes", value="soft-deleted.example.net", pythonify=True)
    assert live == []
    both = misp.search(controller="attributes", value="soft-deleted.example.net", deleted=[0, 1], pythonify=True)
    assert [(a.uuid, a.deleted) for a in both] == [(doomed.uuid, True)]


def test_tags_on_objects(misp):
    # PyMISP's MISPObject has no tag list, so the tags are read from the event's JSON.
    event = _event(misp, "object tags")
    [file_object] = event.objects

    def object_tags():
        raw = misp.get_event(event.uuid)
        return [t["name"] for t in raw["Event"]["Object"][0].get("Tag", [])]

    misp.tag(file_object, "tlp:green")
    assert object_tags() == ["tlp:green"]
    misp.untag(file_object, "tlp:green")
    assert object_tags() == []


def test_edits_are_last_writer_wins_on_timestamp(misp):
    event = _event(misp, "timestamps")
    domain = misp.add_attribute(event, {"type": "domain", "value": "fresh.example.net"}, pythonify=True)
    fetched = misp.get_event(event.uuid, pythonify=True)
    ip = next(a for a in fetched.attributes if a.type == "ip-dst")
    stale = int(ip.timestamp.timestamp())

    # An attribute sent with its stored timestamp is unchanged; one without is edited now.
    misp.direct_call(f"events/edit/{event.id}", {"Event": {"info": "timestamps", "Attribute": [
        {"uuid": ip.uuid, "type": "ip-dst", "value": "192.0.2.55", "comment": "stale",
         "timestamp": str(stale)},
        {"uuid": domain.uuid, "type": "domain", "value": "fresh.example.net", "comment": "fresh"},
    ]}})
    after = {a.uuid: a.comment for a in misp.get_event(event.uuid, pythonify=True).attributes}
    assert after == {ip.uuid: "", domain.uuid: "fresh"}

    refused = misp.direct_call(f"attributes/edit/{ip.id}", {"comment": "stale", "timestamp": stale})
    assert refused["errors"][0] == 403
    assert refused["errors"][1]["errors"]["timestamp"] == [
        "Attribute in the request not newer than the local copy."]
    newer = misp.direct_call(f"attributes/edit/{ip.id}", {"comment": "newer", "timestamp": stale + 10})
    assert newer["Attribute"]["comment"] == "newer"


def test_attribute_view_lists_related_attributes(misp):
    first = _event(misp, "related one")
    second = _event(misp, "related two")
    ip = next(a for a in first.attributes if a.type == "ip-dst")
    other = next(a for a in second.attributes if a.type == "ip-dst")
    viewed = misp.get_attribute(ip)
    assert viewed["Attribute"]["value"] == "192.0.2.55"
    related = {r["uuid"] for r in viewed["Attribute"]["RelatedAttribute"]}
    assert other.uuid in related
    assert ip.uuid not in related
