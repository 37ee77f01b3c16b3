#!/usr/bin/env bash
# Local single-node Apache Kafka 3.9.1 (KRaft, combined broker+controller) for development
# and tests. No ZooKeeper, no Docker: the broker jars come from Maven Central via
# ops/kafka/pom.xml and are cached in .cache/kafka-lib (relative to the project root).
#
# Usage:
#   kafka.sh fetch
#   kafka.sh start --port PORT [--controller-port CPORT] --data-dir DIR [--foreground]
#                  [--owner-pid PID]
#   kafka.sh stop --data-dir DIR
#   kafka.sh status --data-dir DIR
#
# start (background) prints the bootstrap address 127.0.0.1:PORT as the last line of stdout
# once the broker accepts connections and has logged "Kafka Server started".
# --owner-pid PID: also stop the broker when process PID exits (safety net for test runs
# that get killed before they can clean up).
#
# Environment:
#   KAFKA_HEAP_OPTS     JVM heap flags (default: -Xmx1g -Xms256m)
#   KAFKA_START_TIMEOUT seconds to wait for readiness (default: 90)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
KAFKA_VERSION="3.9.1"
LIB_DIR="$ROOT/.cache/kafka-lib"
MARKER_JAR="kafka_2.13-${KAFKA_VERSION}.jar"
LOG4J_CONFIG="$SCRIPT_DIR/log4j.properties"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1g -Xms256m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT=30
STARTED_MESSAGE="Kafka Server started"

log() { echo "kafka.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    sed -n '6,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

require_java() {
    if ! command -v java >/dev/null 2>&1; then
        die "Java 17 is required but 'java' is not on PATH. Install it, e.g.:
    apt-get install -y openjdk-17-jre-headless     (Debian/Ubuntu)
    brew install openjdk@17                        (macOS)"
    fi
    local version major
    version="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
    major="${version%%.*}"
    if [[ "$major" =~ ^[0-9]+$ ]] && ((major < 11)); then
        die "Java 17 is required, found Java $version. Install it, e.g.:
    apt-get install -y openjdk-17-jre-headless"
    fi
}

require_maven() {
    if ! command -v mvn >/dev/null 2>&1; then
        die "Maven is required to download the Kafka $KAFKA_VERSION jars into .cache/kafka-lib,
but 'mvn' is not on PATH. Install it, e.g.:
    apt-get install -y maven      (Debian/Ubuntu)
    brew install maven            (macOS)"
    fi
}

have_jars() { [[ -f "$LIB_DIR/$MARKER_JAR" ]]; }

cmd_fetch() {
    require_java
    if have_jars; then
        return 0
    fi
    require_maven
    mkdir -p "$ROOT/.cache"
    # Download into a scratch directory and rename it into place, so an interrupted
    # download never leaves a half-filled lib dir that looks complete.
    local tmp
    tmp="$(mktemp -d "$ROOT/.cache/kafka-lib.tmp.XXXXXX")"
    log "downloading Kafka $KAFKA_VERSION jars with Maven (one time)..."
    if ! mvn -B -q -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
        rm -rf "$tmp"
        die "Maven could not download the Kafka jars (is Maven Central reachable?)"
    fi
    if [[ ! -f "$tmp/$MARKER_JAR" ]]; then
        rm -rf "$tmp"
        die "Maven finished but $MARKER_JAR is missing; check ops/kafka/pom.xml"
    fi
    if have_jars; then
        rm -rf "$tmp" # someone else finished first
    else
        rm -rf "$LIB_DIR"
        mv "$tmp" "$LIB_DIR"
    fi
    log "jars ready in .cache/kafka-lib"
}

# --- process helpers -------------------------------------------------------------------

# True if PID is alive and is a Kafka broker (guards against reused pids).
is_broker_pid() {
    local pid="$1"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    local cmdline=""
    if [[ -r "/proc/$pid/cmdline" ]]; then
        cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    else
        cmdline="$(ps -p "$pid" -o args= 2>/dev/null || true)"
    fi
    [[ "$cmdline" == *kafka.Kafka* ]]
}

read_pid() {
    local pid_file="$1"
    [[ -f "$pid_file" ]] || return 1
    local pid
    pid="$(tr -dc '0-9' <"$pid_file")"
    [[ -n "$pid" ]] || return 1
    echo "$pid"
}

port_open() {
    local port="$1"
    if command -v timeout >/dev/null 2>&1; then
        timeout 2 bash -c ">/dev/tcp/127.0.0.1/$port" 2>/dev/null
    else
        (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

print_tail() {
    local file="$1"
    if [[ -f "$file" ]]; then
        log "last lines of $file:"
        tail -n 60 "$file" >&2 || true
    else
        log "no log file at $file"
    fi
}

# Send SIGTERM, wait up to STOP_TIMEOUT seconds, then SIGKILL.
terminate() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < STOP_TIMEOUT * 4; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    log "broker pid $pid did not exit within ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    log "warning: pid $pid still present after SIGKILL"
}

configured_port() {
    local props="$1"
    sed -n 's/^advertised\.listeners=PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$props" 2>/dev/null |
        head -n1
}

# --- start ---------------------------------------------------------------------------

write_server_properties() {
    local props="$1" port="$2" cport="$3" data_dir="$4"
    cat >"$props.tmp" <<EOF
# Generated by ops/kafka/kafka.sh; rewritten on every start.
# One combined KRaft node (broker + controller) bound to loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${cport}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${cport}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${data_dir}/logs

# Single node: replication factor 1 everywhere; few internal partitions keep startup fast.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0

# Topics are created explicitly by the application and the tests.
auto.create.topics.enable=false
num.partitions=4
EOF
    mv "$props.tmp" "$props"
}

# Run a Kafka tool class with the broker classpath.
kafka_tool() {
    java -Xmx256m -Dlog4j.configuration="file:$LOG4J_CONFIG" -cp "$LIB_DIR/*" "$@"
}

format_storage() {
    local data_dir="$1" props="$2"
    local id_file="$data_dir/cluster.id" cluster_id=""
    if [[ -s "$id_file" ]]; then
        cluster_id="$(tr -d '[:space:]' <"$id_file")"
    else
        # Tool output may include log lines; the id is the 22-char base64url token.
        cluster_id="$(kafka_tool kafka.tools.StorageTool random-uuid |
            grep -E '^[A-Za-z0-9_-]{22}$' | tail -n1 || true)"
        [[ -n "$cluster_id" ]] || die "kafka.tools.StorageTool random-uuid returned no cluster id"
        echo "$cluster_id" >"$id_file"
    fi
    # Formatting twice is harmless with --ignore-formatted, but each call costs a JVM
    # start (1-2 s), so skip it when the metadata directory is already formatted.
    if [[ -f "$data_dir/logs/meta.properties" ]]; then
        return 0
    fi
    local out
    if ! out="$(kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$props" \
        --ignore-formatted 2>&1)"; then
        echo "$out" >&2
        die "kafka.tools.StorageTool format failed for $data_dir/logs"
    fi
}

start_watchdog() {
    local owner="$1" pid="$2"
    # Detached from our stdio so callers capturing our output are not kept waiting.
    # Lives exactly as long as both processes, polling every 2 s.
    # shellcheck disable=SC2016 # the inner script expands its own positional args
    setsid bash -c '
        owner="$1"; pid="$2"; grace="$3"
        while kill -0 "$owner" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 2; done
        kill -0 "$pid" 2>/dev/null || exit 0
        kill -TERM "$pid" 2>/dev/null || exit 0
        for ((i = 0; i < grace; i++)); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
        kill -KILL "$pid" 2>/dev/null || true
    ' kafka-watchdog "$owner" "$pid" "$STOP_TIMEOUT" </dev/null >/dev/null 2>&1 &
}

cmd_start() {
    local port="" cport="" data_dir="" foreground=0 owner_pid=""
    while (($#)); do
        case "$1" in
            --port) port="${2:-}"; shift 2 ;;
            --controller-port) cport="${2:-}"; shift 2 ;;
            --data-dir) data_dir="${2:-}"; shift 2 ;;
            --foreground) foreground=1; shift ;;
            --owner-pid) owner_pid="${2:-}"; shift 2 ;;
            -h | --help) usage ;;
            *) die "start: unknown argument '$1'" ;;
        esac
    done
    [[ "$port" =~ ^[0-9]+$ ]] || die "start: --port PORT is required"
    [[ -n "$data_dir" ]] || die "start: --data-dir DIR is required"
    if [[ -z "$cport" ]]; then cport=$((port + 1)); fi
    [[ "$cport" =~ ^[0-9]+$ ]] || die "start: --controller-port must be a number"
    [[ "$port" != "$cport" ]] || die "start: --port and --controller-port must differ"
    [[ -z "$owner_pid" || "$owner_pid" =~ ^[0-9]+$ ]] || die "start: --owner-pid must be a pid"

    mkdir -p "$data_dir"
    data_dir="$(cd "$data_dir" && pwd)"
    local props="$data_dir/server.properties"
    local pid_file="$data_dir/kafka.pid"
    local out_file="$data_dir/kafka.out"

    local old_pid
    if old_pid="$(read_pid "$pid_file")"; then
        if is_broker_pid "$old_pid"; then
            local running_port
            running_port="$(configured_port "$props")"
            log "broker already running (pid $old_pid) for $data_dir"
            echo "127.0.0.1:${running_port:-$port}"
            return 0
        fi
        rm -f "$pid_file"
    fi

    cmd_fetch
    local p
    for p in "$port" "$cport"; do
        if port_open "$p"; then
            die "port $p on 127.0.0.1 is already in use by another process"
        fi
    done

    write_server_properties "$props" "$port" "$cport" "$data_dir"
    format_storage "$data_dir" "$props"

    local -a java_cmd
    # shellcheck disable=SC2206 # word splitting of the heap flags is intended
    java_cmd=(java $HEAP_OPTS
        "-Dlog4j.configuration=file:$LOG4J_CONFIG"
        "-Dkafka.logs.dir=$data_dir"
        -cp "$LIB_DIR/*"
        kafka.Kafka "$props")

    if ((foreground)); then
        echo $$ >"$pid_file"
        log "starting Kafka $KAFKA_VERSION in the foreground on 127.0.0.1:$port"
        exec "${java_cmd[@]}"
    fi

    # Keep the previous run's output for debugging; readiness only looks at this run's.
    if [[ -f "$out_file" ]]; then mv -f "$out_file" "$out_file.1"; fi
    : >"$out_file"

    local started_at=$SECONDS
    # bash -c writes its own pid, then execs java under that same pid. setsid detaches the
    # broker from the caller's terminal/process group so Ctrl-C in a shell does not kill it
    # half way; `kafka.sh stop` is the way to stop it.
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-start "$pid_file" \
        "${java_cmd[@]}" </dev/null >>"$out_file" 2>&1 &

    local pid="" i
    for ((i = 0; i < 100; i++)); do
        if pid="$(read_pid "$pid_file")"; then break; fi
        sleep 0.05
    done
    [[ -n "$pid" ]] || {
        print_tail "$out_file"
        die "broker process did not start"
    }
    if [[ -n "$owner_pid" ]]; then start_watchdog "$owner_pid" "$pid"; fi

    local deadline=$((SECONDS + START_TIMEOUT)) ready=0
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pid_file"
            print_tail "$out_file"
            die "broker exited during startup (see $out_file)"
        fi
        if grep -q "$STARTED_MESSAGE" "$out_file" 2>/dev/null && port_open "$port"; then
            ready=1
            break
        fi
        sleep 0.25
    done
    if ((!ready)); then
        log "broker not ready after ${START_TIMEOUT}s; stopping it"
        terminate "$pid"
        rm -f "$pid_file"
        print_tail "$out_file"
        exit 1
    fi
    log "Kafka $KAFKA_VERSION ready in $((SECONDS - started_at))s (pid $pid, data $data_dir)"
    echo "127.0.0.1:$port"
}

# --- stop / status -------------------------------------------------------------------

parse_data_dir() {
    local data_dir=""
    while (($#)); do
        case "$1" in
            --data-dir) data_dir="${2:-}"; shift 2 ;;
            -h | --help) usage ;;
            *) die "unknown argument '$1'" ;;
        esac
    done
    [[ -n "$data_dir" ]] || die "--data-dir DIR is required"
    echo "$data_dir"
}

cmd_stop() {
    local data_dir pid_file pid
    data_dir="$(parse_data_dir "$@")"
    pid_file="$data_dir/kafka.pid"
    if ! pid="$(read_pid "$pid_file")"; then
        log "no broker running for $data_dir"
        rm -f "$pid_file"
        return 0
    fi
    if is_broker_pid "$pid"; then
        log "stopping broker pid $pid"
        terminate "$pid"
    else
        log "stale pid file for $data_dir (pid $pid is not a broker)"
    fi
    rm -f "$pid_file"
}

cmd_status() {
    local data_dir pid_file pid port
    data_dir="$(parse_data_dir "$@")"
    pid_file="$data_dir/kafka.pid"
    if pid="$(read_pid "$pid_file")" && is_broker_pid "$pid"; then
        port="$(configured_port "$data_dir/server.properties")"
        if [[ -n "$port" ]] && port_open "$port"; then
            echo "running: pid $pid, bootstrap 127.0.0.1:$port"
        else
            echo "starting: pid $pid, bootstrap 127.0.0.1:${port:-?} not accepting connections yet"
        fi
        return 0
    fi
    echo "stopped"
    return 3
}

main() {
    (($#)) || usage
    local cmd="$1"
    shift
    case "$cmd" in
        fetch) cmd_fetch "$@" ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        -h | --help | help) usage ;;
        *)
            log "unknown command '$cmd'"
            usage
            ;;
    esac
}

main "$@"
