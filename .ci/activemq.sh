#!/usr/bin/env bash
# Runs Debian's ActiveMQ with STOMP and STOMP+TLS on loopback for tests, CI and the demo.
#
# Usage: .ci/activemq.sh install|start|stop|kill|restart|status|env [BASE]
#   install  apt-get install Debian's activemq (and a JRE if `java` is missing); idempotent
#   start    write the config and certificate under BASE, start the broker in the background,
#            wait until STOMP answers on both ports (60 s at most); no-op if already running
#   stop     SIGTERM the broker and wait for it to exit (SIGKILL after 15 s)
#   kill     SIGKILL the broker at once (a crash, for reconnection tests)
#   restart  stop, then start on the same ports
#   status   say whether it runs; exit 0 if it does, 3 if not
#   env      print `export STOMP_TEST_PORT=… STOMP_TEST_TLS_PORT=… STOMP_TEST_CA=…`
# BASE defaults to $AMQ_BASE or /tmp/soar-amq. Ports come from AMQ_STOMP_PORT (61613) and
# AMQ_STOMP_TLS_PORT (61614) when starting and are remembered in BASE/ports, so stop,
# restart, status and env need no environment. AMQ_PERSISTENT=true keeps messages across restarts
# (KahaDB in BASE/data; remembered like the ports); the default is a non-persistent broker.
# AMQ_TLS_NODELAY=false leaves `transport.tcpNoDelay` off the STOMP+TLS connector, as a
# customer's broker ships (Nagle's algorithm on; remembered like the ports); the plain STOMP
# connector keeps it. The default, true, sets it on both.
# AMQ_JVM_OPTS replaces the JVM options; the default starts fast for tests (C1 JIT only, a
# small serial heap), not what a production broker runs.
# The TLS certificate is for CN=localhost, SAN dns:localhost, ip:127.0.0.1; its PEM, which
# is also the CA to trust, is BASE/broker-ca.pem.
set -euo pipefail

command=${1:-}
BASE=${2:-${AMQ_BASE:-/tmp/soar-amq}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AMQ_HOME=/usr/share/activemq
PID_FILE="$BASE/activemq.pid"
LOG_FILE="$BASE/activemq.log"
READY_TIMEOUT=60
AMQ_JVM_OPTS=${AMQ_JVM_OPTS:--Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}

log() { echo "activemq.sh: $*" >&2; }
die() { log "$*"; exit 1; }

load_ports() {
    PORT="" TLS_PORT="" PERSISTENT="" TLS_NODELAY=""
    # A running broker's ports win; otherwise the environment, then the last ports, then defaults.
    if [[ -f "$BASE/ports" ]] && { broker_pid >/dev/null || [[ -z "${AMQ_STOMP_PORT:-}${AMQ_STOMP_TLS_PORT:-}" ]]; }; then
        # shellcheck disable=SC1091
        source "$BASE/ports"
    fi
    PORT=${PORT:-${AMQ_STOMP_PORT:-61613}}
    TLS_PORT=${TLS_PORT:-${AMQ_STOMP_TLS_PORT:-61614}}
    PERSISTENT=${AMQ_PERSISTENT:-${PERSISTENT:-false}}
    TLS_NODELAY=${AMQ_TLS_NODELAY:-${TLS_NODELAY:-true}}
}

# Whether `pid` is a live (not zombie) ActiveMQ of ours; a stale pid file may name another process.
is_broker() {
    local pid=$1 state
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "activemq.jar" || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
    [[ "$state" != Z ]]
}

broker_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid=$(cat "$PID_FILE")
    [[ -n "$pid" ]] && is_broker "$pid" || return 1
    echo "$pid"
}

do_install() {
    if command -v java >/dev/null && dpkg -s activemq >/dev/null 2>&1; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "installing activemq"
    apt-get update -qq
    local packages=(activemq)
    command -v java >/dev/null || packages+=(default-jre-headless)
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    dpkg -s activemq >/dev/null 2>&1 || die "activemq did not install"
    # The downloaded packages are not needed once installed; disk is short on some machines.
    apt-get clean
}

write_config() {
    mkdir -p "$BASE/conf" "$BASE/data" "$BASE/tmp"
    if [[ ! -f "$BASE/conf/broker.p12" || ! -f "$BASE/broker-ca.pem" ]]; then
        rm -f "$BASE/conf/broker.p12" "$BASE/broker-ca.pem"
        keytool -genkeypair -noprompt -alias broker -keyalg RSA -keysize 2048 -validity 3650 \
            -dname "CN=localhost" -ext "san=dns:localhost,ip:127.0.0.1" \
            -storetype PKCS12 -keystore "$BASE/conf/broker.p12" \
            -storepass changeit -keypass changeit 2>/dev/null
        keytool -exportcert -rfc -alias broker -keystore "$BASE/conf/broker.p12" \
            -storepass changeit > "$BASE/broker-ca.pem" 2>/dev/null
    fi
    local persistent=false
    [[ "$PERSISTENT" == true ]] && persistent=true
    # 32 MiB frames leave room for 16 MiB bodies plus headers.
    # tcpNoDelay: without it the broker holds small frames back for about 40 ms (Nagle), which
    # bounds every request-reply exchange; measured in bench/RESULTS.md.
    local options="transport.maxFrameSize=33554432&amp;transport.tcpNoDelay=true"
    local tls_options=$options tls_nodelay=true
    if [[ "$TLS_NODELAY" == false ]]; then
        tls_options="transport.maxFrameSize=33554432"
        tls_nodelay=false
    fi
    cat > "$BASE/conf/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="soar-test" useJmx="false"
          persistent="$persistent" dataDirectory="\${activemq.data}">
    <sslContext>
      <sslContext keyStore="file:\${activemq.conf}/broker.p12" keyStoreType="PKCS12"
                  keyStorePassword="changeit"/>
    </sslContext>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$PORT?$options"/>
      <transportConnector name="stomp+ssl" uri="stomp+ssl://127.0.0.1:$TLS_PORT?$tls_options"/>
    </transportConnectors>
  </broker>
</beans>
XML
    # Debian's ActiveMQ logs through log4j 1.2; send INFO and above to the log file.
    cat > "$BASE/conf/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, stdout
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%d{HH:mm:ss.SSS} %-5p %c{1} - %m%n
PROPS
    printf 'PORT=%s\nTLS_PORT=%s\nPERSISTENT=%s\nTLS_NODELAY=%s\n' "$PORT" "$TLS_PORT" "$persistent" \
        "$tls_nodelay" > "$BASE/ports"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_ready() {
    local pid=$1 deadline=$((SECONDS + READY_TIMEOUT))
    local target
    for target in "$PORT" "$TLS_PORT:$BASE/broker-ca.pem"; do
        local port=${target%%:*} ca=""
        [[ "$target" == *:* ]] && ca=${target#*:}
        until python3 "$HERE/stomp_wait.py" 127.0.0.1 "$port" 1 $ca 2>/dev/null; do
            if ! is_broker "$pid"; then
                tail -n 40 "$LOG_FILE" >&2 || true
                die "the broker exited during start-up (log: $LOG_FILE)"
            fi
            if ((SECONDS >= deadline)); then
                python3 "$HERE/stomp_wait.py" 127.0.0.1 "$port" 1 $ca || true
                tail -n 40 "$LOG_FILE" >&2 || true
                die "stomp on port $port not ready after ${READY_TIMEOUT}s (log: $LOG_FILE)"
            fi
        done
    done
}

do_start() {
    load_ports
    local pid
    if pid=$(broker_pid); then
        log "already running (pid $pid, stomp $PORT, stomp+ssl $TLS_PORT)"
        return 0
    fi
    command -v java >/dev/null || die "java is missing; run: $0 install"
    [[ -f "$AMQ_HOME/bin/activemq.jar" ]] || die "activemq is not installed; run: $0 install"
    local port
    for port in "$PORT" "$TLS_PORT"; do
        port_in_use "$port" && die "port $port is already in use by another process"
    done
    write_config
    local started=$SECONDS
    # Append, so a restart keeps the earlier runs' logs for whoever debugs a test.
    echo "=== activemq.sh start $(date -u +%FT%TZ) ===" >> "$LOG_FILE"
    # setsid: the broker must outlive the shell (and process group) that started it.
    (
        cd "$BASE"
        # shellcheck disable=SC2086 # AMQ_JVM_OPTS is a list of options.
        exec setsid java $AMQ_JVM_OPTS \
            -Dactivemq.classpath="$BASE/conf" -Dactivemq.home="$AMQ_HOME" \
            -Dactivemq.base="$BASE" -Dactivemq.conf="$BASE/conf" -Dactivemq.data="$BASE/data" \
            -Djava.io.tmpdir="$BASE/tmp" \
            -jar "$AMQ_HOME/bin/activemq.jar" start "xbean:file:$BASE/conf/activemq.xml" \
            </dev/null >>"$LOG_FILE" 2>&1
    ) &
    pid=$!
    echo "$pid" > "$PID_FILE"
    wait_ready "$pid"
    log "running (pid $pid, stomp $PORT, stomp+ssl $TLS_PORT, ready in $((SECONDS - started))s)"
}

do_stop() {
    local signal=${1:-TERM} pid
    if ! pid=$(broker_pid); then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    kill "-$signal" "$pid" 2>/dev/null || true
    local waited=0
    while is_broker "$pid"; do
        if ((waited >= 150)); then
            log "still running after 15 s; killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$PID_FILE"
    log "stopped (pid $pid)"
}

do_status() {
    load_ports
    local pid
    if pid=$(broker_pid); then
        echo "running (pid $pid, stomp 127.0.0.1:$PORT, stomp+ssl 127.0.0.1:$TLS_PORT, base $BASE)"
        return 0
    fi
    echo "not running (base $BASE)"
    return 3
}

do_env() {
    load_ports
    echo "export STOMP_TEST_PORT=$PORT STOMP_TEST_TLS_PORT=$TLS_PORT STOMP_TEST_CA=$BASE/broker-ca.pem"
}

case "$command" in
    install) do_install ;;
    start) do_start ;;
    stop) do_stop TERM ;;
    kill) do_stop KILL ;;
    restart) do_stop TERM && do_start ;;
    status) do_status ;;
    env) do_env ;;
    *)
        sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
