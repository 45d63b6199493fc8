# threatlog: `make run` starts a node on ./data, `make test` runs every test.
# Both install missing build prerequisites first (deploy/prereqs.sh, deploy/build-rocksdb.sh).

CARGO ?= cargo
DATA ?= ./data
# Where cargo builds (CI sets CARGO_TARGET_DIR to share compiled dependencies).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
# The PyMISP suite's virtualenv, rebuilt when tests/pymisp/requirements.txt changes.
PYMISP_VENV := $(TARGET_DIR)/pymisp-venv

.PHONY: all prereqs test-prereqs build test test-rust test-pymisp test-load lint bench fuzz-smoke run clean

all: build

# System packages, then the prebuilt RocksDB library (compiled once; see .cargo/config.toml).
prereqs:
	@./deploy/prereqs.sh
	@./deploy/build-rocksdb.sh

# The tests also need the tools they check exports with (Suricata).
test-prereqs: prereqs
	@./deploy/prereqs.sh --test

build: prereqs
	$(CARGO) build --release

lint: prereqs
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test: lint test-rust test-pymisp test-load

test-rust: test-prereqs
	$(CARGO) test --all-targets

$(PYMISP_VENV)/installed: tests/pymisp/requirements.txt
	python3 -m venv $(PYMISP_VENV)
	$(PYMISP_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/pymisp/requirements.txt
	touch $@

# Builds the binary exactly as test-rust does (same features, so no extra dependency builds);
# pytest's own exit code decides: 5 (no tests collected) fails like any other error.
test-pymisp: test-prereqs $(PYMISP_VENV)/installed
	$(CARGO) test --all-targets --no-run
	THREATLOG_BIN=$(abspath $(TARGET_DIR))/debug/threatlog $(PYMISP_VENV)/bin/python -m pytest tests/pymisp -q

# The load test (tests/hostile_load.rs): one node attacked on every front at once while PyMISP
# adds and searches events; prints the honest client's latencies with and without the attack.
test-load: test-prereqs $(PYMISP_VENV)/installed
	THREATLOG_PYMISP_PYTHON=$(abspath $(PYMISP_VENV))/bin/python $(CARGO) test --test hostile_load -- --ignored --nocapture

# The end-to-end benchmarks (benches/), each printing its figures.
bench: prereqs
	$(CARGO) bench --bench ingest
	$(CARGO) bench --bench api
	$(CARGO) bench --bench audit
	$(CARGO) bench --bench sync

# Every fuzz target (fuzz/fuzz_targets) built once on stable Rust, then run FUZZ_SECONDS each
# (default 20) from its seeds; any crash fails (fuzz/smoke.sh). Installs cargo-fuzz if missing.
fuzz-smoke: prereqs
	@./deploy/fuzz-prereqs.sh
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./fuzz/smoke.sh

# Serves ./data; a new directory is initialised and its admin key printed by serve itself,
# an existing one's key is printed from DATA/admin.key.
run: build
	@if [ -f $(DATA)/admin.key ]; then echo "admin key: $$(cat $(DATA)/admin.key)"; fi
	$(CARGO) run --release -- --data $(DATA) serve

clean:
	$(CARGO) clean
