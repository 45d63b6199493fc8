"""Extra API keys (MISP's `auth_keys`) through PyMISP: a new key works beside the user's own,
a read-only key searches but writes nothing, an expired, deleted or orphaned key stops
authenticating, and nobody sees or deletes a key that is not theirs to manage."""

import time

import pytest
import requests
from pymisp import MISPEvent, MISPUser, PyMISP

from conftest import Node, cli

AUTH_FAILED = ("Authentication failed. Please make sure you pass the API key of an API enabled "
               "user along in the Authorization header.")
READ_ONLY = "This authentication key is read-only."
VALUE = "198.51.100.77"


@pytest.fixture
def two_orgs(tmp_path):
    """A node hosting "Host CERT" (its admin and a user) and "Other CERT" (a user). Yields the
    node and a PyMISP client per user name."""
    data = tmp_path / "data"
    cli(data, "init", "--org-name", "Host CERT")
    cli(data, "org", "add", "--name", "Other CERT")
    keys = {}
    for name, org in [("user", "Host CERT"), ("other", "Other CERT")]:
        out = cli(data, "user", "add", "--org", org, "--role", "user", "--email", f"{name}@test.example")
        keys[name] = out.strip().rsplit(" ", 1)[-1]
    running = Node(data)
    keys["admin"] = running.admin_key
    yield running, {name: PyMISP(running.url, key, ssl=False) for name, key in keys.items()}
    running.stop()
    assert running.process.returncode == 0


def _call(url, key, method="GET", path="servers/getVersion", body=None):
    """A raw request with `key`: (status, JSON body)."""
    response = requests.request(method, f"{url}/{path}", json=body, timeout=30, headers={
        "Authorization": key, "Accept": "application/json", "Content-Type": "application/json"})
    return response.status_code, response.json()


def _add_key(client, user="me", **fields):
    """`POST /auth_keys/add/{user}` with `fields`: the answer's AuthKey object."""
    reply = client._check_json_response(client._prepare_request("POST", f"auth_keys/add/{user}", data=fields))
    assert "errors" not in reply, reply
    return reply["AuthKey"]


def _user_id(client):
    return client.get_user()["User"]["id"]


def _event(client, info, value):
    event = MISPEvent()
    event.info = info
    event.distribution = 1
    event.add_attribute("ip-dst", value)
    created = client.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    return created


def test_a_new_key_works_beside_the_original(two_orgs):
    node, clients = two_orgs
    user = clients["user"]
    new_key = user.get_new_authkey()
    assert len(new_key) == 40 and new_key.isalnum()
    assert new_key != user.key

    second = PyMISP(node.url, new_key, ssl=False)
    assert "version" in second.misp_instance_version
    assert second.get_user()["User"]["email"] == "user@test.example"
    created = _event(second, "written with the second key", VALUE)
    assert [a.value for a in user.search(controller="attributes", value=VALUE, pythonify=True)] == [VALUE]
    assert created.info == "written with the second key"
    # The user's own key keeps working.
    assert _call(node.url, user.key)[0] == 200

    [listed] = user._check_json_response(user._prepare_request("GET", "auth_keys/index"))
    assert listed["AuthKey"]["authkey_start"] == new_key[:4]
    assert listed["AuthKey"]["authkey_end"] == new_key[-4:]
    assert listed["AuthKey"]["read_only"] is False
    assert listed["AuthKey"]["expiration"] == "0"
    assert listed["AuthKey"]["user_id"] == _user_id(user)
    assert listed["User"] == {"id": _user_id(user), "email": "user@test.example"}
    assert "authkey_raw" not in listed["AuthKey"]


def test_a_read_only_key_searches_but_cannot_write(two_orgs):
    node, clients = two_orgs
    user = clients["user"]
    _event(user, "readable", VALUE)
    key = _add_key(user, read_only=1, comment="for the SIEM")
    assert key["read_only"] is True and key["comment"] == "for the SIEM"
    read_only = PyMISP(node.url, key["authkey_raw"], ssl=False)

    assert [a.value for a in read_only.search(controller="attributes", value=VALUE, pythonify=True)] == [VALUE]
    [event] = read_only.search(controller="events", value=VALUE, pythonify=True)
    assert event.info == "readable"

    event = MISPEvent()
    event.info = "must not be written"
    status, body = read_only.add_event(event)["errors"]
    assert status == 403
    assert body["message"] == READ_ONLY and body["url"] == "/events/add"
    # Nor may it make itself a writing key, or make new keys.
    status, body = _call(node.url, key["authkey_raw"], "POST", f"auth_keys/edit/{key['id']}", {"read_only": 0})
    assert (status, body["message"]) == (403, READ_ONLY)
    status, body = _call(node.url, key["authkey_raw"], "POST", "auth_keys/add/me", {})
    assert (status, body["message"]) == (403, READ_ONLY)
    assert [e.info for e in user.search(controller="events", pythonify=True)] == ["readable"]


def test_an_expired_key_stops_authenticating(two_orgs):
    node, clients = two_orgs
    user = clients["user"]
    status, body = _call(node.url, user.key, "POST", "auth_keys/add/me", {"expiration": "2020-01-01"})
    assert status == 403
    assert body["errors"] == {"expiration": ["Expiration date/time has to be in the future."]}

    key = _add_key(user, expiration=int(time.time()) + 3)
    assert _call(node.url, key["authkey_raw"])[0] == 200
    # Moving the expiration into the past is refused and leaves the key as it was.
    status, body = _call(node.url, user.key, "POST", f"auth_keys/edit/{key['id']}",
                         {"expiration": int(time.time()) - 60})
    assert status == 403 and "expiration" in body["errors"]
    time.sleep(4)
    assert _call(node.url, key["authkey_raw"]) == (403, {
        "name": AUTH_FAILED, "message": AUTH_FAILED, "url": "/servers/getVersion"})
    assert _call(node.url, user.key)[0] == 200


def test_a_deleted_key_stops_at_once(two_orgs):
    node, clients = two_orgs
    user = clients["user"]
    first, second = _add_key(user), _add_key(user)
    assert _call(node.url, first["authkey_raw"])[0] == 200

    assert _call(node.url, user.key, "POST", f"auth_keys/delete/{first['id']}") == (200, {
        "saved": True, "success": True, "name": "AuthKey deleted.", "message": "AuthKey deleted.",
        "url": f"/auth_keys/delete/{first['id']}"})
    assert _call(node.url, first["authkey_raw"])[0] == 403
    assert _call(node.url, user.key, "GET", f"auth_keys/view/{first['id']}")[0] == 404

    assert _call(node.url, user.key, "DELETE", f"auth_keys/delete/{second['id']}")[0] == 200
    assert _call(node.url, second["authkey_raw"])[0] == 403
    assert _call(node.url, user.key)[0] == 200


def test_another_orgs_user_cannot_see_change_or_delete_a_key(two_orgs):
    node, clients = two_orgs
    key = _add_key(clients["user"], comment="mine")
    other = clients["other"].key
    for method, path in [("GET", f"auth_keys/view/{key['id']}"), ("POST", f"auth_keys/edit/{key['id']}"),
                         ("POST", f"auth_keys/delete/{key['id']}"), ("DELETE", f"auth_keys/delete/{key['id']}"),
                         ("GET", "auth_keys/view/999")]:
        status, body = _call(node.url, other, method, path, {"comment": "taken over"})
        assert (status, body["message"]) == (404, "Invalid authkey"), (method, path)
    # Nor may they make a key for that user.
    status, body = _call(node.url, other, "POST", f"auth_keys/add/{_user_id(clients['user'])}", {})
    assert (status, body["message"]) == (404, "Invalid user")

    status, body = _call(node.url, clients["user"].key, "GET", f"auth_keys/view/{key['id']}")
    assert status == 200 and body["AuthKey"]["comment"] == "mine"
    assert _call(node.url, key["authkey_raw"])[0] == 200


def test_the_index_lists_the_keys_a_caller_manages(two_orgs):
    node, clients = two_orgs
    user, other, admin = clients["user"], clients["other"], clients["admin"]
    own = _add_key(user, comment="user's")
    theirs = _add_key(other, comment="other's")
    for_user = _add_key(admin, user=_user_id(user), comment="by the admin")

    def index(client, path="auth_keys/index"):
        return [k["AuthKey"]["comment"] for k in client._check_json_response(client._prepare_request("GET", path))]

    assert index(user) == ["user's", "by the admin"]
    assert index(other) == ["other's"]
    assert index(admin) == ["user's", "other's", "by the admin"]
    assert index(admin, f"auth_keys/index/{_user_id(other)}") == ["other's"]
    assert index(user, f"auth_keys/index/{_user_id(other)}") == []
    assert index(user, "auth_keys/index/me") == ["user's", "by the admin"]
    assert _call(node.url, for_user["authkey_raw"], "GET", "users/view/me")[1]["User"]["email"] == "user@test.example"
    assert {own["id"], theirs["id"], for_user["id"]} == {"1", "2", "3"}


def test_deleting_the_user_stops_their_extra_keys(two_orgs):
    node, clients = two_orgs
    user, admin = clients["user"], clients["admin"]
    user_id = _user_id(user)
    key = _add_key(user)
    assert _call(node.url, key["authkey_raw"])[0] == 200

    assert admin.delete_user(user_id)["success"] is True
    assert _call(node.url, key["authkey_raw"])[0] == 403
    assert _call(node.url, user.key)[0] == 403

    # A user created again with the same email inherits none of the old keys.
    again = MISPUser()
    again.from_dict(email="user@test.example", org_id=admin.get_user()["User"]["org_id"], role_id=3)
    created = admin.add_user(again)
    assert "errors" not in created, created
    assert _call(node.url, key["authkey_raw"])[0] == 403
    assert _call(node.url, created["User"]["authkey"])[0] == 200
    listed = admin._check_json_response(admin._prepare_request("GET", f"auth_keys/index/{created['User']['id']}"))
    assert listed == []
