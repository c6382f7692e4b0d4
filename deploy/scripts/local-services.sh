#!/usr/bin/env bash
# Makes sure the backing services Ordo's tests and `just dev` need answer on loopback:
# MariaDB 127.0.0.1:3306 (root, empty password), Redis 127.0.0.1:6379, RabbitMQ 127.0.0.1:5672
# (guest/guest), and an S3-compatible server on 127.0.0.1:9000 (moto, for attachments). Each one
# that does not answer is started with the command the machine image uses (Debian packages, PyPI for
# moto; no Docker), then all are waited for with a bounded wait.
#
# Used by .ci/run and by `just services`. Idempotent: when everything answers it only pings
# (well under a second) and starts nothing.
#
#   deploy/scripts/local-services.sh                 ensure all three are up
#   deploy/scripts/local-services.sh --check         only report; exit 1 if any is down
#   deploy/scripts/local-services.sh [--check] redis only the ones named (mariadb redis rabbitmq)
#
# Environment: ORDO_SERVICES_TIMEOUT (seconds per service, default 120; RabbitMQ boots in 10-20 s
# on an idle machine, much longer on a busy 2-core one).
set -euo pipefail

timeout_s=${ORDO_SERVICES_TIMEOUT:-120}
check_only=false
if [[ ${1:-} == --check ]]; then
  check_only=true
  shift
fi

log() { printf '[services] %s\n' "$*" >&2; }

# A plain TCP connect through bash's /dev/tcp: instant, and needs no client tool. `timeout` keeps a
# filtered port from hanging the check.
tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# --- MariaDB -----------------------------------------------------------------------------------
# `mariadb-admin ping` exits 0 once the server accepts connections (even if the login were refused),
# which is exactly "up". --protocol=tcp: the tests connect over TCP, not the socket.
mariadb_ready() {
  if command -v mariadb-admin >/dev/null; then
    mariadb-admin --protocol=tcp --host=127.0.0.1 --port=3306 --user=root \
      --connect-timeout=2 --silent ping >/dev/null 2>&1
  else
    tcp_open 127.0.0.1 3306
  fi
}
mariadb_start() {
  # /run is a tmpfs: after a reboot the socket and pid directory is gone and mariadbd would die.
  [[ -d /run/mysqld ]] || install -d -o mysql -g mysql /run/mysqld 2>/dev/null || mkdir -p /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
}

# --- Redis -------------------------------------------------------------------------------------
redis_ready() {
  if command -v redis-cli >/dev/null; then
    [[ $(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]
  else
    tcp_open 127.0.0.1 6379
  fi
}
redis_start() {
  mkdir -p /var/lib/redis /var/log/redis
  # No persistence (--save "" --appendonly no): tests make and drop their own keys.
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

# --- RabbitMQ ----------------------------------------------------------------------------------
# The AMQP listener opens only at the end of the broker's boot, so an open 5672 means "ready" and
# costs nothing; `rabbitmq-diagnostics ping` would start an Erlang VM (about a second) per call.
rabbitmq_ready() { tcp_open 127.0.0.1 5672; }
rabbitmq_start() { rabbitmq-server -detached; }

# --- S3 ----------------------------------------------------------------------------------------
# Attachments go to S3. Locally an S3-compatible server answers on 127.0.0.1:9000: moto's server
# (PyPI `moto[server]`, keeps objects in memory), installed with pip on first use. Any bucket name
# works; the task service creates its bucket at start when it is missing.
# 5.2.5 or later: 5.2.1 answers CompleteMultipartUpload with a root element the AWS SDKs reject.
MOTO_VERSION=5.2.5
s3_ready() { tcp_open 127.0.0.1 9000; }
s3_start() { moto_start s3 9000; }

# --- SES ---------------------------------------------------------------------------------------
# Notification email goes to SES v2. Locally a second moto server stands in on 127.0.0.1:9002 and
# keeps what it was sent; tests read it back from /moto-api/data.json, which lists every model of
# that server (on the S3 one, a deleted bucket's objects make that listing fail).
ses_ready() { tcp_open 127.0.0.1 9002; }
ses_start() { moto_start ses 9002; }

# moto_start <name> <port>: installs moto[server] when missing, then starts it in the background.
moto_start() {
  if [[ $(python3 -c 'import moto.server, moto; print(moto.__version__)' 2>/dev/null) != "$MOTO_VERSION" ]]; then
    log "$1: installing moto[server] $MOTO_VERSION with pip"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      "moto[server]==$MOTO_VERSION"
  fi
  mkdir -p /var/log/ordo
  # setsid + nohup: the server outlives this script and the shell that ran it.
  setsid nohup python3 -m moto.server -H 127.0.0.1 -p "$2" >"/var/log/ordo/$1.log" 2>&1 </dev/null &
}

# --- Future backing services: add a <name>_ready / <name>_start pair and list the name here. ------
all_services=(mariadb redis rabbitmq s3 ses)

if (($#)); then
  services=("$@")
  for s in "${services[@]}"; do
    [[ " ${all_services[*]} " == *" $s "* ]] || { log "unknown service '$s' (known: ${all_services[*]})"; exit 2; }
  done
else
  services=("${all_services[@]}")
fi

down=()
for s in "${services[@]}"; do
  if "${s}_ready"; then
    log "$s: up"
  else
    down+=("$s")
  fi
done

if $check_only; then
  if ((${#down[@]})); then
    log "down: ${down[*]} (start them with 'just services' or deploy/scripts/local-services.sh)"
    exit 1
  fi
  exit 0
fi

# Start everything that is down first, then wait: the boots overlap instead of adding up.
for s in "${down[@]}"; do
  log "$s: not answering; starting it"
  # A start command that fails is not fatal here: the bounded wait below gives the clear error.
  "${s}_start" || log "$s: start command exited with $? (waiting anyway)"
done

for s in "${down[@]}"; do
  waited=0
  until "${s}_ready"; do
    if ((waited >= timeout_s)); then
      log "ERROR: $s did not become ready within ${timeout_s}s."
      case $s in
        mariadb) log "  look at: journal/syslog, /var/log/mysql/, 'mariadb-admin --protocol=tcp -h127.0.0.1 ping'" ;;
        redis) log "  look at: /var/log/redis/ci.log" ;;
        rabbitmq) log "  look at: /var/log/rabbitmq/, 'rabbitmq-diagnostics status'" ;;
        s3) log "  look at: /var/log/ordo/s3.log" ;;
        ses) log "  look at: /var/log/ordo/ses.log" ;;
      esac
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "$s: ready after ${waited}s"
done
