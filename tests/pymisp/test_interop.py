"""Interchange checked by the real consumers: the STIX 2.1 export of every shared event passes
the OASIS stix2-validator and its indicator patterns equal misp-stix's; a MISP feed exported by
threatlog loads in PyMISP and imports into a second node (from a directory and over HTTP with
conditional requests); an unchanged feed changes nothing; a corrupt event file is reported
while the rest import."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import Node
from misp_stix_converter import MISPtoSTIX21Parser
from pymisp import MISPEvent, PyMISP
from stix2validator import ValidationOptions, validate_instance

# Attribute types whose indicator patterns must equal misp-stix's.
COMPARED_TYPES = {
    "ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain", "hostname", "url",
    "md5", "sha1", "sha256", "sha512", "filename|md5", "filename|sha1", "filename|sha256",
}


def shared_events() -> Path:
    """The nearest shared/data/events above this file."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "events"
        if candidate.is_dir():
            return candidate
    pytest.fail("no shared/data/events above the tests")


def run(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    binary = os.environ.get("THREATLOG_BIN")
    if not binary:
        pytest.exit("THREATLOG_BIN must name the threatlog binary (make test sets it)", returncode=2)
    return subprocess.run([binary, "--data", str(data), *args], check=check,
                          capture_output=True, text=True, env={**os.environ, "RUST_LOG": "warn"})


def is_event(path: Path) -> bool:
    document = json.loads(path.read_text())
    inner = document.get("Event", document) if isinstance(document, dict) else None
    return isinstance(inner, dict) and "info" in inner


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A node holding every event of shared/data/events; yields (data dir, event uuids)."""
    data = tmp_path_factory.mktemp("interop") / "data"
    run(data, "init", "--org-name", "Interop CERT")
    files = sorted(path for path in shared_events().glob("*.json") if is_event(path))
    assert len(files) == 8
    run(data, "event", "import", *map(str, files))
    uuids = [line.split()[0] for line in run(data, "event", "list").stdout.splitlines()[1:]]
    assert len(uuids) == 8
    return data, uuids


def test_stix_export_validates_and_matches_misp_stix(loaded, tmp_path):
    data, uuids = loaded
    compared = 0
    for uuid in uuids:
        out = tmp_path / f"{uuid}.stix.json"
        run(data, "export", "stix2", "--event", uuid, "--out", str(out))
        bundle = json.loads(out.read_text())
        result = validate_instance(bundle, ValidationOptions(version="2.1"))
        errors = [str(error) for error in result.errors]
        assert result.is_valid and not errors, f"{uuid}: {errors}"
        kinds = {obj["type"] for obj in bundle["objects"]}
        assert {"identity", "report"} <= kinds
        report = next(obj for obj in bundle["objects"] if obj["type"] == "report")
        assert report["id"] == f"report--{uuid}"

        # The MISP project's converter on the same event, as threatlog renders it.
        event = json.loads(run(data, "event", "show", uuid).stdout)
        parser = MISPtoSTIX21Parser()
        parser.parse_misp_event(event)
        theirs = {obj["id"]: obj for obj in json.loads(parser.bundle.serialize())["objects"]
                  if obj["type"] == "indicator"}
        ours = {obj["id"]: obj for obj in bundle["objects"] if obj["type"] == "indicator"}
        for attribute in event["Event"]["Attribute"]:
            if attribute["type"] not in COMPARED_TYPES or not attribute["to_ids"]:
                continue
            key = f"indicator--{attribute['uuid']}"
            assert key in theirs, f"misp-stix made no indicator for {attribute}"
            assert key in ours, f"no indicator for {attribute}"
            assert ours[key]["pattern"] == theirs[key]["pattern"], attribute
            compared += 1
    # The shared events hold 200+ IDS attributes of these types (hashes, IPs, domains, URLs).
    assert compared >= 200, compared


def test_tlp_markings_are_the_standard_definitions(loaded, tmp_path):
    data, _ = loaded
    out = tmp_path / "all.stix.json"
    run(data, "export", "stix2", "--out", str(out))
    bundle = json.loads(out.read_text())
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(error) for error in result.errors]
    reports = [obj for obj in bundle["objects"] if obj["type"] == "report"]
    assert len(reports) == 8
    markings = {obj["id"]: obj for obj in bundle["objects"] if obj["type"] == "marking-definition"}
    white = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
    assert markings[white]["definition"] == {"tlp": "white"}
    marked = [obj for obj in bundle["objects"] if white in obj.get("object_marking_refs", [])]
    assert any(obj["type"] == "report" for obj in marked)


def serve_directory(directory: Path):
    """A plain HTTP server for `directory` on a free loopback port (it honours
    If-Modified-Since with 304); returns (server, base URL, request log)."""
    seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send_response(self, code, message=None):
            seen.append((self.path, code))
            super().send_response(code, message)

    handler = functools.partial(Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", seen


def entries(data: Path) -> str:
    """The `log verify` summary: entry count and views digest."""
    return run(data, "log", "verify").stdout.strip()


def test_feed_round_trip(loaded, tmp_path):
    data, uuids = loaded
    feed = tmp_path / "feed"
    run(data, "export", "feed", "--out", str(feed))
    manifest = json.loads((feed / "manifest.json").read_text())
    assert sorted(manifest) == sorted(uuids)
    hashes = (feed / "hashes.csv").read_text().splitlines()
    assert hashes and all(len(line.split(",")[0]) == 32 for line in hashes)

    # PyMISP reads every event file back.
    for uuid in uuids:
        event = MISPEvent()
        event.load_file(str(feed / f"{uuid}.json"))
        assert event.uuid == uuid
        assert event.info == manifest[uuid]["info"]

    # A second node imports the feed from a directory into the same events.
    second = tmp_path / "second"
    run(second, "init", "--org-name", "Feed Reader")
    run(second, "feed", "add", "local", str(feed), "--tags", "source:test")
    out = run(second, "feed", "fetch", "local").stdout
    assert "8 added, 0 updated, 0 unchanged, 0 failed" in out, out
    for uuid in uuids:
        original = json.loads(run(data, "event", "show", uuid).stdout)["Event"]
        copy = json.loads(run(second, "event", "show", uuid).stdout)["Event"]
        values = lambda event: sorted(  # noqa: E731
            [a["value"] for a in event["Attribute"]]
            + [a["value"] for o in event["Object"] for a in o["Attribute"]])
        assert values(copy) == values(original)
        tags = [tag["name"] for tag in copy["Tag"]]
        assert 'threatlog:feed="local"' in tags and "source:test" in tags

    # Fetching the unchanged feed again changes nothing.
    before = entries(second)
    out = run(second, "feed", "fetch", "local").stdout
    assert "0 added, 0 updated, 8 unchanged, 0 failed" in out, out
    assert entries(second) == before

    # An event with a newer timestamp in the manifest is updated.
    uuid = next(uuid for uuid in uuids if "timestamp" in manifest[uuid])
    document = json.loads((feed / f"{uuid}.json").read_text())
    document["Event"]["info"] = "renamed upstream"
    document["Event"]["timestamp"] = str(int(document["Event"]["timestamp"]) + 60)
    (feed / f"{uuid}.json").write_text(json.dumps(document))
    manifest[uuid]["timestamp"] = document["Event"]["timestamp"]
    (feed / "manifest.json").write_text(json.dumps(manifest))
    out = run(second, "feed", "fetch", "local").stdout
    assert "0 added, 1 updated, 7 unchanged, 0 failed" in out, out
    assert json.loads(run(second, "event", "show", uuid).stdout)["Event"]["info"] == "renamed upstream"


def test_http_feed_uses_conditional_requests(loaded, tmp_path):
    data, uuids = loaded
    feed = tmp_path / "feed"
    run(data, "export", "feed", "--out", str(feed))
    server, url, seen = serve_directory(feed)
    try:
        reader = tmp_path / "reader"
        run(reader, "init", "--org-name", "HTTP Reader")
        run(reader, "feed", "add", "web", url, "--distribution", "0")
        listed = run(reader, "feed", "list").stdout
        assert "web" in listed and url in listed
        out = run(reader, "feed", "fetch", "web").stdout
        assert "8 added" in out, out
        copy = json.loads(run(reader, "event", "show", uuids[0]).stdout)["Event"]
        assert copy["distribution"] == "0"
        before = entries(reader)
        seen.clear()
        out = run(reader, "feed", "fetch", "web").stdout
        assert "not modified" in out, out
        assert seen == [("/manifest.json", 304)]
        assert entries(reader) == before
    finally:
        server.shutdown()


def test_corrupt_event_file_is_reported_and_the_rest_import(loaded, tmp_path):
    data, uuids = loaded
    feed = tmp_path / "feed"
    run(data, "export", "feed", "--out", str(feed))
    ordered = sorted(uuids)
    broken, swapped, other = ordered[3], ordered[5], ordered[6]
    (feed / f"{broken}.json").write_text('{"Event": {"info": "cut off", "Attribute": [')
    # A file holding another event than its manifest entry says is refused too.
    (feed / f"{swapped}.json").write_text((feed / f"{other}.json").read_text())
    reader = tmp_path / "reader"
    run(reader, "init", "--org-name", "Careful Reader")
    run(reader, "feed", "add", "mixed", str(feed))
    result = run(reader, "feed", "fetch", "mixed", check=False)
    assert result.returncode != 0
    assert "6 added, 0 updated, 0 unchanged, 2 failed" in result.stdout, result.stdout
    assert f"{broken}.json: malformed JSON" in result.stderr, result.stderr
    assert f"{swapped}.json: the file holds event(s) [{other}], not the manifest's {swapped}" \
        in result.stderr, result.stderr
    listed = run(reader, "event", "list").stdout
    assert broken not in listed and swapped not in listed
    assert sum(uuid in listed for uuid in uuids) == 6
    # Once fixed upstream, the next fetch brings the missing events only.
    shutil.rmtree(feed)
    run(data, "export", "feed", "--out", str(feed))
    out = run(reader, "feed", "fetch", "mixed").stdout
    assert "2 added, 0 updated, 6 unchanged, 0 failed" in out, out


def test_rest_search_return_formats(misp, node):
    """restSearch answers the interchange formats with their content types; IDS formats
    default to IDS attributes of published events."""
    published = MISPEvent()
    published.info = "interop published"
    published.add_attribute("domain", "rest-export.example", to_ids=True)
    published.add_attribute("ip-dst", "198.51.100.77", to_ids=False)
    published = misp.add_event(published, pythonify=True)
    misp.publish(published)
    draft = MISPEvent()
    draft.info = "interop draft"
    draft.add_attribute("domain", "draft-export.example", to_ids=True)
    draft = misp.add_event(draft, pythonify=True)

    rules = misp.search(controller="attributes", return_format="suricata")
    assert isinstance(rules, str) and rules.startswith("# threatlog export of IDS rules")
    assert "Domain: rest-export.example" in rules
    assert "198.51.100.77" not in rules  # not to_ids
    assert "draft-export.example" not in rules  # not published
    snort = misp.search(controller="events", return_format="snort")
    assert "|0b|rest-export|07|example|00|" in snort

    headers = {"Authorization": node.admin_key, "Accept": "application/json"}
    expected = {"suricata": "text/plain", "snort": "text/plain", "hashes": "text/plain",
                "stix2": "application/stix+json", "csv": "text/csv"}
    for name, content_type in expected.items():
        response = requests.post(f"{node.url}/events/restSearch", headers=headers,
                                 json={"returnFormat": name, "eventid": published.uuid})
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith(content_type), name
    bundle = requests.post(f"{node.url}/events/restSearch", headers=headers,
                           json={"returnFormat": "stix2", "eventid": published.uuid}).json()
    kinds = sorted(obj["type"] for obj in bundle["objects"])
    assert kinds == ["identity", "indicator", "ipv4-addr", "observed-data", "report"]
    paged = requests.post(f"{node.url}/events/restSearch", headers=headers,
                          json={"returnFormat": "stix2", "limit": 1, "page": 2}).json()
    assert [obj["type"] for obj in paged["objects"]].count("report") == 1
    bad = requests.post(f"{node.url}/events/restSearch", headers=headers,
                        json={"returnFormat": "xml"})
    assert bad.status_code == 400 and "Supported: json, csv, text, hashes" in bad.text


def test_feeds_are_fetched_on_a_schedule(loaded, tmp_path):
    data, uuids = loaded
    feed = tmp_path / "feed"
    run(data, "export", "feed", "--out", str(feed))
    reader = tmp_path / "scheduled"
    run(reader, "init", "--org-name", "Scheduled Reader")
    run(reader, "feed", "add", "timed", str(feed))
    config = reader / "threatlog.toml"
    config.write_text(config.read_text().replace("fetch_interval_s = 3600", "fetch_interval_s = 1"))
    running = Node(reader)
    try:
        client = PyMISP(running.url, running.admin_key, ssl=False)
        deadline = time.monotonic() + 60
        found = []
        while time.monotonic() < deadline and len(found) < len(uuids):
            found = client.search(controller="events", metadata=True, pythonify=True)
            time.sleep(0.5)
        assert sorted(event.uuid for event in found) == sorted(uuids)
    finally:
        running.stop()
    assert running.process.returncode == 0
