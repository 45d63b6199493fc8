"""Write authority through PyMISP (SPEC §4.2): an event's contents belong to its owner
organisation; another organisation cannot take an item over by naming its uuid, and a site
admin cannot sign edits of another organisation's event that peers would refuse."""

from pymisp import MISPAttribute, MISPEvent

VICTIM_VALUE = "198.51.100.41"
ATTACKER_VALUE = "203.0.113.66"


def _event(client, info, value):
    event = MISPEvent()
    event.info = info
    event.distribution = 1
    event.add_attribute("ip-dst", value)
    created = client.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    return created


def _assert_misp_error(reply, status, url_start):
    assert "errors" in reply, reply
    code, body = reply["errors"]
    assert code == status, reply
    assert set(body) >= {"name", "message", "url"}, body
    assert body["url"].startswith(url_start), body


def test_another_orgs_attribute_uuid_is_refused_and_left_unchanged(community):
    _, clients = community
    victim = _event(clients["user"], "victim's event", VICTIM_VALUE)
    [target] = victim.attributes
    own = _event(clients["other"], "attacker's own event", "192.0.2.5")

    # Other CERT's plain user adds, to its own event, an attribute carrying the victim's uuid.
    own.add_attribute("ip-dst", ATTACKER_VALUE, uuid=target.uuid)
    _assert_misp_error(clients["other"].update_event(own), 403, "/events/edit/")
    forged = MISPAttribute()
    forged.from_dict(type="ip-dst", value=ATTACKER_VALUE, uuid=target.uuid)
    _assert_misp_error(clients["other"].add_attribute(own.id, forged), 403, "/attributes/add/")

    # The victim's attribute is unchanged in every view.
    kept = clients["user"].get_attribute(target.uuid, pythonify=True)
    assert (kept.value, kept.event_id) == (VICTIM_VALUE, victim.id)
    [shown] = clients["admin"].get_event(victim.id, pythonify=True).attributes
    assert (shown.uuid, shown.value) == (target.uuid, VICTIM_VALUE)
    assert clients["admin"].search(controller="attributes", value=ATTACKER_VALUE) == {"Attribute": []}
    found = clients["admin"].search(controller="attributes", uuid=target.uuid, pythonify=True)
    assert [(a.value, a.event_id) for a in found] == [(VICTIM_VALUE, victim.id)]
    attacker = clients["other"].get_event(own.id, pythonify=True)
    assert target.uuid not in {a.uuid for a in attacker.attributes}


def test_a_site_admin_cannot_edit_another_orgs_event(community):
    _, clients = community
    theirs = _event(clients["other"], "Other CERT's event", "192.0.2.77")
    theirs.info = "rewritten by the host's admin"
    reply = clients["admin"].update_event(theirs)
    _assert_misp_error(reply, 403, "/events/edit/")
    assert reply["errors"][1]["message"] == "You do not have permission to do that."
    assert clients["other"].get_event(theirs.id, pythonify=True).info == "Other CERT's event"
