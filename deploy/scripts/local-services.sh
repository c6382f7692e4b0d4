#!/usr/bin/env bash
# Lists are space-separated words, split on purpose (see "Lists" below): SC2086. <name>_pkg and
# <name>_bins are read through ${!name}: SC2034.
# shellcheck disable=SC2086,SC2034
#
# Makes sure the backing services Ordo's tests and `just dev` need answer on loopback:
# MariaDB 127.0.0.1:3306 (root, empty password), Redis 127.0.0.1:6379, RabbitMQ 127.0.0.1:5672
# (guest/guest), an S3-compatible server on 127.0.0.1:9000 (moto, for attachments) and an SES
# stand-in on 127.0.0.1:9002 (moto, for notification email). Each one that does not answer is
# started with the command the machine image uses (no Docker, no systemd needed), then all are
# waited for with a bounded wait.
#
# A fresh machine: when MariaDB, Redis or RabbitMQ is down and its server is not installed, on
# Debian or Ubuntu (or a derivative: /etc/os-release ID or ID_LIKE) it is installed from the
# distribution's packages (mariadb-server, redis-server, rabbitmq-server) with apt-get, through sudo
# when not root. The script says what it installs, and:
#   - with CI set (not "false"/"0") or ORDO_SERVICES_ASSUME_YES=1, installs without asking;
#   - else, from a terminal, asks "[y/N]" first;
#   - else (no terminal, not CI) installs nothing: it prints one line saying how, and exits 1.
# A MariaDB server this run installed is then opened to root over TCP with an empty password, as
# Ordo's defaults expect (Debian's root@localhost logs in only through the socket as the OS root);
# an existing server's users are never changed. RabbitMQ's guest/guest works on loopback as
# installed. Anywhere else (macOS, other distributions, no apt-get) it says in one line what to
# install, or to run Ordo with `docker compose up --build` instead, and exits 1. The S3 and SES
# stand-ins are moto servers, installed with pip on first use everywhere.
#
# Used by .ci/run and by `just services`. Idempotent: when everything answers it only pings
# (well under a second) and starts and installs nothing.
#
#   deploy/scripts/local-services.sh                 ensure all are up (install what is missing)
#   deploy/scripts/local-services.sh --check         only report; exit 1 if any is down
#   deploy/scripts/local-services.sh --plan          print what it would install and run, change nothing
#   deploy/scripts/local-services.sh [--check|--plan] redis   only the ones named
#                                                    (mariadb redis rabbitmq s3 ses)
#
# Environment: ORDO_SERVICES_TIMEOUT (seconds per service, default 120; RabbitMQ boots in 10-20 s
# on an idle machine, much longer on a busy 2-core one); CI and ORDO_SERVICES_ASSUME_YES (above);
# ORDO_SERVICES_OS_RELEASE (file read instead of /etc/os-release).
# Only with --plan, for deploy/scripts/test-local-services.sh, these stand in for what the script
# would observe (ignored otherwise, so they can never fool a real run):
#   ORDO_SERVICES_FAKE_UP    the names that answer, e.g. "redis s3" ("" = none; unset = really ping)
#   ORDO_SERVICES_FAKE_PATH  where server binaries, apt-get and sudo are looked for (PATH syntax)
#   ORDO_SERVICES_FAKE_UID   the user id (0 = root)
#   ORDO_SERVICES_FAKE_TTY   1 if stdin is a terminal, 0 if not
#
# Layout: one section per service (<name>_ready, <name>_start and, for what the distribution
# packages, <name>_pkg and <name>_bins), then observe (what the machine looks like), decide (a pure
# function of the observations: what to install and start, and whether to ask), and apply (does it,
# or with --plan prints each command instead of running it; the same code path either way).
#
# Lists: names, packages and commands are held as space-separated words rather than arrays, so the
# script also runs under macOS's bash 3.2 with `set -u` (where an empty array is "unbound") far
# enough to say what to install there.
set -euo pipefail

timeout_s=${ORDO_SERVICES_TIMEOUT:-120}
mode=ensure
case ${1:-} in
  --check) mode=check; shift ;;
  --plan) mode=plan; shift ;;
esac

log() { printf '[services] %s\n' "$*" >&2; }

# in_list WORD "LIST": is WORD one of LIST's words?
in_list() { [[ " $2 " == *" $1 "* ]]; }

# A plain TCP connect through bash's /dev/tcp: instant, and needs no client tool. `timeout` keeps a
# filtered port from hanging the check (where there is no `timeout`, as on macOS, a refused
# loopback connect returns at once anyway).
tcp_open() {
  if command -v timeout >/dev/null; then
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
  else
    bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
  fi
}

# --- MariaDB -----------------------------------------------------------------------------------
# `mariadb-admin ping` exits 0 once the server accepts connections (even if the login is refused),
# which is exactly "up". --protocol=tcp: the tests connect over TCP, not the socket. A refused login
# (the server is up but root cannot log in over TCP without a password) is remembered for a hint.
mariadb_pkg=mariadb-server
mariadb_bins="mariadbd mysqld" # mysqld: an older MariaDB, or MySQL (never replaced by mariadb-server)
mariadb_login_refused=false
mariadb_ready() {
  if command -v mariadb-admin >/dev/null; then
    local out
    out=$(mariadb-admin --protocol=tcp --host=127.0.0.1 --port=3306 --user=root \
      --connect-timeout=2 ping 2>&1) || return 1
    [[ $out != *"Access denied"* ]] || mariadb_login_refused=true
  else
    tcp_open 127.0.0.1 3306
  fi
}
mariadb_start() {
  # /run is a tmpfs: after a reboot the socket and pid directory is gone and mariadbd would die.
  [[ -d /run/mysqld ]] || install -d -o mysql -g mysql /run/mysqld 2>/dev/null || mkdir -p /run/mysqld
  local exe=/usr/sbin/mariadbd
  [[ -x $exe ]] || exe=/usr/sbin/mysqld
  # --user=mysql: as root, mariadbd refuses to start unless told whom to run as, and Debian's own
  # configuration leaves that to its service unit (a machine image's my.cnf may say it too).
  start-stop-daemon --start --oknodo --background --exec "$exe" -- --user=mysql
}
# Only on a server this run installed: Debian's root@localhost authenticates through unix_socket
# alone; Ordo's defaults log in over TCP as root with an empty password. Run through the socket as
# the OS root (a TCP connection from 127.0.0.1 is root@localhost too).
mariadb_root_sql="ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
mariadb_configure() {
  run $priv mariadb --protocol=socket --user=root --execute="$mariadb_root_sql"
  if [[ $mode != plan ]]; then
    if mariadb --protocol=tcp --host=127.0.0.1 --port=3306 --user=root --execute='select 1' >/dev/null; then
      log "mariadb: root logs in over TCP with an empty password"
    else
      log "ERROR: mariadb: root still cannot log in over TCP at 127.0.0.1 with an empty password"
      exit 1
    fi
  fi
}

# --- Redis -------------------------------------------------------------------------------------
redis_pkg=redis-server
redis_bins=redis-server
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
rabbitmq_pkg=rabbitmq-server
rabbitmq_bins=rabbitmq-server
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

# --- Future backing services: add a <name>_ready / <name>_start pair (and <name>_pkg / <name>_bins
# when Debian packages it) and list the name here. ------------------------------------------------
all_services="mariadb redis rabbitmq s3 ses"

if (($#)); then
  services="$*"
  for s in $services; do
    in_list "$s" "$all_services" || { log "unknown service '$s' (known: $all_services)"; exit 2; }
  done
else
  services=$all_services
fi

# --- Observe -----------------------------------------------------------------------------------
# Everything the decision depends on. With --plan, a set ORDO_SERVICES_FAKE_<X> replaces the
# observation (see the header); without --plan they are ignored.
faked() { [[ $mode == plan && -n ${!1+set} ]]; }

# Where server binaries, apt-get and sudo are looked for: PATH plus the sbin directories a
# non-root PATH often lacks (mariadbd and rabbitmq-server live in /usr/sbin).
lookup_path="${PATH:-}:/usr/local/sbin:/usr/sbin:/sbin"
faked ORDO_SERVICES_FAKE_PATH && lookup_path=$ORDO_SERVICES_FAKE_PATH
# have_bin NAME: is an executable NAME on lookup_path? (Looked at, never run.)
have_bin() {
  local d IFS=:
  for d in $lookup_path; do
    [[ -n $d && -f $d/$1 && -x $d/$1 ]] && return 0
  done
  return 1
}

# up / down: which of the services answer. installed: which have their server binary.
up="" down="" installed=""
for s in $services; do
  if faked ORDO_SERVICES_FAKE_UP; then
    if in_list "$s" "$ORDO_SERVICES_FAKE_UP"; then up="$up $s"; else down="$down $s"; fi
  elif "${s}_ready"; then
    up="$up $s"
  else
    down="$down $s"
  fi
  bins_var=${s}_bins
  for b in ${!bins_var:-}; do
    if have_bin "$b"; then installed="$installed $s"; break; fi
  done
done

# The distribution: ID and ID_LIKE from os-release (parsed, not sourced).
os_release=${ORDO_SERVICES_OS_RELEASE:-/etc/os-release}
os_id="" os_like=""
if [[ -r $os_release ]]; then
  while IFS='=' read -r key value || [[ -n $key ]]; do
    value=${value#\"} value=${value%\"} value=${value#\'} value=${value%\'}
    case $key in
      ID) os_id=$value ;;
      ID_LIKE) os_like=$value ;;
    esac
  done <"$os_release"
fi
if [[ -n $os_id ]]; then
  os_label=$os_id
elif [[ $(uname -s 2>/dev/null) == Darwin ]]; then
  os_label=macOS
else
  os_label="$(uname -s 2>/dev/null || echo unknown) without /etc/os-release"
fi

uid=$EUID
faked ORDO_SERVICES_FAKE_UID && uid=$ORDO_SERVICES_FAKE_UID
if faked ORDO_SERVICES_FAKE_TTY; then
  [[ $ORDO_SERVICES_FAKE_TTY == 1 ]] && tty=true || tty=false
else
  [[ -t 0 ]] && tty=true || tty=false
fi
# CI=true (or any value but false/0) or ORDO_SERVICES_ASSUME_YES=1: install without asking.
assume_yes=false
if [[ ${ORDO_SERVICES_ASSUME_YES:-} == 1 || (-n ${CI:-} && ${CI:-} != false && ${CI:-} != 0) ]]; then
  assume_yes=true
fi

# --- Decide ------------------------------------------------------------------------------------
# A pure function of the observations above. Sets:
#   to_start    the services that are down (all are started; the missing ones installed first)
#   to_install  the Debian packages of the down services whose server is missing
#   install     none | auto | ask | refuse | unsupported
#   priv        "" (root) or "sudo", the prefix of apt-get and of the MariaDB root change
#   why         for refuse/unsupported: the one line that says what to do instead
decide() {
  to_start="" to_install="" missing="" install=none priv="" why=""
  local s pkg_var
  for s in $down; do
    to_start="$to_start $s"
    pkg_var=${s}_pkg
    if [[ -n ${!pkg_var:-} ]] && ! in_list "$s" "$installed"; then
      to_install="$to_install ${!pkg_var}"
      missing="$missing $s"
    fi
  done
  to_start=${to_start# } to_install=${to_install# } missing=${missing# }
  [[ -n $to_install ]] || return 0

  local yourself="install MariaDB, Redis and RabbitMQ yourself (macOS: brew install mariadb redis rabbitmq) and rerun, or run Ordo in Docker with \`docker compose up --build\` instead of \`just dev\`"
  if ! in_list debian "$os_id $os_like" && ! in_list ubuntu "$os_id $os_like"; then
    install=unsupported
    why="not installed: $missing; this script installs them only on Debian or Ubuntu (apt-get), not on $os_label: $yourself"
  elif ! have_bin apt-get; then
    install=unsupported
    why="not installed: $missing; this $os_label has no apt-get: $yourself"
  elif [[ $uid != 0 ]] && ! have_bin sudo; then
    install=unsupported
    why="not installed: $missing; installing needs root and there is no sudo: as root run \`apt-get install $to_install\` and rerun"
  else
    [[ $uid == 0 ]] || priv=sudo
    if $assume_yes; then
      install=auto
    elif $tty; then
      install=ask
    else
      install=refuse
      why="not installed: $missing; not installing without a terminal to ask: run \`just services\` in a terminal, or with ORDO_SERVICES_ASSUME_YES=1 (CI=true does the same), or \`${priv:+sudo }apt-get install $to_install\` yourself"
    fi
  fi
}

# --- Apply -------------------------------------------------------------------------------------
# run CMD...: runs it (its output to stderr, like all of this script's), or with --plan prints it
# ("run: CMD", to stdout like the rest of the plan) instead.
run() {
  if [[ $mode == plan ]]; then
    echo "run: $*"
  else
    "$@" >&2
  fi
}

decide

for s in $services; do
  if in_list "$s" "$up"; then
    log "$s: up"
    if [[ $s == mariadb ]] && $mariadb_login_refused; then
      log "mariadb: note: root cannot log in over TCP with an empty password as Ordo's defaults expect (this script changes no existing server's users): allow it, or point ORDO_TEST_MYSQL_URL and ORDO_DATABASE_URL at a user who can"
    fi
  fi
done

if [[ $mode == check ]]; then
  if [[ -n $down ]]; then
    log "down:$down (start them with 'just services' or deploy/scripts/local-services.sh)"
    exit 1
  fi
  exit 0
fi

if [[ $mode == plan ]]; then
  for s in $services; do
    if in_list "$s" "$up"; then
      echo "$s: up"
    elif in_list "$s" "$missing"; then
      pkg_var=${s}_pkg
      echo "$s: down, not installed: install ${!pkg_var}, start"
    else
      echo "$s: down: start"
    fi
  done
  echo "install: $install${priv:+ (sudo)}"
fi

case $install in
  none | auto) ;;
  ask)
    if [[ $mode == plan ]]; then
      echo "ask: install $to_install with apt-get? [y/N] (no: exit 1)"
    else
      read -r -p "[services] not installed: $missing. Install $to_install from $os_label's packages with ${priv:+sudo }apt-get? [y/N] " answer || answer=""
      if [[ $answer != [yY]* ]]; then
        log "nothing installed; install them yourself (\`${priv:+sudo }apt-get install $to_install\`) or rerun and answer y"
        exit 1
      fi
    fi
    ;;
  refuse | unsupported)
    log "$why"
    [[ $mode == plan ]] && echo "exit: 1"
    exit 1
    ;;
esac

if [[ -n $to_install ]]; then
  log "not installed: $missing; installing $to_install from $os_label's packages with ${priv:+sudo }apt-get"
  started_at=$SECONDS
  run $priv apt-get update -qq
  run $priv env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $to_install
  if [[ $mode != plan ]]; then
    # shellcheck disable=SC2016  # ${Package} is dpkg-query's field, not the shell's.
    versions=$(dpkg-query -W -f='${Package} ${Version}, ' $to_install)
    log "installed in $((SECONDS - started_at))s: ${versions%, }"
  fi
  # A package's own start (systemd, or its init script where apt runs one) may have started it;
  # inside a container or chroot apt usually starts nothing. Either way the start below covers it.
  if [[ $mode != plan ]]; then
    still_down=""
    for s in $to_start; do
      if "${s}_ready"; then log "$s: up (started by its package)"; else still_down="$still_down $s"; fi
    done
    to_start=${still_down# }
  fi
fi

# Start everything that is down first, then wait: the boots overlap instead of adding up.
for s in $to_start; do
  if [[ $mode == plan ]]; then
    echo "start: $s"
    continue
  fi
  log "$s: not answering; starting it"
  # A start command that fails is not fatal here: the bounded wait below gives the clear error.
  "${s}_start" || log "$s: start command exited with $? (waiting anyway)"
done

if [[ $mode != plan ]]; then
  for s in $to_start; do
    waited=0
    until "${s}_ready"; do
      if ((waited >= timeout_s)); then
        log "ERROR: $s did not become ready within ${timeout_s}s."
        case $s in
          mariadb) log "  look at: journal/syslog, /var/log/mysql/, 'mariadb-admin --protocol=tcp -h127.0.0.1 ping', or run '/usr/sbin/mariadbd --user=mysql' in the foreground" ;;
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
fi

if in_list mariadb-server "$to_install"; then
  mariadb_configure
fi
if [[ $mode == plan ]]; then
  echo "exit: 0"
fi
