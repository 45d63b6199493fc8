"""PyMISP's event report methods (eventReports/add, view, index, edit, delete) against
`threatlog serve`.

A node of its own: the admin of "Host CERT" writes the events and reports, and a user of
"Other CERT" checks that reports are seen as attributes are (the event's distribution and the
report's own) and changed only by the event's organisation.
"""

import pytest
from pymisp import MISPEvent, MISPEventReport, MISPSharingGroup, PyMISP

from conftest import Node, cli

INVALID_REPORT = "Invalid report."
NO_PERMISSION = "You do not have permission to do that."


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    data = tmp_path_factory.mktemp("reports") / "data"
    cli(data, "init", "--org-name", "Host CERT")
    cli(data, "org", "add", "--name", "Other CERT")
    out = cli(data, "user", "add", "--org", "Other CERT", "--role", "user",
              "--email", "other@reports.example")
    other_key = out.strip().rsplit(" ", 1)[-1]
    node = Node(data)
    yield PyMISP(node.url, node.admin_key, ssl=False), PyMISP(node.url, other_key, ssl=False)
    node.stop()
    assert node.process.returncode == 0


def _event(misp, info, distribution):
    event = MISPEvent()
    event.info = info
    event.distribution = distribution
    created = misp.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    return created


def _report(name, content, distribution=5, **extra):
    report = MISPEventReport()
    report.name = name
    report.content = content
    report.distribution = distribution
    for key, value in extra.items():
        setattr(report, key, value)
    return report


def _add(misp, event, name, content, distribution=5, **extra):
    added = misp.add_event_report(event.id, _report(name, content, distribution, **extra))
    assert "errors" not in added, added
    return added["EventReport"]


def _error(answer):
    """The status and MISP message of a refused call."""
    status, body = answer["errors"]
    return status, body["message"]


def test_a_report_added_to_an_event_round_trips(reports):
    admin, _ = reports
    event = _event(admin, "Report round trip", distribution=1)
    added = _add(admin, event, "Summary", "# Findings\n\nC2 at 198.51.100.7", distribution=1)
    assert added["name"] == "Summary"
    assert added["content"] == "# Findings\n\nC2 at 198.51.100.7"
    assert added["distribution"] == "1"
    assert added["sharing_group_id"] == "0"
    assert added["event_id"] == str(event.id)
    assert added["deleted"] is False
    assert int(added["timestamp"]) > 0

    by_id = admin.get_event_report(added["id"], pythonify=True)
    assert (by_id.name, by_id.content, by_id.uuid) == (
        "Summary", "# Findings\n\nC2 at 198.51.100.7", added["uuid"])
    by_uuid = admin.get_event_report(added["uuid"])
    assert by_uuid["EventReport"]["id"] == added["id"]

    seen = admin.get_event(event.id, pythonify=True)
    assert [(r.uuid, r.name) for r in seen.EventReport] == [(added["uuid"], "Summary")]
    # Adding a report unpublishes the event, as every change of its contents does.
    assert seen.published is False


def test_reports_are_listed_by_event(reports):
    admin, _ = reports
    first = _event(admin, "Listed one", distribution=1)
    second = _event(admin, "Listed two", distribution=1)
    one = _add(admin, first, "One", "first report")
    two = _add(admin, first, "Two", "second report")
    three = _add(admin, second, "Three", "third report")

    listed = admin.get_event_reports(first.id)
    assert [r["EventReport"]["uuid"] for r in listed] == [one["uuid"], two["uuid"]]
    assert [r["EventReport"]["event_id"] for r in listed] == [str(first.id)] * 2
    pythonified = admin.get_event_reports(second.id, pythonify=True)
    assert [(r.uuid, r.name, r.content) for r in pythonified] == [
        (three["uuid"], "Three", "third report")]
    everything = admin.direct_call("eventReports/index")
    uuids = [r["EventReport"]["uuid"] for r in everything]
    assert {one["uuid"], two["uuid"], three["uuid"]} <= set(uuids)
    assert [int(r["EventReport"]["id"]) for r in everything] == sorted(
        int(r["EventReport"]["id"]) for r in everything)
    # An event that does not exist has no reports; a filter this node does not read is refused.
    assert admin.get_event_reports(987654) == []
    refused = admin.direct_call(f"eventReports/index/event_id:{first.id}/context:deleted")
    assert refused["errors"][0] == 400


def test_updating_a_report_replaces_its_content(reports):
    admin, _ = reports
    event = _event(admin, "Report update", distribution=1)
    added = _add(admin, event, "Draft", "first version")
    report = admin.get_event_report(added["id"], pythonify=True)
    report.content = "second version"
    report.name = "Final"
    updated = admin.update_event_report(report, pythonify=True)
    assert not isinstance(updated, dict), updated
    assert (updated.uuid, updated.name, updated.content) == (added["uuid"], "Final", "second version")
    assert int(updated.timestamp.timestamp()) >= int(added["timestamp"])

    stored = admin.get_event_report(added["uuid"])["EventReport"]
    assert (stored["name"], stored["content"], stored["id"]) == ("Final", "second version", added["id"])
    assert [r["EventReport"]["content"] for r in admin.get_event_reports(event.id)] == ["second version"]


def test_a_soft_deleted_report_leaves_the_index_and_a_hard_deleted_one_is_gone(reports):
    admin, _ = reports
    event = _event(admin, "Report delete", distribution=1)
    soft = _add(admin, event, "Soft", "to be soft deleted")
    kept = _add(admin, event, "Kept", "stays")
    hard = _add(admin, event, "Hard", "to be erased")

    deleted = admin.delete_event_report(soft["id"])
    assert deleted == {
        "saved": True, "success": True,
        "name": f"Event Report {soft['id']} soft deleted",
        "message": f"Event Report {soft['id']} soft deleted",
        "url": f"/event_reports/delete/{soft['id']}",
    }
    assert [r["EventReport"]["uuid"] for r in admin.get_event_reports(event.id)] == [
        kept["uuid"], hard["uuid"]]
    # The event lists its reports in uuid order, the index in id order.
    assert {r.uuid for r in admin.get_event(event.id, pythonify=True).EventReport} == {
        kept["uuid"], hard["uuid"]}
    # MISP still shows a soft-deleted report by id, marked deleted.
    assert admin.get_event_report(soft["id"])["EventReport"]["deleted"] is True

    # PyMISP sends {"hard": 1}; MISP's path form is /eventReports/delete/{id}/1.
    erased = admin.delete_event_report(hard["id"], hard=True)
    assert erased["name"] == f"Event Report {hard['id']} hard deleted"
    assert _error(admin.get_event_report(hard["id"])) == (404, INVALID_REPORT)
    by_path = admin.direct_call(f"eventReports/delete/{soft['uuid']}/1", {})
    assert by_path["name"] == f"Event Report {soft['uuid']} hard deleted"
    assert _error(admin.get_event_report(soft["id"])) == (404, INVALID_REPORT)
    assert [r["EventReport"]["uuid"] for r in admin.get_event_reports(event.id)] == [kept["uuid"]]


def test_another_organisation_sees_reports_as_it_sees_attributes(reports):
    admin, other = reports
    private_event = _event(admin, "Host only", distribution=0)
    hidden = _add(admin, private_event, "Internal", "for Host CERT only")
    assert _error(other.get_event_report(hidden["id"])) == (404, INVALID_REPORT)
    assert _error(other.get_event_report(hidden["uuid"])) == (404, INVALID_REPORT)
    assert other.get_event_reports(private_event.id) == []

    shared_event = _event(admin, "Shared with the community", distribution=1)
    shared = _add(admin, shared_event, "Public", "for everyone")
    private = _add(admin, shared_event, "Private", "the report's own distribution", distribution=0)
    assert other.get_event_report(shared["id"])["EventReport"]["content"] == "for everyone"
    assert _error(other.get_event_report(private["id"])) == (404, INVALID_REPORT)
    assert [r["EventReport"]["uuid"] for r in other.get_event_reports(shared_event.id)] == [
        shared["uuid"]]
    assert [r.uuid for r in other.get_event(shared_event.id, pythonify=True).EventReport] == [
        shared["uuid"]]
    listed = {r["EventReport"]["uuid"] for r in other.direct_call("eventReports/index")}
    assert shared["uuid"] in listed
    assert not listed & {hidden["uuid"], private["uuid"]}


def test_another_organisation_cannot_change_a_report(reports):
    admin, other = reports
    event = _event(admin, "Owned by Host CERT", distribution=1)
    added = _add(admin, event, "Owned", "original")

    report = other.get_event_report(added["id"], pythonify=True)
    report.content = "defaced"
    assert _error(other.update_event_report(report)) == (403, NO_PERMISSION)
    assert _error(other.delete_event_report(added["id"])) == (403, NO_PERMISSION)
    assert _error(other.delete_event_report(added["id"], hard=True)) == (403, NO_PERMISSION)
    assert _error(other.add_event_report(event.id, _report("Planted", "x"))) == (403, NO_PERMISSION)
    # Nor one it cannot see: that is a report that does not exist, to it.
    hidden = _add(admin, event, "Hidden", "organisation only", distribution=0)
    report = admin.get_event_report(hidden["id"], pythonify=True)
    assert _error(other.update_event_report(report)) == (404, INVALID_REPORT)

    stored = admin.get_event_report(added["id"])["EventReport"]
    assert (stored["content"], stored["deleted"]) == ("original", False)
    assert [r["EventReport"]["uuid"] for r in admin.get_event_reports(event.id)] == [
        added["uuid"], hidden["uuid"]]


def test_a_report_cannot_name_a_sharing_group_its_writer_is_not_in(reports):
    admin, other = reports
    group = MISPSharingGroup()
    group.name = "Host CERT alone"
    group.releasability = "members"
    group = admin.add_sharing_group(group, pythonify=True)
    assert not isinstance(group, dict), group

    # The admin may share into it; the report then reaches the group's members only.
    event = _event(admin, "Group report", distribution=1)
    in_group = _add(admin, event, "Members", "for the group", distribution=4,
                    sharing_group_id=int(group.id))
    assert in_group["sharing_group_id"] == str(group.id)
    assert _error(other.get_event_report(in_group["id"])) == (404, INVALID_REPORT)

    # Other CERT, outside the group, cannot share its own report into it.
    own = _event(other, "Other's event", distribution=1)
    refused = other.add_event_report(
        own.id, _report("Smuggled", "x", distribution=4, sharing_group_id=int(group.id)))
    assert _error(refused) == (403, "Invalid Sharing Group or not authorised.")
    assert other.get_event_reports(own.id) == []


def test_unknown_reports_and_events_are_404(reports):
    admin, _ = reports
    missing_uuid = "0b5a6a4e-6c3a-4f0e-9a53-3f4c1f1f0000"
    assert _error(admin.get_event_report(987654)) == (404, INVALID_REPORT)
    assert _error(admin.get_event_report(missing_uuid)) == (404, INVALID_REPORT)
    assert _error(admin.get_event_report("not-a-report")) == (404, INVALID_REPORT)
    assert _error(admin.delete_event_report(987654)) == (404, INVALID_REPORT)
    report = _report("Nowhere", "x")
    report.uuid = missing_uuid
    assert _error(admin.update_event_report(report)) == (404, INVALID_REPORT)
    assert _error(admin.add_event_report(987654, _report("Orphan", "x"))) == (404, "Invalid event.")
