#!/usr/bin/env bash
# Local Apache Kafka 3.9.1 (KRaft) for development and tests: one combined broker+controller
# node, or a cluster of N combined nodes, on loopback ports. No ZooKeeper, no Docker: the broker
# jars come from Maven Central via ops/kafka/pom.xml and are cached in .cache/kafka-lib
# (relative to the project root).
#
# Usage:
#   kafka.sh fetch
#   kafka.sh start --port PORT [--controller-port CPORT] --data-dir DIR [--foreground]
#                  [--owner-pid PID] [--sasl-ssl-port PORT] [--ssl-port PORT]
#                  [--ssl-client-auth] [--sasl-plaintext-port PORT]
#                  [--scram-user NAME] [--scram-password PASSWORD]
#   kafka.sh stop --data-dir DIR
#   kafka.sh status --data-dir DIR
#   kafka.sh cluster-start --brokers N --base-port PORT --data-dir DIR
#                  [--replication-factor R] [--min-insync-replicas M] [--owner-pid PID]
#   kafka.sh cluster-stop --data-dir DIR
#   kafka.sh cluster-status --data-dir DIR
#   kafka.sh broker-kill --data-dir DIR --node N     (kill -9 one node of a cluster)
#   kafka.sh broker-stop --data-dir DIR --node N     (clean stop of one node)
#   kafka.sh broker-start --data-dir DIR --node N [--owner-pid PID]
#
# start (background) prints the bootstrap address 127.0.0.1:PORT as the last line of stdout
# once the broker accepts connections and has logged "Kafka Server started".
# --owner-pid PID: also stop the broker when process PID exits (safety net for test runs
# that get killed before they can clean up).
# --sasl-ssl-port adds a SASL_SSL listener and --sasl-plaintext-port a SASL_PLAINTEXT one (no
# TLS); both take SCRAM-SHA-256 and SCRAM-SHA-512 logins of one user (--scram-user, default
# faustapp; password --scram-password, default random in DIR/tls/scram.password) who has
# credentials for both mechanisms. --ssl-port adds a TLS listener (with --ssl-client-auth it
# requires a client certificate). For the TLS listeners the script makes a CA, the broker's
# certificate (127.0.0.1, localhost) and a client certificate in DIR/tls: ca.pem, client.pem,
# client.key. The PLAINTEXT listener stays (inter-broker and local tools).
# cluster-start starts N nodes (node i: broker port PORT+2(i-1), controller port PORT+2(i-1)+1,
# data DIR/node-i), all controller voters, and prints the bootstrap list host:port,... last.
# Topics created without a replication factor get R (default min(3, N)); M (default min(2, R))
# is the brokers' min.insync.replicas; internal topics get min(3, N) replicas, min ISR min(2, N).
#
# Environment:
#   KAFKA_HEAP_OPTS     JVM heap flags (default: -Xmx1g -Xms256m; cluster nodes -Xmx384m -Xms96m)
#   KAFKA_START_TIMEOUT seconds to wait for readiness (default: 90; cluster: 180)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ops/kafka/tls.sh
source "$SCRIPT_DIR/tls.sh"
# shellcheck source=ops/kafka/cluster.sh
source "$SCRIPT_DIR/cluster.sh"
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
    sed -n '/^# Usage:/,/^# start (background)/p' "${BASH_SOURCE[0]}" | sed '$d' |
        sed 's/^# \{0,1\}//' >&2
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
    # Extra listeners (",NAME://127.0.0.1:PORT..."), their protocol map entries and extra
    # settings are empty for the plain single node.
    local props="$1" port="$2" cport="$3" data_dir="$4"
    local more_listeners="${5:-}" more_map="${6:-}" more_settings="${7:-}"
    cat >"$props.tmp" <<EOF
# Generated by ops/kafka/kafka.sh; rewritten on every start.
# One combined KRaft node (broker + controller) bound to loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${cport}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${cport}${more_listeners}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}${more_listeners}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${more_map}
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
${more_settings}
EOF
    mv "$props.tmp" "$props"
}

# Run a Kafka tool class with the broker classpath.
kafka_tool() {
    java -Xmx256m -Dlog4j.configuration="file:$LOG4J_CONFIG" -cp "$LIB_DIR/*" "$@"
}

format_storage() {
    # DATA_DIR PROPS [ID_FILE [storage tool arguments, e.g. --add-scram ...]]
    local data_dir="$1" props="$2" id_file="${3:-$1/cluster.id}"
    shift $(($# < 3 ? $# : 3))
    local cluster_id=""
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
        --ignore-formatted "$@" 2>&1)"; then
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

# Start the JVM of the node in DATA_DIR (server.properties written) in the background, with
# its own session; sets LAUNCHED_PID. HEAP is the heap flags, JVM_EXTRA more JVM flags.
launch_node() {
    local data_dir="$1" owner_pid="$2" heap="$3" jvm_extra="${4:-}"
    local props="$data_dir/server.properties" pid_file="$data_dir/kafka.pid"
    local out_file="$data_dir/kafka.out"
    local -a java_cmd
    # shellcheck disable=SC2206 # word splitting of the JVM flags is intended
    java_cmd=(java $heap $jvm_extra
        "-Dlog4j.configuration=file:$LOG4J_CONFIG"
        "-Dkafka.logs.dir=$data_dir"
        -cp "$LIB_DIR/*"
        kafka.Kafka "$props")
    # Keep the previous run's output for debugging; readiness only looks at this run's.
    if [[ -f "$out_file" ]]; then mv -f "$out_file" "$out_file.1"; fi
    : >"$out_file"
    rm -f "$pid_file"
    # bash -c writes its own pid, then execs java under that same pid. setsid detaches the
    # broker from the caller's terminal/process group so Ctrl-C in a shell does not kill it
    # half way; `kafka.sh stop` is the way to stop it.
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-start "$pid_file" \
        "${java_cmd[@]}" </dev/null >>"$out_file" 2>&1 &
    LAUNCHED_PID=""
    local i
    for ((i = 0; i < 100; i++)); do
        if LAUNCHED_PID="$(read_pid "$pid_file")"; then break; fi
        sleep 0.05
    done
    [[ -n "$LAUNCHED_PID" ]] || {
        print_tail "$out_file"
        die "broker process did not start"
    }
    if [[ -n "$owner_pid" ]]; then start_watchdog "$owner_pid" "$LAUNCHED_PID"; fi
}

# Wait until the node in DATA_DIR (pid PID) logged its start and accepts connections on PORT
# before the DEADLINE (in $SECONDS); on failure stop it and exit with its log tail.
await_node() {
    local data_dir="$1" pid="$2" port="$3" deadline="$4"
    local out_file="$data_dir/kafka.out"
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$data_dir/kafka.pid"
            print_tail "$out_file"
            die "broker exited during startup (see $out_file)"
        fi
        if grep -q "$STARTED_MESSAGE" "$out_file" 2>/dev/null && port_open "$port"; then
            return 0
        fi
        sleep 0.25
    done
    log "broker in $data_dir not ready after ${START_TIMEOUT}s; stopping it"
    terminate "$pid"
    rm -f "$data_dir/kafka.pid"
    print_tail "$out_file"
    exit 1
}

# The running broker's pid for DATA_DIR, or nothing (a stale pid file is removed).
running_pid() {
    local data_dir="$1" pid
    if pid="$(read_pid "$data_dir/kafka.pid")"; then
        if is_broker_pid "$pid"; then
            echo "$pid"
            return 0
        fi
        rm -f "$data_dir/kafka.pid"
    fi
    return 1
}

cmd_start() {
    local port="" cport="" data_dir="" foreground=0 owner_pid=""
    local sasl_ssl_port="" ssl_port="" ssl_client_auth=0 scram_user="faustapp" scram_password=""
    local sasl_plaintext_port=""
    while (($#)); do
        case "$1" in
            --port) port="${2:-}"; shift 2 ;;
            --controller-port) cport="${2:-}"; shift 2 ;;
            --data-dir) data_dir="${2:-}"; shift 2 ;;
            --foreground) foreground=1; shift ;;
            --owner-pid) owner_pid="${2:-}"; shift 2 ;;
            --sasl-ssl-port) sasl_ssl_port="${2:-}"; shift 2 ;;
            --ssl-port) ssl_port="${2:-}"; shift 2 ;;
            --ssl-client-auth) ssl_client_auth=1; shift ;;
            --sasl-plaintext-port) sasl_plaintext_port="${2:-}"; shift 2 ;;
            --scram-user) scram_user="${2:-}"; shift 2 ;;
            --scram-password) scram_password="${2:-}"; shift 2 ;;
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
    [[ -z "$sasl_ssl_port" || "$sasl_ssl_port" =~ ^[0-9]+$ ]] ||
        die "start: --sasl-ssl-port must be a number"
    [[ -z "$ssl_port" || "$ssl_port" =~ ^[0-9]+$ ]] || die "start: --ssl-port must be a number"
    [[ -z "$sasl_plaintext_port" || "$sasl_plaintext_port" =~ ^[0-9]+$ ]] ||
        die "start: --sasl-plaintext-port must be a number"
    [[ "$scram_user" =~ ^[A-Za-z0-9._-]+$ ]] || die "start: --scram-user: letters, digits . _ -"
    [[ -z "$scram_password" || "$scram_password" =~ ^[A-Za-z0-9._~+/-]+$ ]] ||
        die "start: --scram-password: letters, digits and . _ ~ + / - only"

    mkdir -p "$data_dir"
    data_dir="$(cd "$data_dir" && pwd)"
    local props="$data_dir/server.properties"
    local pid_file="$data_dir/kafka.pid"

    local old_pid
    if old_pid="$(running_pid "$data_dir")"; then
        local running_port
        running_port="$(configured_port "$props")"
        log "broker already running (pid $old_pid) for $data_dir"
        echo "127.0.0.1:${running_port:-$port}"
        return 0
    fi

    cmd_fetch
    local p
    for p in "$port" "$cport" $sasl_ssl_port $ssl_port $sasl_plaintext_port; do
        if port_open "$p"; then
            die "port $p on 127.0.0.1 is already in use by another process"
        fi
    done

    local more_listeners="" more_map="" more_settings="" sasl_listeners=""
    local -a scram_args=()
    if [[ -n "$sasl_ssl_port$ssl_port" ]]; then
        make_tls "$data_dir/tls"
        more_settings="$(tls_settings "$data_dir/tls")"
    fi
    if [[ -n "$sasl_ssl_port$sasl_plaintext_port" ]]; then
        scram_password="$(scram_password_for "$data_dir/tls" "$scram_password")"
        local mechanism
        for mechanism in $SCRAM_MECHANISMS; do
            scram_args+=(--add-scram "$mechanism=[name=$scram_user,password=$scram_password]")
        done
    fi
    if [[ -n "$sasl_ssl_port" ]]; then
        more_listeners+=",SASL_SSL://127.0.0.1:${sasl_ssl_port}"
        more_map+=",SASL_SSL:SASL_SSL"
        sasl_listeners+=" sasl_ssl"
    fi
    if [[ -n "$sasl_plaintext_port" ]]; then
        more_listeners+=",SASL_PLAINTEXT://127.0.0.1:${sasl_plaintext_port}"
        more_map+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
        sasl_listeners+=" sasl_plaintext"
    fi
    if [[ -n "$sasl_listeners" ]]; then
        # shellcheck disable=SC2086 # one argument per listener name
        more_settings+=$'\n'"$(sasl_settings $sasl_listeners)"
    fi
    if [[ -n "$ssl_port" ]]; then
        more_listeners+=",SSL://127.0.0.1:${ssl_port}"
        more_map+=",SSL:SSL"
        if ((ssl_client_auth)); then more_settings+=$'\n'"listener.name.ssl.ssl.client.auth=required"; fi
    fi
    write_server_properties "$props" "$port" "$cport" "$data_dir" \
        "$more_listeners" "$more_map" "$more_settings"
    local formatted=0
    if [[ -f "$data_dir/logs/meta.properties" ]]; then formatted=1; fi
    if ((${#scram_args[@]})); then
        format_storage "$data_dir" "$props" "$data_dir/cluster.id" "${scram_args[@]}"
    else
        format_storage "$data_dir" "$props"
    fi

    if ((foreground)); then
        local -a java_cmd
        # shellcheck disable=SC2206 # word splitting of the heap flags is intended
        java_cmd=(java $HEAP_OPTS
            "-Dlog4j.configuration=file:$LOG4J_CONFIG"
            "-Dkafka.logs.dir=$data_dir"
            -cp "$LIB_DIR/*"
            kafka.Kafka "$props")
        echo $$ >"$pid_file"
        log "starting Kafka $KAFKA_VERSION in the foreground on 127.0.0.1:$port"
        exec "${java_cmd[@]}"
    fi

    local started_at=$SECONDS
    launch_node "$data_dir" "$owner_pid" "$HEAP_OPTS"
    local pid="$LAUNCHED_PID"
    await_node "$data_dir" "$pid" "$port" $((SECONDS + START_TIMEOUT))
    if ((${#scram_args[@]})) && ((formatted)); then
        # The storage was formatted before: the user may be missing or have another password.
        set_scram_user "127.0.0.1:$port" "$scram_user" "$scram_password"
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
        cluster-start) cmd_cluster_start "$@" ;;
        cluster-stop) cmd_cluster_stop "$@" ;;
        cluster-status) cmd_cluster_status "$@" ;;
        broker-kill) cmd_broker_kill "$@" ;;
        broker-stop) cmd_broker_stop "$@" ;;
        broker-start) cmd_broker_start "$@" ;;
        -h | --help | help) usage ;;
        *)
            log "unknown command '$cmd'"
            usage
            ;;
    esac
}

main "$@"
