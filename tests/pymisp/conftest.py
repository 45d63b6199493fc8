"""Fixtures for the PyMISP suite: a real `threatlog serve` on a free port in a temp dir.

THREATLOG_BIN names the threatlog binary (the Makefile sets it to the one it built).
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pymisp import PyMISP

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def _binary() -> str:
    binary = os.environ.get("THREATLOG_BIN")
    if not binary:
        pytest.exit("THREATLOG_BIN must name the threatlog binary (make test sets it)", returncode=2)
    return binary


def cli(data: Path, *args: str) -> str:
    """Runs a threatlog command on a data directory that no server holds."""
    return subprocess.run(
        [_binary(), "--data", str(data), *args],
        check=True, capture_output=True, text=True,
    ).stdout


class Node:
    """A running `threatlog serve` with its data directory, URL and admin key."""

    def __init__(self, data: Path, https: bool = False):
        self.data = data
        addr_file = data / "run" / "api.addr"
        self.process = subprocess.Popen(
            [_binary(), "--data", str(data), "serve", "--api-listen", "127.0.0.1:0", "--sync-listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (addr_file.exists() and addr_file.read_text().endswith("\n")):
            if self.process.poll() is not None:
                raise RuntimeError(f"threatlog serve exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError("threatlog serve did not start")
            time.sleep(0.05)
        scheme = "https" if https else "http"
        self.url = f"{scheme}://{addr_file.read_text().strip()}"
        self.admin_key = (data / "admin.key").read_text().strip()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    """A node started on an empty directory (serve initialises it)."""
    running = Node(tmp_path_factory.mktemp("threatlog") / "data")
    yield running
    running.stop()
    assert running.process.returncode == 0


@pytest.fixture(scope="session")
def misp(node):
    """PyMISP connected as the node's site admin."""
    return PyMISP(node.url, node.admin_key, ssl=False)


@pytest.fixture(scope="session")
def community(tmp_path_factory):
    """A node hosting two organisations: the host org (admin, a publisher, a plain user) and
    "Other CERT" (a user). Yields the node and a PyMISP client per user name."""
    data = tmp_path_factory.mktemp("community") / "data"
    cli(data, "init", "--org-name", "Host CERT")
    cli(data, "org", "add", "--name", "Other CERT")
    keys = {}
    for name, org, role in [("publisher", "Host CERT", "publisher"), ("user", "Host CERT", "user"),
                            ("other", "Other CERT", "user")]:
        out = cli(data, "user", "add", "--org", org, "--role", role, "--email", f"{name}@test.example")
        keys[name] = out.strip().rsplit(" ", 1)[-1]
    running = Node(data)
    keys["admin"] = running.admin_key
    clients = {name: PyMISP(running.url, key, ssl=False) for name, key in keys.items()}
    yield running, clients
    running.stop()
    assert running.process.returncode == 0
