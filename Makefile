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

.PHONY: install lint fmt test kafka-up kafka-down run clean

install: $(VENV)/.installed
	$(KAFKA) fetch

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Reinstall only when the package metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

fmt: $(VENV)/.installed
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

test: install lint
	$(BIN)/pytest -q tests $(PYTEST_ARGS)

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
