"""PyMISP's server calls against two paired threatlog nodes: `add_server` with the other
node's pairing card in `authkey`, `servers`, and `server_pull`, after which the pulling node
holds the other's published event (real mutual TLS on loopback)."""

import time
import uuid

import pytest
from pymisp import MISPEvent, MISPServer, MISPSharingGroup, PyMISP

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

    pulled = misp_a.server_pull(added)
    assert pulled["success"] is True, pulled
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while True:
        found = misp_a.get_event(event.uuid, pythonify=True)
        if not isinstance(found, dict):
            break
        assert time.monotonic() < deadline, f"the event never reached A: {found}"
        time.sleep(0.2)
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
