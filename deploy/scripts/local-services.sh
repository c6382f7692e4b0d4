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
# install, or to run Ordo with `docker compose up --build` instead, and exits 1.
#
# The S3 and SES stand-ins are moto servers (PyPI), pip-installed on first use into the system
# python3 where its pip may install packages (pyenv's, say), else into the project venv
# ${XDG_CACHE_HOME:-~/.cache}/ordo/venv, made first: Debian's and Ubuntu's own python3 refuses pip
# (PEP 668, "externally-managed-environment"). A missing python3, or python3-venv where the venv
# needs it, is installed from apt in the same apt-get run and under the same rules as the servers
# (see setup-lib.sh, which this script shares with pip-install.sh).
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
# ORDO_SERVICES_OS_RELEASE (file read instead of /etc/os-release); XDG_CACHE_HOME (the venv's place).
# Only with --plan, for deploy/scripts/test-local-services.sh, these stand in for what the script
# would observe (ignored otherwise, so they can never fool a real run):
#   ORDO_SERVICES_FAKE_UP      the names that answer, e.g. "redis s3" ("" = none; unset = really ping)
#   ORDO_SERVICES_FAKE_PATH    where server binaries, python3, apt-get and sudo are looked for (PATH
#                              syntax)
#   ORDO_SERVICES_FAKE_UID     the user id (0 = root)
#   ORDO_SERVICES_FAKE_TTY     1 if stdin is a terminal, 0 if not
#   ORDO_SERVICES_FAKE_PYTHON  the Python side, as words: pip, venv, project-venv, moto (setup-lib.sh)
#
# Layout: one section per service (<name>_ready, <name>_start and, for what the distribution
# packages, <name>_pkg and <name>_bins), then observe (what the machine looks like), decide (a pure
# function of the observations: what to install and start, and whether to ask), and apply (does it,
# or with --plan prints each command instead of running it; the same code path either way). What
# pip-install.sh needs too (the machine, apt with consent, the Python) is in setup-lib.sh.
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

log_tag=services
rerun_hint="just services"
log() { printf '[services] %s\n' "$*" >&2; }

# shellcheck source=deploy/scripts/setup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-lib.sh"

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
# (PyPI `moto[server]`, keeps objects in memory), installed with pip on first use (into the Python
# python_decide chooses). Any bucket name works; the task service creates its bucket at start when
# it is missing.
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

# moto_present: does the chosen Python ($py) have moto[server] at the pinned version?
moto_present() {
  if faked ORDO_SERVICES_FAKE_PYTHON; then
    in_list moto "$ORDO_SERVICES_FAKE_PYTHON"
  else
    [[ $("$py" -c 'import moto.server, moto; print(moto.__version__)' 2>/dev/null) == "$MOTO_VERSION" ]]
  fi
}
# moto_install: into the chosen Python, making the project venv first when decided.
moto_install() {
  python_setup
  log "s3, ses: installing moto[server] $MOTO_VERSION with pip into $py"
  pip_install "moto[server]==$MOTO_VERSION"
}
# moto_start <name> <port>: starts it in the background (installed before, see Apply).
moto_start() {
  mkdir -p /var/log/ordo
  # setsid + nohup: the server outlives this script and the shell that ran it.
  setsid nohup "$py" -m moto.server -H 127.0.0.1 -p "$2" >"/var/log/ordo/$1.log" 2>&1 </dev/null &
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
# observation (see the header); without --plan they are ignored. observe_host (setup-lib.sh): the
# lookup path, distribution, user, terminal and CI.
observe_host
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

# The Python side only matters when a moto server is to be started (never with --check): which
# Python there is, and whether the one that would run moto has it already.
moto_ok=false
if [[ $mode != check ]] && { in_list s3 "$down" || in_list ses "$down"; }; then
  python_observe
  python_decide
  if ! $py_make_venv && moto_present; then moto_ok=true; fi
fi

# --- Decide ------------------------------------------------------------------------------------
# A pure function of the observations above. Sets:
#   to_start      the services that are down (all are started; the missing ones installed first)
#   to_install    the Debian packages of the down services whose server is missing, and the
#                 Python packages the moto servers need first (python_decide: python3,
#                 python3-venv)
#   moto_missing  true when moto[server] is to be pip-installed before a moto server starts
#   py ...        the Python that installs and runs moto, and how (python_decide, setup-lib.sh)
#   install       none | auto | ask | refuse | unsupported
#   priv          "" (root) or "sudo", the prefix of apt-get and of the MariaDB root change
#   why           for refuse/unsupported: the one line that says what to do instead
decide() {
  to_start="" to_install="" missing="" moto_missing=false py_needed=false py_missing=""
  local s pkg_var servers_missing=""
  for s in $down; do
    to_start="$to_start $s"
    pkg_var=${s}_pkg
    if [[ -n ${!pkg_var:-} ]] && ! in_list "$s" "$installed"; then
      to_install="$to_install ${!pkg_var}"
      missing="$missing $s"
      servers_missing=yes
    fi
  done
  if in_list s3 "$to_start" || in_list ses "$to_start"; then
    py_needed=true
    python_decide
    to_install="$to_install $py_pkgs" missing="$missing $py_missing"
    $moto_ok || moto_missing=true
  fi
  to_start=${to_start# } to_install=${to_install# } missing=${missing# }
  to_install=${to_install% } missing=${missing% }

  yourself="install MariaDB, Redis and RabbitMQ yourself (macOS: brew install mariadb redis rabbitmq) and rerun, or run Ordo in Docker with \`docker compose up --build\` instead of \`just dev\`"
  if [[ -n $py_missing ]]; then
    if [[ -n $servers_missing ]]; then
      yourself="${py_yourself%" and rerun"}, and $yourself"
    else
      yourself="$py_yourself, or run Ordo in Docker with \`docker compose up --build\` instead of \`just dev\`"
    fi
  fi
  apt_decide
}

# --- Apply -------------------------------------------------------------------------------------
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
  if $py_needed; then
    if $moto_missing; then moto_state="install moto[server]==$MOTO_VERSION"; else moto_state="moto $MOTO_VERSION installed"; fi
    echo "python: $py ($py_why): $moto_state"
  fi
  echo "install: $install${priv:+ (sudo)}"
fi

apt_apply
# A package's own start (systemd, or its init script where apt runs one) may have started it;
# inside a container or chroot apt usually starts nothing. Either way the start below covers it.
if [[ -n $to_install && $mode != plan ]]; then
  still_down=""
  for s in $to_start; do
    if "${s}_ready"; then log "$s: up (started by its package)"; else still_down="$still_down $s"; fi
  done
  to_start=${still_down# }
fi

# Start everything that is down first, then wait: the boots overlap instead of adding up.
for s in $to_start; do
  # moto is installed (and the venv made) once, after the servers above were started: their boots
  # overlap with pip's downloads.
  if [[ $s == s3 || $s == ses ]] && $moto_missing; then
    moto_install
    moto_missing=false
  fi
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
