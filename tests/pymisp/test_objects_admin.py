"""Objects and references, tag definitions, sighting searches, sharing groups and the
organisation and user administration, through PyMISP."""

from pymisp import (MISPEvent, MISPObject, MISPOrganisation, MISPSharingGroup, MISPTag,
                    MISPUser, PyMISP)


def _org(name):
    org = MISPOrganisation()
    org.name = name
    return org


def _event(misp, info, distribution=0, sharing_group=None):
    event = MISPEvent()
    event.info = info
    event.distribution = distribution
    if sharing_group is not None:
        event.sharing_group_id = sharing_group
    event.add_attribute("ip-dst", "198.51.100.77")
    created = misp.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    return created


def test_object_with_reference_soft_and_hard_delete(misp):
    event = _event(misp, "objects")
    target = event.attributes[0]
    file_object = MISPObject("file", standalone=False, strict=False)
    file_object.add_attribute("filename", value="dropper.exe")
    file_object.add_attribute("md5", value="d41d8cd98f00b204e9800998ecf8427e")
    added = misp.add_object(event, file_object, pythonify=True)
    assert not isinstance(added, dict), added
    assert added.name == "file"
    assert sorted(a.object_relation for a in added.attributes) == ["filename", "md5"]

    reference = added.add_reference(target.uuid, "drops")
    saved = misp.add_object_reference(reference, pythonify=True)
    assert not isinstance(saved, dict), saved
    assert saved.relationship_type == "drops"
    assert saved.referenced_uuid == target.uuid
    viewed = misp.get_object(added.id, pythonify=True)
    assert [r.uuid for r in viewed.references] == [saved.uuid]
    assert misp.object_exists(added.uuid) is True

    soft = misp.delete_object(added)
    assert soft["message"] == "Object deleted"
    visible = misp.get_event(event.id, pythonify=True)
    assert added.uuid not in {o.uuid for o in visible.objects}
    kept = misp.get_event(event.id, deleted=True, pythonify=True)
    [deleted] = [o for o in kept.objects if o.uuid == added.uuid]
    assert deleted.deleted is True

    misp.delete_object(added, hard=True)
    kept = misp.get_event(event.id, deleted=True, pythonify=True)
    assert added.uuid not in {o.uuid for o in kept.objects}
    assert misp.object_exists(added.uuid) is False
    missing = misp.get_object(added.uuid)
    assert missing["errors"][0] == 404


def test_tag_definitions(misp):
    tag = MISPTag()
    tag.name = "threatlog-test:crud"
    tag.colour = "#ff0000"
    created = misp.add_tag(tag, pythonify=True)
    assert not isinstance(created, dict), created
    assert (created.name, created.colour) == ("threatlog-test:crud", "#ff0000")
    assert "threatlog-test:crud" in {t.name for t in misp.tags(pythonify=True)}
    duplicate = misp.add_tag(tag)
    assert duplicate["errors"][0] == 403

    created.colour = "#00ff00"
    updated = misp.update_tag(created, pythonify=True)
    assert updated.colour == "#00ff00"
    assert misp.get_tag(created.id, pythonify=True).colour == "#00ff00"

    deleted = misp.delete_tag(created)
    assert deleted["message"] == "Tag deleted."
    assert "threatlog-test:crud" not in {t.name for t in misp.tags(pythonify=True)}
    assert misp.get_tag(created.id)["errors"][0] == 404


def test_sighting_search_list_and_delete(misp):
    event = _event(misp, "sighting searches")
    attribute = event.attributes[0]
    misp.add_sighting({"source": "sensor-a"}, attribute)
    misp.add_sighting({"source": "sensor-b", "type": "1"}, attribute)

    found = misp.search_sightings(context="attribute", context_id=attribute.id, source="sensor-a")
    assert [s["Sighting"]["source"] for s in found] == ["sensor-a"]
    by_value = misp.direct_call("sightings/restSearch", {"value": "198.51.100.77", "type": "1"})
    assert [s["Sighting"]["source"] for s in by_value] == ["sensor-b"]

    listed = misp.sightings(attribute, pythonify=True)
    assert sorted(s.source for s in listed) == ["sensor-a", "sensor-b"]
    on_event = misp.sightings(event)
    assert len(on_event) == 2

    [first] = [s for s in listed if s.source == "sensor-a"]
    assert misp.delete_sighting(first)["message"] == "Sighting successfully deleted."
    assert [s.source for s in misp.sightings(attribute, pythonify=True)] == ["sensor-b"]
    assert misp.delete_sighting(first)["errors"][0] == 404


def test_sharing_group_membership_decides_visibility(community):
    node, clients = community
    admin = clients["admin"]
    third = admin.add_organisation(_org("Third CERT"), pythonify=True)
    assert not isinstance(third, dict), third
    outsider = MISPUser()
    outsider.email = "outsider@third.example"
    outsider.org_id = third.id
    outsider.role_id = 3
    created = admin.add_user(outsider)
    key = created["User"]["authkey"]
    assert len(key) == 40
    outsider_client = PyMISP(node.url, key, ssl=False)

    group = MISPSharingGroup()
    group.name = "Host and Other"
    group.releasability = "members only"
    group = admin.add_sharing_group(group, pythonify=True)
    assert not isinstance(group, dict), group
    other_org = [o for o in admin.organisations(pythonify=True) if o.name == "Other CERT"][0]
    added = admin.add_org_to_sharing_group(group, other_org)
    assert added["message"] == "Organisation added to the sharing group."
    names = {m["Organisation"]["name"] for m in admin.get_sharing_group(group.id)["SharingGroupOrg"]}
    assert names == {"Host CERT", "Other CERT"}

    # PyMISP names the group by its id; some scripts put its uuid there.
    by_id = _event(clients["publisher"], "for the group", distribution=4, sharing_group=group.id)
    by_uuid = _event(clients["publisher"], "by uuid", distribution=4, sharing_group=group.uuid)
    for event in [by_id, by_uuid]:
        assert event.sharing_group_id == int(group.id)
        seen = clients["other"].get_event(event.uuid, pythonify=True)
        assert not isinstance(seen, dict), seen
        assert seen.sharing_group_id == int(group.id)
        assert outsider_client.get_event(event.uuid)["errors"][0] == 404
    assert clients["other"].get_event(by_id.uuid, pythonify=True).info == "for the group"
    event = by_id
    assert group.uuid not in {g["SharingGroup"]["uuid"] for g in outsider_client.sharing_groups()}

    group.releasability = "members and partners"
    updated = admin.update_sharing_group(group, pythonify=True)
    assert not isinstance(updated, dict), updated
    assert updated.releasability == "members and partners"

    admin.remove_org_from_sharing_group(group, other_org)
    assert clients["other"].get_event(event.uuid)["errors"][0] == 404
    assert admin.delete_sharing_group(group)["success"] is True


def test_admin_organisations_and_users(community):
    node, clients = community
    admin, user = clients["admin"], clients["user"]
    org = admin.add_organisation(_org("Admin Test Org"), pythonify=True)
    assert not isinstance(org, dict), org
    assert admin.get_organisation(org.id, pythonify=True).name == "Admin Test Org"
    org.name = "Admin Test Org Renamed"
    assert admin.update_organisation(org, pythonify=True).name == "Admin Test Org Renamed"

    forbidden = user.add_organisation(_org("Not Allowed"))
    assert forbidden["errors"][0] == 403
    assert forbidden["errors"][1]["message"] == "You do not have permission to do that."
    assert user.users()["errors"][0] == 403

    new_user = MISPUser()
    new_user.email = "managed@admin-test.example"
    new_user.org_id = org.id
    new_user.role_id = 4
    created = admin.add_user(new_user, pythonify=True)
    assert not isinstance(created, dict), created
    assert created.email == "managed@admin-test.example"
    assert len(created.authkey) == 40
    assert "managed@admin-test.example" in {u.email for u in admin.users(pythonify=True)}
    # get_user(id): the admin sees the user, another user only that it is not theirs.
    assert admin.get_user(created.id, pythonify=True).email == "managed@admin-test.example"
    assert user.get_user(created.id)["errors"][0] == 404
    assert user.get_user(pythonify=True).email != "managed@admin-test.example"
    # organisations(search=…) narrows by name in any case; the scope by local or not.
    found = admin.organisations(scope="all", search="test org RENAMED", pythonify=True)
    assert [o.name for o in found] == ["Admin Test Org Renamed"]
    assert admin.organisations(scope="all", search="no such org", pythonify=True) == []
    local = {o.name for o in admin.organisations(scope="local", pythonify=True)}
    external = {o.name for o in admin.organisations(scope="external", pythonify=True)}
    everything = {o.name for o in admin.organisations(scope="all", pythonify=True)}
    assert "Host CERT" in local and not local & external and local | external == everything
    refused = admin.direct_call("organisations/index/scope:nearby")
    assert refused["errors"][0] == 400
    assert admin.delete_organisation(org)["errors"][0] == 403

    assert user.delete_user(created)["errors"][0] in (403, 404)
    assert admin.delete_user(created)["success"] is True
    assert "managed@admin-test.example" not in {u.email for u in admin.users(pythonify=True)}
    assert admin.delete_organisation(org)["success"] is True
    assert admin.get_organisation(org.id)["errors"][0] == 404
