"""PyMISP's server calls against two paired threatlog nodes: `add_server` with the other
node's pairing card in `authkey`, `servers`, and `server_pull`, after which the pulling node
holds the other's published event (real mutual TLS on loopback), and an event shared with a
sharing group reaches the member organisation on the paired node and no one else there."""

import time
import uuid

import pytest
from pymisp import (MISPEvent, MISPOrganisation, MISPServer, MISPSharingGroup, MISPUser,
                    PyMISP)

from conftest import Node, cli

SYNC_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def pair_of_nodes(tmp_path_factory):
    nodes = []
    for name in ["Org A", "Org B"]:
        data = tmp_path_factory.mktemp("federation") / "data"
        cli(data, "init", "--org-name", name)
        nodes.append(Node(data))
    yield nodes
    for node in nodes:
        node.stop()
        assert node.process.returncode == 0


def _server_for(node: Node, card: str) -> MISPServer:
    server = MISPServer()
    server.name = "paired node"
    # The other node's sync endpoint; the card carries it too.
    server.url = (node.data / "run" / "sync.addr").read_text().strip()
    server.authkey = card
    server.pull = True
    server.push = True
    return server


def _pulled(misp: PyMISP, server: MISPServer, event_uuid: str) -> MISPEvent:
    """Pulls from `server` and waits for the event to arrive."""
    pulled = misp.server_pull(server)
    assert pulled["success"] is True, pulled
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while True:
        found = misp.get_event(event_uuid, pythonify=True)
        if not isinstance(found, dict):
            return found
        assert time.monotonic() < deadline, f"event {event_uuid} never arrived: {found}"
        time.sleep(0.2)


def test_add_server_servers_and_server_pull(pair_of_nodes):
    a, b = pair_of_nodes
    misp_a = PyMISP(a.url, a.admin_key, ssl=False)
    misp_b = PyMISP(b.url, b.admin_key, ssl=False)
    card_a = misp_a.direct_call("servers/card", {})["card"]
    card_b = misp_b.direct_call("servers/card", {})["card"]

    added = misp_a.add_server(_server_for(b, card_b), pythonify=True)
    assert not isinstance(added, dict), added
    assert added.name == "Org B"
    back = misp_b.add_server(_server_for(a, card_a))
    assert back["Server"]["name"] == "Org A", back

    servers = misp_a.servers(pythonify=True)
    assert [s.id for s in servers] == [added.id]
    assert servers[0].name == "Org B"
    assert servers[0].pull is True
    raw = misp_a.servers()
    assert raw[0]["RemoteOrg"]["name"] == "Org B"

    event = MISPEvent()
    event.uuid = str(uuid.uuid4())
    event.info = "shared with every community"
    event.distribution = 3
    event.threat_level_id = 2
    event.analysis = 1
    event.add_attribute("domain", "relay.example.org")
    created = misp_b.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    misp_b.publish(created)

    found = _pulled(misp_a, added, event.uuid)
    assert found.info == "shared with every community"
    assert [a.value for a in found.attributes] == ["relay.example.org"]
    assert found.Orgc.name == "Org B"


def test_sharing_group_servers(pair_of_nodes):
    a, b = pair_of_nodes
    misp_a = PyMISP(a.url, a.admin_key, ssl=False)
    server = misp_a.servers(pythonify=True)[0]
    group = MISPSharingGroup()
    group.name = "relayed by the paired node"
    group.releasability = "tests"
    created = misp_a.add_sharing_group(group, pythonify=True)
    assert not isinstance(created, dict), created
    added = misp_a.add_server_to_sharing_group(created, server)
    assert added.get("saved") is True or added.get("success") is True, added
    listed = misp_a.get_sharing_group(created, pythonify=False)
    servers = listed["SharingGroupServer"]
    assert [s["server_id"] for s in servers] == [str(server.id)], listed
    card_b = PyMISP(b.url, b.admin_key, ssl=False).direct_call("servers/card", {})
    assert servers[0]["Server"]["node_key"] == card_b["key"]
    removed = misp_a.remove_server_from_sharing_group(created, server)
    assert removed.get("saved") is True or removed.get("success") is True, removed
    assert misp_a.get_sharing_group(created, pythonify=False)["SharingGroupServer"] == []


def test_event_of_a_sharing_group_reaches_the_member_on_the_paired_node(pair_of_nodes):
    a, b = pair_of_nodes
    misp_a = PyMISP(a.url, a.admin_key, ssl=False)
    misp_b = PyMISP(b.url, b.admin_key, ssl=False)
    # B's group: Org A is a member and A's node may relay it.
    group = MISPSharingGroup()
    group.name = "B and A"
    group.releasability = "members"
    group = misp_b.add_sharing_group(group, pythonify=True)
    assert not isinstance(group, dict), group
    org_a = [o for o in misp_b.organisations(scope="all", pythonify=True) if o.name == "Org A"][0]
    assert misp_b.add_org_to_sharing_group(group, org_a)["message"] == \
        "Organisation added to the sharing group."
    server_a = misp_b.servers(pythonify=True)[0]
    added = misp_b.add_server_to_sharing_group(group, server_a)
    assert added.get("saved") is True or added.get("success") is True, added

    event = MISPEvent()
    event.info = "for B and A"
    event.distribution = 4
    event.sharing_group_id = group.id
    event.add_attribute("domain", "group.example.org")
    created = misp_b.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    assert created.sharing_group_id == int(group.id)
    misp_b.publish(created)

    found = _pulled(misp_a, misp_a.servers(pythonify=True)[0], created.uuid)
    assert found.info == "for B and A"
    assert found.distribution == 4
    assert found.SharingGroup["uuid"] == group.uuid
    # On A too, an organisation outside the group does not see it.
    stranger = MISPOrganisation()
    stranger.name = "Stranger CERT"
    stranger = misp_a.add_organisation(stranger, pythonify=True)
    user = MISPUser()
    user.email = "user@stranger.example"
    user.org_id = stranger.id
    user.role_id = 3
    key = misp_a.add_user(user)["User"]["authkey"]
    assert PyMISP(a.url, key, ssl=False).get_event(created.uuid)["errors"][0] == 404
