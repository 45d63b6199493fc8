"""PyMISP's `freetext()` against `threatlog serve`: indicators found in a text become attributes."""

from pymisp import MISPAttribute, MISPEvent

TEXT = """Campaign notes: the loader calls hxxp://cdn-update[.]example[.]net/gate.php
and falls back to 198.51.100.23:4443. Payload sha256
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 (setup.exe, version 2.4.1),
replies go to ops[@]mail-relay[.]org; exploits CVE-2023-4863. Sinkholed: c2.mail-relay.org
"""

EXPECTED = {
    ("url", "http://cdn-update.example.net/gate.php"),
    ("ip-dst|port", "198.51.100.23|4443"),
    ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("filename", "setup.exe"),
    ("email-src", "ops@mail-relay.org"),
    ("vulnerability", "CVE-2023-4863"),
    ("hostname", "c2.mail-relay.org"),
}


def _event(misp) -> MISPEvent:
    event = MISPEvent()
    event.info = "PyMISP freetext test"
    event.distribution = 0
    return misp.add_event(event, pythonify=True)


def test_freetext_meta_attributes_save_nothing(misp):
    event = _event(misp)
    meta = misp.freetext(event, TEXT, returnMetaAttributes=True)
    assert {(m["default_type"], m["value"]) for m in meta} == EXPECTED
    cve = next(m for m in meta if m["value"] == "CVE-2023-4863")
    assert (cve["line"], cve["category"], cve["to_ids"]) == (4, "External analysis", False)
    assert misp.get_event(event, pythonify=True).attributes == []


def test_freetext_adds_attributes(misp):
    event = _event(misp)
    added = misp.freetext(event, TEXT, pythonify=True)
    assert all(isinstance(a, MISPAttribute) for a in added), added
    assert {(a.type, a.value) for a in added} == EXPECTED
    url = next(a for a in added if a.type == "url")
    assert url.category == "Network activity" and url.to_ids is True

    stored = misp.get_event(event, pythonify=True)
    assert {(a.type, a.value) for a in stored.attributes} == EXPECTED
    by_value = {a.value: a for a in stored.attributes}
    assert by_value["CVE-2023-4863"].category == "External analysis"

    # The same text again adds nothing; a distribution applies to what is added.
    assert misp.freetext(event, TEXT) == []
    more = misp.freetext(event, "new host beacon.mail-relay.org", distribution=0, pythonify=True)
    assert [(a.type, a.value, int(a.distribution)) for a in more] == [
        ("hostname", "beacon.mail-relay.org", 0)
    ]
