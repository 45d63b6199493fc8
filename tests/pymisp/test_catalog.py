"""PyMISP's taxonomy and galaxy calls against `threatlog serve`, with the shared
misp-taxonomies and misp-galaxy directories loaded, and exclusive TLP tags."""

from pathlib import Path

import pytest
from pymisp import MISPEvent, MISPGalaxy, MISPTaxonomy, PyMISP

from conftest import Node, cli


def _shared_data() -> Path:
    """The first shared/data directory above this file (../shared/data in CI)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    raise RuntimeError("no shared/data directory above the tests")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    data = tmp_path_factory.mktemp("catalog") / "data"
    cli(data, "init", "--org-name", "Catalog CERT")
    shared = _shared_data()
    assert "loaded 181 taxonomies" in cli(data, "taxonomy", "load", str(shared / "taxonomies"))
    assert "loaded 6 galaxies (4966 clusters)" in cli(data, "galaxy", "load", str(shared / "galaxies"))
    running = Node(data)
    yield PyMISP(running.url, running.admin_key, ssl=False)
    running.stop()
    assert running.process.returncode == 0


def _event(misp: PyMISP) -> MISPEvent:
    event = MISPEvent()
    event.info = "PyMISP catalog test"
    event.distribution = 0
    event.add_attribute("domain", "catalog.example.com")
    return misp.add_event(event, pythonify=True)


def test_taxonomies(catalog):
    taxonomies = catalog.taxonomies(pythonify=True)
    assert len(taxonomies) == 181
    tlp = next(t for t in taxonomies if t.namespace == "tlp")
    assert isinstance(tlp, MISPTaxonomy) and tlp.exclusive is True and tlp.enabled is False
    assert catalog.get_taxonomy(tlp.id, pythonify=True).namespace == "tlp"
    catalog.enable_taxonomy(tlp)
    assert catalog.get_taxonomy(tlp.id, pythonify=True).enabled is True
    catalog.disable_taxonomy(tlp)
    assert catalog.get_taxonomy(tlp.id, pythonify=True).enabled is False


def test_galaxies_and_attaching_a_cluster(catalog):
    galaxies = catalog.galaxies(pythonify=True)
    assert sorted(g.type for g in galaxies) == [
        "botnet", "mitre-attack-pattern", "ransomware", "sector", "threat-actor", "tool"]
    actors = next(g for g in galaxies if g.type == "threat-actor")
    galaxy = catalog.get_galaxy(actors.id, withCluster=True, pythonify=True)
    assert isinstance(galaxy, MISPGalaxy) and len(galaxy.clusters) == 864
    apt1 = next(c for c in galaxy.clusters if c.value == "APT1")
    assert apt1.tag_name == 'misp-galaxy:threat-actor="APT1"'
    found = catalog.search_galaxy_clusters(actors, searchall="comment crew", pythonify=True)
    assert [c.value for c in found] == ["APT1"]
    assert catalog.get_galaxy_cluster(apt1.uuid, pythonify=True).value == "APT1"

    event = _event(catalog)
    answer = catalog.attach_galaxy_cluster(event, apt1)
    assert answer["success"] == "Cluster attached.", answer
    answer = catalog.attach_galaxy_cluster(event.attributes[0], apt1.id)
    assert answer["success"] == "Cluster attached.", answer
    stored = catalog.get_event(event, pythonify=True)
    assert [t.name for t in stored.tags] == ['misp-galaxy:threat-actor="APT1"']
    assert [t.name for t in stored.attributes[0].tags] == ['misp-galaxy:threat-actor="APT1"']
    # The event and the attribute carry the cluster in MISP's Galaxy blocks too.
    for holder in [stored, stored.attributes[0]]:
        [block] = holder.galaxies
        assert (block.type, block.name, block.uuid) == (actors.type, actors.name, actors.uuid)
        assert [(c.value, c.uuid, c.tag_name) for c in block.clusters] == [
            ("APT1", apt1.uuid, 'misp-galaxy:threat-actor="APT1"')]
    # A galaxy tag of a cluster not loaded here stays a plain tag.
    catalog.tag(event, 'misp-galaxy:threat-actor="No Such Actor"')
    stored = catalog.get_event(event, pythonify=True)
    assert sorted(t.name for t in stored.tags) == [
        'misp-galaxy:threat-actor="APT1"', 'misp-galaxy:threat-actor="No Such Actor"']
    assert [[c.value for c in block.clusters] for block in stored.galaxies] == [["APT1"]]


def test_two_tlp_tags_on_one_attribute_are_refused(catalog):
    event = _event(catalog)
    attribute = event.attributes[0]
    assert "errors" not in catalog.tag(attribute, "tlp:amber")
    refused = catalog.tag(attribute, "tlp:red")
    status, body = refused["errors"]
    assert status == 403
    assert body["errors"]["Tag"] == [
        "The tag tlp:red cannot be attached: the taxonomy tlp is exclusive and tlp:amber is already attached."]
    stored = catalog.get_attribute(attribute, pythonify=True)
    assert [t.name for t in stored.tags] == ["tlp:amber"]
