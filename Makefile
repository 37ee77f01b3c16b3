# Developer entry points. Everything runs on a fresh clone with no services running:
# the test fixtures start their own Kafka broker (ops/kafka/kafka.sh).

PY ?= python3
VENV = .venv
BIN = $(VENV)/bin
KAFKA = ops/kafka/kafka.sh
KAFKA_DATA = .data/kafka
KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install lint fmt test test-cluster kafka-up kafka-down run clean

install: $(VENV)/.installed
	$(KAFKA) fetch
	command -v prometheus >/dev/null && command -v promtool >/dev/null || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends prometheus; }
	test -x /usr/bin/chromium || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }

$(BIN)/python:
	$(PY) -m venv $(VENV)

# The exact set of uv.lock (faustapp editable, with the dev extra; any other package but pip is
# removed), installed by the uv release the lock names. Again only when the metadata or lock change.
UV_VERSION = $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)
UV_SYNC = UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --quiet

$(VENV)/.installed: pyproject.toml uv.lock | $(BIN)/python
	$(BIN)/uv --version 2>/dev/null | grep -qx 'uv $(UV_VERSION)' || \
		$(BIN)/python -m pip install -q 'uv==$(UV_VERSION)'
	$(UV_SYNC) --extra dev
	touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench chaos
	$(BIN)/ruff format --check src tests bench chaos

fmt: $(VENV)/.installed
	$(BIN)/ruff format src tests bench chaos
	$(BIN)/ruff check --fix src tests bench chaos

# The whole suite. The cluster chaos run (about two minutes, mostly waiting on brokers) goes beside
# the unit tests (pure logic, about as long); then the integration, end-to-end and bench smoke
# tests. Every part runs even if an earlier one failed; the status is that of all of them (a part
# PYTEST_ARGS leaves without tests, pytest's status 5, counts as passed).
test: install lint
	@mkdir -p .data; \
	$(BIN)/pytest -q -p no:cacheprovider tests -m cluster_chaos $(PYTEST_ARGS) \
		> .data/test-cluster.log 2>&1 & cluster=$$!; \
	trap 'kill $$cluster 2>/dev/null; exit 130' INT TERM; \
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS); unit=$$?; \
	wait $$cluster; cluster_rc=$$?; \
	echo "--- cluster chaos (tests -m cluster_chaos):"; cat .data/test-cluster.log; \
	$(BIN)/pytest -q tests --ignore=tests/unit -m "not cluster_chaos" $(PYTEST_ARGS); rest=$$?; \
	echo "pytest status: unit $$unit, cluster chaos $$cluster_rc, integration/e2e/bench smoke $$rest"; \
	ok() { [ "$$1" -eq 0 ] || [ "$$1" -eq 5 ]; }; \
	ok $$unit && ok $$cluster_rc && ok $$rest

# Only the 3-broker cluster losing its leading broker (short form, also in make test; make chaos
# runs the full one).
test-cluster: install
	$(BIN)/pytest -q tests -m cluster_chaos $(PYTEST_ARGS)

kafka-up:
	$(KAFKA) start --port $(KAFKA_PORT) --controller-port $(KAFKA_CONTROLLER_PORT) --data-dir $(KAFKA_DATA)

kafka-down:
	$(KAFKA) stop --data-dir $(KAFKA_DATA)

# Broker + worker + generator; Ctrl-C stops all three.
run: install kafka-up
	FAUSTAPP_VENV_BIN=$(abspath $(BIN)) scripts/run-local.sh

clean:
	-$(KAFKA) stop --data-dir $(KAFKA_DATA)
	rm -rf .data

# Benchmark: faustapp vs a raw aiokafka consumer vs Quix Streams, Bytewax and Pathway on
# pre-filled topics (sensor readings; trades and app-logs for the trade-candles-1m and
# log-stats-1m rows; starts its own broker unless KAFKA_BOOTSTRAP is set). Table on stdout,
# figures in bench-results/latest.json. bench-quick is the small smoke size. Both install the
# `bench` extra (Bytewax, Pathway) first; if it cannot be installed the bench still runs and
# shows those rows as "cannot run here".
.PHONY: bench bench-quick bench-install
BENCH_ARGS ?=

bench-install: install
	$(UV_SYNC) --extra dev --extra bench || \
		echo "warning: the bench extra did not install: its rows will show why they cannot run"

bench: bench-install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: bench-install
	$(BIN)/python -m bench.run --quick --json bench-results/quick.json $(BENCH_ARGS)

# Reliability: kill -9, broker restart and a wiped worker under exactly_once and at_least_once,
# outputs compared with what was produced. `make test` runs the short form.
.PHONY: chaos
CHAOS_ARGS ?=

chaos: install
	$(BIN)/python -m chaos.run $(CHAOS_ARGS)
	$(BIN)/python -m chaos.broker_loss
