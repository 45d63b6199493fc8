"""HTTPS: with a certificate and key configured, PyMISP works over TLS and plain HTTP does not;
clients that open connections and never handshake hold up nobody."""

import socket
import subprocess
from urllib.parse import urlparse

import pytest
import requests
from pymisp import MISPEvent, PyMISP

from conftest import Node, cli


def _self_signed(directory):
    cert, key = directory / "api.crt", directory / "api.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def _https_node(tmp_path):
    """A node serving its API over HTTPS with a self-signed certificate; returns it and the
    certificate's path."""
    data = tmp_path / "data"
    cli(data, "init", "--org-name", "TLS CERT")
    cert, key = _self_signed(tmp_path)
    config = data / "threatlog.toml"
    text = config.read_text()
    text = text.replace('# tls_cert = "/etc/threatlog/api.crt"', f'tls_cert = "{cert}"')
    text = text.replace('# tls_key = "/etc/threatlog/api.key"', f'tls_key = "{key}"')
    config.write_text(text)
    return Node(data, https=True), cert


def test_pymisp_over_https(tmp_path):
    node, cert = _https_node(tmp_path)
    try:
        misp = PyMISP(node.url, node.admin_key, ssl=str(cert))
        assert misp.misp_instance_version["version"] == "2.5.0"
        event = MISPEvent()
        event.info = "over https"
        event.add_attribute("domain", "tls.example.org")
        created = misp.add_event(event, pythonify=True)
        assert misp.get_event(created.uuid, pythonify=True).attributes[0].value == "tls.example.org"
        plain = node.url.replace("https://", "http://") + "/servers/getVersion"
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(plain, headers={"Authorization": node.admin_key}, timeout=5)
    finally:
        node.stop()
    assert node.process.returncode == 0


def test_connections_that_never_handshake_hold_up_nobody(tmp_path):
    node, cert = _https_node(tmp_path)
    address = urlparse(node.url)
    # Connections that never start a TLS handshake (each would be dropped after 10 s).
    idle = [socket.create_connection((address.hostname, address.port)) for _ in range(20)]
    try:
        misp = PyMISP(node.url, node.admin_key, ssl=str(cert), timeout=5)
        assert misp.misp_instance_version["version"] == "2.5.0"
        event = MISPEvent()
        event.info = "served beside idle connections"
        created = misp.add_event(event, pythonify=True)
        assert created.info == "served beside idle connections"
    finally:
        for connection in idle:
            connection.close()
        node.stop()
    assert node.process.returncode == 0
