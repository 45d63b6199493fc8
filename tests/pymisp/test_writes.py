"""Attributes, tags, sightings, publishing and visibility through PyMISP."""

from pymisp import MISPAttribute, MISPEvent


def _new_event(misp, info, distribution=0):
    event = MISPEvent()
    event.info = info
    event.distribution = distribution
    event.add_attribute("ip-dst", "203.0.113.10")
    created = misp.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    return created


def test_attribute_add_update_delete(misp):
    event = _new_event(misp, "attribute writes")
    attribute = MISPAttribute()
    attribute.type = "domain"
    attribute.value = "Bad.Example.ORG"
    added = misp.add_attribute(event, attribute, pythonify=True)
    assert added.value == "bad.example.org"
    duplicate = misp.add_attribute(event, {"type": "domain", "value": "bad.example.org"})
    assert duplicate["errors"][0] == 403
    assert duplicate["errors"][1]["errors"]["value"] == ["A similar attribute already exists for this event."]

    added.comment = "updated"
    updated = misp.update_attribute(added, pythonify=True)
    assert updated.comment == "updated"

    misp.delete_attribute(added)
    kept = misp.get_event(event.id, deleted=True, pythonify=True)
    deleted = [a for a in kept.attributes if a.uuid == added.uuid]
    assert deleted and deleted[0].deleted is True
    visible = misp.get_event(event.id, pythonify=True)
    assert added.uuid not in {a.uuid for a in visible.attributes}

    misp.delete_attribute(added, hard=True)
    kept = misp.get_event(event.id, deleted=True, pythonify=True)
    assert added.uuid not in {a.uuid for a in kept.attributes}


def test_tags_global_and_local(misp):
    event = _new_event(misp, "tagging")
    attribute = event.attributes[0]
    misp.tag(event, "tlp:green")
    misp.tag(attribute, "workflow:state=\"draft\"", local=True)
    tagged = misp.get_event(event.id, pythonify=True)
    assert [(t.name, t.local) for t in tagged.tags] == [("tlp:green", False)]
    [tagged_attribute] = tagged.attributes
    assert [(t.name, t.local) for t in tagged_attribute.tags] == [("workflow:state=\"draft\"", True)]
    misp.untag(event, "tlp:green")
    assert misp.get_event(event.id, pythonify=True).tags == []


def test_sightings_by_attribute_and_value(misp):
    event = _new_event(misp, "sightings")
    attribute = event.attributes[0]
    by_attribute = misp.add_sighting({"source": "sensor-1"}, attribute, pythonify=True)
    assert by_attribute.source == "sensor-1"
    misp.add_sighting({"value": "203.0.113.10", "source": "sensor-2"})
    sighted = misp.get_event(event.id, pythonify=True).attributes[0]
    assert {s.source for s in sighted.sightings} >= {"sensor-1", "sensor-2"}


def test_publish_needs_a_publisher(community):
    _, clients = community
    event = _new_event(clients["user"], "publish rights", distribution=1)
    refused = clients["user"].publish(event)
    assert refused["errors"][0] == 403
    assert refused["errors"][1]["message"] == "You do not have permission to do that."
    published = clients["publisher"].publish(event)
    assert "errors" not in published, published
    assert clients["admin"].get_event(event.id, pythonify=True).published is True


def test_organisation_only_events_stay_in_the_organisation(community):
    _, clients = community
    private = _new_event(clients["publisher"], "org only", distribution=0)
    shared = _new_event(clients["publisher"], "community", distribution=1)
    other = clients["other"]
    assert other.event_exists(private.uuid) is False
    assert other.get_event(private.id)["errors"][0] == 404
    assert other.event_exists(shared.uuid) is True
    listed = {e["uuid"] for e in other.events()}
    assert shared.uuid in listed and private.uuid not in listed
    assert clients["admin"].event_exists(private.uuid) is True
    # Both carry 203.0.113.10: the correlation is shown only to those who see both events.
    def related(client):
        event = client.get_event(shared.id)["Event"]
        return {r["Event"]["uuid"] for r in event.get("RelatedEvent", [])}
    assert private.uuid in related(clients["publisher"])
    assert private.uuid not in related(other)
    # Another organisation may not change the shared event.
    assert other.delete_event(shared.id)["errors"][0] == 403
