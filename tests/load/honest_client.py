"""The honest client of the load test (tests/hostile_load.rs): PyMISP, unmodified, adding an
event with one attribute and then searching for that attribute, round after round, each call
timed. Prints one JSON object: every call's latency in milliseconds and every failure.

Usage: honest_client.py URL API_KEY CA_FILE ROUNDS LABEL
"""

import json
import sys
import time
import uuid

from pymisp import MISPEvent, PyMISP

# Longest PyMISP waits for one answer, in seconds: a call this slow counts as failed.
CALL_TIMEOUT_S = 60


def main() -> None:
    url, key, ca_file, rounds, label = sys.argv[1:6]
    misp = PyMISP(url, key, ssl=ca_file, timeout=CALL_TIMEOUT_S)
    latencies_ms, failures = [], []

    def timed(name, call, check):
        started = time.monotonic()
        try:
            result = call()
            problem = check(result)
        except Exception as error:  # a failed call is what the test counts, whatever it is
            problem = repr(error)
        latencies_ms.append((time.monotonic() - started) * 1000.0)
        if problem:
            failures.append(f"{name}: {problem}")

    for n in range(int(rounds)):
        value = f"honest-{label}-{n}-{uuid.uuid4().hex[:12]}.example.org"
        event = MISPEvent()
        event.info = f"honest client, {label}, round {n}"
        event.add_attribute("domain", value)

        def added(result):
            if isinstance(result, dict):
                return f"add_event answered {result}"
            if [a.value for a in result.attributes] != [value]:
                return f"add_event stored {[a.value for a in result.attributes]}"
            return None

        def found(result):
            if isinstance(result, dict):
                return f"search answered {result}"
            if [a.value for a in result] != [value]:
                return f"search found {[a.value for a in result]}, expected [{value}]"
            return None

        timed("add_event", lambda: misp.add_event(event, pythonify=True), added)
        timed("search", lambda: misp.search(controller="attributes", value=value, pythonify=True), found)

    print(json.dumps({"latencies_ms": latencies_ms, "failures": failures}))


if __name__ == "__main__":
    main()
