#!/usr/bin/env bash
# Run faustapp locally: a single-node Kafka broker, one worker running every declared pipeline,
# and a generator for every use (sensors, trades, logs, clicks and the products catalogue).
# Ctrl-C (or any exit) stops the generators, then the worker, then the broker.
#
# Usually started by `make run`. Standalone use needs `make install` first.
# Environment:
#   FAUSTAPP_VENV_BIN  directory with the faustapp executable (default: .venv/bin)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV_BIN="${FAUSTAPP_VENV_BIN:-$ROOT/.venv/bin}"
KAFKA_SH="$ROOT/ops/kafka/kafka.sh"
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_DATA=".data/kafka"
WEB_PORT=6066
STOP_GRACE_S=30

export FAUSTAPP_BROKER="kafka://127.0.0.1:${KAFKA_PORT}"
export FAUSTAPP_DATA_DIR=".data/worker-1"
export FAUSTAPP_WEB_PORT="$WEB_PORT"
export FAUSTAPP_PIPELINES="${FAUSTAPP_PIPELINES:-all}"

worker_pid=""
generator_pids=()

say() { echo "run-local: $*" >&2; }

port_open() {
    timeout 2 bash -c ">/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# SIGTERM, wait up to STOP_GRACE_S, then SIGKILL.
# shellcheck disable=SC2329 # called from the EXIT trap
stop_process() {
    local pid="$1" name="$2" i
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < STOP_GRACE_S * 4; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    say "$name did not stop within ${STOP_GRACE_S}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2329 # called from the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    local pid
    for pid in "${generator_pids[@]}"; do
        stop_process "$pid" generator
    done
    stop_process "$worker_pid" worker
    "$KAFKA_SH" stop --data-dir "$KAFKA_DATA" || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ! -x "$VENV_BIN/faustapp" ]]; then
    say "error: $VENV_BIN/faustapp not found; run 'make install' first"
    exit 1
fi

# Idempotent: reuses the broker from `make kafka-up` if it is already running.
"$KAFKA_SH" start --port "$KAFKA_PORT" --controller-port "$KAFKA_CONTROLLER_PORT" \
    --data-dir "$KAFKA_DATA" >/dev/null

mkdir -p "$FAUSTAPP_DATA_DIR"
"$VENV_BIN/faustapp" worker -l info &
worker_pid=$!

# Give the worker time to join its group and create its topics before data flows.
for ((i = 0; i < 240; i++)); do
    kill -0 "$worker_pid" 2>/dev/null || {
        say "error: the worker exited during startup"
        exit 1
    }
    port_open "$WEB_PORT" && break
    sleep 0.25
done
port_open "$WEB_PORT" || say "warning: worker web server not up after 60s; starting the generator anyway"

"$VENV_BIN/faustapp" generate sensors --rate 1000 --count 100000000 --keys 500 \
    --disorder-ms 3000 --bad-ratio 0.001 --quiet &
generator_pids+=($!)
"$VENV_BIN/faustapp" generate trades --rate 300 --count 100000000 --keys 20 \
    --disorder-ms 3000 --bad-ratio 0.001 --quiet &
generator_pids+=($!)
"$VENV_BIN/faustapp" generate logs --rate 300 --count 100000000 --keys 12 \
    --disorder-ms 3000 --bad-ratio 0.001 --quiet &
generator_pids+=($!)
"$VENV_BIN/faustapp" generate products --rate 200 --count 2000 --items 1000 --quiet &
generator_pids+=($!)
"$VENV_BIN/faustapp" generate clicks --rate 300 --count 100000000 --items 1000 \
    --disorder-ms 3000 --bad-ratio 0.001 --quiet &
generator_pids+=($!)

cat >&2 <<MSG

run-local: faustapp is running (Ctrl-C stops the generators, the worker and Kafka)
  live page:     http://127.0.0.1:${WEB_PORT}/
  pipelines:     ${FAUSTAPP_PIPELINES} (inputs sensor-readings, trades, app-logs, clicks, products)
  all pipelines: http://127.0.0.1:${WEB_PORT}/api/pipelines
  top 10 now:    http://127.0.0.1:${WEB_PORT}/api/pipelines/sensor-stats-1m/top?field=count&n=10
  a key:         http://127.0.0.1:${WEB_PORT}/api/pipelines/sensor-stats-1m/keys/s-1
  results live:  http://127.0.0.1:${WEB_PORT}/api/pipelines/sensor-stats-1m/stream
  API described: http://127.0.0.1:${WEB_PORT}/openapi.json (readable at /docs)
  sensor state:  http://127.0.0.1:${WEB_PORT}/api/sensors/s-1
  also viewed:   http://127.0.0.1:${WEB_PORT}/api/items/sku-0/also-viewed
  recommended:   http://127.0.0.1:${WEB_PORT}/api/users/u-1/recommendations
  a topic live:  ${VENV_BIN}/faustapp tail trending-items
  metrics:       http://127.0.0.1:${WEB_PORT}/metrics
  Kafka:         127.0.0.1:${KAFKA_PORT}

MSG

# Serve until the worker exits or we are interrupted; the generator may finish earlier.
status=0
wait "$worker_pid" || status=$?
worker_pid=""
say "worker exited with status $status"
exit "$status"
